"""The in-loop SQLite driver (``sqlite+innkeeper://``) and the SQLite engine's transaction handling."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from innkeeper.core.config import async_url
from innkeeper.core.db import create_engine, in_transaction, session_factory
from tests.support.sqlite import engine_with_a_table


class _Ticker:
    """Counts the turns of the event loop while it runs: how often the loop got to run anything else."""

    def __init__(self) -> None:
        self.ticks = 0

    async def run(self) -> None:
        while True:
            self.ticks += 1
            await asyncio.sleep(0)


@pytest.fixture(params=["sqlite", "sqlite+aiosqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"{request.param}:///{tmp_path / 'driver.db'}"


async def test_sqlite_urls_use_the_in_loop_driver_unless_aiosqlite_is_named(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        assert engine.dialect.driver == "innkeeper"
        assert async_url("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    finally:
        await engine.dispose()


async def test_statements_transactions_and_errors_behave_like_a_dbapi_driver(url: str) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
            await session.commit()
        async with sessions() as session:
            await session.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": f"n{i}"} for i in range(5)])
            await session.commit()
        async with sessions() as session:
            await session.execute(text("INSERT INTO t (name) VALUES ('rolled back')"))
            await session.rollback()
        async with sessions() as session:
            with pytest.raises(IntegrityError):
                await session.execute(text("INSERT INTO t (name) VALUES ('n1')"))
            await session.rollback()
        async with sessions() as session:
            async with session.begin_nested():
                await session.execute(text("INSERT INTO t (name) VALUES ('kept')"))
            with pytest.raises(IntegrityError):
                async with session.begin_nested():
                    await session.execute(text("INSERT INTO t (name) VALUES ('n2')"))
            await session.commit()
        async with sessions() as session:
            names = (await session.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
            streamed = [row.name async for row in await session.stream(text("SELECT name FROM t ORDER BY id"))]
        assert names == ["n0", "n1", "n2", "n3", "n4", "kept"]
        assert streamed == names
    finally:
        await engine.dispose()


async def test_a_failed_commit_does_not_leave_the_only_connection_inside_its_transaction(url: str) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    failures = {"left": 1}

    def fail_once(_conn: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("COMMIT", {}, Exception("database is full"))

    try:
        async with sessions() as session:
            await session.execute(text("CREATE TABLE t (v TEXT)"))
            await session.commit()
        event.listen(engine.sync_engine, "commit", fail_once)
        async with sessions() as session:
            await session.execute(text("INSERT INTO t VALUES ('never acknowledged')"))
            with pytest.raises(OperationalError):
                await session.commit()

        async def write(session: Any) -> None:
            await session.execute(text("INSERT INTO t VALUES ('next')"))

        await in_transaction(sessions, write)
        async with sessions() as session:
            assert (await session.execute(text("SELECT v FROM t"))).scalars().all() == ["next"]
    finally:
        await engine.dispose()


async def test_the_in_loop_driver_answers_without_a_thread(tmp_path: Path) -> None:
    """A statement completes without the event loop running anything else in between."""
    engine = create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    ticker = _Ticker()

    try:
        async with session_factory(engine)() as session:
            await session.execute(text("SELECT 1"))
            task = asyncio.create_task(ticker.run())
            await asyncio.sleep(0)
            before = ticker.ticks
            for _ in range(50):
                await session.execute(text("SELECT 1"))
            during = ticker.ticks - before
            task.cancel()
        assert during == 0
    finally:
        await engine.dispose()


async def test_a_commit_that_wrote_waits_off_the_loop_and_one_that_did_not_stays_on_it(tmp_path: Path) -> None:
    """The fsync of a writing COMMIT runs on the commit thread while the loop goes on; the data is committed
    when the caller resumes; a read-only transaction's COMMIT returns in place."""
    import threading

    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    sessions = session_factory(engine)
    traced: list[tuple[str, str]] = []
    ticker = _Ticker()

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        raw = dbapi_connection._connection._conn  # the sqlite3 connection under the adapter and our driver
        raw.set_trace_callback(lambda sql: traced.append((threading.current_thread().name, sql.split()[0].upper())))

    event.listen(engine.sync_engine, "connect", on_connect)
    try:
        async with sessions() as session:
            await session.execute(text("CREATE TABLE t (v TEXT)"))
            await session.commit()
        task = asyncio.create_task(ticker.run())
        await asyncio.sleep(0)
        async with sessions() as session:
            await session.execute(text("INSERT INTO t VALUES ('written')"))
            traced.clear()
            before = ticker.ticks
            await session.commit()
            during_write, write_commits = ticker.ticks - before, list(traced)
            await session.execute(text("SELECT v FROM t"))
            traced.clear()
            before = ticker.ticks
            await session.commit()
            during_read, read_commits = ticker.ticks - before, list(traced)
        task.cancel()
        loop_thread = threading.current_thread().name
        assert write_commits == [("sqlite-commit_0", "COMMIT")]
        assert during_write > 0  # the loop ran while the COMMIT synced
        assert read_commits == [(loop_thread, "COMMIT")]
        assert during_read == 0
        async with sessions() as session:
            assert (await session.execute(text("SELECT v FROM t"))).scalars().all() == ["written"]
    finally:
        await engine.dispose()


async def test_the_after_commit_hook_runs_on_the_commit_thread_after_a_writing_commit_only(tmp_path: Path) -> None:
    """The WAL checkpointer's catch-up runs there; a hook that fails does not turn a COMMIT that succeeded into an
    error."""
    import threading

    calls: list[tuple[str, bool]] = []
    async with engine_with_a_table(tmp_path / "h.db") as sessions:
        async with sessions() as session:
            driver: Any = (await (await session.connection()).get_raw_connection()).driver_connection

        def hook(connection: Any) -> None:
            calls.append((threading.current_thread().name, connection.in_transaction))
            if len(calls) > 1:
                raise RuntimeError("hook failed")

        driver.after_commit = hook
        for value in ("one", "two"):
            async with sessions() as session:
                await session.execute(text("INSERT INTO t VALUES (:v)"), {"v": value})
                await session.commit()  # the second hook raises: the COMMIT still counts
        async with sessions() as session:
            await session.execute(text("SELECT v FROM t"))
            await session.commit()  # wrote nothing: no hook
        assert calls == [("sqlite-commit_0", False), ("sqlite-commit_0", False)]
        async with sessions() as session:
            assert (await session.execute(text("SELECT v FROM t ORDER BY v"))).scalars().all() == ["one", "two"]


async def test_a_cancelled_caller_still_waits_for_its_commit_before_the_connection_is_reused(tmp_path: Path) -> None:
    async with engine_with_a_table(tmp_path / "d.db", "v INTEGER") as sessions:

        async def write(n: int) -> None:
            async with sessions() as session:
                await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
                await session.commit()

        tasks = [asyncio.create_task(write(n)) for n in range(20)]
        await asyncio.sleep(0)
        for task in tasks[::3]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        committed = {n for n, result in enumerate(results) if result is None}
        async with sessions() as session:
            stored = set((await session.execute(text("SELECT v FROM t"))).scalars().all())
        # Every caller that returned normally has its row; a cancelled one may or may not (its COMMIT ran
        # to completion either way); nothing else is stored and the connection still works.
        assert committed <= stored <= set(range(20))
        assert len(committed) >= 13


async def test_a_begin_that_finds_the_database_locked_is_retried_by_in_transaction(url: str, tmp_path: Path) -> None:
    # BEGIN IMMEDIATE goes straight to sqlite3 on our driver (SQLAlchemy's aiosqlite one keeps its own path): a
    # BEGIN that waited out busy_timeout must still be SQLAlchemy's OperationalError, which in_transaction runs
    # again, not a bare sqlite3 error that would end the request.
    import sqlite3

    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            await session.commit()
        async with engine.connect() as connection:
            await connection.exec_driver_sql("PRAGMA busy_timeout=50")
            await connection.commit()
        other = sqlite3.connect(tmp_path / "driver.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        attempts = 0

        async def work(session: Any) -> int:
            nonlocal attempts
            attempts += 1
            if attempts == 2:
                other.rollback()  # the other writer is done: the retry gets the lock
            await session.execute(text("INSERT INTO t DEFAULT VALUES"))
            return attempts

        with pytest.raises(OperationalError, match="locked"):
            async with sessions() as session:
                await session.execute(text("SELECT 1"))
        assert await in_transaction(sessions, work) == 2
        other.close()
        async with sessions() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await engine.dispose()
