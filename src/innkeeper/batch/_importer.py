"""The batch import (spec cdp.md §10.6–10.8), run by the worker.

Resumable: lines are applied in chunks, and each chunk commits its records together with
the progress marker (``lines_done``), the counts and its error lines. A worker that dies
mid-chunk loses only the uncommitted chunk, which the next worker applies again from
``lines_done`` — every record lands exactly once.

A worker holds the batch with a lease (``lease_until`` / ``lease_token``) renewed by every
chunk commit. Each claim also queues a follow-up job for when the lease would end, so a
killed worker's batch resumes after ``batch_lease_seconds`` rather than after the job lease.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.batch._reader import UnreadableArchive, is_gzip, lines
from innkeeper.batch.models import Batch, BatchError
from innkeeper.batch.repository import BatchRepository
from innkeeper.core import jobs
from innkeeper.core.clock import Clock
from innkeeper.core.config import Settings
from innkeeper.core.ids import new_ref
from innkeeper.core.timeparse import parse_iso
from innkeeper.guests import batch_import as guests
from innkeeper.guests.batch_import import IdentityRules, RecordRejected, invalid
from innkeeper.orders import batch_import as orders
from innkeeper.sessions import service as sessions
from innkeeper.tenant import service as tenant

log = logging.getLogger(__name__)

IMPORT_JOB = "batch.import"
MODES = frozenset({"insert", "create", "upsert", "merge", "delete", "gdpr_delete"})
SCHEMA_MODES: dict[str, frozenset[str]] = {
    "guest": frozenset({"upsert", "insert", "merge", "create"}),
    "order": frozenset({"upsert", "insert"}),
    "tracking": frozenset({"insert"}),
}
RECORD_KEYS = frozenset({"ref", "schema", "mode", "value"})
PARSE_ERROR = ("400", "Failed to parse import line")
TRACKING_REQUIRED = ("type", "createdAt")


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How a worker imports a batch; carried in the job so API and worker agree on the file."""

    data_dir: str
    chunk_lines: int = 500
    lease_seconds: float = 60.0
    chunk_delay_seconds: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportOptions:
        return cls(
            data_dir=str(Path(settings.data_dir).resolve()),
            chunk_lines=max(1, settings.batch_chunk_lines),
            lease_seconds=max(1.0, settings.batch_lease_seconds),
            chunk_delay_seconds=max(0.0, settings.batch_chunk_delay_seconds),
        )

    def payload(self, ref: str) -> dict[str, Any]:
        return {
            "ref": ref,
            "dataDir": self.data_dir,
            "chunkLines": self.chunk_lines,
            "leaseSeconds": self.lease_seconds,
            "chunkDelaySeconds": self.chunk_delay_seconds,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ImportOptions:
        return cls(
            data_dir=str(payload["dataDir"]),
            chunk_lines=int(payload.get("chunkLines", 500)),
            lease_seconds=float(payload.get("leaseSeconds", 60.0)),
            chunk_delay_seconds=float(payload.get("chunkDelaySeconds", 0.0)),
        )


@dataclass(slots=True)
class _Progress:
    lines_done: int
    total: int
    succeeded: int
    failed: int

    def store(self, batch: Batch, now: datetime) -> None:
        batch.lines_done = self.lines_done
        batch.records_total = self.total
        batch.records_succeeded = self.succeeded
        batch.records_failed = self.failed
        batch.modified_at = now


async def import_batch(session: AsyncSession, ref: str, *, options: ImportOptions, clock: Clock) -> None:
    """Import an uploaded batch, resuming from its progress marker; safe to run any number of times.

    Commits as it goes (one transaction per chunk); the caller's final commit only finishes the job.
    """
    repo = BatchRepository(session)
    batch = await repo.get(ref, for_update=True)
    if batch is None or batch.status not in ("file_uploaded", "processing"):
        return
    now = clock.now()
    lease = timedelta(seconds=options.lease_seconds)
    if batch.status == "processing" and batch.lease_until is not None and batch.lease_until > now:
        # Another worker holds it: look again when its lease would end.
        await jobs.enqueue(session, IMPORT_JOB, options.payload(ref), now=batch.lease_until + timedelta(seconds=1))
        return
    token = new_ref()
    batch.status, batch.lease_token, batch.lease_until, batch.modified_at = "processing", token, now + lease, now
    await jobs.enqueue(session, IMPORT_JOB, options.payload(ref), now=batch.lease_until + timedelta(seconds=1))
    progress = _Progress(batch.lines_done, batch.records_total, batch.records_succeeded, batch.records_failed)
    path = Path(options.data_dir) / "batches" / (batch.file_name or f"{ref}.gz")
    await session.commit()
    log.info("batch %s: importing from line %d", ref, progress.lines_done + 1)

    if not path.exists() or not is_gzip(path):
        await _finish(session, ref, token, progress, failure="The file is not a gzip archive", clock=clock)
        return
    settings = await tenant.get_tenant(session)
    rules = IdentityRules(
        providers=frozenset(str(r.get("provider")) for r in settings.identity_rules) or None,
        email_fallback=settings.email_fallback,
    )
    client_key = settings.client_key
    await session.commit()
    reader = lines(path, skip=progress.lines_done)
    while True:
        try:
            chunk = list(islice(reader, options.chunk_lines))
        except UnreadableArchive:
            await _finish(session, ref, token, progress, failure="The archive could not be read", clock=clock)
            return
        batch = await repo.get(ref, for_update=True)
        if batch is None or batch.lease_token != token or batch.lines_done != progress.lines_done:
            log.warning("batch %s: lease lost, another worker continues", ref)
            await session.rollback()
            return
        if not chunk:
            await session.rollback()
            await _finish(session, ref, token, progress, failure=None, clock=clock)
            path.unlink(missing_ok=True)
            return
        for number, raw in chunk:
            if raw is not None and not raw.strip():
                continue
            progress.total += 1
            error = await _apply_line(session, raw, rules=rules, client_key=client_key, clock=clock)
            if error is None:
                progress.succeeded += 1
            else:
                progress.failed += 1
                repo.add(BatchError(batch_ref=ref, line=number, record_ref=error[0], code=error[1], message=error[2]))
        progress.lines_done = chunk[-1][0]
        now = clock.now()
        batch = await repo.get(ref)
        assert batch is not None
        progress.store(batch, now)
        batch.lease_until = now + lease
        await session.commit()
        await asyncio.sleep(options.chunk_delay_seconds)


async def _finish(
    session: AsyncSession, ref: str, token: str, progress: _Progress, *, failure: str | None, clock: Clock
) -> None:
    batch = await BatchRepository(session).get(ref, for_update=True)
    if batch is None or batch.lease_token != token:
        await session.rollback()
        return
    progress.store(batch, clock.now())
    batch.status = "error" if failure or progress.failed else "success"
    batch.failure = failure
    batch.lease_until = batch.lease_token = None
    await session.commit()
    log.info("batch %s: %s (%d records, %d failed)", ref, batch.status, progress.total, progress.failed)


async def _apply_line(
    session: AsyncSession, raw: bytes | None, *, rules: IdentityRules, client_key: str, clock: Clock
) -> tuple[str, str, str] | None:
    """Apply one line in a savepoint; returns its error-log entry (ref, code, message) or None."""
    if raw is None:
        return ("null", *PARSE_ERROR)
    try:
        record = json.loads(raw)
    except ValueError:
        return ("null", *PARSE_ERROR)
    if not isinstance(record, dict):
        return ("null", *PARSE_ERROR)
    ref = record.get("ref")
    record_ref = ref[:100] if isinstance(ref, str) and ref else "null"
    try:
        async with session.begin_nested():
            await _apply_record(session, record, rules=rules, client_key=client_key, clock=clock)
    except RecordRejected as exc:
        return (record_ref, exc.log_code, exc.message)
    except IntegrityError:
        log.warning("batch record %s: integrity error", record_ref)
        return (record_ref, "500", "Internal server error")
    return None


async def _apply_record(
    session: AsyncSession, record: dict[str, Any], *, rules: IdentityRules, client_key: str, clock: Clock
) -> None:
    for key in record:
        if key not in RECORD_KEYS:
            raise invalid(f"{str(key)[:50]}: undefined attribute")
    for key in ("ref", "schema", "mode", "value"):
        if record.get(key) is None:
            raise invalid(f"{key}: required")
    if not isinstance(record["ref"], str):
        raise invalid("ref: must be a string")
    schema, mode, value = record["schema"], record["mode"], record["value"]
    if schema not in SCHEMA_MODES:
        raise invalid("schema: unknown schema")
    if mode not in MODES or mode not in SCHEMA_MODES[schema]:
        raise RecordRejected("402", "Unsupported mode")
    if not isinstance(value, dict):
        raise invalid("value: must be an object")
    if schema == "guest":
        data = guests.parse_guest(value)
        await guests.apply_guest(session, data, mode=mode, rules=rules, clock=clock)
    elif schema == "order":
        order = orders.parse_order(value, mode=mode)
        contact = guests.parse_guest(order.contact or {}, where="value.contact", extensions=False)
        guest_ref = await guests.resolve_contact(session, contact, rules=rules, clock=clock)
        await orders.apply_order(session, order, mode=mode, guest_ref=guest_ref, clock=clock)
    else:
        await _apply_tracking(session, value, client_key=client_key, clock=clock)


async def _apply_tracking(session: AsyncSession, value: dict[str, Any], *, client_key: str, clock: Clock) -> None:
    """An offline event (spec §10.8 ``tracking``): stored on the guest's timeline, no session, no triggers."""
    for key in TRACKING_REQUIRED:
        if value.get(key) is None:
            raise invalid(f"value.{key}: required")
    event_type = value["type"]
    if not isinstance(event_type, str) or not event_type.strip() or len(event_type) > 100:
        raise invalid("value.type: must be a non-empty string")
    created = parse_iso(value["createdAt"]) if isinstance(value["createdAt"], str) else None
    if created is None:
        raise invalid("value.createdAt: must be an ISO 8601 date-time")
    browser_id, guest_ref = value.get("browser_id"), value.get("guestRef")
    if not isinstance(browser_id, str) and not isinstance(guest_ref, str):
        raise RecordRejected("400", guests.NOT_IDENTIFIED)
    texts = {key: value.get(key) for key in ("channel", "pos", "language", "currency", "page")}
    for key, found in texts.items():
        if found is not None and not isinstance(found, str):
            raise invalid(f"value.{key}: must be a string")
    browser = await guests.browser_for(
        session,
        browser_ref=browser_id if isinstance(browser_id, str) else None,
        guest_ref=guest_ref if isinstance(guest_ref, str) else None,
        clock=clock,
    )
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if "\x00" in raw or "\\u0000" in raw:
        raise invalid("value: must not contain NUL")

    def text(key: str, limit: int) -> str | None:
        found = texts[key]
        return found[:limit] if isinstance(found, str) and found else None

    await sessions.record_event(
        session,
        sessions.Event(
            ref=new_ref(),
            type=event_type.strip(),
            browser_ref=browser.ref,
            guest_ref=browser.guest_ref,
            session_ref=None,
            channel=text("channel", 40) or "OFFLINE",
            point_of_sale=text("pos", 100),
            language=text("language", 8),
            currency=text("currency", 8),
            page=text("page", 2000),
            client_key=client_key,
            created_at=created,
            modified_at=clock.now(),
            processing_status="SUCCESS",
            warnings=[],
            transport="batch",
            user_agent=None,
            client_requested_at=None,
            raw=raw,
        ),
    )
