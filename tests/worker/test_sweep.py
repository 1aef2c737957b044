"""The sweeper (``innkeeper.worker.sweep_once``): batches, idempotence, races with ingestion."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import cast

import httpx
import pytest
from sqlalchemy import Table, text

from innkeeper import worker
from innkeeper.core.runtime import Runtime
from innkeeper.sessions.models import Session
from innkeeper.worker import SWEEP_BATCH, sweep_once
from tests.factories.sessions import browser_sessions, create_pos, outbox, send, update_pos
from tests.factories.stream import create_browser
from tests.support.clock import FrozenClock


async def test_sweep_closes_more_sessions_than_one_batch(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SWEEP_BATCH >= 500  # the worker closes sessions in large set-based batches
    monkeypatch.setattr(worker, "SWEEP_BATCH", 4)  # …made small here to cross batch boundaries cheaply
    browsers = [await create_browser(client) for _ in range(4 * 2 + 3)]
    for b in browsers:
        await send(client, b["ref"])
    clock.advance(minutes=21)

    assert await sweep_once(runtime) == 4 * 2 + 3
    assert await sweep_once(runtime) == 0
    assert len(await outbox(runtime)) == 4 * 2 + 3


async def test_sweep_on_nothing_is_a_no_op(runtime: Runtime, clock: FrozenClock) -> None:
    assert await sweep_once(runtime) == 0
    clock.advance(days=3)
    assert await sweep_once(runtime) == 0
    assert await outbox(runtime) == []


async def test_concurrent_sweeps_close_each_session_once(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    browsers = [await create_browser(client) for _ in range(20)]
    for b in browsers:
        await send(client, b["ref"])
    clock.advance(minutes=30)

    closed = await asyncio.gather(*(sweep_once(runtime) for _ in range(4)))

    assert sum(closed) == 20
    messages = await outbox(runtime)
    assert len(messages) == 20
    assert len({m.payload["sessionRef"] for m in messages}) == 20


async def test_sweep_racing_with_new_events_closes_each_stale_session_exactly_once(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    for round_ in range(3):
        browsers = [await create_browser(client) for _ in range(10)]
        for b in browsers:
            await send(client, b["ref"], page=f"round-{round_}")
        clock.advance(minutes=25)

        await asyncio.gather(sweep_once(runtime), *(send(client, b["ref"], page="back") for b in browsers))

        for b in browsers:
            rows = await browser_sessions(runtime, b["ref"])
            assert [(s.status, s.close_reason) for s in rows] == [("CLOSED", "TIMEOUT"), ("OPEN", None)]
            assert rows[0].ended_at == rows[0].last_activity_at
            assert (rows[1].num_events, rows[1].first_page) == (1, "back")
        refs = [m.payload["sessionRef"] for m in await outbox(runtime)]
        assert len(refs) == len(set(refs)), "a session was reported closed twice"
        closed = {s.ref for b in browsers for s in await browser_sessions(runtime, b["ref"]) if s.status == "CLOSED"}
        assert closed <= set(refs)
        assert len(closed) == 10


# --- sweep_at: the sweeper's index column, which events leave alone (migration 0012) ---------------------------


async def test_an_active_session_is_looked_at_once_per_timeout_and_closed_at_its_real_expiry(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], page="first")
    [opened] = await browser_sessions(runtime, browser["ref"])
    assert opened.sweep_at == opened.expires_at
    first_look = opened.sweep_at

    for minute in range(1, 31):  # an event a minute for half an hour: past the first expiry (20 min)
        clock.advance(minutes=1)
        await send(client, browser["ref"], page=f"p{minute}")
    [active] = await browser_sessions(runtime, browser["ref"])
    assert active.sweep_at == first_look, "an event moved sweep_at"
    assert active.expires_at > clock.now() > first_look

    assert await sweep_once(runtime) == 0  # due for a look, still active: rescheduled, not closed
    [rescheduled] = await browser_sessions(runtime, browser["ref"])
    assert (rescheduled.status, rescheduled.sweep_at) == ("OPEN", rescheduled.expires_at)

    clock.advance(minutes=19)
    assert await sweep_once(runtime) == 0
    clock.advance(minutes=2)
    assert await sweep_once(runtime) == 1
    [closed] = await browser_sessions(runtime, browser["ref"])
    assert (closed.status, closed.close_reason, closed.num_events) == ("CLOSED", "TIMEOUT", 31)
    assert closed.ended_at == closed.last_activity_at


async def test_a_shorter_timeout_brings_the_next_look_forward(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    await create_pos(client, "sweep-short", timeout_minutes=60)
    browser = await create_browser(client)
    await send(client, browser["ref"], pos="sweep-short")
    await update_pos(client, "sweep-short", timeoutInMinutes=5)
    clock.advance(minutes=1)
    await send(client, browser["ref"], pos="sweep-short")
    [row] = await browser_sessions(runtime, browser["ref"])
    assert row.expires_at == clock.now() + timedelta(minutes=5)
    assert row.sweep_at <= row.expires_at  # brought forward by the change of timeout, left there by the event

    clock.advance(minutes=6)  # well before the first expiry (an hour): closed all the same
    assert await sweep_once(runtime) == 1


async def test_a_shorter_timeout_with_no_event_after_it_still_closes_the_session_on_time(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    await create_pos(client, "sweep-quiet", timeout_minutes=60)
    browser = await create_browser(client)
    await send(client, browser["ref"], pos="sweep-quiet")
    await update_pos(client, "sweep-quiet", timeoutInMinutes=5)  # open sessions retimed
    [row] = await browser_sessions(runtime, browser["ref"])
    assert row.sweep_at == row.expires_at == row.last_activity_at + timedelta(minutes=5)

    clock.advance(minutes=6)
    assert await sweep_once(runtime) == 1


async def test_an_event_changes_no_indexed_column_of_its_session_and_postgresql_updates_it_in_place(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, db_kind: str
) -> None:
    """No column of any index of ``sessions`` changes on an event, so PostgreSQL's UPDATE is a HOT one (no new
    index entries; its statistics count them)."""
    table = cast(Table, Session.__table__)
    indexed = {column.key for index in table.indexes for column in index.columns}
    indexed |= {column.key for column in table.primary_key.columns} | {"status"}  # status: in the predicates
    assert {"sweep_at", "browser_ref", "guest_ref", "started_at"} <= indexed and "expires_at" not in indexed
    browser = await create_browser(client)
    await send(client, browser["ref"])
    [opened] = await browser_sessions(runtime, browser["ref"])
    before = await _session_updates(runtime, at_least=(0, 0)) if db_kind == "postgres" else (0, 0)
    for n in range(20):
        clock.advance(seconds=30)
        await send(client, browser["ref"], page=f"p{n}", language="FR" if n % 2 else "EN")
    [touched] = await browser_sessions(runtime, browser["ref"])
    assert touched.num_events == 21 and touched.expires_at > opened.expires_at
    assert {name: getattr(touched, name) for name in indexed} == {name: getattr(opened, name) for name in indexed}
    if db_kind == "postgres":
        after = await _session_updates(runtime, at_least=(before[0] + 20, 0))
        updates, hot = after[0] - before[0], after[1] - before[1]
        assert updates >= 20
        assert hot == updates


async def _session_updates(runtime: Runtime, *, at_least: tuple[int, int]) -> tuple[int, int]:
    """(updates, HOT updates) of ``sessions`` in PostgreSQL's statistics, once they count ``at_least`` updates:
    each backend reports its counts when it goes idle, within a second or two."""
    counts = (0, 0)
    for _ in range(100):
        async with runtime.sessions() as session:
            await session.execute(text("SELECT pg_stat_clear_snapshot()"))
            row = (
                await session.execute(
                    text("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'sessions'")
                )
            ).one()
        counts = (int(row[0]), int(row[1]))
        if counts[0] >= at_least[0]:
            return counts
        await asyncio.sleep(0.1)
    raise AssertionError(f"PostgreSQL's statistics still count {counts} updates of sessions, want {at_least}")
