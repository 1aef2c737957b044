"""The migration history builds the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper import migrations
from innkeeper.core.clock import as_utc
from innkeeper.core.db import create_engine, session_factory
from innkeeper.core.ids import new_ref
from innkeeper.guests.models import Browser, Guest
from innkeeper.sessions.models import Event, Session
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


def test_migration_0014_drops_the_plain_email_index_and_goes_down_again(db_url: str) -> None:
    # 0014 keeps one index on guests.email: ix_guests_email_lower serves the exact lookups too.
    sqlite = db_url.startswith("sqlite")
    catalog = (
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'guests'"
        if sqlite
        else "SELECT indexname FROM pg_indexes WHERE tablename = 'guests'"
    )

    def email_indexes() -> set[str]:
        engine = create_engine(db_url)

        async def names() -> set[str]:
            async with engine.connect() as connection:
                rows = (await connection.execute(text(catalog))).scalars().all()
            await engine.dispose()
            return {name for name in rows if "email" in name}

        return asyncio.run(names())

    assert email_indexes() == {"ix_guests_email_lower"}
    command.downgrade(migrations.alembic_config(db_url), "0013")
    assert email_indexes() == {"ix_guests_email", "ix_guests_email_lower"}
    migrations.upgrade(db_url)
    assert email_indexes() == {"ix_guests_email_lower"}
    migrations.check(db_url)


def test_migration_0012_fills_sweep_at_from_the_expiry_and_goes_down_again(db_url: str) -> None:
    # 0012 adds sessions.sweep_at (the sweeper's index column) and fills it with each session's expires_at.
    expiry = datetime(2026, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
    asyncio.run(_add_session(db_url, expiry))
    command.downgrade(migrations.alembic_config(db_url), "0011")
    assert "sweep_at" not in asyncio.run(_columns(db_url, "sessions"))
    migrations.upgrade(db_url)
    migrations.check(db_url)
    assert asyncio.run(_sweep_ats(db_url)) == [(expiry, expiry)]


async def _guest_with_browser(session: AsyncSession, at: datetime) -> tuple[Guest, Browser]:
    guest = Guest(ref=new_ref(), guest_type="visitor", created_at=at, modified_at=at)
    browser = Browser(ref=new_ref(), guest_ref=guest.ref, created_at=at)
    session.add(guest)
    await session.flush()
    session.add(browser)
    await session.flush()
    return guest, browser


async def _add_session(db_url: str, expiry: datetime) -> None:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            guest, browser = await _guest_with_browser(session, expiry)
            values = new_session_values(browser.ref, guest.ref, "WEB", PosInfo("shop", 30, "EN", "EUR"), None, expiry)
            session.add(Session(**{**values, "expires_at": expiry, "sweep_at": expiry - timedelta(hours=1)}))
            await session.commit()
    finally:
        await engine.dispose()


async def _columns(db_url: str, table: str) -> set[str]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: {c["name"] for c in inspect(sync).get_columns(table)})
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


def test_migration_0013_fills_each_events_line_as_the_application_writes_it(db_url: str) -> None:
    # 0013 adds events.line; the database fills it for existing rows with the JSON timeline_line writes.
    at = datetime(2026, 3, 1, 12, 30, 15, 987_654, tzinfo=UTC)
    events = [
        ("VIEW", "home", "SUCCESS", None),
        ("VIEW", None, "SUCCESS", None),
        ("VIEW", "", "SUCCESS", None),
        ("ADD", 'a "quoted" \\ page ünï ☃ 𝄞\n', "SUCCESS", None),
        ("ORDER_CHECKOUT", "cart", "FAILED", "visitor may not check out"),
        ("VIEW", "home", "FAILED", None),
    ]
    written = asyncio.run(_add_events(db_url, at, events))
    command.downgrade(migrations.alembic_config(db_url), "0012")
    assert "line" not in asyncio.run(_columns(db_url, "events"))
    migrations.upgrade(db_url)
    migrations.check(db_url)
    filled = asyncio.run(_lines(db_url))
    assert len(filled) == len(events)
    for ref, line in written.items():
        # The same keys in the same order, the same values (spacing may differ: PostgreSQL's json_build_object).
        assert list(json.loads(filled[ref]).items()) == list(json.loads(line).items())
    assert json.loads(filled[min(written)])["createdAt"] == "2026-03-01T12:30:15.987Z"


async def _add_events(
    db_url: str, at: datetime, events: list[tuple[str, str | None, str, str | None]]
) -> dict[str, str]:
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            guest, browser = await _guest_with_browser(session, at)
            rows = [
                Event(
                    ref=f"00000000-0000-4000-8000-{n:012d}",
                    type=kind,
                    browser_ref=browser.ref,
                    guest_ref=guest.ref,
                    session_ref=None,
                    page=page,
                    client_key="k",
                    created_at=at + timedelta(seconds=n),
                    modified_at=at,
                    processing_status=status,
                    failure_reason=failure,
                    warnings=[],
                    transport="HTTP",
                    raw="{}",
                )
                for n, (kind, page, status, failure) in enumerate(events)
            ]
            session.add_all(rows)
            await session.commit()
            return {row.ref: row.line for row in rows}
    finally:
        await engine.dispose()


async def _lines(db_url: str) -> dict[str, str]:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT ref, line FROM events"))).all()
            return {ref: line for ref, line in rows}
    finally:
        await engine.dispose()
