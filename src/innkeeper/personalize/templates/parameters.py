"""Template parameters ``[[ Label | type | default | { options } ]]`` (personalize.md §5.3).

Tokens may appear anywhere in HTML/CSS/JS of web templates and in condition/decision JavaScript. The first
token that declares a label (it has at least a ``| type``) defines the parameter; ``[[ Label ]]`` reuses it.
``substitute`` replaces every token with the variant's value (or the default); strings are inserted raw, the
author decides the quoting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TYPES", "Parameter", "ParameterError", "declarations", "substitute"]

TYPES = ("string", "text", "number", "enum", "colour", "boolean", "url", "image", "html", "date")
_TYPE_ALIASES = {"color": "colour", "bool": "boolean"}
_TOKEN = re.compile(r"\[\[([^\[\]]*?)\]\]")
_ENUM = re.compile(r"^enum\s*\((.*)\)$", re.IGNORECASE | re.DOTALL)
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_COLOUR = re.compile(r"^(#[0-9a-fA-F]{3,4}|#[0-9a-fA-F]{6}|#[0-9a-fA-F]{8}|(rgb|rgba|hsl|hsla)\([^()]*\)|[A-Za-z]+)$")
_URL = re.compile(r"^(https?://[^\s]+|/[^\s]*|#[^\s]*|\.{1,2}/[^\s]*|data:image/[^\s]+)$", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_OPTION_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<punct>[{}:,])|(?P<word>[^\s{}:,"']+))""",
)


class ParameterError(ValueError):
    """A template parameter declaration or value is invalid; the message names the parameter's label."""

    def __init__(self, label: str, message: str) -> None:
        super().__init__(f"template parameter {label!r}: {message}")
        self.label = label


@dataclass(frozen=True)
class Parameter:
    """A declared parameter: label, lower-case type, default (raw text or None), options, enum choices."""

    label: str
    type: str
    default: str | None
    options: dict[str, Any] = field(default_factory=dict)
    choices: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        """Whether the declaration says ``required: true``."""
        return self.options.get("required") is True


def _label(text: str) -> str:
    return " ".join(text.split())


def _parse_declaration(content: str) -> Parameter | None:
    parts = content.split("|")
    label = _label(parts[0])
    if not label:
        raise ParameterError(content.strip(), "the label is empty")
    if len(parts) == 1:
        return None
    type_text = parts[1].strip()
    rest = parts[2:]
    options_text = ""
    if rest and rest[-1].strip().startswith("{") and rest[-1].strip().endswith("}"):
        options_text = rest[-1].strip()
        rest = rest[:-1]
    default = "|".join(rest).strip() or None
    kind, choices = _parse_type(label, type_text)
    options = _parse_options(label, options_text) if options_text else {}
    parameter = Parameter(label, kind, default, options, choices)
    if default is not None:
        _validate(parameter, default, what="default")
    return parameter


def _parse_type(label: str, text: str) -> tuple[str, tuple[str, ...]]:
    enum = _ENUM.match(text)
    if enum:
        choices = tuple(c.strip() for c in enum.group(1).split(",") if c.strip())
        if not choices:
            raise ParameterError(label, "enum() needs at least one value")
        return "enum", choices
    kind = text.lower() or "string"
    kind = _TYPE_ALIASES.get(kind, kind)
    if kind not in TYPES or kind == "enum":
        raise ParameterError(label, f"unknown type {text!r} (expected one of {', '.join(TYPES)})")
    return kind, ()


def _parse_options(label: str, text: str) -> dict[str, Any]:
    """Parse a JS-ish object literal ``{ required: true, min: 0, group: "Layout" }`` (keys lower-cased)."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _OPTION_TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            if text[pos:].strip() == "":
                break
            raise ParameterError(label, "the options object cannot be parsed")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    if len(tokens) < 2 or tokens[0] != ("punct", "{") or tokens[-1] != ("punct", "}"):
        raise ParameterError(label, "the options must be an object { key: value, … }")
    options: dict[str, Any] = {}
    body = tokens[1:-1]
    i = 0
    while i < len(body):
        triple = body[i : i + 3]
        if len(triple) < 3 or triple[0][0] == "punct" or triple[1] != ("punct", ":") or triple[2][0] == "punct":
            raise ParameterError(label, "the options object cannot be parsed")
        options[str(_scalar(triple[0])).lower()] = _scalar(triple[2])
        i += 3
        if i < len(body):
            if body[i] != ("punct", ","):
                raise ParameterError(label, "the options object cannot be parsed")
            i += 1
    return options


def _scalar(token: tuple[str, str]) -> Any:
    kind, text = token
    if kind == "str":
        if text[0] == "'":
            return text[1:-1].replace("\\'", "'")
        try:
            return str(json.loads(text))
        except ValueError:
            return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if _NUMBER.match(text):
        number = float(text)
        return int(number) if number.is_integer() and "." not in text and "e" not in lowered else number
    return text


def declarations(source: str) -> list[Parameter]:
    """The parameters declared in ``source``, in order of first declaration (later redeclarations are ignored)."""
    found: dict[str, Parameter] = {}
    for m in _TOKEN.finditer(source):
        if "|" not in m.group(1):
            continue
        parameter = _parse_declaration(m.group(1))
        if parameter is not None and parameter.label not in found:
            found[parameter.label] = parameter
    return list(found.values())


def substitute(source: str, values: Mapping[str, Any]) -> str:
    """Replace every token with ``values[label]`` or the default; raise ParameterError for invalid/missing values."""
    declared = {p.label: p for p in declarations(source)}
    resolved: dict[str, str] = {}
    for label, parameter in declared.items():
        value = values.get(label)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if parameter.default is not None:
                resolved[label] = _validate(parameter, parameter.default, what="default")
            elif parameter.required:
                raise ParameterError(label, "a value is required")
            else:
                resolved[label] = ""
        else:
            resolved[label] = _validate(parameter, value, what="value")

    def replace(m: re.Match[str]) -> str:
        content = m.group(1)
        label = _label(content.split("|")[0])
        if label in resolved:
            return resolved[label]
        if "|" not in content and label in values and values[label] is not None:
            return _render(values[label])
        if not re.search(r"[A-Za-z]", label):
            return m.group(0)  # e.g. a JS nested array literal [[1, 2]], not a parameter
        raise ParameterError(label, "used but never declared")

    return _TOKEN.sub(replace, source)


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) and not value.is_integer() else str(int(value))
    return json.dumps(value, separators=(",", ":"), default=str)


def _validate(parameter: Parameter, value: Any, *, what: str) -> str:
    """Check ``value`` against the parameter's type and options; return the text to insert."""
    label, kind, options = parameter.label, parameter.type, parameter.options
    if kind == "number":
        text = _render(value).strip() if not isinstance(value, bool) else ""
        if not _NUMBER.match(text):
            raise ParameterError(label, f"the {what} must be a number")
        _bounds(label, float(text), options, what=what)
        return text
    if kind == "enum":
        text = _render(value).strip()
        for choice in parameter.choices:
            if choice.lower() == text.lower():
                return choice
        raise ParameterError(label, f"the {what} must be one of {', '.join(parameter.choices)}")
    if kind == "boolean":
        text = _render(value).strip().lower()
        if text not in ("true", "false"):
            raise ParameterError(label, f"the {what} must be true or false")
        return text
    text = _render(value)
    if kind == "colour" and not _COLOUR.match(text.strip()):
        raise ParameterError(label, f"the {what} must be a colour (#rgb, #rrggbb, rgb(), hsl() or a name)")
    if kind in ("url", "image") and not _URL.match(text.strip()):
        raise ParameterError(label, f"the {what} must be an http(s) URL or a path")
    if kind == "date" and not _DATE.match(text.strip()):
        raise ParameterError(label, f"the {what} must be an ISO date (YYYY-MM-DD[THH:MM[:SS]])")
    if kind in ("string", "text", "html"):
        _bounds(label, len(text), options, what=f"{what}'s length")
    return text


def _bounds(label: str, number: float, options: Mapping[str, Any], *, what: str) -> None:
    low, high = options.get("min"), options.get("max")
    if isinstance(low, int | float) and not isinstance(low, bool) and number < low:
        raise ParameterError(label, f"the {what} must be at least {low}")
    if isinstance(high, int | float) and not isinstance(high, bool) and number > high:
        raise ParameterError(label, f"the {what} must be at most {high}")
