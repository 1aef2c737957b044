"""What the reminder and report tests share: a real SMTP server, the outbound client that delivers to it,
and a session that only browses (closed at once, so it counts as BROWSED)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from innkeeper.connections import service as connections
from innkeeper.core.config import Settings
from tests.connections.servers import SmtpServer, smtp_server
from tests.factories.stream import create_browser, event, post_event
from tests.support.clock import FrozenClock


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def outbound(settings: Settings, clock: FrozenClock) -> connections.Outbound:
    return connections.Outbound.from_settings(settings, clock=clock)


async def browse(client: httpx.AsyncClient) -> None:
    browser = await create_browser(client)
    await post_event(client, event(browser["ref"], "VIEW"))
    await post_event(client, event(browser["ref"], "FORCE_CLOSE"))
