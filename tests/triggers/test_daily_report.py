"""The abandonment report per UTC day: sessions by outcome, reminders, recovered revenue; days add up to the totals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import httpx

from innkeeper.connections import service as connections
from innkeeper.core.runtime import Runtime
from innkeeper.sessions import service as sessions
from innkeeper.triggers import reports
from tests.connections.servers import SmtpServer
from tests.factories.mail import browse
from tests.factories.stream import create_browser, event, post_event, product
from tests.support.clock import FrozenClock
from tests.triggers.test_abandoned_cart import abandon_cart, connection, reminder_flow, work
from tests.triggers.test_reports import buy

JAN_15 = datetime(2026, 1, 15, tzinfo=UTC)


async def test_days_split_at_utc_midnight_and_add_up_to_the_report(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, smtp: SmtpServer, outbound: connections.Outbound
) -> None:
    ref = await connection(client, smtp.port)
    await reminder_flow(client, ref, delay=0)
    # Jan 15, 09:00: two abandoned carts (2 × 50 and 2 × 30), reminders sent at once; one browse.
    back = await abandon_cart(client, "back@example.com", price=50.0)
    await abandon_cart(client, "gone@example.com", price=30.0)
    await browse(client)
    await work(runtime, outbound)
    assert len(smtp.messages) == 2
    # Jan 15, 23:59: a browse; Jan 16, 00:01: the first guest comes back and buys (recovered), another browse.
    clock.advance(hours=14, minutes=59)
    await browse(client)
    clock.advance(minutes=2)
    await buy(client, back, "ORD-BACK", 80.0)
    await post_event(client, event(back["ref"], "FORCE_CLOSE"))
    await browse(client)
    # A session still open counts nowhere.
    open_browser = await create_browser(client)
    await post_event(client, event(open_browser["ref"], "ADD", product=product("SKU-9", price=5.0)))

    start, end = JAN_15 - timedelta(days=5), JAN_15 + timedelta(days=2)
    async with runtime.sessions() as session:
        daily = await reports.abandonment_daily(session, start=start, end=end)
        total = await reports.abandonment(session, start=start, end=end, pos=None, channel=None)
        closed = await sessions.closed_per_day(session, start, end)

    assert [day.day for day in daily] == [date(2026, 1, 10) + timedelta(days=n) for n in range(7)]
    by_day = {day.day: day for day in daily}
    jan15, jan16 = by_day[date(2026, 1, 15)], by_day[date(2026, 1, 16)]
    assert (jan15.browsed, jan15.converted, jan15.abandoned) == (2, 0, 2)
    assert jan15.abandoned_revenue == 160.0 and jan15.reminders_sent == 2
    assert (jan15.recovered_orders, jan15.recovered_revenue) == (0, 0.0)
    assert (jan16.browsed, jan16.converted, jan16.abandoned) == (1, 1, 0)
    assert (jan16.recovered_orders, jan16.recovered_revenue, jan16.reminders_sent) == (1, 80.0, 0)
    assert all(day.browsed == day.converted == day.abandoned == 0 for day in daily if day.day < date(2026, 1, 15))
    assert set(closed) == {"2026-01-15", "2026-01-16"}

    assert sum(day.abandoned for day in daily) == total["abandonedSessions"] == 2
    assert sum(day.abandoned_revenue for day in daily) == total["abandonedRevenue"] == 160.0
    assert sum(day.reminders_sent for day in daily) == total["remindersSent"] == 2
    assert sum(day.recovered_revenue for day in daily) == total["recoveredRevenue"] == 80.0
    assert sum(day.browsed + day.converted + day.abandoned for day in daily) == total["closedSessions"] == 6


async def test_no_data_gives_every_day_with_zeros(runtime: Runtime) -> None:
    start = JAN_15 + timedelta(hours=6)  # not aligned: the partial first and last days are still there
    async with runtime.sessions() as session:
        daily = await reports.abandonment_daily(session, start=start, end=start + timedelta(days=3))
    assert [day.day for day in daily] == [date(2026, 1, 15) + timedelta(days=n) for n in range(4)]
    assert all(day == reports.Day(day.day) for day in daily)
    assert reports.utc_days(JAN_15, JAN_15 + timedelta(days=1)) == [date(2026, 1, 15)]
