"""Experiment and experience results: per goal and variant figures, verdict, and charts (§7.7, §10.2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from innkeeper.personalize.experiences import results
from innkeeper.portal import charts
from innkeeper.portal._web import Portal, need, page, router
from innkeeper.portal.flows._common import load

UNITS = ("SESSIONS", "GUESTS")
VERDICTS = {
    "WINNER": "Winner",
    "LEADING": "Leading",
    "INCONCLUSIVE": "Inconclusive",
    "INSUFFICIENT_DATA": "Not enough data",
}


@dataclass(frozen=True, slots=True)
class Row:
    """One variant's figures, formatted for the table."""

    ref: str
    name: str
    baseline: bool
    units: str
    conversions: str
    value: str
    revenue: str
    uplift: str
    confidence: str
    interval: str
    chance: str
    progress: str
    significant: bool


@dataclass(frozen=True, slots=True)
class Goal:
    """One goal's report, ready to render."""

    name: str
    kind: str
    unit: str
    primary: bool
    continuous: bool
    verdict: str
    verdict_code: str
    reason: str
    minimum: int
    mismatch: bool
    compared: bool
    rows: list[Row]
    over_time: Markup
    final: Markup


def _or_dash(value: Any, fmt: Callable[[float], str]) -> str:
    return "—" if value is None else fmt(float(value))


def _mean(value: float) -> str:
    return f"{value:,.2f}"


def _signed(continuous: bool) -> Callable[[float], str]:
    """A difference: percentage points for rates, plain for means."""
    if continuous:
        return lambda value: f"{value:+,.2f}"
    return lambda value: f"{value * 100:+.1f} pp"


def _row(variant: dict[str, Any], continuous: bool) -> Row:
    value_fmt = _mean if continuous else charts.percent
    baseline = bool(variant["isControl"])
    low, high = variant.get("ciLow"), variant.get("ciHigh")
    diff = _signed(continuous)
    return Row(
        ref=str(variant["ref"]),
        name=str(variant["name"]),
        baseline=baseline,
        units=charts.number(variant["units"]),
        conversions=charts.number(variant["conversions"]),
        value=_or_dash(variant["mean"] if continuous else variant["rate"], value_fmt),
        revenue=charts.money(variant["revenue"]),
        uplift=_or_dash(variant.get("upliftPct"), lambda v: f"{v:+.1f}%"),
        confidence=_or_dash(variant.get("confidence"), charts.percent),
        interval="—" if low is None or high is None else f"{diff(low)} to {diff(high)}",
        chance=_or_dash(variant.get("chanceToBeatControl"), charts.percent),
        progress=_or_dash(variant.get("sampleProgress"), charts.percent),
        significant=bool(variant.get("significant")),
    )


def goal_view(report: dict[str, Any], *, primary: bool) -> Goal:
    """Rows, verdict and the two charts of one goal of :func:`results.performance` (with series)."""
    goal = report["goal"]
    kind = str(goal.get("type", "CONVERSION_RATE"))
    continuous = kind in results.CONTINUOUS
    names = {str(variant["ref"]): str(variant["name"]) for variant in report["variants"]}
    baseline = next((variant for variant in report["variants"] if variant["isControl"]), None)
    status = str(report["status"])
    verdict = VERDICTS.get(status, status)
    named = report.get("winner") or report.get("leading")
    if status in ("WINNER", "LEADING") and named:
        verdict = f"{verdict}: {names.get(str(named), str(named))}"
    srm = report.get("sampleRatioMismatch") or {}
    over_time, final = _charts(report, names, continuous)
    return Goal(
        name=str(goal.get("name") or kind),
        kind=kind,
        unit=str(report["unit"]),
        primary=primary,
        continuous=continuous,
        verdict=verdict,
        verdict_code=status,
        reason=str(report.get("reason") or ""),
        minimum=int(report["minimumSampleSize"]),
        mismatch=bool(srm.get("mismatch")),
        compared=baseline is not None and baseline["units"] > 0,
        rows=[_row(variant, continuous) for variant in report["variants"]],
        over_time=over_time,
        final=final,
    )


def _charts(report: dict[str, Any], names: dict[str, str], continuous: bool) -> tuple[Markup, Markup]:
    """The cumulative value per day with its interval band, and the final values with error bars."""
    series: dict[str, list[dict[str, Any]]] = report.get("series") or {}
    shown = [ref for ref in names if series.get(ref) and series[ref][-1]["units"] > 0]
    fmt = _mean if continuous else charts.percent
    what = "Mean per unit" if continuous else "Conversion rate"
    ceiling = None if continuous else 1.0
    days = [point["day"] for point in series[shown[0]]] if shown else []
    over_time = charts.line_chart(
        [day[5:] for day in days],
        [
            charts.Series(
                names[ref],
                [point["value"] for point in series[ref]],
                low=[point["ciLow"] for point in series[ref]],
                high=[point["ciHigh"] for point in series[ref]],
            )
            for ref in shown
        ],
        title=f"{what} over time (cumulative, with confidence interval)",
        fmt=fmt,
        long_labels=days,
        ceiling=ceiling,
    )
    last = [series[ref][-1] for ref in shown]
    final = charts.interval_chart(
        [names[ref] for ref in shown],
        charts.Series(
            what,
            [point["value"] for point in last],
            low=[point["ciLow"] for point in last],
            high=[point["ciHigh"] for point in last],
        ),
        title=f"{what} by variant (with confidence interval)",
        fmt=fmt,
        ceiling=ceiling,
    )
    return over_time, final


@router.get("/flows/{ref}/results")
async def flow_results(
    request: Request,
    ref: str,
    portal: Annotated[Portal, Depends(need("experiences.read"))],
    unit: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    """Per goal and variant: units, conversions, rate, uplift, confidence, verdict, and charts over time."""
    today: date = portal.runtime.clock.now().astimezone(UTC).date()
    chosen = unit if unit in UNITS else None
    flow = await load(request, portal, ref)
    async with portal.runtime.sessions() as session:
        report = await results.performance(session, flow, start=None, end=None, unit=chosen, series=True, through=today)
    goals = [goal_view(report, primary=True)]
    goals += [goal_view(goal, primary=False) for goal in report["secondaryGoals"]]
    return page(
        request,
        "results.html",
        portal=portal,
        flow=flow,
        unit=chosen or "",
        units=UNITS,
        goals=goals,
        outcomes=report["outcomes"],
    )
