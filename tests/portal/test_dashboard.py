"""Dashboard: abandonment tiles with the previous period and daily SVG charts, from events sent through the API."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import httpx
import pytest

from innkeeper.connections import service as connections
from innkeeper.core.runtime import Runtime
from tests.connections.servers import SmtpServer
from tests.factories.mail import browse
from tests.factories.stream import event, post_event
from tests.portal.conftest import SignInAs
from tests.support.clock import FrozenClock
from tests.triggers.test_abandoned_cart import abandon_cart, connection, reminder_flow, work
from tests.triggers.test_reports import buy

SVG = "{http://www.w3.org/2000/svg}"


def charts_in(html: str) -> dict[str, ET.Element]:
    """Every inline SVG chart of a page, parsed, by its accessible name."""
    found = {}
    for markup in re.findall(r"<svg\b.*?</svg>", html, flags=re.DOTALL):
        root = ET.fromstring(markup)  # noqa: S314 -- the portal's own output, not untrusted XML
        found[str(root.get("aria-label"))] = root
    return found


def shapes(root: ET.Element, tag: str, css: str, series: str | None = None) -> list[ET.Element]:
    return [
        node
        for node in root.iter(f"{SVG}{tag}")
        if node.get("class") == css and (series is None or node.get("data-series") == series)
    ]


def values(root: ET.Element, tag: str, css: str, series: str | None = None) -> list[float]:
    return [float(node.get("data-value", "nan")) for node in shapes(root, tag, css, series)]


def tiles(html: str) -> dict[str, tuple[str, str]]:
    """Tile label -> (value, previous-period line)."""
    card = (
        r'<div class="card">\s*<div class="muted">(.*?)</div>\s*<div class="value">(.*?)</div>'
        r'\s*<div class="muted">\s*(.*?)\s*</div>'
    )
    cards = re.findall(card, html, flags=re.DOTALL)
    return {label: (value, re.sub(r"<[^>]+>", "", previous)) for label, value, previous in cards}


async def test_dashboard_tiles_and_charts_match_the_seeded_sessions(
    portal: httpx.AsyncClient,
    client: httpx.AsyncClient,
    signed_in_as: SignInAs,
    runtime: Runtime,
    clock: FrozenClock,
    smtp: SmtpServer,
    outbound: connections.Outbound,
) -> None:
    ref = await connection(client, smtp.port)
    await reminder_flow(client, ref, delay=0)
    # Jan 15: one abandoned cart (2 × 10); the worker does not run that day.
    await abandon_cart(client, "early@example.com", price=10.0)
    # Jan 16: two abandoned carts (2 × 50, 2 × 30) and a browse; the worker sends the three reminders.
    clock.advance(days=1)
    back = await abandon_cart(client, "back@example.com", price=50.0)
    await abandon_cart(client, "gone@example.com", price=30.0)
    await browse(client)
    await work(runtime, outbound)
    assert len(smtp.messages) == 3
    # Jan 17: the second guest comes back and buys (recovered revenue); that session closes converted.
    clock.advance(days=1)
    await buy(client, back, "ORD-BACK", 80.0)
    await post_event(client, event(back["ref"], "FORCE_CLOSE"))

    await signed_in_as("VIEWER")
    page = await portal.get("/portal/dashboard?days=7")
    assert page.status_code == 200, page.text
    assert 'aria-current="page">Last 7 days' in page.text
    assert "2026-01-11 to 2026-01-17" in page.text
    figures = tiles(page.text)
    assert figures["Abandoned sessions"][0] == "3"
    assert figures["Abandonment rate"][0] == "75.0%"  # 3 of the 4 closed sessions with an ADD
    assert figures["Abandoned revenue"][0] == "180.00"
    assert figures["Reminders sent"][0] == "3"
    assert figures["Recovered revenue"][0] == "80.00"
    assert figures["Recovery rate"][0] == "44.4%"
    assert figures["Abandoned sessions"][1] == "previous: 0"  # nothing the week before: no change shown

    found = charts_in(page.text)
    sessions = found["Closed sessions per day by outcome"]
    assert values(sessions, "rect", "bar", "Abandoned") == [1, 2]  # Jan 15, Jan 16
    assert values(sessions, "rect", "bar", "Browsed") == [1]
    assert values(sessions, "rect", "bar", "Converted") == [1]
    [one] = shapes(sessions, "rect", "bar", "Browsed")
    [_, two] = shapes(sessions, "rect", "bar", "Abandoned")
    assert float(two.get("height", "0")) == pytest.approx(2 * float(one.get("height", "0")), abs=0.02)
    revenue = found["Abandoned and recovered revenue per day"]
    assert values(revenue, "circle", "point", "Abandoned revenue") == [0, 0, 0, 0, 20, 160, 0]
    assert values(revenue, "circle", "point", "Recovered revenue") == [0, 0, 0, 0, 0, 0, 80]
    reminders = found["Reminder emails sent per day"]
    assert values(reminders, "rect", "bar") == [3]
    assert [node.text for node in shapes(reminders, "text", "label")][-1] == "01-17"

    # The previous 30 days are empty; the 90-day view has a bar slot per day.
    month = await portal.get("/portal/dashboard")
    assert 'aria-current="page">Last 30 days' in month.text
    assert tiles(month.text)["Abandoned revenue"][0] == "180.00"
    quarter = charts_in((await portal.get("/portal/dashboard?days=90")).text)
    assert values(quarter["Closed sessions per day by outcome"], "rect", "bar", "Abandoned") == [1, 2]


async def test_an_empty_dashboard_shows_no_data_charts(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    await signed_in_as("MARKETER")
    page = await portal.get("/portal/dashboard?days=nonsense")
    assert page.status_code == 200
    assert 'aria-current="page">Last 30 days' in page.text
    found = charts_in(page.text)
    assert len(found) == 3
    for root in found.values():
        assert [node.text for node in shapes(root, "text", "empty")] == ["No data yet"]
    figures = tiles(page.text)
    assert figures["Abandonment rate"] == ("—", "previous: —")
    assert figures["Abandoned revenue"][0] == "0.00"
    assert "style=" not in page.text and "<script>" not in page.text  # the CSP allows neither


async def test_previous_period_and_change(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs, clock: FrozenClock
) -> None:
    await abandon_cart(client, "a@example.com", price=10.0)  # Jan 15: 20 abandoned
    clock.advance(days=7)
    await abandon_cart(client, "b@example.com", price=15.0)  # Jan 22: 30 abandoned
    await abandon_cart(client, "c@example.com", price=15.0)
    await signed_in_as("VIEWER")
    figures = tiles((await portal.get("/portal/dashboard?days=7")).text)
    assert figures["Abandoned sessions"] == ("2", "previous: 1 · +100.0%")
    assert figures["Abandoned revenue"] == ("60.00", "previous: 20.00 · +200.0%")


async def test_home_and_sign_in_lead_to_the_dashboard(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    assert (await portal.get("/portal")).headers["location"] == "/portal/dashboard"
    await signed_in_as("VIEWER")
    assert (await portal.get("/portal/dashboard")).status_code == 200
