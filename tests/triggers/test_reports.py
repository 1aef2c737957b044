"""Recovered revenue: orders after a reminder are attributed in the 1h/3h/1d/3d/7d windows; the abandonment report."""

from __future__ import annotations

from typing import Any

import httpx

from innkeeper.connections import service as connections
from innkeeper.core.runtime import Runtime
from tests.connections.servers import SmtpServer
from tests.factories.flows import AUTH
from tests.factories.stream import event, post_event, product
from tests.support.clock import FrozenClock
from tests.triggers.test_abandoned_cart import abandon_cart, connection, reminder_flow, work


async def buy(client: httpx.AsyncClient, browser: dict[str, Any], reference: str, price: float) -> None:
    await post_event(client, event(browser["ref"], "ADD", product=product("SKU-1", price=price)))
    await post_event(client, event(browser["ref"], "CHECKOUT", reference_id=reference, status="PURCHASED"))


async def test_an_order_two_hours_after_the_reminder_is_recovered_revenue(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, smtp: SmtpServer, outbound: connections.Outbound
) -> None:
    ref = await connection(client, smtp.port)
    flow = await reminder_flow(client, ref, delay=0)
    browser = await abandon_cart(client, "back@example.com", price=50.0)  # 2 × 50 abandoned
    await abandon_cart(client, "gone@example.com", price=30.0)  # 2 × 30 abandoned, never comes back
    await work(runtime, outbound)
    assert len(smtp.messages) == 2
    clock.advance(hours=2)
    await buy(client, browser, "ORD-BACK", 80.0)

    goals = (await client.get(f"/innkeeper/v1/reports/triggered/{flow['ref']}", auth=AUTH)).json()
    [variant] = goals["variants"]
    assert variant["variantRef"] == "email" and variant["executions"] == 2
    windows = variant["windows"]
    assert windows["1h"] == {"conversions": 0, "revenue": 0.0, "aov": None}
    for name in ("3h", "1d", "3d", "7d"):
        assert windows[name] == {"conversions": 1, "revenue": 80.0, "aov": 80.0}, name
    assert goals["deliveries"] == {"SENT": 2}

    report = (await client.get("/innkeeper/v1/reports/abandonment", auth=AUTH)).json()
    assert report["abandonedSessions"] == 2
    assert report["abandonedRevenue"] == 160.0
    assert report["remindersSent"] == 2
    assert report["recoveredOrders"] == 1
    assert report["recoveredRevenue"] == 80.0
    assert report["recoveryRate"] == 0.5
    assert report["abandonmentRate"] == 1.0  # both closed sessions with an ADD were abandoned; the buy is still open
    assert report["previousPeriod"]["abandonedSessions"] == 0


async def test_an_order_after_the_seven_day_window_is_not_recovered(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, smtp: SmtpServer, outbound: connections.Outbound
) -> None:
    ref = await connection(client, smtp.port)
    flow = await reminder_flow(client, ref, delay=0)
    browser = await abandon_cart(client, "late@example.com", price=50.0)
    await work(runtime, outbound)
    clock.advance(days=8)
    await buy(client, browser, "ORD-LATE", 80.0)
    goals = (await client.get(f"/innkeeper/v1/reports/triggered/{flow['ref']}?from=2000-01-01", auth=AUTH)).json()
    assert all(value["conversions"] == 0 for value in goals["variants"][0]["windows"].values())
    report = (await client.get("/innkeeper/v1/reports/abandonment", auth=AUTH)).json()
    assert (report["remindersSent"], report["recoveredRevenue"]) == (1, 0.0)


async def test_report_validation_and_auth(client: httpx.AsyncClient) -> None:
    assert (await client.get("/innkeeper/v1/reports/abandonment")).status_code == 401
    bad = await client.get("/innkeeper/v1/reports/abandonment?from=soon", auth=AUTH)
    assert bad.status_code == 400
    backwards = await client.get("/innkeeper/v1/reports/abandonment?from=2025-02-01&to=2025-01-01", auth=AUTH)
    assert backwards.status_code == 400
    unknown = await client.get("/innkeeper/v1/reports/triggered/nope", auth=AUTH)
    assert unknown.status_code == 404
