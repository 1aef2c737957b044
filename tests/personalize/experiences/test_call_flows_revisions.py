"""callFlows and flow revisions: the per-process compiled-revision cache never serves a stale revision (§1.2, §2.4).

Execution reads the flow's head row (revision, published revision, status) on every call and takes the compiled
revision from the process cache only when it is the one that row names; these tests edit flows in between calls,
also as "another process" would (its compiled revisions never reach this process's cache).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from innkeeper.app import create_app
from innkeeper.core.config import Settings
from innkeeper.core.runtime import Runtime
from innkeeper.personalize.experiences.compiled import CACHE
from innkeeper.personalize.experiences.models import FlowAssignment, FlowExecution
from tests.factories import flows
from tests.factories.flow_calls import identified_browser
from tests.factories.stream import create_browser
from tests.support.clock import FrozenClock


async def call(client: httpx.AsyncClient, flow: dict[str, Any], browser: dict[str, Any], **body: Any) -> httpx.Response:
    response = await client.post(
        "/v2/callFlows", json={**flows.call_body(flow["friendlyId"], browserId=browser["ref"]), **body}
    )
    assert response.status_code == 200, response.text
    return response


def _with_template(flow: dict[str, Any], template: str) -> list[dict[str, Any]]:
    variants = [dict(variant) for variant in flow["variants"]]
    variants[0]["tasks"] = [
        {
            "implementation": "templateRenderTask",
            "input": {"inputType": "templateRenderTaskInput", "type": "application/json", "template": template},
        }
    ]
    return variants


async def _edit_and_restart(client: httpx.AsyncClient, flow: dict[str, Any], template: str) -> dict[str, Any]:
    paused = await flows.set_status(client, flow, "PAUSED")
    return await flows.set_status(client, paused, "LIVE", variants=_with_template(paused, template))


async def _revisions(runtime: Runtime) -> list[int | None]:
    async with runtime.sessions() as session:
        stmt = select(FlowExecution.flow_revision).order_by(FlowExecution.created_at, FlowExecution.ref)
        return list((await session.execute(stmt)).scalars())


async def test_an_edited_template_is_served_by_the_very_next_call(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    flow = await flows.live(client, flows.experience("Edited", '{"v": 1}'))
    browser = await create_browser(client)
    assert (await call(client, flow, browser)).text == '{"v": 1}'
    restarted = await _edit_and_restart(client, flow, '{"v": 2}')
    clock.advance(seconds=1)
    assert (await call(client, restarted, browser)).text == '{"v": 2}'
    again = await _edit_and_restart(client, restarted, '{"v": 3}')
    clock.advance(seconds=1)
    assert (await call(client, again, browser)).text == '{"v": 3}'
    assert await _revisions(runtime) == [flow["revision"], restarted["revision"], again["revision"]]
    assert len({flow["revision"], restarted["revision"], again["revision"]}) == 3


@pytest.fixture
async def other_process(settings: Settings, clock: FrozenClock) -> Any:
    """A second app on the same database, with its own engine (what another `innkeeper serve` would be)."""
    application: FastAPI = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as other:
            yield other


async def test_a_revision_started_by_another_process_is_seen_by_the_next_call(
    client: httpx.AsyncClient,
    other_process: httpx.AsyncClient,
    runtime: Runtime,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flow = await flows.live(client, flows.experience("Shared", '{"v": "old"}'))
    browser = await create_browser(client)
    assert (await call(client, flow, browser)).text == '{"v": "old"}'  # revision compiled and cached here
    # The other process edits and restarts the flow; what it compiles stays in its own cache.
    with monkeypatch.context() as patched:
        patched.setattr(CACHE, "put", lambda compiled: None)
        restarted = await _edit_and_restart(other_process, flow, '{"v": "new"}')
    assert CACHE.get(flow["ref"], restarted["revision"]) is None
    clock.advance(seconds=1)
    assert (await call(client, restarted, browser)).text == '{"v": "new"}'
    assert CACHE.get(flow["ref"], restarted["revision"]) is not None  # compiled here on first use
    assert (await call(client, restarted, browser)).text == '{"v": "new"}'
    # And the other process sees what this one published.
    back = await _edit_and_restart(client, restarted, '{"v": "back"}')
    clock.advance(seconds=1)
    assert (await call(other_process, back, browser)).text == '{"v": "back"}'
    assert await _revisions(runtime) == [flow["revision"], back["revision"] - 1, back["revision"] - 1, back["revision"]]


async def test_a_paused_flow_is_not_live_even_with_its_revision_cached(client: httpx.AsyncClient) -> None:
    flow = await flows.live(client, flows.experience("Paused", '{"v": 1}'))
    browser = await create_browser(client)
    assert (await call(client, flow, browser)).headers["x-innkeeper-flow-outcome"] == "variant"
    paused = await flows.set_status(client, flow, "PAUSED")
    response = await call(client, paused, browser)
    assert (response.headers["x-innkeeper-flow-outcome"], response.json()) == ("not_live", {})
    edited = await flows.set_status(client, paused, "PAUSED", variants=_with_template(paused, '{"v": 2}'))
    assert (await call(client, edited, browser)).headers["x-innkeeper-flow-outcome"] == "not_live"


@pytest.mark.parametrize("cache", ["warm", "cold"])
async def test_channel_and_point_of_sale_filters_with_a_warm_or_cold_cache(
    client: httpx.AsyncClient, cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pos_filter = {"mode": "INCLUDE", "values": ["myretailsite/ireland"]}
    document = flows.experience(
        "Filtered", '{"shown": true}', pointOfSaleFilter=pos_filter, channels=["WEB", "mobile_app"]
    )
    flow = await flows.live(client, document)
    browser = await create_browser(client)
    cases = [
        ({}, "variant"),
        ({"channel": "mobile_app"}, "variant"),
        ({"pointOfSale": "myretailsite/france"}, "not_eligible"),
        ({"channel": "email"}, "not_eligible"),
        ({"pointOfSale": ""}, "variant"),  # none given: the tenant's default point of sale, which is included
    ]
    for body, expected in cases:
        if cache == "cold":
            monkeypatch.setattr(CACHE, "_items", OrderedDict())  # a process that has not compiled it yet
        response = await call(client, flow, browser, **body)
        assert response.headers["x-innkeeper-flow-outcome"] == expected, body


async def test_a_stored_assignment_to_a_removed_variant_is_replaced(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    document = flows.experiment(
        "Shrink", {"a": '{"v": "a"}', "b": '{"v": "b"}'}, control="a", splits={"a": 50, "b": 50}
    )
    flow = await flows.live(client, document)
    browser = await identified_browser(client, "kim@example.com")
    first = (await call(client, flow, browser)).headers["x-innkeeper-variant-ref"]
    survivor = "b" if first == "a" else "a"
    paused = await flows.set_status(client, flow, "PAUSED")
    kept = [variant for variant in paused["variants"] if variant["ref"] == survivor]
    added = flows.variant("c", '{"v": "c"}', control=survivor != "a")
    traffic = {**paused["traffic"], "splits": [{"ref": survivor, "split": 0}, {"ref": "c", "split": 100}]}
    restarted = await flows.set_status(client, paused, "LIVE", variants=[*kept, added], traffic=traffic)
    response = await call(client, restarted, browser)
    assert (response.headers["x-innkeeper-variant-ref"], response.text) == ("c", '{"v": "c"}')
    async with runtime.sessions() as session:
        rows = (await session.execute(select(FlowAssignment))).scalars().all()
    assert [(row.variant_ref, row.allocated) for row in rows] == [("c", True)]
    assert (await call(client, restarted, browser)).headers["x-innkeeper-variant-ref"] == "c"  # and it sticks


async def test_the_legacy_route_runs_a_flow_by_ref_with_its_sticky_assignment(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    document = flows.experiment("ByRef", {"a": '{"v": "a"}', "b": '{"v": "b"}'}, control="a", splits={"a": 50, "b": 50})
    flow = await flows.live(client, document)
    browser = await identified_browser(client, "lee@example.com")
    body = flows.call_body(flow["friendlyId"], browserId=browser["ref"])
    del body["friendlyId"]
    answers = [await client.post(f"/v2/callFlows/{flow['ref']}", json=body) for _ in range(3)]
    assert len({(answer.status_code, answer.text) for answer in answers}) == 1
    assert answers[0].headers["x-innkeeper-flow-outcome"] in ("variant", "control")
    by_friendly_id = await call(client, flow, browser)
    assert by_friendly_id.text == answers[0].text
    unknown = await client.post("/v2/callFlows/a38b230c-11eb-4cf9-8d5d-274e9f344925", json=body)
    assert (unknown.status_code, unknown.headers["x-innkeeper-flow-outcome"]) == (200, "not_found")
    async with runtime.sessions() as session:
        assert len((await session.execute(select(FlowAssignment))).scalars().all()) == 1
