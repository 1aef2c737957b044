"""The sweeper (``innkeeper.worker.sweep_once``): batches, idempotence, races with ingestion."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from innkeeper import worker
from innkeeper.core.runtime import Runtime
from innkeeper.worker import SWEEP_BATCH, sweep_once
from tests.factories.sessions import browser_sessions, outbox, send
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
