"""The evaluation context handed to conditions (Python built-ins and custom JavaScript), §5.5 and §6.3."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

__all__ = ["ConditionContext", "iso_ms", "to_millis"]


@dataclass(frozen=True)
class ConditionContext:
    """Everything a condition may read: the §5.5 guest context, the §6.3 request, the injected clock and more.

    ``guest`` is the §5.5 dict (datetimes are tz-aware ``datetime`` objects or ``None``); ``session`` has the
    shape of a ``guest["sessions"][i]`` item; ``event`` is ``{type, createdAt, message}`` for triggered flows;
    ``flow`` is ``{ref, friendlyId, subtype, type}``; ``timezone`` is the tenant's IANA time zone.
    """

    guest: Mapping[str, Any]
    request: Mapping[str, Any]
    now: datetime
    session: Mapping[str, Any] | None = None
    event: Mapping[str, Any] | None = None
    flow: Mapping[str, Any] | None = None
    timezone: str = "UTC"


def iso_ms(value: datetime) -> str:
    """Format a datetime as the ISO string JavaScript produces (``2025-05-14T09:29:00.000Z``, always UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def to_millis(value: Any) -> int | None:
    """Milliseconds since the epoch of a datetime (or ISO string), truncated like ``Date.getTime()``; else None."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return to_millis(parsed)
    return None


def _enc_hook(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"value of type {type(value).__name__} is not JSON serialisable")


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)
# msgspec writes UTC datetimes as "…:SSZ" or "…:SS.ffffffZ"; JavaScript's toISOString() writes "…:SS.mmmZ".
_UTC_DATETIME = re.compile(rb'(?<!\\)"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z"')


def _as_js_iso(match: re.Match[bytes]) -> bytes:
    fraction = (match.group(2) or b"").ljust(3, b"0")[:3]
    return b'"' + match.group(1) + b"." + fraction + b'Z"'


def dumps(value: Any) -> str:
    """Serialise a context value to compact JSON for the JS sandbox (datetimes become ``…SS.mmmZ`` strings).

    Uses msgspec (≈5× faster than ``json`` on a 50 × 50 guest); every UTC timestamp in the output, including a
    string that already was one, is normalised to JavaScript's millisecond ISO format.
    """
    return _UTC_DATETIME.sub(_as_js_iso, _ENCODER.encode(value)).decode("utf-8")


def encode(value: Any) -> str:
    """Serialise a context value to compact JSON as msgspec writes it (UTC datetimes ``…:SS[.ffffff]Z``).

    The sandbox payload goes this way: the isolate normalises its timestamps to ``…SS.mmmZ`` itself before
    parsing (``_runtime.js``, the same rule as :func:`dumps`), where a regular expression costs a fraction of
    what Python's does.
    """
    return _ENCODER.encode(value).decode("utf-8")


def without_alias(session: Any) -> Any:
    """A session item without ``interactions`` when that is its ``events`` list itself and the last key.

    The JS runtime restores the alias (``withAliases``) in the same place, so the events travel once, not twice.
    """
    if (
        type(session) is dict
        and type(session.get("events")) is list
        and session.get("interactions") is session["events"]
        and next(reversed(session)) == "interactions"
    ):
        out = dict(session)
        del out["interactions"]
        return out
    return session


def guest_for_js(guest: Mapping[str, Any], needs: frozenset[str]) -> dict[str, Any]:
    """A shallow copy of the guest without the heavy parts (``sessions``/``orders``) the source does not mention.

    Session items lose their ``interactions`` alias (see :func:`without_alias`).
    """
    out = dict(guest)
    for heavy in ("sessions", "orders"):
        if heavy not in needs:
            out.pop(heavy, None)
    sessions = out.get("sessions")
    if type(sessions) is list:
        out["sessions"] = [without_alias(item) for item in sessions]
    return out
