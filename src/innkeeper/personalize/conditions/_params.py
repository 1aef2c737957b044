"""Parameter specifications of the built-in conditions and their compile-time validation (§6.4)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from innkeeper.personalize.conditions.errors import ConditionError

__all__ = [
    "COMPARE_OPS",
    "MATCH_OPS",
    "ParamSpec",
    "count_op",
    "has_param",
    "is_param",
    "match_op",
    "validate_params",
]

ParamKind = Literal["choice", "choices", "string", "strings", "number", "time", "path"]

COMPARE_OPS = ("=", "!=", ">", ">=", "<", "<=")
MATCH_OPS = (
    "equals",
    "not equals",
    "contains",
    "not contains",
    "starts with",
    "ends with",
    "regex",
    "exists",
    "not exists",
    ">",
    ">=",
    "<",
    "<=",
)
_ALIASES = {"==": "=", "is": "equals", "is not": "not equals", "!==": "!=", "===": "="}
_MATCH_ALIASES = {"=": "equals", "==": "equals", "!=": "not equals", "is": "equals", "is not": "not equals"}
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_PATH = re.compile(r"^[A-Za-z_$][\w$-]*(\.[\w$-]+)*$")
_NUMERIC = re.compile(r"^[ \t]*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[ \t]*$")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a built-in condition: its kind, whether it is required, default, choices and bounds."""

    name: str
    kind: ParamKind
    required: bool = True
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    aliases: Mapping[str, str] | None = None


def is_param() -> ParamSpec:
    """The ``is`` / ``is not`` polarity parameter (booleans are accepted: true = ``is``)."""
    return ParamSpec("is", "choice", required=False, default="is", choices=("is", "is not"))


def has_param() -> ParamSpec:
    """The ``has`` / ``has not`` polarity parameter (booleans are accepted: true = ``has``)."""
    return ParamSpec("has", "choice", required=False, default="has", choices=("has", "has not"))


def count_op(*, required: bool = True, default: str | None = None) -> ParamSpec:
    """A numeric comparison operator: ``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``."""
    return ParamSpec("op", "choice", required=required, default=default, choices=COMPARE_OPS, aliases=_ALIASES)


def match_op(choices: Sequence[str] = MATCH_OPS) -> ParamSpec:
    """A value-matching operator (string operators case-insensitive, numeric ones on numbers)."""
    return ParamSpec("op", "choice", choices=tuple(choices), aliases=_MATCH_ALIASES)


def validate_params(friendly_id: str, specs: Sequence[ParamSpec], params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``params`` against ``specs``; return them normalised with defaults filled in, or raise ConditionError."""
    given = dict(params or {})
    known = {spec.name for spec in specs}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConditionError(f"{friendly_id}: unknown parameter(s) {', '.join(map(repr, unknown))}")
    out: dict[str, Any] = {}
    for spec in specs:
        raw = given.get(spec.name)
        if raw is None or raw == "" or raw == []:
            if spec.required and spec.default is None:
                raise ConditionError(f"{friendly_id}: parameter {spec.name!r} is required")
            out[spec.name] = spec.default
            continue
        out[spec.name] = _coerce(friendly_id, spec, raw)
    return out


def _coerce(friendly_id: str, spec: ParamSpec, raw: Any) -> Any:
    where = f"{friendly_id}: parameter {spec.name!r}"
    if spec.kind == "choice":
        return _choice(where, spec, raw)
    if spec.kind == "choices":
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple) or not items:
            raise ConditionError(f"{where} must be a non-empty list")
        return [_choice(where, spec, item) for item in items]
    if spec.kind == "strings":
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) and i for i in items) or not items:
            raise ConditionError(f"{where} must be a non-empty list of strings")
        return list(items)
    if spec.kind == "number":
        return _number(where, spec, raw)
    if spec.kind == "time":
        if not isinstance(raw, str) or not _TIME.match(raw.strip()):
            raise ConditionError(f"{where} must be a time HH:MM (00:00 to 23:59)")
        return raw.strip()
    if spec.kind == "path":
        if not isinstance(raw, str) or not _PATH.match(raw):
            raise ConditionError(f"{where} must be a dot path such as 'a.b.c'")
        return raw
    # string: the value matched by an operator; numbers and booleans are kept as they are
    if isinstance(raw, str | int | float):
        return raw
    raise ConditionError(f"{where} must be a string, a number or a boolean")


def _choice(where: str, spec: ParamSpec, raw: Any) -> str:
    if raw is True and spec.choices[:1] in (("is",), ("has",)):
        return spec.choices[0]
    if raw is False and spec.choices[:1] in (("is",), ("has",)):
        return spec.choices[1]
    if not isinstance(raw, str):
        raise ConditionError(f"{where} must be one of {', '.join(spec.choices)}")
    value = " ".join(raw.split())
    value = (spec.aliases or {}).get(value.lower(), value)
    for choice in spec.choices:
        if choice.lower() == value.lower():
            return choice
    raise ConditionError(f"{where} must be one of {', '.join(spec.choices)}")


def _number(where: str, spec: ParamSpec, raw: Any) -> int | float:
    value: int | float
    if isinstance(raw, bool):
        raise ConditionError(f"{where} must be a number")
    if isinstance(raw, str):
        if not _NUMERIC.match(raw):
            raise ConditionError(f"{where} must be a number")
        value = float(raw)
    elif isinstance(raw, int | float):
        value = raw
    else:
        raise ConditionError(f"{where} must be a number")
    if value != value or value in (float("inf"), float("-inf")):
        raise ConditionError(f"{where} must be a finite number")
    if spec.integer:
        if value != int(value):
            raise ConditionError(f"{where} must be a whole number")
        value = int(value)
    if spec.minimum is not None and value < spec.minimum:
        raise ConditionError(f"{where} must be at least {spec.minimum:g}")
    if spec.maximum is not None and value > spec.maximum:
        raise ConditionError(f"{where} must be at most {spec.maximum:g}")
    return value
