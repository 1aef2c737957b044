"""Who may call what: every authenticated route of the app, enumerated from ``app.routes``.

The matrix covers each route the app has when the test runs, so routes added later are
checked without touching this file: no or wrong credentials → 401 with the REST error body,
a read-only token → 403 on every write, an rw token → 403 on every /admin route, a revoked
token → 401 on the very next request. Also the `innkeeper tokens` and `credentials` commands.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from innkeeper.cli import main as innkeeper_cli
from innkeeper.core.auth import hash_token
from tests.conftest import API_TOKEN, CLIENT_KEY, POINT_OF_SALE

# Public by design (spec §1.3): the Stream and edge APIs (client key only), liveness, the schema.
PUBLIC_PREFIXES = ("/v1.2/", "/v1.3/", "/v1/events/", "/docs", "/v2/callFlows", "/v1/personalize", "/personalize/")
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json", "/redoc"})
# The portal signs people in with a session cookie, not Basic credentials (tests/portal covers it).
COOKIE_AUTH_PREFIXES = ("/portal",)
# Self-contained signed URLs carry their own authorisation instead of Basic credentials; they
# are recognised by their ``signature`` query parameter (spec §1.3: batch upload and error-log URLs).
SIGNED_URL_PARAMETER = "signature"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REST_401_MESSAGE = "Authentication credentials are required to access the resource. All requests must be authenticated."


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    signed: bool = False

    @property
    def admin(self) -> bool:
        return self.path.startswith("/admin/")

    def url(self) -> str:
        """The path with every parameter filled: a random UUID, or a value its convertor accepts."""
        return re.sub(r"\{[^}]+\}", _fill, self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


# Path convertors that only match certain values (a UUID would not reach the route at all).
CONVERTOR_SAMPLES = {"extname": "ext1"}


def _fill(match: re.Match[str]) -> str:
    _, _, convertor = match.group(0)[1:-1].partition(":")
    return CONVERTOR_SAMPLES.get(convertor, str(uuid.uuid4()))


def _all_endpoints(app: FastAPI) -> list[Endpoint]:
    found: set[Endpoint] = set()
    # iter_route_contexts flattens included routers into their effective (prefixed) routes.
    for route in iter_route_contexts(app.routes):
        path, methods = route.path, route.methods
        if path and methods:
            endpoint = route.endpoint
            signed = endpoint is not None and SIGNED_URL_PARAMETER in inspect.signature(endpoint).parameters
            found.update(Endpoint(m, path, signed) for m in methods - {"HEAD", "OPTIONS"})
    return sorted(found, key=lambda e: (e.path, e.method))


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) of the app that needs Basic credentials."""
    return [
        e
        for e in _all_endpoints(app)
        if not e.signed
        and e.path not in PUBLIC_PATHS
        and not e.path.startswith(PUBLIC_PREFIXES)
        and not e.path.startswith(COOKIE_AUTH_PREFIXES)
    ]


async def call(client: httpx.AsyncClient, endpoint: Endpoint, headers: dict[str, str]) -> httpx.Response:
    body: dict[str, Any] | None = {} if endpoint.method in {"POST", "PUT", "PATCH"} else None
    return await client.request(endpoint.method, endpoint.url(), json=body, headers=headers)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def assert_rest_error(response: httpx.Response, status: int, endpoint: Endpoint, case: str) -> None:
    where = f"{endpoint} ({case}) -> {response.status_code}: {response.text[:300]}"
    assert response.status_code == status, where
    body = response.json()
    assert body["code"] == status, where
    assert body["status"] == {401: "UNAUTHORIZED", 403: "FORBIDDEN"}[status], where
    assert isinstance(body["message"], str) and body["message"], where
    assert body["moreInfoUrl"].startswith("https://"), where
    if status == 401:
        assert body["message"] == REST_401_MESSAGE, where
        assert response.headers.get("www-authenticate", "").lower().startswith("basic"), where


async def create_token(client: httpx.AsyncClient, scope: str) -> tuple[str, str]:
    response = await client.post(
        "/admin/v1/api-tokens", json={"label": f"{scope} token", "scope": scope}, auth=(CLIENT_KEY, API_TOKEN)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["token"]


async def revoke(client: httpx.AsyncClient, token_id: str) -> None:
    response = await client.delete(f"/admin/v1/api-tokens/{token_id}", auth=(CLIENT_KEY, API_TOKEN))
    assert response.status_code == 204, response.text


def test_the_matrix_sees_the_known_routes(app: FastAPI) -> None:
    found = {str(e) for e in endpoints(app)}
    for known in ("GET /admin/v1/settings", "POST /admin/v1/api-tokens", "DELETE /admin/v1/api-tokens/{token_id}"):
        assert known in found
    assert not any(e.path.startswith("/v1.2/") for e in endpoints(app))


async def test_every_route_refuses_missing_or_wrong_credentials(client: httpx.AsyncClient, app: FastAPI) -> None:
    revoked_id, revoked = await create_token(client, "admin")
    await revoke(client, revoked_id)
    cases = {
        "no credentials": {},
        "wrong token": basic(CLIENT_KEY, "not-the-token"),
        "wrong client key": basic("WrongClientKey0000000000000000000", API_TOKEN),
        "revoked token": basic(CLIENT_KEY, revoked),
        "not Basic": {"Authorization": f"Bearer {API_TOKEN}"},
        "not base64": {"Authorization": "Basic !!!not-base64!!!"},
        "no colon": {"Authorization": "Basic " + base64.b64encode(CLIENT_KEY.encode()).decode()},
        "empty password": basic(CLIENT_KEY, ""),
        "not UTF-8": {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()},
        "scheme only": {"Authorization": "Basic"},
    }
    for endpoint in endpoints(app):
        for case, headers in cases.items():
            assert_rest_error(await call(client, endpoint, headers), 401, endpoint, case)


async def test_signed_url_routes_refuse_unsigned_requests(client: httpx.AsyncClient, app: FastAPI) -> None:
    """The routes left out of the matrix are still closed: without a valid signature → 403."""
    signed = [e for e in _all_endpoints(app) if e.signed]
    for endpoint in signed:
        for headers in ({}, basic(CLIENT_KEY, API_TOKEN)):
            url = endpoint.url() + "?expires=4102444800&signature=0000"
            response = await client.request(endpoint.method, url, content=b"x", headers=headers)
            assert_rest_error(response, 403, endpoint, "bad signature")


async def test_read_only_token_cannot_write(client: httpx.AsyncClient, app: FastAPI) -> None:
    _, token = await create_token(client, "ro")
    for endpoint in endpoints(app):
        response = await call(client, endpoint, basic(CLIENT_KEY, token))
        if endpoint.method in WRITES or endpoint.admin:
            assert_rest_error(response, 403, endpoint, "read-only token")
        else:
            assert response.status_code not in (401, 403), f"{endpoint}: {response.status_code} {response.text}"


async def test_read_write_token_cannot_administer(client: httpx.AsyncClient, app: FastAPI) -> None:
    _, token = await create_token(client, "rw")
    for endpoint in endpoints(app):
        response = await call(client, endpoint, basic(CLIENT_KEY, token))
        if endpoint.admin:
            assert_rest_error(response, 403, endpoint, "rw token")
        else:
            assert response.status_code not in (401, 403), f"{endpoint}: {response.status_code} {response.text}"


async def test_admin_token_passes_authorization_everywhere(client: httpx.AsyncClient, app: FastAPI) -> None:
    for endpoint in endpoints(app):
        if endpoint.path == "/admin/v1/api-tokens/{token_id}":
            continue  # would revoke nothing (random id), but keep the bootstrap token out of harm's way
        response = await call(client, endpoint, basic(CLIENT_KEY, API_TOKEN))
        assert response.status_code not in (401, 403), f"{endpoint}: {response.status_code} {response.text}"


async def test_revoked_token_stops_working_on_the_next_request(client: httpx.AsyncClient) -> None:
    token_id, token = await create_token(client, "admin")
    assert (await client.get("/admin/v1/settings", auth=(CLIENT_KEY, token))).status_code == 200
    # The token revokes itself: the very next request with it is refused.
    assert (await client.delete(f"/admin/v1/api-tokens/{token_id}", auth=(CLIENT_KEY, token))).status_code == 204
    endpoint = Endpoint("GET", "/admin/v1/settings")
    assert_rest_error(await client.get("/admin/v1/settings", auth=(CLIENT_KEY, token)), 401, endpoint, "revoked")
    listed = (await client.get("/admin/v1/api-access", auth=(CLIENT_KEY, API_TOKEN))).json()
    assert token_id not in {t["id"] for t in listed["tokens"]}
    again = await client.delete(f"/admin/v1/api-tokens/{token_id}", auth=(CLIENT_KEY, API_TOKEN))
    assert again.status_code == 404


# --- the command line ------------------------------------------------------------------


@pytest.fixture
def cli_env(db_url: str) -> dict[str, str]:
    # Empty values count as unset: the commands see only this test's database and client key.
    return {
        "INNKEEPER_DATABASE_URL": db_url,
        "INNKEEPER_CLIENT_KEY": CLIENT_KEY,
        "INNKEEPER_API_TOKEN": "",
        "INNKEEPER_POINT_OF_SALE": "",
        "INNKEEPER_ENVIRONMENT": "",
    }


def _invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    # Each command runs its own event loop (asyncio.run), so it runs in a thread of its own.
    result = CliRunner().invoke(innkeeper_cli, list(args), env=env, catch_exceptions=True)
    return result.exit_code, result.output


async def cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    return await asyncio.to_thread(_invoke, env, *args)


async def token_rows(db_url: str) -> list[str]:
    engine = create_async_engine(db_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT * FROM api_tokens"))).all()
    finally:
        await engine.dispose()
    return [" | ".join(str(v) for v in row) for row in rows]


async def test_cli_tokens_create_list_revoke(cli_env: dict[str, str], db_url: str, client: httpx.AsyncClient) -> None:
    code, out = await cli(cli_env, "tokens", "create", "--label", "ci robot", "--scope", "ro")
    assert code == 0, out
    token_id = re.search(r"^id: (\S+)$", out, re.M)
    token = re.search(r"^token: (\S+)$", out, re.M)
    assert token_id and token, out
    token_id_s, token_s = token_id.group(1), token.group(1)

    # Stored hashed: the clear value is nowhere in the table, its SHA-256 is.
    rows = await token_rows(db_url)
    assert not any(token_s in row for row in rows)
    assert any(hash_token(token_s) in row and token_id_s in row for row in rows)

    code, out = await cli(cli_env, "tokens", "list")
    assert code == 0, out
    line = next(line for line in out.splitlines() if token_id_s in line)
    assert "ro" in line and "ci robot" in line and token_s not in out

    # The new read-only token works on reads and is refused on writes.
    assert (await client.get("/admin/v1/settings", auth=(CLIENT_KEY, token_s))).status_code == 403
    created = await client.post("/admin/v1/api-tokens", json={"label": "x", "scope": "ro"}, auth=(CLIENT_KEY, token_s))
    assert created.status_code == 403

    code, out = await cli(cli_env, "tokens", "revoke", token_id_s)
    assert code == 0 and "revoked" in out, out
    assert (await client.get("/admin/v1/settings", auth=(CLIENT_KEY, token_s))).status_code == 401
    code, out = await cli(cli_env, "tokens", "list")
    assert token_id_s not in out
    code, out = await cli(cli_env, "tokens", "revoke", token_id_s)
    assert code != 0


async def test_cli_tokens_create_rejects_an_unknown_scope(cli_env: dict[str, str]) -> None:
    code, out = await cli(cli_env, "tokens", "create", "--label", "x", "--scope", "root")
    assert code == 2 and "root" in out


async def test_cli_credentials_prints_the_client_key_and_points_of_sale(
    cli_env: dict[str, str], db_url: str, client: httpx.AsyncClient
) -> None:
    code, out = await cli(cli_env, "credentials")
    assert code == 0, out
    assert f"client key: {CLIENT_KEY}" in out
    assert f"point of sale: {POINT_OF_SALE} (timeout 20 min)" in out
    # The tenant exists already (the app bootstrapped it), so no token is generated or shown.
    assert "API token" not in out
    rows = await token_rows(db_url)
    assert not any(API_TOKEN in row for row in rows)
    assert any(hash_token(API_TOKEN) in row for row in rows)


async def test_cli_credentials_on_a_new_database_shows_a_generated_token_once(
    cli_env: dict[str, str], db_url: str
) -> None:
    code, out = await cli(cli_env, "credentials")
    assert code == 0, out
    token = re.search(r"^API token:\s+(\S+)", out, re.M)
    assert token, out
    rows = await token_rows(db_url)
    assert len(rows) == 1 and token.group(1) not in rows[0] and hash_token(token.group(1)) in rows[0]
    code, again = await cli(cli_env, "credentials")
    assert code == 0 and token.group(1) not in again and "API token" not in again
