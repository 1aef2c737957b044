"""Built-ins (`value?name(args)`) for strings and numbers, plus the registry and helpers shared with `_builtins_seq`."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import _format as fmt
from ._values import (
    DATE_TYPES,
    EMPTY,
    format_for_output,
    is_number,
    type_name,
)

if TYPE_CHECKING:
    from . import _nodes as n
    from ._runtime import Ctx

Builtin = Callable[["Ctx", "n.BuiltIn", Any, list[Any]], Any]
BUILTINS: dict[str, Builtin] = {}
# Built-ins that accept a missing target (the compiler handles them before evaluating "normally").
NULL_SAFE = frozenset({"has_content", "if_exists", "exists", "default"})
LOOP_BUILTINS = frozenset({"index", "counter", "has_next", "is_first", "is_last", "item_parity", "item_parity_cap",
                           "item_cycle", "is_odd_item", "is_even_item"})  # fmt: skip
LAZY_BUILTINS = frozenset({"then", "switch"})


def _reg(*names: str) -> Callable[[Builtin], Builtin]:
    def deco(fn: Builtin) -> Builtin:
        for name in names:
            BUILTINS[name] = fn
        return fn

    return deco


def _arity(ctx: Ctx, node: n.BuiltIn, args: list[Any], low: int, high: int) -> None:
    if not low <= len(args) <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise ctx.error(f"?{node.name} expects {want} argument(s), got {len(args)}", node)


def to_text(ctx: Ctx, node: n.Expr, v: Any) -> str:
    """Coerce to a string the way FreeMarker's string built-ins do (numbers/dates use the output formats)."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        raise ctx.error('Can\'t convert a boolean to string automatically; use ?c or ?string("yes", "no")', node)
    if is_number(v):
        return format_for_output(v, ctx.number_format)
    if isinstance(v, DATE_TYPES):
        return fmt.iso_datetime(v)
    raise ctx.error(f"Expected a string, number or date, but this has evaluated to a {type_name(v)}: {node.src}", node)


def _str_arg(ctx: Ctx, node: n.BuiltIn, v: Any) -> str:
    if not isinstance(v, str):
        raise ctx.error(f"?{node.name} expects a string argument, got a {type_name(v)}", node)
    return v


def _int_arg(ctx: Ctx, node: n.BuiltIn, v: Any) -> int:
    if not is_number(v) or (isinstance(v, float) and not math.isfinite(v)):
        raise ctx.error(f"?{node.name} expects a number argument, got a {type_name(v)}", node)
    return int(v)


def _num(ctx: Ctx, node: n.BuiltIn, v: Any) -> Any:
    if not is_number(v):
        raise ctx.error(f"?{node.name} expects a number, but this has evaluated to a {type_name(v)}", node)
    return v


def _seq(ctx: Ctx, node: n.BuiltIn, v: Any) -> list[Any] | tuple[Any, ...] | range:
    if v is EMPTY:
        return []
    if isinstance(v, range) and len(v) > ctx.max_iterations:
        raise ctx.limit_error(f"?{node.name}: the range is larger than the loop-iteration limit", node)
    if isinstance(v, (list, tuple, range)):
        return v
    raise ctx.error(f"?{node.name} expects a sequence, but this has evaluated to a {type_name(v)}", node)


def _hash(ctx: Ctx, node: n.BuiltIn, v: Any) -> Mapping[str, Any]:
    if v is EMPTY:
        return {}
    if isinstance(v, Mapping):
        return v
    raise ctx.error(f"?{node.name} expects a hash, but this has evaluated to a {type_name(v)}", node)


def _check_size(ctx: Ctx, node: n.BuiltIn, size: int) -> None:
    if size > ctx.max_out:
        raise ctx.limit_error(f"?{node.name} would build a value larger than the output limit", node)


# ---------------------------------------------------------------- strings


def _regex_flags(ctx: Ctx, node: n.BuiltIn, flags: str) -> tuple[int, bool, bool]:
    unknown = set(flags) - set("rifmsc")
    if unknown:
        raise ctx.error(f"Unsupported flag(s) {''.join(sorted(unknown))!r} for ?{node.name}", node)
    re_flags = (re.I if "i" in flags else 0) | (re.M if "m" in flags else 0) | (re.S if "s" in flags else 0)
    return re_flags, "r" in flags, "f" in flags


def _java_replacement(repl: str) -> Callable[[re.Match[str]], str]:
    def expand(m: re.Match[str]) -> str:
        return re.sub(
            r"\\(.)|\$(\d)", lambda t: t.group(1) if t.group(1) is not None else (m.group(int(t.group(2))) or ""), repl
        )

    return expand


@_reg("replace")
def _replace(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 2, 3)
    s = to_text(ctx, node, v)
    old, new = _str_arg(ctx, node, args[0]), _str_arg(ctx, node, args[1])
    re_flags, is_regex, first = _regex_flags(ctx, node, _str_arg(ctx, node, args[2]) if len(args) > 2 else "")
    if not is_regex and not re_flags:
        if old == "":
            result = new + new.join(s) + new if not first else new + s
        else:
            result = s.replace(old, new, 1 if first else -1)
    else:
        try:
            pattern = re.compile(old if is_regex else re.escape(old), re_flags)
        except re.error as exc:
            raise ctx.error(f"Invalid regular expression in ?replace: {exc}", node) from exc
        result = pattern.sub(_java_replacement(new) if is_regex else (lambda _m: new), s, count=1 if first else 0)
    _check_size(ctx, node, len(result))
    return result


@_reg("split")
def _split(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 1, 2)
    s, sep = to_text(ctx, node, v), _str_arg(ctx, node, args[0])
    re_flags, is_regex, _ = _regex_flags(ctx, node, _str_arg(ctx, node, args[1]) if len(args) > 1 else "")
    if is_regex or re_flags:
        return re.split(sep if is_regex else re.escape(sep), s, flags=re_flags)
    if sep == "":
        return list(s)
    return s.split(sep)


@_reg("matches")
def _matches(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 1, 2)
    re_flags, _, _ = _regex_flags(ctx, node, _str_arg(ctx, node, args[1]) if len(args) > 1 else "")
    try:
        return re.fullmatch(_str_arg(ctx, node, args[0]), to_text(ctx, node, v), re_flags) is not None
    except re.error as exc:
        raise ctx.error(f"Invalid regular expression in ?matches: {exc}", node) from exc


def _simple_str(name: str, fn: Callable[[str], Any]) -> None:
    def impl(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
        _arity(ctx, node, args, 0, 0)
        return fn(to_text(ctx, node, v))

    BUILTINS[name] = impl


def _java_trim(s: str) -> str:
    return s.strip("".join(chr(i) for i in range(33)))


def _cap_first(s: str) -> str:
    m = re.search(r"\S", s)
    return s if m is None else s[: m.start()] + s[m.start()].upper() + s[m.start() + 1 :]


def _uncap_first(s: str) -> str:
    m = re.search(r"\S", s)
    return s if m is None else s[: m.start()] + s[m.start()].lower() + s[m.start() + 1 :]


def _json_string(s: str, *, js: bool = False) -> str:
    out: list[str] = []
    prev = ""
    for i, ch in enumerate(s):
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "'" and js:
            out.append("\\'")
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "/" and prev == "<":
            out.append("\\/")
        elif ch == ">" and s[max(0, i - 2) : i] in ("]]", "--"):
            out.append("\\u003E")
        elif ch == "<" and s[i + 1 : i + 2] == "!":
            out.append("\\u003C")
        elif code < 0x20 or ch in "\u2028\u2029" or 0x7F <= code <= 0x9F:
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(ch, f"\\u{code:04X}"))
        else:
            out.append(ch)
        prev = ch
    return "".join(out)


def _html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_simple_str("upper_case", str.upper)
_simple_str("lower_case", str.lower)
_simple_str("cap_first", _cap_first)
_simple_str("uncap_first", _uncap_first)
_simple_str("capitalize", lambda s: re.sub(r"\S+", lambda m: m.group()[0].upper() + m.group()[1:].lower(), s))
_simple_str("trim", _java_trim)
_simple_str("length", len)
_simple_str("json_string", _json_string)
_simple_str("js_string", lambda s: _json_string(s, js=True))
_simple_str("html", _html)
_simple_str("xhtml", lambda s: _html(s).replace("'", "&#39;"))
_simple_str("xml", lambda s: _html(s).replace("'", "&apos;"))
_simple_str("url_path", lambda s: quote(s, safe="/-_.!~*'()"))
_simple_str("word_list", str.split)
_simple_str("chop_linebreak", lambda s: s[:-2] if s.endswith("\r\n") else s[:-1] if s.endswith(("\n", "\r")) else s)
_simple_str("boolean", lambda s: {"true": True, "false": False}.get(s))


@_reg("url")
def _url(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 0, 1)
    return quote(to_text(ctx, node, v), safe="-_.!~*'()")


def _str_pred(name: str, fn: Callable[[str, str], Any]) -> None:
    def impl(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
        _arity(ctx, node, args, 1, 1)
        return fn(to_text(ctx, node, v), to_text(ctx, node, args[0]))

    BUILTINS[name] = impl


_str_pred("contains", lambda s, x: x in s)
_str_pred("starts_with", lambda s, x: s.startswith(x))
_str_pred("ends_with", lambda s, x: s.endswith(x))
_str_pred("keep_before", lambda s, x: s.partition(x)[0] if x in s else s)
_str_pred("keep_after", lambda s, x: s.partition(x)[2] if x in s else "")
_str_pred("keep_before_last", lambda s, x: s.rpartition(x)[0] if x in s else s)
_str_pred("keep_after_last", lambda s, x: s.rpartition(x)[2] if x in s else "")
_str_pred("remove_beginning", lambda s, x: s[len(x) :] if s.startswith(x) else s)
_str_pred("remove_ending", lambda s, x: s[: len(s) - len(x)] if x and s.endswith(x) else s)
_str_pred("ensure_starts_with", lambda s, x: s if s.startswith(x) else x + s)
_str_pred("ensure_ends_with", lambda s, x: s if s.endswith(x) else s + x)


@_reg("index_of", "last_index_of")
def _index_of(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 1, 2)
    s, x = to_text(ctx, node, v), to_text(ctx, node, args[0])
    if node.name == "index_of":
        return s.find(x, max(0, _int_arg(ctx, node, args[1])) if len(args) > 1 else 0)
    return s.rfind(x, 0, _int_arg(ctx, node, args[1]) + len(x)) if len(args) > 1 else s.rfind(x)


@_reg("substring")
def _substring(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 1, 2)
    s = to_text(ctx, node, v)
    start = _int_arg(ctx, node, args[0])
    end = _int_arg(ctx, node, args[1]) if len(args) > 1 else len(s)
    if not 0 <= start <= end <= len(s):
        raise ctx.error(f"?substring indexes out of range: {start}..{end} for a string of length {len(s)}", node)
    return s[start:end]


@_reg("left_pad", "right_pad")
def _pad(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 1, 2)
    s, width = to_text(ctx, node, v), _int_arg(ctx, node, args[0])
    filler = _str_arg(ctx, node, args[1]) if len(args) > 1 else " "
    _check_size(ctx, node, width)
    if len(s) >= width or not filler:
        return s
    pad = (filler * (width // len(filler) + 1))[: width - len(s)]
    return pad + s if node.name == "left_pad" else s + pad


# ---------------------------------------------------------------- numbers


@_reg("c", "cn")
def _c(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 0, 0)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    return fmt.format_computer(_num(ctx, node, v))


@_reg("number")
def _number(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 0, 0)
    if is_number(v):
        return v
    try:
        return fmt.parse_number(to_text(ctx, node, v))
    except fmt.FormatError as exc:
        raise ctx.error(str(exc), node) from exc


def _rounding(mode: str) -> Builtin:
    def impl(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
        _arity(ctx, node, args, 0, 0)
        x = _num(ctx, node, v)
        if type(x) is int:
            return x
        if isinstance(x, float) and not math.isfinite(x):
            raise ctx.error(f"?{node.name} can't round {x}", node)
        d = Decimal(repr(x)) if isinstance(x, float) else x
        if mode == "half_up":  # FreeMarker rounds .5 towards positive infinity
            return int((d + Decimal("0.5")).to_integral_value(rounding=ROUND_FLOOR))
        return int(d.to_integral_value(rounding=mode))

    return impl


BUILTINS["round"] = _rounding("half_up")
BUILTINS["floor"] = _rounding(ROUND_FLOOR)
BUILTINS["ceiling"] = _rounding(ROUND_CEILING)


@_reg("int", "long", "short", "byte")
def _int(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 0, 0)
    if isinstance(v, datetime) and node.name == "long":
        return fmt.epoch_millis(v)
    x = _num(ctx, node, v)
    if isinstance(x, float) and not math.isfinite(x):
        raise ctx.error(f"?{node.name} can't convert {x}", node)
    return int(x)


@_reg("float", "double")
def _float(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 0, 0)
    return float(_num(ctx, node, v))


@_reg("abs")
def _abs(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 0, 0)
    return abs(_num(ctx, node, v))


@_reg("is_infinite", "is_nan")
def _is_inf_nan(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    x = Decimal(_num(ctx, node, v)) if not isinstance(v, float) else v
    if node.name == "is_nan":
        return x.is_nan() if isinstance(x, Decimal) else math.isnan(x)
    return x.is_infinite() if isinstance(x, Decimal) else math.isinf(x)


@_reg("lower_abc", "upper_abc")
def _abc(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    i = _int_arg(ctx, node, v)
    if i < 1:
        raise ctx.error(f"?{node.name} needs a number >= 1", node)
    out = ""
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(ord("a") + r) + out
    return out.upper() if node.name == "upper_abc" else out


@_reg("string")
def _string(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 0, 2)
    if isinstance(v, bool):
        if not args:
            return "true" if v else "false"
        _arity(ctx, node, args, 2, 2)
        return to_text(ctx, node, args[0] if v else args[1])
    if len(args) == 2:
        raise ctx.error(f'?string("yes", "no") needs a boolean, got a {type_name(v)}', node)
    if not args:
        return to_text(ctx, node, v)
    pattern = _str_arg(ctx, node, args[0])
    try:
        if is_number(v):
            if pattern in ("number", "computer"):
                return format_for_output(v, pattern)
            if pattern == "currency":
                return "$" + fmt.format_number(v, "#,##0.00")
            if pattern == "percent":
                return fmt.format_number(v, "#,##0%")
            return fmt.format_number(v, pattern)
        if isinstance(v, DATE_TYPES):
            if pattern in ("iso", "xs"):
                return fmt.iso_datetime(v, ms="optional")
            return fmt.format_date(v, pattern)
    except fmt.FormatError as exc:
        raise ctx.error(str(exc), node) from exc
    if isinstance(v, str):
        return v
    raise ctx.error(f"?string can't format a {type_name(v)}", node)


def _string_with(pattern: str) -> Builtin:
    def impl(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
        return _string(ctx, node, v, [pattern])

    return impl


for _sub in ("number", "computer", "currency", "percent", "iso", "xs"):
    BUILTINS[f"string.{_sub}"] = _string_with(_sub)
