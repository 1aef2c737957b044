"""Guest search / list (spec §8.2): filters, paging, expand, sort, bad query parameters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from innkeeper.core.runtime import Runtime
from innkeeper.guests import service as guests
from innkeeper.guests.models import Guest
from innkeeper.guests.repository import GuestQuery, GuestRepository, _email_exactly
from tests.support.clock import FrozenClock

Auth = tuple[str, str]


async def create_guest(client: httpx.AsyncClient, auth: Auth, **fields: Any) -> str:
    response = await client.post("/v2.1/guests", json={"guestType": "customer", **fields}, auth=auth)
    assert response.status_code == 201, response.text
    ref: str = response.json()["ref"]
    return ref


async def search(client: httpx.AsyncClient, auth: Auth, **params: Any) -> list[str]:
    """Refs found, in answer order."""
    response = await client.get("/v2.1/guests", params=params, auth=auth)
    assert response.status_code == 200, response.text
    return [item["href"].rsplit("/", 1)[1] for item in response.json()["items"]]


@pytest.fixture
async def people(client: httpx.AsyncClient, admin_auth: Auth, clock: FrozenClock) -> dict[str, str]:
    """Three guests created a minute apart."""
    refs = {}
    refs["jane"] = await create_guest(
        client,
        admin_auth,
        firstName="Jane",
        lastName="Doe",
        email="Jane.Doe@Example.com",
        phoneNumbers=["+353 1 555 0100", "+353 87 555 0100"],
        identifiers=[{"provider": "BXLP", "id": "USER-1002"}, {"provider": "email", "id": "jane.doe@example.com"}],
    )
    clock.advance(minutes=1)
    refs["john"] = await create_guest(
        client, admin_auth, firstName="John", lastName="Doe", email="john@example.com", phoneNumbers=["+1 555 0199"]
    )
    clock.advance(minutes=1)
    refs["visitor"] = await create_guest(client, admin_auth, guestType="visitor")
    return refs


async def test_no_filters_lists_every_guest_newest_first(
    client: httpx.AsyncClient, admin_auth: Auth, people: dict[str, str]
) -> None:
    assert await search(client, admin_auth) == [people["visitor"], people["john"], people["jane"]]
    assert await search(client, admin_auth, sort="createdAt") == [people["jane"], people["john"], people["visitor"]]
    assert await search(client, admin_auth, sort="-createdAt") == [people["visitor"], people["john"], people["jane"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"firstName": "jane"}, ["jane"]),
        ({"lastName": "DOE"}, ["john", "jane"]),
        ({"lastName": "doe", "firstName": "JOHN"}, ["john"]),
        ({"email": "jane.doe@example.com"}, ["jane"]),
        ({"email": "JANE.DOE@EXAMPLE.COM"}, ["jane"]),
        ({"email": "jane"}, []),
        ({"email.untouched": "Jane.Doe@Example.com"}, ["jane"]),
        ({"email.untouched": "jane.doe@example.com"}, []),
        ({"phoneNumber": "+353 87 555 0100"}, ["jane"]),
        ({"phoneNumber": "+353 87"}, []),
        ({"identifiers.provider": "BXLP", "identifiers.id": "USER-1002"}, ["jane"]),
        ({"identifiers.provider": "BXLP", "identifiers.id": "user-1002"}, []),
        ({"identifiers.provider": "email", "identifiers.id": "Jane.Doe@example.com"}, ["jane"]),
        ({"identifiers.provider": "CRM", "identifiers.id": "USER-1002"}, []),
        ({"firstName": "Jane", "email": "john@example.com"}, []),
        ({"firstName": ""}, ["visitor", "john", "jane"]),
    ],
)
async def test_filters(
    client: httpx.AsyncClient,
    admin_auth: Auth,
    people: dict[str, str],
    params: dict[str, str],
    expected: list[str],
) -> None:
    assert await search(client, admin_auth, **params) == [people[name] for name in expected]


async def test_paging_and_the_collection_href(
    client: httpx.AsyncClient, admin_auth: Auth, people: dict[str, str]
) -> None:
    response = await client.get("/v2.1/guests", params={"offset": 1, "limit": 1, "lastName": "Doe"}, auth=admin_auth)
    assert response.json() == {
        "href": "http://testserver/v2.1/guests?offset=1&limit=1&lastName=Doe",
        "offset": 1,
        "limit": 1,
        "items": [{"href": f"http://testserver/v2.1/guests/{people['jane']}"}],
    }
    assert await search(client, admin_auth, offset=3) == []
    assert await search(client, admin_auth, offset=2_000_000_000, limit=100) == []
    assert len(await search(client, admin_auth, limit=100)) == 3


async def test_expand_returns_full_guests(client: httpx.AsyncClient, admin_auth: Auth, people: dict[str, str]) -> None:
    response = await client.get("/v2.1/guests", params={"expand": "true", "firstName": "jane"}, auth=admin_auth)
    [item] = response.json()["items"]
    retrieved = await client.get(f"/v2.1/guests/{people['jane']}", auth=admin_auth)
    assert item == retrieved.json()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"identifiers.provider": "BXLP"}, "identifiers.provider, identifiers.id: must be given together"),
        ({"identifiers.id": "USER-1002"}, "identifiers.provider, identifiers.id: must be given together"),
        ({"limit": 101}, "limit: Input should be less than or equal to 100"),
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": "ten"}, "limit: Input should be a valid integer"),
        ({"offset": -1}, "offset: Input should be greater than or equal to 0"),
        ({"offset": "1.5"}, "offset: Input should be a valid integer"),
        ({"offset": "99999999999999999999999"}, "offset: Input should be less than or equal to 2147483647"),
        ({"expand": "maybe"}, "expand: Input should be a valid boolean"),
        ({"sort": "firstName"}, "sort: Input should be 'createdAt' or '-createdAt'"),
        ({"email": "a\x00b"}, "NUL characters"),
        ({"firstName": "x" * 501}, "firstName: String should have at most 500 characters"),
    ],
)
async def test_bad_query_parameters_are_400(
    client: httpx.AsyncClient, admin_auth: Auth, params: dict[str, Any], message: str
) -> None:
    response = await client.get("/v2.1/guests", params=params, auth=admin_auth)
    assert response.status_code == 400, response.text
    assert response.json()["developerMessage"].startswith(message)


async def test_deleted_guests_are_not_listed(
    client: httpx.AsyncClient, admin_auth: Auth, people: dict[str, str]
) -> None:
    response = await client.delete(f"/v2.1/guests/{people['john']}", auth=admin_auth)
    assert response.status_code == 200
    assert await search(client, admin_auth) == [people["visitor"], people["jane"]]
    assert await search(client, admin_auth, email="john@example.com") == []


async def test_guests_alike_at_one_instant_come_in_ref_order_in_the_portal_search_and_lookups(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime
) -> None:
    """Guests seen and created at one instant (the frozen clock) tie on every column the portal's lists and the
    personalization lookup by email sort by: the ref breaks the tie, so a list and a lookup answer the same
    way every time, whatever order the rows were written in."""
    refs = [
        await create_guest(client, admin_auth, firstName="Sam", lastName="Alike", email="Shared@Example.com")
        for _ in range(6)
    ]
    async with runtime.sessions() as session:
        by_name = [guest.ref for guest in await guests.find_guests(session, "alike")]
        by_email = [guest.ref for guest in await guests.find_guests(session, "shared@example.com")]
        recent = [guest.ref for guest in await guests.find_guests(session, None)]
        found = await guests.find_live_guest(session, email="SHARED@example.com")
    assert by_name == by_email == recent == sorted(refs)
    assert found is not None and found.ref == min(refs)


async def test_exact_email_lookups_walk_the_one_email_index(runtime: Runtime, db_kind: str) -> None:
    """Since migration 0014 ix_guests_email_lower is the only index on email: the exact lookups (the search's
    ``email.untouched``, the batch import's email fallback) lead with the case-insensitive match it serves."""
    async with runtime.sessions() as session:
        statements = [
            GuestRepository(session)._search(select(Guest.ref), GuestQuery(email_exact="Jane.Doe@Example.com")),
            # The batch fallback's statement: the exact match among live guests, oldest first.
            select(Guest)
            .where(_email_exactly("jane.doe@example.com"), Guest.guest_type != "retired", Guest.deleted_at.is_(None))
            .order_by(Guest.created_at, Guest.ref)
            .limit(20),
        ]
        for stmt in statements:
            sql = stmt.compile(dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True})
            if db_kind == "sqlite":
                plan = " ".join(row[-1] for row in (await session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all())
            else:
                await session.execute(text("SET LOCAL enable_seqscan = off"))  # a near-empty table: no seq scan
                plan = " ".join(row[0] for row in (await session.execute(text(f"EXPLAIN {sql}"))).all())
            assert "ix_guests_email_lower" in plan, plan
