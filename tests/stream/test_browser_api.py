"""Browser create / show (spec §2), plain and edge variants."""

from __future__ import annotations

import httpx

from innkeeper.core.ids import is_ref
from tests.conftest import CLIENT_KEY
from tests.factories.stream import create_browser


async def test_browser_create_returns_browser_and_guest_refs(client: httpx.AsyncClient) -> None:
    body = await create_browser(client)
    assert body["status"] == "OK"
    assert body["version"] == "1.2"
    assert body["client_key"] == CLIENT_KEY
    assert is_ref(body["ref"]) and is_ref(body["customer_ref"])
    assert body["ref"] != body["customer_ref"]


async def test_browser_create_accepts_encoded_absent_and_empty_message(client: httpx.AsyncClient) -> None:
    for query in ("&message=%7B%7D", "", "&message="):
        response = await client.get(f"/v1.2/browser/create.json?client_key={CLIENT_KEY}{query}")
        assert response.status_code == 201, (query, response.text)
        assert response.headers["content-type"] == "application/json;charset=UTF-8"
        assert "set-cookie" not in response.headers


async def test_browser_create_with_wrong_client_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1.2/browser/create.json?client_key=nope&message={}")
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "UNAUTHORIZED"
    assert body["error_msg"] == "Invalid client key specified"


async def test_browser_show_reports_current_guest_without_pii(client: httpx.AsyncClient) -> None:
    created = await create_browser(client)
    response = await client.get(
        f"/v1.2/browser/{created['ref']}/show.json?client_key={CLIENT_KEY}&api_token={CLIENT_KEY}"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["ref"] == created["ref"]
    assert body["customer"]["ref"] == created["customer_ref"]
    assert body["customer"]["guestType"] == "visitor"
    assert body["customer"]["href"].endswith(f"/v2.1/guests/{created['customer_ref']}")
    assert set(body["customer"]) == {"ref", "href", "guestType"}


async def test_unknown_browser_is_404_with_exact_legacy_message(client: httpx.AsyncClient) -> None:
    for ref in ("f7aabbca-1c1b-4fc2-be72-3e16294a4f03", "not-a-uuid"):
        response = await client.get(f"/v1.2/browser/{ref}/show.json?client_key={CLIENT_KEY}&api_token=0")
        assert response.status_code == 404
        body = response.json()
        assert body["status"] == "NOT_FOUND"
        assert body["error_msg"] == "Invalid browser id/ref specified"
        assert body["moreInfo"]


async def test_unknown_browser_in_jsonp_mode_is_200_wrapped(client: httpx.AsyncClient) -> None:
    response = await client.get(
        f"/v1.2/browser/f7aabbca-1c1b-4fc2-be72-3e16294a4f03/show.json?client_key={CLIENT_KEY}"
        "&api_token=0&callback=jsonp4563728918272"
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/javascript;charset=UTF-8"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.text.startswith('jsonp4563728918272({"status":"NOT_FOUND"')
    assert '"error_msg":"Invalid browser id/ref specified"' in response.text
    assert response.text.endswith(");")


async def test_edge_browser_create_and_show(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/events/v1.2/browser/create.json?sitecoreContextId=ctx-1&client_key=")
    assert response.status_code == 201
    created = response.json()
    assert created["client_key"] == CLIENT_KEY
    show = await client.get(
        f"/v1/events/v1.2/browser/{created['ref']}/show.json?sitecoreContextId=ctx-1&client_key=&api_token="
    )
    assert show.json()["customer"]["ref"] == created["customer_ref"]
    by_header = await client.get(
        f"/v1/events/v1.2/browser/{created['ref']}/show.json?client_key=&api_token=",
        headers={"x-sitecore-contextid": "ctx-1"},
    )
    assert by_header.status_code == 200


async def test_edge_without_context_id_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/events/v1.2/browser/create.json?client_key=")
    assert response.status_code == 401
    assert response.json()["status"] == "UNAUTHORIZED"


async def test_v13_alias_treats_question_mark_callback_as_plain_json(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1.3/browser/create.json?client_key={CLIENT_KEY}&message=%7B%7D&callback=?")
    assert response.status_code == 201
    assert response.json()["status"] == "OK"


async def test_cors_preflight_and_actual_response(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/v1.2/events",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-library-version",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
    assert "X-Library-Version" in preflight.headers["access-control-allow-headers"]
    assert preflight.headers["access-control-max-age"] == "86400"
    actual = await client.get(
        f"/v1.2/browser/create.json?client_key={CLIENT_KEY}", headers={"Origin": "https://shop.example"}
    )
    assert actual.headers["access-control-allow-origin"] == "https://shop.example"
    assert "Origin" in actual.headers["vary"]


async def test_unsupported_legacy_route_is_stream_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1.2/ping/create.json?client_key={CLIENT_KEY}&callback=jsonp1")
    assert response.status_code == 200
    assert response.text.startswith('jsonp1({"status":"NOT_FOUND"')


async def test_legacy_error_beacon_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1.2/boxever-log-js-error.js?client_key={CLIENT_KEY}&message=%7B%7D")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.content == b""
