"""Order REST API v2.1 golden files (spec §1.7, §9): exact request in, exact response out.

Each ``orders/*.json`` holds ``{"description", "setup", "request", "response"}``.

- ``setup``: requests run first with admin credentials, each expecting a 2xx; a step with ``"as": "x"``
  makes ``<x_ref>`` stand for the ``ref`` of its response in later steps, the request and the
  expected response.
- ``request``: ``method``, ``path``, ``auth`` (``admin`` (default), ``rw``, ``ro``, ``none`` or
  ``wrong``), ``headers``, and ``body`` (a JSON value, sent compact) or ``rawBody`` (sent as is;
  ``<repeat:C:N>`` expands to ``N`` copies of ``C``).
- ``response``: ``status``, a subset of ``headers`` (exact values), and ``body`` compared exactly,
  key order included; inside any string ``<uuid>`` matches a generated lowercase UUID v4.
  Timestamps are exact: the app runs on a frozen clock.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CLIENT_KEY
from tests.contract import _golden as golden
from tests.orders._helpers import ADMIN, token

GOLDEN = Path(__file__).parent / "orders"
FILES = sorted(GOLDEN.glob("*.json"))
UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
REQUIRED = {
    # orders (§9.1)
    "order_create",
    "order_list",
    "order_list_expand",
    "order_get",
    "order_put",
    "order_patch",
    "order_delete",
    # order items (§9.2)
    "order_item_create",
    "order_item_list",
    "order_item_get",
    "order_item_put",
    "order_item_patch",
    "order_item_delete",
    # contact, consumers, data extensions (§9.3)
    "contact_create",
    "contact_get",
    "contact_put",
    "contact_patch",
    "contact_delete",
    "consumer_create",
    "consumer_list",
    "consumer_get",
    "consumer_put",
    "consumer_patch",
    "consumer_delete",
    "order_extension_create",
    "order_extension_get",
    "order_extension_put",
    "order_extension_patch",
    "order_extension_delete",
    "order_extension_delete_fields",
    "item_extension_create",
    "item_extension_get",
    "item_extension_put",
    "item_extension_patch",
    "item_extension_delete",
    "item_extension_delete_fields",
    # the REST error rows of §1.7
    "error_400_unknown_field",
    "error_400_missing_required",
    "error_400_malformed_json",
    "error_400_bad_query",
    "error_400_extension_name",
    "error_401_missing",
    "error_401_wrong_token",
    "error_403_read_only_token",
    "error_404_order",
    "error_404_order_item",
    "error_404_contact",
    "error_409_duplicate_reference_id",
    "error_409_extension_exists",
    "error_413_body_too_large",
    "error_415_content_type",
}


def _fill(text: str, refs: dict[str, str]) -> str:
    return golden.fill(text, refs)


def _assert_matches(expected: Any, actual: Any, refs: dict[str, str], where: str = "$") -> None:
    if isinstance(expected, str):
        assert isinstance(actual, str), f"{where}: {actual!r} is not a string"
        pieces = [re.escape(_fill(piece, refs)) for piece in expected.split("<uuid>")]
        assert re.fullmatch(UUID_PATTERN.join(pieces), actual), f"{where}: {actual!r} != {expected!r}"
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


async def _credentials(client: httpx.AsyncClient, kind: str) -> tuple[str, str] | None:
    if kind == "admin":
        return ADMIN
    if kind in ("ro", "rw"):
        return await token(client, kind)
    if kind == "wrong":
        return (CLIENT_KEY, "not-a-token")
    assert kind == "none", kind
    return None


async def _setup(client: httpx.AsyncClient, steps: list[dict[str, Any]]) -> dict[str, str]:
    refs: dict[str, str] = {}
    for step in steps:
        body = golden.fill_json(step.get("body"), refs)
        response = await client.request(step["method"], _fill(step["path"], refs), json=body, auth=ADMIN)
        assert response.status_code < 300, (step, response.text)
        if "as" in step:
            refs[f"{step['as']}_ref"] = response.json()["ref"]
    return refs


async def _replay(client: httpx.AsyncClient, request: dict[str, Any], refs: dict[str, str]) -> httpx.Response:
    headers = {k: _fill(v, refs) for k, v in request.get("headers", {}).items()}
    content: bytes | None = None
    if "body" in request:
        content = json.dumps(
            golden.fill_json(request["body"], refs), separators=(",", ":"), ensure_ascii=False
        ).encode()
        headers.setdefault("content-type", "application/json")
    elif "rawBody" in request:
        content = _fill(request["rawBody"], refs).encode()
    auth = await _credentials(client, request.get("auth", "admin"))
    return await client.request(
        request["method"], _fill(request["path"], refs), content=content, headers=headers, auth=auth
    )


def test_every_required_golden_file_exists() -> None:
    assert {f.stem for f in FILES} >= REQUIRED, sorted(REQUIRED - {f.stem for f in FILES})


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
async def test_order_golden_file(client: httpx.AsyncClient, path: Path) -> None:
    golden: dict[str, Any] = json.loads(path.read_bytes())  # noqa: ASYNC240 (a few KB from the repo)
    refs = await _setup(client, golden.get("setup", []))

    response = await _replay(client, golden["request"], refs)

    expected = golden["response"]
    assert response.status_code == expected["status"], response.text
    for name, value in expected.get("headers", {}).items():
        assert response.headers.get(name) == value, (name, response.headers.get(name))
    _assert_matches(expected["body"], response.json(), refs)
