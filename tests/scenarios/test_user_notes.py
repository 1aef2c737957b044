"""The user's notes, end to end over plain HTTP against a real `innkeeper serve`.

Browser id by GET → VIEW by GET (as `curl -g` sends it, and as Python's http.client
snippet percent-encodes it) → IDENTITY with an email → ADD (price 120.0, quantity 1) →
FORCE_CLOSE → the timeline shows the abandoned cart; in production FORCE_CLOSE is refused.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.support.database import run_sync
from tests.support.live import LiveServer, live_server

POS = "pastoral-witty-grill"


@pytest.fixture
def dev_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(db_url, tmp_path, pos=POS) as server:
        yield server


@pytest.fixture
def prod_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(db_url, tmp_path, pos=POS, environment="production") as server:
        yield server


def _get(server: LiveServer, path_and_query: str) -> tuple[int, dict[str, Any]]:
    """A raw http.client GET: the path goes on the wire exactly as given."""
    parts = urlsplit(server.base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    try:
        conn.request("GET", path_and_query, "", {})
        response = conn.getresponse()
        body: dict[str, Any] = json.loads(response.read())
        return response.status, body
    finally:
        conn.close()


def _curl_g(server: LiveServer, path_and_query: str) -> tuple[int, dict[str, Any]]:
    """The notes' `curl --location -g --request GET '…'` command, with real curl."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not found: apt-get install -y curl")
    out = subprocess.run(
        [curl, "--location", "-g", "-s", "-w", "\n%{http_code}", "--request", "GET", server.base_url + path_and_query],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = out.stdout.rpartition("\n")
    return int(status), json.loads(body)


def _message(browser_id: str, type_: str, **extra: Any) -> dict[str, Any]:
    return {
        "channel": "WEB",
        "type": type_,
        "language": "EN",
        "currency": "GBP",
        "page": "home page",
        "pos": POS,
        "browser_id": browser_id,
        **extra,
    }


def _postman(server: LiveServer, message: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Postman: `JSON.stringify(message)` put into the URL and percent-encoded."""
    encoded = quote(json.dumps(message, separators=(",", ":")), safe="")
    return _get(server, f"/v1.2/event/create.json?client_key={server.client_key}&message={encoded}")


def _outbox_count(db_url: str, session_ref: str) -> int:
    counted: list[int] = []

    async def count() -> None:
        engine = create_async_engine(db_url, poolclass=NullPool)
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT payload FROM outbox WHERE topic = 'session.closed'"))).all()
        await engine.dispose()
        payloads = [r[0] if isinstance(r[0], dict) else json.loads(r[0]) for r in rows]
        counted.append(sum(1 for p in payloads if p["sessionRef"] == session_ref))

    run_sync(count)
    return counted[0]


def test_abandoned_cart_with_force_close(dev_server: LiveServer, db_url: str) -> None:
    key = dev_server.client_key
    status, browser = _get(dev_server, f"/v1.2/browser/create.json?client_key={key}&message={{}}")
    assert status == 201
    browser_id = browser["ref"]

    # VIEW exactly as the notes' curl command sends it: raw JSON in the query. (curl refuses
    # a literal space in a URL — exit code 3 before any request — so that page is "home".)
    raw = json.dumps(_message(browser_id, "VIEW", page="home"), separators=(",", ":"))
    status, body = _curl_g(dev_server, f"/v1.2/event/create.json?client_key={key}&message={raw}")
    assert status == 201, body
    assert body["ref"] == browser_id

    # VIEW as the notes' Python http.client snippet writes it (only some characters encoded).
    snippet = (
        f"/v1.2/event/create.json?client_key={key}&message=%7B%22channel%22:%22WEB%22,%22type%22:%22VIEW%22,"
        "%22language%22:%22EN%22,%22currency%22:%22GBP%22,%22page%22:%22home%20page%22,"
        f"%22pos%22:%22{POS}%22,%22browser_id%22:%22{browser_id}%22%7D"
    )
    status, body = _get(dev_server, snippet)
    assert status == 201, body

    status, body = _postman(dev_server, _message(browser_id, "IDENTITY", email="jane.doe@example.com"))
    assert status == 201, body
    guest_ref = body["customer_ref"]

    product = {
        "type": "SHOES",
        "item_id": "SHOES_8475GHT",
        "name": "Running shoes",
        "orderedAt": "2026-01-15T09:00",
        "quantity": 1,
        "price": 120.0,
        "productId": "SHOES",
        "currency": "GBP",
        "referenceId": "SHOES-1",
    }
    status, body = _postman(dev_server, _message(browser_id, "ADD", product=product))
    assert status == 201, body

    status, body = _postman(dev_server, _message(browser_id, "FORCE_CLOSE"))
    assert status == 201, body

    with dev_server.admin() as admin:
        timeline = admin.get(f"/admin/v1/guests/{guest_ref}/timeline").json()
        events = admin.get(f"/admin/v1/guests/{guest_ref}/events").json()
    assert timeline["guest"]["guestType"] == "customer"
    assert timeline["guest"]["email"] == "jane.doe@example.com"
    [session] = timeline["items"]
    assert session["status"] == "CLOSED"
    assert session["closeReason"] == "FORCE_CLOSE"
    assert session["cartType"] == "ABANDONED"
    assert session["abandonedRevenue"] == 120.0
    assert [e["type"] for e in session["events"]] == ["VIEW", "VIEW", "IDENTITY", "ADD", "FORCE_CLOSE"]
    assert session["firstPageUri"] == "home" and session["lastPageUri"] == "home page"
    # The debug event viewer shows each event's exact JSON (debug is on in development).
    raw_views = [e["raw"] for e in events["items"] if e["type"] == "VIEW"]
    assert any('"page":"home page"' in r for r in raw_views)
    assert _outbox_count(db_url, session["ref"]) == 1


def test_force_close_is_refused_in_production(prod_server: LiveServer, db_url: str) -> None:
    key = prod_server.client_key
    status, browser = _get(prod_server, f"/v1.2/browser/create.json?client_key={key}&message={{}}")
    browser_id = browser["ref"]
    product = {"type": "SHOES", "item_id": "S1", "name": "Shoes", "quantity": 1, "price": 120.0, "currency": "GBP"}
    status, body = _postman(prod_server, _message(browser_id, "ADD", product=product))
    assert status == 201, body
    guest_ref = body["customer_ref"]

    status, body = _postman(prod_server, _message(browser_id, "FORCE_CLOSE"))
    assert status == 400
    assert body["status"] == "BAD_REQUEST"
    assert body["error_msg"] == "FORCE_CLOSE is not supported in production environments"

    with prod_server.admin() as admin:
        timeline = admin.get(f"/admin/v1/guests/{guest_ref}/timeline").json()
    [session] = timeline["items"]
    assert session["status"] == "OPEN"
    assert session["cartType"] is None
    assert [e["type"] for e in session["events"]] == ["ADD"]
    assert _outbox_count(db_url, session["ref"]) == 0
