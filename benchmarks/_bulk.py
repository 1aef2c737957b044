"""Helpers the seeded (in-process) benchmarks share: table rows, fast bulk inserts, seeding through ingest.

`benchmarks/sweeper.py`, `benchmarks/reads.py` and `benchmarks/portal_timeline.py` seed hundreds of thousands of
rows straight into the tables (not through the HTTP API: that would take longer than the measurement itself), then
time the real service code in-process; `portal_timeline.py` and `callflows.py` also replay guests' histories
through Innkeeper's own ingest service (:func:`ingest_history`).

- SQLite: rows go in with the stdlib driver's executemany in chunks (one transaction, ``synchronous=OFF`` while
  seeding), values in the form SQLAlchemy stores them.
- PostgreSQL: rows go in with asyncpg's binary ``COPY`` (``copy_records_to_table``).

The fresh, migrated database itself comes from ``_common.fresh_database``.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from _common import API_TOKEN, CLIENT_KEY, POINT_OF_SALE, USER_AGENT
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from innkeeper.core.config import Settings
from innkeeper.migrations.models import Base
from innkeeper.sessions.models import event_line

CHUNK = 5_000
T = TypeVar("T")


def bench_settings(url: str, **fields: Any) -> Settings:
    """The bench tenant's settings in development mode (for an app or runtime built in-process)."""
    return Settings(
        database_url=url,
        environment="development",
        client_key=CLIENT_KEY,
        api_token=API_TOKEN,
        point_of_sale=POINT_OF_SALE,
        **fields,
    )


# --- rows ---------------------------------------------------------------------------------------------------


def guest_row(
    ref: str, created: datetime, *, last_seen: datetime | None = None, email: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A `guests` row: a customer if it has an email, else a visitor; ``fields`` add or override columns."""
    return {
        "ref": ref,
        "guest_type": "customer" if email else "visitor",
        "merged_into": None,
        "created_at": created,
        "modified_at": created,
        "first_seen": created,
        "last_seen": last_seen or created,
        "email": email,
        "emails": [email] if email else [],
        "phone_numbers": [],
        "street": [],
        "deleted_at": None,
    } | fields


def browser_row(
    ref: str, guest_ref: str, created: datetime, last_seen: datetime | None, user_agent: str = "bench"
) -> dict[str, Any]:
    return {
        "ref": ref,
        "guest_ref": guest_ref,
        "user_agent": user_agent,
        "created_at": created,
        "last_seen": last_seen,
        "deleted_at": None,
    }


def session_row(
    ref: str, guest_ref: str, browser_ref: str, started: datetime, last: datetime, **fields: Any
) -> dict[str, Any]:
    """A `sessions` row: by default a WEB session of VIEWs only, closed by the timeout at ``last``, its
    counters at 0; ``fields`` override columns."""
    return {
        "ref": ref,
        "guest_ref": guest_ref,
        "browser_ref": browser_ref,
        "channel": "WEB",
        "point_of_sale": POINT_OF_SALE,
        "origin": None,
        "status": "CLOSED",
        "close_reason": "TIMEOUT",
        "started_at": started,
        "last_activity_at": last,
        "expires_at": last + timedelta(minutes=30),
        "sweep_at": last + timedelta(minutes=30),
        "ended_at": last,
        "language": "EN",
        "currency_code": "EUR",
        "first_page": "home",
        "last_page": "home",
        "num_events": 0,
        "num_views": 0,
        "num_searches": 0,
        "num_adds": 0,
        "num_selects": 0,
        "num_confirms": 0,
        "num_checkouts": 0,
        "cart": [],
        "cart_cleared": False,
        "converted": False,
        "cart_type": "BROWSED",
        "abandoned_revenue": None,
        "value": None,
        "order_ref": None,
        "utm": {},
        "referrer": None,
        "user_agent": "bench",
        "device": {},
        "session_data": {},
        "created_at": started,
        "modified_at": last,
    } | fields


def event_row(
    ref: str,
    kind: str,
    guest_ref: str,
    browser_ref: str,
    session_ref: str,
    page: str,
    at: datetime,
    raw: str,
    *,
    transport: str = "HTTP",
) -> dict[str, Any]:
    """An `events` row, processed successfully, ``raw`` being the JSON the SDK sent."""
    row = {
        "ref": ref,
        "type": kind,
        "browser_ref": browser_ref,
        "guest_ref": guest_ref,
        "session_ref": session_ref,
        "channel": "WEB",
        "point_of_sale": POINT_OF_SALE,
        "language": "EN",
        "currency": "EUR",
        "page": page,
        "client_key": CLIENT_KEY,
        "created_at": at,
        "modified_at": at,
        "processing_status": "SUCCESS",
        "failure_reason": None,
        "warnings": [],
        "transport": transport,
        "user_agent": "bench",
        "client_requested_at": None,
        "raw": raw,
    }
    row["line"] = event_line(row)  # what the application writes with each event (migration 0013)
    return row


async def analyze(engine: AsyncEngine, tables: Iterable[str], *, sqlite: bool = False) -> None:
    """Fresh planner statistics after seeding: ``ANALYZE`` each table on PostgreSQL (on SQLite, the whole file
    if ``sqlite``)."""
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in tables:
                await conn.exec_driver_sql(f"ANALYZE {table}")
    elif sqlite:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("ANALYZE")
            await conn.commit()


# --- seeding through the ingest service ------------------------------------------------------------------------


class SeedClock:
    """A settable clock: seeding replays a guest's history at the times it is meant to have happened."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        """The time of the event being replayed."""
        return self.at


def stream_context() -> Any:
    """What `POST /v1.2/events` from the bench site's browser gives the ingest service."""
    from innkeeper.stream import service as stream

    return stream.StreamContext(
        client_key=CLIENT_KEY,
        production=False,
        transport="stream-post",
        default_pos=POINT_OF_SALE,
        user_agent=USER_AGENT,
    )


async def ingest_history(
    session: AsyncSession, ctx: Any, clock: SeedClock, history: list[tuple[datetime, dict[str, Any]]]
) -> str:
    """Ingest (time, Engage-SDK message) pairs, each at its own time; returns the guest ref of the last one."""
    from innkeeper.stream import service as stream

    ref = ""
    for at, message in history:
        clock.at = at
        raw = json.dumps(message, separators=(",", ":"))
        ref = (await stream.ingest(session, ctx, message, raw=raw, clock=clock)).guest_ref
    return ref


# --- bulk inserts -------------------------------------------------------------------------------------------------


def chunks(rows: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    batch: list[T] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _pg_value(column: sa.Column[Any], value: Any) -> Any:
    if isinstance(value, dict | list) or (value is None and isinstance(column.type, sa.JSON) and not column.nullable):
        return json.dumps(value if value is not None else [])
    return value


def ref_maker(seed: int) -> Callable[[], str]:
    """UUID-v4-shaped refs from a seeded PRNG: ``uuid.uuid4()`` reads the OS entropy pool on every
    call, which is slow for millions of rows (and on a loaded VM, very slow)."""
    bits = random.Random(seed).getrandbits

    def make() -> str:
        h = f"{bits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    return make


def db_time(value: datetime, *, sqlite: bool) -> Any:
    """A UTC datetime as the driver takes it: SQLAlchemy's SQLite text form, or the aware value."""
    if sqlite:
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    return value


async def bulk_insert_tuples(
    engine: AsyncEngine, table_name: str, columns: list[str], rows: Iterable[tuple[Any, ...]]
) -> int:
    """Insert rows already in driver form (see :func:`db_time`; JSON as text), in ``columns`` order:
    the fast path for the big tables. The table's secondary indexes (``ix_*``) are dropped first and
    built again at the end (one sort instead of a million random index inserts); on PostgreSQL the
    COPY runs with ``session_replication_role = replica`` (no per-row foreign-key triggers: the rows
    are consistent by construction)."""
    total = 0
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            indexes = await driver.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1 AND indexname LIKE 'ix\\_%'",
                table_name,
            )
            for index in indexes:
                await driver.execute(f'DROP INDEX "{index["indexname"]}"')
            await driver.execute("SET session_replication_role = replica")
            for batch in chunks(rows):
                await driver.copy_records_to_table(table_name, records=batch, columns=columns)
                total += len(batch)
            await driver.execute("SET session_replication_role = DEFAULT")
            for index in indexes:
                await driver.execute(index["indexdef"])
            await conn.commit()
        return total
    path = engine.url.database
    if not path:
        raise SystemExit("bulk_insert needs an SQLite file database")
    sql = f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        found = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name LIKE 'ix\\_%' "
            "ESCAPE '\\' AND sql IS NOT NULL",
            (table_name,),
        ).fetchall()
        for name, _ in found:
            conn.execute(f'DROP INDEX "{name}"')
        for batch in chunks(rows):
            conn.executemany(sql, batch)
            total += len(batch)
        for _, create in found:
            conn.execute(create)
        conn.commit()
    return total


async def bulk_insert(engine: AsyncEngine, table_name: str, rows: Iterable[dict[str, Any]]) -> int:
    """Insert ``rows`` (dicts keyed by column name; missing columns get their default) as fast as the
    driver allows; returns how many were inserted."""
    table = Base.metadata.tables[table_name]
    total = 0
    if engine.dialect.name == "postgresql":
        columns = list(table.columns)
        defaults = {c.name: _default(c) for c in columns}
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            for batch in chunks(rows):
                records = [tuple(_pg_value(c, row.get(c.name, defaults[c.name])) for c in columns) for row in batch]
                await driver.copy_records_to_table(table_name, records=records, columns=[c.name for c in columns])
                total += len(records)
            await conn.commit()
        return total
    path = engine.url.database
    if not path:
        raise SystemExit("bulk_insert needs an SQLite file database")
    columns = list(table.columns)
    defaults = {c.name: _default(c) for c in columns}
    placeholders = ", ".join("?" for _ in columns)
    sql = f"INSERT INTO {table_name} ({', '.join(c.name for c in columns)}) VALUES ({placeholders})"
    # The stdlib driver straight (no aiosqlite thread hop, no SQLAlchemy bind processing per value),
    # with values already in the form SQLAlchemy stores them on SQLite.
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        for batch in chunks(rows):
            conn.executemany(
                sql, [tuple(_sqlite_value(row.get(c.name, defaults[c.name])) for c in columns) for row in batch]
            )
            total += len(batch)
        conn.commit()
    return total


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy writes it to SQLite (UTCDateTime: naive UTC text; JSON: text)."""
    if isinstance(value, datetime):
        return db_time(value, sqlite=True)
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _default(column: sa.Column[Any]) -> Any:
    default = column.default
    if default is None:
        return None
    arg = getattr(default, "arg", None)
    if callable(arg):
        try:
            return arg(None)
        except AttributeError:
            # Computed from the row's other values (events.line): the rows must give it. This object cannot be
            # bound, so a row without it fails loudly.
            return _FROM_THE_ROW
    return arg


_FROM_THE_ROW = object()
