"""SQLite for the async engine without a thread hop per call: ``sqlite+innkeeper://``.

SQLAlchemy's ``aiosqlite`` dialect runs every DBAPI call on aiosqlite's worker thread and
hands the result back through ``call_soon_threadsafe``. One ``session.execute`` makes three
or four such calls (cursor, execute, fetchall, close): measured on the 2-core benchmark
machine, a ``SELECT 1`` cost 390 µs of wall time and 300 µs of CPU that way, against 25 µs
for the same statement on the plain ``pysqlite`` driver; the worker thread also fights the
event loop for the GIL under load. An SQLite call is a local library call that takes
microseconds (a commit's fsync ~0.2 ms here), and our engine has a single connection anyway
(SQLite has one writer), so waiting for the connection already serialised all database
work: this module keeps aiosqlite's async interface, which SQLAlchemy's adapter expects,
but runs each call directly on the event loop's thread.

One call does leave the loop's thread: a COMMIT that wrote. Its WAL fsync (``synchronous=FULL``)
takes 0.2–3 ms of wall time and almost no CPU, and sqlite3 releases the GIL while it waits, so it
runs on a single commit thread while the event loop reads the next requests; the committing
caller still waits for it, and its connection is not handed on before it returns.

The trade-off, stated: a long statement (a big portal read, an import batch) blocks the
event loop while it runs instead of only blocking the other users of the one connection, and
a ``busy_timeout`` wait (another process holding the write lock) blocks it too. Both are the
embedded, single-process deployment's normal costs; production runs PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)

__version__ = "1.0"
log = logging.getLogger(__name__)

DatabaseError = sqlite3.DatabaseError
Error = sqlite3.Error
IntegrityError = sqlite3.IntegrityError
NotSupportedError = sqlite3.NotSupportedError
OperationalError = sqlite3.OperationalError
ProgrammingError = sqlite3.ProgrammingError
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info


class Cursor:
    """aiosqlite's cursor interface over a :class:`sqlite3.Cursor`, each call run in place."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | dict[str, Any] | None = None) -> Cursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | dict[str, Any]]) -> Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, sizes: Sequence[Any]) -> None:
        return None

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        return None

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _Immediate:
    """Stands in for aiosqlite's request queue (SQLAlchemy's isolation-level setter posts to it): runs the call now."""

    __slots__ = ()

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller, as aiosqlite does
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class Connection:
    """aiosqlite's connection interface over a :class:`sqlite3.Connection`, each call run in place."""

    _tx = _Immediate()

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._settled = connection.total_changes  # rows changed up to the last COMMIT or ROLLBACK
        # Run on the commit thread after each COMMIT that wrote (the WAL checkpointer's catch-up); never raises.
        self.after_commit: Callable[[sqlite3.Connection], None] | None = None

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            # sqlite3's own error for a closed connection: SQLAlchemy takes it for a lost connection.
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return self._conn

    def cursor(self) -> Cursor:
        return Cursor(self._live().cursor())

    async def commit(self) -> None:
        """COMMIT; one that wrote waits for its fsync on a worker thread, so the event loop runs meanwhile."""
        conn = self._live()
        if conn.in_transaction and conn.total_changes != self._settled:
            after = self.after_commit
            if after is None:
                await _off_loop(conn.commit)
            else:

                def commit_then() -> None:
                    conn.commit()
                    try:
                        after(conn)
                    except Exception:  # the COMMIT succeeded: a failing hook must not report it failed
                        log.exception("after-commit hook failed")

                await _off_loop(commit_then)
        else:
            conn.commit()
        self._settled = conn.total_changes

    async def rollback(self) -> None:
        conn = self._live()
        conn.rollback()
        self._settled = conn.total_changes

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._live().create_function(*args, **kwargs)

    @property
    def in_transaction(self) -> bool:
        return self._conn is not None and self._conn.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._live().isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._live().isolation_level = cast(Any, value)


_COMMITS: ThreadPoolExecutor | None = None


async def _off_loop(call: Callable[[], None]) -> None:
    """Run ``call`` (a COMMIT: sqlite3 releases the GIL while it syncs the WAL) on the commit thread.

    The caller still waits for it, and its connection stays checked out until it has returned; a cancelled
    caller waits too, so the connection is never handed to someone else while its COMMIT runs.
    """
    global _COMMITS
    if _COMMITS is None:
        _COMMITS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
    done = asyncio.get_running_loop().run_in_executor(_COMMITS, call)
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        await done
        raise


def connect(database: str, **kwargs: Any) -> Connection:
    """Open the file (``check_same_thread`` off: the pool may close it from another thread at exit)."""
    kwargs["check_same_thread"] = False
    return Connection(sqlite3.connect(database, **kwargs))


class _AdaptedConnection(AsyncAdapt_aiosqlite_connection):
    def commit(self) -> None:
        # aiosqlite's adapter skips the COMMIT of a closed connection, so a transaction whose connection
        # was closed under it would pass for committed: the driver's COMMIT raises (a lost connection).
        AsyncAdapt_dbapi_connection.commit(self)


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *args: Any, **kwargs: Any) -> AsyncAdapt_aiosqlite_connection:
        if kwargs.pop("async_creator_fn", None) is not None:
            raise NotImplementedError("sqlite+innkeeper:// opens its connections itself")
        # Structurally aiosqlite's connection (the protocol's __getattr__ aside): cast for the type checker.
        return _AdaptedConnection(self, cast(Any, connect(*args, **kwargs)))


class SQLiteDialect_innkeeper(SQLiteDialect_aiosqlite):  # noqa: N801 - SQLAlchemy's dialect naming
    """The aiosqlite dialect with this module as its driver."""

    driver = "innkeeper"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> AsyncAdapt_aiosqlite_dbapi:
        import sys

        return _DBAPI(sys.modules[__name__], sqlite3)
