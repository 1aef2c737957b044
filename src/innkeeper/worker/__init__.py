"""Background jobs: run in-process by `serve` or alone by `innkeeper worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import in_transaction
from innkeeper.core.runtime import Runtime
from innkeeper.sessions import service as sessions

log = logging.getLogger(__name__)
SWEEP_BATCH = 200


async def sweep_once(runtime: Runtime) -> int:
    """Close every session past its timeout, in batches; returns how many were closed."""
    total = 0
    while True:

        async def work(session: AsyncSession) -> int:
            return await sessions.sweep(session, clock=runtime.clock, limit=SWEEP_BATCH)

        closed = await in_transaction(runtime.sessions, work)
        total += closed
        if closed < SWEEP_BATCH:
            return total


async def run(runtime: Runtime, stop: asyncio.Event) -> None:
    """Run the periodic jobs until ``stop`` is set."""
    interval = runtime.settings.sweep_interval_seconds
    log.info("worker started (sweep every %.1fs)", interval)
    while not stop.is_set():
        try:
            closed = await sweep_once(runtime)
            if closed:
                log.info("sweeper closed %d sessions", closed)
        except (OperationalError, DBAPIError) as exc:
            # The database is unreachable or busy: nothing is lost, try again next tick.
            log.warning("sweeper could not run: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    log.info("worker stopped")
