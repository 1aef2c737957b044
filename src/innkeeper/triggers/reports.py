"""Attribution of orders to triggered executions (§7.6) and the abandonment report (§10.3–10.4).

An order of the guest placed within a window after a variant or control execution of a triggered
flow counts for that execution; an order is attributed to at most one execution per flow — the
latest before it — and windows are 1 h, 3 h, 1 d, 3 d and 7 d. "Recovered revenue" is the 7-day
figure of the variant executions whose message was SENT.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import as_utc
from innkeeper.orders import service as orders
from innkeeper.personalize.experiences import triggered
from innkeeper.sessions import service as sessions
from innkeeper.triggers.repository import TriggerRepository

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "3h": timedelta(hours=3),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
}
LONGEST = WINDOWS["7d"]


@dataclass(slots=True)
class Figures:
    conversions: int = 0
    revenue: float = 0.0

    def out(self) -> dict[str, Any]:
        return {
            "conversions": self.conversions,
            "revenue": round(self.revenue, 2),
            "aov": round(self.revenue / self.conversions, 2) if self.conversions else None,
        }


@dataclass(slots=True)
class Attributed:
    """Per (flow, variant): executions, sends and the figures per window."""

    executions: int = 0
    windows: dict[str, Figures] = field(default_factory=lambda: {name: Figures() for name in WINDOWS})


async def attribute(
    session: AsyncSession, flow_refs: list[str], *, start: datetime, end: datetime
) -> dict[tuple[str, str | None], Attributed]:
    """Executions in [start, end) and the orders attributed to them, keyed by (flow, variant)."""
    rows = await triggered.executions(session, flow_refs, start=start, end=end)
    result: dict[tuple[str, str | None], Attributed] = defaultdict(Attributed)
    by_guest: dict[tuple[str, str], list[tuple[datetime, str | None]]] = defaultdict(list)
    for row in rows:
        assert row.flow_ref is not None and row.guest_ref is not None
        result[(row.flow_ref, row.variant_ref)].executions += 1
        by_guest[(row.flow_ref, row.guest_ref)].append((row.created_at, row.variant_ref))
    if not rows:
        return result
    guest_refs = [guest for _, guest in by_guest]
    placed = await orders.orders_of_guests_between(session, guest_refs, start, end + LONGEST)
    orders_by_guest: dict[str, list[Any]] = defaultdict(list)
    for order in placed:
        orders_by_guest[str(order.guest_ref)].append(order)
    for (flow_ref, guest_ref), executions in by_guest.items():
        for order in orders_by_guest.get(guest_ref, []):
            before = [item for item in executions if item[0] < order.ordered_at]
            if not before:
                continue
            when, variant = max(before, key=lambda item: item[0])
            elapsed = order.ordered_at - when
            for name, width in WINDOWS.items():
                if elapsed <= width:
                    figures = result[(flow_ref, variant)].windows[name]
                    figures.conversions += 1
                    figures.revenue += float(order.price or 0.0)
    return result


async def triggered_goals(session: AsyncSession, flow_ref: str, *, start: datetime, end: datetime) -> dict[str, Any]:
    """The goals dashboard of one triggered flow (§10.3): per variant and control, per window."""
    attributed = await attribute(session, [flow_ref], start=start, end=end)
    sends = await TriggerRepository(session).delivery_counts([flow_ref], start=start, end=end)
    variants = []
    for (_, variant), figures in sorted(attributed.items(), key=lambda item: str(item[0][1])):
        variants.append(
            {
                "variantRef": variant,
                "executions": figures.executions,
                "windows": {name: value.out() for name, value in figures.windows.items()},
            }
        )
    return {"flowRef": flow_ref, "deliveries": sends, "variants": variants}


async def abandonment(
    session: AsyncSession, *, start: datetime, end: datetime, pos: str | None, channel: str | None
) -> dict[str, Any]:
    """The abandonment report (§10.4) for [start, end) with the previous period of the same length."""
    current = await _period(session, start, end, pos=pos, channel=channel)
    previous = await _period(session, start - (end - start), start, pos=pos, channel=channel)
    deltas = {
        key: (None if not previous[key] else round((value - previous[key]) / previous[key], 4))
        for key, value in current.items()
        if isinstance(value, (int, float)) and key in previous and isinstance(previous[key], (int, float))
    }
    return {"from": start, "to": end, **current, "previousPeriod": previous, "change": deltas}


async def _period(
    session: AsyncSession, start: datetime, end: datetime, *, pos: str | None, channel: str | None
) -> dict[str, Any]:
    abandoned, abandoned_revenue, with_adds, closed = await sessions.abandonment(
        session, start, end, pos=pos, channel=channel
    )
    flow_refs = [flow.ref for flow in await triggered.triggered_flows(session)]
    sent = await TriggerRepository(session).sent_execution_refs(flow_refs, start=start, end=end)
    attributed = await _recovered(session, flow_refs, sent, start=start, end=end)
    return {
        "closedSessions": closed,
        "sessionsWithAdd": with_adds,
        "abandonedSessions": abandoned,
        "abandonmentRate": round(abandoned / with_adds, 4) if with_adds else None,
        "abandonedRevenue": round(abandoned_revenue, 2),
        "remindersSent": len(sent),
        "recoveredOrders": attributed.conversions,
        "recoveredRevenue": round(attributed.revenue, 2),
        "recoveryRate": round(attributed.revenue / abandoned_revenue, 4) if abandoned_revenue else None,
    }


async def _recovered(
    session: AsyncSession, flow_refs: list[str], sent: set[str], *, start: datetime, end: datetime
) -> Figures:
    """Orders attributed, in the 7-day window, to executions whose reminder was SENT."""
    total = Figures()
    if not sent:
        return total
    rows = [row for row in await triggered.executions(session, flow_refs, start=start, end=end) if row.ref in sent]
    by_guest: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for row in rows:
        by_guest[(str(row.flow_ref), str(row.guest_ref))].append(row.created_at)
    placed = await orders.orders_of_guests_between(session, [guest for _, guest in by_guest], start, end + LONGEST)
    for order in placed:  # each order counts once, whichever reminders preceded it
        times = [when for (_, guest_ref), found in by_guest.items() if guest_ref == order.guest_ref for when in found]
        before = [when for when in times if when < order.ordered_at]
        if before and order.ordered_at - max(before) <= LONGEST:
            total.conversions += 1
            total.revenue += float(order.price or 0.0)
    return total


@dataclass(slots=True)
class Day:
    """One UTC day of the abandonment report's charts (§10.4)."""

    day: date
    browsed: int = 0
    converted: int = 0
    abandoned: int = 0
    abandoned_revenue: float = 0.0
    reminders_sent: int = 0
    recovered_orders: int = 0
    recovered_revenue: float = 0.0


def utc_days(start: datetime, end: datetime) -> list[date]:
    """Every UTC day that [start, end) touches, oldest first."""
    first = start.astimezone(UTC).date()
    last = (end - timedelta(microseconds=1)).astimezone(UTC).date()
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


async def abandonment_daily(
    session: AsyncSession, *, start: datetime, end: datetime, pos: str | None = None, channel: str | None = None
) -> list[Day]:
    """The abandonment report per UTC day of [start, end), every day present (zeros included).

    Sessions count on the day they closed, reminders on the day their delivery was created and
    recovered revenue on the day of the order, so the days add up to :func:`abandonment`'s totals
    (a recovered order placed after ``end`` falls on no day).
    """
    days = {day: Day(day) for day in utc_days(start, end)}
    for key, closed in (await sessions.closed_per_day(session, start, end, pos=pos, channel=channel)).items():
        figures = days.get(date.fromisoformat(key))
        if figures is not None:
            figures.browsed, figures.converted, figures.abandoned = closed.browsed, closed.converted, closed.abandoned
            figures.abandoned_revenue = round(closed.abandoned_revenue, 2)
    flow_refs = [flow.ref for flow in await triggered.triggered_flows(session)]
    sent: set[str] = set()
    per_day: dict[date, set[str]] = defaultdict(set)
    for execution_ref, created_at in await TriggerRepository(session).sent_deliveries(flow_refs, start=start, end=end):
        sent.add(execution_ref)
        per_day[as_utc(created_at).date()].add(execution_ref)
    for day, refs in per_day.items():
        if day in days:
            days[day].reminders_sent = len(refs)
    for order in await _recovered_orders(session, flow_refs, sent, start=start, end=end):
        figures = days.get(order.ordered_at.astimezone(UTC).date())
        if figures is not None and order.ordered_at < end:
            figures.recovered_orders += 1
            figures.recovered_revenue = round(figures.recovered_revenue + float(order.price or 0.0), 2)
    return list(days.values())


async def _recovered_orders(
    session: AsyncSession, flow_refs: list[str], sent: set[str], *, start: datetime, end: datetime
) -> list[Any]:
    """The orders :func:`_recovered` counts: within 7 days after a SENT reminder of the period."""
    if not sent:
        return []
    times: dict[str, list[datetime]] = defaultdict(list)
    for row in await triggered.executions(session, flow_refs, start=start, end=end):
        if row.ref in sent:
            times[str(row.guest_ref)].append(row.created_at)
    found = []
    for order in await orders.orders_of_guests_between(session, list(times), start, end + LONGEST):
        before = [when for when in times.get(str(order.guest_ref), []) if when < order.ordered_at]
        if before and order.ordered_at - max(before) <= LONGEST:
            found.append(order)
    return found
