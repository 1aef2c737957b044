"""The hot routes' shortcut (http.hot): the same answers as through FastAPI, without FastAPI's layers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from innkeeper.http.hot import InnkeeperAPI
from innkeeper.stream import api as stream_api
from tests.conftest import CLIENT_KEY

HOT = [
    ("POST", "/v1.2/events"),
    ("POST", "/v1/events/v1.2/events"),
    ("GET", "/v1.2/event/create.json"),
    ("GET", "/v1.2/browser/create.json"),
    ("POST", "/v2/callFlows"),
]


def _router_spy(app: FastAPI) -> list[str]:
    """Paths that went through FastAPI's own middleware stack and router (which the shortcut skips)."""
    seen: list[str] = []
    stack = app.build_middleware_stack()

    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await stack(scope, receive, send)

    app.middleware_stack = spy
    return seen


@pytest.mark.parametrize(("method", "path"), HOT)
def test_the_hot_routes_take_the_shortcut(app: FastAPI, method: str, path: str) -> None:
    assert isinstance(app, InnkeeperAPI)
    assert (method, path) in app._hot


async def test_an_event_takes_the_shortcut_and_answers_as_before(app: FastAPI, client: httpx.AsyncClient) -> None:
    seen = _router_spy(app)
    created = await client.get("/v1.2/browser/create.json", params={"client_key": CLIENT_KEY})
    browser = created.json()["ref"]
    message = {
        "client_key": CLIENT_KEY,
        "browser_id": browser,
        "channel": "WEB",
        "type": "VIEW",
        "language": "EN",
        "currency": "EUR",
        "pos": "spinair.com",
        "page": "/home",
    }
    response = await client.post("/v1.2/events", json=message, headers={"Origin": "https://shop.example"})
    assert response.status_code == 201, response.text
    assert response.json()["ref"] == browser and response.json()["status"] == "OK"
    # CORS is applied on the shortcut as on every route.
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "X-Innkeeper-Flow-Outcome" in response.headers["access-control-expose-headers"]
    assert "Origin" in response.headers["vary"]
    # Neither request went through the router; a REST route still does.
    assert seen == []
    await client.get("/healthz")
    assert seen == ["/healthz"]


async def test_a_preflight_and_other_methods_go_through_fastapi(app: FastAPI, client: httpx.AsyncClient) -> None:
    seen = _router_spy(app)
    preflight = await client.options(
        "/v1.2/events", headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://a.example"
    wrong = await client.put("/v1.2/events", content=b"{}")
    assert wrong.status_code == 405
    assert "/v1.2/events" in seen


async def test_an_unexpected_error_on_the_shortcut_is_the_json_500(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    # Below the endpoint's own error handling: the request/response cycle itself fails.
    monkeypatch.setattr(stream_api, "_respond", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/v1.2/events", content=b"{}", headers={"Origin": "https://b.example"})
    assert response.status_code == 500
    assert response.json()["code"] == 500
    assert response.headers["content-type"].startswith("application/json")


async def test_a_root_path_sends_everything_through_fastapi(app: FastAPI) -> None:
    assert isinstance(app, InnkeeperAPI)
    seen = _router_spy(app)
    app.root_path = "/cdp"
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/cdp/v1.2/browser/create.json", params={"client_key": CLIENT_KEY})
        assert response.status_code == 201, response.text
        assert seen, "with a root path the shortcut is not taken"
    finally:
        app.root_path = ""
