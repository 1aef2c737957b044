"""The SQLite fast paths of the batched ingest (``core.sqlite_fast``): expanding reads, executemany writes and the
one-call date-time bind store and return exactly what SQLAlchemy's own execution does.

Every test runs on both stores: on PostgreSQL the same calls go through the session as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeDecorator

from innkeeper.core.db import UTCDateTime, create_engine
from innkeeper.core.ids import new_ref
from innkeeper.core.runtime import Runtime
from innkeeper.core.sqlite_fast import LeanTransactionOnly, SqliteRead, SqliteWrite, lean_transaction
from innkeeper.guests.models import Browser, Guest, GuestIdentifier
from innkeeper.guests.repository import GuestRepository, _sqlite_owners_sql
from innkeeper.tenant import service as tenant
from tests.support.clock import FrozenClock

T0 = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
# Our SQLite driver's dialect (an engine is made, never connected: no file is opened).
_INNKEEPER_SQLITE = create_engine("sqlite:////nonexistent/never-opened.db").dialect
_GUESTS = cast(Table, Guest.__table__)
_BROWSERS = cast(Table, Browser.__table__)


def _guest(ref: str, at: datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ref": ref,
        "guest_type": "visitor",
        "merged_into": None,
        "created_at": at,
        "modified_at": at,
        "first_seen": None,
        "last_seen": None,
        "email": None,
        "emails": [],
        "phone_numbers": [],
        "street": [],
        "deleted_at": None,
    }
    row.update(values)
    return row


async def _seed(db: AsyncSession, count: int) -> list[str]:
    refs = sorted(new_ref() for _ in range(count))
    await db.execute(insert(Guest), [_guest(ref, T0 + timedelta(seconds=i)) for i, ref in enumerate(refs)])
    browsers = [
        {"ref": f"b{ref[1:]}", "guest_ref": ref, "user_agent": "ua", "created_at": T0, "last_seen": None}
        for ref in refs
    ]
    await db.execute(insert(Browser), browsers)
    return refs


_LIVE = (
    select(_BROWSERS.c.ref, _BROWSERS.c.guest_ref, _BROWSERS.c.created_at)
    .where(_BROWSERS.c.ref.in_(bindparam("refs", expanding=True)), _BROWSERS.c.deleted_at.is_(None))
    .order_by(_BROWSERS.c.ref)
    .with_for_update()
)


async def test_an_expanding_read_gives_the_rows_sqlalchemy_gives_for_every_length(db: AsyncSession) -> None:
    refs = await _seed(db, 7)
    browsers = [f"b{ref[1:]}" for ref in refs]
    await db.execute(update(Browser).where(Browser.ref == browsers[3]).values(deleted_at=T0))
    read = SqliteRead(_LIVE)
    for wanted in ([browsers[0]], browsers[:3], browsers, [*browsers[2:5], "b-unknown"], browsers[::-1]):
        expected = [tuple(row) for row in (await db.execute(_LIVE, {"refs": wanted})).all()]
        got = [tuple(row) for row in await read.rows(db, {"refs": wanted})]
        assert got == expected
        assert all(row[2] == T0 and row[2].tzinfo is UTC for row in got)  # converted as the column type would
        assert browsers[3] not in {row[0] for row in got}
    # An empty list is left to SQLAlchemy's own rendering of an empty IN.
    assert await read.rows(db, {"refs": []}) == []


def test_a_read_with_two_expanding_lists_is_left_to_sqlalchemy() -> None:
    stmt = select(_BROWSERS.c.ref).where(
        _BROWSERS.c.ref.in_(bindparam("a", expanding=True)), _BROWSERS.c.guest_ref.in_(bindparam("b", expanding=True))
    )
    read = SqliteRead(stmt)
    assert read._unsupported and read._expanding is None


_SEEN = (
    update(_GUESTS)
    .where(_GUESTS.c.ref == bindparam("b_ref"))
    .values(last_seen=bindparam("b_when"), first_seen=func.coalesce(_GUESTS.c.first_seen, bindparam("b_when")))
)


async def test_executemany_writes_store_what_sqlalchemy_stores(db: AsyncSession) -> None:
    fast_refs = sorted(new_ref() for _ in range(3))
    slow_refs = sorted(new_ref() for _ in range(3))
    rows = [
        _guest(ref, T0, emails=[f"{i}@x.test"], street=["1 Main St", "ü"], email=f"{i}@x.test")
        for i, ref in enumerate(fast_refs)
    ]
    await SqliteWrite(insert(Guest)).execute_many(db, rows)
    await db.execute(insert(Guest), [{**row, "ref": ref} for row, ref in zip(rows, slow_refs, strict=True)])
    later = T0 + timedelta(minutes=5)
    await SqliteWrite(_SEEN).execute_many(db, [{"b_ref": ref, "b_when": later} for ref in fast_refs])
    await db.execute(_SEEN, [{"b_ref": ref, "b_when": later} for ref in slow_refs])
    stored = {g.ref: g for g in (await db.execute(select(Guest).execution_options(populate_existing=True))).scalars()}
    columns = [c.key for c in _GUESTS.columns if c.key != "ref"]
    for fast, slow in zip(fast_refs, slow_refs, strict=True):
        assert {c: getattr(stored[fast], c) for c in columns} == {c: getattr(stored[slow], c) for c in columns}
        assert stored[fast].first_seen == later and stored[fast].emails and stored[fast].created_at == T0
    # The stored text is the same too (the date-time form the one-call bind writes).
    raw = (
        await db.execute(
            text("SELECT ref, created_at, last_seen FROM guests WHERE ref IN (:a, :b)"),
            {"a": fast_refs[0], "b": slow_refs[0]},
        )
    ).all()
    assert len({(str(r[1]), str(r[2])) for r in raw}) == 1


async def test_an_executemany_write_fails_as_sqlalchemy_does(db: AsyncSession) -> None:
    ref = new_ref()
    write = SqliteWrite(insert(Guest))
    await write.execute_many(db, [_guest(ref, T0)])
    with pytest.raises(IntegrityError):  # what in_transaction retries and the group commit runs alone
        await write.execute_many(db, [_guest(new_ref(), T0), _guest(ref, T0)])
    await write.execute_many(db, [])  # nothing to write: no statement


async def test_a_write_that_leaves_a_default_out_goes_through_sqlalchemy(db: AsyncSession) -> None:
    # guests.emails has a Python-side default: SQLAlchemy fills it in, so the fast path does not take this row.
    ref = new_ref()
    row = {k: v for k, v in _guest(ref, T0).items() if k not in ("emails", "phone_numbers", "street")}
    write = SqliteWrite(insert(Guest))
    await write.execute_many(db, [row])
    assert all(compiled is None for compiled in write._compiled.values())
    stored = (await db.execute(select(Guest).where(Guest.ref == ref))).scalar_one()
    assert stored.emails == [] and stored.street == []


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.just(UTC) | st.timezones(),
    )
)
def test_the_one_call_date_time_bind_writes_what_sqlalchemy_writes(value: datetime) -> None:
    dialect = _INNKEEPER_SQLITE
    impl = cast(UTCDateTime, UTCDateTime().dialect_impl(dialect))
    fast, slow = impl.bind_processor(dialect), TypeDecorator.bind_processor(impl, dialect)
    assert fast is not None and slow is not None
    assert fast(value) == slow(value)
    assert fast(None) is None


def test_the_one_call_date_time_bind_still_refuses_naive_values() -> None:
    dialect = _INNKEEPER_SQLITE
    fast = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert fast is not None
    with pytest.raises(ValueError, match="naive"):
        fast(datetime(2026, 1, 1))  # noqa: DTZ001 - the naive value refused
    assert fast(datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))).startswith("2026-01-01 00:00:00")


async def test_point_of_sale_settings_are_read_once_per_transaction(runtime: Runtime) -> None:
    clock = FrozenClock(T0)
    async with runtime.sessions() as db:
        await tenant.create_point_of_sale(db, "fast/ie", fields={"timeout_minutes": 12, "language": "EN"}, clock=clock)
        await db.commit()
    async with runtime.sessions() as db:
        found = await tenant.pos_settings(db, "fast/ie")
        assert found == tenant.PosSettings("fast/ie", 12, "EN", None)
        orm = await tenant.resolve_pos(db, "fast/ie", auto_create=False, clock=clock)
        assert orm is not None
        assert (orm.name, orm.timeout_minutes, orm.language, orm.currency_code) == (
            found.name,
            found.timeout_minutes,
            found.language,
            found.currency_code,
        )
        assert await tenant.pos_settings(db, "nope/ie") is None
        # Changed meanwhile (the point of sale API commits such a change in a transaction of its own): this
        # transaction keeps what it read; the next one reads again.
        await db.execute(text("UPDATE points_of_sale SET timeout_minutes = 30 WHERE name = 'fast/ie'"))
        assert (await tenant.pos_settings(db, "fast/ie")) is found
        await db.commit()
        assert (await tenant.pos_settings(db, "fast/ie")) == tenant.PosSettings("fast/ie", 30, "EN", None)


async def test_identifier_owners_are_found_by_the_unique_index(db: AsyncSession) -> None:
    refs = await _seed(db, 3)
    rows = [
        {"guest_ref": ref, "provider": provider, "value": f"{i}@x.test", "expiry_date": None, "created_at": T0}
        for i, ref in enumerate(refs)
        for provider in ("email", "crm")
    ]
    await db.execute(insert(GuestIdentifier), rows)
    repo = GuestRepository(db)
    wanted = [("email", "0@x.test"), ("crm", "2@x.test"), ("email", "9@x.test"), ("crm", "0@x.test")]
    expected = {("email", "0@x.test"): refs[0], ("crm", "2@x.test"): refs[2], ("crm", "0@x.test"): refs[0]}
    assert dict(await repo.identifier_owners(wanted)) == expected
    assert {(r.provider, r.value): r.guest_ref for r in await repo.owners(wanted)} == expected
    assert await repo.owners([]) == [] and await repo.identifier_owners([]) == []
    if db.get_bind().dialect.name == "sqlite":
        # SQLite answers the row-value form ((provider, value) IN (VALUES …)) by scanning the table: the fast
        # path's statement must be a search of the unique index for every pair.
        sql = (
            _sqlite_owners_sql(2)
            .replace("?", ":p", 1)
            .replace("?", ":q", 1)
            .replace("?", ":r", 1)
            .replace("?", ":s", 1)
        )
        plan = (await db.execute(text("EXPLAIN QUERY PLAN " + sql), {"p": "a", "q": "b", "r": "c", "s": "d"})).all()
        details = [row[-1] for row in plan]
        assert not any(d.startswith("SCAN") for d in details), details
        assert sum("USING INDEX" in d for d in details) == 2, details


async def test_a_lean_transaction_commits_all_or_nothing(runtime: Runtime) -> None:
    write = SqliteWrite(insert(Guest))
    kept, lost = new_ref(), new_ref()
    async with lean_transaction(runtime.engine) as session:
        if runtime.engine.dialect.name != "sqlite":
            assert session is None  # PostgreSQL: the caller takes SQLAlchemy's session
            return
        assert session is not None
        await write.execute_many(session, [_guest(kept, T0)])
        # Statements without a fast path cannot run here (they would need a second pooled connection).
        with pytest.raises(LeanTransactionOnly):
            await SqliteRead(_LIVE).rows(session, {"refs": []})  # an empty IN: SQLAlchemy's rendering
        with pytest.raises(LeanTransactionOnly):
            await write.execute_many(session, [{"ref": lost, "guest_type": "visitor"}])  # defaults left out

    async def duplicate() -> None:
        async with lean_transaction(runtime.engine) as session:
            assert session is not None
            await write.execute_many(session, [_guest(lost, T0)])
            await write.execute_many(session, [_guest(kept, T0)])  # a duplicate: the whole transaction goes

    with pytest.raises(IntegrityError):
        await duplicate()
    async with runtime.sessions() as db:
        stored = set((await db.execute(select(Guest.ref).where(Guest.ref.in_([kept, lost])))).scalars())
    assert stored == {kept}


async def test_a_very_long_expanding_list_is_left_to_sqlalchemy(db: AsyncSession) -> None:
    refs = await _seed(db, 2)
    browsers = [f"b{ref[1:]}" for ref in refs]
    read = SqliteRead(_LIVE)
    wanted = [*browsers, *(f"b-unknown-{i}" for i in range(300))]
    assert [row[0] for row in await read.rows(db, {"refs": wanted})] == sorted(browsers)
    assert all(length <= 256 for _, length in read._compiled)  # no statement kept for 302 placeholders


async def test_reads_go_past_sqlalchemys_execution_on_both_stores(db: AsyncSession) -> None:
    """On SQLite straight to sqlite3, on PostgreSQL straight to asyncpg (in the session's transaction either way):
    SQLAlchemy's cursor events see none of them, and the rows are what SQLAlchemy gives."""
    refs = await _seed(db, 3)
    browsers = [f"b{ref[1:]}" for ref in refs]
    seen: list[str] = []

    def watch(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    read = SqliteRead(_LIVE)
    expected = [tuple(row) for row in (await db.execute(_LIVE, {"refs": browsers})).all()]
    sync_engine = db.get_bind()
    sa_event.listen(sync_engine, "before_cursor_execute", watch)
    try:
        got = [tuple(row) for row in await read.rows(db, {"refs": browsers})]
        again = [tuple(row) for row in await read.rows(db, {"refs": browsers[:1]})]
    finally:
        sa_event.remove(sync_engine, "before_cursor_execute", watch)
    assert seen == []
    assert got == expected and again == [row for row in expected if row[0] == browsers[0]]
    assert [type(value) for value in got[0]] == [type(value) for value in expected[0]]
