"""Cumulative results per UTC day and variant: rates with their confidence interval, matching the performance report."""

from __future__ import annotations

import math
from datetime import date

import httpx

from innkeeper.core.runtime import Runtime
from innkeeper.personalize.experiences import results
from innkeeper.personalize.experiences import service as flow_service
from tests.factories import flows
from tests.factories.stream import event, post_event
from tests.personalize.experiences.test_results import expose, performance
from tests.support.clock import FrozenClock


def wilson(n: int, k: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


async def test_series_accumulate_per_day_and_end_at_the_performance_figures(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    document = flows.experiment("Hero", {"c": '{"v": "c"}', "b": '{"v": "b"}'}, control="c", splits={"c": 50, "b": 50})
    flow = await flows.live(client, document)
    counts: dict[str, list[list[int]]] = {"c": [[0, 0], [0, 0]], "b": [[0, 0], [0, 0]]}  # per day: units, conversions
    for day in range(2):
        for index in range(12):
            browser, variant = await expose(client, flow)
            counts[variant][day][0] += 1
            if index % 3 == day:
                await post_event(client, event(browser["ref"], "CHECKOUT", reference_id=f"O-{day}-{index}"))
                counts[variant][day][1] += 1
        clock.advance(days=1)
    async with runtime.sessions() as session:
        found = await flow_service.get_flow(session, flow["ref"])
        report = await results.performance(
            session, found, start=None, end=None, unit=None, series=True, through=date(2026, 1, 18)
        )
    api = await performance(client, flow)
    assert {key: value for key, value in report.items() if key not in ("series",)} == api  # same figures as the API

    series = report["series"]
    assert set(series) == {"c", "b"}
    for ref, points in series.items():
        assert [point["day"] for point in points] == ["2026-01-15", "2026-01-16", "2026-01-17", "2026-01-18"]
        first, second = counts[ref]
        assert (points[0]["units"], points[0]["conversions"]) == (first[0], first[1])
        total = (first[0] + second[0], first[1] + second[1])
        for point in points[1:]:  # no exposure after the second day: flat to `through`
            assert (point["units"], point["conversions"]) == total
        row = {row["ref"]: row for row in api["variants"]}[ref]
        assert (points[-1]["units"], points[-1]["conversions"]) == (row["units"], row["conversions"])
        assert points[-1]["value"] == row["rate"]
        low, high = wilson(*total)
        assert math.isclose(points[-1]["ciLow"], low) and math.isclose(points[-1]["ciHigh"], high)
        assert points[-1]["ciLow"] <= points[-1]["value"] <= points[-1]["ciHigh"]


async def test_an_experience_without_control_and_without_data(client: httpx.AsyncClient, runtime: Runtime) -> None:
    flow = await flows.live(client, flows.experience("Solo", '{"x": 1}'))
    async with runtime.sessions() as session:
        found = await flow_service.get_flow(session, flow["ref"])
        empty = await results.performance(session, found, start=None, end=None, unit=None, series=True)
    assert empty["series"] == {"default": [], "holdout": []}
    await expose(client, flow)
    async with runtime.sessions() as session:
        report = await results.performance(session, found, start=None, end=None, unit=None, series=True)
    [nothing] = report["series"]["holdout"]  # every variant has the same days; no unit, no rate
    assert (nothing["units"], nothing["value"], nothing["ciLow"], nothing["ciHigh"]) == (0, None, None, None)
    [point] = report["series"]["default"]
    assert (point["units"], point["conversions"], point["value"]) == (1, 0, 0.0)
    assert point["ciLow"] == 0.0 and 0.5 < point["ciHigh"] < 1.0  # Wilson: wide, but never outside [0, 1]


async def test_revenue_goals_chart_the_mean_per_unit(client: httpx.AsyncClient, runtime: Runtime) -> None:
    goals = {
        "primary": {
            "name": "Revenue",
            "type": "REVENUE",
            "goalCalculation": {"type": "SUM", "calculation": "INCREASE", "target": "SESSIONS"},
        }
    }
    flow = await flows.live(client, flows.experience("Money", '{"x": 1}', goals=goals))
    for index, price in enumerate((10.0, 30.0)):
        browser, _ = await expose(client, flow)
        await post_event(client, event(browser["ref"], "ADD", product={"item_id": "P", "price": price, "quantity": 1}))
        await post_event(client, event(browser["ref"], "CHECKOUT", reference_id=f"R-{index}", status="PURCHASED"))
    async with runtime.sessions() as session:
        found = await flow_service.get_flow(session, flow["ref"])
        report = await results.performance(session, found, start=None, end=None, unit=None, series=True)
    [point] = report["series"]["default"]
    assert point["value"] == 20.0
    half = 1.959963984540054 * math.sqrt(200.0 / 2)  # sample variance 200, n = 2
    assert math.isclose(point["ciLow"], 20.0 - half) and math.isclose(point["ciHigh"], 20.0 + half)
