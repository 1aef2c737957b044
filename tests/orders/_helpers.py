"""Builders for the Order REST API tests: bodies with realistic defaults, tokens, requests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import API_TOKEN, CLIENT_KEY

ADMIN = (CLIENT_KEY, API_TOKEN)
BASE = "http://testserver"
NOW = "2026-01-15T09:00:00.000Z"  # FrozenClock's start


def order_body(reference_id: str = "PNR-0001", /, **fields: Any) -> dict[str, Any]:
    """A create-order body with every field of spec §9.1."""
    body: dict[str, Any] = {
        "referenceId": reference_id,
        "orderedAt": "2025-08-23T16:17:16.000Z",
        "currencyCode": "EUR",
        "price": 250.5,
        "status": "PURCHASED",
        "channel": "WEB",
        "pointOfSale": "myretailsite/ireland",
        "paymentType": "Card",
        "cardType": "Visa",
    }
    body.update(fields)
    return body


def item_body(**fields: Any) -> dict[str, Any]:
    """A create-order-item body (spec §9.2)."""
    body: dict[str, Any] = {
        "type": "HOTEL",
        "referenceId": "PNR-0001-1",
        "productId": "DBL-ROOM",
        "name": "Double room, 2 nights",
        "orderedAt": "2025-08-23T16:17:16.000Z",
        "quantity": 2,
        "price": 120.0,
        "currencyCode": "EUR",
        "status": "CONFIRMED",
    }
    body.update(fields)
    return body


async def token(client: httpx.AsyncClient, scope: str) -> tuple[str, str]:
    """Basic credentials with a new API token of ``scope`` (ro, rw or admin)."""
    response = await client.post("/admin/v1/api-tokens", json={"label": f"{scope} token", "scope": scope}, auth=ADMIN)
    assert response.status_code == 201, response.text
    return (CLIENT_KEY, response.json()["token"])


async def create_order(client: httpx.AsyncClient, reference_id: str = "PNR-0001", /, **fields: Any) -> dict[str, Any]:
    """POST an order (expects 201)."""
    response = await client.post("/v2.1/orders", json=order_body(reference_id, **fields), auth=ADMIN)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_item(client: httpx.AsyncClient, order_ref: str, **fields: Any) -> dict[str, Any]:
    """POST an order item (expects 201)."""
    response = await client.post(f"/v2.1/orders/{order_ref}/orderItems", json=item_body(**fields), auth=ADMIN)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def call(
    client: httpx.AsyncClient, method: str, path: str, *, json: Any = None, auth: tuple[str, str] = ADMIN
) -> httpx.Response:
    """One request with admin credentials by default."""
    return await client.request(method, path, json=json, auth=auth)


def assert_rest_error(response: httpx.Response, status: int, *, mentions: str | None = None) -> dict[str, Any]:
    """The Sitecore REST error shape (spec §1.7) with the given status."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == status
    assert body["status"] == {401: "UNAUTHORIZED", 403: "FORBIDDEN"}.get(status, status)
    assert body["moreInfoUrl"].startswith("https://")
    assert isinstance(body["message"], str) and body["message"]
    if mentions is not None:
        assert mentions in body.get("developerMessage", ""), body
    return body


def ref_of(href: str) -> str:
    """The ref at the end of an href (documented: the guest ref is the last segment of guest.href)."""
    return href.rstrip("/").rsplit("/", 1)[-1]
