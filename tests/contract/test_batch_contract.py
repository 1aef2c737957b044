"""Batch API golden files (spec §10): exact request in, exact response out, errors included.

Each ``batch/*.json`` holds ``{"description", "request", "response"}``; ``request.auth`` sends the
admin Basic credentials; ``<upload-url>`` in a response matches our signed upload URL.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from innkeeper.core.config import Settings

GOLDEN = Path(__file__).parent / "batch"
FILES = sorted(GOLDEN.glob("*.json"))
UPLOAD_URL = re.compile(r"^http://testserver/v2/batch-files/[0-9a-f-]{36}\?expires=\d+&signature=[0-9a-f]{64}$")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return Settings(**{**{f: getattr(settings, f) for f in settings.__dataclass_fields__}, "data_dir": str(tmp_path)})


def _matches(expected: Any, actual: Any, where: str = "$") -> None:
    if expected == "<upload-url>":
        assert isinstance(actual, str) and UPLOAD_URL.match(actual), f"{where}: {actual!r}"
        return
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r}"
        assert list(actual) == list(expected), f"{where}: keys {list(actual)} != {list(expected)}"
        for key, value in expected.items():
            _matches(value, actual[key], f"{where}.{key}")
        return
    assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def test_golden_files_exist() -> None:
    assert {f.stem for f in FILES} >= {
        "allocate_201",
        "allocate_400_size",
        "allocate_401",
        "status_404",
        "upload_403_forged",
        "inspect_list_empty",
    }


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
async def test_golden(path: Path, client: httpx.AsyncClient, admin_auth: tuple[str, str]) -> None:
    case = json.loads(path.read_text())  # noqa: ASYNC240 - a small golden file
    request = case["request"]
    kwargs: dict[str, Any] = {}
    if request.get("auth"):
        kwargs["auth"] = admin_auth
    if "body" in request:
        kwargs["json"] = request["body"]
    elif "rawBody" in request:
        kwargs["content"] = request["rawBody"].encode()
    response = await client.request(request["method"], request["path"], **kwargs)
    assert response.status_code == case["response"]["status"], response.text
    _matches(case["response"]["body"], response.json())
