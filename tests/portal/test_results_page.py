"""Experiment results page: the performance figures per variant, charts over time and with error bars, escaped names."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import httpx

from tests.factories import flows
from tests.factories.stream import event, post_event
from tests.personalize.experiences.test_results import expose, performance
from tests.portal.conftest import SignInAs
from tests.portal.test_dashboard import charts_in, shapes, values
from tests.support.clock import FrozenClock

PAYLOAD = "<script>alert(1)</script>"


def table_rows(page: str) -> list[list[str]]:
    """The cells (tags stripped, entities decoded) of every variant row of the page's tables."""
    rows = []
    for body in re.findall(r"<tbody>(.*?)</tbody>", page, flags=re.DOTALL):
        for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.DOTALL):
            cells = re.findall(r"<td>(.*?)</td>", row, flags=re.DOTALL)
            rows.append([htmllib.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells])
    return rows


def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


async def test_per_variant_figures_match_the_performance_api_and_charts_show_them(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs, clock: FrozenClock
) -> None:
    document = flows.experiment("Hero", {"c": '{"v": "c"}', "b": '{"v": "b"}'}, control="c", splits={"c": 50, "b": 50})
    document["variants"][1]["name"] = PAYLOAD
    flow = await flows.live(client, document)
    for day in range(3):
        if day:
            clock.advance(days=1)
        for index in range(10):
            browser, _ = await expose(client, flow)
            if (index + day) % 3 == 0:
                await post_event(client, event(browser["ref"], "CONFIRM", product=[{"item_id": f"S{day}{index}"}]))
    api = await performance(client, flow)

    await signed_in_as("VIEWER")
    page = await portal.get(f"/portal/flows/{flow['ref']}/results")
    assert page.status_code == 200, page.text
    assert PAYLOAD not in page.text and htmllib.escape(PAYLOAD, quote=False) in page.text
    rows = {row[0].removesuffix(" control"): row for row in table_rows(page.text)}
    for variant in api["variants"]:
        row = rows[variant["name"]]
        assert row[1] == str(variant["units"]) and row[2] == str(variant["conversions"])
        assert row[3] == percent(variant["rate"])
        if variant["isControl"]:
            assert row[5:9] == ["", "", "", ""]
        else:
            assert row[5] == f"{variant['upliftPct']:+.1f}%"
            assert row[6].startswith(percent(variant["confidence"]))
            assert row[7] == f"{variant['ciLow'] * 100:+.1f} pp to {variant['ciHigh'] * 100:+.1f} pp"
            assert row[8] == percent(variant["chanceToBeatControl"])
    verdict = {"LEADING": "Leading", "WINNER": "Winner", "INCONCLUSIVE": "Inconclusive"}.get(api["status"], "Not")
    assert f'class="badge {api["status"]}">{verdict}' in page.text

    found = charts_in(page.text)
    over_time = found["Conversion rate over time (cumulative, with confidence interval)"]
    by_variant = found["Conversion rate by variant (with confidence interval)"]
    for variant in api["variants"]:
        points = values(over_time, "circle", "point", variant["name"])
        assert len(points) == 3  # Jan 15, 16, 17 (today)
        assert abs(points[-1] - variant["rate"]) < 1e-9
        assert len(shapes(over_time, "polygon", "band", variant["name"])) == 1
        [bar] = values(by_variant, "rect", "bar", variant["name"])
        assert abs(bar - variant["rate"]) < 1e-9
        [error] = shapes(by_variant, "g", "error-bar", variant["name"])
        assert float(error.get("data-low", "1")) <= bar <= float(error.get("data-high", "0"))
    assert [node.text for node in shapes(over_time, "text", "label")] == ["01-15", "01-16", "01-17"]


async def test_an_experience_without_control_or_data(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    flow = await flows.live(client, flows.experience("Solo", '{"x": 1}'))
    await signed_in_as("MARKETER")
    empty = await portal.get(f"/portal/flows/{flow['friendlyId']}/results")  # by friendly id too
    assert empty.status_code == 200
    assert "Not enough data" in empty.text and "the variants are not compared" in empty.text
    for root in charts_in(empty.text).values():
        assert [node.text for node in shapes(root, "text", "empty")] == ["No data yet"]

    await expose(client, flow)
    page = await portal.get(f"/portal/flows/{flow['ref']}/results?unit=GUESTS")
    rows = {row[0]: row for row in table_rows(page.text)}
    assert rows["Default"][1:3] == ["1", "0"] and rows["Hold-out hold-out"][1] == "0"
    assert 'aria-current="page">Guests' in page.text
    found = charts_in(page.text)
    over_time = found["Conversion rate over time (cumulative, with confidence interval)"]
    assert values(over_time, "circle", "point", "Default") == [0.0]
    assert not shapes(over_time, "circle", "point", "Hold-out")  # no unit: not drawn


async def test_revenue_goals_show_means(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    goals: dict[str, Any] = {
        "primary": {
            "name": "Revenue",
            "type": "REVENUE",
            "goalCalculation": {"type": "SUM", "calculation": "INCREASE", "target": "SESSIONS"},
        },
        "secondary": [
            {
                "name": "Checkout",
                "type": "CONVERSION_RATE",
                "goalCalculation": {"type": "BINARY", "calculation": "INCREASE", "target": "SESSIONS"},
            }
        ],
    }
    flow = await flows.live(client, flows.experience("Money", '{"x": 1}', goals=goals))
    for index, price in enumerate((10.0, 30.0)):
        browser, _ = await expose(client, flow)
        await post_event(client, event(browser["ref"], "ADD", product={"item_id": "P", "price": price, "quantity": 1}))
        await post_event(client, event(browser["ref"], "CHECKOUT", reference_id=f"R-{index}", status="PURCHASED"))
    await signed_in_as("VIEWER")
    page = await portal.get(f"/portal/flows/{flow['ref']}/results")
    assert "Primary goal: Revenue" in page.text and "Secondary goal: Checkout" in page.text
    rows = [row for row in table_rows(page.text) if row[0] == "Default"]
    assert rows[0][3] == "20.00" and rows[0][4] == "40.00"  # mean per session, revenue
    assert rows[1][3] == "100.0%"
    found = charts_in(page.text)
    assert values(found["Mean per unit by variant (with confidence interval)"], "rect", "bar", "Default") == [20.0]


async def test_unknown_flow_is_a_404_page(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    await signed_in_as("VIEWER")
    response = await portal.get("/portal/flows/nope/results")
    assert response.status_code == 404 and "Flow not found" in response.text
