"""Value helpers shared by the Python built-ins; each has a line-for-line twin in ``js/_helpers.js``.

The helpers reproduce JavaScript semantics where the two implementations could otherwise disagree:
number-to-string conversion, numeric parsing, truthiness, millisecond timestamps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from innkeeper.personalize.conditions.context import ConditionContext, to_millis

__all__ = [
    "DAY_MS",
    "LocalTime",
    "all_sessions",
    "classify_device",
    "classify_os",
    "compare",
    "current_session",
    "js_str",
    "js_truthy",
    "local_time",
    "match",
    "millis",
    "num",
    "other_sessions",
    "path_get",
    "positive",
]

DAY_MS = 86_400_000
_NUMERIC = re.compile(r"^[ \t]*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[ \t]*$")
_TABLET = re.compile(r"ipad|tablet|kindle|silk|playbook", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|iphone|ipod|android|windows phone|blackberry|bb10|opera mini|iemobile", re.IGNORECASE)
_OS_RULES = (
    (re.compile(r"windows phone", re.IGNORECASE), "Windows Phone"),
    (re.compile(r"iphone|ipad|ipod", re.IGNORECASE), "iOS"),
    (re.compile(r"android", re.IGNORECASE), "Android"),
    (re.compile(r"cros", re.IGNORECASE), "Chrome OS"),
    (re.compile(r"windows", re.IGNORECASE), "Windows"),
    (re.compile(r"mac os x|macintosh", re.IGNORECASE), "macOS"),
    (re.compile(r"linux", re.IGNORECASE), "Linux"),
)


def positive(polarity: str, result: bool) -> bool:
    """Apply an ``is``/``has`` (keep) or ``is not``/``has not`` (negate) polarity."""
    return result if polarity in ("is", "has") else not result


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness of a JSON value (``[]`` and ``{}`` are true, ``0``/``""``/``NaN``/null are false)."""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == value and value != 0
    return True


def js_str(value: Any) -> str:
    """``String(value)`` for JSON primitives, including JavaScript's number formatting."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**21 else _js_float(float(value))
    if isinstance(value, float):
        return _js_float(value)
    if isinstance(value, datetime):
        from innkeeper.personalize.conditions.context import iso_ms

        return iso_ms(value)
    return str(value)


def _js_float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits_tuple = Decimal(repr(abs(value))).normalize().as_tuple()
    digits = "".join(map(str, digits_tuple.digits))
    exponent = int(digits_tuple.exponent)
    k, n = len(digits), exponent + len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
        body = f"{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"
    return sign + body


def num(value: Any) -> float | int | None:
    """A number from a number or a plain numeric string (booleans, blanks and other text give None)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if value == value else None
    if isinstance(value, str) and _NUMERIC.match(value):
        return float(value)
    return None


def compare(left: Any, op: str, right: Any) -> bool:
    """Numeric comparison ``left op right`` (``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``); non-numbers → False."""
    a, b = num(left), num(right)
    if a is None or b is None:
        return False
    if op == "=":
        return a == b
    if op == "!=":
        return a != b
    if op == ">":
        return a > b
    if op == ">=":
        return a >= b
    if op == "<":
        return a < b
    return a <= b


def match(actual: Any, op: str, expected: Any) -> bool:
    """Match a value with a §6.4 operator; lists match when any item matches, objects only exist."""
    if op == "exists":
        return actual is not None
    if op == "not exists":
        return actual is None
    if op.startswith("not "):
        return not match(actual, op[4:], expected)
    if isinstance(actual, list):
        return any(match(item, op, expected) for item in actual)
    if actual is None or isinstance(actual, Mapping):
        return False
    if op in (">", ">=", "<", "<="):
        return compare(actual, op, expected)
    if op == "equals" and num(actual) is not None and num(expected) is not None:
        return num(actual) == num(expected)
    text, wanted = js_str(actual).lower(), js_str(expected).lower()
    if op == "equals":
        return text == wanted
    if op == "contains":
        return wanted in text
    if op == "starts with":
        return text.startswith(wanted)
    if op == "ends with":
        return text.endswith(wanted)
    if op == "regex":
        return re.search(js_str(expected), js_str(actual), re.IGNORECASE) is not None
    return False


def path_get(value: Any, path: str) -> Any:
    """Follow a dot path through objects (and arrays, by numeric index); None when any step is missing."""
    if not path:
        return value
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def millis(value: Any) -> int | None:
    """Milliseconds since the epoch of a datetime / ISO string, as ``new Date(x).getTime()`` would give."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    return to_millis(value)


def current_session(ctx: ConditionContext) -> Mapping[str, Any] | None:
    """The session the execution is attached to (§6.3 ``session``)."""
    return ctx.session


def _sessions(ctx: ConditionContext) -> list[Mapping[str, Any]]:
    sessions = ctx.guest.get("sessions")
    return [s for s in sessions if isinstance(s, Mapping)] if isinstance(sessions, list) else []


def all_sessions(ctx: ConditionContext) -> list[Mapping[str, Any]]:
    """The guest's sessions (newest first) with the current session prepended when the list lacks it."""
    sessions = _sessions(ctx)
    current = ctx.session
    if current is not None and not any(s.get("ref") == current.get("ref") for s in sessions):
        return [current, *sessions]
    return sessions


def other_sessions(ctx: ConditionContext) -> list[Mapping[str, Any]]:
    """The guest's sessions other than the current one (newest first); without a current session, all but [0]."""
    sessions = _sessions(ctx)
    current = ctx.session
    if current is None:
        return sessions[1:]
    return [s for s in sessions if s.get("ref") != current.get("ref")]


def events_of(session: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """A session's events (chronological); [] when absent."""
    events = session.get("events") if session is not None else None
    return [e for e in events if isinstance(e, Mapping)] if isinstance(events, list) else []


def lines(value: Any) -> Sequence[Any]:
    """A list value, or [] when the value is not a list."""
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class LocalTime:
    """The injected clock in the tenant time zone."""

    year: int
    month: int
    day: int
    weekday: str
    hour: int
    minute: int


_WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


def local_time(ctx: ConditionContext) -> LocalTime:
    """``ctx.now`` in ``ctx.timezone`` (seconds ignored, as the JS twins use Intl with minute precision)."""
    local = ctx.now.astimezone(ZoneInfo(ctx.timezone))
    return LocalTime(local.year, local.month, local.day, _WEEKDAYS[local.weekday()], local.hour, local.minute)


def classify_device(user_agent: str) -> str:
    """``tablet``, ``mobile`` or ``desktop`` from a User-Agent string (small built-in classifier)."""
    if _TABLET.search(user_agent) or (
        re.search("android", user_agent, re.IGNORECASE) and "mobile" not in user_agent.lower()
    ):
        return "tablet"
    if _MOBILE.search(user_agent):
        return "mobile"
    return "desktop"


def classify_os(user_agent: str) -> str:
    """Operating system family from a User-Agent string (``Other`` when unknown)."""
    for pattern, name in _OS_RULES:
        if pattern.search(user_agent):
            return name
    return "Other"


def user_agent(ctx: ConditionContext) -> str | None:
    """The request's ``user-agent`` header, if any."""
    headers = ctx.request.get("headers")
    value = headers.get("user-agent") if isinstance(headers, Mapping) else None
    return value if isinstance(value, str) and value else None
