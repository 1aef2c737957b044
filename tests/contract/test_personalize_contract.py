"""Flow execution golden files (spec personalize.md §2): exact request in, exact response out.

Each ``personalize/*.json`` holds ``{"description", "setup", "request", "response"}``.

- ``setup`` (every key optional):
  - ``flow``: a flow definition document, created through ``POST /v3/flowDefinitions`` and then moved
    through ``statuses`` (default ``["LIVE"]``; ``[]`` leaves it DRAFT) with ``PUT``. ``<flow_ref>``
    then stands for its ref.
  - ``browser``: create a browser (``browser/create.json``); ``<browser_ref>`` / ``<guest_ref>`` stand
    for its refs. ``identify``: an IDENTITY event sent for that browser (fields of the event message),
    which makes its guest a known customer.
  - ``settings``: ``Settings`` fields overridden for this file (e.g. strict not-found mode).
- ``request``: ``method``, ``path``, ``query`` (sent byte-for-byte), ``headers``, and ``body`` (a JSON
  value, sent compact) or ``rawBody`` (sent as is). ``<repeat:C:N>`` expands to ``N`` copies of ``C``.
- ``response``: ``status``; ``headers``: a subset, exact values; ``absentHeaders``: names that must not
  be sent; ``body`` (JSON, compared exactly, key order included; ``<uuid>`` matches any UUID v4) or
  ``text`` (the exact bytes: §2.6 says the body is the rendered template text, byte for byte).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from innkeeper.core.config import Settings
from tests.contract import _golden as golden
from tests.factories import flows
from tests.factories.stream import create_browser, event, post_event
from tests.stream._wire import RAW_QUERY_HEADER, UUID4, raw_client

GOLDEN = Path(__file__).parent / "personalize"
FILES = sorted(GOLDEN.glob("*.json"))
ERROR_FIELDS = ("status", "code", "message", "developerMessage", "moreInfoUrl")
REQUIRED = {
    # §2.6 / §2.7 / §2.8 examples
    "example_2_6_decision_offers",
    "example_2_7_invalid_identity",
    "example_2_8_by_email",
    "example_2_8_by_identifier_params",
    "example_2_8_cloud_sdk_shape",
    # §2.6 outcome table
    "outcome_variant",
    "outcome_not_found",
    "outcome_not_live",
    "outcome_not_eligible_channel",
    "outcome_not_eligible_pos",
    "outcome_not_in_audience",
    "outcome_not_allocated",
    "outcome_control",
    "outcome_error",
    # §2.7 error table
    "error_400_invalid_json",
    "error_400_missing_field",
    "error_400_missing_identity",
    "error_400_invalid_field",
    "error_401_invalid_client_key",
    "error_401_cloud_missing_context",
    "error_404_flow_not_found_strict",
    "error_405_method_not_allowed",
    "error_413_payload_too_large",
    "error_415_unsupported_media_type",
}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    return data


@pytest.fixture(params=FILES, ids=[f.stem for f in FILES])
def golden_file(request: pytest.FixtureRequest) -> dict[str, Any]:
    path: Path = request.param
    return _load(path)


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """The root settings, with the golden file's ``setup.settings`` applied (only for golden files)."""
    if "golden_file" not in request.fixturenames:
        return settings
    overrides: dict[str, Any] = request.getfixturevalue("golden_file").get("setup", {}).get("settings", {})
    return dataclasses.replace(settings, **overrides)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends golden query strings byte-for-byte; any 5xx fails the test."""
    async with raw_client(app) as c:
        yield c


def _assert_matches(expected: Any, actual: Any, refs: dict[str, str], where: str = "$") -> None:
    if expected == "<uuid>":
        assert isinstance(actual, str) and UUID4.match(actual), f"{where}: {actual!r} is not a lowercase UUID v4"
    elif isinstance(expected, str):
        assert actual == golden.fill(expected, refs), f"{where}: {actual!r} != {golden.fill(expected, refs)!r}"
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


async def _setup(client: httpx.AsyncClient, setup: dict[str, Any]) -> dict[str, str]:
    refs: dict[str, str] = {}
    if "flow" in setup:
        flow = await flows.create(client, setup["flow"])
        for status in setup.get("statuses", ["LIVE"]):
            flow = await flows.set_status(client, flow, status)
        refs["flow_ref"] = flow["ref"]
    if setup.get("browser"):
        created = await create_browser(client)
        refs.update(browser_ref=created["ref"], guest_ref=created["customer_ref"])
        if "identify" in setup:
            await post_event(client, event(created["ref"], "IDENTITY", **setup["identify"]))
    return refs


async def _replay(client: httpx.AsyncClient, request: dict[str, Any], refs: dict[str, str]) -> httpx.Response:
    headers = [(k.encode(), golden.fill(v, refs).encode()) for k, v in request.get("headers", {}).items()]
    if "query" in request:
        headers.append((RAW_QUERY_HEADER, golden.fill(request["query"], refs).encode("utf-8")))
    content: bytes | None = None
    if "body" in request:
        filled = golden.fill_json(request["body"], refs)
        content = json.dumps(filled, separators=(",", ":"), ensure_ascii=False).encode()
    elif "rawBody" in request:
        content = golden.fill(request["rawBody"], refs).encode()
    return await client.request(request["method"], golden.fill(request["path"], refs), content=content, headers=headers)


def test_every_required_golden_file_exists() -> None:
    assert {f.stem for f in FILES} >= REQUIRED, sorted(REQUIRED - {f.stem for f in FILES})


def test_golden_files_are_well_formed() -> None:
    """Every file says what it shows; error bodies spell out all five §2.7 fields."""
    for path in FILES:
        data = _load(path)
        assert set(data) == {"description", "setup", "request", "response"}, path.name
        assert data["description"].strip(), path.name
        response = data["response"]
        assert ("body" in response) != ("text" in response), f"{path.name}: exactly one of body/text"
        if response["status"] >= 400:
            assert list(response["body"]) == list(ERROR_FIELDS), f"{path.name}: error body fields"
            assert response["body"]["developerMessage"].split(": ")[0].isupper(), path.name
        else:
            assert "x-innkeeper-flow-outcome" in response["headers"], f"{path.name}: name the outcome"


async def test_personalize_golden_file(client: httpx.AsyncClient, golden_file: dict[str, Any]) -> None:
    refs = await _setup(client, golden_file["setup"])

    response = await _replay(client, golden_file["request"], refs)

    expected = golden_file["response"]
    assert response.status_code == expected["status"], response.text
    for name, value in expected.get("headers", {}).items():
        assert response.headers.get(name) == golden.fill(value, refs), (name, response.headers.get(name))
    for name in expected.get("absentHeaders", []):
        assert name not in response.headers, (name, response.headers.get(name))
    if "text" in expected:
        assert response.text == golden.fill(expected["text"], refs)
    else:
        _assert_matches(expected["body"], response.json(), refs)
