"""Property tests: whatever arrives on the event routes, the answer is a valid Stream body, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CLIENT_KEY
from tests.factories.stream import create_browser
from tests.stream._wire import (
    EDGE_POST,
    EVENT_GET,
    EVENT_POST,
    JS_TYPE,
    JSON_TYPE,
    RAW_QUERY_HEADER,
    STATUS_NAMES,
    UUID4,
    encoded,
    raw_client,
    raw_get,
)

EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ALLOWED = {201, 400, 401, 404, 413}
BROWSER = "<browser>"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["", " ", "VIEW", "ADD", "IDENTITY", "FORCE_CLOSE", "CHECKOUT", BROWSER, "X" * 101]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
KEYS = ["type", "browser_id", "channel", "pos", "page", "language", "currency", "ext", "product", "identifiers",
        "email", "session_data", "order", "reference_id", "status", "requested_at", "client_key"]  # fmt: skip
messages = st.one_of(
    st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), json_values, max_size=8),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["VIEW", "ADD", "IDENTITY", "CHECKOUT", "ORDER_CHECKOUT", "CONFIRM"]),
            "browser_id": st.just(BROWSER),
        },
        optional={k: json_values for k in KEYS[2:]},
    ),
    json_values,
)
TOKENS = [f"client_key={CLIENT_KEY}", "client_key=", "message=", "callback=", "cb=", "callback=jsonp1", "&", "=",
          "%", "%7B", "%7D", "%22", "%3A", "%2C", "%FF", "%00", "%E2%82%AC", "+", "{", "}", '"', ":", ",", "[", "]",
          "\\", "type", "VIEW", "browser_id", BROWSER, "boxever_version=1.4.8", "é"]  # fmt: skip
query_strings = st.lists(
    st.one_of(st.sampled_from(TOKENS), st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=6)),
    max_size=24,
).map("".join)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with raw_client(app) as c:
        yield c


@pytest.fixture
async def browser_ref(client: httpx.AsyncClient) -> str:
    ref: str = (await create_browser(client))["ref"]
    return ref


def _with_browser(value: Any, ref: str) -> Any:
    """Put the real browser ref wherever the strategy left the placeholder."""
    return json.loads(json.dumps(value).replace(BROWSER, ref))


def assert_valid_stream_answer(response: httpx.Response) -> None:
    """201/400/401/404/413 JSON with the success or error shape; JSONP only as 200 wrapping one of those."""
    if response.status_code == 200 and response.headers["content-type"] == JS_TYPE:
        text = response.text
        name, _, rest = text.partition("(")
        assert rest.endswith(");"), text
        assert name, text
        body = json.loads(rest[:-2])
        status = 201 if body["status"] == "OK" else next(s for s, n in STATUS_NAMES.items() if n == body["status"])
    else:
        assert response.status_code in ALLOWED, (response.status_code, response.text)
        assert response.headers["content-type"] == JSON_TYPE
        body = response.json()
        status = response.status_code
    assert body["version"] == "1.2"
    if status == 201:
        assert set(body) == {"status", "version", "client_key", "ref", "customer_ref", "event_ref"}, body
        assert body["status"] == "OK"
        assert body["client_key"] == CLIENT_KEY
        assert all(UUID4.match(body[k]) for k in ("ref", "customer_ref", "event_ref")), body
    else:
        assert list(body) == ["status", "version", "client_key", "error_msg", "moreInfo"], body
        assert body["status"] == STATUS_NAMES[status]
        assert isinstance(body["error_msg"], str)
        assert body["error_msg"]
        assert isinstance(body["client_key"], str)


@EXAMPLES
@given(message=messages)
async def test_any_json_message_on_get_gets_a_valid_answer(
    client: httpx.AsyncClient, browser_ref: str, message: Any
) -> None:
    text = json.dumps(_with_browser(message, browser_ref), ensure_ascii=False)
    response = await raw_get(client, EVENT_GET, f"client_key={CLIENT_KEY}&message={encoded(text)}")
    assert_valid_stream_answer(response)


@EXAMPLES
@given(message=messages, key_in_body=st.booleans())
async def test_any_json_message_on_post_gets_a_valid_answer(
    client: httpx.AsyncClient, browser_ref: str, message: Any, key_in_body: bool
) -> None:
    value = _with_browser(message, browser_ref)
    if key_in_body and isinstance(value, dict):
        value["client_key"] = CLIENT_KEY
    url = EVENT_POST if key_in_body else f"{EVENT_POST}?client_key={CLIENT_KEY}"
    response = await client.post(url, content=json.dumps(value).encode(), headers={"content-type": "application/json"})
    assert_valid_stream_answer(response)


@EXAMPLES
@given(message=messages)
async def test_any_json_message_on_edge_gets_a_valid_answer(
    client: httpx.AsyncClient, browser_ref: str, message: Any
) -> None:
    body = json.dumps(_with_browser(message, browser_ref)).encode()
    response = await client.post(EDGE_POST, content=body, headers={"content-type": "application/json"})
    assert_valid_stream_answer(response)


@EXAMPLES
@given(query=query_strings)
async def test_any_query_string_on_get_gets_a_valid_answer(
    client: httpx.AsyncClient, browser_ref: str, query: str
) -> None:
    raw = query.replace(BROWSER, browser_ref).encode("utf-8")
    assert_valid_stream_answer(await raw_get(client, EVENT_GET, raw))


@EXAMPLES
@given(query=query_strings, body=st.binary(max_size=200))
async def test_any_query_and_bytes_on_post_get_a_valid_answer(
    client: httpx.AsyncClient, browser_ref: str, query: str, body: bytes
) -> None:
    raw = query.replace(BROWSER, browser_ref).encode("utf-8")
    response = await client.post(EVENT_POST, content=body, headers=[(RAW_QUERY_HEADER, raw)])
    assert_valid_stream_answer(response)
