"""Batch ``delete`` / ``gdpr_delete`` records (spec cdp.md §10.7): guests and orders.

A guest in an OPEN session cannot be deleted (``403 Action not allowed``, §10.6).

A guest ``delete`` removes the profile with its sessions and events but keeps its orders:
they are detached from the guest (their guest and contact links cleared) before the guest is
scheduled for purge, so the purge finds no order of it. ``gdpr_delete`` purges the orders
and their items too. Both go through ``guests.deletion.schedule``: the guest disappears at
once, is audited, and the worker's ``guest.purge`` job deletes the rows.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import Clock
from innkeeper.guests import batch_import as guests
from innkeeper.guests import deletion
from innkeeper.guests import service as guest_service
from innkeeper.guests.batch_import import IdentityRules, RecordRejected
from innkeeper.orders import batch_import as orders
from innkeeper.sessions import service as sessions

GUEST_NOT_FOUND = "Guest not found"
ACTION_NOT_ALLOWED = "Action not allowed"
ORDER_NOT_FOUND = "Order not found"


async def delete_guest(
    session: AsyncSession,
    data: guests.GuestInput,
    *,
    gdpr: bool,
    rules: IdentityRules,
    actor: str,
    clock: Clock,
) -> int:
    """Delete the oldest guest the record matches; returns how many live guests matched."""
    matches = await guests.delete_candidates(session, data, rules=rules)
    if not matches:
        raise RecordRejected("404", GUEST_NOT_FOUND)
    target = matches[0]
    if await sessions.has_open_session(session, target.ref):
        # Sitecore refuses to delete a guest who is browsing right now (spec §10.6).
        raise RecordRejected("403", ACTION_NOT_ALLOWED)
    if not gdpr:
        await orders.detach_guests(session, await guest_service.purge_family(session, target.ref))
    await deletion.schedule(session, target.ref, actor=actor, clock=clock)
    return len(matches)


async def delete_order(session: AsyncSession, reference_id: str) -> None:
    """Delete the order with this ``referenceId`` with its items, contact and extensions."""
    if not await orders.delete_order(session, reference_id):
        raise RecordRejected("404", ORDER_NOT_FOUND)
