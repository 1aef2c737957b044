"""The import's bulk writes: time-ordered refs, ``insert_rows`` writing exactly what SQLAlchemy writes (its
faster date-time and JSON converters, PostgreSQL's COPY) inside the session's transaction, and lines only
``json`` can read."""

from __future__ import annotations

import gc
import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Table, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.runtime import Runtime
from innkeeper.guests.batch_import import fresh_ref, insert_rows, plain
from innkeeper.guests.models import Guest, GuestExtension
from tests.batch.test_api import error_log
from tests.batch.test_records import Auth, run
from tests.factories.batch import guest_record, record


def test_fresh_refs_are_unique_uuids_in_creation_order() -> None:
    first = [fresh_ref() for _ in range(1000)]
    time.sleep(0.002)
    later = fresh_ref()
    assert len(set(first)) == 1000
    for ref in [*first, later]:
        parsed = uuid.UUID(ref)
        assert (str(parsed), parsed.version, parsed.variant) == (ref, 4, uuid.RFC_4122)  # the v4 format of the spec
    assert max(first) < later  # a later millisecond sorts after: new rows go to the end of the indexes


GUESTS = cast(Table, Guest.__table__)
EXTENSIONS = cast(Table, GuestExtension.__table__)
GUEST_COLUMNS = "created_at, modified_at, first_seen, last_seen, deleted_at, emails, phone_numbers, street, email"
EXTENSION_COLUMNS = "name, key, data, created_at, modified_at"


async def test_insert_rows_stores_what_sqlalchemy_stores(db: AsyncSession) -> None:
    """Plain rows through ``insert_rows`` and the same values through a Core INSERT read back byte for byte."""
    now = datetime(2025, 3, 7, 16, 15, 11, 123456, tzinfo=UTC)
    dublin_summer = datetime(1999, 6, 30, 23, 59, 59, 7, tzinfo=timezone(timedelta(hours=1)))
    guests: list[dict[str, Any]] = [
        {"guest_type": "customer", "created_at": now, "modified_at": now, "emails": [], "phone_numbers": ["+3531"]},
        {
            "guest_type": "visitor",
            "created_at": dublin_summer,
            "modified_at": now + timedelta(microseconds=1),
            "first_seen": datetime(2001, 1, 1, tzinfo=UTC),
            "emails": ["séan@example.ie", 'quote"\u2028'],
            "phone_numbers": [],
            "street": ["1 Main St"],
            "email": "séan@example.ie",
        },
    ]
    data: dict[str, Any] = {"tier": "gold", "points": 12, "rate": 2.5, "vip": True, "nested": {"a": [1, None]}}
    plain_refs = [fresh_ref() for _ in guests]
    core_refs = [fresh_ref() for _ in guests]
    await insert_rows(db, GUESTS, [plain(Guest, ref=r, **g) for r, g in zip(plain_refs, guests, strict=True)])
    await db.execute(insert(Guest), [{"ref": r, **g} for r, g in zip(core_refs, guests, strict=True)])
    extension = {"name": "ext", "data": data, "created_at": dublin_summer, "modified_at": now}
    await insert_rows(db, EXTENSIONS, [plain(GuestExtension, ref=fresh_ref(), guest_ref=plain_refs[0], **extension)])
    await db.execute(insert(GuestExtension), [{"ref": fresh_ref(), "guest_ref": core_refs[0], **extension}])

    async def stored(columns: str, table: str, refs: list[str], key: str = "ref") -> list[Any]:
        rows = []
        for ref in refs:  # raw column values: text() applies no result processing
            result = await db.execute(text(f"SELECT {columns} FROM {table} WHERE {key} = :ref"), {"ref": ref})
            rows.append(tuple(result.one()))
        return rows

    assert await stored(GUEST_COLUMNS, "guests", plain_refs) == await stored(GUEST_COLUMNS, "guests", core_refs)
    plain_extension = await stored(EXTENSION_COLUMNS, "guest_extensions", plain_refs[:1], "guest_ref")
    assert plain_extension == await stored(EXTENSION_COLUMNS, "guest_extensions", core_refs[:1], "guest_ref")
    # And read back through the models, the values are the ones given.
    [read] = (await db.execute(select(Guest).where(Guest.ref == plain_refs[1]))).scalars().all()
    assert (read.created_at, read.emails, read.last_seen) == (dublin_summer, guests[1]["emails"], None)
    await db.rollback()


async def test_insert_rows_never_cuts_an_over_long_value(db: AsyncSession, db_kind: str) -> None:
    """PostgreSQL (a COPY into the column) refuses an over-long value rather than cutting it. SQLite
    enforces no VARCHAR length: there the value is stored whole, as a SQLAlchemy INSERT stores it."""
    now = datetime.now(UTC)
    row = plain(Guest, ref="x" * 40, guest_type="customer", created_at=now, modified_at=now)
    if db_kind == "postgres":
        with pytest.raises(DBAPIError):
            await insert_rows(db, GUESTS, [row])
    else:
        await insert_rows(db, GUESTS, [row])
        assert (await db.execute(select(Guest.ref).where(Guest.ref == "x" * 40))).scalar_one() == "x" * 40
    await db.rollback()


async def test_a_line_only_json_reads_is_judged_as_before(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime
) -> None:
    """msgspec refuses NaN and a byte-order mark; ``json`` reads both, so those lines are judged as they always were."""
    nan_name = str(uuid.uuid4())
    lines: list[dict[str, Any] | str] = [
        guest_record(1),
        '{"ref": "' + nan_name + '", "schema": "guest", "mode": "upsert", "value": {"firstName": NaN}}',
        "\ufeff" + json.dumps(record("guest", {"identifiers": [{"provider": "CRM", "id": "CRM-9"}]})),  # a BOM
    ]
    thresholds = gc.get_threshold()
    body = await run(client, admin_auth, runtime, lines)
    assert gc.get_threshold() == thresholds  # the import's collector setting is undone
    assert (body["recordsTotal"], body["recordsSucceeded"], body["recordsFailed"]) == (3, 2, 1)
    assert await error_log(client, body["log"]) == [
        {"ref": nan_name, "code": "400", "message": "Validation error: value.firstName: must be a string"}
    ]


def test_fresh_refs_stay_unique_and_valid_across_random_reads() -> None:
    """The random bytes are read for 4,096 refs at a time: refs made across several reads are still distinct v4 refs
    and never go back in time."""
    refs = [fresh_ref() for _ in range(3 * 4096 + 7)]
    assert len(set(refs)) == len(refs)
    assert all(uuid.UUID(ref).version == 4 and uuid.UUID(ref).variant == uuid.RFC_4122 for ref in refs)
    stamps = [ref[:8] + ref[9:13] for ref in refs]  # the millisecond prefix
    assert stamps == sorted(stamps)
    assert len({ref[14:] for ref in refs}) == len(refs)  # the random part alone differs too


async def test_insert_rows_writes_inside_the_session_transaction(db: AsyncSession) -> None:
    """Even as the transaction's first statement (PostgreSQL: a COPY on the driver connection), a rollback undoes it."""
    now = datetime.now(UTC)
    ref = fresh_ref()
    await insert_rows(db, GUESTS, [plain(Guest, ref=ref, guest_type="customer", created_at=now, modified_at=now)])
    assert (await db.execute(select(Guest.ref).where(Guest.ref == ref))).scalar_one() == ref
    await db.rollback()
    assert (await db.execute(select(Guest.ref).where(Guest.ref == ref))).scalar_one_or_none() is None
    await db.rollback()


async def test_insert_rows_refusal_is_an_integrity_error_and_only_undoes_its_savepoint(db: AsyncSession) -> None:
    now = datetime.now(UTC)
    kept, taken = fresh_ref(), fresh_ref()
    rows = [plain(Guest, ref=r, guest_type="customer", created_at=now, modified_at=now) for r in (kept, taken)]
    await insert_rows(db, GUESTS, rows)
    again = plain(Guest, ref=fresh_ref(), guest_type="customer", created_at=now, modified_at=now)

    async def with_a_taken_ref() -> None:
        async with db.begin_nested():
            await insert_rows(db, GUESTS, [again, plain(Guest, ref=taken, guest_type="visitor", created_at=now)])

    with pytest.raises(IntegrityError):
        await with_a_taken_ref()
    later = fresh_ref()
    await insert_rows(db, GUESTS, [plain(Guest, ref=later, guest_type="customer", created_at=now, modified_at=now)])
    stored = await db.execute(select(Guest.ref, Guest.guest_type).where(Guest.ref.in_([kept, taken, later, again.ref])))
    assert sorted(stored.all()) == sorted([(kept, "customer"), (taken, "customer"), (later, "customer")])
    await db.rollback()
