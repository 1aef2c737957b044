"""Guest data extensions (spec §8.7): ext, ext1 … ext5; limits, keys, values, PUT/PATCH/DELETE."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import CLIENT_KEY
from tests.support.clock import FrozenClock

Auth = tuple[str, str]


@pytest.fixture
async def guest(client: httpx.AsyncClient, admin_auth: Auth) -> str:
    response = await client.post("/v2.1/guests", json={"guestType": "customer"}, auth=admin_auth)
    assert response.status_code == 201
    ref: str = response.json()["ref"]
    return ref


async def add(
    client: httpx.AsyncClient, auth: Auth, guest: str, name: str, *, expect: int = 201, **pairs: Any
) -> httpx.Response:
    response = await client.post(f"/v2.1/guests/{guest}/extensions", json={"name": name, **pairs}, auth=auth)
    assert response.status_code == expect, response.text
    return response


def pairs_of(body: dict[str, Any]) -> dict[str, Any]:
    fixed = {"href", "ref", "name", "key", "createdAt", "modifiedAt", "guest"}
    return {k: v for k, v in body.items() if k not in fixed}


def dev(response: httpx.Response) -> str:
    message: str = response.json()["developerMessage"]
    return message


async def test_six_extensions_at_most(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    for n, name in enumerate(("ext", "ext1", "ext2", "ext3", "ext4", "ext5")):
        await add(client, admin_auth, guest, name, **{f"key{n}": n})
    seventh = await add(client, admin_auth, guest, "ext6", expect=400, other=1)
    assert dev(seventh) == "name: must be one of ext, ext1, ext2, ext3, ext4, ext5"
    again = await add(client, admin_auth, guest, "ext3", expect=409, other=1)
    assert again.json()["status"] == 409
    listed = await client.get(f"/v2.1/guests/{guest}/extensions", params={"limit": 100}, auth=admin_auth)
    assert [i["href"].rsplit("/", 1)[1] for i in listed.json()["items"]] == [
        "ext",
        "ext1",
        "ext2",
        "ext3",
        "ext4",
        "ext5",
    ]
    page = await client.get(f"/v2.1/guests/{guest}/extensions", params={"offset": 4, "limit": 1}, auth=admin_auth)
    assert [i["href"].rsplit("/", 1)[1] for i in page.json()["items"]] == ["ext4"]
    retrieved = await client.get(f"/v2.1/guests/{guest}", auth=admin_auth)
    assert [e["name"] for e in retrieved.json()["extensions"]] == ["ext", "ext1", "ext2", "ext3", "ext4", "ext5"]


@pytest.mark.parametrize("name", ["EXT", "ext0", "ext 1", "", "extension", "ext1/x", 1, None])
async def test_invalid_names(client: httpx.AsyncClient, admin_auth: Auth, guest: str, name: Any) -> None:
    response = await client.post(f"/v2.1/guests/{guest}/extensions", json={"name": name, "a": 1}, auth=admin_auth)
    assert response.status_code == 400, response.text


async def test_name_is_required(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    response = await client.post(f"/v2.1/guests/{guest}/extensions", json={"a": 1}, auth=admin_auth)
    assert response.status_code == 400
    assert dev(response) == "name: Field required"


async def test_hundred_pairs_fit_and_101_do_not(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    hundred = {f"k{n}": n for n in range(100)}
    await add(client, admin_auth, guest, "ext", **hundred)
    too_many = await add(client, admin_auth, guest, "ext1", expect=400, **{f"x{n}": n for n in range(101)})
    assert dev(too_many) == "an extension holds at most 100 key-value pairs"
    merged = await client.patch(f"/v2.1/guests/{guest}/extensions/ext", json={"one": 1}, auth=admin_auth)
    assert merged.status_code == 400
    assert dev(merged) == "an extension holds at most 100 key-value pairs"
    replaced = await client.put(f"/v2.1/guests/{guest}/extensions/ext", json={"one": 1}, auth=admin_auth)
    assert replaced.status_code == 200


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ({"address": {"city": "Galway"}}, "address: values must be a string, number or boolean"),
        ({"tags": ["a", "b"]}, "tags: values must be a string, number or boolean"),
        ({"nothing": None}, "nothing: values must be a string, number or boolean"),
        ({"huge": 2**64}, "huge: values must be a string, number or boolean"),
        ({"text": "x" * 10_001}, "text: values must be a string, number or boolean"),
        ({"loyalty-tier": "gold"}, "loyalty-tier: keys must be 1 to 100 letters or digits"),
        ({"loyalty_tier": "gold"}, "loyalty_tier: keys must be 1 to 100 letters or digits"),
        ({"": "gold"}, ": keys must be 1 to 100 letters or digits"),
        ({"näme": "gold"}, "näme: keys must be 1 to 100 letters or digits"),
        ({"k" * 101: 1}, f"{'k' * 100}: keys must be 1 to 100 letters or digits"),
        ({"href": "x"}, "href: reserved key"),
        ({"createdAt": "x"}, "createdAt: reserved key"),
        (
            {"a": [], "b": {}},
            "a: values must be a string, number or boolean; b: values must be a string, number or boolean",
        ),
        ({"key": "other"}, 'key: must be "default"'),
    ],
)
async def test_invalid_pairs(
    client: httpx.AsyncClient, admin_auth: Auth, guest: str, pairs: dict[str, Any], message: str
) -> None:
    response = await add(client, admin_auth, guest, "ext", expect=400, **pairs)
    assert dev(response) == message
    put = await client.put(f"/v2.1/guests/{guest}/extensions/ext", json=pairs, auth=admin_auth)
    assert put.status_code == 400  # the body is checked first
    assert (await client.get(f"/v2.1/guests/{guest}/extensions/ext", auth=admin_auth)).status_code == 404


async def test_nul_characters_are_refused(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    pairs: dict[str, Any]
    for pairs in ({"a": "x\x00y"}, {"a\x00": 1}):
        await add(client, admin_auth, guest, "ext", expect=400, **pairs)


async def test_primitive_values_round_trip(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    values: dict[str, Any] = {
        "s": "silver",
        "i": -42,
        "f": 0.5,
        "t": True,
        "n": 0,
        "big": 2**62,
        "empty": "",
        "uni": "Ó Briain",
    }
    created = await add(client, admin_auth, guest, "ext", key="default", **values)
    assert pairs_of(created.json()) == dict(sorted(values.items()))
    got = await client.get(f"/v2.1/guests/{guest}/extensions/ext", auth=admin_auth)
    assert got.json() == created.json()


@pytest.mark.parametrize("raw", [b'{"name":"ext","a":NaN}', b'{"name":"ext","a":Infinity}', b'{"name":"ext",'])
async def test_non_json_numbers_and_malformed_bodies(
    client: httpx.AsyncClient, admin_auth: Auth, guest: str, raw: bytes
) -> None:
    response = await client.post(
        f"/v2.1/guests/{guest}/extensions", content=raw, headers={"content-type": "application/json"}, auth=admin_auth
    )
    assert response.status_code == 400, response.text


async def test_non_json_content_type_is_415(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    response = await client.post(
        f"/v2.1/guests/{guest}/extensions",
        content=b'{"name":"ext","a":1}',
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=admin_auth,
    )
    assert response.status_code == 415


async def test_body_must_be_an_object(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    for body in ([{"name": "ext"}], "ext", 1):
        response = await client.post(f"/v2.1/guests/{guest}/extensions", json=body, auth=admin_auth)
        assert response.status_code == 400, body
        put = await client.put(f"/v2.1/guests/{guest}/extensions/ext", json=body, auth=admin_auth)
        assert put.status_code == 400, body


async def test_keys_are_unique_across_the_guests_extensions(
    client: httpx.AsyncClient, admin_auth: Auth, guest: str
) -> None:
    await add(client, admin_auth, guest, "ext", loyaltyTier="silver")
    await add(client, admin_auth, guest, "ext1", team="Galway")
    clash = await add(client, admin_auth, guest, "ext2", expect=400, loyaltyTier="gold")
    assert dev(clash) == "loyaltyTier: already used by extension ext"
    put = await client.put(f"/v2.1/guests/{guest}/extensions/ext1", json={"loyaltyTier": "x"}, auth=admin_auth)
    assert put.status_code == 400
    patch = await client.patch(f"/v2.1/guests/{guest}/extensions/ext1", json={"loyaltyTier": "x"}, auth=admin_auth)
    assert patch.status_code == 400
    # Keys are case-sensitive, and an extension may keep its own keys.
    await add(client, admin_auth, guest, "ext3", LoyaltyTier="gold")
    own = await client.put(f"/v2.1/guests/{guest}/extensions/ext", json={"loyaltyTier": "gold"}, auth=admin_auth)
    assert own.status_code == 200
    # Keys of another guest do not count.
    other = await client.post("/v2.1/guests", json={"guestType": "visitor"}, auth=admin_auth)
    await add(client, admin_auth, other.json()["ref"], "ext", loyaltyTier="bronze")


async def test_put_replaces_and_patch_merges(
    client: httpx.AsyncClient, admin_auth: Auth, guest: str, clock: FrozenClock
) -> None:
    created = (await add(client, admin_auth, guest, "ext", a=1, b=2)).json()
    clock.advance(minutes=2)
    patched = await client.patch(f"/v2.1/guests/{guest}/extensions/ext", json={"b": 3, "c": "x"}, auth=admin_auth)
    assert pairs_of(patched.json()) == {"a": 1, "b": 3, "c": "x"}
    assert patched.json()["modifiedAt"] == "2026-01-15T09:02:00.000Z"
    assert patched.json()["createdAt"] == created["createdAt"]
    assert patched.json()["ref"] == created["ref"]
    replaced = await client.put(
        f"/v2.1/guests/{guest}/extensions/ext", json={"name": "ext", "key": "default", "d": False}, auth=admin_auth
    )
    assert pairs_of(replaced.json()) == {"d": False}
    emptied = await client.put(f"/v2.1/guests/{guest}/extensions/ext", json={}, auth=admin_auth)
    assert pairs_of(emptied.json()) == {}
    renamed = await client.put(f"/v2.1/guests/{guest}/extensions/ext", json={"name": "ext1"}, auth=admin_auth)
    assert renamed.status_code == 400
    assert dev(renamed) == "name: must match the extension in the path"


async def test_delete_and_delete_fields(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    await add(client, admin_auth, guest, "ext", a=1, b=2, c=3)
    base = f"/v2.1/guests/{guest}/extensions/ext"
    some = await client.delete(f"{base}/fields", params={"name": "a|c|nope"}, auth=admin_auth)
    assert pairs_of(some.json()) == {"b": 2}
    empty_list = await client.delete(f"{base}/fields", params={"name": "|"}, auth=admin_auth)
    assert empty_list.status_code == 400
    everything = await client.delete(f"{base}/fields", auth=admin_auth)
    assert pairs_of(everything.json()) == {}
    assert (await client.get(base, auth=admin_auth)).status_code == 200

    deleted = await client.delete(base, auth=admin_auth)
    assert deleted.status_code == 200
    assert deleted.json()["status"] == "DELETED"
    assert (await client.get(base, auth=admin_auth)).status_code == 404
    assert (await client.delete(base, auth=admin_auth)).status_code == 404
    assert (await client.delete(f"{base}/fields", auth=admin_auth)).status_code == 404
    # The name and the keys are free again.
    await add(client, admin_auth, guest, "ext", a=1)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
async def test_unknown_extension_or_guest_is_404(
    client: httpx.AsyncClient, admin_auth: Auth, guest: str, method: str
) -> None:
    body = {"a": 1} if method in ("PUT", "PATCH") else None
    for path in (
        f"/v2.1/guests/{guest}/extensions/ext",
        f"/v2.1/guests/{guest}/extensions/ext9",
        "/v2.1/guests/f7aabbca-1c1b-4fc2-be72-3e16294a4f03/extensions/ext",
        "/v2.1/guests/not-a-ref/extensions/ext",
    ):
        response = await client.request(method, path, json=body, auth=admin_auth)
        assert response.status_code == 404, (path, response.text)
    listed = await client.get("/v2.1/guests/f7aabbca-1c1b-4fc2-be72-3e16294a4f03/extensions", auth=admin_auth)
    assert listed.status_code == 404


async def test_alias_route(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    created = await add(client, admin_auth, guest, "ext2", a=1)
    alias = await client.get(f"/v2.1/guests/{guest}/ext2", auth=admin_auth)
    assert alias.json() == created.json()
    assert (await client.get(f"/v2.1/guests/{guest}/ext3", auth=admin_auth)).status_code == 404
    assert (await client.get(f"/v2.1/guests/{guest}/sessions", auth=admin_auth)).status_code == 404


async def test_collection_paging_errors(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    for params in ({"limit": 101}, {"limit": 0}, {"offset": -1}, {"offset": "x"}, {"expand": "perhaps"}):
        response = await client.get(f"/v2.1/guests/{guest}/extensions", params=params, auth=admin_auth)
        assert response.status_code == 400, params


async def test_read_only_tokens_read_but_do_not_write(client: httpx.AsyncClient, admin_auth: Auth, guest: str) -> None:
    made = await client.post("/admin/v1/api-tokens", json={"label": "ro", "scope": "ro"}, auth=admin_auth)
    ro = (CLIENT_KEY, made.json()["token"])
    await add(client, admin_auth, guest, "ext", a=1)
    assert (await client.get(f"/v2.1/guests/{guest}/extensions/ext", auth=ro)).status_code == 200
    assert (await client.patch(f"/v2.1/guests/{guest}/extensions/ext", json={"a": 2}, auth=ro)).status_code == 403
