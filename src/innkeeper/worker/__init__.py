"""Background jobs: run in-process by `serve` or alone by `innkeeper worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.connections import service as connections
from innkeeper.core import jobs
from innkeeper.core.clock import Clock
from innkeeper.core.db import in_transaction
from innkeeper.core.errors import InnkeeperError
from innkeeper.core.runtime import Runtime
from innkeeper.personalize.experiences import service as flows
from innkeeper.sessions import service as sessions
from innkeeper.triggers import tasks as trigger_tasks

log = logging.getLogger(__name__)
# Sessions closed per sweeper transaction. The sweep is set-based, so a batch costs a few statements
# whatever its size; large batches mean few commits (on SQLite each rewrites the same random-key index
# pages). A backlog of 5,000 holds SQLite's write lock for a fraction of a second; a normal tick is small.
SWEEP_BATCH = 5000
SWEEP_LANES = 2

JobHandler = Callable[[AsyncSession, dict[str, Any], Clock], Awaitable[None]]
# kind -> handler. A handler runs in one transaction with the job's completion, and must be
# safe to run twice (a worker can die after the work and before the commit).
HANDLERS: dict[str, JobHandler] = {}


def handles(kind: str) -> Callable[[JobHandler], JobHandler]:
    """Register the handler of a job kind."""

    def register(handler: JobHandler) -> JobHandler:
        HANDLERS[kind] = handler
        return handler

    return register


async def run_jobs_once(runtime: Runtime, *, limit: int = 100) -> int:
    """Run due jobs (at most ``limit``); returns how many were attempted."""
    attempted = 0
    while attempted < limit:

        async def take(session: AsyncSession) -> tuple[int, str, dict[str, Any]] | None:
            job = await jobs.lease(session, now=runtime.clock.now())
            return None if job is None else (job.id, job.kind, dict(job.payload))

        taken = await in_transaction(runtime.sessions, take)
        if taken is None:
            return attempted
        attempted += 1
        await _run_one(runtime, *taken)
    return attempted


async def _run_one(runtime: Runtime, job_id: int, kind: str, payload: dict[str, Any]) -> None:
    handler = HANDLERS.get(kind)

    async def work(session: AsyncSession) -> None:
        if handler is None:
            raise UnknownJob(f"no handler for job kind {kind!r}")
        await handler(session, payload, runtime.clock)
        job = await jobs.get(session, job_id)
        if job is not None:
            jobs.finish(job, now=runtime.clock.now())

    try:
        await in_transaction(runtime.sessions, work)
    except (DBAPIError, InnkeeperError) as exc:
        log.warning("job %d (%s) failed: %s; will retry", job_id, kind, type(exc).__name__)
        await _retry_later(runtime, job_id, f"{type(exc).__name__}: {exc}"[:500])
    except Exception as exc:  # a bug in one job must not stop every other job
        # Fail this job loudly (traceback in the log, error on the row, backoff) and go on.
        log.exception("job %d (%s) crashed; will retry with backoff", job_id, kind)
        await _retry_later(runtime, job_id, f"{type(exc).__name__}: {exc}"[:500])


async def _retry_later(runtime: Runtime, job_id: int, error: str) -> None:
    async def fail(session: AsyncSession) -> None:
        job = await jobs.get(session, job_id)
        if job is not None:
            jobs.retry_later(job, error, now=runtime.clock.now())

    await in_transaction(runtime.sessions, fail)


class UnknownJob(InnkeeperError):
    """A job of a kind no handler is registered for."""

    code = "unknown_job"


async def sweep_once(runtime: Runtime) -> int:
    """Close every session past its timeout, in batches, after moving the next look of the active ones that
    were due for one (``sessions.reschedule_sweeps``); returns how many were closed.

    On PostgreSQL SWEEP_LANES transactions run side by side (each batch locks its rows with SKIP LOCKED,
    so the lanes never take the same session) and the database works on two batches at once; SQLite has
    one writer, so one lane.
    """
    batch = SWEEP_BATCH  # read once: every lane stops on a batch shorter than this

    async def reschedule(session: AsyncSession) -> int:
        return await sessions.reschedule_sweeps(session, clock=runtime.clock)

    # Once per round, not per batch: the batches then walk ix_sessions_open_sweep over expired sessions only.
    await in_transaction(runtime.sessions, reschedule)

    async def work(session: AsyncSession) -> int:
        return await sessions.sweep(session, clock=runtime.clock, limit=batch)

    async def lane() -> int:
        total = 0
        while True:
            closed = await in_transaction(runtime.sessions, work)
            total += closed
            if closed < batch:
                return total

    lanes = SWEEP_LANES if runtime.engine.dialect.name == "postgresql" else 1
    if lanes == 1:
        return await lane()
    return sum(await asyncio.gather(*(lane() for _ in range(lanes))))


async def schedule_once(runtime: Runtime) -> int:
    """Flip scheduled flows to LIVE at their start and to COMPLETED at their end."""

    async def work(session: AsyncSession) -> int:
        return await flows.apply_schedules(session, clock=runtime.clock)

    return await in_transaction(runtime.sessions, work)


async def run(runtime: Runtime, stop: asyncio.Event) -> None:
    """Run the periodic jobs until ``stop`` is set."""
    interval = runtime.settings.sweep_interval_seconds
    outbound = connections.Outbound.from_settings(runtime.settings, clock=runtime.clock)
    log.info("worker started (sweep every %.1fs)", interval)
    while not stop.is_set():
        try:
            closed = await sweep_once(runtime)
            if closed:
                log.info("sweeper closed %d sessions", closed)
            if await schedule_once(runtime):
                log.info("flow schedules applied")
            triggered = await trigger_tasks.run_jobs_once(runtime)
            if triggered:
                log.info("ran %d trigger jobs", triggered)
            delivered = await trigger_tasks.deliver_once(runtime, outbound)
            if delivered:
                log.info("made %d delivery attempts", delivered)
            ran = await run_jobs_once(runtime)
            if ran:
                log.info("worker ran %d jobs", ran)
        except (OperationalError, DBAPIError) as exc:
            # The database is unreachable or busy: nothing is lost, try again next tick.
            log.warning("sweeper could not run: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    log.info("worker stopped")


# Job handlers register themselves with @handles when imported.
from innkeeper.batch import tasks as batch_tasks  # noqa: E402, F401
from innkeeper.worker import purge as purge  # noqa: E402
