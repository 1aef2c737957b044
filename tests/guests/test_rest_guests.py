"""Guest REST API v2.1 (spec §8.1-§8.5): create, retrieve, replace, partial update, delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories.guests import identify
from tests.factories.stream import create_browser
from tests.support.clock import FrozenClock

Auth = tuple[str, str]
JANE: dict[str, Any] = {
    "guestType": "customer",
    "firstName": "Jane",
    "lastName": "Doe",
    "email": "jane.doe@example.com",
    "emails": ["jane.doe@example.com"],
    "identifiers": [{"provider": "BXLP", "id": "USER-1002"}],
}


async def create_guest(client: httpx.AsyncClient, auth: Auth, **fields: Any) -> dict[str, Any]:
    """POST /v2.1/guests (expects 201)."""
    response = await client.post("/v2.1/guests", json={"guestType": "customer", **fields}, auth=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def get_guest(client: httpx.AsyncClient, auth: Auth, ref: str, *, expect: int = 200) -> dict[str, Any]:
    response = await client.get(f"/v2.1/guests/{ref}", auth=auth)
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


def developer_message(response: httpx.Response) -> str:
    message: str = response.json().get("developerMessage", "")
    return message


# --- create -------------------------------------------------------------------------------------


async def test_create_then_retrieve_returns_the_same_guest(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create_guest(client, admin_auth, **JANE)
    assert await get_guest(client, admin_auth, created["ref"]) == created
    assert created["href"] == f"http://testserver/v2.1/guests/{created['ref']}"


async def test_create_stores_every_writable_field_normalised(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create_guest(
        client,
        admin_auth,
        guestType="traveller",
        title="Dr",
        firstName="Aoife",
        lastName="Byrne",
        gender="FEMALE",
        dateOfBirth="1985-02-03T10:30",
        email=" aoife@example.ie ",
        emails=["aoife@example.ie", "a.byrne@work.example"],
        phoneNumbers=["+353 91 555 0101"],
        language="ga",
        nationality="Irish",
        passportNumber="PX1234567",
        passportExpiry="2031-06-30",
        street=["1 Shop Street", "Apt 2"],
        city="Galway",
        state="Connacht",
        postCode="H91 XK2E",
        country="ie",
    )
    assert {k: created[k] for k in ("guestType", "gender", "dateOfBirth", "email", "country", "passportExpiry")} == {
        "guestType": "traveller",
        "gender": "female",
        "dateOfBirth": "1985-02-03T10:30:00.000Z",
        "email": "aoife@example.ie",
        "country": "IE",
        "passportExpiry": "2031-06-30T00:00:00.000Z",
    }
    assert created["street"] == ["1 Shop Street", "Apt 2"]
    assert created["postCode"] == "H91 XK2E"


async def test_create_does_not_deduplicate(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    first = await create_guest(client, admin_auth, firstName="Jane")
    second = await create_guest(client, admin_auth, firstName="Jane")
    assert first["ref"] != second["ref"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"firstName": "Jane"}, "guestType: required"),
        ({"guestType": None}, "guestType: required"),
        ({"guestType": "CUSTOMER"}, "guestType: must be one of visitor, customer, traveller"),
        ({"guestType": "customer", "gender": "robot"}, "gender: must be one of male, female, unknown"),
        (
            {"guestType": "customer", "dateOfBirth": "last tuesday"},
            "dateOfBirth: must be an ISO 8601 date or date-time",
        ),
        ({"guestType": "customer", "dateOfBirth": "2026-01-15T09:00:00Z"}, "dateOfBirth: must be in the past"),
        ({"guestType": "customer", "passportExpiry": "soon"}, "passportExpiry: must be an ISO 8601 date or date-time"),
        ({"guestType": "customer", "email": "jane@"}, "email: must be a valid email address"),
        ({"guestType": "customer", "country": "I"}, "country: must be an ISO 3166-1 alpha-2 code"),
        ({"guestType": "customer", "country": "12"}, "country: must be an ISO 3166-1 alpha-2 code"),
        (
            {"guestType": "customer", "identifiers": [{"provider": "CRM", "id": "1", "expiryDate": "never"}]},
            "identifiers[0].expiryDate: must be an ISO 8601 date or date-time",
        ),
        (
            {"guestType": "customer", "identifiers": [{"provider": " ", "id": "1"}]},
            "identifiers[0]: provider and id are required",
        ),
    ],
)
async def test_create_refuses_invalid_values(
    client: httpx.AsyncClient, admin_auth: Auth, body: dict[str, Any], message: str
) -> None:
    response = await client.post("/v2.1/guests", json=body, auth=admin_auth)
    assert response.status_code == 400, response.text
    assert developer_message(response) == message
    assert response.json()["code"] == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"guestType": "customer", "firstName": 123}, "firstName: Input should be a valid string"),
        ({"guestType": "customer", "emails": "jane@example.com"}, "emails: Input should be a valid list"),
        ({"guestType": "customer", "street": [1]}, "street.0: Input should be a valid string"),
        ({"guestType": "customer", "identifiers": [{"provider": "CRM"}]}, "identifiers.0.id: Field required"),
        ({"guestType": "customer", "identifiers": [{"id": "1"}]}, "identifiers.0.provider: Field required"),
        ({"guestType": "customer", "identifiers": [{"provider": "CRM", "id": ""}]}, "identifiers.0.id: String should"),
        ({"guestType": "customer", "identifiers": [{"provider": "CRM", "id": "1", "x": 1}]}, "identifiers.0.x: Extra"),
        ({"guestType": "customer", "identifiers": {"provider": "CRM", "id": "1"}}, "identifiers: Input should be"),
        ({"guestType": "customer", "firstName": "x" * 201}, "firstName: String should have at most 200 characters"),
        ({"guestType": "customer", "phoneNumbers": ["1"] * 101}, "phoneNumbers: List should have at most 100 items"),
        ({"guestType": "customer", "loyalty": {"tier": "gold"}}, "loyalty: Extra inputs are not permitted"),
    ],
)
async def test_create_refuses_wrong_types_and_unknown_fields(
    client: httpx.AsyncClient, admin_auth: Auth, body: dict[str, Any], message: str
) -> None:
    response = await client.post("/v2.1/guests", json=body, auth=admin_auth)
    assert response.status_code == 400, response.text
    assert developer_message(response).startswith(message), developer_message(response)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b'"customer"',
        b"null",
        b'{"guestType": "customer"',
        b"{'guestType': 'customer'}",
        b'{"guestType": "customer", "firstName": "\\ud800"}',
        b'{"guestType": "customer", "firstName": NaN}',
        b'{"guestType": "customer", "firstName": "Ja\\u0000ne"}',
        b'{"guestType": "customer", "identifiers": [{"provider": "CRM", "id": "\\u0000"}]}',
        b"\xff\xfe",
    ],
)
async def test_create_refuses_malformed_bodies(client: httpx.AsyncClient, admin_auth: Auth, raw: bytes) -> None:
    response = await client.post(
        "/v2.1/guests", content=raw, headers={"content-type": "application/json"}, auth=admin_auth
    )
    assert response.status_code == 400, response.text
    assert response.json()["status"] == 400


async def test_create_needs_a_json_content_type(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    response = await client.post(
        "/v2.1/guests", content=b'{"guestType":"customer"}', headers={"content-type": "text/plain"}, auth=admin_auth
    )
    assert response.status_code == 415
    form = await client.post("/v2.1/guests", data={"guestType": "customer"}, auth=admin_auth)
    assert form.status_code == 415


async def test_read_only_fields_are_accepted_so_a_retrieved_guest_can_be_sent_back(
    client: httpx.AsyncClient, admin_auth: Auth, clock: FrozenClock
) -> None:
    created = await create_guest(client, admin_auth, **JANE)
    clock.advance(minutes=5)
    response = await client.put(f"/v2.1/guests/{created['ref']}", json=created, auth=admin_auth)
    assert response.status_code == 200, response.text
    assert response.json() == {**created, "modifiedAt": "2026-01-15T09:05:00.000Z"}


# --- identifiers --------------------------------------------------------------------------------


async def test_email_identifier_ids_are_lower_cased_and_owned_once(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create_guest(client, admin_auth, identifiers=[{"provider": "email", "id": " Jane@Example.COM "}])
    assert created["identifiers"] == [{"provider": "email", "id": "jane@example.com"}]
    response = await client.post(
        "/v2.1/guests",
        json={"guestType": "customer", "identifiers": [{"provider": "email", "id": "JANE@example.com"}]},
        auth=admin_auth,
    )
    assert response.status_code == 409
    assert developer_message(response) == "identifiers[0]: already belongs to another guest"
    # Other providers compare case-sensitively.
    await create_guest(client, admin_auth, identifiers=[{"provider": "CRM", "id": "abc"}])
    await create_guest(client, admin_auth, identifiers=[{"provider": "CRM", "id": "ABC"}])


async def test_repeated_identifiers_in_one_body_are_stored_once(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create_guest(
        client,
        admin_auth,
        identifiers=[
            {"provider": "CRM", "id": "1"},
            {"provider": "CRM", "id": "1", "expiryDate": "2030-01-01"},
            {"provider": "email", "id": "A@b.io"},
            {"provider": "email", "id": "a@B.io"},
        ],
    )
    assert created["identifiers"] == [
        {"provider": "CRM", "id": "1", "expiryDate": "2030-01-01T00:00:00.000Z"},
        {"provider": "email", "id": "a@b.io"},
    ]


async def test_identifiers_taken_by_identity_resolution_conflict(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    browser = await create_browser(client)
    await identify(client, browser["ref"], email="ann@example.com", identifiers=[{"provider": "CRM", "id": "ann"}])
    response = await client.post(
        "/v2.1/guests",
        json={"guestType": "customer", "identifiers": [{"provider": "CRM", "id": "ann"}]},
        auth=admin_auth,
    )
    assert response.status_code == 409


async def test_a_409_changes_nothing(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    owner = await create_guest(client, admin_auth, identifiers=[{"provider": "CRM", "id": "owner"}])
    other = await create_guest(client, admin_auth, firstName="Before", identifiers=[{"provider": "CRM", "id": "mine"}])
    response = await client.put(
        f"/v2.1/guests/{other['ref']}",
        json={"guestType": "customer", "firstName": "After", "identifiers": [{"provider": "CRM", "id": "owner"}]},
        auth=admin_auth,
    )
    assert response.status_code == 409
    assert await get_guest(client, admin_auth, other["ref"]) == other
    assert (await get_guest(client, admin_auth, owner["ref"]))["identifiers"] == [{"provider": "CRM", "id": "owner"}]


# --- PUT / PATCH --------------------------------------------------------------------------------


async def test_put_replaces_the_guest_and_releases_dropped_identifiers(
    client: httpx.AsyncClient, admin_auth: Auth, clock: FrozenClock
) -> None:
    created = await create_guest(client, admin_auth, **JANE, city="Cork", phoneNumbers=["1"])
    clock.advance(hours=1)
    response = await client.put(
        f"/v2.1/guests/{created['ref']}",
        json={"guestType": "visitor", "lastName": "Roe", "identifiers": [{"provider": "CRM", "id": "9"}]},
        auth=admin_auth,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {
        "href": created["href"],
        "ref": created["ref"],
        "createdAt": created["createdAt"],
        "modifiedAt": "2026-01-15T10:00:00.000Z",
        "firstSeen": created["firstSeen"],
        "lastSeen": created["lastSeen"],
        "guestType": "visitor",
        "lastName": "Roe",
        "identifiers": [{"provider": "CRM", "id": "9"}],
        "extensions": [],
    }
    # USER-1002 is free again.
    await create_guest(client, admin_auth, identifiers=[{"provider": "BXLP", "id": "USER-1002"}])


async def test_put_keeps_identifiers_given_again_and_updates_their_expiry(
    client: httpx.AsyncClient, admin_auth: Auth
) -> None:
    created = await create_guest(client, admin_auth, identifiers=[{"provider": "CRM", "id": "1"}])
    response = await client.put(
        f"/v2.1/guests/{created['ref']}",
        json={"guestType": "customer", "identifiers": [{"provider": "CRM", "id": "1", "expiryDate": "2030-05-01"}]},
        auth=admin_auth,
    )
    assert response.json()["identifiers"] == [{"provider": "CRM", "id": "1", "expiryDate": "2030-05-01T00:00:00.000Z"}]


async def test_put_without_identifiers_clears_them(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create_guest(client, admin_auth, **JANE)
    response = await client.put(f"/v2.1/guests/{created['ref']}", json={"guestType": "customer"}, auth=admin_auth)
    assert response.json()["identifiers"] == []


async def test_put_requires_guest_type(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create_guest(client, admin_auth, **JANE)
    response = await client.put(f"/v2.1/guests/{created['ref']}", json={"firstName": "J"}, auth=admin_auth)
    assert response.status_code == 400
    assert developer_message(response) == "guestType: required"


async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, admin_auth: Auth, clock: FrozenClock
) -> None:
    created = await create_guest(client, admin_auth, **JANE, phoneNumbers=["1", "2"], city="Cork")
    clock.advance(minutes=1)
    response = await client.patch(
        f"/v2.1/guests/{created['ref']}",
        json={"city": None, "phoneNumbers": ["3"], "emails": None, "title": "Ms"},
        auth=admin_auth,
    )
    assert response.status_code == 200, response.text
    expected = {**created, "modifiedAt": "2026-01-15T09:01:00.000Z", "title": "Ms", "phoneNumbers": ["3"]}
    del expected["city"], expected["emails"]
    assert response.json() == expected


async def test_patch_with_an_empty_body_only_touches_modified_at(
    client: httpx.AsyncClient, admin_auth: Auth, clock: FrozenClock
) -> None:
    created = await create_guest(client, admin_auth, **JANE)
    clock.advance(seconds=1)
    response = await client.patch(f"/v2.1/guests/{created['ref']}", json={}, auth=admin_auth)
    assert response.json() == {**created, "modifiedAt": "2026-01-15T09:00:01.000Z"}


async def test_patch_identifiers_replaces_or_clears_the_set(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create_guest(client, admin_auth, **JANE)
    ref = created["ref"]
    untouched = await client.patch(f"/v2.1/guests/{ref}", json={"firstName": "J"}, auth=admin_auth)
    assert untouched.json()["identifiers"] == JANE["identifiers"]
    replaced = await client.patch(
        f"/v2.1/guests/{ref}", json={"identifiers": [{"provider": "CRM", "id": "7"}]}, auth=admin_auth
    )
    assert replaced.json()["identifiers"] == [{"provider": "CRM", "id": "7"}]
    cleared = await client.patch(f"/v2.1/guests/{ref}", json={"identifiers": None}, auth=admin_auth)
    assert cleared.json()["identifiers"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"guestType": None}, "guestType: cannot be cleared"),
        ({"guestType": "retired"}, "guestType: must be one of visitor, customer, traveller"),
        ({"dateOfBirth": "2030-01-01"}, "dateOfBirth: must be in the past"),
        ({"email": "x"}, "email: must be a valid email address"),
        ({"nickname": "J"}, "nickname: Extra inputs are not permitted"),
        ({"lastName": ["Doe"]}, "lastName: Input should be a valid string"),
    ],
)
async def test_patch_validates_like_create(
    client: httpx.AsyncClient, admin_auth: Auth, body: dict[str, Any], message: str
) -> None:
    created = await create_guest(client, admin_auth, **JANE)
    response = await client.patch(f"/v2.1/guests/{created['ref']}", json=body, auth=admin_auth)
    assert response.status_code == 400
    assert developer_message(response) == message
    assert await get_guest(client, admin_auth, created["ref"]) == created


async def test_guest_refs_are_case_insensitive_and_must_be_uuids(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create_guest(client, admin_auth, **JANE)
    assert (await get_guest(client, admin_auth, created["ref"].upper()))["ref"] == created["ref"]
    for bad in ("nope", "1", "%20", "f7aabbca1c1b4fc2be723e16294a4f03x"):
        await get_guest(client, admin_auth, bad, expect=404)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_unknown_guest_is_404_for_every_method(client: httpx.AsyncClient, admin_auth: Auth, method: str) -> None:
    ref = "f7aabbca-1c1b-4fc2-be72-3e16294a4f03"
    body = {"guestType": "customer"} if method in ("PUT", "PATCH") else None
    response = await client.request(method, f"/v2.1/guests/{ref}", json=body, auth=admin_auth)
    assert response.status_code == 404
    assert response.json()["message"] == "The specified resource does not exist."


# --- visitors from the Stream API, retired and deleted guests -------------------------------------


async def test_stream_visitors_are_readable(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    browser = await create_browser(client)
    guest = await get_guest(client, admin_auth, browser["customer_ref"])
    assert guest["guestType"] == "visitor"
    assert guest["identifiers"] == [] and guest["extensions"] == []


async def test_retired_guests_read_as_not_found(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    first, second = await create_browser(client), await create_browser(client)
    await identify(client, first["ref"], email="kim@example.com", identifiers=[{"provider": "CRM", "id": "kim"}])
    await identify(client, second["ref"], email="kim@example.com", identifiers=[{"provider": "CRM", "id": "kim"}])
    retired = second["customer_ref"]
    await get_guest(client, admin_auth, retired, expect=404)
    for method in ("PUT", "PATCH", "DELETE"):
        body = {"guestType": "customer"} if method != "DELETE" else None
        response = await client.request(method, f"/v2.1/guests/{retired}", json=body, auth=admin_auth)
        assert response.status_code == 404, method
    listed = await client.get("/v2.1/guests", params={"limit": 100}, auth=admin_auth)
    assert retired not in {item["href"].rsplit("/", 1)[1] for item in listed.json()["items"]}


async def test_delete_hides_the_guest_everywhere(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create_guest(client, admin_auth, **JANE)
    ref = created["ref"]
    response = await client.delete(f"/v2.1/guests/{ref}", auth=admin_auth)
    assert response.status_code == 200
    assert response.json() == {"href": created["href"], "ref": ref, "status": "DELETION_SCHEDULED"}
    await get_guest(client, admin_auth, ref, expect=404)
    again = await client.delete(f"/v2.1/guests/{ref}", auth=admin_auth)
    assert again.status_code == 404
    patched = await client.patch(f"/v2.1/guests/{ref}", json={"firstName": "x"}, auth=admin_auth)
    assert patched.status_code == 404
    ext = await client.post(f"/v2.1/guests/{ref}/extensions", json={"name": "ext", "a": 1}, auth=admin_auth)
    assert ext.status_code == 404
    found = await client.get("/v2.1/guests", params={"email": "jane.doe@example.com"}, auth=admin_auth)
    assert found.json()["items"] == []
