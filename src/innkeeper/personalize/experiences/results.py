"""Experiment and experience results (spec personalize.md §7.6–7.7, §10.2).

Exposures are the executions with outcome ``variant`` or ``control`` of a known guest. A unit is
the session of the first exposure (``target: SESSIONS``; browser executions only) or the guest
(``target: GUESTS``; goals within 7 days of the first exposure). Goals count only what happens
after the first exposure of the unit.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from statistics import NormalDist
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.orders import service as orders
from innkeeper.personalize.experiences.models import Flow
from innkeeper.personalize.experiences.repository import ExecutionRepository
from innkeeper.personalize.experiments import stats
from innkeeper.sessions import service as sessions
from innkeeper.sessions.service import Event

CONVERSION_EVENTS = frozenset({"CHECKOUT", "PAYMENT", "CONFIRM", "ORDER_CHECKOUT"})
GUEST_WINDOW = timedelta(days=7)
CONTINUOUS = ("REVENUE", "CUSTOM")
HOLDOUT = "holdout"
DEFAULT_GOAL: dict[str, Any] = {
    "name": "Conversion",
    "type": "CONVERSION_RATE",
    "goalCalculation": {"type": "BINARY", "calculation": "INCREASE", "target": "SESSIONS"},
}


@dataclass(slots=True)
class Unit:
    key: str
    variant: str
    guest_ref: str
    first_exposure: datetime
    events: list[Event] = field(default_factory=list)
    revenue: float = 0.0
    orders: int = 0


def _matches(value: str | None, condition: str, expected: str) -> bool:
    value = value or ""
    negate = condition.startswith("NOT_")
    kind = condition[4:] if negate else condition
    if kind == "EQUALS":
        result = value == expected
    elif kind == "CONTAINS":
        result = expected in value
    elif kind == "STARTS_WITH":
        result = value.startswith(expected)
    elif kind == "REGEX":
        try:
            result = re.search(expected, value) is not None
        except re.error:
            result = False
    else:
        result = False
    return result != negate


def _page_ok(event: Event, goal: Mapping[str, Any]) -> bool:
    rules = goal.get("pageParameters") or []
    return all(
        _matches(event.page, str(rule.get("matchCondition", "CONTAINS")), str(rule.get("parameterString", "")))
        for rule in rules
        if isinstance(rule, dict)
    )


def goal_value(goal: Mapping[str, Any], unit: Unit) -> float:
    """1/0 for rate goals, the amount for revenue and custom sums."""
    kind = goal.get("type", "CONVERSION_RATE")
    events = [event for event in unit.events if event.type != "TRACKING"]
    if kind == "CONVERSION_RATE":
        return 1.0 if unit.orders or any(event.type in CONVERSION_EVENTS for event in events) else 0.0
    if kind == "REVENUE":
        return unit.revenue
    views = [event for event in events if event.type == "VIEW"]
    if kind == "BOUNCE_RATE":
        return 1.0 if len(views) <= 1 else 0.0
    if kind == "EXIT_RATE":
        return 1.0 if views and _page_ok(views[-1], goal) else 0.0
    if kind == "PAGE_VIEW":
        return 1.0 if any(_page_ok(event, goal) for event in views) else 0.0
    matcher = goal.get("eventType") or {}
    condition = str(matcher.get("matchCondition", "EQUALS"))
    expected = str(matcher.get("matchString", ""))
    matching = [event for event in events if _matches(event.type, condition, expected) and _page_ok(event, goal)]
    if kind == "CUSTOM_CONVERSION":
        return 1.0 if matching else 0.0
    attribute = (goal.get("goalCalculation") or {}).get("goalValueAttribute")
    values = [_attribute(event, attribute) for event in matching]
    numbers = [value for value in values if value is not None]
    if not numbers:
        return 0.0
    if (goal.get("goalCalculation") or {}).get("type") == "AVERAGE":
        return sum(numbers) / len(numbers)
    return sum(numbers)


def _attribute(event: Event, attribute: Any) -> float | None:
    if not isinstance(attribute, str) or not attribute:
        return 1.0
    try:
        message = msgspec.json.decode(event.raw)
    except msgspec.DecodeError:
        return None
    value: Any = message
    for part in attribute.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


async def _units(
    session: AsyncSession, flow: Flow, target: str, *, start: datetime | None, end: datetime | None
) -> list[Unit]:
    rows = await ExecutionRepository(session).exposures(flow.ref, start=start, end=end)
    holdout = await ExecutionRepository(session).holdouts(flow.ref, start=start, end=end) if not _control(flow) else []
    units: dict[str, Unit] = {}
    for guest_ref, session_ref, browser_ref, variant_ref, created_at in [*rows, *holdout]:
        if target == "SESSIONS":
            if session_ref is None or browser_ref is None:
                continue
            key = session_ref
        else:
            key = guest_ref
        if key not in units:
            units[key] = Unit(key, variant_ref or HOLDOUT, guest_ref, created_at)
        elif created_at < units[key].first_exposure:
            units[key].first_exposure = created_at
    found = list(units.values())
    if target == "SESSIONS":
        await _session_activity(session, found)
    else:
        await _guest_activity(session, found)
    return found


async def _session_activity(session: AsyncSession, units: list[Unit]) -> None:
    by_key = {unit.key: unit for unit in units}
    keys = list(by_key)
    for index in range(0, len(keys), 500):
        chunk = keys[index : index + 500]
        for event in await sessions.events_of_sessions(session, chunk):
            unit = by_key[str(event.session_ref)]
            if event.created_at >= unit.first_exposure:
                unit.events.append(event)
        for order in await orders.orders_of_sessions(session, chunk):
            unit = by_key[str(order.session_ref)]
            if order.ordered_at >= unit.first_exposure:
                unit.orders += 1
                unit.revenue += float(order.price or 0)


async def _guest_activity(session: AsyncSession, units: list[Unit]) -> None:
    for unit in units:
        until = unit.first_exposure + GUEST_WINDOW
        unit.events = list(
            reversed(await sessions.guest_events_between(session, unit.guest_ref, start=unit.first_exposure, end=until))
        )
        for order in await orders.orders_for_guest(session, unit.guest_ref):
            if unit.first_exposure <= order.ordered_at <= until:
                unit.orders += 1
                unit.revenue += float(order.price or 0)


def _control(flow: Flow) -> str | None:
    for variant in flow.document.get("variants") or []:
        if variant.get("isControl"):
            return str(variant.get("ref"))
    return None


def _variant_names(flow: Flow) -> dict[str, tuple[str, bool]]:
    names = {
        str(variant.get("ref")): (str(variant.get("name") or variant.get("ref")), bool(variant.get("isControl")))
        for variant in flow.document.get("variants") or []
    }
    if _control(flow) is None:
        names[HOLDOUT] = ("Hold-out", True)
    return names


def _weights(flow: Flow, refs: Sequence[str]) -> list[float] | None:
    traffic = flow.document.get("traffic") or {}
    splits = {str(item.get("ref")): float(item.get("split", 0)) for item in traffic.get("splits") or []}
    if not splits or any(ref not in splits for ref in refs):
        return None
    return [splits[ref] for ref in refs]


def goal_report(flow: Flow, goal: Mapping[str, Any], units: Iterable[Unit]) -> dict[str, Any]:
    """Per-variant figures, comparisons against the control (or hold-out) and the verdict for one goal."""
    calculation = goal.get("goalCalculation") or {}
    direction = "DECREASE" if calculation.get("calculation") == "DECREASE" else "INCREASE"
    continuous = goal.get("type") in CONTINUOUS
    names = _variant_names(flow)
    baseline = _control(flow) or HOLDOUT
    values: dict[str, list[float]] = {ref: [] for ref in names}
    revenue: dict[str, tuple[float, int]] = {ref: (0.0, 0) for ref in names}
    for unit in units:
        values.setdefault(unit.variant, []).append(goal_value(goal, unit))
        total, count = revenue.get(unit.variant, (0.0, 0))
        revenue[unit.variant] = (total + unit.revenue, count + unit.orders)
    config = flow.document.get("sampleSizeConfig") or {}
    confidence = float(config.get("confidenceLevel", 0.95))
    alpha = 1 - confidence
    minimum = stats.minimum_sample_size(
        float(config.get("baseValue", 0.02)), float(config.get("minimumDetectableDifference", 0.2)), confidence
    )
    others = [ref for ref in names if ref != baseline]
    comparisons: dict[str, stats.Comparison] = {}
    variants_out: list[dict[str, Any]] = []
    base_values = values.get(baseline, [])
    for ref, (name, _) in names.items():
        unit_values = values.get(ref, [])
        n = len(unit_values)
        conversions = sum(1 for value in unit_values if value > 0)
        total_revenue, order_count = revenue.get(ref, (0.0, 0))
        row: dict[str, Any] = {
            "ref": ref,
            "name": name,
            "isControl": ref == baseline,
            "units": n,
            "conversions": conversions,
            "rate": conversions / n if n else None,
            "mean": sum(unit_values) / n if n else None,
            "revenue": round(total_revenue, 2),
            "aov": round(total_revenue / order_count, 2) if order_count else None,
            "revenuePerUnit": round(total_revenue / n, 4) if n else None,
            "sampleProgress": min(1.0, n / minimum) if minimum else None,
        }
        if ref != baseline:
            comparison, bayes = _compare(base_values, unit_values, continuous, alpha, len(others))
            comparisons[ref] = comparison
            row.update(
                {
                    "upliftPct": None if comparison.uplift is None else comparison.uplift * 100,
                    "confidence": comparison.confidence,
                    "pValue": comparison.p_value,
                    "ciLow": comparison.ci_low,
                    "ciHigh": comparison.ci_high,
                    "significant": comparison.significant,
                    "chanceToBeatControl": bayes.chance_to_win,
                    "expectedUplift": bayes.expected,
                }
            )
        variants_out.append(row)
    verdict = stats.verdict(comparisons, minimum_sample_size=minimum, direction=direction, alpha=alpha)  # type: ignore[arg-type]
    refs = [ref for ref in names if ref != HOLDOUT]
    weights = _weights(flow, refs)
    srm = stats.srm_check([len(values.get(ref, [])) for ref in refs], weights) if weights else None
    return {
        "goal": {key: goal.get(key) for key in ("ref", "friendlyId", "name", "type") if goal.get(key) is not None},
        "unit": calculation.get("target", "SESSIONS"),
        "direction": direction,
        "status": verdict.status,
        "winner": verdict.variant_ref if verdict.status == "WINNER" else None,
        "leading": verdict.variant_ref,
        "reason": verdict.reason,
        "minimumSampleSize": minimum,
        "sampleRatioMismatch": None if srm is None else {"pValue": srm.p_value, "mismatch": srm.mismatch},
        "variants": variants_out,
    }


def _compare(
    base: list[float], other: list[float], continuous: bool, alpha: float, k: int
) -> tuple[stats.Comparison, stats.BayesianResult]:
    if continuous:
        a = stats.Summary(len(base), sum(base), sum(value * value for value in base))
        b = stats.Summary(len(other), sum(other), sum(value * value for value in other))
        return (
            stats.compare_continuous(a, b, alpha=alpha, comparisons=max(1, k)),
            stats.chance_to_beat_control(a, b),
        )
    a_conv = sum(1 for value in base if value > 0)
    b_conv = sum(1 for value in other if value > 0)
    return (
        stats.compare_binary(len(base), a_conv, len(other), b_conv, alpha=alpha, comparisons=max(1, k)),
        stats.chance_to_beat_control(stats.Proportion(len(base), a_conv), stats.Proportion(len(other), b_conv)),
    )


# --- cumulative results per day (portal charts) ------------------------------------------------


def _interval(
    continuous: bool, n: int, total: float, squares: float, z: float
) -> tuple[float | None, float | None, float | None]:
    """(rate or mean, low, high): Wilson score interval for rates, normal interval for means."""
    if n == 0:
        return None, None, None
    mean = total / n
    if not continuous:
        centre = (mean + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return mean, max(0.0, centre - half), min(1.0, centre + half)
    if n < 2:
        return mean, None, None
    variance = max(0.0, (squares - n * mean * mean) / (n - 1))
    half = z * math.sqrt(variance / n)
    return mean, mean - half, mean + half


def cumulative_series(
    flow: Flow, goal: Mapping[str, Any], units: Iterable[Unit], *, through: date | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per variant ref: for each UTC day from the first exposure (to ``through`` when later), the
    units first exposed up to that day, their conversions and rate (mean for revenue and custom
    sums) with its confidence interval at the flow's confidence level.

    A unit's goal value is its value now (like :func:`goal_report`), dated by its first exposure,
    so the last point of each variant equals the variant's row in :func:`goal_report`.
    """
    continuous = goal.get("type") in CONTINUOUS
    confidence = float((flow.document.get("sampleSizeConfig") or {}).get("confidenceLevel", 0.95))
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2) if 0 < confidence < 1 else NormalDist().inv_cdf(0.975)
    names = _variant_names(flow)
    daily: dict[str, dict[date, list[float]]] = {ref: defaultdict(list) for ref in names}
    for unit in units:
        day = unit.first_exposure.astimezone(UTC).date()
        daily.setdefault(unit.variant, defaultdict(list))[day].append(goal_value(goal, unit))
    seen = [day for per_day in daily.values() for day in per_day]
    if not seen:
        return {ref: [] for ref in daily}
    first, last = min(seen), max(seen)
    if through is not None and through > last:
        last = through
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    series: dict[str, list[dict[str, Any]]] = {}
    for ref, per_day in daily.items():
        n, conversions, total, squares = 0, 0, 0.0, 0.0
        points = []
        for day in days:
            for value in per_day.get(day, ()):
                n += 1
                conversions += 1 if value > 0 else 0
                total += value
                squares += value * value
            rate, low, high = _interval(continuous, n, total if continuous else conversions, squares, z)
            points.append(
                {
                    "day": day.isoformat(),
                    "units": n,
                    "conversions": conversions,
                    "value": rate,
                    "ciLow": low,
                    "ciHigh": high,
                }
            )
        series[ref] = points
    return series


async def performance(
    session: AsyncSession,
    flow: Flow,
    *,
    start: datetime | None,
    end: datetime | None,
    unit: str | None,
    series: bool = False,
    through: date | None = None,
) -> dict[str, Any]:
    """The results of a flow: primary goal (verdict, statistics), secondary goals, outcome counts.

    With ``series``, each goal also carries ``series``: the :func:`cumulative_series` of its
    variants (for the portal's charts; the units are read once for both).
    """
    goals = flow.document.get("goals") or {}
    primary = goals.get("primary") or DEFAULT_GOAL
    secondary = [goal for goal in goals.get("secondary") or [] if isinstance(goal, dict)]
    reports = []
    cache: dict[str, list[Unit]] = {}
    for goal in [primary, *secondary]:
        calculation = goal.get("goalCalculation") or {}
        target = unit or str(calculation.get("target", "SESSIONS"))
        target = "GUESTS" if target == "GUESTS" else "SESSIONS"
        if target not in cache:
            cache[target] = await _units(session, flow, target, start=start, end=end)
        adjusted = {**goal, "goalCalculation": {**calculation, "target": target}}
        report = goal_report(flow, adjusted, cache[target])
        if series:
            report["series"] = cumulative_series(flow, adjusted, cache[target], through=through)
        reports.append(report)
    outcomes = await ExecutionRepository(session).outcome_counts(flow.ref, start=start, end=end)
    return {
        "flowRef": flow.ref,
        "friendlyId": flow.friendly_id,
        "subtype": flow.subtype,
        **reports[0],
        "secondaryGoals": reports[1:],
        "outcomes": outcomes,
    }
