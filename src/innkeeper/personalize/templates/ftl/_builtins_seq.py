"""Built-ins for dates, sequences, hashes and type checks; defines BUILTIN_NAMES once all are registered."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from . import _format as fmt
from ._builtins import (
    BUILTINS,
    LAZY_BUILTINS,
    NULL_SAFE,
    _arity,
    _check_size,
    _hash,
    _int_arg,
    _reg,
    _seq,
    _str_arg,
    to_text,
)
from ._values import DATE_TYPES, FtlFunction, InfRange, is_hash, is_number, is_sequence, loose_equals, type_name

if TYPE_CHECKING:
    from . import _nodes as n
    from ._runtime import Ctx


# ---------------------------------------------------------------- dates


@_reg("date", "datetime", "time", "date.iso", "datetime.iso", "time.iso", "date.xs", "datetime.xs")
def _to_date(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 0, 1)
    kind = node.name.partition(".")[0]
    if isinstance(v, str):
        try:
            if args:
                parsed: datetime | date = fmt.parse_date(v, _str_arg(ctx, node, args[0]), now=ctx.now)
            else:
                parsed = fmt.parse_iso(v)
        except fmt.FormatError as exc:
            raise ctx.error(str(exc), node) from exc
        v = parsed
    if args and not isinstance(args[0], str):
        raise ctx.error(f"?{node.name} expects a pattern string", node)
    if isinstance(v, datetime):
        v = fmt.to_utc(v)
        return v.date() if kind == "date" else v.timetz().replace(tzinfo=None) if kind == "time" else v
    if isinstance(v, date) and kind != "time":
        return v
    if isinstance(v, time) and kind == "time":
        return v
    raise ctx.error(f"?{node.name} expects a string or a date, but this has evaluated to a {type_name(v)}", node)


@_reg("iso_utc", "iso_utc_ms", "iso_local", "iso")
def _iso(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    if not isinstance(v, DATE_TYPES):
        raise ctx.error(f"?{node.name} expects a date, but this has evaluated to a {type_name(v)}", node)
    return fmt.iso_datetime(v, ms="always" if node.name == "iso_utc_ms" else "optional")


# ---------------------------------------------------------------- sequences and hashes


@_reg("size")
def _size(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 0, 0)
    if isinstance(v, InfRange):
        raise ctx.error("?size of a right-unbounded range", node)
    if is_sequence(v) or isinstance(v, Mapping):
        return len(v)
    raise ctx.error(f"?size expects a sequence or hash, but this has evaluated to a {type_name(v)}", node)


BUILTINS["keys"] = lambda ctx, node, v, args: list(_hash(ctx, node, v).keys())
BUILTINS["values"] = lambda ctx, node, v, args: list(_hash(ctx, node, v).values())
BUILTINS["reverse"] = lambda ctx, node, v, args: list(reversed(_seq(ctx, node, v)))


@_reg("first", "last")
def _first_last(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    seq = _seq(ctx, node, v)
    if not seq:
        return None
    return seq[0] if node.name == "first" else seq[-1]


@_reg("seq_contains", "seq_index_of", "seq_last_index_of")
def _seq_find(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 1, 1)
    seq = list(_seq(ctx, node, v))
    hits = [i for i, x in enumerate(seq) if loose_equals(x, args[0])]
    if node.name == "seq_contains":
        return bool(hits)
    if not hits:
        return -1
    return hits[0] if node.name == "seq_index_of" else hits[-1]


@_reg("join")
def _join(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 1, 3)
    parts = [to_text(ctx, node, x) for x in _seq(ctx, node, v) if x is not None]
    if not parts and len(args) > 1:
        return _str_arg(ctx, node, args[1])
    result = _str_arg(ctx, node, args[0]).join(parts)
    if parts and len(args) > 2:
        result += _str_arg(ctx, node, args[2])
    _check_size(ctx, node, len(result))
    return result


def _sort_key(ctx: Ctx, node: n.BuiltIn, values: list[Any]) -> Callable[[Any], Any]:
    if all(isinstance(x, str) for x in values):
        return str.lower
    if all(is_number(x) for x in values) or all(isinstance(x, DATE_TYPES) for x in values):
        return lambda x: x
    if all(isinstance(x, bool) for x in values):
        return lambda x: x
    raise ctx.error(f"?{node.name}: all values must be strings, numbers, dates or booleans of the same type", node)


@_reg("sort")
def _sort(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    seq = list(_seq(ctx, node, v))
    return sorted(seq, key=_sort_key(ctx, node, seq))


@_reg("sort_by")
def _sort_by(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 1, 1)
    path = args[0] if isinstance(args[0], (list, tuple)) else [args[0]]
    seq = list(_seq(ctx, node, v))

    def key_of(item: Any) -> Any:
        for k in path:
            if not isinstance(item, Mapping) or item.get(k) is None:
                raise ctx.error(f"?sort_by: an element has no {k!r} key", node)
            item = item[k]
        return item

    keys = [key_of(x) for x in seq]
    kf = _sort_key(ctx, node, keys)
    return [x for _, x in sorted(zip(keys, seq, strict=True), key=lambda p: kf(p[0]))]


@_reg("chunk")
def _chunk(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 1, 2)
    seq, size = list(_seq(ctx, node, v)), _int_arg(ctx, node, args[0])
    if size < 1:
        raise ctx.error("?chunk size must be at least 1", node)
    chunks = [seq[i : i + size] for i in range(0, len(seq), size)]
    if len(args) > 1 and chunks and len(chunks[-1]) < size:
        chunks[-1] = chunks[-1] + [args[1]] * (size - len(chunks[-1]))
    return chunks


@_reg("min", "max")
def _min_max(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    seq = [x for x in _seq(ctx, node, v) if x is not None]
    if not seq:
        return None
    _sort_key(ctx, node, seq)
    return min(seq) if node.name == "min" else max(seq)


@_reg("filter", "map", "take_while", "drop_while")
def _lambda_seq(ctx: Ctx, node: n.BuiltIn, v: Any, args: list[Any]) -> Any:
    _arity(ctx, node, args, 1, 1)
    fn = args[0]
    if not callable(fn) or isinstance(fn, FtlFunction):
        if isinstance(fn, FtlFunction):
            fn = fn.fn
        else:
            raise ctx.error(f"?{node.name} expects a lambda (x -> ...) or a function", node)
    seq = _seq(ctx, node, v)
    out: list[Any] = []
    for i, item in enumerate(seq):
        ctx.tick(node)
        if node.name == "map":
            out.append(fn(item))
            continue
        keep = fn(item)
        if not isinstance(keep, bool):
            raise ctx.error(f"?{node.name}: the lambda must return a boolean", node)
        if node.name == "filter":
            if keep:
                out.append(item)
        elif node.name == "take_while":
            if not keep:
                break
            out.append(item)
        elif not keep:
            return list(seq[i:])
    return [] if node.name == "drop_while" else out


# ---------------------------------------------------------------- type checks


def _is(name: str, test: Callable[[Any], bool]) -> None:
    BUILTINS[name] = lambda ctx, node, v, args: test(v)


_is("is_string", lambda v: isinstance(v, str))
_is("is_number", is_number)
_is("is_boolean", lambda v: isinstance(v, bool))
_is("is_date", lambda v: isinstance(v, DATE_TYPES))
_is("is_date_like", lambda v: isinstance(v, DATE_TYPES))
_is("is_date_only", lambda v: isinstance(v, date) and not isinstance(v, datetime))
_is("is_datetime", lambda v: isinstance(v, datetime))
_is("is_time", lambda v: isinstance(v, time))
_is("is_hash", is_hash)
_is("is_hash_ex", is_hash)
_is("is_sequence", is_sequence)
_is("is_collection", is_sequence)
_is("is_collection_ex", is_sequence)
_is("is_enumerable", lambda v: is_sequence(v) or isinstance(v, Mapping))
_is("is_indexable", is_sequence)
_is("is_method", lambda v: isinstance(v, FtlFunction) or getattr(v, "ftl_kind", None) == "method")
_is("is_macro", lambda v: getattr(v, "ftl_kind", None) == "macro")
_is("is_directive", lambda v: getattr(v, "ftl_kind", None) == "macro")
_is("is_transform", lambda v: False)
_is("is_node", lambda v: False)
_is("is_markup_output", lambda v: False)


BUILTIN_NAMES = frozenset(BUILTINS) | NULL_SAFE | LAZY_BUILTINS
ALL_BUILTINS = BUILTINS  # every built-in, once this module has registered its own
