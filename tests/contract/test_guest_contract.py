"""Guest REST API golden files (spec §1.7, §8): exact request in, exact response out.

Each ``guests/*.json`` holds ``{"description", "setup", "request", "response"}``.

- ``setup``: requests run first, in order (``method``, ``path``, ``body``), each expected to succeed;
  ``capture`` maps a placeholder name to a top-level field of its response (``{"guest_ref": "ref"}``).
  ``{"token": "ro"}`` creates an API token of that scope instead; ``<ro_token>`` then holds its value.
- ``request``: ``method``, ``path`` (with its query string), ``auth`` (``admin`` by default, ``none``,
  ``wrong``, or a token placeholder name such as ``ro_token``), ``headers``, and ``body`` (a JSON
  value, sent compact) or ``rawBody`` (sent as is; ``<repeat:C:N>`` expands to ``N`` copies of ``C``).
- ``response``: ``status``, a subset of ``headers`` (exact values), and ``body`` (JSON, compared
  exactly, key order included). ``<base>`` is the server's base URL, ``<uuid>`` matches any lowercase
  UUID v4, other ``<name>`` placeholders are captured values. The clock is frozen at
  2026-01-15T09:00:00.000Z, so timestamps are exact.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_TOKEN, CLIENT_KEY
from tests.contract import _golden as golden

GOLDEN = Path(__file__).parent / "guests"
FILES = sorted(GOLDEN.glob("*.json"))
BASE = "http://testserver"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
REQUIRED = {
    # §8 examples
    "guest_create",
    "guest_search_by_email",
    "guest_retrieve",
    "guest_replace",
    "guest_patch",
    "guest_delete",
    "guest_v2_retrieve",
    "guest_v2_post_update",
    "extension_create",
    "extension_list",
    "extension_get",
    "extension_get_alias",
    "extension_replace",
    "extension_merge",
    "extension_delete",
    "extension_delete_fields",
    "guest_retrieve_orders",
    # §8.6 legacy v2 extensions
    "extension_v2_create",
    "extension_v2_get",
    "extension_v2_list",
    "extension_v2_replace",
    # §1.7 error rows
    "error_400_guest_type",
    "error_400_unknown_field",
    "error_400_malformed_json",
    "error_400_search_identifier_pair",
    "error_400_limit",
    "error_400_extension_nested",
    "error_401_missing",
    "error_401_wrong_token",
    "error_403_read_only_token",
    "error_404_guest",
    "error_404_deleted_guest",
    "error_404_extension",
    "error_405_v2_patch",
    "error_405_v2_extension_patch",
    "error_409_identifier",
    "error_409_extension_name",
    "error_409_v2_extension_name",
    "error_413_body",
    "error_415_content_type",
}


def _fill(text: str, refs: dict[str, str]) -> str:
    return golden.fill(text.replace("<base>", BASE), refs)


def _fill_json(value: Any, refs: dict[str, str]) -> Any:
    return golden.fill_json(golden.fill_json(value, {"base": BASE}), refs)


def _assert_matches(expected: Any, actual: Any, refs: dict[str, str], where: str = "$") -> None:
    if expected == "<uuid>":
        assert isinstance(actual, str) and UUID4.match(actual), f"{where}: {actual!r} is not a lowercase UUID v4"
    elif isinstance(expected, str) and "<uuid>" in expected:
        pieces = [re.escape(_fill(piece, refs)) for piece in expected.split("<uuid>")]
        pattern = UUID4.pattern.strip("^$").join(pieces)
        assert isinstance(actual, str) and re.fullmatch(pattern, actual), f"{where}: {actual!r} !~ {expected!r}"
    elif isinstance(expected, str):
        assert actual == _fill(expected, refs), f"{where}: {actual!r} != {_fill(expected, refs)!r}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key, value in expected.items():
            _assert_matches(value, actual[key], refs, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for index, (want, got) in enumerate(zip(expected, actual, strict=True)):
            _assert_matches(want, got, refs, f"{where}[{index}]")
    else:
        assert type(actual) is type(expected), f"{where}: {actual!r} is not a {type(expected).__name__}"
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


async def _setup(client: httpx.AsyncClient, steps: list[dict[str, Any]], refs: dict[str, str]) -> None:
    admin = (CLIENT_KEY, API_TOKEN)
    for step in steps:
        if "token" in step:
            scope = step["token"]
            response = await client.post("/admin/v1/api-tokens", json={"label": scope, "scope": scope}, auth=admin)
            assert response.status_code == 201, response.text
            refs[f"{scope}_token"] = response.json()["token"]
            continue
        body = _fill_json(step["body"], refs) if "body" in step else None
        response = await client.request(step["method"], _fill(step["path"], refs), json=body, auth=admin)
        assert response.status_code < 300, (step, response.text)
        for name, field in step.get("capture", {}).items():
            refs[name] = response.json()[field]


def _auth(spec: str, refs: dict[str, str]) -> tuple[str, str] | None:
    if spec == "none":
        return None
    if spec == "admin":
        return (CLIENT_KEY, API_TOKEN)
    if spec == "wrong":
        return (CLIENT_KEY, "not-a-token")
    return (CLIENT_KEY, refs[spec])


def test_every_required_golden_file_exists() -> None:
    assert {f.stem for f in FILES} >= REQUIRED, sorted(REQUIRED - {f.stem for f in FILES})


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
async def test_guest_golden_file(client: httpx.AsyncClient, path: Path) -> None:
    golden: dict[str, Any] = json.loads(path.read_bytes())  # noqa: ASYNC240 (a few KB from the repo)
    refs: dict[str, str] = {}
    await _setup(client, golden.get("setup", []), refs)

    request = golden["request"]
    content: bytes | None = None
    headers = {k: _fill(v, refs) for k, v in request.get("headers", {}).items()}
    if "body" in request:
        content = json.dumps(_fill_json(request["body"], refs), separators=(",", ":"), ensure_ascii=False).encode()
        headers.setdefault("content-type", "application/json")
    elif "rawBody" in request:
        content = _fill(request["rawBody"], refs).encode()
    auth = _auth(request.get("auth", "admin"), refs)
    response = await client.request(
        request["method"], _fill(request["path"], refs), content=content, headers=headers, auth=auth
    )

    expected = golden["response"]
    assert response.status_code == expected["status"], response.text
    for name, value in expected.get("headers", {}).items():
        assert response.headers.get(name) == value, (name, response.headers.get(name))
    _assert_matches(expected["body"], response.json(), refs)
