"""One chunk, many records: failures stay per record, a guest's records apply in file order, and the
rows the chunk writes in bulk (plain rows, Core INSERTs) read back exactly as mapped rows would."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.config import Settings
from innkeeper.core.runtime import Runtime
from innkeeper.guests.models import Guest, GuestExtension, GuestIdentifier
from innkeeper.orders.models import Order, OrderContact, OrderExtension, OrderItem
from tests.batch.test_api import count, error_log, rows
from tests.batch.test_records import Auth, run
from tests.factories.batch import guest_record, order_record, record
from tests.support.clock import FrozenClock


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, batch_chunk_lines=100)  # every file below is one chunk


async def test_failing_records_of_a_chunk_leave_the_others_imported(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    bad_country, taken, unknown_mode = (str(uuid.uuid4()) for _ in range(3))
    lines: list[dict[str, Any] | str] = [
        guest_record(1),
        "{not json",
        guest_record(2),
        guest_record(9, ref=bad_country, country="I1"),
        order_record(1, guest=1),
        record("guest", {"identifiers": [{"provider": "CRM", "id": "CRM-2"}]}, mode="create", ref=taken),
        record("guest", {"identifiers": [{"provider": "CRM", "id": "CRM-3"}]}, mode="replace", ref=unknown_mode),
        guest_record(3),
        order_record(2, guest=3),
    ]
    body = await run(client, admin_auth, runtime, lines)
    assert (body["recordsTotal"], body["recordsSucceeded"], body["recordsFailed"]) == (9, 5, 4)
    assert await error_log(client, body["log"]) == [
        {"ref": "null", "code": "400", "message": "Failed to parse import line"},
        {
            "ref": bad_country,
            "code": "400",
            "message": "Validation error: value.country: must be an ISO 3166-1 alpha-2 code",
        },
        {"ref": taken, "code": "409", "message": "Identity already exists"},
        {"ref": unknown_mode, "code": "402", "message": "Unsupported mode"},
    ]
    names = await rows(db, select(Guest.first_name).order_by(Guest.first_name))
    assert names == [("Guest1",), ("Guest2",), ("Guest3",)]
    assert await count(db, GuestIdentifier) == 3
    orders = await rows(
        db,
        select(Order.reference_id, Guest.first_name)
        .join(Guest, Guest.ref == Order.guest_ref)
        .order_by(Order.reference_id),
    )
    assert orders == [("ORDER-1", "Guest1"), ("ORDER-2", "Guest3")]
    assert await count(db, OrderItem) == 2
    assert await count(db, OrderContact) == 2


async def test_records_of_one_guest_apply_in_file_order(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession
) -> None:
    crm = [{"provider": "CRM", "id": "CRM-7"}]
    lines: list[dict[str, Any] | str] = [
        record("guest", {"identifiers": crm, "city": "Cork", "phoneNumbers": ["+3531"], "lastName": "First"}),
        record("guest", {"identifiers": crm, "lastName": "Second"}, mode="insert"),  # replaces: city, phones cleared
        record(
            "guest",
            {
                "identifiers": [*crm, {"provider": "LOYALTY", "id": "L-7"}],
                "email": "seven@example.com",
                "extensions": [{"name": "ext", "key": "default", "tier": "silver", "points": 1}],
            },
        ),
        record("guest", {"identifiers": crm, "extensions": [{"name": "ext", "tier": "gold"}]}),  # merged
        order_record(1, guest=7),
        order_record(1, guest=7, mode="upsert"),  # the same order again: items replaced, not added
        record("guest", {"identifiers": [{"provider": "LOYALTY", "id": "L-7"}], "firstName": "Last"}),
    ]
    body = await run(client, admin_auth, runtime, lines)
    assert body["code"] == "success", body
    [guest] = await rows(
        db,
        select(
            Guest.ref, Guest.first_name, Guest.last_name, Guest.city, Guest.phone_numbers, Guest.emails, Guest.email
        ),
    )
    assert guest[1:] == ("Last", "Second", None, [], ["seven@example.com"], "seven@example.com")
    identifiers = await rows(
        db, select(GuestIdentifier.provider, GuestIdentifier.guest_ref).order_by(GuestIdentifier.id)
    )
    assert identifiers == [("CRM", guest[0]), ("LOYALTY", guest[0])]
    assert await rows(db, select(GuestExtension.data)) == [({"tier": "gold", "points": 1},)]
    assert await rows(db, select(Order.guest_ref)) == [(guest[0],)]
    assert await count(db, OrderItem) == 1
    assert await count(db, OrderContact) == 1


async def test_bulk_rows_read_back_like_mapped_rows(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession, clock: FrozenClock
) -> None:
    now = clock.now()
    order = order_record(1, guest=1)
    item = order["value"]["orderItems"][0]
    del item["quantity"]  # the column default (1) applies
    item["extensions"] = [{"name": "ext", "key": "default", "size": "L"}]
    order["value"]["extensions"] = [{"name": "ext", "key": "default", "promo": True}]
    lines: list[dict[str, Any] | str] = [
        guest_record(1, lastSeen="2025-02-01T10:00:00Z", extensions=[{"name": "ext2", "key": "default", "n": 2.5}]),
        order,
    ]
    body = await run(client, admin_auth, runtime, lines)
    assert body["code"] == "success", body
    [guest] = (await db.execute(select(Guest))).scalars().all()
    assert (guest.guest_type, guest.merged_into, guest.deleted_at) == ("customer", None, None)
    assert (guest.created_at, guest.modified_at, guest.first_seen) == (now, now, now)
    assert guest.last_seen is not None and guest.last_seen.isoformat() == "2025-02-01T10:00:00+00:00"
    assert (guest.emails, guest.phone_numbers, guest.street) == (["guest1@example.com"], [], [])
    [identifier] = (await db.execute(select(GuestIdentifier))).scalars().all()
    assert (identifier.provider, identifier.value, identifier.expiry_date, identifier.created_at) == (
        "CRM",
        "CRM-1",
        None,
        now,
    )
    [extension] = (await db.execute(select(GuestExtension))).scalars().all()
    assert (extension.name, extension.key, extension.data, extension.created_at) == ("ext2", "default", {"n": 2.5}, now)
    [stored] = (await db.execute(select(Order))).scalars().all()
    assert (stored.guest_ref, stored.session_ref, stored.price, stored.card_type) == (guest.ref, None, 100.0, "Visa")
    assert stored.ordered_at.isoformat() == "2025-03-07T16:15:11+00:00"
    [line] = (await db.execute(select(OrderItem))).scalars().all()
    assert (line.order_ref, line.quantity, line.item_id, line.original_price, line.modified_at) == (
        stored.ref,
        1,
        "ORDER-1-1",
        None,
        now,
    )
    [contact] = (await db.execute(select(OrderContact))).scalars().all()
    assert (contact.guest_ref, contact.data) == (guest.ref, {"identifiers": [{"provider": "CRM", "id": "CRM-1"}]})
    extensions = (await db.execute(select(OrderExtension).order_by(OrderExtension.owner_type))).scalars().all()
    assert [(e.owner_type, e.owner_ref, e.key, e.data) for e in extensions] == [
        ("order", stored.ref, "default", {"promo": True}),
        ("orderItem", line.ref, "default", {"size": "L"}),
    ]
    await db.rollback()
