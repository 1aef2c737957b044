"""The set-based sweep (``sessions.service.sweep``): batches of expired sessions closed with the same
outcomes, outbox messages and ``SessionClosed`` events as closing them one by one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from innkeeper.connections import service as outbox_service
from innkeeper.connections.models import OutboxMessage
from innkeeper.core import events
from innkeeper.core.clock import iso
from innkeeper.core.ids import new_ref
from innkeeper.core.runtime import Runtime
from innkeeper.guests.models import Browser, Guest
from innkeeper.personalize.experiences.models import Flow
from innkeeper.sessions import service
from innkeeper.sessions.models import Session
from innkeeper.triggers import service as triggers
from innkeeper.triggers.models import TriggerJob
from innkeeper.worker import sweep_once
from tests.support.clock import FrozenClock

POS = "sweep-shop"


def line(item: str, quantity: float, price: float, *, confirmed: bool = False) -> dict[str, Any]:
    return {"itemId": item, "name": item, "quantity": quantity, "price": price, "confirmed": confirmed}


# (label, guest type, converted, cart) → expected (cart type, abandoned revenue)
CASES: list[tuple[str, str, bool, list[dict[str, Any]], str, float | None]] = [
    ("browsed", "visitor", False, [], "BROWSED", None),
    ("abandoned", "visitor", False, [line("A", 2, 10.5), line("B", 1, 0.333)], "ABANDONED", 21.33),
    ("abandoned-identified", "customer", False, [line("C", 3, 19.99)], "ABANDONED", 59.97),
    ("confirmed-no-checkout", "customer", False, [line("D", 1, 5.0, confirmed=True)], "ABANDONED", 5.0),
    ("converted", "customer", True, [], "CONVERTED", None),
    ("converted-cart-left", "visitor", True, [line("E", 1, 99.0)], "CONVERTED", None),
    ("browsed-customer", "customer", False, [], "BROWSED", None),
]


async def seed(runtime: Runtime, clock: FrozenClock, copies: int, *, idle_minutes: float = 45) -> dict[str, Any]:
    """``copies`` sessions of every case, idle for ``idle_minutes`` (timeout 30 min); returns ref → case."""
    made: dict[str, Any] = {}
    now = clock.now()
    last = now - timedelta(minutes=idle_minutes)
    async with runtime.sessions() as session:
        for n in range(copies):
            for label, guest_type, converted, cart, cart_type, revenue in CASES:
                guest = Guest(
                    ref=new_ref(),
                    guest_type=guest_type,
                    created_at=now,
                    modified_at=now,
                    email=f"{label}-{n}@example.com" if guest_type == "customer" else None,
                )
                browser = Browser(ref=new_ref(), guest_ref=guest.ref, created_at=now)
                row = Session(
                    ref=new_ref(),
                    guest_ref=guest.ref,
                    browser_ref=browser.ref,
                    channel="WEB",
                    point_of_sale=POS,
                    status="OPEN",
                    started_at=last - timedelta(minutes=10),
                    last_activity_at=last - timedelta(seconds=n),
                    expires_at=last - timedelta(seconds=n) + timedelta(minutes=30),
                    sweep_at=last - timedelta(seconds=n) + timedelta(minutes=30),
                    num_events=1,
                    num_views=1,
                    num_searches=0,
                    num_adds=len(cart),
                    num_selects=0,
                    num_confirms=0,
                    num_checkouts=int(converted),
                    cart=cart,
                    cart_cleared=False,
                    converted=converted,
                    order_ref=new_ref() if converted else None,
                    utm={},
                    device={},
                    session_data={},
                    created_at=now,
                    modified_at=now,
                )
                session.add(guest)
                await session.flush()
                session.add(browser)
                await session.flush()
                session.add(row)
                made[row.ref] = (label, guest.ref, guest_type, cart_type, revenue, row.last_activity_at)
        await session.commit()
    return made


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[events.SessionClosed]:
    """Every SessionClosed the code under test publishes (the real handlers still run)."""
    seen: list[events.SessionClosed] = []
    publish_many, publish = events.publish_many, events.publish

    async def many(session: Any, batch: Sequence[object]) -> None:
        seen.extend(e for e in batch if isinstance(e, events.SessionClosed))
        await publish_many(session, batch)

    async def one(session: Any, event: object) -> None:
        if isinstance(event, events.SessionClosed):
            seen.append(event)
        await publish(session, event)

    monkeypatch.setattr(events, "publish_many", many)
    monkeypatch.setattr(events, "publish", one)
    return seen


async def sweep_in_batches(runtime: Runtime, clock: FrozenClock, limit: int) -> list[int]:
    counts = []
    while True:
        async with runtime.sessions() as session:
            n = await service.sweep(session, clock=clock, limit=limit)
            await session.commit()
        counts.append(n)
        if n == 0:
            return counts


async def test_batches_close_every_expired_session_once_with_its_outcome(
    runtime: Runtime, clock: FrozenClock, published: list[events.SessionClosed]
) -> None:
    made = await seed(runtime, clock, copies=5)

    counts = await sweep_in_batches(runtime, clock, limit=8)

    assert sum(counts) == len(made) == 35
    assert counts[:4] == [8, 8, 8, 8] and counts[-1] == 0
    async with runtime.sessions() as session:
        rows = {r.ref: r for r in (await session.execute(select(Session))).scalars()}
        messages = list((await session.execute(select(OutboxMessage))).scalars())
    for ref, (label, _guest, _, cart_type, revenue, last) in made.items():
        row = rows[ref]
        assert (row.status, row.close_reason, row.cart_type) == ("CLOSED", "TIMEOUT", cart_type), label
        assert row.abandoned_revenue == revenue, label
        assert row.ended_at == last == row.last_activity_at, label
        assert row.modified_at == clock.now(), label
    assert sorted(m.idempotency_key for m in messages) == sorted(f"session.closed:{ref}" for ref in made)
    for message in messages:
        label, guest_ref, _, cart_type, revenue, last = made[message.payload["sessionRef"]]
        assert message.topic == "session.closed"
        assert message.guest_ref == guest_ref
        assert message.payload == {
            "sessionRef": message.payload["sessionRef"],
            "guestRef": guest_ref,
            "browserRef": rows[message.payload["sessionRef"]].browser_ref,
            "cartType": cart_type,
            "abandonedRevenue": revenue,
            "pointOfSale": POS,
            "closeReason": "TIMEOUT",
            "endedAt": iso(last),
        }, label
    assert sorted(e.session_ref for e in published) == sorted(made)
    for event in published:
        label, guest_ref, guest_type, cart_type, revenue, _ = made[event.session_ref]
        assert (event.guest_ref, event.cart_type, event.abandoned_revenue) == (guest_ref, cart_type, revenue), label
        assert event.closed_at == clock.now()
        assert event.identified == (cart_type == "ABANDONED" and guest_type == "customer"), label
        assert event.origin is None


async def test_the_sweep_gives_what_closing_one_by_one_gives(
    runtime: Runtime, clock: FrozenClock, published: list[events.SessionClosed]
) -> None:
    swept = await seed(runtime, clock, copies=1)
    one_by_one = await seed(runtime, clock, copies=1)
    async with runtime.sessions() as session:
        for ref in one_by_one:
            row = await session.get(Session, ref)
            assert row is not None
            await service.close(session, row, reason="TIMEOUT", clock=clock)
        await session.commit()

    assert await sweep_once(runtime) == len(swept)

    async with runtime.sessions() as session:
        rows = {r.ref: r for r in (await session.execute(select(Session))).scalars()}
        payloads = {
            m.payload["sessionRef"]: m.payload for m in (await session.execute(select(OutboxMessage))).scalars()
        }
    by_label = {made[0]: ref for made, ref in ((v, k) for k, v in one_by_one.items())}
    columns = ("status", "close_reason", "ended_at", "cart_type", "abandoned_revenue", "modified_at")
    events_of = {e.session_ref: e for e in published}
    for ref, (label, *_rest) in swept.items():
        twin = by_label[label]
        assert [getattr(rows[ref], c) for c in columns] == [getattr(rows[twin], c) for c in columns], label
        same = ("cartType", "abandonedRevenue", "pointOfSale", "closeReason", "endedAt")
        assert {k: payloads[ref][k] for k in same} == {k: payloads[twin][k] for k in same}, label
        mine, theirs = events_of[ref], events_of[twin]
        assert (mine.cart_type, mine.abandoned_revenue, mine.identified, mine.closed_at, mine.origin) == (
            theirs.cart_type,
            theirs.abandoned_revenue,
            theirs.identified,
            theirs.closed_at,
            theirs.origin,
        ), label


async def test_sessions_still_within_their_timeout_stay_open(runtime: Runtime, clock: FrozenClock) -> None:
    fresh = await seed(runtime, clock, copies=1, idle_minutes=10)
    stale = await seed(runtime, clock, copies=1, idle_minutes=31)

    assert await sweep_once(runtime) == len(stale)

    async with runtime.sessions() as session:
        status = {r.ref: r.status for r in (await session.execute(select(Session))).scalars()}
    assert {status[ref] for ref in fresh} == {"OPEN"}
    assert {status[ref] for ref in stale} == {"CLOSED"}


async def test_an_outbox_message_already_written_is_not_written_twice(runtime: Runtime, clock: FrozenClock) -> None:
    made = await seed(runtime, clock, copies=1)
    first = next(iter(made))
    async with runtime.sessions() as session:
        await outbox_service.enqueue(
            session, "session.closed", key=f"session.closed:{first}", payload={"earlier": True}, clock=clock
        )
        await session.commit()

    assert await sweep_once(runtime) == len(made)

    async with runtime.sessions() as session:
        messages = list((await session.execute(select(OutboxMessage))).scalars())
    assert len(messages) == len(made)
    assert [m.payload for m in messages if m.idempotency_key == f"session.closed:{first}"] == [{"earlier": True}]


async def test_a_session_loaded_in_the_same_unit_of_work_reads_closed_afterwards(
    runtime: Runtime, clock: FrozenClock
) -> None:
    made = await seed(runtime, clock, copies=1)
    async with runtime.sessions() as session:
        loaded = [await session.get(Session, ref) for ref in made]
        assert await service.sweep(session, clock=clock, limit=100) == len(made)
        assert {row.status for row in loaded if row is not None} == {"CLOSED"}
        await session.commit()


async def test_live_triggered_flows_get_one_job_per_closed_session(runtime: Runtime, clock: FrozenClock) -> None:
    now = clock.now()
    flows = {}
    async with runtime.sessions() as session:
        for kind in ("SESSION_CLOSED", "ABANDONED_CART"):
            flow = _live_triggered_flow(f"sweep_{kind.lower()}", kind, {"type": kind, "delayMinutes": 60}, now)
            session.add(flow)
            flows[kind] = flow.ref
        await session.commit()
    made = await seed(runtime, clock, copies=3)

    assert sum(await sweep_in_batches(runtime, clock, limit=5)) == len(made)
    assert await sweep_once(runtime) == 0

    async with runtime.sessions() as session:
        jobs = list((await session.execute(select(TriggerJob))).scalars())
    closed = sorted((j.entity_ref, j.message["cartType"]) for j in jobs if j.flow_ref == flows["SESSION_CLOSED"])
    assert closed == sorted((ref, case[3]) for ref, case in made.items())
    reminded = sorted(j.entity_ref for j in jobs if j.flow_ref == flows["ABANDONED_CART"])
    assert reminded == sorted(ref for ref, case in made.items() if case[3] == "ABANDONED" and case[2] == "customer")
    for job in jobs:
        assert (job.trigger_type, job.status) == (
            "SESSION_CLOSED" if job.flow_ref == flows["SESSION_CLOSED"] else "ABANDONED_CART",
            "PENDING",
        )
        assert job.occurred_at == now and job.run_at == now + timedelta(minutes=60)
        assert job.guest_ref == made[job.entity_ref][1]
        assert job.message == {
            "ref": job.entity_ref,
            "cartType": made[job.entity_ref][3],
            "abandonedRevenue": made[job.entity_ref][4],
        }


async def test_a_cause_that_already_has_a_job_is_not_scheduled_again(runtime: Runtime, clock: FrozenClock) -> None:
    """Scheduling skips causes a flow already has a job for, within a batch and across batches."""
    now = clock.now()
    async with runtime.sessions() as session:
        session.add(_live_triggered_flow("again", "again", {"type": "SESSION_CLOSED"}, now))
        await session.commit()

    def cause(ref: str) -> Any:
        return triggers.Cause(entity_ref=ref, guest_ref=None, message={"ref": ref}, occurred_at=now)

    async with runtime.sessions() as session:
        assert await triggers.schedule_many(session, "SESSION_CLOSED", [cause("a"), cause("b"), cause("a")]) == 2
        await session.commit()
    async with runtime.sessions() as session:
        assert await triggers.schedule_many(session, "SESSION_CLOSED", [cause("b"), cause("c")]) == 1
        await session.commit()
    async with runtime.sessions() as session:
        jobs = sorted(job.entity_ref for job in (await session.execute(select(TriggerJob))).scalars())
    assert jobs == ["a", "b", "c"]


def _live_triggered_flow(friendly_id: str, name: str, trigger: dict[str, Any], now: datetime) -> Flow:
    """A LIVE triggered email flow row, as if started in the portal."""
    return Flow(
        ref=new_ref(),
        friendly_id=friendly_id,
        name=name,
        type="TRIGGERED_V3",
        subtype="EMAIL",
        status="LIVE",
        archived=False,
        revision=1,
        published_revision=1,
        started=True,
        document={"name": name, "type": "TRIGGERED_V3", "trigger": trigger},
        created_at=now,
        modified_at=now,
    )
