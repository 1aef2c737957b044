"""Test databases built from the migrations: an SQLite template file or a PostgreSQL database per worker."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa

from innkeeper import migrations

TABLES_IN_DELETE_ORDER = (
    "user_sessions",
    "users",
    "deliveries",
    "trigger_jobs",
    "email_suppressions",
    "flow_executions",
    "flow_assignments",
    "flow_revisions",
    "flows",
    "batch_errors",
    "batches",
    "jobs",
    "audit_log",
    "order_extensions",
    "order_consumers",
    "order_contacts",
    "guest_extensions",
    "events",
    "sessions",
    "order_items",
    "orders",
    "guest_identifiers",
    "browsers",
    "guests",
    "outbox",
    "connections",
    "api_tokens",
    "points_of_sale",
    "tenant",
)


def run_sync(factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion in a fresh thread (a loop may already run in this one,
    e.g. Playwright's sync API)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(factory())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def sqlite_template(directory: Path) -> Path:
    """Migrate an SQLite file once; tests copy it."""
    path = directory / "template.db"
    if not path.exists():
        migrations.upgrade(f"sqlite:///{path}")
    return path


def sqlite_copy(template: Path, directory: Path) -> str:
    """A fresh copy of the migrated template."""
    target = directory / "innkeeper.db"
    shutil.copyfile(template, target)
    return f"sqlite+innkeeper:///{target}"


def with_database(url: str, name: str) -> str:
    """The same server URL with another database name."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def postgres_database(admin_url: str, name: str) -> str:
    """(Re)create a database named ``name`` on the server and migrate it."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def recreate() -> None:
        engine = create_async_engine(
            admin_url.replace("postgresql://", "postgresql+asyncpg://", 1), isolation_level="AUTOCOMMIT"
        )
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        await engine.dispose()

    run_sync(recreate)
    url = with_database(admin_url, name)
    migrations.upgrade(url)
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def truncate(url: str) -> None:
    """Empty every table (PostgreSQL), keeping the migrated schema, and restart its id sequences.

    DELETE, child tables first, in one statement, rather than TRUNCATE: a test leaves a few rows, and TRUNCATE of
    thirty tables swaps thirty sets of files and syncs them at commit (0.4–0.7 s a test on a machine with slow
    fsync, against a few milliseconds here)."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.begin() as conn:
        if url not in _EMPTYING:
            tables = set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
            unknown = tables - set(TABLES_IN_DELETE_ORDER) - {"alembic_version"}
            assert not unknown, f"add {sorted(unknown)} to TABLES_IN_DELETE_ORDER"
            sequences = (await conn.execute(sa.text(_OWNED_SEQUENCES))).scalars().all()
            statements = [f"DELETE FROM {table};" for table in TABLES_IN_DELETE_ORDER]
            statements += [f"ALTER SEQUENCE {name} RESTART;" for name in sequences]
            _EMPTYING[url] = "DO $$ BEGIN " + " ".join(statements) + " END $$"
        await conn.execute(sa.text(_EMPTYING[url]))
    await engine.dispose()


_EMPTYING: dict[str, str] = {}  # the statement that empties a database, per URL (its schema does not change)


# The sequences of serial columns (RESTART IDENTITY restarted them): ids start at 1 in every test.
_OWNED_SEQUENCES = (
    "SELECT quote_ident(s.relname) FROM pg_class s JOIN pg_depend d ON d.objid = s.oid AND d.deptype = 'a'"
    " WHERE s.relkind = 'S'"
)


def drop_database(admin_url: str, name: str) -> None:
    """Drop a test database at the end of the session."""
    from sqlalchemy.ext.asyncio import create_async_engine

    async def drop() -> None:
        engine = create_async_engine(
            admin_url.replace("postgresql://", "postgresql+asyncpg://", 1), isolation_level="AUTOCOMMIT"
        )
        async with engine.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await engine.dispose()

    run_sync(drop)
