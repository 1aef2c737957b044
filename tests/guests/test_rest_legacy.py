"""Legacy Guest REST API v2 (spec §8.6): same shapes on /v2/guests, full updates only, no PATCH."""

from __future__ import annotations

import httpx

Auth = tuple[str, str]


async def test_v2_create_retrieve_update_delete(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await client.post("/v2/guests", json={"guestType": "customer", "firstName": "Ann"}, auth=admin_auth)
    assert created.status_code == 201, created.text
    ref = created.json()["ref"]
    assert created.json()["href"] == f"http://testserver/v2/guests/{ref}"

    put = await client.put(f"/v2/guests/{ref}", json={"guestType": "customer", "lastName": "Lee"}, auth=admin_auth)
    assert put.status_code == 200
    assert "firstName" not in put.json() and put.json()["lastName"] == "Lee"

    post = await client.post(f"/v2/guests/{ref}", json={"guestType": "visitor"}, auth=admin_auth)
    assert post.status_code == 200
    assert post.json()["guestType"] == "visitor" and "lastName" not in post.json()

    v21 = await client.get(f"/v2.1/guests/{ref}", auth=admin_auth)
    v2 = await client.get(f"/v2/guests/{ref}", auth=admin_auth)
    assert {**v21.json(), "href": None} == {**v2.json(), "href": None}

    deleted = await client.delete(f"/v2/guests/{ref}", auth=admin_auth)
    assert deleted.json() == {"href": f"http://testserver/v2/guests/{ref}", "ref": ref, "status": "DELETION_SCHEDULED"}
    assert (await client.get(f"/v2.1/guests/{ref}", auth=admin_auth)).status_code == 404


async def test_v2_has_no_patch(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await client.post("/v2/guests", json={"guestType": "customer"}, auth=admin_auth)
    response = await client.patch(f"/v2/guests/{created.json()['ref']}", json={"firstName": "x"}, auth=admin_auth)
    assert response.status_code == 405
    assert response.json()["code"] == 405


async def test_v2_validates_like_v21(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    response = await client.post("/v2/guests", json={"guestType": "alien", "x": 1}, auth=admin_auth)
    assert response.status_code == 400
    assert response.json()["developerMessage"] == "x: Extra inputs are not permitted"
    unknown = await client.post(
        "/v2/guests/f7aabbca-1c1b-4fc2-be72-3e16294a4f03", json={"guestType": "customer"}, auth=admin_auth
    )
    assert unknown.status_code == 404


async def test_v2_search(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await client.post(
        "/v2/guests", json={"guestType": "customer", "email": "Ann@Example.com"}, auth=admin_auth
    )
    ref = created.json()["ref"]
    found = await client.get("/v2/guests", params={"email": "ann@example.com", "expand": "true"}, auth=admin_auth)
    assert found.json()["href"] == "http://testserver/v2/guests?offset=0&limit=10&email=ann%40example.com&expand=true"
    assert [item["href"] for item in found.json()["items"]] == [f"http://testserver/v2/guests/{ref}"]
    bad = await client.get("/v2/guests", params={"limit": 500}, auth=admin_auth)
    assert bad.status_code == 400
