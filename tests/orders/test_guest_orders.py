"""A guest's orders: embedded in an expanded guest (spec §8.3) and filtered by ``guestRef`` (§9.1).

One order comes from a Stream CHECKOUT (the session's guest), another from the Order REST API with
a contact whose identifiers resolve to the same guest.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import POINT_OF_SALE
from tests.factories.guests import identify
from tests.factories.sessions import send
from tests.factories.stream import create_browser, product
from tests.orders._helpers import BASE, NOW, assert_rest_error, call, create_order, ref_of

IDENTIFIERS = [{"provider": "BXLP", "id": "U-42"}]


async def _guest_with_two_orders(client: httpx.AsyncClient) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A guest with a Stream CHECKOUT order (ordered now) and an older REST order linked by contact."""
    browser = await create_browser(client)
    await identify(client, browser["ref"], email="jane@example.com", identifiers=IDENTIFIERS)
    await send(client, browser["ref"], "ADD", product=product("SHOES_1", price=80.0, quantity=2))
    await send(client, browser["ref"], "CHECKOUT", reference_id="ORD-STREAM-1", status="PURCHASED")
    guest_ref: str = browser["customer_ref"]
    listed = (await call(client, "GET", "/v2.1/orders?referenceId=ORD-STREAM-1&expand=true")).json()
    stream_order: dict[str, Any] = listed["items"][0]

    rest_order = await create_order(client, "PNR-REST-1", channel="CALL_CENTER", pointOfSale="callcentre/ie")
    contact = await call(client, "POST", f"/v2.1/orders/{rest_order['ref']}/contact", json={"identifiers": IDENTIFIERS})
    assert contact.status_code == 201, contact.text
    assert ref_of(contact.json()["guest"]["href"]) == guest_ref
    return guest_ref, stream_order, rest_order


def _summary(order: dict[str, Any]) -> dict[str, Any]:
    keys = ("href", "ref", "referenceId", "status", "price", "currencyCode", "orderedAt", "channel", "pointOfSale")
    return {k: order[k] for k in keys if k in order}


async def test_expanded_guest_embeds_its_orders_newest_first(client: httpx.AsyncClient) -> None:
    guest_ref, stream_order, rest_order = await _guest_with_two_orders(client)
    await create_order(client, "PNR-OTHER")  # no contact: nobody's order

    guest = (await call(client, "GET", f"/v2.1/guests/{guest_ref}?expand=true")).json()
    assert list(guest)[-1] == "orders"
    assert guest["orders"] == [
        {
            "href": f"{BASE}/v2.1/orders/{stream_order['ref']}",
            "ref": stream_order["ref"],
            "referenceId": "ORD-STREAM-1",
            "status": "PURCHASED",
            "price": 160.0,
            "currencyCode": "EUR",
            "orderedAt": NOW,
            "channel": "WEB",
            "pointOfSale": POINT_OF_SALE,
        },
        {
            "href": f"{BASE}/v2.1/orders/{rest_order['ref']}",
            "ref": rest_order["ref"],
            "referenceId": "PNR-REST-1",
            "status": "PURCHASED",
            "price": 250.5,
            "currencyCode": "EUR",
            "orderedAt": "2025-08-23T16:17:16.000Z",
            "channel": "CALL_CENTER",
            "pointOfSale": "callcentre/ie",
        },
    ]
    assert [_summary(o) for o in guest["orders"]] == [_summary(stream_order), _summary(rest_order)]

    legacy = (await call(client, "GET", f"/v2/guests/{guest_ref}?expand=true")).json()
    assert legacy["href"] == f"{BASE}/v2/guests/{guest_ref}"
    assert legacy["orders"] == guest["orders"]  # orders only have v2.1 hrefs


async def test_orders_stay_out_without_expand_or_orders(client: httpx.AsyncClient, admin_auth: tuple[str, str]) -> None:
    guest_ref, _, _ = await _guest_with_two_orders(client)
    for path in (f"/v2.1/guests/{guest_ref}", f"/v2/guests/{guest_ref}", f"/v2.1/guests/{guest_ref}?expand=false"):
        assert "orders" not in (await call(client, "GET", path)).json(), path
    found = await call(client, "GET", "/v2.1/guests?email=jane@example.com&expand=true")
    assert "orders" not in found.json()["items"][0]

    lonely = await client.post("/v2.1/guests", json={"guestType": "customer"}, auth=admin_auth)
    expanded = (await call(client, "GET", f"/v2.1/guests/{lonely.json()['ref']}?expand=true")).json()
    assert "orders" not in expanded


async def test_at_most_100_orders_are_embedded(client: httpx.AsyncClient, admin_auth: tuple[str, str]) -> None:
    guest = await client.post(
        "/v2.1/guests", json={"guestType": "customer", "identifiers": IDENTIFIERS}, auth=admin_auth
    )
    guest_ref = guest.json()["ref"]
    for n in range(101):
        order = await create_order(client, f"PNR-{n:03}", orderedAt=f"2025-01-01T00:{n // 60:02}:{n % 60:02}.000Z")
        linked = await call(client, "POST", f"/v2.1/orders/{order['ref']}/contact", json={"identifiers": IDENTIFIERS})
        assert ref_of(linked.json()["guest"]["href"]) == guest_ref
    embedded = (await call(client, "GET", f"/v2.1/guests/{guest_ref}?expand=true")).json()["orders"]
    assert len(embedded) == 100
    assert [o["referenceId"] for o in embedded[:2]] == ["PNR-100", "PNR-099"]
    assert embedded[-1]["referenceId"] == "PNR-001"


async def test_orders_filter_by_guest(client: httpx.AsyncClient) -> None:
    guest_ref, stream_order, rest_order = await _guest_with_two_orders(client)
    await create_order(client, "PNR-OTHER")

    listed = (await call(client, "GET", f"/v2.1/orders?guestRef={guest_ref}")).json()
    assert listed["href"] == f"{BASE}/v2.1/orders?offset=0&limit=10&guestRef={guest_ref}"
    assert sorted(i["href"] for i in listed["items"]) == sorted(
        f"{BASE}/v2.1/orders/{o['ref']}" for o in (stream_order, rest_order)
    )
    expanded = (await call(client, "GET", f"/v2.1/orders?guestRef={guest_ref.upper()}&expand=true")).json()
    assert {o["referenceId"] for o in expanded["items"]} == {"ORD-STREAM-1", "PNR-REST-1"}
    assert all(o["guest"] == {"href": f"{BASE}/v2.1/guests/{guest_ref}"} for o in expanded["items"])
    both = (await call(client, "GET", f"/v2.1/orders?guestRef={guest_ref}&referenceId=PNR-REST-1")).json()
    assert [i["href"] for i in both["items"]] == [f"{BASE}/v2.1/orders/{rest_order['ref']}"]
    paged = (await call(client, "GET", f"/v2.1/orders?guestRef={guest_ref}&offset=1&limit=1")).json()
    assert len(paged["items"]) == 1

    nobody = (await call(client, "GET", "/v2.1/orders?guestRef=f7aabbca-1c1b-4fc2-be72-3e16294a4f03")).json()
    assert nobody["items"] == []
    for bad in ("not-a-uuid", "1234", ""):
        response = await call(client, "GET", f"/v2.1/orders?guestRef={bad}")
        assert_rest_error(response, 400, mentions="guestRef")
