"""The three event transports (spec §3.1–3.4): GET message tolerance, POST key placement, edge mapping."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import CLIENT_KEY, POINT_OF_SALE
from tests.factories.stream import as_query, create_browser, event
from tests.stream._wire import (
    EVENT_GET,
    EVENT_POST,
    TRANSPORTS,
    Transport,
    assert_ok,
    encoded,
    jsonp_body,
    raw_client,
    raw_get,
    send,
    stored_event,
)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The suite's client, able to send byte-exact query strings (as curl -g does); still never 5xx."""
    async with raw_client(app) as c:
        yield c


@pytest.fixture
async def browser(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_browser(client)


async def _get_raw(client: httpx.AsyncClient, query: str) -> httpx.Response:
    return await raw_get(client, EVENT_GET, query)


async def _events(client: httpx.AsyncClient, admin_auth: tuple[str, str], guest_ref: str) -> list[dict[str, Any]]:
    response = await client.get(f"/admin/v1/guests/{guest_ref}/events", auth=admin_auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- §3.4 success body on every transport ---------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_success_body_is_the_same_on_every_transport(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport
) -> None:
    body = assert_ok(await send(client, transport, event(browser["ref"])), browser=browser)
    row = await stored_event(db, body["event_ref"])
    assert row.browser_ref == browser["ref"]
    assert row.guest_ref == browser["customer_ref"]
    assert row.transport == {"get": "stream-get", "post": "stream-post", "edge": "edge"}[transport]
    assert row.processing_status == "SUCCESS"
    assert row.session_ref is not None


async def test_jsonp_success_is_200_wrapped(client: httpx.AsyncClient, browser: dict[str, Any]) -> None:
    message = encoded(as_query(event(browser["ref"])))
    response = await client.get(f"{EVENT_GET}?client_key={CLIENT_KEY}&message={message}&callback=jsonp4563728918272")
    body = jsonp_body(response, "jsonp4563728918272")
    assert list(body) == ["status", "version", "client_key", "ref", "customer_ref", "event_ref"]
    assert body["status"] == "OK"
    assert body["version"] == "1.2"
    assert body["client_key"] == CLIENT_KEY
    assert body["ref"] == browser["ref"]
    assert body["customer_ref"] == browser["customer_ref"]


# --- §3.1 GET message parsing ---------------------------------------------------------------


async def test_get_as_python_http_client_sends_the_spec_example(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    """Only some characters encoded: ``{``/``"``/space as %XX, ``:``/``,``/``/`` raw."""
    ref = browser["ref"]
    query = (
        f"client_key={CLIENT_KEY}&message=%7B%22channel%22:%22WEB%22,%22type%22:%22VIEW%22,"
        "%22language%22:%22EN%22,%22currency%22:%22EUR%22,%22page%22:%22home%20page%22,"
        f"%22pos%22:%22myretailsite/ireland%22,%22browser_id%22:%22{ref}%22%7D"
    )
    body = assert_ok(await _get_raw(client, query), browser=browser)
    row = await stored_event(db, body["event_ref"])
    assert row.page == "home page"
    assert row.point_of_sale == "myretailsite/ireland"
    assert row.type == "VIEW"
    assert row.channel == "WEB"
    assert row.language == "EN"
    assert row.currency == "EUR"
    assert json.loads(row.raw)["page"] == "home page"


async def test_get_fully_percent_encoded_as_encode_uri_component(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    message = event(browser["ref"], page="home page", pos="myretailsite/ireland")
    body = assert_ok(
        await _get_raw(client, f"client_key={CLIENT_KEY}&message={encoded(as_query(message))}"), browser=browser
    )
    row = await stored_event(db, body["event_ref"])
    assert row.page == "home page"
    assert json.loads(row.raw) == message


async def test_get_raw_unencoded_json_as_curl_g_sends_it(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    """``curl -g`` leaves ``{ } " : ,`` raw; it refuses a literal space, so that one is %20."""
    ref = browser["ref"]
    query = (
        f'client_key={CLIENT_KEY}&message={{"channel":"WEB","type":"VIEW","language":"EN","currency":"EUR",'
        f'"page":"home%20page","pos":"myretailsite/ireland","browser_id":"{ref}"}}'
    )
    body = assert_ok(await _get_raw(client, query), browser=browser)
    row = await stored_event(db, body["event_ref"])
    assert row.page == "home page"
    assert row.point_of_sale == POINT_OF_SALE


async def test_get_raw_json_with_message_first_and_key_last(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    query = f'message={{"type":"VIEW","browser_id":"{browser["ref"]}","page":"x"}}&client_key={CLIENT_KEY}'
    body = assert_ok(await _get_raw(client, query), browser=browser)
    assert (await stored_event(db, body["event_ref"])).page == "x"


@pytest.mark.parametrize("key_first", [True, False])
async def test_get_raw_json_with_ampersand_inside_a_string(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], key_first: bool
) -> None:
    message = f'{{"type":"VIEW","browser_id":"{browser["ref"]}","page":"fish&chips","ext":{{"q":"a&b=c"}}}}'
    query = f"client_key={CLIENT_KEY}&message={message}" if key_first else f"message={message}&client_key={CLIENT_KEY}"
    body = assert_ok(await _get_raw(client, query), browser=browser)
    row = await stored_event(db, body["event_ref"])
    assert row.page == "fish&chips"
    assert json.loads(row.raw)["ext"] == {"q": "a&b=c"}


async def test_get_raw_json_with_ampersand_followed_by_callback(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    message = f'{{"type":"VIEW","browser_id":"{browser["ref"]}","page":"R&D"}}'
    response = await _get_raw(client, f"client_key={CLIENT_KEY}&message={message}&callback=jsonp123")
    body = jsonp_body(response, "jsonp123")
    assert (await stored_event(db, body["event_ref"])).page == "R&D"


async def test_plus_is_a_space_when_the_result_still_parses(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    query = f'client_key={CLIENT_KEY}&message={{"type":"VIEW","browser_id":"{browser["ref"]}","page":"home+page"}}'
    body = assert_ok(await _get_raw(client, query), browser=browser)
    assert (await stored_event(db, body["event_ref"])).page == "home page"


async def test_plus_stays_literal_when_a_space_would_break_the_json(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    query = f'client_key={CLIENT_KEY}&message={{"type":"VIEW","browser_id":"{browser["ref"]}","page":"a+b","n":1e+5}}'
    body = assert_ok(await _get_raw(client, query), browser=browser)
    row = await stored_event(db, body["event_ref"])
    assert row.page == "a+b"
    assert json.loads(row.raw)["n"] == 100000


async def test_encoded_plus_is_always_a_plus(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    message = encoded(as_query(event(browser["ref"], page="C++ books")))
    assert "%2B%2B%20" in message
    body = assert_ok(await _get_raw(client, f"client_key={CLIENT_KEY}&message={message}"), browser=browser)
    assert (await stored_event(db, body["event_ref"])).page == "C++ books"


async def test_get_with_content_length_zero_header(client: httpx.AsyncClient, browser: dict[str, Any]) -> None:
    message = encoded(as_query(event(browser["ref"])))
    request = client.build_request("GET", f"{EVENT_GET}?client_key={CLIENT_KEY}&message={message}")
    request.headers["content-length"] = "0"
    assert_ok(await client.send(request), browser=browser)


async def test_unknown_query_params_and_legacy_versions_are_ignored(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    message = encoded(as_query(event(browser["ref"])))
    query = (
        f"utm_source=x&client_key={CLIENT_KEY}&boxever_version=1.4.8&content_version=42"
        f"&message={message}&_=1700000000000&api_token=0&foo=%FF&bar"
    )
    body = assert_ok(await _get_raw(client, query), browser=browser)
    row = await stored_event(db, body["event_ref"])
    assert json.loads(row.raw) == event(browser["ref"])


async def test_legacy_library_url_with_boxever_version_and_raw_json(
    client: httpx.AsyncClient, browser: dict[str, Any]
) -> None:
    message = as_query(event(browser["ref"], page="home"))
    query = f"client_key={CLIENT_KEY}&boxever_version=1.4.8&message={message}&callback=jsonp4563728918272"
    body = jsonp_body(await _get_raw(client, query), "jsonp4563728918272")
    assert body["status"] == "OK"
    assert body["ref"] == browser["ref"]


async def test_v13_event_alias(client: httpx.AsyncClient, browser: dict[str, Any]) -> None:
    message = encoded(as_query(event(browser["ref"])))
    response = await raw_get(client, "/v1.3/event/create.json", f"client_key={CLIENT_KEY}&message={message}&callback=?")
    assert_ok(response, browser=browser)


async def test_unicode_message_encoded_as_utf8(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    text = json.dumps(event(browser["ref"], page="café 你好 🎉"), ensure_ascii=False, separators=(",", ":"))
    body = assert_ok(
        await _get_raw(client, f"client_key={CLIENT_KEY}&message={quote(text, safe=':,{}')}"), browser=browser
    )
    assert (await stored_event(db, body["event_ref"])).page == "café 你好 🎉"


# --- §3.2 POST --------------------------------------------------------------------------


async def test_post_with_client_key_in_the_query_instead_of_the_body(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    response = await client.post(f"{EVENT_POST}?client_key={CLIENT_KEY}", json=event(browser["ref"]))
    body = assert_ok(response, browser=browser)
    assert (await stored_event(db, body["event_ref"])).client_key == CLIENT_KEY


async def test_post_as_the_engage_sdk_sends_it(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    message = {
        "type": "VIEW",
        "ext": {"pageVariantId": "_default"},
        "referrer": "https://www.google.com/",
        "utm_source": "newsletter",
        "browser_id": browser["ref"],
        "channel": "WEB",
        "client_key": CLIENT_KEY,
        "currency": "EUR",
        "language": "EN",
        "page": "Home Page",
        "pos": POINT_OF_SALE,
    }
    response = await client.post(
        EVENT_POST,
        content=json.dumps(message),
        headers={"content-type": "application/json", "x-library-version": "1.4.3"},
    )
    body = assert_ok(response, browser=browser)
    row = await stored_event(db, body["event_ref"])
    assert json.loads(row.raw) == message
    assert row.page == "Home Page"


async def test_post_with_text_plain_content_type_is_still_parsed(
    client: httpx.AsyncClient, browser: dict[str, Any]
) -> None:
    body = json.dumps({"client_key": CLIENT_KEY, **event(browser["ref"])})
    response = await client.post(EVENT_POST, content=body, headers={"content-type": "text/plain"})
    assert_ok(response, browser=browser)


# --- §3.3 edge ----------------------------------------------------------------------------


async def _create_pos(client: httpx.AsyncClient, admin_auth: tuple[str, str], name: str, site_name: str) -> None:
    response = await client.post(
        "/admin/v1/points-of-sale",
        json={"name": name, "siteName": site_name, "timeoutInMinutes": 30},
        auth=admin_auth,
    )
    assert response.status_code == 201, response.text


def _edge_body(browser_ref: str, **fields: Any) -> dict[str, Any]:
    """What the Cloud SDK 0.6.1 sends: empty ``client_key`` and ``pos``, plus ``requested_at``."""
    body: dict[str, Any] = {
        "browser_id": browser_ref,
        "channel": "WEB",
        "client_key": "",
        "currency": "EUR",
        "language": "EN",
        "page": "home",
        "pos": "",
        "requested_at": "2025-05-01T10:00:00.000Z",
        "type": "VIEW",
        "ext": {"pageVariantId": "page_variant_3", "customKey": "customValue"},
        "utm_source": "newsletter",
        "utm_medium": "email",
        "referrer": "https://www.google.com/",
    }
    body.update(fields)
    return body


@pytest.mark.parametrize("site_id", ["shopfr", "shop%2Ffr", "shop/fr"])
async def test_edge_maps_site_id_to_the_point_of_sale_by_name_or_site_name(
    client: httpx.AsyncClient, admin_auth: tuple[str, str], browser: dict[str, Any], site_id: str
) -> None:
    await _create_pos(client, admin_auth, "shop/fr", "shopfr")
    response = await client.post(
        f"/v1/events/v1.2/events?sitecoreContextId=ctx-1&siteId={site_id}",
        json=_edge_body(browser["ref"]),
        headers={"x-client-software-id": "@sitecore-cloudsdk/events 0.6.1", "x-library-version": "0.6.1"},
    )
    body = assert_ok(response, browser=browser)
    [item] = await _events(client, admin_auth, browser["customer_ref"])
    assert item["ref"] == body["event_ref"]
    assert item["pointOfSale"] == "shop/fr"
    assert item["processingStatus"] == "SUCCESS"
    assert item["clientKey"] == CLIENT_KEY
    assert item["transport"] == "edge"


async def test_edge_non_empty_pos_in_the_body_wins_over_site_id(
    client: httpx.AsyncClient, admin_auth: tuple[str, str], browser: dict[str, Any]
) -> None:
    await _create_pos(client, admin_auth, "shop/fr", "shopfr")
    response = await client.post(
        "/v1/events/v1.2/events?sitecoreContextId=ctx-1&siteId=shopfr",
        json=_edge_body(browser["ref"], pos=POINT_OF_SALE),
    )
    assert_ok(response, browser=browser)
    [item] = await _events(client, admin_auth, browser["customer_ref"])
    assert item["pointOfSale"] == POINT_OF_SALE


@pytest.mark.parametrize("query", ["sitecoreContextId=ctx-1&siteId=unknown-site", "sitecoreContextId=ctx-1"])
async def test_edge_unknown_or_absent_site_id_falls_back_to_the_default_point_of_sale(
    client: httpx.AsyncClient, admin_auth: tuple[str, str], browser: dict[str, Any], query: str
) -> None:
    assert_ok(await client.post(f"/v1/events/v1.2/events?{query}", json=_edge_body(browser["ref"])), browser=browser)
    [item] = await _events(client, admin_auth, browser["customer_ref"])
    assert item["pointOfSale"] == POINT_OF_SALE
    assert item["processingStatus"] == "SUCCESS"


async def test_edge_stores_requested_at_as_client_requested_at(
    client: httpx.AsyncClient, admin_auth: tuple[str, str], browser: dict[str, Any], db: AsyncSession
) -> None:
    body = assert_ok(
        await client.post("/v1/events/v1.2/events?sitecoreContextId=ctx-1&siteId=x", json=_edge_body(browser["ref"])),
        browser=browser,
    )
    [item] = await _events(client, admin_auth, browser["customer_ref"])
    assert item["clientRequestedAt"] == "2025-05-01T10:00:00.000Z"
    assert item["createdAt"] != "2025-05-01T10:00:00.000Z"  # the event time is the server receive time
    assert json.loads(item["raw"]) == _edge_body(browser["ref"])
    assert (await stored_event(db, body["event_ref"])).client_requested_at == "2025-05-01T10:00:00.000Z"


async def test_edge_without_requested_at_leaves_client_requested_at_empty(
    client: httpx.AsyncClient, admin_auth: tuple[str, str], browser: dict[str, Any]
) -> None:
    message = _edge_body(browser["ref"])
    del message["requested_at"]
    assert_ok(await client.post("/v1/events/v1.2/events?sitecoreContextId=ctx-1", json=message), browser=browser)
    [item] = await _events(client, admin_auth, browser["customer_ref"])
    assert item["clientRequestedAt"] is None


async def test_edge_response_carries_the_real_client_key(client: httpx.AsyncClient, browser: dict[str, Any]) -> None:
    response = await client.post(
        "/v1/events/v1.2/events?sitecoreContextId=ctx-1&siteId=x", json=_edge_body(browser["ref"], client_key="")
    )
    assert assert_ok(response, browser=browser)["client_key"] == CLIENT_KEY
