"""Stream API golden files (spec §1.6, §1.7, §2, §3): exact request in, exact response out.

Each ``stream/*.json`` holds ``{"description", "setup", "request", "response"}``.

- ``setup.browser``: create a browser first; ``<browser_ref>`` / ``<guest_ref>`` then stand for its refs
  in the request and the expected response.
- ``request``: ``method``, ``path``, ``query`` (sent byte-for-byte, as curl or the SDKs put it on the
  wire), ``headers``, and ``body`` (a JSON value, sent compact) or ``rawBody`` (sent as is).
  ``<repeat:C:N>`` expands to ``N`` copies of ``C``.
- ``response``: ``status``, a subset of ``headers`` (exact values), and ``body`` (JSON, compared
  exactly, key order included) or ``text`` (compared exactly). ``<uuid>`` matches any lowercase UUID v4.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.contract import _golden as golden
from tests.factories.stream import create_browser
from tests.stream._wire import RAW_QUERY_HEADER, UUID4, raw_client

GOLDEN = Path(__file__).parent / "stream"
FILES = sorted(GOLDEN.glob("*.json"))
UUID_PATTERN = UUID4.pattern.strip("^$")
REQUIRED = {
    "browser_create",
    "browser_show",
    "browser_show_not_found",
    "event_create_get",
    "events_post",
    "edge_events_post",
    "error_400_unparseable_get",
    "error_400_missing_type",
    "error_400_missing_browser_id",
    "error_400_ext_too_many",
    "error_400_invalid_callback",
    "error_401_client_key",
    "error_401_edge_context",
    "error_404_event_browser",
    "error_413_post",
    "error_413_get",
    "jsonp_event_create",
    "jsonp_error_not_found",
}


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends golden query strings byte-for-byte; any 5xx fails the test."""
    async with raw_client(app) as c:
        yield c


def _fill(text: str, refs: dict[str, str]) -> str:
    return golden.fill(text, refs)


def _assert_matches(expected: Any, actual: Any, refs: dict[str, str], where: str = "$") -> None:
    if expected == "<uuid>":
        assert isinstance(actual, str), f"{where}: {actual!r} is not a string"
        assert UUID4.match(actual), f"{where}: {actual!r} is not a lowercase UUID v4"
    elif isinstance(expected, str):
        assert actual == _fill(expected, refs), f"{where}: {actual!r} != {_fill(expected, refs)!r}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key, value in expected.items():
            _assert_matches(value, actual[key], refs, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: {actual!r} is not an array"
        assert len(actual) == len(expected), f"{where}: {actual!r}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            _assert_matches(want, got, refs, f"{where}[{index}]")
    else:
        assert type(actual) is type(expected), f"{where}: {actual!r} is not a {type(expected).__name__}"
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def _text_pattern(expected: str, refs: dict[str, str]) -> re.Pattern[str]:
    pieces = [re.escape(_fill(piece, refs)) for piece in expected.split("<uuid>")]
    return re.compile(UUID_PATTERN.join(pieces), re.DOTALL)


async def _replay(client: httpx.AsyncClient, request: dict[str, Any], refs: dict[str, str]) -> httpx.Response:
    headers = [(k.encode(), _fill(v, refs).encode()) for k, v in request.get("headers", {}).items()]
    if "query" in request:
        headers.append((RAW_QUERY_HEADER, _fill(request["query"], refs).encode("utf-8")))
    content: bytes | None = None
    if "body" in request:
        content = json.dumps(
            golden.fill_json(request["body"], refs), separators=(",", ":"), ensure_ascii=False
        ).encode()
    elif "rawBody" in request:
        content = _fill(request["rawBody"], refs).encode()
    return await client.request(request["method"], _fill(request["path"], refs), content=content, headers=headers)


def test_every_required_golden_file_exists() -> None:
    assert {f.stem for f in FILES} >= REQUIRED, sorted(REQUIRED - {f.stem for f in FILES})


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
async def test_stream_golden_file(client: httpx.AsyncClient, path: Path) -> None:
    golden: dict[str, Any] = json.loads(path.read_bytes())  # noqa: ASYNC240 (a few KB from the repo)
    refs: dict[str, str] = {}
    if golden.get("setup", {}).get("browser"):
        created = await create_browser(client)
        refs = {"browser_ref": created["ref"], "guest_ref": created["customer_ref"]}

    response = await _replay(client, golden["request"], refs)

    expected = golden["response"]
    assert response.status_code == expected["status"], response.text
    for name, value in expected.get("headers", {}).items():
        assert response.headers.get(name) == value, (name, response.headers.get(name))
    if "body" in expected:
        _assert_matches(expected["body"], response.json(), refs)
    else:
        pattern = _text_pattern(expected["text"], refs)
        assert pattern.fullmatch(response.text), f"{response.text!r} does not match {expected['text']!r}"
