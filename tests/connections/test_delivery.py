"""``deliver``: real SMTP (aiosmtpd) and HTTP receivers, classified results, signatures, OAuth2."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest

from innkeeper.connections.service import Outbound, RenderedRequest, deliver
from innkeeper.core.runtime import Runtime
from tests.connections.servers import (
    OAUTH_CLIENT,
    OAUTH_SECRET,
    REFUSED,
    TEMPORARY,
    free_port,
    http_receiver,
    smtp_server,
)
from tests.connections.test_api import create
from tests.factories.connections import smtp_document, webhook_document
from tests.support.clock import FrozenClock

Auth = tuple[str, str]


@pytest.fixture
def outbound(runtime: Runtime, clock: FrozenClock) -> Outbound:
    return Outbound.from_settings(runtime.settings, clock=clock)


def email(**fields: Any) -> RenderedRequest:
    body = {"to": "Guest <guest@example.com>", "subject": "You left 2 items in your cart", **fields}
    return RenderedRequest(body=json.dumps(body), idempotency_key="outbox-42")


async def test_smtp_delivers_a_multipart_email(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, outbound: Outbound
) -> None:
    with smtp_server() as server:
        ref = (await create(client, admin_auth, smtp_document(port=server.port)))["ref"]
        rendered = email(
            cc=["cc@example.com"],
            bcc="hidden@example.com",
            replyTo="help@example.com",
            html="<p>Hello Ana,</p><ul><li>Mug × 2 — 9.5 EUR</li></ul>",
            text="Hello Ana,\n- Mug x 2 - 9.5 EUR\n",
            headers={"List-Unsubscribe": "<https://shop.example/unsubscribe>"},
        )
        result = await deliver(runtime.sessions, ref, rendered, outbound=outbound)
        assert result.ok, result
        assert result.reason == "accepted" and result.latency_ms > 0
        [received] = server.messages
    assert received.mail_from == "shop@example.com"
    assert sorted(received.rcpt_tos) == ["cc@example.com", "guest@example.com", "hidden@example.com"]
    message = received.message
    assert message["Subject"] == "You left 2 items in your cart"
    assert message["From"] == "Shop <shop@example.com>" and message["To"] == "Guest <guest@example.com>"
    assert message["Cc"] == "cc@example.com" and message["Reply-To"] == "help@example.com"
    assert message["Bcc"] is None
    assert message["Message-ID"] == "<outbox-42@example.com>"
    assert message["List-Unsubscribe"] == "<https://shop.example/unsubscribe>"
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and "Mug x 2" in plain.get_content()
    assert html is not None and "<li>Mug × 2 — 9.5 EUR</li>" in html.get_content()


async def test_smtp_html_only_gets_a_text_part(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, outbound: Outbound
) -> None:
    with smtp_server() as server:
        ref = (await create(client, admin_auth, smtp_document(port=server.port)))["ref"]
        result = await deliver(runtime.sessions, ref, email(html="<p>Hi</p><p>Total: 19</p>"), outbound=outbound)
        assert result.ok, result
        plain = server.messages[0].message.get_body(("plain",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n") == "Hi\n\nTotal: 19\n"


async def test_smtp_failures_are_classified(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, outbound: Outbound
) -> None:
    with smtp_server() as server:
        ref = (await create(client, admin_auth, smtp_document(port=server.port)))["ref"]
        refused = await deliver(runtime.sessions, ref, email(to=REFUSED, text="x"), outbound=outbound)
        assert refused.permanent and refused.status_code == 550
        assert refused.reason == "SMTP 550 5.1.1 recipient refused"  # no address in the reason
        later = await deliver(runtime.sessions, ref, email(to=TEMPORARY, text="x"), outbound=outbound)
        assert later.retryable and later.status_code == 450
        nobody = await deliver(runtime.sessions, ref, email(to=[], text="x"), outbound=outbound)
        assert nobody.outcome == "skipped"
        for body, reason in (
            ("not json", "not valid JSON"),
            (json.dumps({"to": "a@example.com", "text": "x"}), "subject"),
            (json.dumps({"to": "a@example.com", "subject": "s"}), "html or text"),
            (json.dumps({"to": "a@example.com\r\nBcc: x@example.com", "subject": "s", "text": "x"}), "line breaks"),
            (json.dumps({"to": "a@example.com", "subject": "s\r\nBcc: x@example.com", "text": "x"}), "line breaks"),
            (
                json.dumps({"to": "a@example.com", "subject": "s", "text": "x", "headers": {"Bcc": "x"}}),
                "cannot be set",
            ),
        ):
            result = await deliver(runtime.sessions, ref, RenderedRequest(body=body), outbound=outbound)
            assert result.permanent and reason in (result.reason or ""), (body, result)
        assert server.messages == []
    down = await deliver(runtime.sessions, ref, email(text="x"), outbound=outbound)
    assert down.retryable and down.reason == "connection failed"
    missing = await deliver(runtime.sessions, "0b9c8a77-5f0e-4c43-9d0e-2f4d1a7b9c11", email(), outbound=outbound)
    assert missing.permanent and missing.reason == "connection not found"


async def test_smtp_server_down_is_retryable(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, outbound: Outbound
) -> None:
    ref = (await create(client, admin_auth, smtp_document(port=free_port())))["ref"]
    result = await deliver(runtime.sessions, ref, email(text="x"), outbound=outbound)
    assert result.retryable and result.reason == "connection failed"


async def test_null_and_console_email_senders(
    client: httpx.AsyncClient,
    admin_auth: Auth,
    runtime: Runtime,
    clock: FrozenClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = (await create(client, admin_auth, smtp_document(port=free_port())))["ref"]
    null = Outbound(secrets=outbound_secrets(runtime), clock=clock, email_mode="null")
    assert (await deliver(runtime.sessions, ref, email(text="x"), outbound=null)).ok
    console = Outbound(secrets=outbound_secrets(runtime), clock=clock, email_mode="console")
    assert (await deliver(runtime.sessions, ref, email(text="Hello"), outbound=console)).ok
    printed = capsys.readouterr().out
    assert "Subject: You left 2 items in your cart" in printed and "Hello" in printed


def outbound_secrets(runtime: Runtime) -> Any:
    return Outbound.from_settings(runtime.settings, clock=FrozenClock()).secrets


def verify(secret: str, header: str, body: bytes) -> int:
    """The receiver side of docs/connections.md: check ``t=…,v1=…`` and return the timestamp."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    return int(parts["t"])


async def test_webhook_delivers_a_signed_json_body(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, outbound: Outbound, clock: FrozenClock
) -> None:
    with http_receiver() as receiver:
        document = webhook_document(url=receiver.url("/basic?list=${listId}"))
        ref = (await create(client, admin_auth, document))["ref"]
        body = json.dumps({"email": "ana@example.com", "items": [{"name": "Mug", "quantity": 2}]})
        rendered = RenderedRequest(
            body=body,
            headers={"X-Flow": "abandoned_cart"},
            render=lambda text: text.replace("${listId}", "42"),
            idempotency_key="outbox-7",
            attempt=3,
        )
        result = await deliver(runtime.sessions, ref, rendered, outbound=outbound)
        assert result.ok and result.status_code == 200, result
        [hit] = receiver.on("/basic")
    assert hit.method == "POST" and hit.path == "/basic?list=42"
    assert json.loads(hit.body) == json.loads(body)
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["x-api-key"] == "api-key-plaintext" and hit.headers["x-team"] == "crm"
    assert hit.headers["x-flow"] == "abandoned_cart"
    assert hit.headers["idempotency-key"] == "outbox-7" and hit.headers["x-innkeeper-delivery-attempt"] == "3"
    stamp = verify("signing-secret-plaintext", hit.headers["x-innkeeper-signature"], hit.body)
    assert stamp == int(clock.now().timestamp())
    with pytest.raises(AssertionError):
        verify("another-secret", hit.headers["x-innkeeper-signature"], hit.body)


async def test_webhook_statuses_are_classified(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, outbound: Outbound
) -> None:
    with http_receiver() as receiver:
        expectations = {
            "/status/500": ("retryable", 500),
            "/status/503": ("retryable", 503),
            "/status/429": ("retryable", 429),
            "/status/408": ("retryable", 408),
            "/status/400": ("permanent", 400),
            "/status/404": ("permanent", 404),
            "/status/302": ("permanent", 302),
            "/status/204": ("sent", 204),
        }
        for index, (path, (outcome, status)) in enumerate(expectations.items()):
            document = webhook_document(name=f"Hook {index}", url=receiver.url(path), signing=None)
            ref = (await create(client, admin_auth, document))["ref"]
            result = await deliver(runtime.sessions, ref, RenderedRequest(body="{}"), outbound=outbound)
            assert (result.outcome, result.status_code) == (outcome, status), (path, result)
            if status == 429:
                assert result.retry_after == 120
            if status in (500, 400):
                assert result.response_excerpt == '{"error": "as requested"}'
        wrong = webhook_document(name="Wrong password", url=receiver.url("/basic"))
        wrong["auth"]["password"] = "nope"
        ref = (await create(client, admin_auth, wrong))["ref"]
        denied = await deliver(runtime.sessions, ref, RenderedRequest(body="{}"), outbound=outbound)
        assert denied.permanent and denied.status_code == 401


async def test_webhook_timeouts_and_refused_connections_are_retryable(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, outbound: Outbound
) -> None:
    with http_receiver() as receiver:
        slow = webhook_document(name="Slow", url=receiver.url("/slow"), socketTimeout=200)
        ref = (await create(client, admin_auth, slow))["ref"]
        result = await deliver(runtime.sessions, ref, RenderedRequest(body="{}"), outbound=outbound)
        assert result.retryable and result.reason == "timed out"
    closed = webhook_document(name="Closed", url=f"http://127.0.0.1:{free_port()}/hook")
    ref = (await create(client, admin_auth, closed))["ref"]
    result = await deliver(runtime.sessions, ref, RenderedRequest(body="{}"), outbound=outbound)
    assert result.retryable and result.reason == "connection failed"


async def test_webhook_oauth2_client_credentials_token_is_cached(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, outbound: Outbound, clock: FrozenClock
) -> None:
    with http_receiver() as receiver:
        auth = {
            "authType": "OAUTH2_CLIENT_CREDENTIALS",
            "tokenUrl": receiver.url("/token"),
            "clientId": OAUTH_CLIENT,
            "clientSecret": OAUTH_SECRET,
            "scope": "send",
        }
        document = webhook_document(url=receiver.url("/protected"), auth=auth, customHeaders=[])
        ref = (await create(client, admin_auth, document))["ref"]
        for _ in range(3):
            result = await deliver(runtime.sessions, ref, RenderedRequest(body="{}"), outbound=outbound)
            assert result.ok, result
        assert receiver.token_requests == 1
        assert {h.headers["authorization"] for h in receiver.on("/protected")} == {"Bearer token-1"}
        # Revoked early: the 401 refreshes the token once and the request goes through.
        receiver.revoked.add("token-1")
        assert (await deliver(runtime.sessions, ref, RenderedRequest(body="{}"), outbound=outbound)).ok
        assert receiver.token_requests == 2
        # Expired: a new token is fetched before sending.
        clock.advance(hours=1)
        assert (await deliver(runtime.sessions, ref, RenderedRequest(body="{}"), outbound=outbound)).ok
        assert receiver.token_requests == 3
        bad = dict(auth, clientSecret="wrong-secret")
        bad_document = webhook_document(name="Bad", url=receiver.url("/protected"), auth=bad, customHeaders=[])
        ref = (await create(client, admin_auth, bad_document))["ref"]
        refused = await deliver(runtime.sessions, ref, RenderedRequest(body="{}"), outbound=outbound)
        assert refused.permanent and refused.reason == "token endpoint answered 401"


async def test_webhook_refuses_unsendable_renders(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, outbound: Outbound
) -> None:
    ref = (await create(client, admin_auth, webhook_document()))["ref"]
    unrendered = await deliver(runtime.sessions, ref, RenderedRequest(body="{}"), outbound=outbound)
    assert unrendered.permanent and "URL" in (unrendered.reason or "")
    injected = RenderedRequest(body="{}", render=lambda t: t.replace("${listId}", "1"), headers={"X-A": "a\r\nB: c"})
    result = await deliver(runtime.sessions, ref, injected, outbound=outbound)
    assert result.permanent and "line break" in (result.reason or "")
