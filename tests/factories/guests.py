"""Builders and readers for guests: IDENTITY events, show.json, identity rules."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from innkeeper.core.runtime import Runtime
from innkeeper.guests.models import Browser, Guest, GuestIdentifier
from tests.conftest import CLIENT_KEY
from tests.factories.sessions import ADMIN, send


async def identify(
    client: httpx.AsyncClient,
    browser_id: str,
    *,
    email: str | None = None,
    identifiers: list[dict[str, str]] | None = None,
    **pii: Any,
) -> dict[str, Any]:
    """Send an IDENTITY event; ``identifiers`` omitted means a legacy email-only IDENTITY."""
    fields: dict[str, Any] = {"page": "login", **pii}
    if email is not None:
        fields["email"] = email
    if identifiers is not None:
        fields["identifiers"] = identifiers
    return await send(client, browser_id, "IDENTITY", **fields)


async def show(client: httpx.AsyncClient, browser_ref: str) -> dict[str, Any]:
    """``show.json``'s ``customer`` object: the browser's current guest."""
    response = await client.get(f"/v1.2/browser/{browser_ref}/show.json?client_key={CLIENT_KEY}&api_token=0")
    assert response.status_code == 200, response.text
    customer: dict[str, Any] = response.json()["customer"]
    return customer


async def put_identity_rules(
    client: httpx.AsyncClient, *, rules: list[dict[str, str]], email_fallback: bool
) -> dict[str, Any]:
    """Replace the tenant's identity rules."""
    response = await client.put(
        "/admin/v1/identity-rules", json={"rules": rules, "emailFallback": email_fallback}, auth=ADMIN
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def timeline_status(client: httpx.AsyncClient, guest_ref: str) -> int:
    """Status of GET timeline (404 for retired or unknown guests)."""
    response = await client.get(f"/admin/v1/guests/{guest_ref}/timeline", auth=ADMIN)
    return response.status_code


async def get_guest_row(runtime: Runtime, guest_ref: str) -> Guest:
    """A guest row (retired ones too), read in a fresh unit of work."""
    async with runtime.sessions() as session:
        guest = await session.get(Guest, guest_ref)
        assert guest is not None, guest_ref
        return guest


async def identifier_owners(runtime: Runtime, provider: str, value: str) -> list[str]:
    """Refs of the guests owning an identifier (the unique key allows at most one)."""
    async with runtime.sessions() as session:
        stmt = select(GuestIdentifier.guest_ref).where(
            GuestIdentifier.provider == provider, GuestIdentifier.value == value
        )
        return list((await session.execute(stmt)).scalars())


async def browser_guest(runtime: Runtime, browser_ref: str) -> str:
    """The guest a browser row points at."""
    async with runtime.sessions() as session:
        browser = await session.get(Browser, browser_ref)
        assert browser is not None
        return browser.guest_ref


async def count_guests(runtime: Runtime, *, guest_type: str | None = None) -> int:
    """How many guests (of a type) exist."""
    async with runtime.sessions() as session:
        stmt = select(func.count()).select_from(Guest)
        if guest_type is not None:
            stmt = stmt.where(Guest.guest_type == guest_type)
        return int((await session.execute(stmt)).scalar_one())
