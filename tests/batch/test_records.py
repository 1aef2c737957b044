"""Batch records applied in bulk (one chunk for the whole file) and the delete modes (spec §10.7)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.config import Settings
from innkeeper.core.runtime import Runtime
from innkeeper.guests.models import Guest, GuestExtension, GuestIdentifier
from innkeeper.orders.models import Order, OrderContact, OrderItem
from innkeeper.sessions.models import Event
from innkeeper.worker import run_jobs_once
from tests.batch.test_api import count, error_log, rows, status, submit
from tests.factories.batch import guest_record, gz, ndjson, order_record, record
from tests.factories.stream import create_browser, event, post_event

Auth = tuple[str, str]
GUEST_A = "0a0a0a0a-0000-4000-8000-000000000001"
GUEST_B = "0b0b0b0b-0000-4000-8000-000000000002"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, batch_chunk_lines=50)


async def run(client: httpx.AsyncClient, auth: Auth, runtime: Runtime, lines: list[dict[str, Any] | str]) -> Any:
    ref = await submit(client, auth, gz(ndjson(lines)))
    await run_jobs_once(runtime)
    return (await status(client, auth, ref))["status"]


async def test_records_of_one_chunk_see_each_other(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    dup = str(uuid.uuid4())
    lines: list[dict[str, Any] | str] = [
        guest_record(1, extensions=[{"name": "ext", "key": "default", "tier": "gold"}]),
        order_record(1, guest=1),  # contact: the guest created just above
        record("guest", {"identifiers": [{"provider": "CRM", "id": "CRM-1"}], "lastName": "Later"}),
        record("guest", {"identifiers": [{"provider": "CRM", "id": "CRM-1"}]}, mode="create", ref=dup),
        order_record(1, guest=2),  # the same order again: now for a new guest, items replaced
        record(
            "guest",
            {"identifiers": [{"provider": "CRM", "id": "CRM-1"}], "extensions": [{"name": "ext", "points": 3}]},
        ),
        record("guest", {"email": "guest1@example.com", "city": "Cork"}),  # email fallback, same chunk
    ]
    body = await run(client, admin_auth, runtime, lines)
    assert (body["recordsTotal"], body["recordsSucceeded"], body["recordsFailed"]) == (7, 6, 1)
    assert await error_log(client, body["log"]) == [{"ref": dup, "code": "409", "message": "Identity already exists"}]
    assert await count(db, Guest) == 2
    assert await count(db, GuestIdentifier) == 2  # CRM-1, and CRM-2 of the second order's new contact
    [guest] = await rows(db, select(Guest.ref, Guest.last_name, Guest.city).where(Guest.first_name == "Guest1"))
    assert guest[1:] == ("Later", "Cork")
    assert await rows(db, select(GuestExtension.data)) == [({"tier": "gold", "points": 3},)]
    [order] = await rows(db, select(Order.ref, Order.guest_ref))
    assert order[1] != guest[0]
    assert await count(db, OrderItem) == 1
    assert await rows(db, select(OrderContact.guest_ref)) == [(order[1],)]


async def test_a_record_the_database_refuses_is_retried_alone(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession, db_kind: str
) -> None:
    async with runtime.sessions() as session, session.begin():
        for statement in _refusing_trigger(db_kind):
            await session.execute(text(statement))
    try:
        boom = str(uuid.uuid4())
        lines: list[dict[str, Any] | str] = [
            guest_record(1),
            guest_record(2, ref=boom, firstName="Boom"),
            order_record(1, guest=1),
            record("guest", {"identifiers": [{"provider": "CRM", "id": "CRM-1"}], "lastName": "Later"}),
        ]
        body = await run(client, admin_auth, runtime, lines)
    finally:
        async with runtime.sessions() as session, session.begin():
            drop = "DROP TRIGGER IF EXISTS innkeeper_test_refuse"
            await session.execute(text(f"{drop} ON guests" if db_kind == "postgres" else drop))
    assert (body["recordsTotal"], body["recordsSucceeded"], body["recordsFailed"]) == (4, 3, 1)
    assert await error_log(client, body["log"]) == [{"ref": boom, "code": "500", "message": "Internal server error"}]
    assert await rows(db, select(Guest.first_name, Guest.last_name)) == [("Guest1", "Later")]
    assert await count(db, Order) == 1


def _refusing_trigger(db_kind: str) -> list[str]:
    """A trigger refusing guests named Boom, as a constraint would."""
    if db_kind == "postgres":
        return [
            "CREATE OR REPLACE FUNCTION innkeeper_test_refuse() RETURNS trigger AS $$ BEGIN "
            "IF NEW.first_name = 'Boom' THEN RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER innkeeper_test_refuse BEFORE INSERT OR UPDATE ON guests "
            "FOR EACH ROW EXECUTE FUNCTION innkeeper_test_refuse()",
        ]
    return [
        "CREATE TRIGGER innkeeper_test_refuse BEFORE INSERT ON guests WHEN NEW.first_name = 'Boom' "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ]


async def _guest_with_order_and_event(client: httpx.AsyncClient, auth: Auth, runtime: Runtime) -> None:
    tracking = record(
        "tracking", {"type": "VIEW", "createdAt": "2025-01-01T10:00:00Z", "guestRef": GUEST_A}, mode="insert"
    )
    body = await run(client, auth, runtime, [guest_record(1, guest_ref=GUEST_A), order_record(1, guest=1), tracking])
    assert body["code"] == "success"


async def test_guest_delete_keeps_orders_detached(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    await _guest_with_order_and_event(client, admin_auth, runtime)
    delete = record("guest", {"identifiers": [{"provider": "CRM", "id": "CRM-1"}]}, mode="delete")
    body = await run(client, admin_auth, runtime, [delete])
    assert body["code"] == "success"
    await run_jobs_once(runtime)  # the purge
    assert await count(db, Guest) == 0
    assert await count(db, Event) == 0
    assert await rows(db, select(Order.guest_ref)) == [(None,)]
    assert await rows(db, select(OrderContact.guest_ref)) == [(None,)]
    assert await count(db, OrderItem) == 1


async def test_gdpr_delete_also_purges_orders(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    await _guest_with_order_and_event(client, admin_auth, runtime)
    body = await run(client, admin_auth, runtime, [record("guest", {"ref": GUEST_A}, mode="gdpr_delete")])
    assert body["code"] == "success"
    await run_jobs_once(runtime)
    for model in (Guest, Event, Order, OrderItem, OrderContact):
        assert await count(db, model) == 0


@pytest.mark.parametrize("log_info", [False, True])
async def test_delete_errors_and_several_matches(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession, log_info: bool
) -> None:
    runtime.settings = dataclasses.replace(runtime.settings, batch_log_info=log_info)
    refs = [str(uuid.uuid4()) for _ in range(4)]
    both = [{"provider": "CRM", "id": "CRM-1"}, {"provider": "CRM", "id": "CRM-2"}]
    lines: list[dict[str, Any] | str] = [
        guest_record(1, guest_ref=GUEST_A),
        guest_record(2, guest_ref=GUEST_B),
        record("guest", {"identifiers": both}, mode="delete", ref=refs[0]),  # 2 matches: A (oldest) goes
        record("guest", {"identifiers": [{"provider": "CRM", "id": "nobody"}]}, mode="delete", ref=refs[1]),
        record("guest", {"firstName": "Jane"}, mode="gdpr_delete", ref=refs[2]),
        record("order", {"referenceId": "ORDER-404"}, mode="delete", ref=refs[3]),
    ]
    body = await run(client, admin_auth, runtime, lines)
    assert (body["recordsTotal"], body["recordsSucceeded"], body["recordsFailed"]) == (6, 3, 3)
    info = [{"ref": refs[0], "code": "200", "message": "2 matches found for this guest, 1st match deleted"}]
    assert await error_log(client, body["log"]) == [
        *(info if log_info else []),
        {"ref": refs[1], "code": "404", "message": "Guest not found"},
        {"ref": refs[2], "code": "400", "message": "Not enough identifying information"},
        {"ref": refs[3], "code": "404", "message": "Order not found"},
    ]
    assert await rows(db, select(Guest.ref).where(Guest.deleted_at.is_(None))) == [(GUEST_B,)]


async def test_order_delete_removes_the_order_tree(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    lines: list[dict[str, Any] | str] = [
        guest_record(1),
        order_record(1, guest=1),
        order_record(2, guest=1),
        record("order", {"referenceId": "ORDER-1"}, mode="delete"),
    ]
    body = await run(client, admin_auth, runtime, lines)
    assert body["code"] == "success"
    assert await rows(db, select(Order.reference_id)) == [("ORDER-2",)]
    assert await count(db, OrderItem) == 1
    assert await count(db, OrderContact) == 1


async def test_deleting_a_guest_in_an_open_session_is_not_allowed(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    browser = await create_browser(client)
    identity = event(browser["ref"], "IDENTITY", identifiers=[{"provider": "CRM", "id": "CRM-OPEN"}])
    await post_event(client, identity)  # the guest is now browsing: its session is OPEN
    ref = str(uuid.uuid4())
    delete = record("guest", {"identifiers": [{"provider": "CRM", "id": "CRM-OPEN"}]}, mode="gdpr_delete", ref=ref)
    body = await run(client, admin_auth, runtime, [delete])
    assert (body["recordsTotal"], body["recordsFailed"]) == (1, 1)
    assert await error_log(client, body["log"]) == [{"ref": ref, "code": "403", "message": "Action not allowed"}]
    assert await rows(db, select(Guest.ref).where(Guest.deleted_at.is_(None))) == [(browser["customer_ref"],)]

    await post_event(client, event(browser["ref"], "FORCE_CLOSE"))  # once the session is closed it may go
    body = await run(client, admin_auth, runtime, [delete])
    assert body["code"] == "success"
    assert await rows(db, select(Guest.ref).where(Guest.deleted_at.is_(None))) == []
