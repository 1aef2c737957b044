"""Dashboard: the abandonment report's tiles (with the previous period) and daily charts (§10.4)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from innkeeper.portal import charts
from innkeeper.portal._web import Portal, need, page, router
from innkeeper.triggers import reports

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
BROWSED, CONVERTED, ABANDONED, RECOVERED = "#adb5bd", "#2b8a3e", "#e03131", "#1971c2"


@dataclass(frozen=True, slots=True)
class Tile:
    """One figure of the period, the same figure for the period before and the change between them."""

    label: str
    value: str
    previous: str
    change: str | None
    trend: str  # "up", "down" or "" (CSS hook)


def period_of(days: str, now: datetime) -> tuple[datetime, datetime, int]:
    """[start, end) covering the last ``days`` whole UTC days, today included (30 unless 7, 30 or 90)."""
    span = int(days) if days.isdigit() and int(days) in PERIODS else DEFAULT_PERIOD
    end = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time.min, tzinfo=UTC)
    return end - timedelta(days=span), end, span


def _figure(value: Any, fmt: Callable[[float], str]) -> str:
    return "—" if value is None else fmt(float(value))


def tiles(report: dict[str, Any]) -> list[Tile]:
    """The dashboard's tiles from :func:`innkeeper.triggers.reports.abandonment`."""
    previous, change = report["previousPeriod"], report["change"]
    shown: Sequence[tuple[str, str, Callable[[float], str]]] = (
        ("Abandoned sessions", "abandonedSessions", charts.number),
        ("Abandonment rate", "abandonmentRate", charts.percent),
        ("Abandoned revenue", "abandonedRevenue", charts.money),
        ("Reminders sent", "remindersSent", charts.number),
        ("Recovered revenue", "recoveredRevenue", charts.money),
        ("Recovery rate", "recoveryRate", charts.percent),
    )
    out = []
    for label, key, fmt in shown:
        delta = change.get(key)
        out.append(
            Tile(
                label=label,
                value=_figure(report[key], fmt),
                previous=_figure(previous[key], fmt),
                change=None if delta is None else f"{delta * 100:+.1f}%",
                trend="up" if delta and delta > 0 else "down" if delta and delta < 0 else "",
            )
        )
    return out


def daily_charts(days: list[reports.Day]) -> dict[str, Markup]:
    """Sessions by outcome (stacked bars), abandoned vs recovered revenue (lines), reminders sent (bars)."""
    labels = [day.day.strftime("%m-%d") for day in days]
    dates = [day.day.isoformat() for day in days]
    return {
        "sessions": charts.bar_chart(
            labels,
            [
                charts.Series("Browsed", [day.browsed for day in days], color=BROWSED),
                charts.Series("Converted", [day.converted for day in days], color=CONVERTED),
                charts.Series("Abandoned", [day.abandoned for day in days], color=ABANDONED),
            ],
            title="Closed sessions per day by outcome",
            long_labels=dates,
            integer=True,
        ),
        "revenue": charts.line_chart(
            labels,
            [
                charts.Series("Abandoned revenue", [day.abandoned_revenue for day in days], color=ABANDONED),
                charts.Series("Recovered revenue", [day.recovered_revenue for day in days], color=RECOVERED),
            ],
            title="Abandoned and recovered revenue per day",
            fmt=charts.money,
            long_labels=dates,
        ),
        "reminders": charts.bar_chart(
            labels,
            [charts.Series("Reminders sent", [day.reminders_sent for day in days], color=RECOVERED)],
            title="Reminder emails sent per day",
            long_labels=dates,
            integer=True,
        ),
    }


@router.get("/dashboard")
async def dashboard(
    request: Request,
    portal: Annotated[Portal, Depends(need("reports.read"))],
    days: Annotated[str, Query(max_length=10)] = str(DEFAULT_PERIOD),
) -> Response:
    """Abandoned sessions and revenue, reminders and recovered revenue over 7, 30 or 90 days."""
    start, end, span = period_of(days, portal.runtime.clock.now())
    async with portal.runtime.sessions() as session:
        report = await reports.abandonment(session, start=start, end=end, pos=None, channel=None)
        daily = await reports.abandonment_daily(session, start=start, end=end)
    return page(
        request,
        "dashboard.html",
        portal=portal,
        span=span,
        periods=PERIODS,
        first_day=daily[0].day,
        last_day=daily[-1].day,
        tiles=tiles(report),
        charts=daily_charts(daily),
    )
