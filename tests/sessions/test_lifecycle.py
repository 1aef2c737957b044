"""Session lifecycle over time (spec §5.2): timeouts, the sweeper, session keys, FORCE_CLOSE."""

from __future__ import annotations

import itertools

import httpx
from sqlalchemy import text

from innkeeper.core.clock import iso
from innkeeper.core.runtime import Runtime
from innkeeper.sessions import service as sessions
from innkeeper.worker import sweep_once
from tests.conftest import CLIENT_KEY, POINT_OF_SALE
from tests.factories.sessions import (
    ADMIN,
    browser_sessions,
    create_pos,
    open_sessions,
    outbox,
    send,
    timeline,
    update_pos,
)
from tests.factories.stream import create_browser
from tests.support.clock import FrozenClock


async def test_sweeper_closes_an_idle_session_and_the_next_event_opens_a_new_one(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], page="home")
    clock.advance(minutes=5)
    await send(client, browser["ref"], page="shoes")
    last_activity = clock.now()

    clock.advance(minutes=21)
    assert await sweep_once(runtime) == 1

    [closed] = await browser_sessions(runtime, browser["ref"])
    assert closed.status == "CLOSED"
    assert closed.close_reason == "TIMEOUT"
    assert closed.ended_at == last_activity == closed.last_activity_at
    assert closed.num_events == 2

    await send(client, browser["ref"], page="home")
    first, second = await browser_sessions(runtime, browser["ref"])
    assert first.ref == closed.ref
    assert first.status == "CLOSED"
    assert second.status == "OPEN"
    assert second.num_events == 1
    assert second.started_at == clock.now()

    record = (await timeline(client, browser["customer_ref"]))["items"][1]
    assert record["ref"] == closed.ref
    assert record["closeReason"] == "TIMEOUT"
    assert record["endedAt"] == iso(last_activity) == record["lastActivityAt"]
    assert record["duration"] == 5.0


async def test_an_event_after_the_timeout_closes_the_stale_session_before_any_sweep(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"])
    started = clock.now()
    clock.advance(minutes=20, seconds=1)
    await send(client, browser["ref"], page="back-again")

    stale, fresh = await browser_sessions(runtime, browser["ref"])
    assert (stale.status, stale.close_reason, stale.ended_at) == ("CLOSED", "TIMEOUT", started)
    assert (fresh.status, fresh.num_events, fresh.first_page) == ("OPEN", 1, "back-again")
    assert len(await outbox(runtime)) == 1
    assert await sweep_once(runtime) == 0


async def test_events_inside_the_timeout_append_to_the_open_session(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    browser = await create_browser(client)
    for _ in range(4):
        await send(client, browser["ref"])
        clock.advance(minutes=19, seconds=59)
    # Exactly the timeout since the last event is not "past" it (strictly greater, §5.2.2).
    clock.advance(seconds=1)
    assert await sweep_once(runtime) == 0
    await send(client, browser["ref"])

    [row] = await browser_sessions(runtime, browser["ref"])
    assert row.status == "OPEN"
    assert row.num_events == 5
    assert row.num_views == 5


async def test_sweep_honours_each_point_of_sale_timeout(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    await create_pos(client, "quick.example/ie", timeout_minutes=5)
    await create_pos(client, "slow.example/ie", timeout_minutes=30)
    browser = await create_browser(client)
    await send(client, browser["ref"], pos="quick.example/ie")
    await send(client, browser["ref"], pos="slow.example/ie")
    assert len(await open_sessions(runtime, browser["ref"])) == 2

    clock.advance(minutes=10)
    assert await sweep_once(runtime) == 1

    by_pos = {s.point_of_sale: s for s in await browser_sessions(runtime, browser["ref"])}
    assert by_pos["quick.example/ie"].status == "CLOSED"
    assert by_pos["quick.example/ie"].close_reason == "TIMEOUT"
    assert by_pos["slow.example/ie"].status == "OPEN"

    # The 30-minute session survives a 10-minute gap: the next event appends to it.
    await send(client, browser["ref"], pos="slow.example/ie")
    slow = [s for s in await browser_sessions(runtime, browser["ref"]) if s.point_of_sale == "slow.example/ie"]
    assert [(s.status, s.num_events) for s in slow] == [("OPEN", 2)]

    clock.advance(minutes=31)
    assert await sweep_once(runtime) == 1
    assert await open_sessions(runtime, browser["ref"]) == []


async def test_a_stale_session_is_judged_by_its_own_point_of_sale_timeout(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    await create_pos(client, "quick.example/fr", timeout_minutes=5)
    browser = await create_browser(client)
    await send(client, browser["ref"], pos="quick.example/fr")
    await send(client, browser["ref"], pos=POINT_OF_SALE)
    clock.advance(minutes=6)
    await send(client, browser["ref"], pos="quick.example/fr")
    await send(client, browser["ref"], pos=POINT_OF_SALE)

    rows = await browser_sessions(runtime, browser["ref"])
    quick = [(s.status, s.close_reason) for s in rows if s.point_of_sale == "quick.example/fr"]
    default = [(s.status, s.num_events) for s in rows if s.point_of_sale == POINT_OF_SALE]
    assert quick == [("CLOSED", "TIMEOUT"), ("OPEN", None)]
    assert default == [("OPEN", 2)]


async def test_sessions_are_keyed_by_browser_channel_and_point_of_sale(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await create_pos(client, "other.example/de", timeout_minutes=20)
    browser = await create_browser(client)
    other_browser = await create_browser(client)
    await send(client, browser["ref"], channel="WEB")
    await send(client, browser["ref"], channel="WEB")
    await send(client, browser["ref"], channel="MOBILE_APP")
    await send(client, browser["ref"], channel="WEB", pos="other.example/de")
    await send(client, other_browser["ref"], channel="WEB")

    rows = await open_sessions(runtime, browser["ref"])
    keys = sorted((s.channel, s.point_of_sale, s.num_events) for s in rows)
    assert keys == sorted([("MOBILE_APP", POINT_OF_SALE, 1), ("WEB", "other.example/de", 1), ("WEB", POINT_OF_SALE, 2)])
    assert len(await open_sessions(runtime, other_browser["ref"])) == 1

    items = (await timeline(client, browser["customer_ref"]))["items"]
    assert {i["sessionType"] for i in items} == {"WEB", "MOBILE"}


async def test_later_events_without_channel_or_pos_inherit_the_open_session(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], channel="MOBILE_APP")
    response = await client.post(
        "/v1.2/events", json={"client_key": CLIENT_KEY, "type": "SEARCH", "browser_id": browser["ref"]}
    )
    assert response.status_code == 201, response.text

    [row] = await browser_sessions(runtime, browser["ref"])
    assert (row.channel, row.point_of_sale, row.num_events, row.num_searches) == ("MOBILE_APP", POINT_OF_SALE, 2, 1)


async def search(client: httpx.AsyncClient, browser_ref: str) -> None:
    """A SEARCH naming neither channel nor point of sale."""
    response = await client.post(
        "/v1.2/events", json={"client_key": CLIENT_KEY, "type": "SEARCH", "browser_id": browser_ref}
    )
    assert response.status_code == 201, response.text


async def test_an_event_without_channel_or_pos_joins_one_session_chosen_the_same_way_whatever_the_write_order(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    """Three OPEN sessions of a browser, all last active at one instant: an event naming neither channel nor
    point of sale joins the most recently started of them, then the first by (channel, point of sale), however
    they were written (physical row order, which breaks such ties in PostgreSQL otherwise, follows the writes)."""
    keys = [("WEB", POINT_OF_SALE), ("MOBILE_WEB", POINT_OF_SALE), ("WEB", "other.example/de")]
    orders = list(itertools.permutations(range(3)))
    browsers = [(await create_browser(client))["ref"] for _ in orders]
    for ref, order in zip(browsers, orders, strict=True):
        for i in order:  # opened in this order, then touched again in the opposite one, all at one instant
            await send(client, ref, channel=keys[i][0], pos=keys[i][1])
        for i in reversed(order):
            await send(client, ref, channel=keys[i][0], pos=keys[i][1])
    for ref in browsers:
        await search(client, ref)
    for ref in browsers:
        joined = [(s.channel, s.point_of_sale) for s in await open_sessions(runtime, ref) if s.num_searches]
        assert joined == [("MOBILE_WEB", POINT_OF_SALE)]
        async with runtime.sessions() as session:
            if runtime.engine.dialect.name == "postgresql":
                # The heap's order (which follows the writes) is what broke ties when PostgreSQL scanned the table.
                await session.execute(text("SET LOCAL enable_indexscan = off"))
                await session.execute(text("SET LOCAL enable_bitmapscan = off"))
            latest = await sessions.latest_open(session, ref)
            assert latest is not None and (latest.channel, latest.num_searches) == ("MOBILE_WEB", 1)
            row = await sessions.context_latest_open(session, ref)
            assert row is not None and row[0] == latest.ref

    # A later start wins a tie on the last activity; a later activity wins over everything.
    clock.advance(seconds=1)
    await send(client, browsers[0], channel="MOBILE_APP")
    await send(client, browsers[0], channel="WEB", pos="other.example/de")
    await search(client, browsers[0])
    clock.advance(seconds=1)
    await send(client, browsers[0], channel="WEB", pos="other.example/de")
    await search(client, browsers[0])
    searches = {(s.channel, s.point_of_sale): s.num_searches for s in await open_sessions(runtime, browsers[0])}
    assert searches == {
        ("WEB", POINT_OF_SALE): 0,
        ("MOBILE_WEB", POINT_OF_SALE): 1,
        ("WEB", "other.example/de"): 1,
        ("MOBILE_APP", POINT_OF_SALE): 1,
    }


async def test_sweeping_twice_is_harmless(client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    browsers = [await create_browser(client) for _ in range(3)]
    for b in browsers:
        await send(client, b["ref"])
    clock.advance(minutes=25)

    assert await sweep_once(runtime) == 3
    assert await sweep_once(runtime) == 0
    clock.advance(minutes=60)
    assert await sweep_once(runtime) == 0

    messages = await outbox(runtime)
    assert len(messages) == 3
    closed = [s.ref for b in browsers for s in await browser_sessions(runtime, b["ref"])]
    assert sorted(m.payload["sessionRef"] for m in messages) == sorted(closed)
    assert all(m.idempotency_key == f"session.closed:{m.payload['sessionRef']}" for m in messages)


async def test_sweep_leaves_sessions_with_recent_activity_alone(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    idle, busy = await create_browser(client), await create_browser(client)
    await send(client, idle["ref"])
    await send(client, busy["ref"])
    clock.advance(minutes=15)
    await send(client, busy["ref"])
    clock.advance(minutes=10)

    assert await sweep_once(runtime) == 1
    assert [s.status for s in await browser_sessions(runtime, idle["ref"])] == ["CLOSED"]
    assert [s.status for s in await browser_sessions(runtime, busy["ref"])] == ["OPEN"]


async def test_force_close_closes_every_open_session_of_the_browser(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    await create_pos(client, "other.example/nl", timeout_minutes=20)
    browser = await create_browser(client)
    bystander = await create_browser(client)
    await send(client, browser["ref"], page="home")
    await send(client, browser["ref"], channel="MOBILE_APP")
    await send(client, browser["ref"], pos="other.example/nl")
    await send(client, bystander["ref"])
    clock.advance(minutes=3)

    forced = await send(client, browser["ref"], "FORCE_CLOSE", page="home")

    rows = await browser_sessions(runtime, browser["ref"])
    assert len(rows) == 3
    assert {(s.status, s.close_reason) for s in rows} == {("CLOSED", "FORCE_CLOSE")}
    assert all(s.ended_at == clock.now() for s in rows)
    assert [s.status for s in await browser_sessions(runtime, bystander["ref"])] == ["OPEN"]
    assert len(await outbox(runtime)) == 3

    # The FORCE_CLOSE event is recorded as the last event of its session.
    items = (await timeline(client, browser["customer_ref"]))["items"]
    [web] = [i for i in items if i["channel"] == "WEB" and i["pointOfSale"] == POINT_OF_SALE]
    assert [e["type"] for e in web["events"]] == ["VIEW", "FORCE_CLOSE"]
    assert web["events"][-1]["ref"] == forced["event_ref"]
    assert web["numEvents"] == 2
    assert web["duration"] == 3.0

    # Only the bystander is left for the sweeper; the next event opens a fresh session.
    clock.advance(minutes=30)
    assert await sweep_once(runtime) == 1
    await send(client, browser["ref"])
    assert len(await open_sessions(runtime, browser["ref"])) == 1


async def test_force_close_without_an_open_session_records_a_closed_one(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "FORCE_CLOSE")
    [row] = await browser_sessions(runtime, browser["ref"])
    assert (row.status, row.close_reason, row.num_events, row.cart_type) == ("CLOSED", "FORCE_CLOSE", 1, "BROWSED")


async def test_force_close_after_the_timeout_closes_the_stale_session_as_timeout(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"])
    clock.advance(minutes=45)
    await send(client, browser["ref"], "FORCE_CLOSE")
    stale, forced = await browser_sessions(runtime, browser["ref"])
    assert (stale.close_reason, forced.close_reason) == ("TIMEOUT", "FORCE_CLOSE")
    assert forced.num_events == 1


async def test_sweeper_and_event_path_agree_after_a_point_of_sale_timeout_change(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    # §5.2.2 and §5.2.3 both measure idleness against the point of sale's timeout. The event
    # path reads the current timeout; the sweeper must not use a stale one.
    await create_pos(client, "tuned.example/ie", timeout_minutes=5)
    browser = await create_browser(client)
    await send(client, browser["ref"], pos="tuned.example/ie")
    await update_pos(client, "tuned.example/ie", timeoutInMinutes=30)
    clock.advance(minutes=10)

    closed = await sweep_once(runtime)
    await send(client, browser["ref"], pos="tuned.example/ie")

    rows = await browser_sessions(runtime, browser["ref"])
    assert [(s.status, s.num_events) for s in rows] == [("OPEN", 2)], "10 idle minutes are inside a 30-minute timeout"
    assert closed == 0


async def test_point_of_sale_language_and_currency_longer_than_their_columns_are_refused(
    client: httpx.AsyncClient,
) -> None:
    for field in ("language", "currencyCode"):
        response = await client.post(
            "/admin/v1/points-of-sale", json={"name": f"wide-{field}", field: "x" * 9}, auth=ADMIN
        )
        assert response.status_code == 400, response.text
        assert "at most 8 characters" in response.json()["developerMessage"]
        listed = await client.get(f"/admin/v1/points-of-sale/wide-{field}", auth=ADMIN)
        assert listed.status_code == 404
