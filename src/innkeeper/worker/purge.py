"""The ``guest.purge`` job: physically delete a deleted guest and everything that refers to it.

``guests.deletion.schedule`` hid the guest and enqueued this job. The handler deletes, in an
order the foreign keys allow, the rows of every domain (each through its own service), then
stamps the audit entry's ``completed_at`` with the counts (numbers only). It runs in one
transaction with the job's completion and is safe to run twice: a second run finds nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.connections import service as outbox
from innkeeper.core import audit, jobs
from innkeeper.core.clock import Clock
from innkeeper.core.errors import Invalid
from innkeeper.core.ids import is_ref
from innkeeper.guests import service as guests
from innkeeper.orders import service as orders
from innkeeper.sessions import service as sessions
from innkeeper.worker import handles

log = logging.getLogger(__name__)

PURGE_JOB = "guest.purge"


class InvalidPurgeJob(Invalid):
    """A ``guest.purge`` job whose payload names no guest ref and no audit entry."""

    code = "invalid_purge_job"


@handles(PURGE_JOB)
async def purge_guest(session: AsyncSession, payload: dict[str, Any], clock: Clock) -> None:
    """Delete the guest of ``payload["guestRef"]`` everywhere and complete its audit entry."""
    guest_ref, audit_id = payload.get("guestRef"), payload.get("auditId")
    if not isinstance(audit_id, int) or (
        guest_ref is not None and not (isinstance(guest_ref, str) and is_ref(guest_ref))
    ):
        raise InvalidPurgeJob("guest.purge job without a valid guestRef and auditId")
    if guest_ref is None:
        return  # already purged: the ref was scrubbed from this job in the same transaction
    counts = await _purge(session, guest_ref, clock=clock)
    entry = await audit.get(session, audit_id)
    if entry is not None and entry.completed_at is None:
        entry.completed_at = clock.now()
        entry.details = {**(entry.details or {}), "deleted": counts}
    # The job row itself must not keep the ref once the guest is gone.
    await jobs.scrub(session, PURGE_JOB, key="guestRef", value=guest_ref)
    log.info("guest purge %d done: %s", audit_id, counts)


async def _purge(session: AsyncSession, guest_ref: str, *, clock: Clock) -> dict[str, int]:
    family = await guests.purge_family(session, guest_ref)
    counts = {"sessionsAndEvents": 0, "orders": 0, "outbox": 0, "guests": 0, "retiredGuests": len(family) - 1}
    for ref in family:
        counts["sessionsAndEvents"] += await sessions.purge_guest(session, ref)
        counts["orders"] += await orders.purge_guest(session, ref)
        counts["outbox"] += await outbox.purge_guest(session, ref)
    # A browser that also carries another guest's sessions (a shared device) is kept for them.
    shared = await sessions.guests_on_browsers(session, await guests.browser_refs_of(session, family))
    counts["guests"] = await guests.purge_guest(session, guest_ref, keep_browsers=shared, clock=clock)
    return counts
