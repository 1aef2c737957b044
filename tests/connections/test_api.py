"""``/v2/connections`` over the ASGI app: create, list, retrieve, update, test; masking, encryption, errors."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from innkeeper.connections import service
from innkeeper.core.runtime import Runtime
from tests.conftest import CLIENT_KEY
from tests.connections.servers import REFUSED, http_receiver, smtp_server
from tests.factories.connections import smtp_document, webhook_document

Auth = tuple[str, str]
MASK = "********"


async def create(client: httpx.AsyncClient, auth: Auth, document: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v2/connections", json=document, auth=auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_row(runtime: Runtime, ref: str) -> tuple[str, str | None]:
    """The raw columns, read in a short session (SQLite has one connection; never hold it)."""
    async with runtime.sessions() as session:
        query = sa.text("SELECT config, secrets FROM connections WHERE ref = :ref")
        row = (await session.execute(query, {"ref": ref})).one()
    return str(row[0]), row[1]


async def test_create_masks_secrets_and_encrypts_them_at_rest(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, data_dir: Path
) -> None:
    response = await client.post("/v2/connections", json=webhook_document(), auth=admin_auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == body["href"] == f"http://testserver/v2/connections/{body['ref']}"
    assert body["revision"] == 1 and body["archived"] is False and body["systemType"] == "DESTINATION"
    assert body["auth"] == {
        "authType": "BASIC",
        "username": "hook-user",
        "password": MASK,
        "tokenUrl": None,
        "clientId": None,
        "clientSecret": None,
        "scope": None,
    }
    assert body["customHeaders"] == [
        {"name": "X-Api-Key", "value": MASK, "secret": True},
        {"name": "X-Team", "value": "crm", "secret": False},
    ]
    assert body["signing"] == {"secret": MASK, "header": "X-Innkeeper-Signature"}
    assert body["request"]["connectionUrl"] == "https://esp.example/v1/send?list=${listId}"
    assert body["connectionTimeout"] == 1000 and body["socketTimeout"] == 5000
    assert body["modifiedByRef"] and body["modifiedAt"] == "2026-01-15T09:00:00.000Z"

    config, secrets = await stored_row(runtime, body["ref"])
    for plaintext in ("hook-pass", "api-key-plaintext", "signing-secret-plaintext"):
        assert plaintext not in config
        assert secrets is not None and plaintext not in secrets
    key_file = data_dir / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    got = await client.get(f"/v2/connections/{body['ref']}", auth=admin_auth)
    assert got.status_code == 200 and got.json() == body


async def test_list_pages_and_hides_archived(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    first = await create(client, admin_auth, smtp_document(name="One"))
    await create(client, admin_auth, smtp_document(name="Two", archived=True))
    listed = await client.get("/v2/connections", params={"limit": 5}, auth=admin_auth)
    assert listed.status_code == 200
    body = listed.json()
    assert body["href"] == "http://testserver/v2/connections?offset=0&limit=5"
    assert body["offset"] == 0 and body["limit"] == 5 and body["total"] == 1
    assert [item["ref"] for item in body["items"]] == [first["ref"]]
    assert body["items"][0]["smtp"]["password"] == MASK
    everything = (await client.get("/v2/connections?archived=true", auth=admin_auth)).json()
    assert everything["total"] == 2 and {i["name"] for i in everything["items"]} == {"One", "Two"}


async def test_update_keeps_masked_secrets_and_bumps_revision(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime
) -> None:
    created = await create(client, admin_auth, webhook_document())
    ref = created["ref"]
    # A GET body sent back as is (secrets masked, read-only fields included) changes nothing secret.
    document = {**created, "description": "now described"}
    updated = await client.put(f"/v2/connections/{ref}", json=document, auth=admin_auth)
    assert updated.status_code == 200, updated.text
    assert updated.json()["revision"] == 2 and updated.json()["description"] == "now described"
    box = service.secret_box(runtime.settings)
    kept = box.open((await stored_row(runtime, ref))[1])
    assert kept == {
        "auth.password": "hook-pass",
        "header:x-api-key": "api-key-plaintext",
        "signing.secret": "signing-secret-plaintext",
    }
    # A new value replaces; dropping signing clears its secret.
    document = {**updated.json(), "auth": {**created["auth"], "password": "new-pass"}, "signing": None}
    replaced = await client.put(f"/v2/connections/{ref}", json=document, auth=admin_auth)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["revision"] == 3 and replaced.json()["signing"] is None
    config, token = await stored_row(runtime, ref)
    assert "new-pass" not in (token or "") and "new-pass" not in config
    assert box.open(token) == {"auth.password": "new-pass", "header:x-api-key": "api-key-plaintext"}


async def test_update_conflicts(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create(client, admin_auth, webhook_document())
    await create(client, admin_auth, smtp_document(name="Taken"))
    url = f"/v2/connections/{created['ref']}"
    stale = await client.put(url, json={**created, "revision": 7}, auth=admin_auth)
    assert stale.status_code == 409 and "revision" in stale.json()["developerMessage"]
    renamed = await client.put(url, json={**created, "name": "Taken"}, auth=admin_auth)
    assert renamed.status_code == 409 and "name" in renamed.json()["developerMessage"]
    rekinded = await client.put(url, json=smtp_document(name="ESP"), auth=admin_auth)
    assert rekinded.status_code == 409 and "kind" in rekinded.json()["developerMessage"]
    duplicate = await client.post("/v2/connections", json=smtp_document(name="Taken"), auth=admin_auth)
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == 409 and duplicate.json()["moreInfoUrl"].startswith("https://")


async def test_masked_secret_without_a_stored_one_is_refused(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    document = webhook_document(auth={"authType": "BASIC", "username": "u", "password": MASK})
    response = await client.post("/v2/connections", json=document, auth=admin_auth)
    assert response.status_code == 400
    assert "auth.password" in response.json()["developerMessage"]


async def test_field_validation_lists_every_problem(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    document = webhook_document(
        url="ftp://files.example/x",
        connectionTimeout=0,
        socketTimeout=999_999,
        customHeaders=[{"name": "Bad Header", "value": "x"}, {"name": "X-Ok", "value": "a\r\nInjected: yes"}],
    )
    document["auth"]["tokenUrl"] = "javascript:alert(1)"
    response = await client.post("/v2/connections", json=document, auth=admin_auth)
    assert response.status_code == 400
    message = response.json()["developerMessage"]
    for where in (
        "request.connectionUrl",
        "connectionTimeout",
        "socketTimeout",
        "customHeaders.0.name",
        "customHeaders.1.value",
        "auth.tokenUrl",
    ):
        assert where in message, (where, message)

    smtp = smtp_document()
    smtp["smtp"].update(port=70000, security="SSL", **{"from": "shop@example.com\r\nBcc: all@example.com"})
    response = await client.post("/v2/connections", json=smtp, auth=admin_auth)
    assert response.status_code == 400
    message = response.json()["developerMessage"]
    for where in ("smtp.port", "smtp.security", "smtp.from"):
        assert where in message, (where, message)


async def test_cross_field_rules_list_every_problem(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    webhook = {
        "name": "Broken",
        "kind": "WEBHOOK",
        "auth": {"authType": "OAUTH2_CLIENT_CREDENTIALS", "username": "x"},
        "smtp": {"host": "mail.example"},
        "signing": {"header": "X-Sig"},
        "customHeaders": [{"name": "Host", "value": "evil"}, {"name": "host", "value": "again"}],
    }
    response = await client.post("/v2/connections", json=webhook, auth=admin_auth)
    assert response.status_code == 400
    message = response.json()["developerMessage"]
    for where in (
        "smtp: not used",
        "request.connectionUrl: required",
        "auth.tokenUrl: required",
        "auth.clientId: required",
        "auth.clientSecret: required",
        "auth.username: not used",
        "signing.secret: required",
        "customHeaders.0.name",
        "customHeaders.1.name: duplicate",
    ):
        assert where in message, (where, message)
    smtp = {"name": "Mail", "kind": "SMTP_EMAIL", "smtp": {"host": "mail.example", "username": "u"}}
    response = await client.post("/v2/connections", json=smtp, auth=admin_auth)
    assert response.status_code == 400 and "smtp.password: required" in response.json()["developerMessage"]
    missing = await client.post("/v2/connections", json={"name": "Mail", "kind": "SMTP_EMAIL"}, auth=admin_auth)
    assert missing.status_code == 400 and "smtp: required" in missing.json()["developerMessage"]


async def test_unknown_refs_are_404(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    for method, url, body in (
        ("GET", "/v2/connections/0b9c8a77-5f0e-4c43-9d0e-2f4d1a7b9c11", None),
        ("GET", "/v2/connections/not-a-ref", None),
        ("PUT", "/v2/connections/0b9c8a77-5f0e-4c43-9d0e-2f4d1a7b9c11", smtp_document()),
        ("POST", "/v2/connections/0b9c8a77-5f0e-4c43-9d0e-2f4d1a7b9c11/test", {}),
    ):
        response = await client.request(method, url, json=body, auth=admin_auth)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["code"] == 404


async def test_scopes(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    created = await create(client, admin_auth, smtp_document())
    tokens = {}
    for scope in ("ro", "rw"):
        made = await client.post("/admin/v1/api-tokens", json={"label": scope, "scope": scope}, auth=admin_auth)
        tokens[scope] = (CLIENT_KEY, made.json()["token"])
    assert (await client.get("/v2/connections", auth=tokens["ro"])).status_code == 200
    assert (await client.get(f"/v2/connections/{created['ref']}", auth=tokens["ro"])).status_code == 200
    refused = await client.post("/v2/connections", json=smtp_document(name="Other"), auth=tokens["ro"])
    assert refused.status_code == 403
    assert (await client.post(f"/v2/connections/{created['ref']}/test", auth=tokens["ro"])).status_code == 403
    assert (
        await client.post("/v2/connections", json=smtp_document(name="Other"), auth=tokens["rw"])
    ).status_code == 201
    anonymous = await client.get("/v2/connections")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].lower().startswith("basic")


async def test_smtp_test_action_authenticates_and_sends(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    with smtp_server() as server:
        created = await create(client, admin_auth, smtp_document(port=server.port))
        url = f"/v2/connections/{created['ref']}/test"
        checked = await client.post(url, auth=admin_auth)
        assert checked.status_code == 200, checked.text
        body = checked.json()
        assert body["success"] is True and body["outcome"] == "sent"
        assert body["steps"] == ["connect", "EHLO", "AUTH"] and body["latencyMs"] >= 0
        assert server.messages == []
        mailed = (await client.post(url, json={"to": "ops@example.com"}, auth=admin_auth)).json()
        assert mailed["success"] is True and mailed["steps"] == ["connect", "EHLO", "AUTH", "send"]
        assert len(server.messages) == 1 and server.messages[0].rcpt_tos == ["ops@example.com"]
        assert server.messages[0].message["Subject"] == "Innkeeper test email"
        refused = (await client.post(url, json={"to": REFUSED}, auth=admin_auth)).json()
        assert refused["success"] is False and refused["outcome"] == "permanent" and refused["statusCode"] == 550
        assert REFUSED not in (refused["message"] or "")
        wrong = dict(created, smtp={**created["smtp"], "password": "wrong"})
        assert (await client.put(f"/v2/connections/{created['ref']}", json=wrong, auth=admin_auth)).status_code == 200
        denied = (await client.post(url, auth=admin_auth)).json()
        assert denied["success"] is False and denied["outcome"] == "permanent" and denied["statusCode"] == 535
    down = (await client.post(url, auth=admin_auth)).json()
    assert down["success"] is False and down["outcome"] == "retryable" and down["steps"] == []
    invalid = await client.post(url, json={"to": "not an address"}, auth=admin_auth)
    assert invalid.status_code == 400


async def test_webhook_test_action_reports_status_and_latency(client: httpx.AsyncClient, admin_auth: Auth) -> None:
    with http_receiver() as receiver:
        created = await create(client, admin_auth, webhook_document(url=receiver.url("/basic?list=${listId}")))
        url = f"/v2/connections/{created['ref']}/test"
        body = (await client.post(url, auth=admin_auth)).json()
        assert body["success"] is True and body["statusCode"] == 200 and body["steps"] == ["request"]
        hit = receiver.on("/basic")[0]
        assert hit.path == "/basic?list=listId"
        assert b'"type": "innkeeper.connection.test"' in hit.body
        assert hit.headers["x-api-key"] == "api-key-plaintext" and hit.headers["x-innkeeper-signature"].startswith("t=")
        failing = webhook_document(name="Failing", url=receiver.url("/status/500"))
        ref = (await create(client, admin_auth, failing))["ref"]
        body = (await client.post(f"/v2/connections/{ref}/test", json={"body": "{}"}, auth=admin_auth)).json()
        assert body["success"] is False and body["outcome"] == "retryable" and body["statusCode"] == 500
        assert receiver.on("/status/500")[0].body == b"{}"
