"""A clock the tests move by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FrozenClock:
    """Time stands still until a test calls ``advance``."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 15, 9, 0, 0, tzinfo=UTC)

    def now(self) -> datetime:
        """The frozen time."""
        return self.current

    def advance(self, **delta: float) -> datetime:
        """Move time forward by a timedelta's keyword arguments (minutes=21, …)."""
        self.current += timedelta(**delta)
        return self.current
