"""Group commit: concurrent Stream events share transactions, and each is answered only after its commit."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from innkeeper.core.runtime import Runtime
from innkeeper.sessions.models import Event, Session
from innkeeper.stream.group_commit import GroupCommit
from tests.conftest import CLIENT_KEY
from tests.factories.stream import create_browser, event, product
from tests.support.sqlite import driver_connection


async def _post(client: httpx.AsyncClient, message: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1.2/events", json={"client_key": CLIENT_KEY, **message})


def _writer(app: FastAPI) -> GroupCommit:
    writer = app.state.group_commit
    assert isinstance(writer, GroupCommit)
    return writer


async def _stored_events(runtime: Runtime, browser_ref: str) -> list[str]:
    async with runtime.sessions() as session:
        rows = await session.execute(select(Event.ref).where(Event.browser_ref == browser_ref))
        return sorted(ref for (ref,) in rows)


async def test_concurrent_events_share_transactions_and_each_is_stored_once_in_order(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    browsers = [(await create_browser(client))["ref"] for _ in range(3)]
    plan: list[tuple[str, str]] = []
    for n in range(10):
        for browser in browsers:
            plan.append((browser, "ADD" if n % 2 else "VIEW"))
    messages = [
        event(browser, type_, **({"product": product(f"SKU_{i}", price=10.0)} if type_ == "ADD" else {}))
        for i, (browser, type_) in enumerate(plan)
    ]

    responses = await asyncio.gather(*(_post(client, message) for message in messages))

    assert [r.status_code for r in responses] == [201] * len(messages), [r.text for r in responses if r.is_error]
    refs = [r.json()["event_ref"] for r in responses]
    assert len(set(refs)) == len(refs)
    writer = _writer(app)
    assert writer.events == len(messages)
    assert writer.batches < len(messages), "the concurrent events were not grouped"
    for browser in browsers:
        # Each event stored exactly once; one browser's events applied in the order they were sent
        # (its cart lines are in the order of its ADDs).
        sent = [i for i, (b, _) in enumerate(plan) if b == browser]
        assert await _stored_events(runtime, browser) == sorted(refs[i] for i in sent)
        async with runtime.sessions() as session:
            row = (await session.execute(select(Session).where(Session.browser_ref == browser))).scalar_one()
        assert (row.num_events, row.num_adds) == (10, 5)
        assert [line["itemId"] for line in row.cart] == [f"SKU_{i}" for i in sent if plan[i][1] == "ADD"]


async def test_a_refused_event_gets_its_own_error_and_the_rest_of_its_batch_is_stored(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    browser = (await create_browser(client))["ref"]
    unknown = event(str(uuid.uuid4()))
    messages = [event(browser, page=f"p{n}") for n in range(4)]
    messages.insert(2, unknown)

    responses = await asyncio.gather(*(_post(client, message) for message in messages))
    alone = await _post(client, unknown)

    assert alone.status_code != 201
    refused = responses.pop(2)
    assert (refused.status_code, refused.json()) == (alone.status_code, alone.json())
    assert [r.status_code for r in responses] == [201] * 4
    assert await _stored_events(runtime, browser) == sorted(r.json()["event_ref"] for r in responses)
    assert _writer(app).batches < 5


@contextlib.asynccontextmanager
async def _commits_failing(runtime: Runtime, failure: Exception, state: dict[str, int]) -> AsyncIterator[None]:
    """COMMITs fail as ``_failing_commit`` says, on every path that commits.

    On SQLite the group commit's lean transactions COMMIT on the driver's connection itself, past SQLAlchemy's
    events: the driver's COMMIT (which SQLAlchemy's own transactions call too) fails there, its transaction rolled
    back as the server would. On PostgreSQL SQLAlchemy's ``commit`` event raises.
    """
    if runtime.engine.dialect.name == "sqlite":
        driver = await driver_connection(runtime)
        commit = driver.commit

        async def failing() -> None:
            if state["left"]:
                state["left"] -= 1
                driver._connection.rollback()
                raise sqlite3.OperationalError(str(failure))
            await commit()

        driver.commit = failing
        try:
            yield
        finally:
            del driver.commit  # the class's own again
        return

    def fail(conn: Any) -> None:
        if state["left"]:
            state["left"] -= 1
            conn.connection.rollback()
            raise OperationalError("COMMIT", {}, failure)

    sa_event.listen(runtime.engine.sync_engine, "commit", fail)
    try:
        yield
    finally:
        sa_event.remove(runtime.engine.sync_engine, "commit", fail)


async def _send_twelve(
    client: httpx.AsyncClient, runtime: Runtime, failure: Exception, state: dict[str, int]
) -> tuple[list[str], Any]:
    """Twelve events of four browsers at once while COMMITs fail (rolled back on the server) ``state["left"]``
    times."""
    browsers = [(await create_browser(client))["ref"] for _ in range(4)]
    async with _commits_failing(runtime, failure, state):
        responses = await asyncio.gather(*(_post(client, event(b, page="x")) for b in browsers * 3))
    async with runtime.sessions() as session:
        stored = await session.execute(select(Event.ref).where(Event.browser_ref.in_(browsers)))
        refs = sorted(ref for (ref,) in stored)
    return refs, responses


async def test_a_rolled_back_shared_transaction_runs_each_event_alone_and_none_is_lost_or_doubled(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    # A serialization failure / SQLITE_BUSY at COMMIT: the server rolled the batch back.
    state = {"left": 1}
    refs, responses = await _send_twelve(client, runtime, Exception("database is locked"), state)

    assert state["left"] == 0
    assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses if r.is_error]
    assert refs == sorted(r.json()["event_ref"] for r in responses)
    async with runtime.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Session)) == 4


async def test_a_commit_with_an_unknown_outcome_is_not_run_again_and_every_caller_is_told(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime
) -> None:
    state = {"left": 100}
    # This test expects 500s: a client without the suite's never-500 guard.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as unguarded:
        refs, responses = await _send_twelve(unguarded, runtime, Exception("connection lost during COMMIT"), state)

    assert [r.status_code for r in responses] == [500] * 12
    assert all(r.json()["error_msg"] == "Internal error" for r in responses)
    assert refs == []  # rolled back here; nothing acknowledged, nothing written twice
    assert 100 - state["left"] == _writer(app).batches


@pytest.mark.parametrize("count", [1, 2])
async def test_a_quiet_server_writes_each_event_at_once(app: FastAPI, client: httpx.AsyncClient, count: int) -> None:
    browser = (await create_browser(client))["ref"]
    for n in range(count):
        response = await _post(client, event(browser, page=f"p{n}"))
        assert response.status_code == 201
    writer = _writer(app)
    assert (writer.batches, writer.events) == (count, count)


async def test_a_point_of_sale_is_read_once_per_transaction_and_afresh_in_the_next(runtime: Runtime) -> None:
    from innkeeper.core.clock import SystemClock
    from innkeeper.tenant import service as tenant
    from tests.conftest import POINT_OF_SALE

    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM points_of_sale" in statement:
            reads.append(statement)

    sa_event.listen(runtime.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with runtime.sessions() as session:
            first = await tenant.resolve_pos(session, POINT_OF_SALE, auto_create=False, clock=SystemClock())
            again = await tenant.resolve_pos(session, POINT_OF_SALE, auto_create=False, clock=SystemClock())
            assert first is not None and again is first
            assert len(reads) == 1
            await session.commit()
            # The next transaction of the same session reads it again.
            fresh = await tenant.resolve_pos(session, POINT_OF_SALE, auto_create=False, clock=SystemClock())
            assert fresh is not None
            assert len(reads) == 2
    finally:
        sa_event.remove(runtime.engine.sync_engine, "before_cursor_execute", count)
