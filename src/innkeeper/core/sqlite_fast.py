"""Fast paths: prebuilt statements run straight on the driver's connection, in the session's transaction.

SQLAlchemy's execution and result machinery cost several times what SQLite takes to answer a small read or
write a row (measured on callFlows' guest context). These run a statement's SQL, compiled once, on the
``sqlite3`` connection of the session's transaction, converting values as the column types would. On
PostgreSQL the reads (:class:`SqliteRead`) run straight on asyncpg the way SQLAlchemy's asyncpg cursor runs
them (``_asyncpg_fetch``); the writes, and every statement these cannot take, run through the session as usual.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import JSON, Insert, Select, Table, Update, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from innkeeper.core.db import json_value

_SQLITE_KEY = "innkeeper.sqlite_connection"
_ASYNCPG_KEY = "innkeeper.asyncpg_connection"
_LEAN_KEY = "innkeeper.sqlite_lean_transaction"
# The longest expanding list compiled here (a statement is kept per length): a group-commit batch is at most 64.
_MAX_EXPANDED = 256


class LeanTransactionOnly(Exception):
    """A statement without a fast path was asked of a lean transaction (it has no SQLAlchemy transaction to run it
    in): the caller gives the lean transaction up."""


@contextlib.asynccontextmanager
async def lean_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncSession | None]:
    """On SQLite, a write transaction of our own on a pooled connection (``BEGIN IMMEDIATE``, as every transaction
    there): a session whose statements can only take this module's fast paths, which run straight on that
    connection. Committed on leaving (the COMMIT's fsync on the driver's commit thread), rolled back on an error.
    Yields None on other databases.

    SQLAlchemy's session transaction (checkout, begin, commit and close through its greenlet layer) costs more
    CPU than the statements of a small group-commit batch together; this one costs a pool checkout and the two
    statements. Nothing but the fast paths may run in it: a statement they cannot take raises
    :class:`LeanTransactionOnly` (never SQLAlchemy's session, which would ask the pool for a second connection).
    """
    if engine.dialect.name != "sqlite":
        yield None
        return
    async with engine.connect() as connection:
        driver = cast(Any, (await connection.get_raw_connection()).driver_connection)
        database = getattr(driver, "_connection", None)
        if not isinstance(database, sqlite3.Connection):
            yield None
            return
        session = AsyncSession(bind=connection)
        token = object()
        session.info[_LEAN_KEY] = (token, (database, connection.dialect))
        sqlite_execute(database, "BEGIN IMMEDIATE", ())
        try:
            yield session
        except BaseException:
            if database.in_transaction:
                database.rollback()
            raise
        try:
            await driver.commit()  # the driver's COMMIT: a write's fsync waits on its commit thread
        except sqlite3.Error as exc:
            if database.in_transaction:
                database.rollback()
            raise DBAPIError.instance("COMMIT", (), exc, sqlite3.Error) from exc


def transaction_token(session: AsyncSession) -> object | None:
    """What identifies the session's current transaction (its lean transaction's, or SQLAlchemy's; None outside
    one): for memos that last as long as a transaction."""
    lean = session.info.get(_LEAN_KEY)
    if lean is not None:
        return cast(object, lean[0])
    return session.sync_session.get_transaction()


def _no_fast_path(session: AsyncSession) -> None:
    if _LEAN_KEY in session.info:
        raise LeanTransactionOnly("this statement has no SQLite fast path")


async def sqlite_connection(session: AsyncSession) -> tuple[sqlite3.Connection, Any] | None:
    """(The SQLite connection of the session's transaction, begun if it was not; the dialect), None on other
    databases. Found once per transaction: asking SQLAlchemy for it costs more than a small read."""
    lean = session.info.get(_LEAN_KEY)
    if lean is not None:
        return cast(tuple[sqlite3.Connection, Any], lean[1])
    return cast(tuple[sqlite3.Connection, Any] | None, await _once_per_transaction(session, _SQLITE_KEY, _sqlite_of))


async def asyncpg_connection(session: AsyncSession) -> tuple[Any, Any, AsyncConnection] | None:
    """(SQLAlchemy's asyncpg adapter connection of the session's transaction, the dialect, the session's
    connection) on PostgreSQL with asyncpg, None elsewhere. Found once per transaction, like
    :func:`sqlite_connection`."""
    if _LEAN_KEY in session.info:
        return None
    return cast(
        tuple[Any, Any, AsyncConnection] | None, await _once_per_transaction(session, _ASYNCPG_KEY, _asyncpg_of)
    )


async def _once_per_transaction(
    session: AsyncSession, key: str, find: Callable[[AsyncConnection], Awaitable[object]]
) -> object:
    """What ``find`` gives for the connection of the session's transaction (begun if it was not), kept in the
    session's info under ``key`` for as long as that transaction lasts."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(key)
    if transaction is not None and cached is not None and cached[0] is transaction:
        return cached[1]
    found = await find(await session.connection())
    session.info[key] = (session.sync_session.get_transaction(), found)
    return found


async def _sqlite_of(connection: AsyncConnection) -> tuple[sqlite3.Connection, Any] | None:
    if connection.dialect.name != "sqlite":
        return None
    database = getattr((await connection.get_raw_connection()).driver_connection, "_connection", None)
    return (database, connection.dialect) if isinstance(database, sqlite3.Connection) else None


async def _asyncpg_of(connection: AsyncConnection) -> tuple[Any, Any, AsyncConnection] | None:
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "asyncpg":
        return None
    adapted = (await connection.get_raw_connection()).dbapi_connection
    needed = ("_execute_mutex", "_start_transaction", "_prepare", "_transaction")  # SQLAlchemy's adapter, pinned
    return (adapted, dialect, connection) if all(hasattr(adapted, name) for name in needed) else None


async def _asyncpg_fetch(found: tuple[Any, Any, AsyncConnection], sql: str, values: Sequence[Any]) -> tuple[Any, Any]:
    """(records, attributes) of one prepared statement run in the session's transaction, as SQLAlchemy's asyncpg
    cursor runs it (its lock, its lazily begun transaction, its prepared-statement cache); errors wrapped as
    SQLAlchemy wraps them, a lost connection invalidated (``in_transaction`` runs the work again)."""
    adapted, dialect, connection = found
    try:
        async with adapted._execute_mutex:
            if adapted._transaction is None:
                await adapted._start_transaction()
            prepared, attributes = await adapted._prepare(sql, dialect._invalidate_schema_cache_asof)
            return await prepared.fetch(*values), attributes
    except Exception as error:
        try:
            adapted._handle_exception(error)  # raises the DBAPI error SQLAlchemy's cursor would raise
        except dialect.loaded_dbapi.Error as dbapi_error:
            lost = bool(dialect.is_disconnect(dbapi_error, adapted, None))
            if lost:
                await connection.invalidate(dbapi_error)
            raise DBAPIError.instance(
                sql, list(values), dbapi_error, dialect.loaded_dbapi.Error, connection_invalidated=lost
            ) from error
        raise


class SqliteRead:
    """A prebuilt select that runs straight on the driver's connection in the session's transaction (sqlite3 on
    SQLite, asyncpg on PostgreSQL): its SQL compiled once, its values turned into what its column types give (JSON
    columns by a fast path). SQLAlchemy's execution and result machinery cost several times what the database
    takes to answer a small read; elsewhere the statement runs through the session as usual. Unlike the session's
    own execute it does not flush pending ORM changes on SQLite (its callers flush what a read must see).

    Only for statements whose parameters need no bind processing (strings, numbers). One parameter may be an
    expanding one (``col.in_(bindparam("refs", expanding=True))``): the SQL is then compiled once per length of
    its list."""

    def __init__(self, stmt: Select[*tuple[Any, ...]]) -> None:
        self.stmt = stmt
        self._compiled: dict[tuple[int, int], _Compiled | None] = {}
        expanding = [bind.key for bind in stmt._get_embedded_bindparams() if bind.expanding]
        self._expanding: str | None = expanding[0] if len(expanding) == 1 else None
        self._unsupported = len(expanding) > 1
        self._asyncpg_processors: dict[str, tuple[Callable[[Any], Any] | None, ...]] = {}

    async def rows(self, session: AsyncSession, params: dict[str, Any]) -> list[Sequence[Any]]:
        """The result rows, as sequences of column values in the statement's order."""
        found = None if self._unsupported else await sqlite_connection(session)
        if found is not None:
            database, dialect = found
            prepared = self._prepared(dialect, params)
            if prepared is not None:
                sql, values, processors = prepared
                rows = sqlite_execute(database, sql, values).fetchall()
                if not any(processors):
                    return rows
                return [
                    [v if p is None or v is None else p(v) for v, p in zip(row, processors, strict=True)]
                    for row in rows
                ]
        elif not self._unsupported:
            fetched = await self._asyncpg_rows(session, params)
            if fetched is not None:
                return fetched
        _no_fast_path(session)
        return list((await session.execute(self.stmt, params)).all())

    async def _asyncpg_rows(self, session: AsyncSession, params: dict[str, Any]) -> list[Sequence[Any]] | None:
        """On PostgreSQL with asyncpg: the rows straight from asyncpg (None: not taken here)."""
        found = await asyncpg_connection(session)
        if found is None:
            return None
        dialect = found[1]
        prepared = self._prepared(dialect, params)
        if prepared is None:
            return None
        if session.new or session.dirty or session.deleted:
            await session.flush()  # what the session's own execute would do first (autoflush)
        sql, values, _ = prepared
        records, attributes = await _asyncpg_fetch(found, sql, values)
        processors = self._asyncpg_processors.get(sql)
        if processors is None:
            # Like SQLAlchemy's, from each column's type and the type PostgreSQL reports for it (a numeric
            # column's processor depends on it).
            processors = self._asyncpg_processors[sql] = tuple(
                _value_processor(column.type, dialect, attribute.type.oid)
                for column, attribute in zip(self.stmt.selected_columns, attributes, strict=True)
            )
        if not any(processors):
            return cast(list[Sequence[Any]], records)
        return [
            [v if p is None or v is None else p(v) for v, p in zip(record, processors, strict=True)]
            for record in records
        ]

    def _prepared(
        self, dialect: Any, params: dict[str, Any]
    ) -> tuple[str, list[Any], tuple[Callable[[Any], Any] | None, ...]] | None:
        """(SQL, its values in order, SQLite's value processors) for these parameters; None: left to SQLAlchemy."""
        expanding = self._expanding
        items: Sequence[Any] = params[expanding] if expanding is not None else ()
        key = (id(dialect), len(items))
        if key not in self._compiled and len(items) <= _MAX_EXPANDED:
            self._compiled[key] = self._compile(dialect, len(items))
        compiled = self._compiled.get(key)
        if compiled is None:
            return None
        sql, names, literals, processors = compiled
        if expanding is not None:
            params = {**params, **{f"{expanding}_{i}": item for i, item in enumerate(items, 1)}}
        return sql, [params[name] if name in params else literals[name] for name in names], processors

    def _compile(self, dialect: Any, length: int) -> _Compiled | None:
        stmt = self.stmt
        if self._expanding is not None:
            if length == 0:
                return None  # SQLAlchemy's rendering of an empty IN: leave it to SQLAlchemy
            # Rendered with as many placeholders as the list has items, named refs_1, refs_2…
            stmt = stmt.params({self._expanding: [None] * length})
            compiled = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        else:
            compiled = stmt.compile(dialect=dialect)
        if compiled._bind_processors or compiled.positiontup is None:
            return None  # a parameter SQLAlchemy would convert: leave it to SQLAlchemy
        # Values written in the statement (``guest_type != "retired"``) are bound parameters with a value.
        literals = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        # PostgreSQL's are made at the first run (``_asyncpg_rows``): some need the type it reports.
        processors = (
            tuple(_value_processor(column.type, dialect) for column in self.stmt.selected_columns)
            if dialect.name == "sqlite"
            else ()
        )
        return compiled.string, tuple(compiled.positiontup), literals, processors


# (SQL, parameter names in order, values of the parameters written in the statement, value processors)
_Compiled = tuple[str, tuple[str, ...], dict[str, Any], tuple[Callable[[Any], Any] | None, ...]]


class SqliteInsert:
    """A Core INSERT of one row (column name → value) that, on SQLite, runs straight on the driver's connection
    in the session's transaction: its SQL compiled once per set of columns, each value converted by its column's
    own bind processor (as SQLAlchemy would). Rows that leave a column with a default out, and other databases,
    go through the session as usual."""

    def __init__(self, table: Table) -> None:
        self.stmt = insert(table)
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[str, tuple[str, ...], tuple[Any, ...]] | None] = {}

    async def execute(self, session: AsyncSession, row: Mapping[str, Any]) -> None:
        found = await sqlite_connection(session)
        if found is not None:
            database, dialect = found
            key = (id(dialect), tuple(row))
            if key not in self._compiled:
                self._compiled[key] = self._compile(dialect, key[1])
            compiled = self._compiled[key]
            if compiled is not None:
                sql, names, processors = compiled
                values = [row[name] if p is None else p(row[name]) for name, p in zip(names, processors, strict=True)]
                sqlite_execute(database, sql, values)
                return
        _no_fast_path(session)
        await session.execute(self.stmt, dict(row))

    def _compile(self, dialect: Any, keys: tuple[str, ...]) -> tuple[str, tuple[str, ...], tuple[Any, ...]] | None:
        compiled = self.stmt.compile(dialect=dialect, column_keys=list(keys))
        names = tuple(compiled.positiontup or ())
        if compiled.positiontup is None or sorted(names) != sorted(keys):
            return None  # a column SQLAlchemy would fill in (a default): leave it to SQLAlchemy
        processors = compiled._bind_processors
        return compiled.string, names, tuple(processors.get(name) for name in names)


class SqliteWrite:
    """A Core INSERT or UPDATE run for many rows (each a mapping of its parameters: column names for an INSERT,
    the bound parameters' names for an UPDATE) that, on SQLite, is one ``executemany`` straight on the driver's
    connection in the session's transaction: its SQL compiled once per set of keys, each value converted by its
    parameter's own bind processor (as SQLAlchemy would, without its per-parameter machinery). Every row must
    have the keys of the first. A statement that would need a value the rows do not give (a column default or
    ``onupdate``), and other databases, go through the session as usual."""

    def __init__(self, stmt: Insert | Update) -> None:
        self.stmt = stmt
        self._insert = isinstance(stmt, Insert)
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[str, tuple[str, ...], tuple[Any, ...]] | None] = {}

    async def execute_many(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        found = await sqlite_connection(session)
        if found is not None:
            database, dialect = found
            key = (id(dialect), tuple(rows[0]))
            if key not in self._compiled:
                self._compiled[key] = self._compile(dialect, key[1])
            compiled = self._compiled[key]
            if compiled is not None:
                sql, names, processors = compiled
                if any(processors):
                    pairs = tuple(zip(names, processors, strict=True))
                    values = [[row[n] if p is None else p(row[n]) for n, p in pairs] for row in rows]
                else:
                    values = [[row[n] for n in names] for row in rows]
                try:
                    database.executemany(sql, values)
                except sqlite3.Error as exc:
                    raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc
                return
        _no_fast_path(session)
        await session.execute(self.stmt, [dict(row) for row in rows])

    def _compile(self, dialect: Any, keys: tuple[str, ...]) -> tuple[str, tuple[str, ...], tuple[Any, ...]] | None:
        if self._insert:
            compiled = self.stmt.compile(dialect=dialect, column_keys=list(keys))
        else:
            compiled = self.stmt.compile(dialect=dialect)
        if compiled.positiontup is None:
            return None
        names = tuple(compiled.positiontup)
        # Every placeholder filled from the rows (nothing SQLAlchemy would compute), and for an INSERT every key
        # is a column written.
        if not set(names) <= set(keys) or (self._insert and set(names) != set(keys)):
            return None
        processors = compiled._bind_processors
        return compiled.string, names, tuple(processors.get(name) for name in names)


def sqlite_execute(database: sqlite3.Connection, sql: str, values: Sequence[Any]) -> sqlite3.Cursor:
    """Execute on SQLite's connection; its errors raised as SQLAlchemy raises them (``IntegrityError`` → the
    transaction is retried by ``in_transaction``)."""
    try:
        return database.execute(sql, values)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc


def _value_processor(type_: Any, dialect: Any, coltype: Any = None) -> Callable[[Any], Any] | None:
    # UTCDateTime's own processor already parses SQLite's text in one call (core.db).
    processor = type_._cached_result_processor(dialect, coltype)
    if isinstance(type_, JSON) and processor is not None:
        return lambda text: sqlite_json(text, processor)
    return cast(Callable[[Any], Any] | None, processor)


_EMPTY_JSON: dict[str, Callable[[], Any]] = {"{}": dict, "[]": list}


def sqlite_json(text: Any, slow: Callable[[Any], Any]) -> Any:
    """A JSON column's stored text → its value, as the column type's processor ``slow`` gives it (the engine's
    ``json_value``, msgspec with ``json.loads`` for what it refuses) without the processor's call chain."""
    if type(text) is str:
        empty = _EMPTY_JSON.get(text)
        if empty is not None:
            return empty()
        return json_value(text)
    return slow(text)
