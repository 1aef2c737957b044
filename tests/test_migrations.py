"""The migration history builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import inspect, select

from innkeeper import migrations
from innkeeper.core.clock import as_utc
from innkeeper.core.db import create_engine, session_factory
from innkeeper.core.ids import new_ref
from innkeeper.guests.models import Browser, Guest
from innkeeper.sessions.models import Session
from innkeeper.sessions.service import PosInfo, new_session_values


def test_models_and_migrations_agree(db_url: str) -> None:
    # db_url was built by `upgrade head`; autogenerate must find nothing left to do.
    migrations.check(db_url)


def test_upgrade_is_idempotent(db_url: str) -> None:
    migrations.upgrade(db_url)
    migrations.check(db_url)


def test_migrations_0010_and_0011_go_down_and_up_again(db_url: str) -> None:
    # 0010 turns PostgreSQL's bulk references into triggers (down restores the constraints), 0011 drops an index.
    command.downgrade(migrations.alembic_config(db_url), "0009")
    migrations.upgrade(db_url)
    migrations.check(db_url)


def test_migration_0012_fills_sweep_at_from_the_expiry_and_goes_down_again(db_url: str) -> None:
    # 0012 adds sessions.sweep_at (the sweeper's index column) and fills it with each session's expires_at.
    expiry = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
    asyncio.run(_add_session(db_url, expiry))
    command.downgrade(migrations.alembic_config(db_url), "0011")
    assert "sweep_at" not in asyncio.run(_session_columns(db_url))
    migrations.upgrade(db_url)
    migrations.check(db_url)
    assert asyncio.run(_sweep_ats(db_url)) == [(expiry, expiry)]


async def _add_session(db_url: str, expiry: datetime) -> None:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            guest = Guest(ref=new_ref(), guest_type="visitor", created_at=expiry, modified_at=expiry)
            browser = Browser(ref=new_ref(), guest_ref=guest.ref, created_at=expiry)
            session.add(guest)
            await session.flush()
            session.add(browser)
            await session.flush()
            values = new_session_values(browser.ref, guest.ref, "WEB", PosInfo("shop", 30, "EN", "EUR"), None, expiry)
            session.add(Session(**{**values, "expires_at": expiry, "sweep_at": expiry - timedelta(hours=1)}))
            await session.commit()
    finally:
        await engine.dispose()


async def _session_columns(db_url: str) -> set[str]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns("sessions")})
    finally:
        await engine.dispose()


async def _sweep_ats(db_url: str) -> list[tuple[datetime, datetime]]:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            rows = (await session.execute(select(Session.expires_at, Session.sweep_at))).all()
            return [(as_utc(a), as_utc(b)) for a, b in rows]
    finally:
        await engine.dispose()
