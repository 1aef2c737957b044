"""Triggered flows (spec personalize.md §9.2–9.3).

1. A CDP domain event (session closed, order created, guest created, event ingested) is published
   in the transaction that caused it; ``on_*`` handlers insert one ``TriggerJob`` per LIVE
   triggered flow whose trigger matches, unique per (flow, trigger type, entity).
2. ``run_job`` runs one due job in one transaction that holds the job's row lock: cancellation
   (converted meanwhile), cool-down, trigger logic, audience, variant, render, consent and
   suppression, then one ``Delivery`` row and the execution row. A worker killed mid-run rolls
   back and the job runs again; the delivery's unique key keeps it to one message per cause.
3. ``deliver`` sends leased deliveries through their connection with retries and back-off;
   permanent failures and exhausted retries end as ``FAILED`` (the dead letter).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import events
from innkeeper.core.clock import Clock
from innkeeper.core.errors import Conflict
from innkeeper.core.ids import new_ref
from innkeeper.personalize.experiences import triggered
from innkeeper.personalize.experiences.definitions import Trigger, trigger_of
from innkeeper.triggers.models import Delivery, EmailSuppression
from innkeeper.triggers.repository import TriggerRepository

log = logging.getLogger(__name__)

_TRIGGERS_KEY = "innkeeper.triggers.live"
# Back-off after attempt n (seconds): 1 min, 5 min, 15 min, 1 h, 3 h, 6 h; the 7th failure is final.
BACKOFF = (60, 300, 900, 3600, 10_800, 21_600)
MAX_ATTEMPTS = len(BACKOFF) + 1
LEASE = timedelta(minutes=2)


# --- 1. causes → jobs -----------------------------------------------------------------------


async def _matching(session: AsyncSession, trigger_type: str) -> list[tuple[str, Trigger]]:
    """LIVE triggered flows for this trigger type. Read once per unit of work: the sweeper closes
    hundreds of sessions in one transaction and must not query the flows for each of them."""
    triggers: list[tuple[str, Trigger]] | None = session.info.get(_TRIGGERS_KEY)
    if triggers is None:
        triggers = []
        for flow in await triggered.live_triggered_flows(session):
            trigger = trigger_of(flow.document)
            if trigger is not None:
                triggers.append((flow.ref, trigger))
        session.info[_TRIGGERS_KEY] = triggers
    return [(ref, trigger) for ref, trigger in triggers if trigger.type == trigger_type]


@dataclass(frozen=True, slots=True)
class Cause:
    """One entity that may fire triggered flows: a closed session, an order, a guest, an event."""

    entity_ref: str
    guest_ref: str | None
    message: dict[str, Any]
    occurred_at: datetime
    event_type: str | None = None


async def schedule(
    session: AsyncSession,
    trigger_type: str,
    *,
    entity_ref: str,
    guest_ref: str | None,
    message: dict[str, Any],
    occurred_at: datetime,
    event_type: str | None = None,
) -> int:
    """Insert a job for every matching LIVE triggered flow; returns how many were new."""
    cause = Cause(entity_ref, guest_ref, message, occurred_at, event_type)
    return await schedule_many(session, trigger_type, [cause])


async def schedule_many(session: AsyncSession, trigger_type: str, causes: Sequence[Cause]) -> int:
    """:func:`schedule` for many causes at once (the sweeper closes sessions in batches): one multi-row
    insert that skips the causes a flow already has a job for (the unique key on flow, trigger type and
    entity; no reads, so no plan that depends on how fresh the table's statistics are)."""
    if not causes:
        return 0
    matching = await _matching(session, trigger_type)
    if not matching:
        return 0
    rows: list[dict[str, Any]] = []
    for flow_ref, trigger in matching:
        seen: set[str] = set()
        for cause in causes:
            if trigger_type == "CUSTOM_EVENT" and (cause.event_type or "").upper() not in trigger.event_types:
                continue
            if cause.entity_ref in seen:
                continue
            seen.add(cause.entity_ref)
            rows.append(
                {
                    "ref": new_ref(),
                    "flow_ref": flow_ref,
                    "trigger_type": trigger_type,
                    "entity_ref": cause.entity_ref,
                    "guest_ref": cause.guest_ref,
                    "message": cause.message,
                    "occurred_at": cause.occurred_at,
                    "run_at": cause.occurred_at + timedelta(minutes=trigger.delay_minutes),
                    "status": "PENDING",
                    "attempts": 0,
                    "created_at": cause.occurred_at,
                }
            )
    return await TriggerRepository(session).insert_new_jobs(rows)


@events.subscribe_many(events.SessionClosed)
async def on_sessions_closed(session: AsyncSession, closed: Sequence[events.SessionClosed]) -> None:
    """SESSION_CLOSED for every closed session; ABANDONED_CART for tracked, identified abandoned carts."""
    if not await _matching(session, "SESSION_CLOSED") and not await _matching(session, "ABANDONED_CART"):
        return  # no LIVE flow listens: nothing to build for a sweep of thousands
    causes = [
        Cause(
            item.session_ref,
            item.guest_ref,
            {"ref": item.session_ref, "cartType": item.cart_type, "abandonedRevenue": item.abandoned_revenue},
            item.closed_at,
        )
        for item in closed
    ]
    await schedule_many(session, "SESSION_CLOSED", causes)
    abandoned = [
        cause
        for cause, item in zip(causes, closed, strict=True)
        if item.cart_type == "ABANDONED" and item.identified and item.origin is None
    ]
    await schedule_many(session, "ABANDONED_CART", abandoned)


@events.subscribe(events.OrderCreated)
async def on_order_created(session: AsyncSession, order: events.OrderCreated) -> None:
    await schedule(
        session,
        "ORDER_CREATED",
        entity_ref=order.order_ref,
        guest_ref=order.guest_ref,
        message={"ref": order.order_ref, "referenceId": order.reference_id, "price": order.price},
        occurred_at=order.created_at,
    )


@events.subscribe(events.GuestCreated)
async def on_guest_created(session: AsyncSession, guest: events.GuestCreated) -> None:
    await schedule(
        session,
        "GUEST_CREATED",
        entity_ref=guest.guest_ref,
        guest_ref=guest.guest_ref,
        message={"ref": guest.guest_ref, "guestType": guest.guest_type},
        occurred_at=guest.created_at,
    )


@events.subscribe(events.EventIngested)
async def on_event_ingested(session: AsyncSession, event: events.EventIngested) -> None:
    await schedule(
        session,
        "CUSTOM_EVENT",
        entity_ref=event.event_ref,
        guest_ref=event.guest_ref,
        message={"ref": event.event_ref, "type": event.type, "sessionRef": event.session_ref},
        occurred_at=event.created_at,
        event_type=event.type,
    )


# --- 2. deliveries ---------------------------------------------------------------------------


def recipients_of(body: str) -> list[str]:
    """The ``to``/``cc``/``bcc`` addresses of a rendered SMTP_EMAIL body (lower-cased)."""
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return []
    if not isinstance(data, dict):
        return []
    found: list[str] = []
    for key in ("to", "cc", "bcc"):
        value = data.get(key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str) and item.strip():
                address = item.strip()
                if "<" in address and address.endswith(">"):
                    address = address[address.rindex("<") + 1 : -1]
                found.append(address.lower())
    return found


async def is_suppressed(session: AsyncSession, addresses: list[str]) -> bool:
    repo = TriggerRepository(session)
    for address in addresses:
        if await repo.suppressed(address):
            return True
    return False


def new_delivery(
    *,
    key: str,
    flow_ref: str,
    job_ref: str,
    execution_ref: str,
    variant_ref: str | None,
    connection_ref: str,
    guest_ref: str | None,
    recipient: str | None,
    body: str,
    headers: list[Any],
    now: datetime,
) -> Delivery:
    return Delivery(
        ref=new_ref(),
        idempotency_key=key[:300],
        flow_ref=flow_ref,
        job_ref=job_ref,
        execution_ref=execution_ref,
        variant_ref=variant_ref,
        connection_ref=connection_ref,
        guest_ref=guest_ref,
        recipient=recipient[:320] if recipient else None,
        body=body,
        headers=headers,
        status="PENDING",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


async def lease_deliveries(
    session: AsyncSession, *, clock: Clock, lease: timedelta = LEASE, limit: int = 20
) -> list[Delivery]:
    """Take due deliveries for this worker: SENDING with a lease, committed by the caller before sending."""
    now = clock.now()
    rows = await TriggerRepository(session).lease_deliveries(now, limit)
    for row in rows:
        row.status = "SENDING"
        row.attempts += 1
        row.lease_until = now + lease
    return rows


async def record_attempt(
    session: AsyncSession,
    ref: str,
    *,
    attempt: int,
    outcome: str,
    reason: str | None,
    status_code: int | None,
    excerpt: str | None,
    retry_after: float | None,
    clock: Clock,
) -> Delivery | None:
    """Store how an attempt ended: SENT, RETRYING with back-off, FAILED (dead letter) or SKIPPED."""
    row = await TriggerRepository(session).delivery(ref, for_update=True)
    if row is None or row.status != "SENDING" or row.attempts != attempt:
        # Another worker took this delivery after our lease ran out; its result is the one that counts.
        return row
    now = clock.now()
    row.lease_until = None
    row.response_status = status_code
    row.response_excerpt = excerpt[:4096] if excerpt else None
    row.last_error = reason[:500] if reason and outcome != "sent" else None
    if outcome == "sent":
        row.status, row.sent_at = "SENT", now
    elif outcome == "skipped":
        row.status = "SKIPPED"
    elif outcome == "retryable" and row.attempts < MAX_ATTEMPTS:
        wait = BACKOFF[min(row.attempts, len(BACKOFF)) - 1]
        if retry_after is not None:
            wait = max(wait, int(retry_after))
        row.status, row.next_attempt_at = "RETRYING", now + timedelta(seconds=wait)
    else:
        row.status = "FAILED"
        if outcome == "retryable":
            row.last_error = f"gave up after {row.attempts} attempts: {reason or 'error'}"[:500]
    return row


async def list_deliveries(
    session: AsyncSession, *, status: str | None, offset: int, limit: int
) -> tuple[list[Delivery], int]:
    return await TriggerRepository(session).deliveries(status=status, offset=offset, limit=limit)


async def get_delivery(session: AsyncSession, ref: str) -> Delivery | None:
    return await TriggerRepository(session).delivery(ref)


async def resend(session: AsyncSession, ref: str, *, clock: Clock) -> Delivery | None:
    """A FAILED delivery goes back to the queue (the portal's "Resend"); other statuses are a conflict."""
    row = await TriggerRepository(session).delivery(ref, for_update=True)
    if row is None:
        return None
    if row.status != "FAILED":
        raise Conflict("Conflict", developer_message=f"only FAILED deliveries can be resent (this one is {row.status})")
    row.status, row.attempts, row.next_attempt_at, row.last_error = "PENDING", 0, clock.now(), None
    return row


# --- suppression list --------------------------------------------------------------------------


async def suppress(session: AsyncSession, email: str, *, reason: str, clock: Clock) -> EmailSuppression:
    repo = TriggerRepository(session)
    existing = await repo.suppression(email)
    if existing is not None:
        return existing
    row = EmailSuppression(email=email.strip().lower()[:320], reason=reason[:100], created_at=clock.now())
    repo.add(row)
    await session.flush()
    return row


async def unsuppress(session: AsyncSession, email: str) -> bool:
    repo = TriggerRepository(session)
    row = await repo.suppression(email)
    if row is None:
        return False
    await repo.remove(row)
    return True


async def suppressions(session: AsyncSession, *, offset: int, limit: int) -> list[EmailSuppression]:
    return await TriggerRepository(session).suppressions(offset=offset, limit=limit)
