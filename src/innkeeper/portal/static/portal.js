// Innkeeper portal: small progressive enhancements. Pages work without it.
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (button) {
    var text = button.getAttribute("data-copy");
    var done = function () {
      button.setAttribute("data-copied", "true");
      button.textContent = "Copied";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text); done(); });
    } else {
      fallbackCopy(text);
      done();
    }
    return;
  }
  var confirmer = event.target.closest("[data-confirm]");
  if (confirmer && !window.confirm(confirmer.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});

function fallbackCopy(text) {
  var area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  try { document.execCommand("copy"); } catch (e) { /* the text stays selectable on the page */ }
  document.body.removeChild(area);
}

// The debug cog of an event line: its body (the stored record and raw JSON) is fetched from the
// event's page when the cog first opens; the server renders it as autoescaped HTML. "toggle" does
// not bubble, so it is caught on the way down.
document.addEventListener("toggle", function (event) {
  var details = event.target;
  if (!(details instanceof HTMLDetailsElement) || !details.open || !details.matches("details.debug[data-src]")) {
    return;
  }
  if (details.hasAttribute("data-loaded") || details.hasAttribute("data-loading")) {
    return;
  }
  var body = details.querySelector(".debug-body");
  if (!body) {
    return;
  }
  details.setAttribute("data-loading", "true");
  fetch(details.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      if (response.redirected) {  // to the sign-in form: the portal session ended
        throw new Error("signed out, reload the page");
      }
      return response.text();
    })
    .then(function (html) {
      body.innerHTML = html;
      details.setAttribute("data-loaded", "true");
    }, function (error) {
      var message = document.createElement("p");
      message.className = "error";
      message.setAttribute("role", "alert");
      message.textContent = "Could not load this event's details (" + error.message + "). ";
      var link = body.querySelector("a[href]");
      body.textContent = "";
      body.appendChild(message);
      if (link) {
        message.appendChild(link);
      }
    })
    .then(function () {
      details.removeAttribute("data-loading");
    });
}, true);
