"""In-process domain events: a lower domain publishes, a higher one subscribes.

Handlers run in the publisher's transaction (they receive its session), so whatever they
change commits or rolls back with the cause.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

E = TypeVar("E")
Handler = Callable[[AsyncSession, Any], Awaitable[None]]
_handlers: dict[type[Any], list[Handler]] = defaultdict(list)


def subscribe(
    event_type: type[E],
) -> Callable[[Callable[[AsyncSession, E], Awaitable[None]]], Callable[[AsyncSession, E], Awaitable[None]]]:
    """Register a handler for ``event_type`` (used as a decorator at import time)."""

    def register(handler: Callable[[AsyncSession, E], Awaitable[None]]) -> Callable[[AsyncSession, E], Awaitable[None]]:
        if handler not in _handlers[event_type]:
            _handlers[event_type].append(handler)
        return handler

    return register


async def publish(session: AsyncSession, event: object) -> None:
    """Run every handler subscribed to the event's type, in subscription order."""
    for handler in _handlers.get(type(event), ()):
        await handler(session, event)


@dataclass(frozen=True, slots=True)
class PointOfSaleRetimed:
    """A point of sale's session timeout changed."""

    name: str
    timeout_minutes: int


@dataclass(frozen=True, slots=True)
class GuestMerged:
    """Identity resolution merged guest ``source`` into guest ``into`` (the source is retired)."""

    source: str
    into: str
