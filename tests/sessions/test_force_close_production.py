"""FORCE_CLOSE is refused in production (spec §3.5 check 7, §4.2)."""

from __future__ import annotations

import httpx
import pytest

from innkeeper.core.runtime import Runtime
from tests.factories.sessions import open_sessions, send
from tests.factories.stream import create_browser


@pytest.fixture
def environment() -> str:
    return "production"


async def test_force_close_is_400_in_production_and_leaves_the_session_open(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    browser = await create_browser(client)
    await send(client, browser["ref"])
    body = await send(client, browser["ref"], "FORCE_CLOSE", expect=400)
    assert body["status"] == "BAD_REQUEST"
    [row] = await open_sessions(runtime, browser["ref"])
    assert row.num_events == 1
