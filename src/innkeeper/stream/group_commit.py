"""Group commit: the Stream API's concurrent events share transactions, each answered after its commit.

One ``ingest`` per transaction pays a BEGIN, a COMMIT (a WAL fsync on SQLite, a round trip and a WAL
flush on PostgreSQL) and a connection checkout per event. Here the events of one process queue up
while a batch is being written; the next batch takes all of them (up to ``max_batch``) in one
transaction, and every caller is answered only once that transaction has committed: "an
acknowledged event is durable" holds exactly as before.

Inside the transaction, the batch's common events (a VIEW, ADD… of a known browser in its open
session, or one that opens it) are applied together by ``service.ingest_batch``: a handful of
statements for the whole batch instead of five or six per event. Every other event (identity,
checkout, custom types, a timed-out session, errors…) then goes through ``service.ingest`` in a
SAVEPOINT of its own. A browser's events take one path or the other, never both, so they keep
their order.

On SQLite a batch of nothing but such common events runs in a lean transaction of its own
(``core.sqlite_fast.lean_transaction``: ``BEGIN IMMEDIATE`` and COMMIT on the pooled connection, every statement
straight on it) instead of SQLAlchemy's session transaction, whose overhead was most of a small batch's CPU; an
event ``ingest_batch`` leaves then runs alone once the batch has committed (its browser had nothing applied in
the batch, so its events keep their order).

There is no timer: an event that arrives when nothing is being written starts a batch of one at
once, so a quiet server adds no latency. Under load (the previous batch held more than one event)
the writer first turns the event loop a few times, microseconds each, so that the requests already
read join the batch; batches grow with the load.

- An event that is refused (a typed domain error: unknown browser, FORCE_CLOSE in production…)
  or fails unexpectedly rolls back its own savepoint and gets its error; the others are unaffected.
- A lost race inside a savepoint (a unique constraint another process won) rolls the savepoint
  back and the event is run again, alone, with ``in_transaction``'s retries.
- If the batched part fails, or the shared transaction is rolled back (a PostgreSQL deadlock or
  serialization failure, SQLite busy at COMMIT, any error before the COMMIT), nothing of it was
  stored or acknowledged: every event of the batch is run again alone, one transaction each, as
  without group commit. A COMMIT that fails otherwise (connection lost) has an unknown outcome:
  each caller gets the error, as a lone request would, and nothing is run twice.
- Events are applied in arrival order, sorted (stably) by browser, and the batched part locks
  every browser of the batch in one statement in ref order, so that two processes writing
  batches lock browser rows in the same order; events of one browser keep their order.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from innkeeper.core.clock import Clock
from innkeeper.core.db import in_transaction, is_retryable
from innkeeper.core.sqlite_fast import lean_transaction
from innkeeper.stream import service

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    ctx: service.StreamContext
    message: Any
    raw: str
    future: asyncio.Future[service.Accepted]
    # What the shared transaction gave it (its refs or its own error); None: run it again alone.
    outcome: service.Accepted | Exception | None = field(default=None)

    def browser(self) -> str:
        browser_id = self.message.get("browser_id") if isinstance(self.message, dict) else None
        return browser_id if isinstance(browser_id, str) else ""


class _RunAlone(Exception):
    """The shared transaction is given up (rolled back): every event of the batch runs alone."""


class GroupCommit:
    """Per process (per event loop): queues events and writes them in shared transactions."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, *, max_batch: int = 64, gather_turns: int = 12
    ) -> None:
        self._sessions = sessions
        self._engine: AsyncEngine = sessions.kw["bind"]
        self._clock = clock
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0
        self.events = 0
        self._last = 0  # size of the previous batch
        self._gather_turns = gather_turns

    async def ingest(self, ctx: service.StreamContext, message: Any, *, raw: str) -> service.Accepted:
        """Store one event; returns once the transaction holding it has committed (or raises its error)."""
        loop = asyncio.get_running_loop()
        item = _Pending(ctx, message, raw, loop.create_future())
        self._pending.append(item)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._write_all())
        # shield: a client that goes away must not cancel the future the writer resolves.
        return await asyncio.shield(item.future)

    async def _write_all(self) -> None:
        while self._pending:
            if self._last > 1:
                await self._gather()
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                await self._write(batch)
            except BaseException as exc:  # never leave a caller waiting
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                log.exception("group commit failed")

    async def _gather(self) -> None:
        """Under load, let the requests already on their way join the next batch: turn the event loop (a
        few microseconds a turn) until the queue is full or has stopped growing for a few turns."""
        still = 0
        for _ in range(self._gather_turns):
            if len(self._pending) >= self._max_batch or still >= 3:
                return
            before = len(self._pending)
            await asyncio.sleep(0)
            still = still + 1 if len(self._pending) == before else 0

    async def _write(self, batch: list[_Pending]) -> None:
        self.batches += 1
        self.events += len(batch)
        self._last = len(batch)
        ordered = sorted(batch, key=_Pending.browser)
        items = [service.Incoming(item.ctx, item.message, item.raw) for item in ordered]
        candidates = service.batch_candidates(items)
        if sum(map(len, candidates[0].values())) == len(items) and await self._lean(ordered, items, candidates):
            await self._settle(batch)
            return
        committing = False
        try:
            async with self._sessions() as session:
                batched = await self._batched(session, items, candidates)
                for item, accepted in zip(ordered, batched, strict=True):
                    item.outcome = accepted if accepted is not None else await self._one(session, item)
                committing = True
                await session.commit()
        except _RunAlone:
            for item in batch:
                item.outcome = None
        except DBAPIError as exc:
            if committing and not is_retryable(exc):
                # The COMMIT's outcome is unknown (a lost connection…): running the events again could
                # store them twice. Each caller gets the error, exactly as a lone request would.
                log.warning(
                    "a shared ingest commit failed (%s); %d events not acknowledged", type(exc).__name__, len(batch)
                )
                for item in batch:
                    item.future.set_exception(exc)
                return
            log.info(
                "a shared ingest transaction was rolled back (%s); its %d events run alone",
                type(exc).__name__,
                len(batch),
            )
            for item in batch:
                item.outcome = None
        await self._settle(batch)

    async def _settle(self, batch: list[_Pending]) -> None:
        """Answer every caller: its refs or its error, or run its event again alone first."""
        for item in batch:
            if item.outcome is None:
                await self._alone(item)
            elif isinstance(item.outcome, Exception):
                item.future.set_exception(item.outcome)
            else:
                item.future.set_result(item.outcome)

    async def _lean(
        self, ordered: list[_Pending], items: list[service.Incoming], candidates: service.Candidates
    ) -> bool:
        """A batch of nothing but common events, on SQLite: ``service.ingest_batch`` in a lean transaction
        (``core.sqlite_fast.lean_transaction``: no SQLAlchemy session transaction, whose overhead is most of a
        small batch's CPU). Sets every item's outcome and returns True; False (nothing done) on other databases.
        An event it leaves (a timed-out session, another guest's…) runs alone once the batch has committed: its
        browser had no other event applied here, so its events keep their order. If the transaction is rolled
        back, every event runs alone; a COMMIT that fails otherwise is every caller's error, as in ``_write``.
        """
        committing = False
        try:
            async with lean_transaction(self._engine) as session:
                if session is None:
                    return False
                results = await service.ingest_batch(session, items, candidates, clock=self._clock)
                committing = True
        except Exception as exc:  # every caller is answered: its event run alone, or the error
            if committing and not (isinstance(exc, DBAPIError) and is_retryable(exc)):
                # The COMMIT's outcome is unknown: running the events again could store them twice.
                log.warning(
                    "a shared ingest commit failed (%s); %d events not acknowledged", type(exc).__name__, len(items)
                )
                for item in ordered:
                    item.outcome = exc
                return True
            if isinstance(exc, DBAPIError):
                log.info(
                    "a lean ingest transaction was rolled back (%s); its %d events run alone",
                    type(exc).__name__,
                    len(items),
                )
            else:
                log.exception("lean batched ingest failed; the batch's events are applied one by one")
            results = [None] * len(items)
        for item, accepted in zip(ordered, results, strict=True):
            item.outcome = accepted
        return True

    async def _batched(
        self, session: AsyncSession, items: list[service.Incoming], candidates: service.Candidates
    ) -> list[service.Accepted | None]:
        """The batch's common events applied together (``service.ingest_batch``); None for each event left to
        ``_one``. No savepoint of its own: if it fails, the whole transaction is dropped and every event of the
        batch runs alone (a bug or a database error, not an event's own refusal: those take ``_one``)."""
        if not candidates[0]:
            return [None] * len(items)
        try:
            return await service.ingest_batch(session, items, candidates, clock=self._clock)
        except DBAPIError:
            raise  # the transaction is rolled back and every event of the batch runs alone
        except Exception as exc:
            log.exception("batched ingest failed; the batch's events are applied one by one")
            raise _RunAlone from exc

    async def _one(self, session: AsyncSession, item: _Pending) -> service.Accepted | Exception | None:
        """One event in its own savepoint: its refs, or the error it alone gets; None to run it again alone."""
        try:
            async with session.begin_nested():
                return await service.ingest(session, item.ctx, item.message, raw=item.raw, clock=self._clock)
        except DBAPIError as exc:
            if not is_retryable(exc):
                raise  # the shared transaction is suspect: every event of the batch runs alone
            return None
        except Exception as exc:  # noqa: BLE001 - its savepoint is rolled back; the caller maps it (4xx/500)
            return exc

    async def _alone(self, item: _Pending) -> None:
        async def work(session: AsyncSession) -> service.Accepted:
            return await service.ingest(session, item.ctx, item.message, raw=item.raw, clock=self._clock)

        try:
            accepted = await in_transaction(self._sessions, work)
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who maps it like any other failure
            item.future.set_exception(exc)
        else:
            item.future.set_result(accepted)
