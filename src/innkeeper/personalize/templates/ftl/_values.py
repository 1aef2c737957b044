"""The FTL value model over plain Python values: type names, coercion, arithmetic, comparison, toJSON."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from ._format import format_computer, format_number, iso_datetime

NUMBER_TYPES = (int, float, Decimal)
SEQ_TYPES = (list, tuple, range)
DATE_TYPES = (datetime, date, time)
_CTX = Context(prec=200)
_SCALE = 12  # FreeMarker's BigDecimal division keeps at least 12 fraction digits (ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class FtlFunction:
    """Marks a Python callable in the data model as callable from templates (`fn(arg1, arg2)`).

    Anything else that is callable is not callable from templates: the sandbox never calls arbitrary objects.
    The callable receives the evaluated arguments as plain Python values; returning None means "missing".
    """

    fn: Callable[..., Any]


class EmptyValue(str):
    """The result of `missing!`: an empty string that also acts as an empty sequence and an empty hash."""

    __slots__ = ()


EMPTY = EmptyValue("")


class InfRange:
    """A right-unbounded range `n..`: iterating it is stopped by the loop-iteration limit."""

    __slots__ = ("start",)

    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self) -> Iterator[int]:
        i = self.start
        while True:
            yield i
            i += 1


class ValueTypeError(Exception):
    """A value has the wrong type for an operation; the caller adds the template position."""


def is_number(v: object) -> bool:
    return isinstance(v, NUMBER_TYPES) and not isinstance(v, bool)


def is_sequence(v: object) -> bool:
    return isinstance(v, (*SEQ_TYPES, InfRange)) or v is EMPTY


def is_hash(v: object) -> bool:
    return isinstance(v, Mapping) or v is EMPTY


def type_name(v: object) -> str:
    """FreeMarker-style type description used in error messages."""
    if v is None:
        return "missing value"
    if v is EMPTY:
        return "empty string/sequence/hash"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, str):
        return "string"
    if is_number(v):
        return "number"
    if isinstance(v, DATE_TYPES):
        return "date"
    if isinstance(v, Mapping):
        return "hash"
    if is_sequence(v):
        return "sequence"
    if isinstance(v, FtlFunction):
        return "method"
    kind = getattr(v, "ftl_kind", None)
    return kind if isinstance(kind, str) else "unsupported Python value"


def to_decimal(v: int | float | Decimal) -> Decimal:
    """Decimal for arithmetic: floats go through their shortest repr (like Java's `Double.toString`)."""
    if isinstance(v, Decimal):
        return v
    if isinstance(v, float):
        return Decimal(repr(v))
    return Decimal(v)


def arith(op: str, a: Any, b: Any) -> int | Decimal:
    """FreeMarker's BigDecimal arithmetic for + - * / %."""
    if type(a) is int and type(b) is int:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            raise ValueTypeError("Division by zero")
        if op == "%":
            r = abs(a) % abs(b)
            return -r if a < 0 else r
    da, db = to_decimal(a), to_decimal(b)
    if op == "+":
        return _CTX.add(da, db)
    if op == "-":
        return _CTX.subtract(da, db)
    if op == "*":
        return _CTX.multiply(da, db)
    if db.is_zero():
        raise ValueTypeError("Division by zero")
    if op == "%":
        return _CTX.remainder(da, db)
    exp_a = da.as_tuple().exponent
    exp_b = db.as_tuple().exponent
    scale = max(-exp_a if isinstance(exp_a, int) else 0, -exp_b if isinstance(exp_b, int) else 0, _SCALE)
    return _CTX.divide(da, db).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP, context=_CTX)


def format_for_output(v: int | float | Decimal, number_format: str) -> str:
    """Format a number with the render's number_format: "number" (en_US), "computer" (like ?c) or a pattern."""
    if number_format == "computer":
        return format_computer(v)
    if type(v) is int and number_format == "number":
        return f"{v:,}"
    return format_number(v, "#,##0.###" if number_format == "number" else number_format)


def _date_kind(v: object) -> str:
    if isinstance(v, datetime):
        return "datetime"
    return "date" if isinstance(v, date) else "time"


def _date_key(v: datetime | date | time) -> Any:
    if isinstance(v, datetime):
        from ._format import to_utc

        return to_utc(v)
    return v


def compare(op: str, a: Any, b: Any) -> bool:
    """FreeMarker comparison: only number/number, string/string, date/date and (for ==, !=) boolean/boolean."""
    if is_number(a) and is_number(b):
        if (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
            return op == "!="
        left, right = a, b
    elif isinstance(a, str) and isinstance(b, str):
        if op not in ("==", "!="):
            raise ValueTypeError(f'Can\'t use operator "{op}" on string values.')
        left, right = a, b
    elif isinstance(a, bool) and isinstance(b, bool):
        if op not in ("==", "!="):
            raise ValueTypeError(f'Can\'t use operator "{op}" on boolean values.')
        left, right = a, b
    elif isinstance(a, DATE_TYPES) and isinstance(b, DATE_TYPES):
        if _date_kind(a) != _date_kind(b):
            raise ValueTypeError(f"Can't compare a {_date_kind(a)} with a {_date_kind(b)} value.")
        left, right = _date_key(a), _date_key(b)
    else:
        raise ValueTypeError(
            "Can't compare values of these types. Allowed comparisons are between two numbers, two strings, "
            f"two dates, or two booleans. Left hand operand is a {type_name(a)}. "
            f"Right hand operand is a {type_name(b)}."
        )
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def loose_equals(a: Any, b: Any) -> bool:
    """Equality that is False instead of an error for mismatched types (?seq_contains, ?seq_index_of)."""
    try:
        return compare("==", a, b)
    except ValueTypeError:
        return False


def to_json(v: Any) -> str:
    """Compact JSON of a model value: keys in model order, dates as ISO 8601 UTC with milliseconds."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return json.dumps(str(v), ensure_ascii=False)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else "null"
    if isinstance(v, Decimal):
        return format_computer(v) if v.is_finite() else "null"
    if isinstance(v, DATE_TYPES):
        return '"' + iso_datetime(v) + '"'
    if isinstance(v, Mapping):
        return "{" + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + to_json(x) for k, x in v.items()) + "}"
    if isinstance(v, SEQ_TYPES):
        return "[" + ",".join(to_json(x) for x in v) + "]"
    raise ValueTypeError(f"toJSON can't serialize a {type_name(v)}")
