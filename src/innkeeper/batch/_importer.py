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
import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.batch._reader import UnreadableArchive, is_gzip, lines
from innkeeper.batch._records import Context, apply_chunk, read_chunk
from innkeeper.batch.models import Batch, BatchError
from innkeeper.batch.repository import BatchRepository
from innkeeper.core import jobs
from innkeeper.core.clock import Clock
from innkeeper.core.config import Settings
from innkeeper.core.ids import new_ref
from innkeeper.guests.batch_import import IdentityRules
from innkeeper.tenant import service as tenant

log = logging.getLogger(__name__)

IMPORT_JOB = "batch.import"
# Allocations between the garbage collector's young passes while a batch imports (CPython's default: 700).
# A chunk allocates millions of short-lived objects; at 700 the collector ran so often (and promoted so
# much into full passes) that it took ~25% of an import's CPU.
IMPORT_GC_THRESHOLD = 10_000
# ... or more with larger chunks: a chunk keeps ~10-20 container objects per line alive until it ends
# (parsed lines, new rows, caches), and the next chunk, read ahead meanwhile, as many again. Below that,
# young passes ran several times per chunk, each walking (and promoting) all of them: a 5 MB file at
# 2,000 lines per chunk took 170 passes (~8% of the CPU) with 10,000, and 1-2 passes with 50 per line.
# Cyclic garbage is still collected, only later.
IMPORT_GC_OBJECTS_PER_LINE = 50


# Lines per chunk transaction when INNKEEPER_BATCH_CHUNK_LINES is 0 (the default). On SQLite a chunk's transaction
# holds the only writer (the Stream API waits for it); on PostgreSQL each chunk's round trips and COMMIT are what
# bigger chunks save (the 50 MB file: 95 s at 2,000 lines, 74 s at 5,000, 66 s at 10,000; peak RSS 167, 205, 255 MB).
SQLITE_CHUNK_LINES = 2_000
POSTGRES_CHUNK_LINES = 10_000


def default_chunk_lines(database_url: str) -> int:
    """The chunk size for this database when none is set."""
    return POSTGRES_CHUNK_LINES if make_url(database_url).get_backend_name() == "postgresql" else SQLITE_CHUNK_LINES


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """How a worker imports a batch; carried in the job so API and worker agree on the file."""

    data_dir: str
    chunk_lines: int = 500
    lease_seconds: float = 60.0
    chunk_delay_seconds: float = 0.0
    log_info: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ImportOptions:
        return cls(
            data_dir=str(Path(settings.data_dir).resolve()),
            chunk_lines=max(1, settings.batch_chunk_lines or default_chunk_lines(settings.database_url)),
            lease_seconds=max(1.0, settings.batch_lease_seconds),
            chunk_delay_seconds=max(0.0, settings.batch_chunk_delay_seconds),
            log_info=settings.batch_log_info,
        )

    def payload(self, ref: str) -> dict[str, Any]:
        return {
            "ref": ref,
            "dataDir": self.data_dir,
            "chunkLines": self.chunk_lines,
            "leaseSeconds": self.lease_seconds,
            "chunkDelaySeconds": self.chunk_delay_seconds,
            "logInfo": self.log_info,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ImportOptions:
        return cls(
            data_dir=str(payload["dataDir"]),
            chunk_lines=int(payload.get("chunkLines", 500)),
            lease_seconds=float(payload.get("leaseSeconds", 60.0)),
            chunk_delay_seconds=float(payload.get("chunkDelaySeconds", 0.0)),
            log_info=bool(payload.get("logInfo", False)),
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
    context = Context(
        rules=rules,
        client_key=settings.client_key,
        batch_ref=ref,
        log_info=options.log_info,
        clock=clock,
    )
    await session.commit()
    with _fewer_collections(max(IMPORT_GC_THRESHOLD, IMPORT_GC_OBJECTS_PER_LINE * options.chunk_lines)):
        finished = await _import_chunks(
            session, ref, token, path, progress, context=context, options=options, clock=clock
        )
    if finished:
        path.unlink(missing_ok=True)


_saved_thresholds: list[tuple[int, int, int]] = []  # the thresholds before the first running import


@contextmanager
def _fewer_collections(young: int) -> Iterator[None]:
    """Raise the collector's young threshold to ``young`` while any import runs (the first one's)."""
    if not _saved_thresholds:
        threshold = gc.get_threshold()
        gc.set_threshold(max(threshold[0], young), *threshold[1:])
        _saved_thresholds.append(threshold)
    else:
        _saved_thresholds.append(_saved_thresholds[0])
    try:
        yield
    finally:
        threshold = _saved_thresholds.pop()
        if not _saved_thresholds:
            gc.set_threshold(*threshold)


async def _import_chunks(
    session: AsyncSession,
    ref: str,
    token: str,
    path: Path,
    progress: _Progress,
    *,
    context: Context,
    options: ImportOptions,
    clock: Clock,
) -> bool:
    """Apply the file's chunks from ``progress.lines_done`` on, one transaction each; True once finished.

    The next chunk is read and parsed by a task of its own while this one is applied: it runs
    whenever the chunk waits for the database (PostgreSQL's answers, SQLite's commit), so the
    parsing mostly costs no wall time. It only ever reads ahead one chunk.
    """
    repo = BatchRepository(session)
    lease = timedelta(seconds=options.lease_seconds)
    reader = lines(path, skip=progress.lines_done)
    ahead = asyncio.create_task(read_chunk(reader, options.chunk_lines))
    try:
        while True:
            try:
                parsed = await ahead
            except UnreadableArchive:
                await _finish(session, ref, token, progress, failure="The archive could not be read", clock=clock)
                return False
            if parsed.last_line is not None:
                ahead = asyncio.create_task(read_chunk(reader, options.chunk_lines))
            batch = await repo.get(ref, for_update=True)
            if batch is None or batch.lease_token != token or batch.lines_done != progress.lines_done:
                log.warning("batch %s: lease lost, another worker continues", ref)
                await session.rollback()
                return False
            if parsed.last_line is None:
                await session.rollback()
                await _finish(session, ref, token, progress, failure=None, clock=clock)
                return True
            await repo.plan_each_statement()
            for outcome in await apply_chunk(session, parsed, context=context):
                progress.total += 1
                if outcome.ok:
                    progress.succeeded += 1
                else:
                    progress.failed += 1
                if outcome.entry is not None:
                    entry_ref, code, message = outcome.entry
                    repo.add(
                        BatchError(batch_ref=ref, line=outcome.line, record_ref=entry_ref, code=code, message=message)
                    )
            progress.lines_done = parsed.last_line
            now = clock.now()
            batch = await repo.get(ref)
            assert batch is not None
            progress.store(batch, now)
            batch.lease_until = now + lease
            await session.commit()
            await asyncio.sleep(options.chunk_delay_seconds)
    finally:
        ahead.cancel()  # a chunk read ahead for nothing (no-op once it is done)
        ahead.add_done_callback(_discard)
        reader.close()


def _discard(task: asyncio.Task[Any]) -> None:
    """Retrieve an unused read-ahead's outcome, so an error in it is not reported as unhandled."""
    if not task.cancelled():
        task.exception()


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
