"""Verifiable guest deletion (spec §8.5): hidden at once, purged by the worker, audited.

After the purge job no row of any table mentions the guest's refs or its personal data,
which the tests check by reading every column of every table of the migrations' metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import audit
from innkeeper.core.db import in_transaction
from innkeeper.core.ids import new_ref
from innkeeper.core.runtime import Runtime
from innkeeper.guests import deletion
from innkeeper.guests.errors import GuestNotFound
from innkeeper.guests.models import GuestExtension
from innkeeper.migrations.models import Base
from innkeeper.worker import run_jobs_once
from innkeeper.worker.purge import purge_guest
from tests.conftest import CLIENT_KEY
from tests.factories.guests import get_guest_row, identifier_owners, identify, show
from tests.factories.sessions import ADMIN, browser_sessions, order_by_reference, outbox, send
from tests.factories.stream import create_browser, product
from tests.support.clock import FrozenClock

EMAIL = "zelda.quixotica@example.org"
FIRST_NAME = "Zeldarine"
LAST_NAME = "Quixotica"
PHONE = "+353-1-555-0199"
LOYALTY_ID = "LOYAL-7781-QX"
ORDER_ID = "ORD-QX-20260115"
NICKNAME = "zq-nick-extension-value"
BROWSER_NOT_FOUND = "Invalid browser id/ref specified"


@dataclass
class Person:
    """Everything one guest left in the database, to look for after the purge."""

    guest_ref: str
    retired_ref: str
    browsers: list[str]
    event_refs: list[str] = field(default_factory=list)
    session_refs: list[str] = field(default_factory=list)
    order_ref: str = ""

    def needles(self) -> dict[str, str]:
        """Strings that must appear nowhere once the guest is purged."""
        found = {
            "guest ref": self.guest_ref,
            "retired guest ref": self.retired_ref,
            "order ref": self.order_ref,
            "email": EMAIL,
            "first name": FIRST_NAME,
            "last name": LAST_NAME,
            "phone": PHONE,
            "loyalty identifier": LOYALTY_ID,
            "order reference id": ORDER_ID,
            "extension value": NICKNAME,
        }
        found.update({f"browser {i}": ref for i, ref in enumerate(self.browsers)})
        found.update({f"event {i}": ref for i, ref in enumerate(self.event_refs)})
        found.update({f"session {i}": ref for i, ref in enumerate(self.session_refs)})
        return found


async def _guest_with_everything(client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> Person:
    """Two browsers, two sessions, events, an order, an extension, an abandoned-cart outbox row,
    and an anonymous visitor merged into the guest (a retired guest)."""
    b1, b2 = (await create_browser(client))["ref"], (await create_browser(client))["ref"]
    events = [await send(client, b1, "VIEW")]
    events.append(
        await identify(
            client,
            b1,
            email=EMAIL,
            identifiers=[{"provider": "email", "id": EMAIL}, {"provider": "LOYALTY", "id": LOYALTY_ID}],
            firstname=FIRST_NAME,
            lastname=LAST_NAME,
            phone=PHONE,
        )
    )
    guest_ref = events[-1]["customer_ref"]
    events.append(await send(client, b1, "ADD", product=product("QX_1", price=40.0)))
    events.append(await send(client, b1, "CHECKOUT", reference_id=ORDER_ID, status="PURCHASED"))
    events.append(await send(client, b2, "VIEW"))
    retired_ref = events[-1]["customer_ref"]
    events.append(await identify(client, b2, email=EMAIL))  # email fallback: b2's visitor merges into the guest
    assert events[-1]["customer_ref"] == guest_ref
    events.append(await send(client, b2, "ADD", product=product("QX_2", price=75.0)))
    events.append(await send(client, b2, "FORCE_CLOSE"))  # the cart is abandoned
    async with runtime.sessions() as session:
        now = clock.now()
        session.add(
            GuestExtension(
                ref=new_ref(),
                guest_ref=guest_ref,
                name="ext",
                key="default",
                data={"nickname": NICKNAME},
                created_at=now,
                modified_at=now,
            )
        )
        await session.commit()

    person = Person(guest_ref, retired_ref, [b1, b2], event_refs=[e["event_ref"] for e in events])
    person.session_refs = [s.ref for b in (b1, b2) for s in await browser_sessions(runtime, b)]
    assert len(person.session_refs) == 2
    order = await order_by_reference(runtime, ORDER_ID)
    assert order is not None and order.guest_ref == guest_ref
    person.order_ref = order.ref
    retired = await get_guest_row(runtime, retired_ref)
    assert retired.guest_type == "retired" and retired.merged_into == guest_ref
    abandoned = [m for m in await outbox(runtime) if m.payload.get("cartType") == "ABANDONED"]
    assert [m.guest_ref for m in abandoned] == [guest_ref]
    return person


async def _bystander(client: httpx.AsyncClient) -> tuple[str, str]:
    """Another guest, who must come through the purge untouched."""
    browser = (await create_browser(client))["ref"]
    body = await identify(client, browser, email="bystander@example.org", firstname="Bystander")
    await send(client, browser, "VIEW")
    return browser, body["customer_ref"]


def _has_route(app: FastAPI, method: str, path: str) -> bool:
    return any(
        getattr(route, "path", None) == path and method in (getattr(route, "methods", None) or ())
        for route in app.routes
    )


async def _delete(client: httpx.AsyncClient, app: FastAPI, runtime: Runtime, guest_ref: str) -> None:
    """DELETE over REST when the route exists, else the service call it makes."""
    if _has_route(app, "DELETE", "/v2.1/guests/{guest_ref}") or _has_route(app, "DELETE", "/v2.1/guests/{guestRef}"):
        response = await client.delete(f"/v2.1/guests/{guest_ref}", auth=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["ref"] == guest_ref and body["status"] == "DELETION_SCHEDULED"
        assert body["href"].endswith(f"/v2.1/guests/{guest_ref}")
        return

    async def work(session: AsyncSession) -> int:
        return await deletion.schedule(session, guest_ref, actor="test-token", clock=runtime.clock)

    await in_transaction(runtime.sessions, work)


async def _dump(runtime: Runtime) -> dict[str, list[str]]:
    """Every row of every table, each value as text (JSON for JSON columns)."""
    out: dict[str, list[str]] = {}
    async with runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).all()
            out[table.name] = [
                " | ".join(json.dumps(v, default=str) if isinstance(v, dict | list) else str(v) for v in row)
                for row in rows
            ]
    return out


async def _mentions(runtime: Runtime, needles: dict[str, str]) -> list[str]:
    """Which needles appear where (case-insensitively)."""
    found = []
    for table, rows in (await _dump(runtime)).items():
        for row in rows:
            for what, needle in needles.items():
                if needle.lower() in row.lower():
                    found.append(f"{what} in {table}: {row[:300]}")
    return found


async def _show_status(client: httpx.AsyncClient, browser_ref: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(f"/v1.2/browser/{browser_ref}/show.json?client_key={CLIENT_KEY}&api_token=0")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_deleted_guest_is_hidden_at_once_and_purged_everywhere(
    client: httpx.AsyncClient, app: FastAPI, runtime: Runtime, clock: FrozenClock
) -> None:
    person = await _guest_with_everything(client, runtime, clock)
    bystander_browser, bystander_ref = await _bystander(client)
    before = await _dump(runtime)
    assert await _mentions(runtime, {"guest ref": person.guest_ref}), "the scan must see the guest before deletion"

    await _delete(client, app, runtime, person.guest_ref)

    # Hidden at once: Stream show.json and event/create answer the legacy library's 404.
    for browser_ref in person.browsers:
        status, body = await _show_status(client, browser_ref)
        assert status == 404 and body["error_msg"] == BROWSER_NOT_FOUND, body
        refused = await send(client, browser_ref, "VIEW", expect=404)
        assert refused["error_msg"] == BROWSER_NOT_FOUND
    assert (await client.get(f"/admin/v1/guests/{person.guest_ref}/timeline", auth=ADMIN)).status_code == 404
    assert await identifier_owners(runtime, "email", EMAIL) == []
    if _has_route(app, "GET", "/v2.1/guests/{guest_ref}") or _has_route(app, "GET", "/v2.1/guests/{guestRef}"):
        assert (await client.get(f"/v2.1/guests/{person.guest_ref}", auth=ADMIN)).status_code == 404
    if _has_route(app, "GET", "/v2.1/guests"):
        found = await client.get("/v2.1/guests", params={"email": EMAIL}, auth=ADMIN)
        assert found.status_code == 200 and found.json()["items"] == [], found.text

    assert await run_jobs_once(runtime) == 1

    leftovers = await _mentions(runtime, person.needles())
    assert leftovers == [], "\n".join(leftovers)
    after = await _dump(runtime)
    for table in ("guests", "browsers", "events", "sessions", "guest_identifiers"):
        assert len(after[table]) < len(before[table]), table
    # The bystander's rows all survive.
    assert (await get_guest_row(runtime, bystander_ref)).deleted_at is None
    assert (await show(client, bystander_browser))["ref"] == bystander_ref
    for table, rows in before.items():
        kept = [r for r in rows if bystander_ref in r]
        assert kept == [r for r in after[table] if bystander_ref in r], table

    entries = await _audit_entries(runtime, person.guest_ref)
    assert len(entries) == 1
    entry = entries[0]
    assert entry.action == "guest.delete" and entry.completed_at is not None
    assert entry.requested_at <= entry.completed_at
    counts = entry.details["deleted"]
    assert all(isinstance(v, int) for v in counts.values()), counts
    assert counts["retiredGuests"] == 1 and counts["guests"] >= 2
    assert counts["sessionsAndEvents"] == len(person.event_refs) + 2 and counts["outbox"] == 1

    for browser_ref in person.browsers:
        status, _ = await _show_status(client, browser_ref)
        assert status == 404
    # A new IDENTITY with the same email on a new browser makes a fresh guest.
    fresh_browser = (await create_browser(client))["ref"]
    fresh = await identify(client, fresh_browser, email=EMAIL)
    assert fresh["customer_ref"] not in (person.guest_ref, person.retired_ref)
    assert await identifier_owners(runtime, "email", EMAIL) == [fresh["customer_ref"]]


async def _audit_entries(runtime: Runtime, ref: str) -> list[audit.AuditEntry]:
    async with runtime.sessions() as session:
        return await audit.for_subject(session, ref)


async def test_same_email_right_after_deletion_makes_a_fresh_guest_that_the_purge_spares(
    client: httpx.AsyncClient, app: FastAPI, runtime: Runtime, clock: FrozenClock
) -> None:
    person = await _guest_with_everything(client, runtime, clock)
    await _delete(client, app, runtime, person.guest_ref)

    fresh_browser = (await create_browser(client))["ref"]
    fresh = await identify(client, fresh_browser, email=EMAIL, identifiers=[{"provider": "LOYALTY", "id": LOYALTY_ID}])
    fresh_ref = fresh["customer_ref"]
    assert fresh_ref != person.guest_ref
    assert (await show(client, fresh_browser))["ref"] == fresh_ref

    assert await run_jobs_once(runtime) == 1
    assert await identifier_owners(runtime, "LOYALTY", LOYALTY_ID) == [fresh_ref]
    assert (await get_guest_row(runtime, fresh_ref)).email == EMAIL
    leftovers = await _mentions(runtime, {"guest ref": person.guest_ref, "order": ORDER_ID, "phone": PHONE})
    assert leftovers == [], "\n".join(leftovers)


async def test_schedule_refuses_unknown_retired_and_already_deleted_guests(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    person = await _guest_with_everything(client, runtime, clock)

    async def schedule(ref: str) -> int:
        async def work(session: AsyncSession) -> int:
            return await deletion.schedule(session, ref, actor="t", clock=clock)

        return await in_transaction(runtime.sessions, work)

    for ref in (new_ref(), "not-a-ref", person.retired_ref):
        with pytest.raises(GuestNotFound):
            await schedule(ref)
    await schedule(person.guest_ref)
    with pytest.raises(GuestNotFound):
        await schedule(person.guest_ref)
    assert len(await _audit_entries(runtime, person.guest_ref)) == 1


async def test_purge_is_idempotent(client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    person = await _guest_with_everything(client, runtime, clock)

    async def schedule(session: AsyncSession) -> int:
        return await deletion.schedule(session, person.guest_ref, actor="t", clock=clock)

    audit_id = await in_transaction(runtime.sessions, schedule)
    payload = {"guestRef": person.guest_ref, "auditId": audit_id}

    async def purge(session: AsyncSession) -> None:
        await purge_guest(session, dict(payload), clock)

    # As if a worker died after purging and before marking the job done: the job runs again.
    await in_transaction(runtime.sessions, purge)
    completed = (await _audit_entries(runtime, person.guest_ref))[0].completed_at
    clock.advance(seconds=30)
    await in_transaction(runtime.sessions, purge)
    assert await run_jobs_once(runtime) == 1
    assert await run_jobs_once(runtime) == 0
    assert (await _audit_entries(runtime, person.guest_ref))[0].completed_at == completed
    leftovers = await _mentions(runtime, person.needles())
    assert leftovers == [], "\n".join(leftovers)


async def test_shared_device_keeps_the_other_guests_events(
    client: httpx.AsyncClient, app: FastAPI, runtime: Runtime, clock: FrozenClock
) -> None:
    """A browser that carried another known customer before switching to the deleted guest
    keeps that customer's sessions and events; the browser itself reads as deleted."""
    mine = (await create_browser(client))["ref"]
    guest_ref = (await identify(client, mine, email=EMAIL, firstname=FIRST_NAME))["customer_ref"]
    shared = (await create_browser(client))["ref"]
    other_ref = (await identify(client, shared, email="other.customer@example.org"))["customer_ref"]
    other_event = (await send(client, shared, "VIEW"))["event_ref"]
    switched = await identify(client, shared, email=EMAIL)  # the same device, now the deleted-to-be guest
    assert switched["customer_ref"] == guest_ref
    await send(client, shared, "VIEW")

    await _delete(client, app, runtime, guest_ref)
    assert await run_jobs_once(runtime) == 1

    entry = (await _audit_entries(runtime, guest_ref))[0]
    assert entry.completed_at is not None
    leftovers = await _mentions(runtime, {"guest ref": guest_ref, "email": EMAIL, "name": FIRST_NAME, "browser": mine})
    assert leftovers == [], "\n".join(leftovers)
    assert (await _mentions(runtime, {"other's event": other_event})) != []
    assert (await get_guest_row(runtime, other_ref)).deleted_at is None
    status, body = await _show_status(client, shared)
    assert status == 404 and body["error_msg"] == BROWSER_NOT_FOUND
