"""Experiment results: exposures per variant, goals attributed in the session after exposure, statistics."""

from __future__ import annotations

from typing import Any

import httpx

from innkeeper.personalize.experiments import stats
from tests.factories import flows
from tests.factories.flows import AUTH
from tests.factories.stream import create_browser, event, post_event, product
from tests.support.clock import FrozenClock


async def expose(client: httpx.AsyncClient, flow: dict[str, Any]) -> tuple[dict[str, Any], str]:
    browser = await create_browser(client)
    response = await client.post("/v2/callFlows", json=flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    return browser, response.headers["x-innkeeper-variant-ref"]


async def performance(client: httpx.AsyncClient, flow: dict[str, Any], query: str = "") -> dict[str, Any]:
    response = await client.get(f"/v3/flowDefinitions/{flow['ref']}/performance{query}", auth=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_conversions_after_exposure_are_counted_per_variant(client: httpx.AsyncClient) -> None:
    document = flows.experiment("Hero", {"c": '{"v": "c"}', "b": '{"v": "b"}'}, control="c", splits={"c": 50, "b": 50})
    flow = await flows.live(client, document)
    expected = {"c": [0, 0], "b": [0, 0]}  # units, conversions
    for index in range(30):
        browser, variant = await expose(client, flow)
        expected[variant][0] += 1
        if index % 3 == 0:
            await post_event(client, event(browser["ref"], "ADD", product=product(f"SKU{index}")))
            await post_event(client, event(browser["ref"], "CONFIRM", product=[{"item_id": f"SKU{index}"}]))
            expected[variant][1] += 1
    report = await performance(client, flow)
    assert report["unit"] == "SESSIONS" and report["minimumSampleSize"] == 21106
    rows = {row["ref"]: row for row in report["variants"]}
    for ref, (units, conversions) in expected.items():
        assert rows[ref]["units"] == units
        assert rows[ref]["conversions"] == conversions
    assert rows["c"]["isControl"] is True
    comparison = stats.compare_binary(
        expected["c"][0], expected["c"][1], expected["b"][0], expected["b"][1], alpha=0.05, comparisons=1
    )
    assert rows["b"]["pValue"] == comparison.p_value
    assert 0.0 <= rows["b"]["chanceToBeatControl"] <= 1.0
    assert report["status"] == "LEADING"  # data, but far from the minimum sample
    assert report["sampleRatioMismatch"]["mismatch"] is False
    assert sum(report["outcomes"].values()) == 30


async def test_a_conversion_before_the_exposure_does_not_count(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    flow = await flows.live(client, flows.experience("Late", '{"x": 1}'))
    browser = await create_browser(client)
    await post_event(client, event(browser["ref"], "CHECKOUT", reference_id="ORD-1", status="PURCHASED"))
    clock.advance(seconds=5)
    await client.post("/v2/callFlows", json=flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    report = await performance(client, flow)
    rows = {row["ref"]: row for row in report["variants"]}
    assert rows["default"]["units"] == 1
    assert rows["default"]["conversions"] == 0
    clock.advance(seconds=5)
    await post_event(client, event(browser["ref"], "CHECKOUT", reference_id="ORD-2", status="PURCHASED"))
    rows = {row["ref"]: row for row in (await performance(client, flow))["variants"]}
    assert rows["default"]["conversions"] == 1


async def test_custom_and_page_goals_and_guest_units(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    goals = {
        "primary": {
            "name": "Viewed thanks",
            "type": "PAGE_VIEW",
            "goalCalculation": {"type": "BINARY", "calculation": "INCREASE", "target": "SESSIONS"},
            "pageParameters": [{"matchCondition": "CONTAINS", "parameterString": "/thank-you"}],
        },
        "secondary": [
            {
                "name": "Signed up",
                "type": "CUSTOM_CONVERSION",
                "goalCalculation": {"type": "BINARY", "calculation": "INCREASE", "target": "GUESTS"},
                "eventType": {"matchCondition": "EQUALS", "matchString": "SIGNUP"},
            }
        ],
    }
    flow = await flows.live(client, flows.experience("Goals", '{"x": 1}', goals=goals))
    converted, _ = await expose(client, flow)
    await expose(client, flow)
    await post_event(client, event(converted["ref"], "VIEW", page="/shop/thank-you"))
    await post_event(client, event(converted["ref"], "SIGNUP"))
    report = await performance(client, flow)
    default = {row["ref"]: row for row in report["variants"]}["default"]
    assert (default["units"], default["conversions"]) == (2, 1)
    secondary = report["secondaryGoals"][0]
    assert secondary["unit"] == "GUESTS"
    assert {row["ref"]: row for row in secondary["variants"]}["default"]["conversions"] == 1


async def test_revenue_goal_sums_orders_in_the_session(client: httpx.AsyncClient) -> None:
    goals = {
        "primary": {
            "name": "Revenue",
            "type": "REVENUE",
            "goalCalculation": {"type": "SUM", "calculation": "INCREASE", "target": "SESSIONS"},
        }
    }
    document = flows.experiment(
        "Money", {"c": "{}", "b": '{"b": 1}'}, control="c", splits={"c": 50, "b": 50}, goals=goals
    )
    flow = await flows.live(client, document)
    totals = {"c": 0.0, "b": 0.0}
    for index in range(8):
        browser, variant = await expose(client, flow)
        await post_event(client, event(browser["ref"], "ADD", product=product(f"P{index}", price=10.0 * (index + 1))))
        await post_event(client, event(browser["ref"], "CHECKOUT", reference_id=f"R-{index}", status="PURCHASED"))
        totals[variant] += 10.0 * (index + 1)
    rows = {row["ref"]: row for row in (await performance(client, flow))["variants"]}
    assert rows["c"]["revenue"] == totals["c"]
    assert rows["b"]["revenue"] == totals["b"]


async def test_bad_window_is_400(client: httpx.AsyncClient) -> None:
    flow = await flows.live(client, flows.experience("Window", "{}"))
    response = await client.get(f"/v3/flowDefinitions/{flow['ref']}/performance?from=yesterday", auth=AUTH)
    assert response.status_code == 400
