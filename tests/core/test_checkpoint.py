"""WAL checkpoints run on the checkpoint thread, never inside a COMMIT, and stop with the engine."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from sqlalchemy import text

from innkeeper.core.checkpoint import Checkpointer
from innkeeper.core.db import create_engine, session_factory


def _checkpoint_threads(path: Path) -> int:
    return sum(thread.name == f"sqlite-checkpoint {path}" for thread in threading.enumerate())


async def test_the_engine_checkpoints_its_wal_off_the_committing_connection_and_stops_with_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wal.db"
    engine = create_engine(f"sqlite:///{path}")
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            await session.execute(text("CREATE TABLE t (v TEXT)"))
            await session.commit()
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
    finally:
        await engine.dispose()
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
