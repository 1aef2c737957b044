"""Guest REST auth (spec §1.3, §1.7): Basic credentials, ro/rw scopes; and the OpenAPI description."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import CLIENT_KEY

Auth = tuple[str, str]
GUEST = "f7aabbca-1c1b-4fc2-be72-3e16294a4f03"
BODY = {"guestType": "customer"}
# (method, path, body): every guest and extension route.
Route = tuple[str, str, dict[str, Any] | None]
READS: list[Route] = [
    ("GET", "/v2.1/guests", None),
    ("GET", f"/v2.1/guests/{GUEST}", None),
    ("GET", f"/v2.1/guests/{GUEST}/extensions", None),
    ("GET", f"/v2.1/guests/{GUEST}/extensions/ext", None),
    ("GET", f"/v2.1/guests/{GUEST}/ext", None),
    ("GET", "/v2/guests", None),
    ("GET", f"/v2/guests/{GUEST}", None),
]
WRITES: list[Route] = [
    ("POST", "/v2.1/guests", BODY),
    ("PUT", f"/v2.1/guests/{GUEST}", BODY),
    ("PATCH", f"/v2.1/guests/{GUEST}", BODY),
    ("DELETE", f"/v2.1/guests/{GUEST}", None),
    ("POST", f"/v2.1/guests/{GUEST}/extensions", {"name": "ext", "a": 1}),
    ("PUT", f"/v2.1/guests/{GUEST}/extensions/ext", {"a": 1}),
    ("PATCH", f"/v2.1/guests/{GUEST}/extensions/ext", {"a": 1}),
    ("DELETE", f"/v2.1/guests/{GUEST}/extensions/ext", None),
    ("DELETE", f"/v2.1/guests/{GUEST}/extensions/ext/fields", None),
    ("POST", "/v2/guests", BODY),
    ("PUT", f"/v2/guests/{GUEST}", BODY),
    ("POST", f"/v2/guests/{GUEST}", BODY),
    ("DELETE", f"/v2/guests/{GUEST}", None),
]


async def token(client: httpx.AsyncClient, admin_auth: Auth, scope: str) -> Auth:
    response = await client.post("/admin/v1/api-tokens", json={"label": scope, "scope": scope}, auth=admin_auth)
    assert response.status_code == 201, response.text
    return (CLIENT_KEY, response.json()["token"])


@pytest.mark.parametrize(("method", "path", "body"), READS + WRITES)
async def test_every_route_needs_credentials(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    for auth in (None, (CLIENT_KEY, "wrong-token"), ("wrong-client-key", "x")):
        response = await client.request(method, path, json=body, auth=auth)
        assert response.status_code == 401, (auth, response.text)
        assert response.json()["status"] == "UNAUTHORIZED"
        assert response.headers["www-authenticate"] == 'Basic realm="innkeeper"'


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_read_only_tokens_cannot_write(
    client: httpx.AsyncClient, admin_auth: Auth, method: str, path: str, body: dict[str, Any] | None
) -> None:
    ro = await token(client, admin_auth, "ro")
    response = await client.request(method, path, json=body, auth=ro)
    assert response.status_code == 403, response.text
    assert response.json()["status"] == "FORBIDDEN"


@pytest.mark.parametrize(("method", "path", "body"), READS)
async def test_read_only_tokens_can_read(
    client: httpx.AsyncClient, admin_auth: Auth, method: str, path: str, body: dict[str, Any] | None
) -> None:
    ro = await token(client, admin_auth, "ro")
    response = await client.request(method, path, json=body, auth=ro)
    assert response.status_code in (200, 404), response.text


async def test_read_write_tokens_can_write(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    rw = await token(client, admin_auth, "rw")
    created = await client.post("/v2.1/guests", json=BODY, auth=rw)
    assert created.status_code == 201
    ref = created.json()["ref"]
    ext = await client.post(f"/v2.1/guests/{ref}/extensions", json={"name": "ext", "a": 1}, auth=rw)
    assert ext.status_code == 201
    deleted = await client.delete(f"/v2.1/guests/{ref}", auth=rw)
    assert deleted.status_code == 200


async def test_revoked_tokens_stop_working(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    rw = await token(client, admin_auth, "rw")
    access = await client.get("/admin/v1/api-access", auth=admin_auth)
    token_id = next(t["id"] for t in access.json()["tokens"] if t["label"] == "rw")
    assert (await client.delete(f"/admin/v1/api-tokens/{token_id}", auth=admin_auth)).status_code == 204
    assert (await client.get("/v2.1/guests", auth=rw)).status_code == 401


async def test_openapi_describes_every_route_with_schemas_and_errors(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        "/v2.1/guests": {"get", "post"},
        "/v2.1/guests/{guest_ref}": {"get", "put", "patch", "delete"},
        "/v2.1/guests/{guest_ref}/extensions": {"get", "post"},
        "/v2.1/guests/{guest_ref}/extensions/{name}": {"get", "put", "patch", "delete"},
        "/v2.1/guests/{guest_ref}/extensions/{name}/fields": {"delete"},
        "/v2.1/guests/{guest_ref}/{name}": {"get"},
        "/v2/guests": {"get", "post"},
        "/v2/guests/{guest_ref}": {"get", "put", "post", "delete"},
    }
    for path, methods in expected.items():
        assert set(paths[path]) == methods, path
        for method in methods:
            operation = paths[path][method]
            assert operation.get("description") or operation.get("summary"), (path, method)
            assert {"200", "201"} & set(operation["responses"]), (path, method)
            assert {"401", "403"} <= set(operation["responses"]), (path, method)
            if method in ("post", "put", "patch"):
                assert "requestBody" in operation, (path, method)
                assert {"400", "415"} <= set(operation["responses"]), (path, method)
    create = paths["/v2.1/guests"]["post"]
    json_type = "application/json;charset=UTF-8"
    assert create["responses"]["201"]["content"][json_type]["schema"] == {"$ref": "#/components/schemas/GuestOut"}
    assert create["responses"]["409"]["content"][json_type]["schema"] == {"$ref": "#/components/schemas/RestError"}
    assert "guestType" in spec["components"]["schemas"]["GuestIn"]["properties"]
    assert spec["components"]["schemas"]["GuestIn"]["additionalProperties"] is False
