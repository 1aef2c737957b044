"""In-process domain events: a lower domain publishes, a higher one subscribes.

Handlers run in the publisher's transaction (they receive its session), so whatever they
change commits or rolls back with the cause.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
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


BatchHandler = Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]
_batch_handlers: dict[type[Any], list[BatchHandler]] = defaultdict(list)


def subscribe_many(
    event_type: type[E],
) -> Callable[
    [Callable[[AsyncSession, Sequence[E]], Awaitable[None]]], Callable[[AsyncSession, Sequence[E]], Awaitable[None]]
]:
    """Register a handler that receives a list of ``event_type`` events at once.

    :func:`publish` hands it a list of one; :func:`publish_many` (the sweeper closing a batch of
    sessions) the whole batch, so the handler can do its reads and writes set-based.
    """

    def register(
        handler: Callable[[AsyncSession, Sequence[E]], Awaitable[None]],
    ) -> Callable[[AsyncSession, Sequence[E]], Awaitable[None]]:
        if handler not in _batch_handlers[event_type]:
            _batch_handlers[event_type].append(handler)
        return handler

    return register


async def publish(session: AsyncSession, event: object) -> None:
    """Run every handler subscribed to the event's type, in subscription order."""
    for handler in _handlers.get(type(event), ()):
        await handler(session, event)
    for batch_handler in _batch_handlers.get(type(event), ()):
        await batch_handler(session, [event])


async def publish_many(session: AsyncSession, batch: Sequence[object]) -> None:
    """Publish events of one type together: per-event handlers run for each event in order, then
    every batch handler once with the whole list."""
    if not batch:
        return
    kind = type(batch[0])
    if any(type(event) is not kind for event in batch):
        raise TypeError("publish_many takes events of one type")
    for handler in _handlers.get(kind, ()):
        for event in batch:
            await handler(session, event)
    for batch_handler in _batch_handlers.get(kind, ()):
        await batch_handler(session, batch)


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


@dataclass(frozen=True, slots=True)
class SessionClosed:
    """A session closed (timeout, FORCE_CLOSE, identity switch); published in the closing transaction."""

    session_ref: str
    guest_ref: str
    cart_type: str | None
    abandoned_revenue: float | None
    closed_at: datetime
    identified: bool
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class OrderCreated:
    """An order was created (Stream CHECKOUT / ORDER_CHECKOUT or the Order REST API; never batch imports)."""

    order_ref: str
    guest_ref: str | None
    reference_id: str
    price: float
    created_at: datetime


@dataclass(frozen=True, slots=True)
class GuestCreated:
    """A guest was created (browser/create, Guest REST API; never batch imports)."""

    guest_ref: str
    guest_type: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EventIngested:
    """A Stream event was stored (custom event triggers)."""

    event_ref: str
    type: str
    guest_ref: str
    session_ref: str | None
    created_at: datetime
