"""Stream ingestion in ``production`` mode (spec §3.5 rows 1, 7 and 8, §12.2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.config import Settings
from innkeeper.sessions.models import Session
from tests.conftest import API_TOKEN, CLIENT_KEY, POINT_OF_SALE
from tests.factories.stream import create_browser, event
from tests.stream._wire import (
    NOTHING,
    TRANSPORTS,
    Stored,
    Transport,
    assert_ok,
    assert_stream_error,
    raw_client,
    send,
    stored,
    stored_event,
)

CONTEXT_ID = "ctx-production-1"
FORCE_CLOSE_REFUSED = "FORCE_CLOSE is not supported in production environments"

per_transport = pytest.mark.parametrize("transport", TRANSPORTS)


@pytest.fixture
def environment() -> str:
    return "production"


@pytest.fixture
def settings(db_url: str, environment: str) -> Settings:
    """Production, with one accepted Cloud SDK context id (edge route ``sitecoreContextId=x``)."""
    return Settings(
        database_url=db_url,
        environment="production",
        client_key=CLIENT_KEY,
        api_token=API_TOKEN,
        point_of_sale=POINT_OF_SALE,
        context_ids=(CONTEXT_ID, "x"),
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with raw_client(app) as c:
        yield c


@pytest.fixture
async def browser(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create_browser(client)


async def _statuses(db: AsyncSession) -> list[str]:
    await db.rollback()
    rows = (await db.execute(select(Session.status))).scalars().all()
    await db.rollback()
    return list(rows)


@per_transport
async def test_force_close_is_refused_and_the_session_stays_open(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport
) -> None:
    assert_ok(await send(client, transport, event(browser["ref"])), browser=browser)
    assert await _statuses(db) == ["OPEN"]

    response = await send(client, transport, event(browser["ref"], "FORCE_CLOSE"))
    assert_stream_error(response, 400, FORCE_CLOSE_REFUSED)
    assert await _statuses(db) == ["OPEN"]
    assert await stored(db) == Stored(events=1, sessions=1)


async def test_force_close_is_refused_even_without_an_open_session(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    response = await send(client, "get", event(browser["ref"], "FORCE_CLOSE"))
    assert_stream_error(response, 400, FORCE_CLOSE_REFUSED)
    assert await stored(db) == NOTHING


async def test_ext_is_checked_before_force_close(client: httpx.AsyncClient, browser: dict[str, Any]) -> None:
    response = await send(client, "post", event(browser["ref"], "FORCE_CLOSE", ext={"a": {"b": 1}}))
    assert_stream_error(response, 400, "ext values must be string, number, boolean or array of those")


async def test_force_close_of_unknown_browser_is_404(client: httpx.AsyncClient) -> None:
    response = await send(client, "post", event("f7aabbca-1c1b-4fc2-be72-3e16294a4f03", "FORCE_CLOSE"))
    assert_stream_error(response, 404, "Invalid browser id/ref specified")


async def test_lowercase_force_close_is_a_custom_event(client: httpx.AsyncClient, browser: dict[str, Any]) -> None:
    assert_ok(await send(client, "post", event(browser["ref"], "force_close")), browser=browser)


@per_transport
async def test_unknown_point_of_sale_is_201_but_failed_and_not_sessionized(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], transport: Transport
) -> None:
    response = await send(client, transport, event(browser["ref"], pos="nowhere/else"))
    body = assert_ok(response, browser=browser)
    row = await stored_event(db, body["event_ref"])
    assert row.processing_status == "FAILED"
    assert row.failure_reason == "Unknown point of sale: nowhere/else"
    assert row.session_ref is None
    assert await stored(db) == Stored(events=1, sessions=0)


async def test_unknown_point_of_sale_is_visible_in_the_event_viewer(
    client: httpx.AsyncClient, admin_auth: tuple[str, str], browser: dict[str, Any]
) -> None:
    await send(client, "post", event(browser["ref"], pos="nowhere/else"))
    response = await client.get(f"/admin/v1/guests/{browser['customer_ref']}/events?status=failed", auth=admin_auth)
    assert response.status_code == 200
    body = response.json()
    assert body["debug"] is False
    [item] = body["items"]
    assert item["processingStatus"] == "FAILED"
    assert item["failureReason"] == "Unknown point of sale: nowhere/else"
    assert item["sessionRef"] is None
    assert "raw" not in item


async def test_known_point_of_sale_still_works(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any]
) -> None:
    body = assert_ok(await send(client, "post", event(browser["ref"])), browser=browser)
    row = await stored_event(db, body["event_ref"])
    assert row.processing_status == "SUCCESS"
    assert row.point_of_sale == POINT_OF_SALE


@pytest.mark.parametrize("context", ["unknown-ctx", ""])
async def test_edge_with_unknown_context_id_is_401(
    client: httpx.AsyncClient, db: AsyncSession, browser: dict[str, Any], context: str
) -> None:
    for via_header in (False, True):
        if via_header:
            response = await client.post(
                "/v1/events/v1.2/events?siteId=y",
                json={"client_key": "", **event(browser["ref"])},
                headers={"x-sitecore-contextid": context},
            )
        else:
            response = await client.post(
                f"/v1/events/v1.2/events?sitecoreContextId={context}&siteId=y",
                json={"client_key": "", **event(browser["ref"])},
            )
        assert_stream_error(response, 401, "Invalid client key specified", client_key="")
    assert await stored(db) == NOTHING


async def test_edge_with_a_configured_context_id_is_accepted(
    client: httpx.AsyncClient, browser: dict[str, Any]
) -> None:
    response = await client.post(
        f"/v1/events/v1.2/events?sitecoreContextId={CONTEXT_ID}&siteId=y",
        json={"client_key": "", "pos": "", **event(browser["ref"], pos="")},
    )
    assert_ok(response, browser=browser)
