"""Cart outcome at close (spec §5.4), session counters and first-touch fields (§5.3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from innkeeper.core.runtime import Runtime
from innkeeper.sessions.service import duration
from innkeeper.worker import sweep_once
from tests.conftest import POINT_OF_SALE
from tests.factories.guests import identify
from tests.factories.sessions import (
    CHROME_MAC,
    SAFARI_IPHONE,
    browser_sessions,
    event_record,
    order_by_reference,
    outbox,
    send,
    session_of_event,
)
from tests.factories.stream import create_browser, product
from tests.support.clock import FrozenClock


async def _closed(client: httpx.AsyncClient, browser: dict[str, str]) -> dict[str, Any]:
    """FORCE_CLOSE the browser and return the closed session's timeline record."""
    forced = await send(client, browser["ref"], "FORCE_CLOSE")
    record = await session_of_event(client, browser["customer_ref"], forced["event_ref"])
    assert record["status"] == "CLOSED"
    return record


# --- abandoned / browsed ----------------------------------------------------------------


async def test_add_then_force_close_is_abandoned_with_one_outbox_message(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", page="races", product=product("EXACT_90", price=120.0, quantity=1))
    record = await _closed(client, browser)

    assert record["cartType"] == "ABANDONED"
    assert record["abandonedRevenue"] == 120.0
    assert record["value"] is None
    assert record["orderRef"] is None
    assert record["numAdds"] == 1
    [line] = record["cart"]
    assert line["itemId"] == "EXACT_90"
    assert line["quantity"] == 1
    assert line["price"] == 120.0

    [message] = await outbox(runtime)
    assert message.topic == "session.closed"
    assert message.delivered_at is None
    expected = {
        "sessionRef": record["ref"],
        "guestRef": browser["customer_ref"],
        "cartType": "ABANDONED",
        "abandonedRevenue": 120.0,
        "pointOfSale": POINT_OF_SALE,
    }
    assert {k: message.payload[k] for k in expected} == expected


async def test_abandoned_cart_is_detected_by_the_sweeper_too(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("A", price=19.99, quantity=3))
    clock.advance(minutes=21)
    assert await sweep_once(runtime) == 1
    [row] = await browser_sessions(runtime, browser["ref"])
    assert (row.cart_type, row.abandoned_revenue, row.close_reason) == ("ABANDONED", 59.97, "TIMEOUT")
    [message] = await outbox(runtime)
    assert message.payload["cartType"] == "ABANDONED"
    assert message.payload["abandonedRevenue"] == 59.97


async def test_same_item_id_updates_the_line_with_the_latest_quantity_and_price(
    client: httpx.AsyncClient,
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("SHOES", price=50.0, quantity=1))
    await send(client, browser["ref"], "ADD", product=product("HAT", price=10.0, quantity=2))
    await send(client, browser["ref"], "ADD", product=product("SHOES", price=45.0, quantity=3))
    record = await _closed(client, browser)

    lines = {line["itemId"]: line for line in record["cart"]}
    assert set(lines) == {"SHOES", "HAT"}
    assert (lines["SHOES"]["quantity"], lines["SHOES"]["price"]) == (3, 45.0)
    assert record["abandonedRevenue"] == 3 * 45.0 + 2 * 10.0
    assert record["numAdds"] == 3


async def test_quantity_zero_removes_the_line(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("SHOES", price=50.0))
    await send(client, browser["ref"], "ADD", product=product("HAT", price=10.0))
    await send(client, browser["ref"], "ADD", product=product("SHOES", price=50.0, quantity=0))
    record = await _closed(client, browser)
    assert [line["itemId"] for line in record["cart"]] == ["HAT"]
    assert record["abandonedRevenue"] == 10.0


async def test_removing_the_only_line_leaves_a_browsed_session(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("SHOES", price=50.0))
    await send(client, browser["ref"], "ADD", product=product("SHOES", price=50.0, quantity=0))
    record = await _closed(client, browser)
    assert (record["cartType"], record["abandonedRevenue"], record["cart"]) == ("BROWSED", None, [])


async def test_clear_cart_means_browsed_and_no_abandoned_revenue(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("SHOES", price=50.0, quantity=2))
    await send(client, browser["ref"], "CLEAR_CART")
    record = await _closed(client, browser)
    assert record["cartType"] == "BROWSED"
    assert record["abandonedRevenue"] is None
    assert record["cart"] == []
    [message] = await outbox(runtime)
    assert message.payload["cartType"] == "BROWSED"
    assert message.payload["abandonedRevenue"] is None


async def test_an_add_after_clear_cart_abandons_again(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("SHOES", price=50.0))
    await send(client, browser["ref"], "CLEAR_CART")
    await send(client, browser["ref"], "ADD", product=product("HAT", price=12.5, quantity=2))
    record = await _closed(client, browser)
    assert (record["cartType"], record["abandonedRevenue"]) == ("ABANDONED", 25.0)


async def test_views_only_is_browsed(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], page="home")
    await send(client, browser["ref"], page="about")
    record = await _closed(client, browser)
    assert (record["cartType"], record["abandonedRevenue"], record["numViews"]) == ("BROWSED", None, 2)


async def test_add_without_usable_product_warns_and_keeps_no_line(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    no_product = await send(client, browser["ref"], "ADD")
    bad_quantity = await send(client, browser["ref"], "ADD", product={**product("X"), "quantity": "two"})
    partial = await send(client, browser["ref"], "ADD", product={"item_id": "Y", "quantity": 1, "price": 5})
    guest = browser["customer_ref"]

    assert (await event_record(client, guest, no_product["event_ref"]))["warnings"]
    assert any("line ignored" in w for w in (await event_record(client, guest, bad_quantity["event_ref"]))["warnings"])
    partial_record = await event_record(client, guest, partial["event_ref"])
    assert partial_record["processingStatus"] == "SUCCESS"
    assert "product.name: missing" in partial_record["warnings"]
    record = await _closed(client, browser)
    assert [line["itemId"] for line in record["cart"]] == ["Y"]
    assert record["abandonedRevenue"] == 5.0


# --- converted --------------------------------------------------------------------------


async def test_add_confirm_checkout_converts_with_the_order_value(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("SHOES", price=80.0, quantity=2))
    await send(client, browser["ref"], "ADD", product=product("SOCKS", price=5.0, quantity=1))
    confirm = await send(client, browser["ref"], "CONFIRM", product=[{"item_id": "SHOES"}, {"item_id": "GHOST"}])
    await send(client, browser["ref"], "CHECKOUT", reference_id="ORDER-1001", status="PURCHASED")
    record = await _closed(client, browser)

    order = await order_by_reference(runtime, "ORDER-1001")
    assert order is not None
    assert order.status == "PURCHASED"
    assert order.price == 160.0  # only the confirmed line
    assert order.guest_ref == browser["customer_ref"]
    assert order.session_ref == record["ref"]
    assert order.currency_code == "EUR"
    assert record["cartType"] == "CONVERTED"
    assert record["value"] == 160.0
    assert record["orderRef"] == order.ref
    assert record["abandonedRevenue"] is None
    assert record["cart"] == []
    assert (record["numConfirms"], record["numCheckouts"]) == (1, 1)
    warnings = (await event_record(client, browser["customer_ref"], confirm["event_ref"]))["warnings"]
    assert warnings == ["product.item_id GHOST: no ADD in this session"]
    [message] = await outbox(runtime)
    assert message.payload["cartType"] == "CONVERTED"


async def test_checkout_without_confirm_orders_every_line(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("A", price=10.0, quantity=2))
    await send(client, browser["ref"], "ADD", product=product("B", price=2.5, quantity=4))
    await send(client, browser["ref"], "CHECKOUT", reference_id="ORDER-2", status="CONFIRMED")
    record = await _closed(client, browser)
    order = await order_by_reference(runtime, "ORDER-2")
    assert order is not None
    assert order.price == 30.0
    assert (record["cartType"], record["value"]) == ("CONVERTED", 30.0)


async def test_checkout_cancelled_of_an_unknown_order_is_accepted_with_a_warning(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("A", price=10.0))
    cancelled = await send(client, browser["ref"], "CHECKOUT", reference_id="NOPE-1", status="CANCELLED")
    stored = await event_record(client, browser["customer_ref"], cancelled["event_ref"])
    assert stored["processingStatus"] == "SUCCESS"
    assert stored["warnings"] == ["reference_id: no order to mark CANCELLED"]
    assert await order_by_reference(runtime, "NOPE-1") is None
    record = await _closed(client, browser)
    assert (record["cartType"], record["abandonedRevenue"]) == ("ABANDONED", 10.0)


async def test_checkout_cancelled_updates_an_existing_order(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("A", price=10.0))
    await send(client, browser["ref"], "CHECKOUT", reference_id="ORDER-3", status="PURCHASED")
    refunded = await send(client, browser["ref"], "CHECKOUT", reference_id="ORDER-3", status="REFUNDED")
    assert (await event_record(client, browser["customer_ref"], refunded["event_ref"]))["warnings"] == []
    order = await order_by_reference(runtime, "ORDER-3")
    assert order is not None
    assert order.status == "REFUNDED"


async def test_payment_copies_pay_type_onto_the_sessions_order(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("A", price=10.0))
    await send(client, browser["ref"], "CHECKOUT", reference_id="ORDER-4", status="PURCHASED")
    await send(client, browser["ref"], "PAYMENT", pay_type="PayPal")
    order = await order_by_reference(runtime, "ORDER-4")
    assert order is not None
    assert order.payment_type == "PayPal"


async def test_payment_without_an_order_changes_nothing(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await create_browser(client)
    payment = await send(client, browser["ref"], "PAYMENT", pay_type="Card")
    stored = await event_record(client, browser["customer_ref"], payment["event_ref"])
    assert stored["processingStatus"] == "SUCCESS"
    record = await _closed(client, browser)
    assert (record["cartType"], record["orderRef"]) == ("BROWSED", None)


def _order(reference_id: str, *, price: float, status: str = "PURCHASED") -> dict[str, object]:
    return {
        "referenceId": reference_id,
        "orderedAt": "2026-01-15T09:00:00.000Z",
        "status": status,
        "currencyCode": "EUR",
        "price": price,
        "paymentType": "Card",
        "cardType": "Visa",
        "orderItems": [
            {
                "type": "BET",
                "referenceId": f"{reference_id}-1",
                "orderedAt": "2026-01-15T09:00:00.000Z",
                "status": status,
                "currencyCode": "EUR",
                "price": price,
                "name": "Exact score",
                "productId": "CORRECT_SCORE",
                "quantity": 1,
            }
        ],
    }


async def test_order_checkout_by_a_visitor_fails_not_identified(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("A", price=10.0))
    attempt = await send(client, browser["ref"], "ORDER_CHECKOUT", order=_order("OC-1", price=10.0))
    stored = await event_record(client, browser["customer_ref"], attempt["event_ref"])
    assert stored["processingStatus"] == "FAILED"
    assert stored["failureReason"] == "Guest is not identified"
    assert await order_by_reference(runtime, "OC-1") is None
    record = await _closed(client, browser)
    assert record["cartType"] == "ABANDONED"


async def test_order_checkout_by_an_identified_guest_converts(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = await create_browser(client)
    await identify(client, browser["ref"], email="oc.buyer@example.com")
    await send(client, browser["ref"], "ADD", product=product("A", price=10.0))
    placed = await send(client, browser["ref"], "ORDER_CHECKOUT", order=_order("OC-2", price=99.5))
    stored = await event_record(client, browser["customer_ref"], placed["event_ref"])
    assert stored["processingStatus"] == "SUCCESS"
    order = await order_by_reference(runtime, "OC-2")
    assert order is not None
    assert (order.price, order.payment_type, order.card_type, order.status) == (99.5, "Card", "Visa", "PURCHASED")
    record = await _closed(client, browser)
    assert (record["cartType"], record["value"], record["orderRef"]) == ("CONVERTED", 99.5, order.ref)
    assert record["abandonedRevenue"] is None


# --- counters and first-touch fields ----------------------------------------------------


async def test_counters_pages_utm_referrer_session_data_and_device(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    ref = browser["ref"]
    await send(
        client,
        ref,
        page="home",
        user_agent=CHROME_MAC,
        referrer="https://www.google.com/",
        utm_source="newsletter",
        UTM_Medium="email",
        session_data={"is_logged_in": False, "deep_link": "/sale"},
    )
    await send(
        client, ref, "SEARCH", page="search", product_name="shoes", utm_source="late", referrer="https://bing.com/"
    )
    await send(client, ref, page="shoes", user_agent=SAFARI_IPHONE, session_data={"is_logged_in": True, "tier": 2})
    await send(client, ref, "SELECT", page="shoe-42")
    await send(client, ref, "ADD", page="cart", product=product("SHOE_42", price=70.0))
    bad_data = await send(client, ref, "CUSTOM_THING", session_data={"nested": {"no": 1}})
    await send(client, ref, "CONFIRM", page="confirm", product=[{"item_id": "SHOE_42"}])
    await send(client, ref, page="checkout")
    await send(client, ref, "CHECKOUT", page="thanks", reference_id="ORDER-C1", status="PAYMENT_PENDING")
    record = await _closed(client, browser)

    counters = {
        k: record[k]
        for k in ("numEvents", "numViews", "numSearches", "numSelects", "numAdds", "numConfirms", "numCheckouts")
    }
    assert counters == {
        "numEvents": 10,
        "numViews": 3,
        "numSearches": 1,
        "numSelects": 1,
        "numAdds": 1,
        "numConfirms": 1,
        "numCheckouts": 1,
    }
    assert (record["firstPageUri"], record["lastPageUri"]) == ("home", "checkout")
    assert record["utm"] == {"utm_source": "newsletter", "utm_medium": "email"}
    assert record["referrer"] == "https://www.google.com/"
    assert record["sessionData"] == {"is_logged_in": True, "deep_link": "/sale", "tier": 2}
    assert record["userAgent"] == CHROME_MAC
    assert record["device"] == {"type": "desktop", "os": "macOS", "browser": "Chrome"}
    assert (record["language"], record["currencyCode"], record["sessionType"]) == ("EN", "EUR", "WEB")
    assert record["cartType"] == "CONVERTED"
    stored = await event_record(client, browser["customer_ref"], bad_data["event_ref"])
    assert stored["warnings"] == ["session_data.nested: values must be primitives"]


async def test_utm_and_referrer_come_from_the_first_event_that_carries_them(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], page="home")
    await send(client, browser["ref"], page="promo", utm_campaign="summer_sale", referrer="https://news.example/")
    await send(client, browser["ref"], page="more", utm_campaign="winter", referrer="https://other.example/")
    record = await _closed(client, browser)
    assert record["utm"] == {"utm_campaign": "summer_sale"}
    assert record["referrer"] == "https://news.example/"


async def test_device_of_a_phone(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], user_agent=SAFARI_IPHONE, channel="MOBILE_WEB")
    forced = await send(client, browser["ref"], "FORCE_CLOSE", channel="MOBILE_WEB")
    record = await session_of_event(client, browser["customer_ref"], forced["event_ref"])
    assert record["device"] == {"type": "mobile", "os": "iOS", "browser": "Safari"}
    assert record["sessionType"] == "WEB"


async def test_session_duration_is_minutes_dot_seconds(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], page="home")
    for step in (15, 15):
        clock.advance(minutes=step)
        await send(client, browser["ref"])
    clock.advance(minutes=14, seconds=55)
    await send(client, browser["ref"], page="checkout")
    record = await _closed(client, browser)
    assert record["duration"] == 44.55
    assert record["endedAt"] == record["lastActivityAt"]


def test_duration_encoding() -> None:
    start = datetime(2025, 10, 4, 22, 30, 40, 516000, tzinfo=UTC)
    assert duration(start, start + timedelta(minutes=44, seconds=55)) == 44.55
    assert duration(start, start) == 0.0
    assert duration(start, start + timedelta(seconds=59)) == 0.59
    assert duration(start, start + timedelta(seconds=60)) == 1.0
    assert duration(start, start + timedelta(minutes=2, seconds=5)) == 2.05
    assert duration(start, start + timedelta(minutes=10, seconds=59, milliseconds=999)) == 10.59
    assert duration(start, start + timedelta(hours=2, minutes=3, seconds=4)) == 123.04
    assert duration(start, start - timedelta(minutes=1)) == 0.0
