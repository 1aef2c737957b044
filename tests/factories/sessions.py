"""Builders and readers for sessions: send events as a site would, read sessions back."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import select

from innkeeper.connections.models import OutboxMessage
from innkeeper.core.runtime import Runtime
from innkeeper.orders.models import Order
from innkeeper.sessions.models import Session
from tests.conftest import API_TOKEN, CLIENT_KEY
from tests.factories.stream import event

ADMIN = (CLIENT_KEY, API_TOKEN)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


async def send(
    client: httpx.AsyncClient,
    browser_id: str,
    type_: str = "VIEW",
    *,
    user_agent: str | None = None,
    expect: int = 201,
    **fields: Any,
) -> dict[str, Any]:
    """POST one event (Engage SDK transport) and return the Stream response body."""
    headers = {"User-Agent": user_agent} if user_agent else None
    response = await client.post(
        "/v1.2/events", json={"client_key": CLIENT_KEY, **event(browser_id, type_, **fields)}, headers=headers
    )
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_pos(client: httpx.AsyncClient, name: str, *, timeout_minutes: int, **fields: Any) -> dict[str, Any]:
    """Create a point of sale through the admin API."""
    response = await client.post(
        "/admin/v1/points-of-sale", json={"name": name, "timeoutInMinutes": timeout_minutes, **fields}, auth=ADMIN
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def update_pos(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    """Replace a point of sale's fields through the admin API (expects 200)."""
    response = await client.put(f"/admin/v1/points-of-sale/{quote(name, safe='')}", json=fields, auth=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def timeline(client: httpx.AsyncClient, guest_ref: str, **params: str) -> dict[str, Any]:
    """GET the admin timeline of a guest (expects 200)."""
    response = await client.get(f"/admin/v1/guests/{guest_ref}/timeline", params=params, auth=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def guest_events(client: httpx.AsyncClient, guest_ref: str, **params: str) -> list[dict[str, Any]]:
    """GET the admin event viewer of a guest (newest first)."""
    response = await client.get(f"/admin/v1/guests/{guest_ref}/events", params=params, auth=ADMIN)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def event_record(client: httpx.AsyncClient, guest_ref: str, event_ref: str) -> dict[str, Any]:
    """One stored event record, found through the event viewer."""
    for item in await guest_events(client, guest_ref):
        if item["ref"] == event_ref:
            return item
    raise AssertionError(f"event {event_ref} not in the event viewer of guest {guest_ref}")


async def session_of_event(client: httpx.AsyncClient, guest_ref: str, event_ref: str) -> dict[str, Any]:
    """The timeline session record that holds an event."""
    for item in (await timeline(client, guest_ref))["items"]:
        if any(e["ref"] == event_ref for e in item["events"]):
            record: dict[str, Any] = item
            return record
    raise AssertionError(f"event {event_ref} is in no session of guest {guest_ref}")


async def browser_sessions(runtime: Runtime, browser_ref: str) -> list[Session]:
    """Every session of a browser, oldest first, read in a fresh unit of work."""
    async with runtime.sessions() as session:
        stmt = select(Session).where(Session.browser_ref == browser_ref).order_by(Session.started_at, Session.ref)
        return list((await session.execute(stmt)).scalars())


async def open_sessions(runtime: Runtime, browser_ref: str) -> list[Session]:
    """The browser's OPEN sessions."""
    return [s for s in await browser_sessions(runtime, browser_ref) if s.status == "OPEN"]


async def outbox(runtime: Runtime, topic: str = "session.closed") -> list[OutboxMessage]:
    """Outbox rows of a topic, oldest first."""
    async with runtime.sessions() as session:
        stmt = select(OutboxMessage).where(OutboxMessage.topic == topic).order_by(OutboxMessage.id)
        return list((await session.execute(stmt)).scalars())


async def order_by_reference(runtime: Runtime, reference_id: str) -> Order | None:
    """An order by its ``referenceId``."""
    async with runtime.sessions() as session:
        stmt = select(Order).where(Order.reference_id == reference_id)
        return (await session.execute(stmt)).scalar_one_or_none()
