"""callFlows of flows with custom JavaScript: the reads end their transaction before the conditions run, the
writes take a second one, and what a call decides and stores is the same as in one transaction."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from innkeeper.core.runtime import Runtime
from innkeeper.personalize.conditions.sandbox import JsSandbox
from innkeeper.personalize.experiences import compiled
from innkeeper.personalize.experiences.models import FlowAssignment, FlowExecution
from innkeeper.sessions.models import Event, Session
from tests.factories import flows
from tests.factories.flow_calls import identified_browser, stored
from tests.factories.stream import create_browser
from tests.support.clock import FrozenClock

KNOWN = {"combinator": "AND", "conditions": [{"script": "guest.guestType === 'customer'", "name": "known"}]}
# About 150–250 ms of V8 work: long enough for another call to run meanwhile, with room for a slow machine.
SLOW = (
    "(function () { var n = 0; for (var i = 0; i < 2e7; i++) { n = (n + i) % 7; }"
    " return guest.guestType === 'customer'; })()"
)


@pytest.fixture(autouse=True)
def roomy_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests check what concurrent calls decide and store, not the sandbox's limits: with the default
    50 ms per condition, a loaded CI machine can time a trivial condition out (the guest then reads as not in
    the audience, as designed), and calls of one guest would answer differently for that reason alone."""
    monkeypatch.setattr(compiled, "_sandbox", JsSandbox(timeout_ms=5000, total_ms=10_000))


async def call(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.post("/v2/callFlows", json=body)


async def test_concurrent_first_calls_of_a_js_flow_agree_on_one_assignment(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    document = flows.experiment(
        "Race JS", {"a": '{"v": "a"}', "b": '{"v": "b"}'}, control="a", splits={"a": 50, "b": 50}, audience=KNOWN
    )
    flow = await flows.live(client, document)
    browsers = [await identified_browser(client, f"racer{index}@example.com") for index in range(3)]
    bodies = [flows.call_body(flow["friendlyId"], browserId=browser["ref"]) for browser in browsers]
    responses = await asyncio.gather(*(call(client, body) for body in bodies for _ in range(6)))
    assert {response.status_code for response in responses} == {200}
    for index in range(3):
        answers = responses[index * 6 : index * 6 + 6]
        assert len({(answer.text, answer.headers["x-innkeeper-flow-outcome"]) for answer in answers}) == 1
    async with runtime.sessions() as session:
        rows = (await session.execute(select(FlowAssignment))).scalars().all()
    assert len(rows) == 3
    # Every call stored its exposure and its execution; the stored decision answers later calls.
    tracking, executions, assignments, _ = await stored(runtime)
    assert (tracking, executions, assignments) == (18, 18, 3)
    for index, body in enumerate(bodies):
        again = await call(client, body)
        assert again.text == responses[index * 6].text


async def test_a_call_does_not_hold_the_connection_while_its_javascript_runs(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """On SQLite the two calls share the engine's one connection; on PostgreSQL each has its own (there the
    test shows the same behaviour, which it then gets from the pool)."""
    slow = await flows.live(
        client,
        flows.experience("Slow JS", '{"slow": true}', audience={"conditions": [{"script": SLOW, "name": "slow"}]}),
    )
    plain = await flows.live(client, flows.experience("Plain", '{"plain": true}'))
    known = await identified_browser(client, "ida@example.com", first_name="Ida")
    other = await create_browser(client)
    done: list[str] = []

    async def timed(name: str, body: dict[str, Any], delay: float) -> httpx.Response:
        await asyncio.sleep(delay)
        response = await call(client, body)
        done.append(name)
        return response

    slow_answer, plain_answer = await asyncio.gather(
        timed("slow", flows.call_body(slow["friendlyId"], browserId=known["ref"]), 0),
        # Starts while the slow call's condition runs; SQLite has one connection, so it could not run now if
        # the slow call held it until its commit.
        timed("plain", flows.call_body(plain["friendlyId"], browserId=other["ref"]), 0.05),
    )
    assert (slow_answer.status_code, plain_answer.status_code) == (200, 200)
    assert json.loads(plain_answer.text) == {"plain": True}
    assert done == ["plain", "slow"]
    tracking, executions, _, _ = await stored(runtime)
    assert executions == 2 and tracking == 1 + (slow_answer.headers["x-innkeeper-flow-outcome"] == "variant")


async def test_concurrent_calls_replace_a_stored_assignment_to_a_removed_variant_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    document = flows.experiment(
        "Shrink JS", {"a": '{"v": "a"}', "b": '{"v": "b"}'}, control="a", splits={"a": 50, "b": 50}, audience=KNOWN
    )
    flow = await flows.live(client, document)
    browser = await identified_browser(client, "kim@example.com")
    body = flows.call_body(flow["friendlyId"], browserId=browser["ref"])
    first = (await call(client, body)).headers["x-innkeeper-variant-ref"]
    survivor = "b" if first == "a" else "a"
    paused = await flows.set_status(client, flow, "PAUSED")
    kept = [variant for variant in paused["variants"] if variant["ref"] == survivor]
    added = flows.variant("c", '{"v": "c"}', control=survivor != "a")
    traffic = {**paused["traffic"], "splits": [{"ref": survivor, "split": 0}, {"ref": "c", "split": 100}]}
    await flows.set_status(client, paused, "LIVE", variants=[*kept, added], traffic=traffic)
    answers = await asyncio.gather(*(call(client, body) for _ in range(6)))
    assert {(answer.headers["x-innkeeper-variant-ref"], answer.text) for answer in answers} == {("c", '{"v": "c"}')}
    async with runtime.sessions() as session:
        rows = (await session.execute(select(FlowAssignment))).scalars().all()
    assert [(row.variant_ref, row.allocated) for row in rows] == [("c", True)]


async def test_an_exposure_joins_the_open_session_or_replaces_a_timed_out_one(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    flow = await flows.live(client, flows.experience("Exposed", '{"ok": true}'))
    known = await identified_browser(client, "eve@example.com", first_name="Eve")
    fresh = await create_browser(client)  # an anonymous visitor without any session yet
    body = flows.call_body(flow["friendlyId"], browserId=known["ref"])
    for _ in range(2):
        assert (await call(client, body)).headers["x-innkeeper-flow-outcome"] == "variant"
    assert (await call(client, flows.call_body(flow["friendlyId"], browserId=fresh["ref"]))).status_code == 200
    clock.advance(minutes=21)  # beyond the point of sale's 20-minute timeout
    assert (await call(client, body)).headers["x-innkeeper-flow-outcome"] == "variant"

    async with runtime.sessions() as session:
        stmt = select(Event).where(Event.type == "TRACKING").order_by(Event.created_at, Event.ref)
        tracked = (await session.execute(stmt)).scalars().all()
        by_ref = {row.ref: row for row in (await session.execute(select(Session))).scalars().all()}
        executions = (await session.execute(select(FlowExecution))).scalars().all()
    known_sessions = [by_ref[row.session_ref or ""] for row in tracked if row.browser_ref == known["ref"]]
    first, second, third = known_sessions
    # The first two exposures joined the session the IDENTITY event opened; the third closed it (timed out).
    assert first.ref == second.ref and first.channel == "WEB"
    assert (first.status, first.close_reason) == ("CLOSED", "TIMEOUT") and third.status == "OPEN"
    assert third.ref != first.ref
    # The visitor's exposure opened its session; every execution row names the session of its exposure.
    [visitor] = [by_ref[row.session_ref or ""] for row in tracked if row.browser_ref == fresh["ref"]]
    assert visitor.status == "OPEN" and visitor.browser_ref == fresh["ref"]
    assert sorted(row.session_ref or "" for row in executions) == sorted(row.session_ref or "" for row in tracked)
