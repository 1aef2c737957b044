// Innkeeper portal, flow form: line numbers and a caret position for template editors, "go to
// line, column" buttons for compile errors, and fields shown only for the chosen flow type.
// Progressive enhancement: the form works without it. Styles are set through the CSSOM (the CSP
// forbids inline style attributes, not element.style).
"use strict";

function lineColumn(area) {
  var before = area.value.slice(0, area.selectionStart);
  var lines = before.split("\n");
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

function enhanceEditor(area) {
  var wrap = document.createElement("div");
  wrap.style.display = "flex";
  wrap.style.alignItems = "stretch";
  var gutter = document.createElement("pre");
  gutter.setAttribute("aria-hidden", "true");
  gutter.style.margin = "0";
  gutter.style.padding = "0.3rem 0.4rem";
  gutter.style.textAlign = "right";
  gutter.style.userSelect = "none";
  gutter.style.overflow = "hidden";
  gutter.style.color = "#5c6577";
  gutter.style.minWidth = "2.5em";
  gutter.style.whiteSpace = "pre";
  gutter.style.wordBreak = "normal";
  gutter.style.maxHeight = "none";
  var status = document.createElement("p");
  status.className = "muted";
  status.setAttribute("aria-live", "polite");
  status.style.margin = "0.2rem 0 0.6rem";
  area.parentNode.insertBefore(wrap, area);
  wrap.appendChild(gutter);
  wrap.appendChild(area);
  wrap.parentNode.insertBefore(status, wrap.nextSibling);
  area.style.lineHeight = "1.4";
  gutter.style.lineHeight = "1.4";
  gutter.style.fontSize = window.getComputedStyle(area).fontSize;

  var count = 0;
  function numbers() {
    var lines = area.value.split("\n").length;
    if (lines !== count) {
      count = lines;
      var text = "";
      for (var i = 1; i <= lines; i++) { text += i + "\n"; }
      gutter.textContent = text;
    }
    gutter.style.height = area.clientHeight + "px";
    gutter.scrollTop = area.scrollTop;
  }
  function caret() {
    var at = lineColumn(area);
    status.textContent = "Line " + at.line + ", column " + at.column;
  }
  area.addEventListener("input", function () { numbers(); caret(); });
  area.addEventListener("scroll", numbers);
  area.addEventListener("keyup", caret);
  area.addEventListener("click", caret);
  area.addEventListener("keydown", function (event) {
    if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey && !event.metaKey) {
      event.preventDefault();
      var start = area.selectionStart;
      area.setRangeText("  ", start, area.selectionEnd, "end");
      numbers();
    }
  });
  numbers();
}

function goTo(area, line, column) {
  var lines = area.value.split("\n");
  var offset = 0;
  for (var i = 0; i < Math.min(line - 1, lines.length); i++) { offset += lines[i].length + 1; }
  offset += Math.max(0, Math.min(column - 1, (lines[line - 1] || "").length));
  area.focus();
  area.setSelectionRange(offset, offset);
  var lineHeight = parseFloat(window.getComputedStyle(area).lineHeight) || 16;
  area.scrollTop = Math.max(0, (line - 3) * lineHeight);
  area.dispatchEvent(new Event("keyup"));
  area.dispatchEvent(new Event("scroll"));
}

function showForType(select) {
  var chosen = select.value;
  document.querySelectorAll("[data-only-type]").forEach(function (element) {
    element.hidden = element.getAttribute("data-only-type") !== chosen;
  });
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("textarea[data-editor]").forEach(enhanceEditor);
  var typeSelect = document.querySelector("select[data-flow-type]");
  if (typeSelect) {
    showForType(typeSelect);
    typeSelect.addEventListener("change", function () { showForType(typeSelect); });
  }
});

document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-goto]");
  if (!button) { return; }
  var area = document.getElementById(button.getAttribute("data-goto"));
  if (area) {
    goTo(area, parseInt(button.getAttribute("data-line"), 10) || 1, parseInt(button.getAttribute("data-column"), 10) || 1);
  }
});
