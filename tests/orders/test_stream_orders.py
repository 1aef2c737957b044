"""Orders created by Stream CHECKOUT / ORDER_CHECKOUT are readable over REST (spec §4.2, §9.3)."""

from __future__ import annotations

import httpx

from innkeeper.core.runtime import Runtime
from tests.conftest import POINT_OF_SALE
from tests.factories.guests import identify
from tests.factories.sessions import send
from tests.factories.stream import create_browser, product
from tests.orders._helpers import BASE, call, ref_of


async def _order_by_reference(client: httpx.AsyncClient, reference_id: str) -> dict[str, object]:
    listed = (await call(client, "GET", f"/v2.1/orders?referenceId={reference_id}&expand=true")).json()
    assert len(listed["items"]) == 1, listed
    order: dict[str, object] = listed["items"][0]
    return order


async def test_checkout_order_reads_back_over_rest(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product("SHOES_1", price=80.0, quantity=2))
    await send(client, browser["ref"], "CHECKOUT", reference_id="ORD-STREAM-1", status="PURCHASED")

    order = await _order_by_reference(client, "ORD-STREAM-1")
    assert order["channel"] == "WEB"
    assert order["pointOfSale"] == POINT_OF_SALE
    assert order["status"] == "PURCHASED"
    assert (order["price"], order["currencyCode"]) == (160.0, "EUR")
    assert order["guest"] == {"href": f"{BASE}/v2.1/guests/{browser['customer_ref']}"}

    items = (await call(client, "GET", f"/v2.1/orders/{order['ref']}/orderItems?expand=true")).json()["items"]
    assert [(i["productId"], i["quantity"], i["price"], i["orderedAt"]) for i in items] == [
        ("CORRECT_SCORE", 2, 80.0, "2025-08-23T16:17:16.000Z")
    ]
    assert items[0]["createdAt"] == "2026-01-15T09:00:00.000Z"
    contact = (await call(client, "GET", f"/v2.1/orders/{order['ref']}/contact")).json()
    assert contact["guest"] == order["guest"]


async def test_order_checkout_reads_back_over_rest(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await identify(client, browser["ref"], email="jane@example.com", identifiers=[{"provider": "BXLP", "id": "U-1"}])
    await send(
        client,
        browser["ref"],
        "ORDER_CHECKOUT",
        channel="MOBILE_APP",
        order={
            "referenceId": "ORD-OC-1",
            "orderedAt": "2025-08-23T16:17:16.000Z",
            "status": "PURCHASED",
            "currencyCode": "EUR",
            "price": 300,
            "paymentType": "Card",
            "cardType": "Visa",
            "orderItems": [
                {
                    "type": "HOTEL",
                    "referenceId": "ORD-OC-1-1",
                    "orderedAt": "2025-08-23T16:17:16.000Z",
                    "status": "CONFIRMED",
                    "currencyCode": "EUR",
                    "price": 300,
                    "name": "Double room",
                    "productId": "DBL",
                    "quantity": 1,
                }
            ],
        },
    )
    order = await _order_by_reference(client, "ORD-OC-1")
    assert (order["channel"], order["pointOfSale"], order["paymentType"], order["cardType"]) == (
        "MOBILE_APP",
        POINT_OF_SALE,
        "Card",
        "Visa",
    )
    assert ref_of(order["guest"]["href"]) == browser["customer_ref"]  # type: ignore[index]
    items = (await call(client, "GET", f"/v2.1/orders/{order['ref']}/orderItems?expand=true")).json()["items"]
    assert [(i["type"], i["name"], i["status"]) for i in items] == [("HOTEL", "Double room", "CONFIRMED")]


async def test_merge_moves_orders_and_contacts_to_the_surviving_guest(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    known = await create_browser(client)
    await identify(client, known["ref"], identifiers=[{"provider": "BXLP", "id": "U-7"}])
    visitor = await create_browser(client)
    await send(client, visitor["ref"], "ADD", product=product())
    await send(client, visitor["ref"], "CHECKOUT", reference_id="ORD-MERGE", status="CONFIRMED")
    await identify(client, visitor["ref"], identifiers=[{"provider": "BXLP", "id": "U-7"}])

    order = await _order_by_reference(client, "ORD-MERGE")
    assert ref_of(order["guest"]["href"]) == known["customer_ref"]  # type: ignore[index]
    contact = (await call(client, "GET", f"/v2.1/orders/{order['ref']}/contact")).json()
    assert contact["guest"] == order["guest"]


async def test_rest_order_gets_the_checkout_guest_when_it_had_none(client: httpx.AsyncClient) -> None:
    response = await call(
        client,
        "POST",
        "/v2.1/orders",
        json={"referenceId": "ORD-BOTH", "orderedAt": "2025-08-23", "currencyCode": "EUR", "price": 1},
    )
    assert "guest" not in response.json()
    browser = await create_browser(client)
    await send(client, browser["ref"], "ADD", product=product())
    await send(client, browser["ref"], "CHECKOUT", reference_id="ORD-BOTH", status="PURCHASED")
    order = await _order_by_reference(client, "ORD-BOTH")
    assert ref_of(order["guest"]["href"]) == browser["customer_ref"]  # type: ignore[index]
