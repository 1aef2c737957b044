"""Lost database connections: an idle pooled connection is pinged before reuse, and a transaction whose
connection died before its COMMIT runs again (core.db; no pool_pre_ping on the hot path)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import db as core_db
from innkeeper.core.db import in_transaction
from innkeeper.core.runtime import Runtime
from innkeeper.core.sqlite_fast import SqliteRead


async def _driver(session: AsyncSession) -> Any:
    connection = await session.connection()
    return (await connection.get_raw_connection()).driver_connection


async def _kill(runtime: Runtime, driver: Any) -> None:
    """End a connection behind the pool's back: the server ends it (PostgreSQL) or its file handle is
    closed (SQLite)."""
    if runtime.engine.dialect.name == "postgresql":
        import asyncpg  # type: ignore[import-untyped]

        pid = driver.get_server_pid()
        url = runtime.engine.url.set(drivername="postgresql")
        admin = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
    else:
        driver.stop()


@pytest.fixture
async def probe(runtime: Runtime) -> AsyncIterator[None]:
    async with runtime.sessions() as session:
        await session.execute(text("CREATE TABLE probe (v VARCHAR(20))"))
        await session.commit()
    yield
    async with runtime.sessions() as session:
        await session.execute(text("DROP TABLE probe"))
        await session.commit()


async def _write(session: AsyncSession, value: str) -> None:
    await session.execute(text("INSERT INTO probe (v) VALUES (:v)"), {"v": value})


async def _stored(runtime: Runtime) -> list[str]:
    async with runtime.sessions() as session:
        return [str(v) for v in (await session.execute(text("SELECT v FROM probe"))).scalars()]


async def _kill_idle(runtime: Runtime) -> Any:
    """Use a pooled connection, give it back, then kill it while it idles in the pool; its driver connection."""
    async with runtime.sessions() as session:
        await session.execute(text("SELECT 1"))
        driver = await _driver(session)
    await _kill(runtime, driver)
    return driver


async def test_an_idle_connection_that_died_is_replaced_before_use(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_db, "IDLE_PING_SECONDS", 0.0)
    driver = await _kill_idle(runtime)
    async with runtime.sessions() as session:
        assert (await session.execute(text("SELECT 2"))).scalar_one() == 2
        assert await _driver(session) is not driver


async def test_without_the_idle_ping_the_dead_connection_fails_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the ping prevents (this also shows _kill really kills the connection).
    monkeypatch.setattr(core_db, "IDLE_PING_SECONDS", 3600.0)
    await _kill_idle(runtime)
    with pytest.raises(DBAPIError) as failed:
        async with runtime.sessions() as session:
            await session.execute(text("SELECT 2"))
    assert failed.value.connection_invalidated
    async with runtime.sessions() as session:  # the pool replaced it
        assert (await session.execute(text("SELECT 3"))).scalar_one() == 3


@pytest.mark.usefixtures("probe")
async def test_a_transaction_whose_connection_died_before_commit_runs_again(runtime: Runtime) -> None:
    attempts: list[int] = []

    async def work(session: AsyncSession) -> str:
        attempts.append(1)
        await _write(session, f"l{len(attempts)}")
        if len(attempts) == 1:
            await _kill(runtime, await _driver(session))
            await session.execute(text("SELECT 1"))  # the lost connection shows here
        return "done"

    assert await in_transaction(runtime.sessions, work) == "done"
    assert len(attempts) == 2
    # Only the second attempt's write is stored.
    assert await _stored(runtime) == ["l2"]


@pytest.mark.usefixtures("probe")
async def test_a_connection_lost_during_commit_is_not_run_again(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[int] = []

    async def work(session: AsyncSession) -> str:
        attempts.append(1)
        await _write(session, "lost")
        driver = await _driver(session)
        commit = session.commit

        async def dying_commit() -> None:
            await _kill(runtime, driver)
            await commit()

        monkeypatch.setattr(session, "commit", dying_commit)
        return "done"

    with pytest.raises(DBAPIError) as failed:
        await in_transaction(runtime.sessions, work)
    assert failed.value.connection_invalidated
    assert len(attempts) == 1  # whether it committed is unknown: never run twice
    assert await _stored(runtime) == []


_PROBE = Table("probe", MetaData(), Column("v", String(20)))
_PROBE_READ = SqliteRead(select(_PROBE.c.v).order_by(_PROBE.c.v))  # straight on sqlite3 / asyncpg


@pytest.mark.usefixtures("probe")
async def test_a_fast_read_on_a_lost_connection_runs_the_transaction_again(runtime: Runtime) -> None:
    """A read that goes past SQLAlchemy's execution (``core.sqlite_fast``) still reports a lost connection as one:
    the pooled connection is invalidated and ``in_transaction`` runs the work again on a new one."""
    attempts: list[int] = []

    async def work(session: AsyncSession) -> list[str]:
        attempts.append(1)
        await _write(session, f"f{len(attempts)}")
        if len(attempts) == 1:
            await _kill(runtime, await _driver(session))
        return [row[0] for row in await _PROBE_READ.rows(session, {})]

    assert await in_transaction(runtime.sessions, work) == ["f2"]
    assert len(attempts) == 2
    assert await _stored(runtime) == ["f2"]


async def test_a_fast_read_that_fails_raises_what_sqlalchemy_raises_and_the_session_goes_on(runtime: Runtime) -> None:
    missing = SqliteRead(select(Table("no_such_table", MetaData(), Column("v", String(20))).c.v))
    async with runtime.sessions() as session:
        with pytest.raises(DBAPIError) as failed:
            await missing.rows(session, {})
        assert not failed.value.connection_invalidated
        assert "no_such_table" in str(failed.value)
        await session.rollback()
        assert (await session.execute(text("SELECT 4"))).scalar_one() == 4
