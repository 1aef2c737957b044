"""Legacy v2 guest data extensions (spec §8.6): ``/v2/guests/{ref}/ext{Name}[/{extensionRef}]``.

``…/ext{Name}`` is a collection of at most one extension (GET lists, POST creates);
``…/ext{Name}/{extensionRef}`` is the extension (GET, PUT or POST full update, DELETE). No PATCH.
Limits and validation are the v2.1 ones (same service).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import CLIENT_KEY

Auth = tuple[str, str]
BASE = "http://testserver"
UNKNOWN = "f7aabbca-1c1b-4fc2-be72-3e16294a4f03"


@pytest.fixture
async def guest(client: httpx.AsyncClient, admin_auth: Auth) -> str:
    response = await client.post("/v2/guests", json={"guestType": "customer"}, auth=admin_auth)
    assert response.status_code == 201
    ref: str = response.json()["ref"]
    return ref


async def add(
    client: httpx.AsyncClient, auth: Auth, guest: str, name: str, *, expect: int = 201, **pairs: Any
) -> httpx.Response:
    response = await client.post(f"/v2/guests/{guest}/{name}", json={"key": "default", **pairs}, auth=auth)
    assert response.status_code == expect, response.text
    return response


def dev(response: httpx.Response) -> str:
    message: str = response.json()["developerMessage"]
    return message


async def test_create_read_update_delete(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    created = (await add(client, admin_auth, guest, "ext1", loyaltyTier="silver", rewardBalance=0)).json()
    ext_ref = created["ref"]
    href = f"{BASE}/v2/guests/{guest}/ext1/{ext_ref}"
    assert created == {
        "href": href,
        "ref": ext_ref,
        "name": "ext1",
        "key": "default",
        "createdAt": "2026-01-15T09:00:00.000Z",
        "modifiedAt": "2026-01-15T09:00:00.000Z",
        "guest": {"href": f"{BASE}/v2/guests/{guest}"},
        "loyaltyTier": "silver",
        "rewardBalance": 0,
    }
    got = await client.get(f"/v2/guests/{guest}/ext1/{ext_ref}", auth=admin_auth)
    assert got.status_code == 200 and got.json() == created
    upper = await client.get(f"/v2/guests/{guest.upper()}/ext1/{ext_ref.upper()}", auth=admin_auth)
    assert upper.json() == created

    put = await client.put(f"/v2/guests/{guest}/ext1/{ext_ref}", json={"key": "default", "a": 1}, auth=admin_auth)
    assert put.status_code == 200, put.text
    assert {k: v for k, v in put.json().items() if k not in created or k == "loyaltyTier"} == {"a": 1}
    post = await client.post(f"/v2/guests/{guest}/ext1/{ext_ref}", json={"b": True, "name": "ext1"}, auth=admin_auth)
    assert post.status_code == 200, post.text
    assert post.json()["b"] is True and "a" not in post.json()
    assert post.json()["href"] == href

    # The same extension through v2.1, and embedded in the guest.
    v21 = (await client.get(f"/v2.1/guests/{guest}/extensions/ext1", auth=admin_auth)).json()
    assert (v21["ref"], v21["b"], v21["href"]) == (ext_ref, True, f"{BASE}/v2.1/guests/{guest}/extensions/ext1")
    embedded = (await client.get(f"/v2/guests/{guest}", auth=admin_auth)).json()["extensions"]
    assert [e["ref"] for e in embedded] == [ext_ref]

    deleted = await client.delete(f"/v2/guests/{guest}/ext1/{ext_ref}", auth=admin_auth)
    assert deleted.status_code == 200
    assert deleted.json() == {"href": href, "ref": ext_ref, "status": "DELETED"}
    gone = await client.get(f"/v2/guests/{guest}/ext1/{ext_ref}", auth=admin_auth)
    assert gone.status_code == 404
    assert (await client.get(f"/v2.1/guests/{guest}/extensions/ext1", auth=admin_auth)).status_code == 404


async def test_collection_holds_the_named_extension(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    empty = await client.get(f"/v2/guests/{guest}/ext", auth=admin_auth)
    assert empty.status_code == 200
    assert empty.json() == {
        "href": f"{BASE}/v2/guests/{guest}/ext?offset=0&limit=10",
        "offset": 0,
        "limit": 10,
        "items": [],
    }
    ext = (await add(client, admin_auth, guest, "ext", a=1)).json()
    await add(client, admin_auth, guest, "ext5", b=2)
    listed = (await client.get(f"/v2/guests/{guest}/ext", auth=admin_auth)).json()
    assert listed["items"] == [{"href": f"{BASE}/v2/guests/{guest}/ext/{ext['ref']}"}]
    expanded = (await client.get(f"/v2/guests/{guest}/ext", params={"expand": "true"}, auth=admin_auth)).json()
    assert expanded["href"] == f"{BASE}/v2/guests/{guest}/ext?offset=0&limit=10&expand=true"
    assert expanded["items"] == [ext]
    skipped = (await client.get(f"/v2/guests/{guest}/ext", params={"offset": 1}, auth=admin_auth)).json()
    assert skipped["items"] == []


async def test_every_name_and_only_those(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    for n, name in enumerate(("ext", "ext1", "ext2", "ext3", "ext4", "ext5")):
        await add(client, admin_auth, guest, name, **{f"key{n}": n})
    for name in ("ext6", "EXT", "ext0", "extension", "orders"):
        assert (await client.post(f"/v2/guests/{guest}/{name}", json={"z": 1}, auth=admin_auth)).status_code == 404
        assert (await client.get(f"/v2/guests/{guest}/{name}", auth=admin_auth)).status_code == 404


async def test_limits_and_validation(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    too_many = await add(client, admin_auth, guest, "ext", expect=400, **{f"k{n}": n for n in range(101)})
    assert dev(too_many) == "an extension holds at most 100 key-value pairs"
    nested = await add(client, admin_auth, guest, "ext", expect=400, address={"city": "Galway"})
    assert dev(nested) == "address: values must be a string, number or boolean"
    bad_key = await add(client, admin_auth, guest, "ext", expect=400, **{"loyalty-tier": "gold"})
    assert dev(bad_key) == "loyalty-tier: keys must be 1 to 100 letters or digits"
    wrong_key = await client.post(f"/v2/guests/{guest}/ext", json={"key": "other", "a": 1}, auth=admin_auth)
    assert wrong_key.status_code == 400 and dev(wrong_key) == 'key: must be "default"'
    wrong_name = await client.post(f"/v2/guests/{guest}/ext", json={"name": "ext2", "a": 1}, auth=admin_auth)
    assert wrong_name.status_code == 400 and dev(wrong_name) == "name: must match the extension in the path"
    not_object = await client.post(f"/v2/guests/{guest}/ext", json=[1, 2], auth=admin_auth)
    assert not_object.status_code == 400

    first = (await add(client, admin_auth, guest, "ext", tier="gold")).json()
    clash = await add(client, admin_auth, guest, "ext1", expect=400, tier="silver")
    assert dev(clash) == "tier: already used by extension ext"
    await add(client, admin_auth, guest, "ext1", points=1)
    put_clash = await client.put(
        f"/v2/guests/{guest}/ext/{first['ref']}", json={"key": "default", "points": 2}, auth=admin_auth
    )
    assert put_clash.status_code == 400 and dev(put_clash) == "points: already used by extension ext1"
    put_many = await client.put(
        f"/v2/guests/{guest}/ext/{first['ref']}", json={f"k{n}": n for n in range(101)}, auth=admin_auth
    )
    assert put_many.status_code == 400


async def test_duplicate_name_is_a_conflict(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    await add(client, admin_auth, guest, "ext2", a=1)
    again = await add(client, admin_auth, guest, "ext2", expect=409, b=2)
    assert again.json()["status"] == 409
    assert dev(again) == "name: the guest already has an extension named ext2"
    via_v21 = await client.post(f"/v2.1/guests/{guest}/extensions", json={"name": "ext2", "c": 3}, auth=admin_auth)
    assert via_v21.status_code == 409


async def test_unknown_guest_and_extension(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    for method, path in (
        ("GET", f"/v2/guests/{UNKNOWN}/ext"),
        ("POST", f"/v2/guests/{UNKNOWN}/ext"),
        ("GET", f"/v2/guests/{UNKNOWN}/ext/{UNKNOWN}"),
        ("PUT", f"/v2/guests/{UNKNOWN}/ext/{UNKNOWN}"),
        ("DELETE", f"/v2/guests/{UNKNOWN}/ext/{UNKNOWN}"),
        ("GET", "/v2/guests/not-a-ref/ext"),
    ):
        response = await client.request(
            method, path, json={"a": 1} if method in ("POST", "PUT") else None, auth=admin_auth
        )
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == 404

    ext = (await add(client, admin_auth, guest, "ext", a=1)).json()
    # No ext1 yet; and ext's ref does not address another name or a wrong ref.
    for path in (
        f"/v2/guests/{guest}/ext1/{ext['ref']}",
        f"/v2/guests/{guest}/ext/{UNKNOWN}",
        f"/v2/guests/{guest}/ext/x",
    ):
        assert (await client.get(path, auth=admin_auth)).status_code == 404
        assert (await client.put(path, json={"a": 2}, auth=admin_auth)).status_code == 404
        assert (await client.delete(path, auth=admin_auth)).status_code == 404
    assert (await client.get(f"/v2/guests/{guest}/ext/{ext['ref']}", auth=admin_auth)).json()["a"] == 1

    deleted = await client.delete(f"/v2/guests/{guest}", auth=admin_auth)
    assert deleted.status_code == 200
    assert (await client.get(f"/v2/guests/{guest}/ext/{ext['ref']}", auth=admin_auth)).status_code == 404


async def test_no_patch(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    ext = (await add(client, admin_auth, guest, "ext", a=1)).json()
    for path in (f"/v2/guests/{guest}/ext", f"/v2/guests/{guest}/ext/{ext['ref']}"):
        response = await client.patch(path, json={"a": 2}, auth=admin_auth)
        assert response.status_code == 405, path
        assert response.json()["code"] == 405
    assert (await client.get(f"/v2/guests/{guest}/ext/{ext['ref']}", auth=admin_auth)).json()["a"] == 1


async def test_auth_scopes(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    ext = (await add(client, admin_auth, guest, "ext", a=1)).json()
    made = await client.post("/admin/v1/api-tokens", json={"label": "ro", "scope": "ro"}, auth=admin_auth)
    read_only = (CLIENT_KEY, made.json()["token"])
    one = f"/v2/guests/{guest}/ext/{ext['ref']}"
    assert (await client.get(f"/v2/guests/{guest}/ext", auth=read_only)).status_code == 200
    assert (await client.get(one, auth=read_only)).status_code == 200
    assert (await client.post(f"/v2/guests/{guest}/ext1", json={"b": 1}, auth=read_only)).status_code == 403
    assert (await client.put(one, json={"a": 2}, auth=read_only)).status_code == 403
    assert (await client.post(one, json={"a": 2}, auth=read_only)).status_code == 403
    assert (await client.delete(one, auth=read_only)).status_code == 403
    assert (await client.get(one)).status_code == 401


async def test_routes_are_documented(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    collection = paths["/v2/guests/{guest_ref}/{name}"]
    item = paths["/v2/guests/{guest_ref}/{name}/{extension_ref}"]
    assert set(collection) == {"get", "post"}
    assert set(item) == {"get", "put", "post", "delete"}
    assert {"400", "404", "409"} <= set(collection["post"]["responses"])
    assert "404" in item["get"]["responses"]
    assert "patch" not in item
