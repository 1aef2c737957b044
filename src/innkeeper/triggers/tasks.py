"""Worker steps of triggered flows: run due trigger jobs, then deliver due messages (§9.3)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.connections import service as connections
from innkeeper.core.clock import Clock
from innkeeper.core.db import in_transaction
from innkeeper.core.runtime import Runtime
from innkeeper.guests import service as guests
from innkeeper.orders import service as orders
from innkeeper.personalize.experiences import service as flows
from innkeeper.personalize.experiences import triggered
from innkeeper.personalize.experiences.definitions import trigger_of
from innkeeper.personalize.experiences.errors import FlowNotFound
from innkeeper.triggers import service
from innkeeper.triggers.models import TriggerJob
from innkeeper.triggers.repository import TriggerRepository

log = logging.getLogger(__name__)

JOB_BATCH = 20
MAX_JOB_ATTEMPTS = 3


async def run_jobs_once(runtime: Runtime, *, limit: int = 200) -> int:
    """Run due trigger jobs, each in its own transaction that holds the job's row lock."""
    ran = 0
    while ran < limit:

        async def take(session: AsyncSession) -> list[str]:
            rows = await TriggerRepository(session).lease_jobs(runtime.clock.now(), JOB_BATCH)
            for row in rows:
                row.lease_until = runtime.clock.now() + timedelta(seconds=runtime.settings.delivery_lease_seconds)
                row.attempts += 1
            return [row.ref for row in rows]

        refs = await in_transaction(runtime.sessions, take)
        if not refs:
            return ran
        for ref in refs:
            await _run_job(runtime, ref)
            ran += 1
    return ran


async def _run_job(runtime: Runtime, ref: str) -> None:
    async def work(session: AsyncSession) -> None:
        job = await TriggerRepository(session).job(ref, for_update=True)
        if job is None or job.status != "PENDING":
            return
        job.outcome = await run_job(session, runtime, job)
        job.status, job.finished_at, job.lease_until = "DONE", runtime.clock.now(), None

    try:
        await in_transaction(runtime.sessions, work)
    except Exception as exc:  # a broken job must not stop the others; it is retried, then FAILED
        log.exception("trigger job %s failed", ref)
        error = type(exc).__name__

        async def failed(session: AsyncSession) -> None:
            job = await TriggerRepository(session).job(ref, for_update=True)
            if job is None:
                return
            job.last_error = error
            if job.attempts >= MAX_JOB_ATTEMPTS:
                job.status, job.finished_at = "FAILED", runtime.clock.now()
            job.lease_until = runtime.clock.now() + timedelta(minutes=1)

        await in_transaction(runtime.sessions, failed)


async def run_job(session: AsyncSession, runtime: Runtime, job: TriggerJob) -> str:
    """Decide and render; write the delivery. Returns the job's outcome."""
    clock = runtime.clock
    try:
        flow = await flows.get_flow(session, job.flow_ref)
    except FlowNotFound:
        return "not_found"
    if flow.status != "LIVE" or flow.archived or not flows.in_window(flow, clock.now()):
        return "not_live"
    trigger = trigger_of(flow.document)
    if trigger is None or job.guest_ref is None:
        return "not_eligible"
    guest = await guests.find_live_guest(session, ref=job.guest_ref)
    if guest is None:
        return "no_guest"
    if job.trigger_type == "ABANDONED_CART" and await _converted_since(session, guest.ref, job):
        return "cancelled_converted"
    if trigger.cooldown_hours > 0:
        since = clock.now() - timedelta(hours=trigger.cooldown_hours)
        if await triggered.recent_exposure(session, flow.ref, guest.ref, since=since):
            return "cooldown"
    if _opted_out(await guests.extensions_of(session, guest.ref)) and await _sends_email(session, flow.document):
        return "opted_out"
    message = await triggered.trigger_message(session, job.trigger_type, job.message)
    result = await triggered.run(
        session,
        flow,
        guest,
        trigger_type=job.trigger_type,
        event_message=message,
        occurred_at=job.occurred_at,
        logic=trigger.logic,
        clock=clock,
        number_format=runtime.settings.ftl_number_format,
    )
    if result.outcome != "variant" or result.body is None:
        return result.outcome
    destination = result.destination or {}
    connection_ref = str(destination.get("connectionRef") or "")
    if not connection_ref:
        return "no_destination"
    kind = await connections.kind_of(session, connection_ref)
    recipients = service.recipients_of(result.body) if kind == "SMTP_EMAIL" else []
    if kind == "SMTP_EMAIL" and await service.is_suppressed(session, recipients):
        # Nothing is sent: the execution must not count as an exposure (results, cool-down, attribution).
        await triggered.set_outcome(session, result.execution_ref, "suppressed")
        return "suppressed"
    recipient = ",".join(sorted(recipients)) or None
    key = f"{flow.ref}:{job.trigger_type}:{job.entity_ref}:{recipient or '-'}"
    repo = TriggerRepository(session)
    if await repo.delivery_by_key(key) is not None:
        return "duplicate"
    headers = destination.get("headers") if isinstance(destination.get("headers"), list) else []
    repo.add(
        service.new_delivery(
            key=key,
            flow_ref=flow.ref,
            job_ref=job.ref,
            execution_ref=result.execution_ref,
            variant_ref=result.variant_ref,
            connection_ref=connection_ref,
            guest_ref=guest.ref,
            recipient=recipient,
            body=result.body,
            headers=list(headers or []),
            now=clock.now(),
        )
    )
    return "variant"


async def _sends_email(session: AsyncSession, document: dict[str, object]) -> bool:
    """Any variant of the flow sends through an SMTP_EMAIL connection (consent applies to email only)."""
    for variant in document.get("variants") or []:  # type: ignore[attr-defined]
        destination = variant.get("destination") if isinstance(variant, dict) else None
        if (
            isinstance(destination, dict)
            and destination.get("connectionRef")
            and await connections.kind_of(session, str(destination["connectionRef"])) == "SMTP_EMAIL"
        ):
            return True
    return False


async def _converted_since(session: AsyncSession, guest_ref: str, job: TriggerJob) -> bool:
    """The guest ordered after the cart was abandoned: the reminder is cancelled."""
    for order in await orders.orders_for_guest(session, guest_ref, limit=20):
        if order.ordered_at >= job.occurred_at or (order.created_at and order.created_at >= job.occurred_at):
            return True
    return False


def _opted_out(extensions: Sequence[object]) -> bool:
    """Consent: any guest data extension with ``emailOptOut`` true (or "true") opts the guest out."""
    for row in extensions:
        values = getattr(row, "data", {}) or {}
        flag = values.get("emailOptOut")
        if flag is True or (isinstance(flag, str) and flag.strip().lower() in ("true", "yes", "1")):
            return True
    return False


async def deliver_once(runtime: Runtime, outbound: connections.Outbound, *, limit: int = 100) -> int:
    """Send due deliveries one at a time: lease it (commit), send outside any transaction within the
    lease, record the result only if this worker still holds that attempt."""
    lease_seconds = runtime.settings.delivery_lease_seconds
    # A send must end before its lease does, or another worker could take the row and send it too.
    budget = max(lease_seconds - max(5.0, lease_seconds * 0.1), lease_seconds / 2)
    done = 0
    while done < limit:

        async def take(session: AsyncSession) -> tuple[str, str, str, list[object], int] | None:
            rows = await service.lease_deliveries(
                session, clock=runtime.clock, lease=timedelta(seconds=lease_seconds), limit=1
            )
            return next(((r.ref, r.connection_ref, r.body, list(r.headers or []), r.attempts) for r in rows), None)

        leased = await in_transaction(runtime.sessions, take)
        if leased is None:
            return done
        ref, connection_ref, body, headers, attempt = leased
        rendered = connections.RenderedRequest(
            body=body,
            headers={str(h.get("name")): str(h.get("value")) for h in headers if isinstance(h, dict)},
            idempotency_key=ref,
            attempt=attempt,
        )
        try:
            async with asyncio.timeout(budget):
                result = await connections.deliver(runtime.sessions, connection_ref, rendered, outbound=outbound)
        except TimeoutError:
            result = connections.DeliveryResult("retryable", "the send did not finish within the delivery lease")

        record = functools.partial(_record, ref=ref, attempt=attempt, result=result, clock=runtime.clock)
        await in_transaction(runtime.sessions, record)
        log.info("delivery %s: %s (%s)", ref, result.outcome, result.reason or "ok")
        done += 1
    return done


async def _record(
    session: AsyncSession, *, ref: str, attempt: int, result: connections.DeliveryResult, clock: Clock
) -> None:
    await service.record_attempt(
        session,
        ref,
        attempt=attempt,
        outcome=result.outcome,
        reason=result.reason,
        status_code=result.status_code,
        excerpt=result.response_excerpt,
        retry_after=result.retry_after,
        clock=clock,
    )
