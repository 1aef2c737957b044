"""Engine and session factory, SQLite pragmas, column types shared by every domain's models."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import msgspec
from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    ForeignKeyConstraint,
    MetaData,
    String,
    any_,
    bindparam,
    event,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from innkeeper.core.checkpoint import Checkpointer
from innkeeper.core.config import async_url

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every dialect (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        slow = super().bind_processor(dialect)
        if dialect.name != "sqlite" or slow is None:
            return slow

        def process(value: Any) -> Any:
            # A UTC datetime (what our clock gives) written as SQLite's DATETIME text, "YYYY-MM-DD HH:MM:SS.ffffff",
            # in one call instead of astimezone, replace and SQLAlchemy's formatting; anything else as before.
            if type(value) is datetime and value.tzinfo is UTC:
                return value.isoformat(" ", "microseconds")[:26]
            return slow(value)

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], datetime | None] | None:
        slow = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or slow is None:
            return slow

        def process(value: Any) -> datetime | None:
            # SQLite holds what we wrote as text, "YYYY-MM-DD HH:MM:SS.ffffff" (UTC): parsed with its offset in
            # one call, several times cheaper than SQLAlchemy's parse followed by replace(tzinfo=UTC).
            if type(value) is str and len(value) == 26 and value[10] == " ":
                return datetime.fromisoformat(value + "+00:00")
            return slow(value)

        return process


JSONType = JSON().with_variant(JSONB(), "postgresql")


def bulk_reference(column: str, target: str) -> ForeignKeyConstraint:
    """A foreign key of a table the batch import fills by the hundred thousand: a constraint on SQLite; on
    PostgreSQL, triggers with the same rules (migration 0010), named after the constraint.

    PostgreSQL checks a foreign key row by row (a query and a lock of the parent row per inserted row): about
    40% of a large PostgreSQL import went into those checks. Its triggers check and lock an INSERT's parent
    rows in one query per statement (``<name>_insert``), check a changed reference as the foreign key does
    (``<name>_update``) and refuse deleting a parent that is still referred to (``<name>_delete``), with the
    foreign-key error (SQLSTATE 23503, SQLAlchemy's ``IntegrityError``), so the application sees the same
    rules on both databases. SQLite's own check costs an index lookup per row, so it keeps the constraint. The
    constraint stays in the metadata either way: the ORM orders its writes by it.
    """
    return ForeignKeyConstraint([column], [target]).ddl_if(dialect="sqlite")


def created_as_constraint(constraint: Any, dialect_name: str) -> bool:
    """Whether a database of ``dialect_name`` holds ``constraint`` (False: its ``ddl_if`` names another
    dialect, as :func:`bulk_reference` does for PostgreSQL)."""
    condition = getattr(constraint, "_ddl_if", None)
    return condition is None or condition.dialect in (None, dialect_name)


_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder()


def json_text(value: Any) -> str:
    """A JSON column's value as stored: compact JSON by msgspec (several times faster than ``json.dumps``)."""
    return _json_encoder.encode(value).decode()


def json_value(text: str | bytes) -> Any:
    """A stored JSON column's value; what msgspec cannot read (``NaN`` written by ``json.dumps`` in older
    rows, numbers beyond a double) is read by ``json.loads``."""
    try:
        return _json_decoder.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Create the async engine, with WAL + immediate transactions on SQLite."""
    url = async_url(url)
    if url.startswith("sqlite"):
        # One connection: SQLite has one writer anyway, and funnelling every transaction
        # through it avoids SQLITE_BUSY between our own requests.
        engine = create_async_engine(
            url,
            echo=echo,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            json_serializer=json_text,
            json_deserializer=json_value,
        )
        _sqlite_pragmas(engine)
        _ping_when_idle(engine)
        return engine
    # No pool_pre_ping: on asyncpg it costs three round trips (BEGIN, ";", ROLLBACK) per checkout, one
    # transaction in four on the ingest path. A connection is pinged when it comes back after an idle
    # second instead (_ping_when_idle), and in_transaction() runs again a transaction whose connection
    # died before its COMMIT.
    engine = create_async_engine(
        url, echo=echo, pool_size=10, max_overflow=20, json_serializer=json_text, json_deserializer=json_value
    )
    _ping_when_idle(engine)
    return engine


# A pooled connection idle for longer than this is pinged when checked out (the database may have restarted
# meanwhile); one in steady use is not.
IDLE_PING_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool discards this connection and checks out (or opens) another.
            raise DisconnectionError("a pooled connection did not answer its ping") from exc


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    database = engine.url.database if engine.url.database not in (None, "", ":memory:") else None

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        # Let us emit BEGIN ourselves (BEGIN IMMEDIATE below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: an acknowledged event survives power loss, not only a process crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # 64 MiB of page cache (default 2 MiB): big writers (the sweeper's batches, imports) rewrite the same
        # random-key index pages again and again, and reads of thousands of rows (timelines) stay in memory.
        cursor.execute("PRAGMA cache_size=-65536")
        # Checkpoints run on a thread of their own (core.checkpoint), not inside a COMMIT; this connection
        # checkpoints only should the WAL reach ~400 MiB (that thread stopped or fell behind).
        cursor.execute("PRAGMA wal_autocheckpoint=100000")
        # A log that grew past 64 MiB (a long write transaction, a checkpoint thread that fell behind) is cut back
        # to that size when the next write starts it over; otherwise the file keeps its largest size for good.
        cursor.execute("PRAGMA journal_size_limit=67108864")
        cursor.close()
        if database:
            checkpointer = record.info["checkpointer"] = Checkpointer(database).start()
            driver: Any = getattr(dbapi_connection, "_connection", None)
            if hasattr(driver, "after_commit"):  # our in-loop driver (sqlite+innkeeper://)
                driver.after_commit = checkpointer.catch_up

    @event.listens_for(engine.sync_engine.pool, "close")
    def _close(_dbapi_connection: Any, record: Any) -> None:
        checkpointer = record.info.pop("checkpointer", None)
        if checkpointer is not None:
            checkpointer.stop()

    @event.listens_for(engine.sync_engine.pool, "reset")
    def _reset(dbapi_connection: Any, _record: Any, _state: Any) -> None:
        # SQLAlchemy does not know about the BEGIN IMMEDIATE below: when a COMMIT fails (SQLITE_BUSY,
        # a full disk) it may skip the pool's rollback, and the pool's only connection would stay in
        # that transaction, refusing every later BEGIN. Nothing of it was acknowledged: roll it back.
        if dbapi_connection._connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        # Take the write lock up front so a read-then-write transaction cannot hit
        # SQLITE_BUSY_SNAPSHOT when another process (a worker) wrote in between. Sent straight to sqlite3 when
        # the driver is ours: SQLAlchemy's statement execution cost more than the BEGIN on every transaction.
        # Its errors are raised as SQLAlchemy's (this listener runs outside SQLAlchemy's own error handling),
        # so that in_transaction retries a BEGIN that found the database locked.
        database = getattr(conn.connection.driver_connection, "_connection", None)
        if not isinstance(database, sqlite3.Connection):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        try:
            database.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise DBAPIError.instance("BEGIN IMMEDIATE", (), exc, sqlite3.Error) from exc


def among(session: AsyncSession, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY($1)``: one array parameter, not one per value.

    A batch chunk looks up thousands of values: as an IN list each count is another statement to prepare and
    plan (with a parameter per value); as an array it is one.
    """
    if session.get_bind().dialect.name == "postgresql":
        return cast(ColumnElement[bool], column == any_(bindparam(None, list(values), type_=ARRAY(String))))
    return cast(ColumnElement[bool], column.in_(list(values)))


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The unit-of-work factory entry points use."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


T = TypeVar("T")

_RETRYABLE_PG_CODES = {"40001", "40P01"}  # serialization failure, deadlock detected


def is_retryable(exc: DBAPIError) -> bool:
    """Whether a failed transaction may simply be run again (a lost race, not a bug)."""
    if isinstance(exc, IntegrityError):
        return True
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _RETRYABLE_PG_CODES:
        return True
    return "deadlock" in str(orig).lower() or "database is locked" in str(orig).lower()


async def in_transaction(
    sessions: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
    *,
    attempts: int = 8,
) -> T:
    """Run ``work`` in one committed transaction, retrying lost races.

    Concurrent requests can both try to claim the same identifier or open the same
    session; the unique constraints make one of them fail, and running it again sees
    the winner's row. A transaction whose connection was lost before its COMMIT (the
    database restarted) is run again on another connection; one lost during its COMMIT
    is not (whether it committed is unknown).
    """
    for attempt in range(1, attempts + 1):
        async with sessions() as session:
            committing = False
            try:
                result = await work(session)
                committing = True
                await session.commit()
                return result
            except DBAPIError as exc:
                await session.rollback()
                lost = exc.connection_invalidated and not committing
                if attempt == attempts or not (lost or is_retryable(exc)):
                    raise
                log.info("transaction lost a race, retrying (attempt %d)", attempt)
                await asyncio.sleep(0.005 * attempt)
    raise AssertionError("unreachable")
