"""Order REST API v2.1 (spec §9): PUT vs PATCH, validation, unknown refs, conflicts, auth, paging."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from innkeeper.orders.api import router
from tests.conftest import CLIENT_KEY
from tests.orders._helpers import (
    ADMIN,
    BASE,
    assert_rest_error,
    call,
    create_item,
    create_order,
    item_body,
    order_body,
    token,
)

UNKNOWN = "0b7a4d0e-5d1f-4c1e-9a53-0f4c2b1e9d77"


def basic(user: str, password: str) -> str:
    """An Authorization header value for Basic credentials."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_put_replaces_and_clears_omitted_optional_fields(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    body = {"referenceId": "PNR-0001", "orderedAt": "2025-09-01", "currencyCode": "GBP", "price": 10}
    response = await call(client, "PUT", f"/v2.1/orders/{order['ref']}", json=body)
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["orderedAt"] == "2025-09-01T00:00:00.000Z"
    assert (got["currencyCode"], got["price"], got["status"]) == ("GBP", 10.0, "UNKNOWN")
    for cleared in ("channel", "pointOfSale", "paymentType", "cardType"):
        assert cleared not in got
    assert (await call(client, "GET", f"/v2.1/orders/{order['ref']}")).json() == got


async def test_patch_changes_only_given_fields_and_null_clears(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    response = await call(client, "PATCH", f"/v2.1/orders/{order['ref']}", json={"price": 1.5, "paymentType": None})
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["price"] == 1.5
    assert "paymentType" not in got
    unchanged = {k: v for k, v in order.items() if k not in ("price", "paymentType")}
    assert {k: got[k] for k in unchanged} == unchanged


async def test_put_needs_the_required_fields(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    response = await call(client, "PUT", f"/v2.1/orders/{order['ref']}", json={"status": "CANCELLED"})
    assert_rest_error(response, 400, mentions="referenceId: Field required")


@pytest.mark.parametrize("field", ["referenceId", "orderedAt", "currencyCode", "price"])
async def test_patch_cannot_clear_a_required_field(client: httpx.AsyncClient, field: str) -> None:
    order = await create_order(client)
    response = await call(client, "PATCH", f"/v2.1/orders/{order['ref']}", json={field: None})
    assert_rest_error(response, 400, mentions=f"{field}: may not be null")


async def test_item_put_vs_patch(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    item = await create_item(client, order["ref"], description="Sea view", vendor="Grand Hotel")
    patched = (await call(client, "PATCH", f"/v2.1/orderItems/{item['ref']}", json={"quantity": 5})).json()
    assert (patched["quantity"], patched["description"], patched["vendor"]) == (5, "Sea view", "Grand Hotel")
    body = {k: v for k, v in item_body().items() if k not in ("quantity", "referenceId", "orderedAt")}
    replaced = (await call(client, "PUT", f"/v2.1/orderItems/{item['ref']}", json=body)).json()
    assert replaced["quantity"] == 1
    for cleared in ("description", "vendor", "referenceId", "orderedAt"):
        assert cleared not in replaced
    response = await call(client, "PATCH", f"/v2.1/orderItems/{item['ref']}", json={"productId": None})
    assert_rest_error(response, 400, mentions="productId: may not be null")


async def test_documented_status_spelling(client: httpx.AsyncClient) -> None:
    order = await create_order(client, status="PARTIALY_CONFIRMED")
    assert order["status"] == "PARTIALY_CONFIRMED"
    response = await call(client, "POST", "/v2.1/orders", json=order_body("PNR-2", status="PARTIALLY_CONFIRMED"))
    assert_rest_error(response, 400, mentions="status")


BAD_ORDERS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown field", {"guest": {"href": "x"}}, "guest: Extra inputs are not permitted"),
    ("read-only field", {"ref": UNKNOWN}, "ref: Extra inputs are not permitted"),
    ("snake_case name", {"reference_id": "X"}, "reference_id: Extra inputs are not permitted"),
    ("price as string", {"price": "12.50"}, "price"),
    ("price as boolean", {"price": True}, "price"),
    ("price too large", {"price": 10**400}, "price"),
    ("price over bound", {"price": 1e16}, "price"),
    ("referenceId as number", {"referenceId": 123}, "referenceId"),
    ("empty referenceId", {"referenceId": ""}, "referenceId"),
    ("long referenceId", {"referenceId": "X" * 201}, "referenceId"),
    ("NUL in a string", {"referenceId": "PNR\x00"}, "NUL"),
    ("lower-case channel", {"channel": "web"}, "channel"),
    ("unknown channel", {"channel": "FAX"}, "channel"),
    ("lower-case currency", {"currencyCode": "eur"}, "currencyCode"),
    ("date in words", {"orderedAt": "yesterday"}, "orderedAt"),
    ("date as number", {"orderedAt": 1724429836}, "orderedAt"),
    ("long pointOfSale", {"pointOfSale": "p" * 101}, "pointOfSale"),
    ("nested paymentType", {"paymentType": {"type": "Card"}}, "paymentType"),
]


@pytest.mark.parametrize(("case", "change", "mentions"), BAD_ORDERS, ids=[c[0] for c in BAD_ORDERS])
async def test_bad_order_bodies_are_400(
    client: httpx.AsyncClient, case: str, change: dict[str, Any], mentions: str
) -> None:
    response = await call(client, "POST", "/v2.1/orders", json=order_body(**change))
    assert_rest_error(response, 400, mentions=mentions)


@pytest.mark.parametrize(
    "raw",
    [b"[]", b'"order"', b"null", b"{", b'{"price": NaN}', b'{"price": 1e400}', b"[" * 5000 + b"]" * 5000],
    ids=["array", "string", "null", "truncated", "NaN", "infinity", "deeply nested"],
)
async def test_unparseable_or_non_object_bodies_are_400(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post("/v2.1/orders", content=raw, headers={"content-type": "application/json"}, auth=ADMIN)
    assert_rest_error(response, 400)


BAD_ITEMS: list[tuple[str, dict[str, Any], str]] = [
    ("lower-case type", {"type": "hotel"}, "type"),
    ("fractional quantity", {"quantity": 1.5}, "quantity"),
    ("negative quantity", {"quantity": -1}, "quantity"),
    ("quantity over 32 bits", {"quantity": 2**31}, "quantity"),
    ("name over 128", {"name": "n" * 129}, "name"),
    ("order status on an item", {"status": "BROWSED"}, "status"),
    ("unknown field", {"item_id": "X"}, "item_id: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("case", "change", "mentions"), BAD_ITEMS, ids=[c[0] for c in BAD_ITEMS])
async def test_bad_item_bodies_are_400(
    client: httpx.AsyncClient, case: str, change: dict[str, Any], mentions: str
) -> None:
    order = await create_order(client)
    response = await call(client, "POST", f"/v2.1/orders/{order['ref']}/orderItems", json=item_body(**change))
    assert_rest_error(response, 400, mentions=mentions)


@pytest.mark.parametrize("missing", ["type", "price", "currencyCode", "status", "name", "productId"])
async def test_item_required_fields(client: httpx.AsyncClient, missing: str) -> None:
    order = await create_order(client)
    body = {k: v for k, v in item_body().items() if k != missing}
    response = await call(client, "POST", f"/v2.1/orders/{order['ref']}/orderItems", json=body)
    assert_rest_error(response, 400, mentions=f"{missing}: Field required")


@pytest.mark.parametrize("ref", [UNKNOWN, "not-a-ref", "x" * 300])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v2.1/orders/{ref}", None),
        ("PUT", "/v2.1/orders/{ref}", order_body()),
        ("PATCH", "/v2.1/orders/{ref}", {"price": 1}),
        ("DELETE", "/v2.1/orders/{ref}", None),
        ("POST", "/v2.1/orders/{ref}/orderItems", item_body()),
        ("GET", "/v2.1/orders/{ref}/orderItems", None),
        ("GET", "/v2.1/orderItems/{ref}", None),
        ("PATCH", "/v2.1/orderItems/{ref}", {"quantity": 1}),
        ("DELETE", "/v2.1/orderItems/{ref}", None),
        ("POST", "/v2.1/orders/{ref}/contact", {"firstName": "Jane"}),
        ("GET", "/v2.1/orders/{ref}/contact", None),
        ("PATCH", "/v2.1/orders/{ref}/contact", {"firstName": "Jane"}),
        ("DELETE", "/v2.1/orders/{ref}/contact", None),
        ("POST", "/v2.1/orders/{ref}/consumers", {"firstName": "Tom"}),
        ("GET", "/v2.1/consumers/{ref}", None),
        ("PUT", "/v2.1/consumers/{ref}", {"firstName": "Tom"}),
        ("DELETE", "/v2.1/consumers/{ref}", None),
        ("POST", "/v2.1/orders/{ref}/extensions/ext", {"a": 1}),
        ("GET", "/v2.1/orders/{ref}/extensions", None),
        ("PATCH", "/v2.1/orderItems/{ref}/extensions/ext", {"a": 1}),
        ("DELETE", "/v2.1/orderItems/{ref}/extensions/ext/fields?name=a", None),
    ],
)
async def test_unknown_refs_are_404(
    client: httpx.AsyncClient, ref: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = await call(client, method, path.format(ref=ref), json=body)
    assert_rest_error(response, 404)


async def test_duplicate_reference_id_is_409_on_create_put_and_patch(client: httpx.AsyncClient) -> None:
    await create_order(client, "PNR-A")
    other = await create_order(client, "PNR-B")
    assert_rest_error(await call(client, "POST", "/v2.1/orders", json=order_body("PNR-A")), 409, mentions="referenceId")
    response = await call(client, "PUT", f"/v2.1/orders/{other['ref']}", json=order_body("PNR-A"))
    assert_rest_error(response, 409, mentions="referenceId")
    response = await call(client, "PATCH", f"/v2.1/orders/{other['ref']}", json={"referenceId": "PNR-A"})
    assert_rest_error(response, 409)
    # Keeping its own referenceId is no conflict.
    assert (await call(client, "PUT", f"/v2.1/orders/{other['ref']}", json=order_body("PNR-B"))).status_code == 200


async def test_concurrent_creation_of_one_reference_id(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(call(client, "POST", "/v2.1/orders", json=order_body("PNR-RACE", price=i)) for i in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 7, [r.text for r in responses]
    listed = (await call(client, "GET", "/v2.1/orders?referenceId=PNR-RACE")).json()
    assert len(listed["items"]) == 1


async def test_concurrent_creation_of_one_extension(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    path = f"/v2.1/orders/{order['ref']}/extensions/ext"
    responses = await asyncio.gather(*(call(client, "POST", path, json={"n": i}) for i in range(6)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5


async def test_list_paging_and_filter(client: httpx.AsyncClient) -> None:
    refs = [(await create_order(client, f"PNR-{i}"))["ref"] for i in range(3)]
    first = (await call(client, "GET", "/v2.1/orders?limit=2")).json()
    assert first["href"] == f"{BASE}/v2.1/orders?offset=0&limit=2"
    second = (await call(client, "GET", "/v2.1/orders?limit=2&offset=2")).json()
    seen = [i["href"].rsplit("/", 1)[-1] for i in first["items"] + second["items"]]
    assert sorted(seen) == sorted(refs)
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    only = (await call(client, "GET", "/v2.1/orders?referenceId=PNR-1&expand=true")).json()
    assert [i["referenceId"] for i in only["items"]] == ["PNR-1"]
    assert only["href"] == f"{BASE}/v2.1/orders?offset=0&limit=10&referenceId=PNR-1"
    assert (await call(client, "GET", "/v2.1/orders?referenceId=nope")).json()["items"] == []


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "offset=-1", "offset=99999999999999999999", "expand=maybe"])
async def test_bad_paging_is_400(client: httpx.AsyncClient, query: str) -> None:
    assert_rest_error(await call(client, "GET", f"/v2.1/orders?{query}"), 400)


async def test_delete_order_removes_its_children(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    item = await create_item(client, order["ref"])
    await call(client, "POST", f"/v2.1/orders/{order['ref']}/contact", json={"firstName": "Jane"})
    consumer = (await call(client, "POST", f"/v2.1/orders/{order['ref']}/consumers", json={"firstName": "Tom"})).json()
    await call(client, "POST", f"/v2.1/orders/{order['ref']}/extensions/ext", json={"a": 1})
    await call(client, "POST", f"/v2.1/orderItems/{item['ref']}/extensions/ext", json={"a": 1})
    response = await call(client, "DELETE", f"/v2.1/orders/{order['ref']}")
    assert response.json() == {"href": order["href"], "ref": order["ref"], "status": "DELETED"}
    for path in (
        f"/v2.1/orders/{order['ref']}",
        f"/v2.1/orderItems/{item['ref']}",
        f"/v2.1/consumers/{consumer['ref']}",
        f"/v2.1/orders/{order['ref']}/contact",
        f"/v2.1/orderItems/{item['ref']}/extensions/ext",
    ):
        assert (await call(client, "GET", path)).status_code == 404, path
    assert_rest_error(await call(client, "DELETE", f"/v2.1/orders/{order['ref']}"), 404)
    # The referenceId is free again.
    await create_order(client)


async def test_consumers_link_only_items_of_their_order(client: httpx.AsyncClient) -> None:
    order = await create_order(client, "PNR-1")
    other = await create_order(client, "PNR-2")
    mine = await create_item(client, order["ref"])
    foreign = await create_item(client, other["ref"])
    path = f"/v2.1/orders/{order['ref']}/consumers"
    response = await call(client, "POST", path, json={"orderItems": [{"href": foreign["href"]}]})
    assert_rest_error(response, 400, mentions="orderItems[0].href: not an item of this order")
    response = await call(client, "POST", path, json={"orderItems": [{"href": mine["href"]}, {"href": mine["href"]}]})
    consumer = response.json()
    assert consumer["orderItems"] == [{"href": mine["href"]}]
    # Deleting the item removes it from the consumer.
    await call(client, "DELETE", f"/v2.1/orderItems/{mine['ref']}")
    assert (await call(client, "GET", consumer["href"].replace(BASE, ""))).json()["orderItems"] == []


async def test_contact_post_twice_is_409_and_put_without_contact_is_404(client: httpx.AsyncClient) -> None:
    order = await create_order(client)
    path = f"/v2.1/orders/{order['ref']}/contact"
    assert_rest_error(await call(client, "PUT", path, json={"firstName": "Jane"}), 404)
    assert (await call(client, "POST", path, json={"firstName": "Jane"})).status_code == 201
    assert_rest_error(await call(client, "POST", path, json={"firstName": "Jane"}), 409)


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"identifiers": [{"provider": "BXLP"}]}, "identifiers.0.id"),
        ({"identifiers": [{"provider": "BXLP", "id": "1", "extra": 1}]}, "identifiers.0.extra"),
        ({"identifiers": "BXLP:1"}, "identifiers"),
        ({"gender": "other"}, "gender"),
        ({"dateOfBirth": "tomorrow"}, "dateOfBirth"),
        ({"country": "IRL"}, "country"),
        ({"street": "1 Main St"}, "street"),
        ({"firstName": "J" * 201}, "firstName"),
        ({"guestRef": UNKNOWN}, "guestRef: Extra inputs are not permitted"),
    ],
)
async def test_bad_contact_bodies_are_400(client: httpx.AsyncClient, body: dict[str, Any], mentions: str) -> None:
    order = await create_order(client)
    response = await call(client, "POST", f"/v2.1/orders/{order['ref']}/contact", json=body)
    assert_rest_error(response, 400, mentions=mentions)


# --- data extensions ------------------------------------------------------------------------------


@pytest.fixture(params=["order", "orderItem"])
async def ext_path(request: pytest.FixtureRequest, client: httpx.AsyncClient) -> str:
    """The extensions collection of a fresh order or order item."""
    order = await create_order(client)
    if request.param == "order":
        return f"/v2.1/orders/{order['ref']}/extensions"
    item = await create_item(client, order["ref"])
    return f"/v2.1/orderItems/{item['ref']}/extensions"


async def test_extension_limits(client: httpx.AsyncClient, ext_path: str) -> None:
    too_many = {f"key{i}": i for i in range(101)}
    assert_rest_error(await call(client, "POST", f"{ext_path}/ext", json=too_many), 400, mentions="maximum of 100")
    just_right = {f"key{i}": i for i in range(100)}
    assert (await call(client, "POST", f"{ext_path}/ext", json=just_right)).status_code == 201
    response = await call(client, "PATCH", f"{ext_path}/ext", json={"oneMore": 1})
    assert_rest_error(response, 400, mentions="maximum of 100")
    # PUT replaces, so 100 new keys are fine.
    response = await call(client, "PUT", f"{ext_path}/ext", json={f"other{i}": "v" for i in range(100)})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("pairs", "mentions"),
    [
        ({"nested": {"a": 1}}, "nested: values must be"),
        ({"list": [1, 2]}, "list: values must be"),
        ({"nothing": None}, "nothing: values must be"),
        ({"huge": 10**400}, "huge: values must be"),
        ({"big": 1e300}, "big: values must be"),
        ({"with-dash": 1}, "keys must be alphanumeric"),
        ({"": 1}, "keys must be alphanumeric"),
        ({"href": "x"}, "href: reserved"),
        ({"createdAt": "x"}, "createdAt: reserved"),
        ({"text": "a\x00b"}, "NUL"),
        ({"key": "other"}, "key: must be default"),
        ({"name": "ext2"}, "name: must match"),
    ],
)
async def test_bad_extension_pairs_are_400(
    client: httpx.AsyncClient, ext_path: str, pairs: dict[str, Any], mentions: str
) -> None:
    assert_rest_error(await call(client, "POST", f"{ext_path}/ext", json=pairs), 400, mentions=mentions)


@pytest.mark.parametrize("raw", [b"[1]", b'"ext"', b"{", b'{"a": NaN}'])
async def test_extension_bodies_must_be_objects(client: httpx.AsyncClient, ext_path: str, raw: bytes) -> None:
    response = await client.post(
        f"{ext_path}/ext", content=raw, headers={"content-type": "application/json"}, auth=ADMIN
    )
    assert_rest_error(response, 400)


async def test_extension_crud(client: httpx.AsyncClient, ext_path: str) -> None:
    assert_rest_error(await call(client, "PUT", f"{ext_path}/ext", json={"a": 1}), 404)
    assert_rest_error(await call(client, "POST", ext_path, json={"a": 1}), 400, mentions="name: required")
    assert_rest_error(await call(client, "POST", ext_path, json={"name": "ext5", "a": 1}), 400, mentions="ext")
    created = await call(client, "POST", ext_path, json={"name": "ext", "a": 1, "b": "x", "c": True})
    assert created.status_code == 201, created.text
    patched = (await call(client, "PATCH", f"{ext_path}/ext", json={"a": 2, "d": 0.5})).json()
    assert {k: patched[k] for k in "abcd"} == {"a": 2, "b": "x", "c": True, "d": 0.5}
    trimmed = (await call(client, "DELETE", f"{ext_path}/ext/fields?name=a|d|missing")).json()
    assert [k for k in "abcd" if k in trimmed] == ["b", "c"]
    emptied = (await call(client, "DELETE", f"{ext_path}/ext/fields")).json()
    assert [k for k in "abcd" if k in emptied] == []
    listed = (await call(client, "GET", f"{ext_path}?expand=true")).json()
    assert [i["name"] for i in listed["items"]] == ["ext"]
    deleted = (await call(client, "DELETE", f"{ext_path}/ext")).json()
    assert deleted["status"] == "DELETED"
    assert_rest_error(await call(client, "GET", f"{ext_path}/ext"), 404)
    assert_rest_error(await call(client, "GET", f"{ext_path}/ext1"), 400, mentions="name: must be ext")


# --- auth ---------------------------------------------------------------------------------------


async def test_read_only_tokens_read_and_cannot_write(client: httpx.AsyncClient) -> None:
    ro = await token(client, "ro")
    rw = await token(client, "rw")
    order = await create_order(client)
    item = await create_item(client, order["ref"])
    for path in (f"/v2.1/orders/{order['ref']}", "/v2.1/orders", f"/v2.1/orderItems/{item['ref']}"):
        assert (await call(client, "GET", path, auth=ro)).status_code == 200
    writes = [
        ("POST", "/v2.1/orders", order_body("PNR-RO")),
        ("PATCH", f"/v2.1/orders/{order['ref']}", {"price": 1}),
        ("PUT", f"/v2.1/orderItems/{item['ref']}", item_body()),
        ("POST", f"/v2.1/orders/{order['ref']}/contact", {"firstName": "J"}),
        ("POST", f"/v2.1/orders/{order['ref']}/extensions/ext", {"a": 1}),
        ("DELETE", f"/v2.1/orders/{order['ref']}", None),
    ]
    for method, path, body in writes:
        assert_rest_error(await call(client, method, path, json=body, auth=ro), 403)
    for method, path, body in writes:
        response = await call(client, method, path, json=body, auth=rw)
        assert response.status_code in (200, 201), (method, path, response.text)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer abc", "Basic !!!", basic("wrong-client-key", "x"), basic(CLIENT_KEY, "bad"), basic(CLIENT_KEY, "")],
    ids=["missing", "bearer", "not base64", "wrong client key", "wrong token", "empty token"],
)
async def test_missing_or_wrong_credentials_are_401(client: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    response = await client.get("/v2.1/orders", headers=headers)
    assert_rest_error(response, 401)
    assert response.headers["www-authenticate"] == 'Basic realm="innkeeper"'
    response = await client.post("/v2.1/orders", json=order_body(), headers=headers)
    assert_rest_error(response, 401)


# --- OpenAPI ------------------------------------------------------------------------------------


def test_openapi_describes_every_order_route() -> None:
    app = FastAPI()
    app.include_router(router)
    schema = get_openapi(title="t", version="1", routes=app.routes)
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert len(operations) == 39  # orders 6, items 6, contact 5, consumers 6, extensions 2 x 8
    for path, method, op in operations:
        responses = op["responses"]
        success = "201" if method == "post" else "200"
        assert success in responses, (path, method)
        content = responses[success]["content"]["application/json"]["schema"]
        assert content, (path, method)
        assert {"401", "403", "404"} <= set(responses), (path, method)
        if method in ("post", "put", "patch"):
            assert {"400", "409", "413", "415"} <= set(responses), (path, method)
            assert "requestBody" in op, (path, method)
        assert op.get("description") or op.get("summary"), (path, method)
    order_schema = schema["components"]["schemas"]["OrderIn"]
    assert order_schema["additionalProperties"] is False
    assert set(order_schema["required"]) == {"referenceId", "orderedAt", "currencyCode", "price"}
    assert "PARTIALY_CONFIRMED" in str(order_schema["properties"]["status"])


def test_uuid_helper_is_v4() -> None:
    assert uuid.UUID(UNKNOWN).version == 4
