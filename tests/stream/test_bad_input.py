"""Bad input on the three event transports (spec §1.6, §1.7, §3.5): exact errors, nothing stored, never 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import CLIENT_KEY
from tests.factories.stream import as_query, create_browser, event, product
from tests.stream._wire import (
    EDGE_POST,
    EVENT_GET,
    EVENT_POST,
    JSON_TYPE,
    NOTHING,
    TRANSPORTS,
    Transport,
    assert_ok,
    assert_stream_error,
    encoded,
    get,
    jsonp_body,
    raw_client,
    raw_get,
    send,
    send_text,
    stored,
    stored_event,
)

UNKNOWN_BROWSER = "f7aabbca-1c1b-4fc2-be72-3e16294a4f03"
INVALID_BROWSER = "Invalid browser id/ref specified"
INVALID_KEY = "Invalid client key specified"
UNPARSEABLE = "Unable to parse message"
MISSING_TYPE = "Missing required attribute: type"
MISSING_BROWSER = "Missing required attribute: browser_id"
EXT_TOO_MANY = "ext supports a maximum of 50 attributes"
EXT_VALUES = "ext values must be string, number, boolean or array of those"
EXT_NOT_OBJECT = "ext must be an object"
TOO_LARGE = "Message exceeds 64 KB"
LIMIT = 64 * 1024

per_transport = pytest.mark.parametrize("transport", TRANSPORTS)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The suite's client, able to send byte-exact (and over-64-KB) query strings; still never 5xx."""
    async with raw_client(app) as c:
        yield c


@pytest.fixture
async def browser(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_browser(client)


# --- 1. client key / context id -------------------------------------------------------


@pytest.mark.parametrize("query", ["client_key=nope&", "", "client_key=&"])
async def test_get_with_wrong_missing_or_empty_client_key_is_401(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], query: str
) -> None:
    message = encoded(as_query(event(browser["ref"])))
    response = await client.get(f"{EVENT_GET}?{query}message={message}")
    assert_stream_error(response, 401, INVALID_KEY, client_key={"", "nope"})
    assert await stored(db) == NOTHING


@pytest.mark.parametrize("key", ["nope", "", None, 42])
async def test_post_with_wrong_missing_or_non_string_body_key_is_401(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], key: object
) -> None:
    body: dict[str, Any] = event(browser["ref"])
    if key is not None:
        body["client_key"] = key
    response = await client.post(EVENT_POST, json=body)
    assert_stream_error(response, 401, INVALID_KEY, client_key={"", "nope"})
    assert await stored(db) == NOTHING


async def test_post_query_key_is_checked_even_when_the_body_key_is_right(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    response = await client.post(
        f"{EVENT_POST}?client_key=nope", json={"client_key": CLIENT_KEY, **event(browser["ref"])}
    )
    assert_stream_error(response, 401, INVALID_KEY, client_key={"", "nope"})
    assert await stored(db) == NOTHING


@pytest.mark.parametrize("query", ["siteId=y", "sitecoreContextId=&siteId=y", ""])
async def test_edge_without_context_id_is_401(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], query: str
) -> None:
    response = await client.post(f"/v1/events/v1.2/events?{query}", json={"client_key": "", **event(browser["ref"])})
    assert_stream_error(response, 401, INVALID_KEY, client_key="")
    assert await stored(db) == NOTHING


async def test_edge_accepts_the_context_id_header(client: httpx.AsyncClient, browser: dict[str, Any]) -> None:
    response = await client.post(
        "/v1/events/v1.2/events?siteId=y",
        json={"client_key": "", **event(browser["ref"])},
        headers={"x-sitecore-contextid": "ctx-1"},
    )
    assert_ok(response, browser=browser)


@per_transport
async def test_client_key_is_checked_before_the_message(
    client: httpx.AsyncClient, db: AsyncSession, transport: Transport
) -> None:
    if transport == "edge":
        response = await client.post("/v1/events/v1.2/events", content=b"{nope")
        assert_stream_error(response, 401, INVALID_KEY, client_key="")
    else:
        response = await send_text(client, transport, b"{nope", key="nope")
        assert_stream_error(response, 401, INVALID_KEY, client_key={"", "nope"})
    assert await stored(db) == NOTHING


# --- 2. unparseable message --------------------------------------------------------------

UNPARSEABLE_TEXTS = {
    "malformed": b'{"type":"VIEW","browser_id":',
    "trailing-garbage": b'{"type":"VIEW"} x',
    "single-quotes": b"{'type':'VIEW'}",
    "array": b'[{"type":"VIEW"}]',
    "empty-array": b"[]",
    "string": b'"VIEW"',
    "number": b"42",
    "null": b"null",
    "true": b"true",
    "empty": b"",
    "whitespace": b"   ",
    "invalid-utf8": b"\xff\xfe{}",
    "lone-surrogate-escape": b'{"type":"VIEW","page":"\\ud800"}',
}


@per_transport
@pytest.mark.parametrize("name", list(UNPARSEABLE_TEXTS))
async def test_unparseable_message_is_400(
    client: httpx.AsyncClient, db: AsyncSession, transport: Transport, name: str
) -> None:
    response = await send_text(client, transport, UNPARSEABLE_TEXTS[name])
    assert_stream_error(response, 400, UNPARSEABLE)
    assert await stored(db) == NOTHING


@per_transport
async def test_invalid_utf8_inside_a_json_string_is_400(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport
) -> None:
    """A byte that is not UTF-8 is unparseable on every transport, never stored as Latin-1 mojibake."""
    text = b'{"type":"VIEW","browser_id":"' + browser["ref"].encode() + b'","page":"caf\xe9"}'
    response = await send_text(client, transport, text)
    assert_stream_error(response, 400, UNPARSEABLE)
    assert await stored(db) == NOTHING


@pytest.mark.parametrize(
    "query", [f"client_key={CLIENT_KEY}", f"client_key={CLIENT_KEY}&message=", f"client_key={CLIENT_KEY}&msg=%7B%7D"]
)
async def test_get_without_a_message_is_400(client: httpx.AsyncClient, db: AsyncSession, query: str) -> None:
    response = await client.get(f"{EVENT_GET}?{query}")
    assert_stream_error(response, 400, UNPARSEABLE)
    assert await stored(db) == NOTHING


async def test_get_with_raw_unparseable_message_is_400(client: httpx.AsyncClient, db: AsyncSession) -> None:
    response = await raw_get(client, EVENT_GET, f'client_key={CLIENT_KEY}&message={{"type":"VIEW",&callback=')
    assert_stream_error(response, 400, UNPARSEABLE)
    assert await stored(db) == NOTHING


# --- 3. type ------------------------------------------------------------------------------

BAD_TYPES: dict[str, Any] = {
    "empty": "",
    "blank": "   ",
    "number": 42,
    "null": None,
    "list": ["VIEW"],
    "object": {"a": 1},
    "bool": True,
}


@per_transport
@pytest.mark.parametrize("name", ["missing", *BAD_TYPES])
async def test_missing_empty_or_non_string_type_is_400(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport, name: str
) -> None:
    message = event(browser["ref"])
    if name == "missing":
        del message["type"]
    else:
        message["type"] = BAD_TYPES[name]
    response = await send(client, transport, message)
    assert_stream_error(response, 400, MISSING_TYPE)
    assert await stored(db) == NOTHING


@per_transport
async def test_type_over_100_characters_is_400(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport
) -> None:
    response = await send(client, transport, event(browser["ref"], "X" * 101))
    body = assert_stream_error(response, 400, None)
    assert "type" in body["error_msg"]
    assert await stored(db) == NOTHING


@per_transport
async def test_type_of_exactly_100_characters_is_accepted(
    client: httpx.AsyncClient, browser: dict[str, Any], transport: Transport
) -> None:
    assert_ok(await send(client, transport, event(browser["ref"], "X" * 100)), browser=browser)


# --- 4. browser_id ------------------------------------------------------------------------

BAD_BROWSER_IDS: dict[str, Any] = {"empty": "", "blank": "  ", "number": 42, "null": None, "list": [UNKNOWN_BROWSER]}


@per_transport
@pytest.mark.parametrize("name", ["missing", *BAD_BROWSER_IDS])
async def test_missing_or_empty_browser_id_is_400(
    client: httpx.AsyncClient, db: AsyncSession, transport: Transport, name: str
) -> None:
    message = event("placeholder")
    if name == "missing":
        del message["browser_id"]
    else:
        message["browser_id"] = BAD_BROWSER_IDS[name]
    response = await send(client, transport, message)
    assert_stream_error(response, 400, MISSING_BROWSER)
    assert await stored(db) == NOTHING


@per_transport
async def test_type_is_checked_before_browser_id(client: httpx.AsyncClient, transport: Transport) -> None:
    response = await send(client, transport, {"channel": "WEB"})
    assert_stream_error(response, 400, MISSING_TYPE)


# --- 5. unknown browser -------------------------------------------------------------------


@per_transport
@pytest.mark.parametrize("ref", [UNKNOWN_BROWSER, "not-a-uuid", UNKNOWN_BROWSER.upper(), "\u0000"])
async def test_unknown_browser_is_404_with_the_exact_legacy_message(
    client: httpx.AsyncClient, db: AsyncSession, transport: Transport, ref: str
) -> None:
    response = await send(client, transport, event(ref))
    assert_stream_error(response, 404, INVALID_BROWSER)
    assert await stored(db) == NOTHING


@per_transport
async def test_browser_is_checked_before_ext(client: httpx.AsyncClient, transport: Transport) -> None:
    response = await send(client, transport, event(UNKNOWN_BROWSER, ext={"a": {"b": 1}}))
    assert_stream_error(response, 404, INVALID_BROWSER)


async def test_browser_ref_is_case_insensitive(client: httpx.AsyncClient, browser: dict[str, Any]) -> None:
    response = await send(client, "post", event(browser["ref"].upper()))
    assert_ok(response, browser=browser)


# --- 6. ext ------------------------------------------------------------------------------

BAD_EXT: dict[str, tuple[Any, str]] = {
    "51-keys": ({f"k{i}": i for i in range(51)}, EXT_TOO_MANY),
    "nested-object": ({"order": {"amount": 1}}, EXT_VALUES),
    "array-of-objects": ({"items": [{"a": 1}]}, EXT_VALUES),
    "array-of-arrays": ({"items": [[1]]}, EXT_VALUES),
    "null-value": ({"a": None}, EXT_VALUES),
    "array": ([1, 2], EXT_NOT_OBJECT),
    "string": ("pageVariantId", EXT_NOT_OBJECT),
    "number": (7, EXT_NOT_OBJECT),
}


@per_transport
@pytest.mark.parametrize("name", list(BAD_EXT))
async def test_bad_ext_is_400(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport, name: str
) -> None:
    ext, error_msg = BAD_EXT[name]
    response = await send(client, transport, event(browser["ref"], ext=ext))
    assert_stream_error(response, 400, error_msg)
    assert await stored(db) == NOTHING


@per_transport
async def test_flat_ext_with_50_keys_and_primitive_arrays_is_accepted(
    client: httpx.AsyncClient, browser: dict[str, Any], transport: Transport
) -> None:
    ext: dict[str, Any] = {f"k{i}": i for i in range(47)}
    ext |= {"s": "x", "b": True, "list": [1, "two", 3.5, False]}
    assert len(ext) == 50
    assert_ok(await send(client, transport, event(browser["ref"], ext=ext)), browser=browser)


# --- 413 ---------------------------------------------------------------------------------


@per_transport
async def test_message_over_64_kb_is_413(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport
) -> None:
    response = await send(client, transport, event(browser["ref"], page="x" * (LIMIT + 1)))
    assert_stream_error(response, 413, TOO_LARGE)
    assert await stored(db) == NOTHING


@pytest.mark.parametrize("url", [f"{EVENT_POST}?client_key={CLIENT_KEY}", EDGE_POST])
async def test_post_body_of_exactly_64_kb_is_accepted_and_one_byte_more_is_413(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], url: str
) -> None:
    def body_of(size: int) -> bytes:
        base = json.dumps(event(browser["ref"], page=""), separators=(",", ":")).encode()
        return base.replace(b'"page":""', b'"page":"' + b"x" * (size - len(base)) + b'"')

    exact = body_of(LIMIT)
    assert len(exact) == LIMIT
    assert_ok(await client.post(url, content=exact, headers={"content-type": "application/json"}), browser=browser)
    response = await client.post(url, content=body_of(LIMIT + 1), headers={"content-type": "application/json"})
    assert_stream_error(response, 413, TOO_LARGE)
    assert (await stored(db)).events == 1


@pytest.mark.parametrize("url", [f"{EVENT_POST}?client_key={CLIENT_KEY}", EDGE_POST])
async def test_chunked_post_without_content_length_over_64_kb_is_413(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], url: str
) -> None:
    payload = json.dumps(event(browser["ref"], page="x" * (LIMIT * 2))).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 4096):
            yield payload[start : start + 4096]

    request = client.build_request("POST", url, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    assert_stream_error(await client.send(request), 413, TOO_LARGE)
    assert await stored(db) == NOTHING


@pytest.mark.parametrize("declared", ["100", "0", "abc", "-5"])
async def test_post_whose_content_length_lies_is_still_413(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], declared: str
) -> None:
    payload = json.dumps({"client_key": CLIENT_KEY, **event(browser["ref"], page="x" * (LIMIT * 2))}).encode()
    request = client.build_request("POST", EVENT_POST, content=payload, headers={"content-type": "application/json"})
    request.headers["content-length"] = declared
    assert_stream_error(await client.send(request), 413, TOO_LARGE)
    assert await stored(db) == NOTHING


async def test_post_declaring_a_huge_content_length_is_413(client: httpx.AsyncClient, db: AsyncSession) -> None:
    request = client.build_request("POST", f"{EVENT_POST}?client_key={CLIENT_KEY}", content=b"{}")
    request.headers["content-length"] = str(10 * LIMIT)
    assert_stream_error(await client.send(request), 413, TOO_LARGE)
    assert await stored(db) == NOTHING


async def test_get_message_over_64_kb_in_utf8_bytes_is_413(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    """25,000 x '€' is 75,000 bytes of UTF-8: the 64 KB limit counts bytes, as on POST."""
    response = await send(client, "get", event(browser["ref"], page="€" * 25_000))
    assert_stream_error(response, 413, TOO_LARGE)
    assert await stored(db) == NOTHING


async def test_post_body_over_64_kb_in_utf8_bytes_is_413(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    response = await send(client, "post", event(browser["ref"], page="€" * 25_000))
    assert_stream_error(response, 413, TOO_LARGE)
    assert await stored(db) == NOTHING


async def test_raw_get_message_with_ampersand_over_64_kb_is_413(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    """The raw ``curl -g`` form must not slip past the size check because ``&`` splits the parameter."""
    message = as_query(event(browser["ref"], page="a&b" + "x" * (LIMIT + 1)))
    response = await raw_get(client, EVENT_GET, f"client_key={CLIENT_KEY}&message={message}")
    assert_stream_error(response, 413, TOO_LARGE)
    assert await stored(db) == NOTHING


async def test_key_is_checked_before_the_size_on_get(client: httpx.AsyncClient) -> None:
    message = encoded(as_query(event(UNKNOWN_BROWSER, page="x" * (LIMIT + 1))))
    response = await get(client, f"{EVENT_GET}?client_key=nope&message={message}")
    assert_stream_error(response, 401, INVALID_KEY, client_key={"", "nope"})


# --- JSONP ---------------------------------------------------------------------------------

UNSAFE_CALLBACKS = [
    "alert(1)//",
    "a;b",
    "x<script>",
    "a b",
    "c" * 129,
    "1abc",
    "a..b",
    "a.",
    ".a",
    "a-b",
    "é",
    "a\u2028b",
]
SAFE_CALLBACKS = ["BoxeverUtils.consoleLogData", "jsonp4563728918272", "$cb", "_x", "a.$b.c_1", "c" * 128]


def _get_routes(browser_ref: str) -> list[str]:
    message = encoded(as_query(event(browser_ref)))
    return [
        f"/v1.2/browser/create.json?client_key={CLIENT_KEY}&message=%7B%7D",
        f"/v1.2/browser/{browser_ref}/show.json?client_key={CLIENT_KEY}&api_token=0",
        f"{EVENT_GET}?client_key={CLIENT_KEY}&message={message}",
    ]


@pytest.mark.parametrize("param", ["callback", "cb"])
@pytest.mark.parametrize("name", UNSAFE_CALLBACKS)
async def test_unsafe_callback_is_refused_with_plain_json_400(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], param: str, name: str
) -> None:
    for url in _get_routes(browser["ref"]):
        response = await client.get(f"{url}&{param}={encoded(name)}")
        body = assert_stream_error(response, 400, None, client_key={"", CLIENT_KEY})
        assert response.headers["content-type"] == JSON_TYPE
        assert name not in response.text
        assert encoded(name) not in response.text
        assert "callback" in body["error_msg"].lower()
    assert await stored(db) == NOTHING


async def test_unsafe_callback_is_refused_even_with_a_wrong_client_key(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/v1.2/browser/create.json?client_key=nope&callback={encoded('alert(1)//')}")
    assert response.status_code == 400
    assert "alert" not in response.text


@pytest.mark.parametrize("param", ["callback", "cb"])
@pytest.mark.parametrize("name", SAFE_CALLBACKS)
async def test_safe_callback_wraps_the_success_body(
    client: httpx.AsyncClient, browser: dict[str, Any], param: str, name: str
) -> None:
    created, shown, sent = [
        jsonp_body(await client.get(f"{url}&{param}={name}"), name) for url in _get_routes(browser["ref"])
    ]
    assert created["status"] == "OK"
    assert created["ref"] != browser["ref"]
    assert shown["status"] == "OK"
    assert shown["customer"]["ref"] == browser["customer_ref"]
    assert sent["status"] == "OK"
    assert sent["ref"] == browser["ref"]
    assert sent["event_ref"]


@pytest.mark.parametrize("value", ["", "?"])
async def test_empty_or_question_mark_callback_means_plain_json(
    client: httpx.AsyncClient, browser: dict[str, Any], value: str
) -> None:
    response = await client.get(f"{_get_routes(browser['ref'])[2]}&callback={value}")
    assert_ok(response, browser=browser)


async def test_jsonp_errors_are_http_200_wrapped(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    cb = "jsonp4563728918272"
    cases: list[tuple[str, int, str]] = [
        (f"{EVENT_GET}?client_key=nope&message=%7B%7D", 401, INVALID_KEY),
        (f"{EVENT_GET}?client_key={CLIENT_KEY}&message=%7Bnope", 400, UNPARSEABLE),
        (
            f"{EVENT_GET}?client_key={CLIENT_KEY}&message={encoded(as_query(event(browser['ref'], type=None)))}",
            400,
            MISSING_TYPE,
        ),
        (
            f"{EVENT_GET}?client_key={CLIENT_KEY}&message={encoded(as_query(event(UNKNOWN_BROWSER)))}",
            404,
            INVALID_BROWSER,
        ),
        (f"/v1.2/browser/{UNKNOWN_BROWSER}/show.json?client_key={CLIENT_KEY}&api_token=0", 404, INVALID_BROWSER),
        ("/v1.2/browser/create.json?client_key=nope", 401, INVALID_KEY),
        (
            f"{EVENT_GET}?client_key={CLIENT_KEY}&message={encoded(as_query(event(browser['ref'], page='x' * LIMIT)))}",
            413,
            TOO_LARGE,
        ),
    ]
    for url, status, error_msg in cases:
        body = jsonp_body(await get(client, f"{url}&callback={cb}"), cb)
        assert list(body) == ["status", "version", "client_key", "error_msg", "moreInfo"]
        assert (
            body["status"]
            == {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 404: "NOT_FOUND", 413: "PAYLOAD_TOO_LARGE"}[status]
        )
        assert body["version"] == "1.2"
        assert body["error_msg"] == error_msg, url
        assert body["moreInfo"].startswith("https://innkeeper.dev/errors/stream#")
    assert await stored(db) == NOTHING


# --- wrong field types: 201 with warnings -------------------------------------------------


@per_transport
async def test_wrong_field_types_are_accepted_with_warnings(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport
) -> None:
    cases: list[tuple[dict[str, Any], list[str]]] = [
        (event(browser["ref"], page=42, channel=7, language=[], currency={}, pos=12), []),
        (event(browser["ref"], "ADD", product="shoes"), ["product: ADD needs a product object; no cart line"]),
        (
            event(browser["ref"], "ADD", product=product(quantity="2")),  # type: ignore[arg-type]
            ["product.quantity/price: numbers required for a cart line; line ignored"],
        ),
        (event(browser["ref"], "IDENTITY", identifiers="jane@example.com"), ["identifiers: must be an array"]),
        (event(browser["ref"], "IDENTITY", identifiers=[1, "x"]), ["identifiers: items must be objects"]),
        (event(browser["ref"], session_data="yes"), ["session_data: must be an object"]),
        (event(browser["ref"], "CONFIRM", product="SHOES"), []),
        (event(browser["ref"], "CHECKOUT", reference_id=5, status=3), []),
        (event(browser["ref"], "ORDER_CHECKOUT", order="nope"), []),
        (event(browser["ref"], "PAYMENT", pay_type=["Card"]), []),
        (event(browser["ref"], "SEARCH", product_name={"a": 1}, utm_source=5, referrer=7), []),
    ]
    for message, expected in cases:
        response = await send(client, transport, message)
        body = assert_ok(response, browser=browser)
        row = await stored_event(db, body["event_ref"])
        for warning in expected:
            assert warning in row.warnings, (message, row.warnings)


@per_transport
async def test_page_as_number_is_not_stored_as_page(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport
) -> None:
    body = assert_ok(await send(client, transport, event(browser["ref"], page=42)), browser=browser)
    row = await stored_event(db, body["event_ref"])
    assert row.page is None
    assert row.processing_status == "SUCCESS"


# --- hostile values: never 500 ------------------------------------------------------------

BIG = "9" * 400


def _with_literal(browser_ref: str, type_: str, field: str, literal: str) -> bytes:
    """An event whose ``field`` is a raw JSON literal (numbers Python's json would not write)."""
    text = as_query(event(browser_ref, type_, **{field: "__X__"}))
    return text.replace('"__X__"', literal).encode()


HUGE: dict[str, tuple[str, str, str]] = {
    "page-400-digit-int": ("VIEW", "page", BIG),
    "page-1e400": ("VIEW", "page", "1e400"),
    "page-minus-1e400": ("VIEW", "page", "-1e400"),
    "page-1e-400": ("VIEW", "page", "1e-400"),
    "ext-400-digit-int": ("VIEW", "ext", '{"n":' + BIG + "}"),
    "ext-1e308": ("VIEW", "ext", '{"n":1e308,"m":-0.0}'),
    "session-data-400-digit-int": ("VIEW", "session_data", '{"n":' + BIG + "}"),
    "unknown-attribute-400-digit-int": ("VIEW", "unknownAttribute", BIG),
    "add-quantity-400-digit-int": ("ADD", "product", '{"item_id":"A","quantity":' + BIG + ',"price":1}'),
    "add-price-400-digit-int": ("ADD", "product", '{"item_id":"A","quantity":1,"price":' + BIG + "}"),
    "add-price-1e308": ("ADD", "product", '{"item_id":"A","quantity":1,"price":1e308}'),
    "add-quantity-1e308": ("ADD", "product", '{"item_id":"A","quantity":1e308,"price":1e308}'),
    "add-item-id-400-digit-int": ("ADD", "product", '{"item_id":' + BIG + ',"quantity":1,"price":1}'),
    "order-price-400-digit-int": ("ORDER_CHECKOUT", "order", '{"referenceId":"R1","price":' + BIG + "}"),
}


@pytest.mark.parametrize("transport", ["get", "post"])
@pytest.mark.parametrize("name", list(HUGE))
async def test_huge_numbers_never_500(
    client: httpx.AsyncClient, browser: dict[str, Any], transport: Transport, name: str
) -> None:
    type_, field, literal = HUGE[name]
    response = await send_text(client, transport, _with_literal(browser["ref"], type_, field, literal))
    assert response.status_code in (201, 400), response.text
    if response.status_code == 400:
        assert_stream_error(response, 400, UNPARSEABLE)


@per_transport
@pytest.mark.parametrize("depth", [10_000, 100_000])
async def test_deeply_nested_json_is_400_not_500(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport, depth: int
) -> None:
    text = _with_literal(browser["ref"], "VIEW", "unknownAttribute", "[" * depth + "]" * depth)
    response = await send_text(client, transport, text)
    if len(text) > LIMIT:
        assert_stream_error(response, 413, TOO_LARGE)
    else:
        assert_stream_error(response, 400, UNPARSEABLE)
    assert await stored(db) == NOTHING


@per_transport
@pytest.mark.parametrize("field", ["unknownAttribute", "ext", "session_data", "product"])
async def test_moderately_nested_json_never_500(
    client: httpx.AsyncClient, browser: dict[str, Any], transport: Transport, field: str
) -> None:
    nested = '{"a":' * 200 + "1" + "}" * 200
    response = await send_text(client, transport, _with_literal(browser["ref"], "ADD", field, nested))
    assert response.status_code in (201, 400), response.text


UNICODE_PAGES = [
    "héllo wörld",
    "你好，世界",
    "🎉🚀👩‍👩‍👧",
    "مرحبا بالعالم",
    "\u202eevil",
    "\ufeffbom",
    "a\u2028b",
    "😀" * 100,
]


@per_transport
async def test_unicode_values_are_stored_verbatim(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport
) -> None:
    for page in UNICODE_PAGES:
        message = event(browser["ref"], "ÉVÉNEMENT_🎉", page=page, ext={"clé": "välue", "emoji": "🎉"})
        body = assert_ok(await send(client, transport, message), browser=browser)
        row = await stored_event(db, body["event_ref"])
        assert row.page == page
        assert row.type == "ÉVÉNEMENT_🎉"
        assert json.loads(row.raw)["page"] == page


NUL_CASES: dict[str, dict[str, Any]] = {
    "page": {"page": "home\u0000page"},
    "type": {"type": "VI\u0000EW"},
    "channel": {"channel": "WE\u0000B"},
    "language": {"language": "E\u0000N"},
    "ext-value": {"ext": {"a": "x\u0000y"}},
    "ext-key": {"ext": {"a\u0000b": "x"}},
    "unknown-attribute": {"note": "\u0000"},
    "session-data": {"session_data": {"k": "v\u0000"}},
    "utm": {"utm_source": "news\u0000letter"},
    "referrer": {"referrer": "https://a.example/\u0000"},
}


@per_transport
@pytest.mark.parametrize("name", list(NUL_CASES))
async def test_nul_characters_never_500(
    client: httpx.AsyncClient, browser: dict[str, Any], transport: Transport, name: str
) -> None:
    response = await send(client, transport, {**event(browser["ref"]), **NUL_CASES[name]})
    assert response.status_code in (201, 400), response.text


async def test_nul_pos_never_500(client: httpx.AsyncClient, browser: dict[str, Any]) -> None:
    response = await send(client, "post", event(browser["ref"], pos="my\u0000pos"))
    assert response.status_code in (201, 400), response.text


async def test_raw_nul_byte_in_get_message_never_500(client: httpx.AsyncClient, browser: dict[str, Any]) -> None:
    response = await raw_get(
        client,
        EVENT_GET,
        f'client_key={CLIENT_KEY}&message={{"type":"VIEW","browser_id":"{browser["ref"]}","page":"a%00b"}}',
    )
    assert_stream_error(response, 400, UNPARSEABLE)


@pytest.mark.parametrize(
    "order",
    [
        '{"referenceId":"R1","status":"PURCHASED","price":' + BIG + "}",
        '{"referenceId":"R1","status":"PURCHASED","price":1,"orderItems":[{"referenceId":"I1","quantity":'
        + BIG
        + ',"price":'
        + BIG
        + "}]}",
        '{"referenceId":"R1","status":"PURCHASED","price":1e308,"orderItems":[{"quantity":1e308,"price":1e308}]}',
    ],
    ids=["order-price-400-digit-int", "order-item-400-digit-ints", "order-1e308"],
)
async def test_huge_numbers_in_an_identified_guests_order_never_500(
    client: httpx.AsyncClient, browser: dict[str, Any], order: str
) -> None:
    identity = event(browser["ref"], "IDENTITY", identifiers=[{"provider": "email", "id": "jane@example.com"}])
    assert_ok(await send(client, "post", identity), browser=browser, customer_ref=None)
    response = await send_text(client, "post", _with_literal(browser["ref"], "ORDER_CHECKOUT", "order", order))
    assert response.status_code in (201, 400), response.text


async def test_checkout_of_a_cart_with_huge_float_lines_never_500(
    client: httpx.AsyncClient, browser: dict[str, Any]
) -> None:
    add = _with_literal(browser["ref"], "ADD", "product", '{"item_id":"A","quantity":1e308,"price":1e308}')
    assert (await send_text(client, "post", add)).status_code == 201
    checkout = event(browser["ref"], "CHECKOUT", reference_id="ORDER-1", status="PURCHASED")
    response = await send(client, "post", checkout)
    assert response.status_code in (201, 400), response.text


@pytest.mark.parametrize("quantity", ["3000000000", "9223372036854775808"])
async def test_checkout_of_a_cart_with_a_quantity_beyond_32_and_64_bits_never_500(
    client: httpx.AsyncClient, browser: dict[str, Any], quantity: str
) -> None:
    add = _with_literal(browser["ref"], "ADD", "product", '{"item_id":"A","quantity":' + quantity + ',"price":1}')
    assert (await send_text(client, "post", add)).status_code == 201
    checkout = event(browser["ref"], "CHECKOUT", reference_id="ORDER-1", status="PURCHASED")
    response = await send(client, "post", checkout)
    assert response.status_code in (201, 400), response.text
