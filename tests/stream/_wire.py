"""Wire-level helpers for the Stream tests: byte-exact query strings, the error shape, stored rows.

httpx re-encodes ``"`` (and a few other characters) in the query string, so it cannot send what
``curl -g`` or ``http.client`` put on the wire. ``RawQuery`` wraps the ASGI app: a request that
carries the ``x-test-raw-query`` header gets that header's bytes as its query string, untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from innkeeper.sessions.models import Event, Session
from tests.conftest import CLIENT_KEY

RAW_QUERY_HEADER = b"x-test-raw-query"
JSON_TYPE = "application/json;charset=UTF-8"
JS_TYPE = "application/javascript;charset=UTF-8"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
STATUS_NAMES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 404: "NOT_FOUND", 413: "PAYLOAD_TOO_LARGE"}
MORE_INFO = "https://innkeeper.dev/errors/stream#"
EVENT_GET = "/v1.2/event/create.json"
EVENT_POST = "/v1.2/events"
EDGE_POST = "/v1/events/v1.2/events?sitecoreContextId=x&siteId=y"

Transport = Literal["get", "post", "edge"]
TRANSPORTS: tuple[Transport, ...] = ("get", "post", "edge")


class RawQuery:
    """ASGI wrapper: replace the query string with the ``x-test-raw-query`` header's bytes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers: list[tuple[bytes, bytes]] = list(scope["headers"])
            raw = [value for name, value in headers if name == RAW_QUERY_HEADER]
            if raw:
                scope = {
                    **scope,
                    "query_string": raw[0],
                    "headers": [(name, value) for name, value in headers if name != RAW_QUERY_HEADER],
                }
        await self.app(scope, receive, send)


async def _never_5xx(response: httpx.Response) -> None:
    if response.status_code >= 500:
        await response.aread()
        raise AssertionError(f"{response.request.url} -> {response.status_code}: {response.text}")


@asynccontextmanager
async def raw_client(app: ASGIApp) -> AsyncIterator[httpx.AsyncClient]:
    """An AsyncClient on the app that can send byte-exact query strings (see ``raw_get``)."""
    transport = httpx.ASGITransport(app=RawQuery(app), raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", event_hooks={"response": [_never_5xx]}
    ) as client:
        yield client


async def raw_get(
    client: httpx.AsyncClient, path: str, query: bytes | str, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    """GET ``path?query`` with the query bytes exactly as given (needs a ``raw_client``)."""
    data = query.encode("utf-8") if isinstance(query, str) else query
    sent = [(name.encode(), value.encode()) for name, value in (headers or {}).items()]
    return await client.get(path, headers=[*sent, (RAW_QUERY_HEADER, data)])


async def get(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET ``url`` with its query string sent byte-for-byte (needs a ``raw_client``)."""
    path, _, query = url.partition("?")
    return await raw_get(client, path, query)


def encoded(text: str | bytes) -> str:
    """Percent-encode everything but unreserved characters, as ``encodeURIComponent`` does."""
    return quote(text, safe="-_.!~*'()")


async def send_text(
    client: httpx.AsyncClient, transport: Transport, text: bytes, *, key: str | None = CLIENT_KEY
) -> httpx.Response:
    """Send ``text`` as the message: GET ``message=`` (encoded), or the POST body (key in the query).

    Needs a ``raw_client``.
    """
    if transport == "get":
        prefix = f"client_key={key}&" if key is not None else ""
        # Through the raw header: httpx refuses URLs over 64 KB, and we need to send bigger ones.
        return await raw_get(client, EVENT_GET, f"{prefix}message={encoded(text)}")
    if transport == "post":
        url = EVENT_POST + (f"?client_key={key}" if key is not None else "")
        return await client.post(url, content=text, headers={"content-type": "application/json"})
    return await client.post(EDGE_POST, content=text, headers={"content-type": "application/json"})


async def send(
    client: httpx.AsyncClient, transport: Transport, message: dict[str, Any], *, key: str | None = CLIENT_KEY
) -> httpx.Response:
    """Send an event as each SDK would: GET query, POST with the key in the body, edge with empty keys."""
    if transport == "get":
        text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)  # as JSON.stringify
        return await send_text(client, "get", text.encode(), key=key)
    if transport == "post":
        body = {"client_key": key, **message} if key is not None else message
        return await client.post(EVENT_POST, json=body)
    return await client.post(EDGE_POST, json={"client_key": "", **message})


def assert_stream_error(
    response: httpx.Response, status: int, error_msg: str | None, *, client_key: str | set[str] = CLIENT_KEY
) -> dict[str, Any]:
    """The exact Stream error shape of spec §1.7 (``error_msg=None``: any non-empty message)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON_TYPE
    body: dict[str, Any] = response.json()
    assert list(body) == ["status", "version", "client_key", "error_msg", "moreInfo"], body
    assert body["status"] == STATUS_NAMES[status]
    assert body["version"] == "1.2"
    if isinstance(client_key, set):
        assert body["client_key"] in client_key, body
    else:
        assert body["client_key"] == client_key, body
    if error_msg is None:
        assert isinstance(body["error_msg"], str), body
        assert body["error_msg"], body
    else:
        assert body["error_msg"] == error_msg, body
    assert isinstance(body["moreInfo"], str), body
    assert body["moreInfo"].startswith(MORE_INFO), body
    return body


def jsonp_body(response: httpx.Response, callback: str) -> dict[str, Any]:
    """The object inside ``callback(<json>);`` (always HTTP 200, spec §1.6)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == JS_TYPE
    assert response.headers["x-content-type-options"] == "nosniff"
    text = response.text
    assert text.startswith(callback + "("), text
    assert text.endswith(");"), text
    body: dict[str, Any] = json.loads(text[len(callback) + 1 : -2])
    return body


def assert_ok(
    response: httpx.Response, *, browser: dict[str, Any], status: int = 201, customer_ref: str | None = "browser's"
) -> dict[str, Any]:
    """The event success body of spec §3.4 (``customer_ref=None``: any guest, e.g. after an identity merge)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == JSON_TYPE
    body: dict[str, Any] = response.json()
    assert set(body) == {"status", "version", "client_key", "ref", "customer_ref", "event_ref"}, body
    assert body["status"] == "OK"
    assert body["version"] == "1.2"
    assert body["client_key"] == CLIENT_KEY
    assert body["ref"] == browser["ref"]
    if customer_ref is None:
        assert UUID4.match(body["customer_ref"]), body
    else:
        assert body["customer_ref"] == browser["customer_ref"], body
    assert UUID4.match(body["event_ref"]), body
    return body


@dataclass(frozen=True, slots=True)
class Stored:
    """How many events and sessions the database holds."""

    events: int
    sessions: int


async def stored(db: AsyncSession) -> Stored:
    """Count events and sessions in a fresh transaction (so the app's latest commits are visible)."""
    await db.rollback()
    events = (await db.execute(select(func.count()).select_from(Event))).scalar_one()
    sessions = (await db.execute(select(func.count()).select_from(Session))).scalar_one()
    await db.rollback()
    return Stored(events=events, sessions=sessions)


async def stored_event(db: AsyncSession, ref: str) -> Event:
    """The stored event row."""
    await db.rollback()
    row = (await db.execute(select(Event).where(Event.ref == ref))).scalar_one()
    db.expunge(row)  # detached, so a later rollback does not expire what the test reads
    await db.rollback()
    return row


NOTHING = Stored(events=0, sessions=0)
