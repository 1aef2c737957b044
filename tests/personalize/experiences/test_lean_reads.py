"""callFlows' lean reads and writes (straight on SQLite's connection there): exactly what SQLAlchemy gives.

On PostgreSQL the same functions run SQLAlchemy's statements; every test runs on both stores.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.ids import new_ref
from innkeeper.core.runtime import Runtime
from innkeeper.core.sqlite_fast import sqlite_json
from innkeeper.guests import service as guests
from innkeeper.guests.models import Guest
from innkeeper.orders import service as orders
from innkeeper.orders.models import Order, OrderItem
from innkeeper.personalize.experiences.context import MAX_EVENTS_PER_SESSION, guest_context
from innkeeper.personalize.experiences.models import FlowExecution
from innkeeper.personalize.experiences.repository import AssignmentRepository, ExecutionRepository
from innkeeper.sessions import service as sessions
from innkeeper.sessions.models import Event, Session
from tests.factories.flow_calls import identified_browser
from tests.factories.stream import event, post_event, product
from tests.support.clock import FrozenClock

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _session_row(ref: str, guest_ref: str, browser_ref: str, started: datetime, **values: Any) -> Session:
    row: dict[str, Any] = {
        "ref": ref,
        "guest_ref": guest_ref,
        "browser_ref": browser_ref,
        "channel": "WEB",
        "point_of_sale": "shop/ie",
        "status": "CLOSED",
        "started_at": started,
        "last_activity_at": started + timedelta(minutes=5),
        "expires_at": started + timedelta(minutes=35),
        "sweep_at": started + timedelta(minutes=35),
        "cart": [],
        "utm": {},
        "device": {},
        "session_data": {},
        "created_at": started,
        "modified_at": started,
    }
    row.update(values)
    return Session(**row)


def _event_row(session: Session, at: datetime, index: int, **values: Any) -> Event:
    row: dict[str, Any] = {
        "ref": f"{session.ref[:24]}-{index:011d}",
        "type": "VIEW",
        "browser_ref": session.browser_ref,
        "guest_ref": session.guest_ref,
        "session_ref": session.ref,
        "channel": "WEB",
        "point_of_sale": "shop/ie",
        "page": f"/p{index}",
        "client_key": "k",
        "created_at": at,
        "modified_at": at,
        "processing_status": "SUCCESS",
        "warnings": [],
        "transport": "test",
        "raw": json.dumps({"type": "VIEW", "page": "/p", "ext": {"n": index}, "sessionData": {"tier": "gold"}}),
    }
    row.update(values)
    return Event(**row)


async def _odd_history(client: httpx.AsyncClient, runtime: Runtime, db_kind: str) -> str:
    """A guest with sessions full of edge cases: NULLs, JSON null and nested JSON, whole seconds, long floats, a
    session of 250 events (some at the same instant), and (SQLite) values SQLAlchemy did not write."""
    browser = await identified_browser(client, "edge@example.com", first_name="Edge")
    async with runtime.sessions() as db:
        guest_ref = (await guests.get_browser(db, browser["ref"])).guest_ref
        busy = _session_row(
            new_ref(), guest_ref, browser["ref"], T0, cart=None, utm={"utm_source": "x", "n": [1, 2.5, None]}
        )
        rows: list[Any] = [
            busy,
            _session_row(
                new_ref(),
                guest_ref,
                browser["ref"],
                T0 - timedelta(days=1),
                ended_at=T0 - timedelta(days=1) + timedelta(minutes=5),
                cart=[{"itemId": "a", "price": 189.98000000000002}],
                cart_type="ABANDONED",
                abandoned_revenue=189.98000000000002,
                value=0.30000000000000004,
                device={"type": "desktop", "os": "Linux"},
                session_data={"nested": {"a": [1, {"b": "ü"}]}},
                language="EN",
                currency_code="EUR",
                origin="stream",
                close_reason="TIMEOUT",
                referrer="https://r.example/",
            ),
            _session_row(new_ref(), guest_ref, browser["ref"], T0 - timedelta(days=2, microseconds=-1)),
        ]
        db.add_all(rows)
        await db.flush()
        events = []
        for i in range(250):
            at = T0 + timedelta(seconds=i // 2)  # pairs at the same instant: ordered by ref
            extra: dict[str, Any] = {"page": None} if i % 7 == 0 else {}
            if i % 11 == 0:
                extra["language"], extra["currency"] = "EN", "EUR"
            events.append(_event_row(busy, at, i, **extra))
        events.append(_event_row(rows[1], T0 - timedelta(days=1, seconds=-1), 1000, type="ADD", raw="not json"))
        db.add_all(events)
        await db.flush()
        if db_kind == "sqlite":
            # Forms only a foreign writer leaves: a datetime without its fraction, JSON beyond msgspec's reach.
            await db.execute(
                text("UPDATE sessions SET ended_at = '2026-02-27 12:05:00', utm = '{\"big\": 1e400}' WHERE ref = :ref"),
                {"ref": rows[2].ref},
            )
        await db.commit()
    return guest_ref


@pytest.mark.parametrize("with_raw", [False, True])
async def test_the_lean_history_read_gives_what_the_statements_give(
    client: httpx.AsyncClient, runtime: Runtime, db_kind: str, with_raw: bool
) -> None:
    guest_ref = await _odd_history(client, runtime, db_kind)
    async with runtime.sessions() as db:
        # The reference: the same columns through SQLAlchemy's own execution.
        session_columns = [Session.__table__.c[name] for name in sessions.CONTEXT_SESSION_COLUMNS]
        expected_sessions = (
            await db.execute(
                select(*session_columns)
                .where(Session.guest_ref == guest_ref)
                .order_by(Session.started_at.desc(), Session.ref)
            )
        ).all()
        event_columns = [Event.__table__.c[name] for name in sessions.CONTEXT_EVENT_COLUMNS]
        expected_events = (
            await db.execute(
                select(*event_columns, *([Event.raw] if with_raw else []))
                .where(Event.session_ref.in_([row.ref for row in expected_sessions]))
                .order_by(Event.created_at, Event.ref)
            )
        ).all()
        heads = await sessions.context_heads(db, guest_ref, limit=50)
        got_sessions, got_events = await sessions.context_rows(db, [ref for ref, _ in heads], with_raw=with_raw)
        limited = await sessions.context_heads(db, guest_ref, limit=2)
        none = await sessions.context_rows(db, [new_ref()], with_raw=with_raw)

    assert [tuple(head) for head in heads] == [(row[0], row[5]) for row in expected_sessions]
    got_sessions.sort(key=lambda row: [row[0] for row in expected_sessions].index(row[0]))
    assert len(got_sessions) == 4 and len(got_events) == 250 + 1 + 1  # + the IDENTITY session's event
    _same(got_sessions, expected_sessions)
    _same(got_events, expected_events)
    assert [row[0] for row in limited] == [row[0] for row in got_sessions[:2]]
    assert none == ([], [])
    starts = [row[sessions.CONTEXT_SESSION_COLUMNS.index("started_at")] for row in got_sessions]
    assert all(at.tzinfo is not None and at.utcoffset() == timedelta(0) for at in starts)
    if db_kind == "sqlite":
        by_start = {row[7]: dict(zip(sessions.CONTEXT_SESSION_COLUMNS, row, strict=True)) for row in got_sessions}
        oldest = by_start[T0 - timedelta(days=2, microseconds=-1)]
        assert oldest["ended_at"] == datetime(2026, 2, 27, 12, 5, tzinfo=UTC) and math.isinf(oldest["utm"]["big"])


def _same(got: Sequence[Any], expected: Sequence[Any]) -> None:
    assert [tuple(row) for row in got] == [tuple(row) for row in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert [type(value) for value in mine] == [type(value) for value in theirs]


async def test_the_guest_context_keeps_the_newest_events_of_a_long_session_in_order(
    client: httpx.AsyncClient, runtime: Runtime, db_kind: str
) -> None:
    guest_ref = await _odd_history(client, runtime, db_kind)
    async with runtime.sessions() as db:
        guest = await guests.find_live_guest(db, ref=guest_ref)
        assert guest is not None
        context = await guest_context(db, guest, needs={"sessions", "event_data"})
    by_start = {item["startedAt"]: item for item in context["sessions"]}
    busy = by_start[T0]
    assert busy["startedAt"] == T0 and busy["cart"] == [] and busy["utm"] == {"utm_source": "x", "n": [1, 2.5, None]}
    events = busy["events"]
    assert len(events) == MAX_EVENTS_PER_SESSION and busy["interactions"] is events
    assert [e["arbitraryData"]["ext"]["n"] for e in events] == list(range(50, 250))
    assert events[0]["sessionData"] == {"tier": "gold"} and events[0]["date"] is events[0]["createdAt"]
    assert events[0]["page"] == events[0]["arbitraryData"]["page"] == "/p50"
    assert events[6]["page"] is None and "page" not in events[6]["arbitraryData"]  # event 56
    abandoned = by_start[T0 - timedelta(days=1)]
    assert abandoned["abandonedRevenue"] == 189.98000000000002 and abandoned["value"] == 0.30000000000000004
    assert abandoned["events"][0]["arbitraryData"] == {"page": "/p1000"}  # its message is not JSON
    assert abandoned["events"][0]["type"] == "ADD" and abandoned["events"][0]["sessionData"] == {}


async def test_the_guest_profile_of_a_browser_holds_the_orm_rows_values(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    browser = await identified_browser(client, "pro@example.com", first_name="Pro")
    await post_event(client, event(browser["ref"], "ADD", product=product()))
    async with runtime.sessions() as db:
        orm = await guests.live_guest_of_browser(db, browser["ref"].upper())
        assert orm is not None
        await db.execute(
            update(Guest).where(Guest.ref == orm[0].ref).values(phone_numbers=["+353 1"], date_of_birth="1990-04-01")
        )
        await db.commit()
    async with runtime.sessions() as db:
        orm = await guests.live_guest_of_browser(db, browser["ref"])
        found = await guests.live_profile_of_browser(db, browser["ref"].upper())
        assert orm is not None and found is not None
        profile, browser_ref = found
        assert browser_ref == orm[1] == browser["ref"]
        for name in profile.__dataclass_fields__:
            assert getattr(profile, name) == getattr(orm[0], name), name
            assert type(getattr(profile, name)) is type(getattr(orm[0], name)), name
        assert profile.phone_numbers == ["+353 1"] and profile.first_seen is not None
        assert profile.first_seen.tzinfo is not None
        assert await guests.live_profile_of_browser(db, "00000000-0000-4000-8000-000000000000") is None
        assert await guests.live_profile_of_browser(db, "not-a-ref") is None
        await guests.hide(db, profile.ref, clock=clock)
        await db.commit()
    async with runtime.sessions() as db:
        assert await guests.live_profile_of_browser(db, browser["ref"]) is None


async def test_lean_inserts_store_what_sqlalchemy_stores_and_fail_like_it(db: AsyncSession) -> None:
    at = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    row: dict[str, Any] = {
        "ref": new_ref(),
        "flow_ref": None,
        "flow_revision": 3,
        "variant_ref": "v",
        "outcome": "variant",
        "guest_ref": None,
        "browser_ref": None,
        "session_ref": None,
        "channel": "WEB",
        "point_of_sale": "shop/ie",
        "friendly_id_requested": "ü-flow",
        "duration_ms": 1.25,
        "error": None,
        "correlation_id": None,
        "created_at": at,
    }
    await ExecutionRepository(db).insert(row)
    other = {**row, "ref": new_ref(), "created_at": at.astimezone(UTC).replace(microsecond=0)}
    await db.execute(insert(FlowExecution), other)
    stored = {r.ref: r for r in (await db.execute(select(FlowExecution))).scalars()}
    for written in (row, other):
        found = stored[written["ref"]]
        assert {key: getattr(found, key) for key in written} == written
    assignment = {
        "flow_ref": "f",
        "guest_key": "g",
        "allocated": True,
        "variant_ref": "v",
        "method": "hash",
        "bucket": 7,
        "assigned_at": at,
    }
    repo = AssignmentRepository(db)
    await repo.insert(assignment)
    assert await repo.decision("f", "g") == (True, "v")
    with pytest.raises(IntegrityError):  # what in_transaction retries
        await repo.insert(assignment)


def test_the_fast_paths_fall_back_to_the_column_types_processors() -> None:
    calls: list[Any] = []

    def slow(value: Any) -> Any:
        calls.append(value)
        return "slow"

    assert sqlite_json("{}", slow) == {} and sqlite_json("[]", slow) == []
    assert sqlite_json('{"a": [1, 2.5, null, "\\u00fc"]}', slow) == {"a": [1, 2.5, None, "ü"]}
    # What msgspec refuses is read as the engine's deserializer reads it (json.loads), not by the slow path.
    assert math.isnan(sqlite_json('{"x": NaN}', slow)["x"]) and sqlite_json("1e400", slow) == math.inf
    assert sqlite_json(b"[1]", slow) == "slow"  # not text: the column type's processor
    assert calls == [b"[1]"]
    first, second = sqlite_json("{}", slow), sqlite_json("{}", slow)
    assert first is not second  # a new object each time, as a decoder gives


async def test_the_lean_orders_read_gives_what_the_orm_gives(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await identified_browser(client, "buyer@example.com", first_name="Bea")
    async with runtime.sessions() as db:
        guest_ref = (await guests.get_browser(db, browser["ref"])).guest_ref
        made: list[Any] = []
        for n, (ordered, created) in enumerate(
            [(T0, T0), (T0, T0 + timedelta(seconds=1)), (T0 - timedelta(days=3), T0)]
        ):
            order = Order(
                ref=new_ref(),
                guest_ref=guest_ref,
                reference_id=f"ORD-{n}",
                status="PURCHASED",
                currency_code="EUR" if n else None,
                price=0.1 + 0.2 * n,
                payment_type="Card" if n == 1 else None,
                channel="WEB",
                point_of_sale="shop/ie",
                ordered_at=ordered,
                created_at=created,
                modified_at=created,
            )
            made.append(order)
            for i in range(n + 1):
                made.append(
                    OrderItem(
                        ref=new_ref(),
                        order_ref=order.ref,
                        item_id=f"I{i}",
                        type="BET" if i else None,
                        name="ü" * (i + 1),
                        quantity=i + 1,
                        price=99.99000000000001,
                        currency_code="EUR",
                        created_at=None if i == 1 else T0 + timedelta(microseconds=i),
                    )
                )
        db.add_all(made)
        await db.commit()
    async with runtime.sessions() as db:
        order_rows, item_rows = await orders.context_orders(db, guest_ref, limit=2)
        orm = await orders.orders_for_guest(db, guest_ref, limit=2)
        orm_items = await orders.items_of_orders(db, [order.ref for order in orm])
        none = await orders.context_orders(db, new_ref(), limit=50)
    assert [row[0] for row in order_rows] == [order.ref for order in orm] and len(order_rows) == 2
    assert [row[2] for row in order_rows] == ["PURCHASED", "PURCHASED"]
    for row, order in zip(order_rows, orm, strict=True):
        expected = tuple(getattr(order, name) for name in orders.CONTEXT_ORDER_COLUMNS)
        assert tuple(row) == expected and [type(v) for v in row] == [type(v) for v in expected]
    assert [row[0] for row in item_rows] == [item.ref for item in orm_items] and len(item_rows) == 3
    for row, item in zip(item_rows, orm_items, strict=True):
        expected = tuple(getattr(item, name) for name in orders.CONTEXT_ITEM_COLUMNS)
        assert tuple(row) == expected and [type(v) for v in row] == [type(v) for v in expected]
    assert none == ([], [])
