"""The outbox: record a side effect in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.connections.repository import OutboxRepository
from innkeeper.core.clock import Clock


async def enqueue(
    session: AsyncSession,
    topic: str,
    *,
    key: str,
    payload: dict[str, Any],
    clock: Clock,
    guest_ref: str | None = None,
) -> None:
    """Write an outbox message; the same ``key`` is only ever written once.

    ``guest_ref`` names the guest the message is about, so deleting that guest purges it.
    """
    await OutboxRepository(session).insert_once(
        topic=topic, key=key, payload=payload, now=clock.now(), guest_ref=guest_ref
    )


async def pending(session: AsyncSession, *, topic: str | None = None) -> list[dict[str, Any]]:
    """Undelivered messages, oldest first (for workers and inspection)."""
    rows = await OutboxRepository(session).pending(topic)
    return [
        {"id": r.id, "topic": r.topic, "key": r.idempotency_key, "payload": r.payload, "attempts": r.attempts}
        for r in rows
    ]


async def purge_guest(session: AsyncSession, guest_ref: str) -> int:
    """Delete every outbox message about a guest (guest deletion); returns rows deleted."""
    return await OutboxRepository(session).purge_guest(guest_ref)
