"""Order contacts resolve or create guests by the identity rules (spec §7.3, §9.3)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from innkeeper.core.runtime import Runtime
from innkeeper.orders import service as orders
from tests.factories.guests import count_guests, get_guest_row, identifier_owners, identify, put_identity_rules
from tests.factories.stream import create_browser
from tests.orders._helpers import BASE, call, create_order, ref_of


async def _contact(client: httpx.AsyncClient, order_ref: str, body: dict[str, Any], method: str = "POST") -> Any:
    response = await call(client, method, f"/v2.1/orders/{order_ref}/contact", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _order_guest(client: httpx.AsyncClient, order_ref: str) -> str | None:
    order = (await call(client, "GET", f"/v2.1/orders/{order_ref}")).json()
    return ref_of(order["guest"]["href"]) if "guest" in order else None


async def test_identifiers_create_a_customer_and_link_the_order(client: httpx.AsyncClient, runtime: Runtime) -> None:
    order = await create_order(client)
    assert "guest" not in order
    contact = await _contact(
        client,
        order["ref"],
        {"firstName": "Jane", "email": "Jane.Doe@Example.com", "identifiers": [{"provider": "BXLP", "id": "U-1"}]},
    )
    guest_ref = ref_of(contact["guest"]["href"])
    assert contact["guest"]["href"] == f"{BASE}/v2.1/guests/{guest_ref}"
    assert await _order_guest(client, order["ref"]) == guest_ref
    guest = await get_guest_row(runtime, guest_ref)
    assert (guest.guest_type, guest.first_name, guest.email) == ("customer", "Jane", "jane.doe@example.com")
    assert await identifier_owners(runtime, "BXLP", "U-1") == [guest_ref]


async def test_the_same_identifiers_find_the_same_guest(client: httpx.AsyncClient, runtime: Runtime) -> None:
    first = await create_order(client, "PNR-1")
    second = await create_order(client, "PNR-2")
    ids = [{"provider": "BXLP", "id": "U-1"}]
    a = await _contact(client, first["ref"], {"firstName": "Jane", "identifiers": ids})
    b = await _contact(client, second["ref"], {"firstName": "Janet", "lastName": "Doe", "identifiers": ids})
    assert a["guest"] == b["guest"]
    guest = await get_guest_row(runtime, ref_of(a["guest"]["href"]))
    # An existing guest only gains PII it had no value for.
    assert (guest.first_name, guest.last_name) == ("Jane", "Doe")
    async with runtime.sessions() as session:
        found = await orders.orders_for_guest(session, guest.ref)
    assert sorted(o.reference_id for o in found) == ["PNR-1", "PNR-2"]


async def test_contact_links_to_the_guest_a_stream_identity_made(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await identify(client, browser["ref"], email="jane@example.com", identifiers=[{"provider": "BXLP", "id": "U-9"}])
    order = await create_order(client)
    contact = await _contact(client, order["ref"], {"identifiers": [{"provider": "BXLP", "id": "U-9"}]})
    assert ref_of(contact["guest"]["href"]) == browser["customer_ref"]


async def test_email_fallback_follows_the_tenant_setting(client: httpx.AsyncClient, runtime: Runtime) -> None:
    order = await create_order(client, "PNR-1")
    contact = await _contact(client, order["ref"], {"email": "Jane@Example.com"})
    guest_ref = ref_of(contact["guest"]["href"])
    assert await identifier_owners(runtime, "email", "jane@example.com") == [guest_ref]

    await put_identity_rules(client, rules=[], email_fallback=False)
    other = await create_order(client, "PNR-2")
    before = await count_guests(runtime)
    contact = await _contact(client, other["ref"], {"email": "someone@example.com"})
    assert "guest" not in contact
    assert await _order_guest(client, other["ref"]) is None
    assert await count_guests(runtime) == before


async def test_only_identity_rule_providers_resolve(client: httpx.AsyncClient, runtime: Runtime) -> None:
    await put_identity_rules(client, rules=[{"name": "Loyalty", "provider": "BXLP"}], email_fallback=True)
    order = await create_order(client)
    contact = await _contact(client, order["ref"], {"identifiers": [{"provider": "CRM", "id": "C-1"}]})
    assert "guest" not in contact
    assert await identifier_owners(runtime, "CRM", "C-1") == []
    contact = await _contact(
        client,
        order["ref"],
        {"identifiers": [{"provider": "CRM", "id": "C-1"}, {"provider": "BXLP", "id": "L-1"}]},
        method="PUT",
    )
    guest_ref = ref_of(contact["guest"]["href"])
    assert await identifier_owners(runtime, "BXLP", "L-1") == [guest_ref]
    assert await identifier_owners(runtime, "CRM", "C-1") == []


async def test_put_moves_the_order_to_another_guest_and_delete_unlinks(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    first = await _contact(client, order["ref"], {"identifiers": [{"provider": "BXLP", "id": "U-1"}]})
    second = await _contact(client, order["ref"], {"identifiers": [{"provider": "BXLP", "id": "U-2"}]}, "PUT")
    assert first["guest"] != second["guest"]
    assert await _order_guest(client, order["ref"]) == ref_of(second["guest"]["href"])
    # PATCH without identifiers keeps the link.
    patched = await _contact(client, order["ref"], {"firstName": "Jane"}, "PATCH")
    assert patched["guest"] == second["guest"]
    assert patched["identifiers"] == [{"provider": "BXLP", "id": "U-2"}]
    deleted = (await call(client, "DELETE", f"/v2.1/orders/{order['ref']}/contact")).json()
    assert deleted == {"href": f"{order['href']}/contact", "ref": first["ref"], "status": "DELETED"}
    assert await _order_guest(client, order["ref"]) is None


async def test_concurrent_contacts_with_one_new_identifier_make_one_guest(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    refs = [(await create_order(client, f"PNR-{i}"))["ref"] for i in range(5)]
    body = {"identifiers": [{"provider": "BXLP", "id": "RACE-1"}]}
    responses = await asyncio.gather(*(call(client, "POST", f"/v2.1/orders/{r}/contact", json=body) for r in refs))
    assert [r.status_code for r in responses] == [201] * 5, [r.text for r in responses]
    assert len({r.json()["guest"]["href"] for r in responses}) == 1
    assert len(await identifier_owners(runtime, "BXLP", "RACE-1")) == 1
