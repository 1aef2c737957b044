"""Concurrent IDENTITY requests (spec §7.3): races never leave two guests for one identifier.

On PostgreSQL the requests run concurrently over the connection pool, so the unique
(provider, value) key and the retrying unit of work decide the race; on SQLite they
serialize on the single write connection. Each test runs several rounds with fresh
emails to shake out interleavings.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from innkeeper.core.runtime import Runtime
from tests.factories.guests import (
    browser_guest,
    count_guests,
    get_guest_row,
    identifier_owners,
    identify,
    show,
    timeline_status,
)
from tests.factories.sessions import guest_events, open_sessions, send
from tests.factories.stream import create_browser

N = 10
ROUNDS = 5


async def test_n_concurrent_identities_for_one_email_never_leave_two_guests(
    client: httpx.AsyncClient, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="innkeeper.core.db")
    for round_ in range(ROUNDS):
        email = f"race.{round_}@example.com"
        browsers = [await create_browser(client) for _ in range(N)]
        for b in browsers:
            await send(client, b["ref"], page="home")

        responses = await asyncio.gather(
            *(identify(client, b["ref"], email=email, firstname=f"Racer{i}") for i, b in enumerate(browsers))
        )

        [owner] = await identifier_owners(runtime, "email", email)
        assert {r["customer_ref"] for r in responses} == {owner}, f"round {round_}"
        assert owner in {b["customer_ref"] for b in browsers}
        assert (await get_guest_row(runtime, owner)).guest_type == "customer"
        for b in browsers:
            customer = await show(client, b["ref"])
            assert (customer["ref"], customer["guestType"]) == (owner, "customer"), f"round {round_}"
            assert await browser_guest(runtime, b["ref"]) == owner
            [session] = await open_sessions(runtime, b["ref"])
            assert (session.guest_ref, session.num_events) == (owner, 2)
        for b in browsers:
            if b["customer_ref"] != owner:
                row = await get_guest_row(runtime, b["customer_ref"])
                assert (row.guest_type, row.merged_into) == ("retired", owner), f"round {round_}"
                assert await timeline_status(client, b["customer_ref"]) == 404

        events = await guest_events(client, owner)
        assert sorted(e["type"] for e in events) == ["IDENTITY"] * N + ["VIEW"] * N
        assert {e["processingStatus"] for e in events} == {"SUCCESS"}
        assert {e["browserRef"] for e in events} == {b["ref"] for b in browsers}

    assert await count_guests(runtime, guest_type="customer") == ROUNDS
    assert await count_guests(runtime, guest_type="retired") == ROUNDS * (N - 1)
    assert await count_guests(runtime, guest_type="visitor") == 0
    retries = sum("lost a race" in r.getMessage() for r in caplog.records)
    logging.getLogger(__name__).info("identity races retried %d times", retries)


async def test_concurrent_identities_for_an_email_someone_already_owns(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    for round_ in range(ROUNDS):
        email = f"known.{round_}@example.com"
        first = await create_browser(client)
        await identify(client, first["ref"], email=email)
        owner = first["customer_ref"]
        browsers = [await create_browser(client) for _ in range(N)]

        await asyncio.gather(*(identify(client, b["ref"], email=email.upper()) for b in browsers))

        assert await identifier_owners(runtime, "email", email) == [owner]
        assert {(await show(client, b["ref"]))["ref"] for b in browsers} == {owner}
        assert len(await guest_events(client, owner)) == N + 1


async def test_concurrent_identity_and_view_on_one_browser(client: httpx.AsyncClient, runtime: Runtime) -> None:
    for round_ in range(ROUNDS):
        email = f"mixed.{round_}@example.com"
        known = await create_browser(client)
        await identify(client, known["ref"], email=email)
        owner = known["customer_ref"]
        browser = await create_browser(client)

        tasks: list[Any] = [send(client, browser["ref"], page=f"page-{i}") for i in range(3)]
        tasks.insert(round_ % 4, identify(client, browser["ref"], email=email))
        await asyncio.gather(*tasks)

        assert (await show(client, browser["ref"]))["ref"] == owner
        [session] = await open_sessions(runtime, browser["ref"])
        assert (session.guest_ref, session.num_events, session.num_views) == (owner, 4, 3)
        retired = await get_guest_row(runtime, browser["customer_ref"])
        assert (retired.guest_type, retired.merged_into) == ("retired", owner)
        events = [e for e in await guest_events(client, owner) if e["browserRef"] == browser["ref"]]
        assert sorted(e["type"] for e in events) == ["IDENTITY", "VIEW", "VIEW", "VIEW"]
        assert {e["sessionRef"] for e in events} == {session.ref}
        assert {e["guestRef"] for e in events} == {owner}


async def test_concurrent_first_identity_and_views_on_one_browser(client: httpx.AsyncClient, runtime: Runtime) -> None:
    for round_ in range(ROUNDS):
        browser = await create_browser(client)
        tasks: list[Any] = [send(client, browser["ref"], page=f"page-{i}") for i in range(3)]
        tasks.insert(round_ % 4, identify(client, browser["ref"], email=f"fresh.{round_}@example.com"))
        await asyncio.gather(*tasks)

        guest = browser["customer_ref"]
        assert await show(client, browser["ref"]) == {
            **(await show(client, browser["ref"])),
            "ref": guest,
            "guestType": "customer",
        }
        [session] = await open_sessions(runtime, browser["ref"])
        assert (session.guest_ref, session.num_events) == (guest, 4)
        assert len(await guest_events(client, guest)) == 4


async def test_concurrent_identities_with_two_emails_across_many_browsers(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    for round_ in range(ROUNDS):
        emails = (f"left.{round_}@example.com", f"right.{round_}@example.com")
        browsers = [await create_browser(client) for _ in range(N)]
        await asyncio.gather(*(identify(client, b["ref"], email=emails[i % 2]) for i, b in enumerate(browsers)))

        for i, email in enumerate(emails):
            [owner] = await identifier_owners(runtime, "email", email)
            mine = browsers[i::2]
            assert {(await show(client, b["ref"]))["ref"] for b in mine} == {owner}
            assert (await get_guest_row(runtime, owner)).guest_type == "customer"


async def test_concurrent_identities_listing_two_identifiers_in_opposite_orders(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    # Inserting (email, CRM) in one request and (CRM, email) in another can deadlock on
    # PostgreSQL's unique index; the loser must be retried, never surface as a 500.
    for round_ in range(ROUNDS):
        email = f"twice.{round_}@example.com"
        crm = {"provider": "CRM", "id": f"crm-{round_}"}
        mail = {"provider": "email", "id": email}
        browsers = [await create_browser(client) for _ in range(N)]
        await asyncio.gather(
            *(
                identify(client, b["ref"], identifiers=[mail, crm] if i % 2 else [crm, mail])
                for i, b in enumerate(browsers)
            )
        )
        [by_email] = await identifier_owners(runtime, "email", email)
        [by_crm] = await identifier_owners(runtime, "CRM", crm["id"])
        assert by_email == by_crm, f"round {round_}: one person, one guest"
        assert {(await show(client, b["ref"]))["ref"] for b in browsers} == {by_email}
