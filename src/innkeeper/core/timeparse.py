"""Lenient ISO 8601 input parsing (date, short date-time, full date-time)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_iso(value: str) -> datetime | None:
    """Parse ``YYYY-MM-DD``, ``YYYY-MM-DDThh:mm`` or a full ISO date-time; naive means UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
