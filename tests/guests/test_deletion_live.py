"""Against a real `innkeeper serve` (in-process workers): a deleted guest is purged within 60 s."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from innkeeper.core.clock import SystemClock
from innkeeper.guests import deletion
from tests.support.database import run_sync
from tests.support.live import LiveServer, live_server

PURGE_DEADLINE_S = 60.0


def _count(db_url: str, sql: str, **params: str) -> int:
    result: list[int] = []

    async def query() -> None:
        engine = create_async_engine(db_url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                result.append(int((await conn.execute(sa.text(sql), params)).scalar_one()))
        finally:
            await engine.dispose()

    run_sync(query)
    return result[0]


def _delete(server: LiveServer, db_url: str, guest_ref: str) -> None:
    """DELETE /v2.1/guests/{ref} with Basic auth; the service call it makes where the route is missing."""
    with server.admin() as admin:
        paths = admin.get("/openapi.json").json()["paths"]
        if any(
            path.startswith("/v2.1/guests/{") and path.count("/") == 3 and "delete" in ops
            for path, ops in paths.items()
        ):
            response = admin.delete(f"/v2.1/guests/{guest_ref}")
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "DELETION_SCHEDULED"
            return

    async def schedule() -> None:
        engine = create_async_engine(db_url, poolclass=NullPool)
        try:
            async with AsyncSession(engine) as session:
                await deletion.schedule(session, guest_ref, actor="live-test", clock=SystemClock())
                await session.commit()
        finally:
            await engine.dispose()

    run_sync(schedule)


def test_serve_purges_a_deleted_guest_within_60_seconds(db_url: str, tmp_path: Path) -> None:
    with live_server(db_url, tmp_path) as server:
        created = httpx.get(f"{server.base_url}/v1.2/browser/create.json", params={"client_key": server.client_key})
        browser = created.json()["ref"]
        event = {
            "client_key": server.client_key,
            "channel": "WEB",
            "type": "IDENTITY",
            "pos": server.pos,
            "browser_id": browser,
            "email": "live.delete@example.org",
            "firstname": "Livia",
        }
        sent = httpx.post(f"{server.base_url}/v1.2/events", json=event)
        assert sent.status_code == 201, sent.text
        guest_ref = sent.json()["customer_ref"]
        assert _count(db_url, "SELECT count(*) FROM events WHERE guest_ref = :g", g=guest_ref) == 1

        started = time.monotonic()
        _delete(server, db_url, guest_ref)
        show = httpx.get(
            f"{server.base_url}/v1.2/browser/{browser}/show.json", params={"client_key": server.client_key}
        )
        assert show.status_code == 404 and show.json()["error_msg"] == "Invalid browser id/ref specified"
        while _count(db_url, "SELECT count(*) FROM guests WHERE ref = :g", g=guest_ref):
            assert time.monotonic() - started < PURGE_DEADLINE_S, f"not purged in 60 s:\n{server.log_tail()}"
            time.sleep(0.25)
        elapsed = time.monotonic() - started

    assert elapsed < PURGE_DEADLINE_S
    assert _count(db_url, "SELECT count(*) FROM events WHERE guest_ref = :g", g=guest_ref) == 0
    assert _count(db_url, "SELECT count(*) FROM audit_log WHERE completed_at IS NOT NULL") == 1
