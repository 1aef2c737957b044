"""Identity resolution through the Stream API (spec §4.2 IDENTITY, §7.3)."""

from __future__ import annotations

from typing import Any

import httpx

from innkeeper.core.runtime import Runtime
from tests.factories.guests import (
    browser_guest,
    get_guest_row,
    identifier_owners,
    identify,
    put_identity_rules,
    show,
    timeline_status,
)
from tests.factories.sessions import (
    ADMIN,
    browser_sessions,
    event_record,
    guest_events,
    open_sessions,
    order_by_reference,
    send,
    timeline,
)
from tests.factories.stream import create_browser, product
from tests.support.clock import FrozenClock


async def _guest(client: httpx.AsyncClient, guest_ref: str) -> dict[str, Any]:
    guest: dict[str, Any] = (await timeline(client, guest_ref))["guest"]
    return guest


# --- a single browser ---------------------------------------------------------------------


async def test_identity_with_identifiers_makes_the_guest_a_customer_with_pii(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"])
    body = await identify(
        client,
        browser["ref"],
        email="Jane.Doe@Example.COM",
        identifiers=[{"provider": "BXLP", "id": "123456", "expiry_date": "2030-01-01T00:00"}],
        firstname="Jane",
        lastname="Doe",
        title="Ms",
        gender="female",
        phone="+353 1 555 0100",
        city="Dublin",
        country="IE",
        postal_code="D02",
        street=["1 Main St"],
    )
    assert body["customer_ref"] == browser["customer_ref"]

    guest = await _guest(client, browser["customer_ref"])
    assert guest["guestType"] == "customer"
    assert guest["email"] == "jane.doe@example.com"
    assert guest["emails"] == ["jane.doe@example.com"]
    assert (guest["firstName"], guest["lastName"], guest["title"], guest["gender"]) == ("Jane", "Doe", "Ms", "female")
    assert (guest["city"], guest["country"], guest["postCode"], guest["street"]) == (
        "Dublin",
        "IE",
        "D02",
        ["1 Main St"],
    )
    assert guest["phoneNumbers"] == ["+353 1 555 0100"]
    assert guest["identifiers"] == [{"provider": "BXLP", "id": "123456", "expiryDate": "2030-01-01T00:00"}]
    assert (await show(client, browser["ref"]))["guestType"] == "customer"

    # A second IDENTITY for the same guest appends phones and overwrites non-null PII.
    await identify(
        client,
        browser["ref"],
        identifiers=[{"provider": "BXLP", "id": "123456", "expiry_date": "2031-06-01T00:00"}],
        mobile="+353 87 555 0199",
        lastname="Doe-Smith",
    )
    guest = await _guest(client, browser["customer_ref"])
    assert guest["phoneNumbers"] == ["+353 1 555 0100", "+353 87 555 0199"]
    assert (guest["firstName"], guest["lastName"]) == ("Jane", "Doe-Smith")
    assert guest["identifiers"] == [{"provider": "BXLP", "id": "123456", "expiryDate": "2031-06-01T00:00"}]
    assert (await show(client, browser["ref"]))["ref"] == browser["customer_ref"]


async def test_a_customer_collects_new_identifiers(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await identify(client, browser["ref"], identifiers=[{"provider": "BXLP", "id": "A-1"}])
    await identify(client, browser["ref"], identifiers=[{"provider": "CRM", "id": "crm-9"}])
    guest = await _guest(client, browser["customer_ref"])
    assert guest["identifiers"] == [{"provider": "BXLP", "id": "A-1"}, {"provider": "CRM", "id": "crm-9"}]


async def test_legacy_identity_with_only_an_email_uses_the_email_fallback(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    browser = await create_browser(client)
    await identify(client, browser["ref"], email="  Legacy.User@Example.com ")
    guest = await _guest(client, browser["customer_ref"])
    assert guest["guestType"] == "customer"
    assert guest["email"] == "legacy.user@example.com"
    assert guest["identifiers"] == [{"provider": "email", "id": "legacy.user@example.com"}]
    assert await identifier_owners(runtime, "email", "legacy.user@example.com") == [browser["customer_ref"]]


async def test_email_identifier_ids_are_lowercased(client: httpx.AsyncClient) -> None:
    first, second = await create_browser(client), await create_browser(client)
    await identify(client, first["ref"], identifiers=[{"provider": "email", "id": "Mixed.Case@Example.com"}])
    await identify(client, second["ref"], identifiers=[{"provider": "email", "id": "mixed.case@example.COM"}])
    assert (await show(client, second["ref"]))["ref"] == first["customer_ref"]


async def test_other_providers_compare_ids_case_sensitively(client: httpx.AsyncClient) -> None:
    first, second = await create_browser(client), await create_browser(client)
    await identify(client, first["ref"], identifiers=[{"provider": "CRM", "id": "abc"}])
    await identify(client, second["ref"], identifiers=[{"provider": "CRM", "id": "ABC"}])
    assert (await show(client, second["ref"]))["ref"] == second["customer_ref"]


async def test_without_the_email_fallback_an_email_only_identity_resolves_nothing_and_warns(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    rules = await put_identity_rules(client, rules=[], email_fallback=False)
    assert rules["emailFallback"] is False
    browser = await create_browser(client)
    sent = await identify(client, browser["ref"], email="no.fallback@example.com", firstname="Nora")

    guest = await _guest(client, browser["customer_ref"])
    assert guest["guestType"] == "visitor"
    assert guest["identifiers"] == []
    # PII is still stored (§4.2: "PII stored, no resolution, processing warning").
    assert (guest["email"], guest["firstName"]) == ("no.fallback@example.com", "Nora")
    assert await identifier_owners(runtime, "email", "no.fallback@example.com") == []
    stored = await event_record(client, browser["customer_ref"], sent["event_ref"])
    assert stored["processingStatus"] == "SUCCESS"
    assert stored["warnings"], "an IDENTITY that resolves nothing must carry a processing warning"


async def test_identity_without_identifiers_or_email_warns(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    sent = await identify(client, browser["ref"])
    stored = await event_record(client, browser["customer_ref"], sent["event_ref"])
    assert stored["warnings"] == ["IDENTITY without identifiers: no identity resolution"]
    assert (await _guest(client, browser["customer_ref"]))["guestType"] == "visitor"


async def test_identity_rules_restrict_the_providers_that_identify(client: httpx.AsyncClient) -> None:
    await put_identity_rules(client, rules=[{"name": "Customer id", "provider": "CUSTOMER_ID"}], email_fallback=True)
    first, second = await create_browser(client), await create_browser(client)

    ignored = await identify(client, first["ref"], identifiers=[{"provider": "BXLP", "id": "shared"}])
    await identify(client, second["ref"], identifiers=[{"provider": "BXLP", "id": "shared"}])
    stored = await event_record(client, first["customer_ref"], ignored["event_ref"])
    assert stored["warnings"] == ["identifiers: providers not in the identity rules were ignored"]
    for b in (first, second):
        assert await show(client, b["ref"]) == {
            **(await show(client, b["ref"])),
            "ref": b["customer_ref"],
            "guestType": "visitor",
        }

    await identify(
        client,
        first["ref"],
        identifiers=[{"provider": "BXLP", "id": "shared"}, {"provider": "CUSTOMER_ID", "id": "C-77"}],
    )
    guest = await _guest(client, first["customer_ref"])
    assert guest["guestType"] == "customer"
    assert guest["identifiers"] == [{"provider": "CUSTOMER_ID", "id": "C-77"}]
    assert (await show(client, second["ref"]))["ref"] == second["customer_ref"]


# --- two browsers, one person: merge ------------------------------------------------------


async def test_two_browsers_identified_with_the_same_email_end_as_one_guest(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    laptop = await create_browser(client)
    clock.advance(minutes=1)
    phone = await create_browser(client)
    survivor, retired = laptop["customer_ref"], phone["customer_ref"]

    # Events one second apart, so the timeline's order within a session is the sending order.
    await send(client, laptop["ref"], page="home")
    clock.advance(seconds=1)
    await identify(client, laptop["ref"], email="sam@example.com", firstname="Sam")
    clock.advance(seconds=1)
    await send(client, phone["ref"], page="deals", channel="MOBILE_WEB")
    clock.advance(seconds=1)
    await send(client, phone["ref"], "ADD", channel="MOBILE_WEB", product=product("HAT", price=15.0))
    clock.advance(seconds=1)
    await send(client, phone["ref"], "CHECKOUT", channel="MOBILE_WEB", reference_id="PHONE-ORDER", status="PURCHASED")
    clock.advance(seconds=1)
    await send(client, phone["ref"], "ADD", channel="MOBILE_WEB", product=product("SCARF", price=25.0))
    [phone_session] = await open_sessions(runtime, phone["ref"])
    assert phone_session.guest_ref == retired

    clock.advance(seconds=1)
    merged = await identify(client, phone["ref"], email="SAM@example.com", channel="MOBILE_WEB", lastname="Jones")
    assert merged["customer_ref"] == survivor

    # show.json, the admin browser lookup and the browser row all report the survivor.
    assert await show(client, phone["ref"]) == {**(await show(client, laptop["ref"])), "ref": survivor}
    assert (await show(client, phone["ref"]))["guestType"] == "customer"
    lookup = await client.get(f"/admin/v1/browsers/{phone['ref']}", auth=ADMIN)
    assert lookup.json()["guestRef"] == survivor
    assert await browser_guest(runtime, phone["ref"]) == survivor

    # The retired guest is gone from the admin API and points at the survivor.
    assert await timeline_status(client, retired) == 404
    row = await get_guest_row(runtime, retired)
    assert (row.guest_type, row.merged_into) == ("retired", survivor)

    # The survivor owns both browsers' sessions and events.
    body = await timeline(client, survivor)
    assert body["guest"]["guestType"] == "customer"
    assert (body["guest"]["firstName"], body["guest"]["lastName"]) == ("Sam", "Jones")
    assert body["guest"]["identifiers"] == [{"provider": "email", "id": "sam@example.com"}]
    assert {i["browserRef"] for i in body["items"]} == {laptop["ref"], phone["ref"]}
    assert all(i["guestRef"] == survivor for i in body["items"])
    [moved] = [i for i in body["items"] if i["browserRef"] == phone["ref"]]
    assert moved["ref"] == phone_session.ref, "the phone's OPEN session continues under the survivor"
    assert [e["type"] for e in moved["events"]] == ["VIEW", "ADD", "CHECKOUT", "ADD", "IDENTITY"]
    events = await guest_events(client, survivor)
    assert len(events) == 7
    assert {e["guestRef"] for e in events} == {survivor}
    order = await order_by_reference(runtime, "PHONE-ORDER")
    assert order is not None
    assert order.guest_ref == survivor

    # Later events of the phone land on the survivor, in the same session.
    later = await send(client, phone["ref"], page="account", channel="MOBILE_WEB")
    assert later["customer_ref"] == survivor
    [still_open] = await open_sessions(runtime, phone["ref"])
    assert (still_open.ref, still_open.guest_ref, still_open.num_events) == (phone_session.ref, survivor, 6)


async def test_several_owners_resolve_to_the_oldest_and_customers_are_never_merged(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    older = await create_browser(client)
    clock.advance(minutes=1)
    newer = await create_browser(client)
    clock.advance(minutes=1)
    visitor = await create_browser(client)
    await identify(client, older["ref"], identifiers=[{"provider": "CRM", "id": "old-1"}])
    await identify(client, newer["ref"], identifiers=[{"provider": "LOYALTY", "id": "new-1"}])

    await identify(
        client,
        visitor["ref"],
        identifiers=[{"provider": "LOYALTY", "id": "new-1"}, {"provider": "CRM", "id": "old-1"}],
    )
    assert (await show(client, visitor["ref"]))["ref"] == older["customer_ref"]
    assert (await show(client, newer["ref"]))["ref"] == newer["customer_ref"]
    assert (await _guest(client, newer["customer_ref"]))["guestType"] == "customer"
    assert await identifier_owners(runtime, "LOYALTY", "new-1") == [newer["customer_ref"]]
    assert await timeline_status(client, visitor["customer_ref"]) == 404


# --- a shared device: re-link -------------------------------------------------------------


async def test_a_customers_browser_identified_as_another_customer_is_relinked_not_merged(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    alice_browser = await create_browser(client)
    shared = await create_browser(client)
    alice, bob = alice_browser["customer_ref"], shared["customer_ref"]
    await identify(client, alice_browser["ref"], identifiers=[{"provider": "CRM", "id": "alice"}], firstname="Alice")
    await send(client, shared["ref"], page="home")
    clock.advance(seconds=1)
    await identify(client, shared["ref"], identifiers=[{"provider": "CRM", "id": "bob"}], firstname="Bob")
    clock.advance(seconds=1)
    await send(client, shared["ref"], "ADD", product=product("BOOK", price=9.0))
    [bobs_session] = await open_sessions(runtime, shared["ref"])
    clock.advance(seconds=1)

    switched = await identify(client, shared["ref"], identifiers=[{"provider": "CRM", "id": "alice"}])
    assert switched["customer_ref"] == alice
    assert (await show(client, shared["ref"]))["ref"] == alice
    assert await browser_guest(runtime, shared["ref"]) == alice

    # Bob keeps everything; his open session on the shared browser was closed.
    bob_view = await timeline(client, bob)
    assert bob_view["guest"]["guestType"] == "customer"
    assert bob_view["guest"]["firstName"] == "Bob"
    assert bob_view["guest"]["identifiers"] == [{"provider": "CRM", "id": "bob"}]
    [closed] = bob_view["items"]
    assert closed["ref"] == bobs_session.ref
    assert (closed["status"], closed["closeReason"]) == ("CLOSED", "IDENTITY_SWITCH")
    assert (closed["cartType"], closed["abandonedRevenue"]) == ("ABANDONED", 9.0)
    assert [e["type"] for e in closed["events"]] == ["VIEW", "IDENTITY", "ADD"]
    assert (await get_guest_row(runtime, bob)).merged_into is None

    # Alice continues in a new session on the shared browser that holds the IDENTITY.
    [new_session] = await open_sessions(runtime, shared["ref"])
    assert new_session.guest_ref == alice
    assert new_session.ref != bobs_session.ref
    alice_view = await timeline(client, alice)
    assert alice_view["guest"]["firstName"] == "Alice"
    [relinked] = [i for i in alice_view["items"] if i["browserRef"] == shared["ref"]]
    assert [e["type"] for e in relinked["events"]] == ["IDENTITY"]
    assert len(await browser_sessions(runtime, shared["ref"])) == 2
