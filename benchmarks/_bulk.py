"""Helpers the seeded (in-process) benchmarks share: a fresh migrated database and fast bulk inserts.

`benchmarks/sweeper.py` and `benchmarks/reads.py` seed hundreds of thousands of rows straight into the
tables (not through the HTTP API: that would take longer than the measurement itself), then time the
real service code in-process.

- SQLite: a temp file; rows go in with the stdlib driver's executemany in chunks (one transaction,
  ``synchronous=OFF`` while seeding), values in the form SQLAlchemy stores them.
- PostgreSQL: a fresh database (dropped and re-created; the URL can be overridden with
  ``INNKEEPER_BENCH_DATABASE_URL``); rows go in with asyncpg's binary ``COPY``
  (``copy_records_to_table``).

Both are migrated with the real ``innkeeper db upgrade`` first.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from ingest import pg_create, pg_drop
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from innkeeper.migrations.models import Base

BIN = Path(sys.executable).parent / "innkeeper"
CHUNK = 5_000
T = TypeVar("T")


def database_url(db: str, workdir: Path, pg_name: str) -> str:
    """The URL of the bench database (not created yet)."""
    if db == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
    override = os.environ.get("INNKEEPER_BENCH_DATABASE_URL")
    return override or f"postgresql://postgres@127.0.0.1:5432/{pg_name}"


def create_and_migrate(db: str, url: str) -> None:
    """Create the database (PostgreSQL: drop any leftover first) and run ``innkeeper db upgrade``."""
    if db == "postgres":
        pg_create(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INNKEEPER_")}
    env["INNKEEPER_DATABASE_URL"] = url
    subprocess.run([str(BIN), "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)


def drop(db: str, url: str) -> None:
    if db == "postgres":
        pg_drop(url)


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
        return arg(None)
    return arg


def pg_admin_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
