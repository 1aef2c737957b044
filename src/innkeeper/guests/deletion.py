"""Verifiable guest deletion (spec cdp.md §8.5): hide at once, purge in the worker, audit both.

``schedule`` runs in the request's transaction: the guest, its browsers and its identifiers
disappear from every read at once, an audit entry (which stores only a SHA-256 of the ref)
records who asked, and a ``guest.purge`` job does the physical deletion
(``innkeeper.worker.purge``), stamping the audit entry's ``completed_at`` when done.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import audit, jobs
from innkeeper.core.clock import Clock
from innkeeper.guests import service

ACTION = "guest.delete"
PURGE_JOB = "guest.purge"


async def schedule(session: AsyncSession, guest_ref: str, *, actor: str | None, clock: Clock) -> int:
    """Hide the guest now and enqueue its purge; returns the audit entry id.

    ``actor`` is the API token id (never a person's data). Raises GuestNotFound when the
    guest is unknown, retired or already deleted.
    """
    guest = await service.hide(session, guest_ref, clock=clock)
    now = clock.now()
    entry = await audit.record(session, ACTION, subject=guest.ref, actor=actor, now=now)
    await jobs.enqueue(session, PURGE_JOB, {"guestRef": guest.ref, "auditId": entry.id}, now=now)
    return entry.id
