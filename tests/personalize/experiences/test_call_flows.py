"""POST /v2/callFlows and the Cloud SDK routes: resolution, outcomes (§2.6), errors (§2.7), side effects (§2.9)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.runtime import Runtime
from innkeeper.personalize.experiences.models import FlowAssignment, FlowExecution
from innkeeper.sessions.models import Event, Session
from tests.conftest import CLIENT_KEY, POINT_OF_SALE
from tests.factories import flows
from tests.factories.flow_calls import identified_browser
from tests.factories.stream import create_browser, event, post_event, product
from tests.support.clock import FrozenClock

GREETING = '{"greeting": "Hello ${guest.firstName!"visitor"}", "type": "${guest.guestType}"}'


async def call(client: httpx.AsyncClient, body: Any, path: str = "/v2/callFlows", **kwargs: Any) -> httpx.Response:
    return await client.post(path, json=body, **kwargs)


async def executions(runtime: Runtime) -> list[FlowExecution]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(FlowExecution).order_by(FlowExecution.created_at))).scalars())


async def test_live_flow_renders_the_template_for_the_browser_guest(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    flow = await flows.live(client, flows.experience("Greeting", GREETING))
    browser = await identified_browser(client, "jane@example.com")
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert response.status_code == 200
    assert response.text == '{"greeting": "Hello Jane", "type": "customer"}'
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert response.headers["x-innkeeper-flow-outcome"] == "variant"
    assert response.headers["x-innkeeper-variant-ref"] == "default"

    rows = await executions(runtime)
    assert [(row.outcome, row.variant_ref, row.flow_ref) for row in rows] == [("variant", "default", flow["ref"])]
    assert rows[0].guest_ref == browser["customer_ref"] and rows[0].browser_ref == browser["ref"]
    # The exposure is a TRACKING event in the browser's open session.
    async with runtime.sessions() as session:
        tracked = (await session.execute(select(Event).where(Event.type == "TRACKING"))).scalars().all()
    assert len(tracked) == 1
    assert tracked[0].session_ref == rows[0].session_ref
    assert json.loads(tracked[0].raw)["variantRef"] == "default"


async def test_anonymous_browser_and_unknown_browser_get_the_visitor(client: httpx.AsyncClient) -> None:
    flow = await flows.live(client, flows.experience("Greeting", GREETING))
    browser = await create_browser(client)
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert response.text == '{"greeting": "Hello visitor", "type": "visitor"}'
    unknown = "a38b230c-11eb-4cf9-8d5d-274e9f344925"
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=unknown))
    assert response.status_code == 200
    assert response.text == '{"greeting": "Hello visitor", "type": "visitor"}'


async def test_unknown_friendly_id_is_200_empty_with_not_found(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await create_browser(client)
    response = await call(client, flows.call_body("no_such_flow", browserId=browser["ref"]))
    assert response.status_code == 200
    assert response.json() == {}
    assert response.headers["x-innkeeper-flow-outcome"] == "not_found"
    assert [row.outcome for row in await executions(runtime)] == ["not_found"]


@pytest.mark.parametrize("status", ["DRAFT", "PAUSED", "COMPLETED"])
async def test_flows_that_are_not_live_answer_not_live(client: httpx.AsyncClient, status: str) -> None:
    flow = await flows.create(client, flows.experience(f"Flow {status}", '{"shown": true}'))
    if status != "DRAFT":
        flow = await flows.set_status(client, flow, "LIVE")
        flow = await flows.set_status(client, flow, status)
    browser = await create_browser(client)
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert (response.status_code, response.json()) == (200, {})
    assert response.headers["x-innkeeper-flow-outcome"] == "not_live"


async def test_outside_the_schedule_is_not_live(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    end = clock.now().strftime("%Y-%m-%dT%H:%M:%S.000Z")
    clock.advance(hours=-2)
    window = {"type": "simpleSchedule", "startDate": "2025-01-01T00:00:00.000Z", "endDate": end}
    flow = await flows.live(client, flows.experience("Ends", '{"shown": true}', schedule=window))
    browser = await create_browser(client)
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert response.headers["x-innkeeper-flow-outcome"] == "variant"
    clock.advance(hours=3)  # the worker has not completed it yet: the request checks the window itself
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert response.headers["x-innkeeper-flow-outcome"] == "not_live"


async def test_channel_and_point_of_sale_filters(client: httpx.AsyncClient) -> None:
    pos_filter = {"mode": "INCLUDE", "values": ["myretailsite/ireland"]}
    flow = await flows.live(client, flows.experience("Filtered", '{"shown": true}', pointOfSaleFilter=pos_filter))
    browser = await create_browser(client)
    body = flows.call_body(flow["friendlyId"], browserId=browser["ref"])
    assert (await call(client, body)).headers["x-innkeeper-flow-outcome"] == "variant"
    other_pos = await call(client, {**body, "pointOfSale": "myretailsite/france"})
    assert other_pos.headers["x-innkeeper-flow-outcome"] == "not_eligible"
    other_channel = await call(client, {**body, "channel": "email"})
    assert other_channel.headers["x-innkeeper-flow-outcome"] == "not_eligible"
    assert other_channel.json() == {}


async def test_audience_conditions_gate_the_flow(client: httpx.AsyncClient) -> None:
    audience = {"combinator": "AND", "conditions": [{"script": "guest.guestType === 'customer'", "name": "known"}]}
    flow = await flows.live(client, flows.experience("Known only", '{"hi": "${guest.email}"}', audience=audience))
    anonymous = await create_browser(client)
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=anonymous["ref"]))
    assert response.headers["x-innkeeper-flow-outcome"] == "not_in_audience"
    assert response.json() == {}
    known = await identified_browser(client, "ann@example.com")
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=known["ref"]))
    assert response.json() == {"hi": "ann@example.com"}


async def test_custom_condition_value_is_the_filter_in_the_template(client: httpx.AsyncClient) -> None:
    rule = "(function () { return {segment: 'shoes', n: request.params.n}; })();"
    document = flows.experience("Filter", "x")
    document["variants"] = [flows.variant("v", '{"segment": "${filter.segment}", "n": ${filter.n}}', rules=[rule])]
    flow = await flows.live(client, document)
    browser = await create_browser(client)
    response = await call(client, {**flows.call_body(flow["friendlyId"], browserId=browser["ref"]), "params": {"n": 3}})
    assert response.json() == {"segment": "shoes", "n": 3}


async def test_failing_variant_condition_is_not_in_audience(client: httpx.AsyncClient) -> None:
    document = flows.experience("Throws", "x")
    document["variants"] = [flows.variant("v", '{"shown": true}', rules=["throw new Error('boom')"])]
    flow = await flows.live(client, document)
    browser = await create_browser(client)
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert response.headers["x-innkeeper-flow-outcome"] == "not_in_audience"


async def test_outside_the_allocation_is_not_allocated(client: httpx.AsyncClient, runtime: Runtime) -> None:
    document = flows.experiment(
        "Nobody", {"c": '{"v": "c"}', "b": '{"v": "b"}'}, control="c", splits={"c": 50, "b": 50}, allocation=0
    )
    flow = await flows.live(client, document)
    browser = await create_browser(client)
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert response.headers["x-innkeeper-flow-outcome"] == "not_allocated"
    assert response.json() == {}


async def test_experiment_assignment_is_sticky_and_control_renders_its_template(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    document = flows.experiment(
        "Hero", {"control": "{}", "b": '{"hero": "b"}'}, control="control", splits={"control": 50, "b": 50}
    )
    flow = await flows.live(client, document)
    seen: dict[str, set[str]] = {"control": set(), "variant": set()}
    for _ in range(12):
        browser = await create_browser(client)
        outcomes = set()
        for _ in range(3):
            response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
            outcomes.add((response.headers["x-innkeeper-flow-outcome"], response.text))
        assert len(outcomes) == 1, outcomes
        outcome, text = outcomes.pop()
        seen[outcome].add(text)
    assert seen["control"] == {"{}"} and seen["variant"] == {'{"hero": "b"}'}


async def test_variant_survives_a_split_change_and_a_second_device(client: httpx.AsyncClient) -> None:
    document = flows.experiment("Split", {"a": '{"v": "a"}', "b": '{"v": "b"}'}, control="a", splits={"a": 50, "b": 50})
    flow = await flows.live(client, document)
    laptop = await identified_browser(client, "sam@example.com")
    first = (await call(client, flows.call_body(flow["friendlyId"], browserId=laptop["ref"]))).text

    # Pause, move all traffic to the other variant, restart: the guest keeps its variant.
    other = "b" if first == '{"v": "a"}' else "a"
    paused = await flows.set_status(client, flow, "PAUSED")
    traffic = {
        **paused["traffic"],
        "splits": [{"ref": other, "split": 100}, {"ref": "ab".replace(other, ""), "split": 0}],
    }
    await flows.set_status(client, paused, "LIVE", traffic=traffic)
    assert (await call(client, flows.call_body(flow["friendlyId"], browserId=laptop["ref"]))).text == first

    # A phone identified as the same person sees the same variant.
    phone = await identified_browser(client, "sam@example.com")
    assert (await call(client, flows.call_body(flow["friendlyId"], browserId=phone["ref"]))).text == first
    # A new guest gets the new split.
    newcomer = await create_browser(client)
    assert (await call(client, flows.call_body(flow["friendlyId"], browserId=newcomer["ref"]))).text == (
        '{"v": "' + other + '"}'
    )


async def test_template_error_fails_open(client: httpx.AsyncClient, runtime: Runtime) -> None:
    flow = await flows.live(client, flows.experience("Broken at runtime", '{"n": "${guest.missingField}"}'))
    browser = await create_browser(client)
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert (response.status_code, response.json()) == (200, {})
    assert response.headers["x-innkeeper-flow-outcome"] == "error"
    assert response.headers["x-innkeeper-error"] == "TEMPLATE_ERROR"
    assert [row.error for row in await executions(runtime)] == ["TEMPLATE_ERROR"]


async def test_blank_output_becomes_empty_object_and_invalid_json_is_verbatim(client: httpx.AsyncClient) -> None:
    blank = await flows.live(client, flows.experience("Blank", "  \n "))
    verbatim = await flows.live(client, flows.experience("Verbatim", "not json ${1+1}"))
    browser = await create_browser(client)
    assert (await call(client, flows.call_body(blank["friendlyId"], browserId=browser["ref"]))).text == "{}"
    assert (await call(client, flows.call_body(verbatim["friendlyId"], browserId=browser["ref"]))).text == "not json 2"


async def test_by_email_runs_in_a_new_closed_session_each_time(client: httpx.AsyncClient, runtime: Runtime) -> None:
    flow = await flows.live(client, flows.experience("By email", GREETING, channels=["EMAIL", "WEB"]))
    await identified_browser(client, "jane@example.com", first_name="Jane")
    body = {**flows.call_body(flow["friendlyId"], email="JANE@example.com"), "channel": "EMAIL"}
    for _ in range(2):
        response = await call(client, body)
        assert response.text == '{"greeting": "Hello Jane", "type": "customer"}'
    async with runtime.sessions() as session:
        rows = (await session.execute(select(Session).where(Session.origin == "FLOW_EXECUTION"))).scalars().all()
    assert len(rows) == 2
    assert all(row.status == "CLOSED" and row.browser_ref is None and row.channel == "EMAIL" for row in rows)
    assert {row.session_ref for row in await executions(runtime)} == {row.ref for row in rows}


async def test_unknown_email_and_identifier_run_with_a_transient_visitor(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    flow = await flows.live(client, flows.experience("Transient", GREETING))
    for identity in ({"email": "nobody@example.com"}, {"identifiers": {"provider": "BXLP", "id": "123456"}}):
        response = await call(client, flows.call_body(flow["friendlyId"], **identity))
        assert response.text == '{"greeting": "Hello visitor", "type": "visitor"}'
    async with runtime.sessions() as session:
        assert (await session.execute(select(FlowAssignment))).first() is None
        assert (await session.execute(select(Session))).first() is None
    assert all(row.guest_ref is None for row in await executions(runtime))


async def test_identifier_lookup_finds_the_guest(client: httpx.AsyncClient) -> None:
    flow = await flows.live(client, flows.experience("By id", GREETING))
    await identified_browser(client, "id@example.com", first_name="Ida")
    response = await call(
        client, flows.call_body(flow["friendlyId"], identifiers={"provider": "email", "id": "id@example.com"})
    )
    assert response.text == '{"greeting": "Hello Ida", "type": "customer"}'


async def test_wildcard_picks_the_first_live_match(client: httpx.AsyncClient) -> None:
    await flows.create(client, flows.experience("Hero a", '{"v": "draft"}', friendlyId="hero_a"))
    await flows.live(client, flows.experience("Hero b", '{"v": "b"}', friendlyId="hero_b"))
    await flows.live(client, flows.experience("Hero c", '{"v": "c"}', friendlyId="hero_c"))
    browser = await create_browser(client)
    response = await call(client, flows.call_body("hero_*", browserId=browser["ref"]))
    assert response.json() == {"v": "b"}


async def test_params_and_request_are_in_the_template(client: httpx.AsyncClient) -> None:
    template = '{"page": "${request.params.page}", "pos": "${request.pointOfSale}", "ch": "${request.channel}"}'
    flow = await flows.live(client, flows.experience("Params", template))
    browser = await create_browser(client)
    body = {**flows.call_body(flow["friendlyId"], browserId=browser["ref"]), "params": {"page": "/home"}}
    assert (await call(client, body)).json() == {"page": "/home", "pos": POINT_OF_SALE, "ch": "WEB"}


async def test_session_cart_is_in_the_guest_context(client: httpx.AsyncClient) -> None:
    template = '{"items": ${guest.sessions[0].cart?size}, "name": "${guest.sessions[0].cart[0].name}"}'
    flow = await flows.live(client, flows.experience("Cart", template))
    browser = await create_browser(client)
    await post_event(client, event(browser["ref"], "ADD", product=product("SKU1", price=20.0)))
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert response.json() == {"items": 1, "name": "Exact score after 90 minutes"}


async def test_legacy_context_body_is_unwrapped_and_wrapped(client: httpx.AsyncClient) -> None:
    flow = await flows.live(client, flows.experience("Legacy", '{"uri": "${request.params.uri}"}'))
    browser = await create_browser(client)
    context = {**flows.call_body(flow["friendlyId"], browserId=browser["ref"]), "uri": "/old"}
    response = await call(client, {"context": context})
    assert response.json() == {"result": {"uri": "/old"}}


async def test_cloud_sdk_route_resolves_the_tenant_from_the_context_id(client: httpx.AsyncClient) -> None:
    flow = await flows.live(client, flows.experience("Cloud", GREETING))
    browser = await create_browser(client)
    body = {**flows.call_body(flow["friendlyId"], browserId=browser["ref"]), "clientKey": "", "pointOfSale": ""}
    for path in ("/v1/personalize", "/personalize/v2/callFlows"):
        response = await call(client, body, f"{path}?sitecoreContextId=ctx-1&siteId=mysite")
        assert response.json() == {"greeting": "Hello visitor", "type": "visitor"}, path
    response = await call(client, {**body, "clientKey": "someone-else"}, "/v1/personalize?sitecoreContextId=ctx-1")
    assert response.status_code == 401
    assert response.json()["developerMessage"].startswith("INVALID_CLIENT_KEY")
    assert (await call(client, body, "/v1/personalize")).status_code == 401


async def test_correlation_id_is_echoed_and_stored(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await create_browser(client)
    response = await call(
        client, flows.call_body("nothing", browserId=browser["ref"]), headers={"x-sc-correlation-id": "corr-1"}
    )
    assert response.headers["x-sc-correlation-id"] == "corr-1"
    assert [row.correlation_id for row in await executions(runtime)] == ["corr-1"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"friendlyId": "x", "browserId": "a38b230c-11eb-4cf9-8d5d-274e9f344925"}, "MISSING_FIELD"),
        ({"clientKey": CLIENT_KEY, "browserId": "a38b230c-11eb-4cf9-8d5d-274e9f344925"}, "MISSING_FIELD"),
        ({"clientKey": CLIENT_KEY, "friendlyId": "x"}, "MISSING_IDENTITY"),
        (
            {
                "clientKey": CLIENT_KEY,
                "friendlyId": "x",
                "email": "a@b.c",
                "browserId": "a38b230c-11eb-4cf9-8d5d-274e9f344925",
            },
            "INVALID_IDENTITY",
        ),
        ({"clientKey": CLIENT_KEY, "friendlyId": "x", "browserId": "not-a-uuid"}, "INVALID_FIELD"),
        ({"clientKey": CLIENT_KEY, "friendlyId": "x", "email": "a@b.c", "params": []}, "INVALID_FIELD"),
        ({"clientKey": CLIENT_KEY, "friendlyId": 5, "email": "a@b.c"}, "INVALID_FIELD"),
        ({"clientKey": CLIENT_KEY, "friendlyId": "x", "identifiers": {"provider": "p"}}, "INVALID_FIELD"),
        ([1, 2], "INVALID_JSON"),
    ],
)
async def test_bad_requests_get_400_with_a_machine_code(client: httpx.AsyncClient, body: Any, code: str) -> None:
    response = await call(client, body)
    assert response.status_code == 400
    error = response.json()
    assert error["status"] == 400 and error["code"] == 400
    assert error["developerMessage"].startswith(f"{code}: ")


async def test_transport_errors(client: httpx.AsyncClient) -> None:
    body = flows.call_body("x", email="a@b.c")
    response = await client.post("/v2/callFlows", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["developerMessage"].startswith("INVALID_JSON")
    response = await client.post("/v2/callFlows", content=json.dumps(body), headers={"content-type": "text/plain"})
    assert response.status_code == 200
    response = await client.post("/v2/callFlows", content=b"<x/>", headers={"content-type": "application/xml"})
    assert response.status_code == 415 and response.json()["developerMessage"].startswith("UNSUPPORTED_MEDIA_TYPE")
    huge = {**body, "params": {"blob": "x" * 70_000}}
    response = await call(client, huge)
    assert response.status_code == 413 and response.json()["developerMessage"].startswith("PAYLOAD_TOO_LARGE")
    response = await call(client, {**body, "clientKey": "wrong"})
    assert response.status_code == 401
    assert response.json()["status"] == "UNAUTHORIZED"
    response = await client.get("/v2/callFlows")
    assert response.status_code == 405
    assert response.json()["code"] == 405
    preflight = await client.options(
        "/v2/callFlows", headers={"origin": "https://shop.example", "access-control-request-method": "POST"}
    )
    assert preflight.status_code == 204
    assert "x-innkeeper-flow-outcome" in (await call(client, body)).headers["access-control-expose-headers"].lower()


class TestStrictNotFound:
    @pytest.fixture
    def settings(self, settings: Any) -> Any:
        from dataclasses import replace

        return replace(settings, personalize_strict_not_found=True)

    async def test_unknown_flow_is_404(self, client: httpx.AsyncClient) -> None:
        response = await call(client, flows.call_body("nothing_here", email="a@b.c"))
        assert response.status_code == 404
        assert response.json()["developerMessage"].startswith("FLOW_NOT_FOUND")


async def test_triggered_flows_cannot_be_called(client: httpx.AsyncClient, db: AsyncSession) -> None:
    document = flows.experience("Triggered", '{"x": 1}', type="TRIGGERED_V3", trigger={"type": "SESSION_CLOSED"})
    document["variants"][0]["isControl"] = True  # a hold-out-only flow starts without a destination
    flow = await flows.live(client, document)
    response = await call(client, flows.call_body(flow["friendlyId"], email="a@b.c"))
    assert response.headers["x-innkeeper-flow-outcome"] == "not_found"


async def test_assignment_survives_a_merge_into_an_existing_customer(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    document = flows.experiment("Merge", {"a": '{"v": "a"}', "b": '{"v": "b"}'}, control="a", splits={"a": 50, "b": 50})
    flow = await flows.live(client, document)
    await identified_browser(client, "kim@example.com", first_name="Kim")  # the customer, never exposed
    anonymous = await create_browser(client)
    first = (await call(client, flows.call_body(flow["friendlyId"], browserId=anonymous["ref"]))).text
    # Every new draw would now give the other variant...
    other = "b" if first == '{"v": "a"}' else "a"
    paused = await flows.set_status(client, flow, "PAUSED")
    traffic = {
        **paused["traffic"],
        "splits": [{"ref": other, "split": 100}, {"ref": "ab".replace(other, ""), "split": 0}],
    }
    await flows.set_status(client, paused, "LIVE", traffic=traffic)
    # ...but the anonymous guest identifies as Kim and is merged into her: its variant comes along.
    await post_event(
        client,
        event(
            anonymous["ref"],
            "IDENTITY",
            email="kim@example.com",
            identifiers=[{"provider": "email", "id": "kim@example.com"}],
        ),
    )
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=anonymous["ref"]))
    assert response.text == first
    async with runtime.sessions() as session:
        keys = {row.guest_key for row in (await session.execute(select(FlowAssignment))).scalars()}
    guests_exposed = {row.guest_ref for row in await executions(runtime)}
    assert anonymous["customer_ref"] not in keys
    assert anonymous["customer_ref"] not in guests_exposed


async def test_template_parameters_are_resolved_at_publish(client: httpx.AsyncClient) -> None:
    template = '{"title": "[[Title | string | Hello]]", "max": [[Max | number | 3 | { min: 1, max: 5 }]]}'
    document = flows.experience("Params at publish", template)
    document["variants"][0]["templateVariables"] = {"Title": "Welcome back"}
    flow = await flows.live(client, document)
    browser = await create_browser(client)
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert response.json() == {"title": "Welcome back", "max": 3}

    bad = flows.experience("Params out of range", template)
    bad["variants"][0]["templateVariables"] = {"Max": 9}
    created = await flows.create(client, bad)
    refused = await client.put(
        f"/v3/flowDefinitions/{created['ref']}", json={**created, "status": "LIVE"}, auth=flows.AUTH
    )
    assert refused.status_code == 400
    assert "templateVariables" in refused.json()["developerMessage"]


async def test_event_arbitrary_data_is_there_for_templates_that_read_it(client: httpx.AsyncClient) -> None:
    template = (
        '{"category": "${guest.sessions[0].events[0].arbitraryData.ext.category}", '
        '"page": "${guest.sessions[0].interactions[0].page}"}'
    )
    flow = await flows.live(client, flows.experience("Event data", template))
    browser = await create_browser(client)
    await post_event(client, event(browser["ref"], "VIEW", page="/shoes", ext={"category": "shoes"}))
    response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert response.json() == {"category": "shoes", "page": "/shoes"}


@pytest.mark.parametrize(
    "script",
    [
        "while (true) {}",
        "var a = []; while (true) { a.push(new Array(100000).fill('x')); }",
    ],
    ids=["runaway-loop", "heap-bomb"],
)
async def test_runaway_conditions_are_killed_and_the_server_keeps_serving(
    client: httpx.AsyncClient, script: str
) -> None:
    audience = {"combinator": "AND", "conditions": [{"script": script, "name": "evil"}]}
    evil = await flows.live(client, flows.experience("Evil", '{"x": 1}', audience=audience))
    fine = await flows.live(client, flows.experience("Fine", '{"ok": true}'))
    browser = await create_browser(client)
    response = await call(client, flows.call_body(evil["friendlyId"], browserId=browser["ref"]))
    assert (response.status_code, response.json()) == (200, {})
    assert response.headers["x-innkeeper-flow-outcome"] == "not_in_audience"
    assert (await call(client, flows.call_body(fine["friendlyId"], browserId=browser["ref"]))).json() == {"ok": True}
    again = await call(client, flows.call_body(evil["friendlyId"], browserId=browser["ref"]))
    assert again.headers["x-innkeeper-flow-outcome"] == "not_in_audience"


async def test_concurrent_first_calls_agree_on_one_assignment(client: httpx.AsyncClient, runtime: Runtime) -> None:
    import asyncio

    document = flows.experiment("Race", {"a": '{"v": "a"}', "b": '{"v": "b"}'}, control="a", splits={"a": 50, "b": 50})
    flow = await flows.live(client, document)
    browser = await create_browser(client)
    body = flows.call_body(flow["friendlyId"], browserId=browser["ref"])
    responses = await asyncio.gather(*(call(client, body) for _ in range(8)))
    assert {response.status_code for response in responses} == {200}
    assert len({response.text for response in responses}) == 1
    async with runtime.sessions() as session:
        rows = (await session.execute(select(FlowAssignment))).scalars().all()
    assert len(rows) == 1
    assert len(await executions(runtime)) == 8


class TestTimeBudget:
    @pytest.fixture
    def settings(self, settings: Any) -> Any:
        from dataclasses import replace

        return replace(settings, personalize_budget_ms=0)

    async def test_a_run_over_its_budget_fails_open_and_keeps_its_execution_row(
        self, client: httpx.AsyncClient, runtime: Runtime
    ) -> None:
        document = flows.experiment(
            "Slow", {"a": '{"v": "a"}', "b": '{"v": "b"}'}, control="a", splits={"a": 50, "b": 50}
        )
        flow = await flows.live(client, document)
        browser = await create_browser(client)
        for _ in range(2):  # the rolled-back transaction leaves the server healthy
            response = await call(client, flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
            assert (response.status_code, response.json()) == (200, {})
            assert response.headers["x-innkeeper-flow-outcome"] == "error"
            assert response.headers["x-innkeeper-error"] == "TIME_BUDGET"
        rows = await executions(runtime)
        assert [(row.outcome, row.error, row.flow_ref) for row in rows] == [("error", "TIME_BUDGET", flow["ref"])] * 2
        async with runtime.sessions() as session:
            assert (await session.execute(select(FlowAssignment))).first() is None  # rolled back with the run
