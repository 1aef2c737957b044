"""The guest timeline read model (``sessions.views.timeline``, spec cdp.md §5.5, §12.3).

The timeline reads plain rows and formats times in SQL to stay within its budget (issue 8: a 5,000-event
guest in p95 ≤ 20 ms). These tests hold it to the straightforward definition — ORM objects, ``iso()``,
the §5.3 session record — on rows built to hit the edge cases: open and closed sessions, times with and
without milliseconds, events at the same instant, failed events, empty and missing pages, an event in the
guest's session that belongs to another guest, carts and JSON fields, the filters and the 100-session cap.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import iso
from innkeeper.core.runtime import Runtime
from innkeeper.guests.models import Browser, Guest
from innkeeper.sessions import views
from innkeeper.sessions.models import Event, Session
from innkeeper.sessions.service import duration, session_type

T0 = datetime(2026, 1, 15, 9, 0, 0, tzinfo=UTC)


def expected_session(row: Session) -> dict[str, Any]:
    """The §5.3 session record, written the plain way from an ORM object."""
    end = row.ended_at or row.last_activity_at
    return {
        "ref": row.ref,
        "guestRef": row.guest_ref,
        "browserRef": row.browser_ref,
        "sessionType": session_type(row.channel),
        "channel": row.channel,
        "pointOfSale": row.point_of_sale,
        "status": row.status,
        "closeReason": row.close_reason,
        "startedAt": iso(row.started_at),
        "lastActivityAt": iso(row.last_activity_at),
        "endedAt": iso(row.ended_at),
        "duration": duration(row.started_at, end),
        "language": row.language,
        "currencyCode": row.currency_code,
        "firstPageUri": row.first_page,
        "lastPageUri": row.last_page,
        "numEvents": row.num_events,
        "numViews": row.num_views,
        "numSearches": row.num_searches,
        "numAdds": row.num_adds,
        "numSelects": row.num_selects,
        "numConfirms": row.num_confirms,
        "numCheckouts": row.num_checkouts,
        "cartType": row.cart_type,
        "cart": list(row.cart or []),
        "abandonedRevenue": row.abandoned_revenue,
        "value": row.value,
        "orderRef": row.order_ref,
        "utm": dict(row.utm or {}),
        "referrer": row.referrer,
        "userAgent": row.user_agent,
        "device": dict(row.device or {}),
        "sessionData": dict(row.session_data or {}),
        "createdAt": iso(row.created_at),
        "modifiedAt": iso(row.modified_at),
    }


def expected_line(event: Event) -> dict[str, Any]:
    if event.processing_status == "FAILED" and event.failure_reason:
        summary = f"{event.type} failed: {event.failure_reason}"
    elif event.processing_status == "FAILED":
        summary = f"{event.type} failed"
    else:
        summary = f"{event.type} on {event.page}" if event.page else event.type
    return {
        "ref": event.ref,
        "type": event.type,
        "createdAt": iso(event.created_at),
        "page": event.page,
        "processingStatus": event.processing_status,
        "summary": summary,
    }


async def expected_timeline(
    db: AsyncSession,
    guest_ref: str,
    *,
    channel: str | None = None,
    cart_type: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    stmt = select(Session).where(Session.guest_ref == guest_ref)
    if channel:
        stmt = stmt.where(Session.channel == channel)
    if cart_type:
        stmt = stmt.where(Session.cart_type == cart_type)
    if start:
        stmt = stmt.where(Session.started_at >= start)
    if end:
        stmt = stmt.where(Session.started_at <= end)
    rows = list((await db.execute(stmt.order_by(Session.started_at.desc(), Session.ref).limit(100))).scalars())
    events = list(
        (
            await db.execute(
                select(Event).where(Event.session_ref.in_([r.ref for r in rows])).order_by(Event.created_at, Event.ref)
            )
        ).scalars()
    )
    return [
        {**expected_session(r), "events": [expected_line(e) for e in events if e.session_ref == r.ref]} for r in rows
    ]


def _ref(kind: int, n: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{n:012x}"


def _session(n: int, guest: str, browser: str | None, at: datetime, **fields: Any) -> Session:
    values: dict[str, Any] = {
        "ref": _ref(2, n),
        "guest_ref": guest,
        "browser_ref": browser,
        "channel": "WEB",
        "point_of_sale": "shop/ie",
        "status": "CLOSED",
        "close_reason": "TIMEOUT",
        "started_at": at,
        "last_activity_at": at + timedelta(minutes=7, seconds=13, microseconds=999_999),
        "expires_at": at + timedelta(minutes=37),
        "sweep_at": at + timedelta(minutes=37),
        "ended_at": at + timedelta(minutes=7, seconds=13, microseconds=999_999),
        "cart": [],
        "utm": {},
        "device": {},
        "session_data": {},
        "cart_type": "BROWSED",
        "created_at": at,
        "modified_at": at + timedelta(minutes=7),
    }
    values.update(fields)
    return Session(**values)


def _event(n: int, session: Session, at: datetime, **fields: Any) -> Event:
    values: dict[str, Any] = {
        "ref": _ref(3, n),
        "type": "VIEW",
        "browser_ref": session.browser_ref,
        "guest_ref": session.guest_ref,
        "session_ref": session.ref,
        "channel": session.channel,
        "point_of_sale": session.point_of_sale,
        "page": "home",
        "client_key": "k" * 32,
        "created_at": at,
        "modified_at": at,
        "processing_status": "SUCCESS",
        "warnings": [],
        "transport": "HTTP",
        "raw": "{}",
    }
    values.update(fields)
    return Event(**values)


async def seed(runtime: Runtime) -> str:
    """A guest with 4 varied sessions, another guest with one; returns the first guest's ref."""
    guest, other = _ref(1, 1), _ref(1, 2)
    browser, other_browser = _ref(4, 1), _ref(4, 2)
    async with runtime.sessions() as db:
        for ref in (guest, other):
            db.add(Guest(ref=ref, guest_type="customer", created_at=T0, modified_at=T0, emails=[], street=[]))
        await db.flush()
        db.add(Browser(ref=browser, guest_ref=guest, created_at=T0))
        db.add(Browser(ref=other_browser, guest_ref=other, created_at=T0))
        await db.flush()
        closed = _session(
            1,
            guest,
            browser,
            T0.replace(microsecond=123_456),
            language="EN",
            currency_code="EUR",
            first_page="home",
            last_page="cart",
            num_events=6,
            num_views=3,
            num_adds=2,
            cart_type="ABANDONED",
            cart=[{"item_id": "SKU_1", "price": 49.5, "quantity": 2, "name": "Trail shoe ☃ <b>"}],
            abandoned_revenue=99.0,
            utm={"source": "mail", "campaign": "spring"},
            referrer="https://example.com/?q=1",
            user_agent="Mozilla/5.0",
            device={"type": "desktop", "os": "Linux", "nested": {"a": [1, 2.5, None, True]}},
            session_data={"flag": False},
        )
        still_open = _session(
            2,
            guest,
            browser,
            T0 + timedelta(hours=2),
            status="OPEN",
            close_reason=None,
            ended_at=None,
            cart_type=None,
            channel="MOBILE_APP",
        )
        converted = _session(
            3,
            guest,
            None,
            T0 + timedelta(days=3),
            channel="CALL_CENTER",
            cart_type="CONVERTED",
            value=300.0,
            order_ref=_ref(5, 1),
            close_reason="FORCE_CLOSE",
            # Ended before its last activity: the duration is never negative.
            ended_at=T0 + timedelta(days=3) - timedelta(seconds=5),
        )
        empty = _session(4, guest, browser, T0 + timedelta(days=4), num_events=0)
        db.add_all([closed, still_open, converted, empty])
        await db.flush()
        at = closed.started_at
        db.add_all(
            [
                _event(1, closed, at),
                # Two events at the same instant: ordered by ref.
                _event(3, closed, at + timedelta(seconds=1), page=None),
                _event(2, closed, at + timedelta(seconds=1), page=""),
                _event(4, closed, at + timedelta(seconds=2), type="ADD", page="cart & <more>"),
                _event(
                    5,
                    closed,
                    at + timedelta(seconds=3),
                    type="ORDER_CHECKOUT",
                    processing_status="FAILED",
                    failure_reason="visitor may not check out",
                ),
                _event(6, closed, at + timedelta(seconds=4), processing_status="FAILED", failure_reason=None),
                # Sent before an identity switch: in the guest's session, stored for another guest.
                _event(7, closed, at + timedelta(seconds=5), guest_ref=other, browser_ref=other_browser),
                _event(8, still_open, still_open.started_at.replace(microsecond=0), type="IDENTITY", page="app"),
                _event(9, still_open, still_open.started_at + timedelta(microseconds=1_999)),
                _event(10, converted, converted.started_at + timedelta(minutes=1), browser_ref=browser),
                # The other guest's session and a session-less event (batch tracking) are not on the timeline.
                _event(11, _session(99, other, other_browser, T0), T0, session_ref=None, guest_ref=guest),
            ]
        )
        db.add(_session(99, other, other_browser, T0))
        await db.commit()
    return guest


def _encoded(items: list[dict[str, Any]]) -> bytes:
    """What the REST route sends (msgspec): the comparison is byte for byte, key order included."""
    return msgspec.json.encode(items)


async def test_the_timeline_is_the_plain_definition_byte_for_byte(runtime: Runtime) -> None:
    guest = await seed(runtime)
    async with runtime.sessions() as db:
        items = await views.timeline(db, guest)
        expected = await expected_timeline(db, guest)
    assert [item["ref"] for item in items] == [_ref(2, n) for n in (4, 3, 2, 1)]
    lines = views.timeline_events(items[3]["events"])
    assert [line["ref"] for line in lines] == [_ref(3, n) for n in (1, 2, 3, 4, 5, 6, 7)]
    assert lines[4]["summary"] == "ORDER_CHECKOUT failed: visitor may not check out"
    assert lines[5]["summary"] == "VIEW failed"  # no reason stored
    assert [line["summary"] for line in lines[1:3]] == ["VIEW", "VIEW"]
    assert items[3]["startedAt"] == "2026-01-15T09:00:00.123Z"
    assert items[3]["duration"] == 7.13
    assert items[2]["endedAt"] is None
    assert views.timeline_events(items[2]["events"])[1]["createdAt"] == "2026-01-15T11:00:00.001Z"
    assert items[1]["duration"] == 0
    assert views.timeline_events(items[0]["events"]) == []
    assert _encoded(items) == _encoded(expected)


@pytest.mark.parametrize(
    "filters",
    [
        {"channel": "WEB"},
        {"channel": "MOBILE_APP"},
        {"cart_type": "ABANDONED"},
        {"cart_type": "CONVERTED", "channel": "CALL_CENTER"},
        {"start": T0 + timedelta(hours=1)},
        {"end": T0 + timedelta(days=3)},
        {"start": T0 + timedelta(hours=2), "end": T0 + timedelta(hours=2)},
        {"channel": "EMAIL"},
    ],
)
async def test_the_filters_select_the_same_sessions(runtime: Runtime, filters: dict[str, Any]) -> None:
    guest = await seed(runtime)
    async with runtime.sessions() as db:
        items = await views.timeline(db, guest, **filters)
        expected = await expected_timeline(db, guest, **filters)
    assert _encoded(items) == _encoded(expected)


async def test_the_last_100_sessions_newest_first(runtime: Runtime) -> None:
    guest = await seed(runtime)
    async with runtime.sessions() as db:
        browser = _ref(4, 1)
        for n in range(110):
            row = _session(1000 + n, guest, browser, T0 - timedelta(days=1, minutes=n))
            db.add(row)
            await db.flush()
            db.add(_event(1000 + n, row, row.started_at + timedelta(seconds=1)))
        await db.commit()
    async with runtime.sessions() as db:
        items = await views.timeline(db, guest)
        expected = await expected_timeline(db, guest)
    assert len(items) == views.TIMELINE_LIMIT
    assert _encoded(items) == _encoded(expected)


async def test_no_sessions_no_items(runtime: Runtime) -> None:
    guest = await seed(runtime)
    async with runtime.sessions() as db:
        assert await views.timeline(db, guest, channel="EMAIL") == []
        assert await views.timeline(db, _ref(1, 77)) == []


async def test_each_sessions_events_in_time_order_whatever_order_they_were_stored_in(runtime: Runtime) -> None:
    # The database joins each session's stored lines (events.line) into one array: in (created_at, ref) order,
    # not in the order the rows were written (here shuffled, many rows per session, ties on the instant).
    guest = await seed(runtime)
    rng = random.Random(8)
    async with runtime.sessions() as db:
        rows = [_session(2000 + n, guest, _ref(4, 1), T0 - timedelta(days=2, minutes=n)) for n in range(6)]
        db.add_all(rows)
        await db.flush()
        events = [
            _event(2000 + 40 * k + n, row, row.started_at + timedelta(seconds=n // 3), page=f"p{n}")
            for k, row in enumerate(rows)
            for n in range(40)
        ]
        rng.shuffle(events)
        for event in events:
            db.add(event)
            await db.flush()
        await db.commit()
    async with runtime.sessions() as db:
        items = await views.timeline(db, guest)
        expected = await expected_timeline(db, guest)
    stored = {item["ref"]: [line["ref"] for line in views.timeline_events(item["events"])] for item in items}
    for k, row in enumerate(rows):
        assert stored[row.ref] == sorted(_ref(3, 2000 + 40 * k + n) for n in range(40))  # ties: by ref
    assert _encoded(items) == _encoded(expected)


async def test_the_join_follows_the_index_order_with_no_sort(runtime: Runtime, db_kind: str) -> None:
    # SQLite 3.40's group_concat has no ORDER BY: a session's lines come in the order GROUP BY reads its rows,
    # which is ix_events_session_created's order only while the plan walks that index and sorts nothing.
    # PostgreSQL's string_agg reads them from a subquery ordered by (created_at, ref), with nothing between the
    # two that could reorder them (no join, no sort, no hash at the aggregate's level).
    refs = [_ref(2, n) for n in range(3)]
    async with runtime.sessions() as db:
        if db_kind == "sqlite":
            bound = views._events_statement("sqlite").params(session_refs=refs)
            sql = bound.compile(dialect=db.get_bind().dialect, compile_kwargs={"literal_binds": True})
            details = [row[-1] for row in (await db.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()]
            assert any("USING INDEX ix_events_session_created (session_ref=?)" in d for d in details), details
            assert not any("TEMP B-TREE" in d for d in details), details
        else:
            sql = views._events_statement("postgresql").compile(dialect=db.get_bind().dialect)
            connection = await db.connection()
            plan = (await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", (refs,))).scalar_one()
            aggregate = _plan_nodes(plan[0]["Plan"], "Aggregate")
            assert len(aggregate) == 1, plan
            below = aggregate[0]["Plans"]
            assert [node["Node Type"] for node in below] in (["Index Scan"], ["Sort"]), below
            if below[0]["Node Type"] == "Index Scan":
                assert below[0]["Index Name"] == "ix_events_session_created", below


def _plan_nodes(node: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    found = [node] if node["Node Type"] == kind else []
    for child in node.get("Plans", []):
        found += _plan_nodes(child, kind)
    return found
