"""The app's own SQLite connection, for tests that watch or disturb what SQLite itself is given."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

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
