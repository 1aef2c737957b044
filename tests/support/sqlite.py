"""The app's own SQLite connection, for tests that watch or disturb what SQLite itself is given."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from innkeeper.core.db import create_engine, session_factory
from innkeeper.core.runtime import Runtime


async def driver_connection(runtime: Runtime) -> Any:
    """Our SQLite driver's connection object of the app's engine (its pool holds one connection: the same object
    serves every request)."""
    async with runtime.engine.connect() as connection:
        return cast(Any, (await connection.get_raw_connection()).driver_connection)


async def sqlite3_connection(runtime: Runtime) -> sqlite3.Connection:
    """The sqlite3 connection under the app's engine: the fast paths and lean transactions run straight on it."""
    database = (await driver_connection(runtime))._connection
    assert isinstance(database, sqlite3.Connection)
    return database


@contextlib.asynccontextmanager
async def sqlite3_hook(runtime: Runtime, setter: str, callback: Callable[..., Any]) -> AsyncIterator[None]:
    """``callback`` installed on the app's sqlite3 connection by its ``setter`` (``set_trace_callback``,
    ``set_authorizer``) for the block, removed after."""
    database = await sqlite3_connection(runtime)
    getattr(database, setter)(callback)
    try:
        yield
    finally:
        getattr(database, setter)(None)


@contextlib.asynccontextmanager
async def engine_with_a_table(path: Path, column: str = "v TEXT") -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The app's engine (our driver) on a new SQLite file holding an empty table ``t (<column>)``; disposed after."""
    engine = create_engine(f"sqlite:///{path}")
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            await session.execute(text(f"CREATE TABLE t ({column})"))
            await session.commit()
        yield sessions
    finally:
        await engine.dispose()
