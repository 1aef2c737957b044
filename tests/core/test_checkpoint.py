"""WAL checkpoints run on the checkpoint thread, never inside a COMMIT, and stop with the engine."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from innkeeper.core.checkpoint import Checkpointer
from tests.support.sqlite import engine_with_a_table


def _checkpoint_threads(path: Path) -> int:
    return sum(thread.name == f"sqlite-checkpoint {path}" for thread in threading.enumerate())


async def test_the_engine_checkpoints_its_wal_off_the_committing_connection_and_stops_with_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wal.db"
    async with engine_with_a_table(path) as sessions:
        assert _checkpoint_threads(path) == 1
        async with sessions() as session:
            # The committing connection would only checkpoint by itself at ~400 MiB of WAL.
            limit = (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
            assert limit == 100_000
        for _ in range(20):
            async with sessions() as session:
                await session.execute(text("INSERT INTO t VALUES (:v)"), [{"v": "x" * 2000}] * 50)
                await session.commit()
        db_size_before = path.stat().st_size
        for _ in range(100):  # the thread checkpoints every half second
            await asyncio.sleep(0.05)
            if path.stat().st_size > db_size_before + 1_000_000:
                break
        # The rows reached the database file itself: a reader that ignores the WAL would see them.
        assert path.stat().st_size > db_size_before + 1_000_000
        with sqlite3.connect(path) as reader:
            for _ in range(40):  # busy: the thread's own checkpoint was running at that moment
                busy, logged, copied = reader.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if not busy:
                    break
                await asyncio.sleep(0.05)
            assert (busy, logged - copied) == (0, 0)  # nothing was left to copy
            assert reader.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    assert _checkpoint_threads(path) == 0


def test_a_checkpointer_copies_what_another_connection_wrote_and_stops_promptly(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (v)")
    checkpointer = Checkpointer(str(path), interval=0.01).start()
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        for _ in range(5):
            writer.execute("INSERT INTO t VALUES (randomblob(5000))")
        for _ in range(200):
            if checkpointer.checkpoints:
                break
            threading.Event().wait(0.01)
        assert checkpointer.checkpoints >= 1
    finally:
        writer.close()
        checkpointer.stop()
        checkpointer.stop()  # twice is fine
    assert _checkpoint_threads(path) == 0
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (5,)


def _wal_frames(path: Path) -> int:
    """Frames in the WAL now (a passive checkpoint of a connection of its own reports them)."""
    with sqlite3.connect(path, isolation_level=None) as probe:
        busy, logged, _ = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(logged) if not busy else -1


def _wal_database(path: Path) -> None:
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (v)")


def _commits(writer: sqlite3.Connection, count: int) -> None:
    for _ in range(count):
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO t VALUES (randomblob(3000))")
        writer.execute("COMMIT")


@pytest.mark.parametrize("catch_up", [False, True])
def test_the_log_starts_over_only_once_the_committing_connection_catches_up(tmp_path: Path, catch_up: bool) -> None:
    """A checkpoint pass copies every frame committed so far while the next transaction is already under way, and
    its COMMIT appends after them: SQLite starts the log over only when a write transaction begins with every
    frame copied, so under steady writes it never did (the server's log reached ~400 MiB, then one COMMIT stalled
    ~50 ms)."""
    path = tmp_path / "x.db"
    _wal_database(path)
    wal = Path(f"{path}-wal")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")  # only the checkpointer and the catch-up copy frames
    checkpointer = Checkpointer(str(path), restart_frames=100)  # its passes are run by hand here
    pass_connection = sqlite3.connect(path, isolation_level=None)
    try:
        _commits(writer, 200)
        checkpointer._database_fd = os.open(path, os.O_RDONLY)
        writer.execute("BEGIN IMMEDIATE")  # under steady writes a transaction is always under way during a pass
        writer.execute("INSERT INTO t VALUES (randomblob(3000))")
        checkpointer.checkpoint(pass_connection)  # copies the 200 transactions' frames, asks for a catch-up
        assert checkpointer._catch_up_due
        writer.execute("COMMIT")
        if catch_up:
            checkpointer.catch_up(writer)  # what the driver runs after that COMMIT
        size = wal.stat().st_size
        _commits(writer, 50)
        if catch_up:  # the log started over: the 50 commits overwrote its first frames
            assert checkpointer.catch_ups == 1 and wal.stat().st_size == size
        else:  # appended after all the frames already copied
            assert checkpointer.catch_ups == 0 and wal.stat().st_size > size
    finally:
        if checkpointer._database_fd is not None:
            os.close(checkpointer._database_fd)
        pass_connection.close()
        writer.close()
    with sqlite3.connect(path) as reader:
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (251,)


def test_a_catch_up_only_runs_when_asked_and_never_raises(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _wal_database(path)
    checkpointer = Checkpointer(str(path))  # not started: nothing asks for a catch-up
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("INSERT INTO t VALUES (1)")
    checkpointer.catch_up(writer)
    assert checkpointer.catch_ups == 0 and _wal_frames(path) > 0
    checkpointer._catch_up_due = True  # as the thread sets it after a long log
    checkpointer.catch_up(writer)
    assert checkpointer.catch_ups == 1 and not checkpointer._catch_up_due
    writer.close()
    checkpointer._catch_up_due = True
    checkpointer.catch_up(writer)  # a closed connection: logged, not raised (its COMMIT had succeeded)
    assert checkpointer._catch_up_due


async def test_the_engines_connection_catches_up_after_its_commits(tmp_path: Path) -> None:
    async with engine_with_a_table(tmp_path / "wal.db") as sessions:
        async with sessions() as session:
            raw = await session.connection()
            driver = (await raw.get_raw_connection()).driver_connection
            assert driver is not None and driver.after_commit is not None
            checkpointer = driver.after_commit.__self__
            assert isinstance(checkpointer, Checkpointer)
            limit = (await session.execute(text("PRAGMA journal_size_limit"))).scalar_one()
            assert limit == 64 * 1024 * 1024
        checkpointer.restart_frames = 100
        for _ in range(300):
            async with sessions() as session:
                await session.execute(text("INSERT INTO t VALUES (:v)"), [{"v": "x" * 3000}] * 5)
                await session.commit()
            if checkpointer.catch_ups >= 2:
                break
            await asyncio.sleep(0.01)
        assert checkpointer.catch_ups >= 2
