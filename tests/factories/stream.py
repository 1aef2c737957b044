"""Builders that go through the public Stream API, as a site would."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.conftest import CLIENT_KEY, POINT_OF_SALE


async def create_browser(client: httpx.AsyncClient, *, prefix: str = "/v1.2") -> dict[str, Any]:
    """GET browser/create.json as the Engage SDK does (``message={}`` unencoded)."""
    response = await client.get(f"{prefix}/browser/create.json?client_key={CLIENT_KEY}&message={{}}")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def event(browser_id: str, type_: str = "VIEW", **fields: Any) -> dict[str, Any]:
    """An event message with realistic defaults."""
    message: dict[str, Any] = {
        "channel": "WEB",
        "type": type_,
        "language": "EN",
        "currency": "EUR",
        "page": "home",
        "pos": POINT_OF_SALE,
        "browser_id": browser_id,
    }
    message.update(fields)
    return message


async def post_event(client: httpx.AsyncClient, message: dict[str, Any], *, expect: int = 201) -> dict[str, Any]:
    """POST /v1.2/events with the client key in the body (Engage SDK)."""
    response = await client.post("/v1.2/events", json={"client_key": CLIENT_KEY, **message})
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


def product(item_id: str = "EXACT_90", *, price: float = 100.0, quantity: int = 1, **extra: Any) -> dict[str, Any]:
    """An ADD event's product."""
    return {
        "type": "BET",
        "item_id": item_id,
        "name": "Exact score after 90 minutes",
        "orderedAt": "2025-08-23T16:17:16.000Z",
        "quantity": quantity,
        "price": price,
        "productId": "CORRECT_SCORE",
        "currency": "EUR",
        "referenceId": f"{item_id}-1",
        **extra,
    }


def as_query(message: dict[str, Any]) -> str:
    """Compact JSON, as ``JSON.stringify`` would produce it."""
    return json.dumps(message, separators=(",", ":"))
