"""The bulk tables' references hold on both databases: constraints on SQLite, set-based triggers on PostgreSQL.

``core.db.bulk_reference``: the same statements are refused the same way (``IntegrityError``) on both, a refused
statement writes nothing, and a writer racing a delete of its parent row never leaves an orphan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import String, Table, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from innkeeper.core.db import UTCDateTime, created_as_constraint
from innkeeper.core.ids import new_ref
from innkeeper.core.runtime import Runtime
from innkeeper.guests.models import GuestIdentifier
from innkeeper.migrations.models import Base

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
GUESTS = Base.metadata.tables["guests"]
ORDERS = Base.metadata.tables["orders"]
# (table, referring column, referred table): every bulk reference. Stated here, not imported from migration 0010:
# the test says what the frozen migration and the models must both hold.
REFERENCES = [
    ("guest_identifiers", "guest_ref", "guests"),
    ("guest_extensions", "guest_ref", "guests"),
    ("orders", "guest_ref", "guests"),
    ("order_contacts", "guest_ref", "guests"),
    ("order_contacts", "order_ref", "orders"),
    ("order_items", "order_ref", "orders"),
    ("order_extensions", "order_ref", "orders"),
]


def _row(table: Table, **given: Any) -> dict[str, Any]:
    """A row of ``table`` with every required column filled (fresh values: unique keys never collide)."""
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.key in given or column.nullable or column.default is not None:
            continue
        if column.primary_key and column.autoincrement is True:
            continue
        python_type = datetime if isinstance(column.type, UTCDateTime) else column.type.python_type
        if python_type is str:
            row[column.key] = new_ref()[: cast(String, column.type).length or 36]
        elif python_type is int:
            row[column.key] = 1
        elif python_type is float:
            row[column.key] = 0.0
        elif python_type is datetime:
            row[column.key] = NOW
        else:
            row[column.key] = {}
    row.update(given)
    return row


async def _guest(session: AsyncSession) -> str:
    ref = new_ref()
    await session.execute(insert(GUESTS), [_row(GUESTS, ref=ref, guest_type="visitor")])
    return ref


async def _order(session: AsyncSession, guest_ref: str | None = None) -> str:
    ref = new_ref()
    await session.execute(insert(ORDERS), [_row(ORDERS, ref=ref, guest_ref=guest_ref, status="PURCHASED")])
    return ref


async def _parent(session: AsyncSession, parent: str) -> str:
    return await _guest(session) if parent == "guests" else await _order(session)


async def _child(session: AsyncSession, table: str, column: str, parent_ref: str) -> dict[str, Any]:
    """A row of ``table`` whose ``column`` is ``parent_ref`` (its other reference, if any, to a new row)."""
    extra: dict[str, Any] = {"status": "PURCHASED"} if table == "orders" else {}
    if table == "order_extensions":
        extra = {"owner_type": "order", "owner_ref": new_ref(), "name": "ext"}
    if table == "order_contacts" and column == "guest_ref":
        extra = {"order_ref": await _order(session)}  # one contact per order
    return _row(Base.metadata.tables[table], **{column: parent_ref}, **extra)


def _key(table: Table, row: dict[str, Any]) -> Any:
    return table.c.ref == row["ref"] if "ref" in table.c else table.c.value == row["value"]


async def _count(session: AsyncSession, table: str) -> int:
    return (await session.execute(select(func.count()).select_from(Base.metadata.tables[table]))).scalar_one()


async def _orphans(session: AsyncSession) -> int:
    """Rows of the bulk tables whose reference names no row."""
    total = 0
    for table, column, parent in REFERENCES:
        child, referred = Base.metadata.tables[table], Base.metadata.tables[parent]
        total += (
            await session.execute(
                select(func.count())
                .select_from(child)
                .where(child.c[column].is_not(None), child.c[column].not_in(select(referred.c.ref)))
            )
        ).scalar_one()
    return total


def test_the_bulk_references_are_constraints_on_sqlite_and_triggers_on_postgresql() -> None:
    for table, column, parent in REFERENCES:
        [constraint] = [fk for fk in Base.metadata.tables[table].foreign_key_constraints if fk.column_keys == [column]]
        assert constraint.referred_table.name == parent  # the ORM still orders its writes by it
        assert created_as_constraint(constraint, "sqlite")
        assert not created_as_constraint(constraint, "postgresql")
    triggers = {
        (table.name, fk.column_keys[0], fk.referred_table.name)
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_key_constraints
        if not created_as_constraint(fk, "postgresql")
    }
    assert triggers == set(REFERENCES)  # every other foreign key (browsers, sessions, events…) is a constraint


async def test_the_database_holds_what_the_models_say(runtime: Runtime, db_kind: str) -> None:
    async with runtime.sessions() as session:
        if db_kind == "postgres":
            constraints = await session.execute(
                text("SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'f'")
            )
            names = {name for _, name in constraints}
            triggers = {
                name for (name,) in await session.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
            }
            for table, column, parent in REFERENCES:
                name = f"fk_{table}_{column}_{parent}"
                assert name not in names
                assert {f"{name}_insert", f"{name}_update", f"{name}_delete"} <= triggers
            assert "fk_browsers_guest_ref_guests" in names
        else:
            for table, column, parent in REFERENCES:
                keys = await session.execute(text(f"PRAGMA foreign_key_list({table})"))
                assert (parent, column) in {(row[2], row[3]) for row in keys}


def _ids(reference: tuple[str, str, str]) -> str:
    return f"{reference[0]}.{reference[1]}"


@pytest.mark.parametrize("reference", REFERENCES, ids=_ids)
async def test_a_row_referring_to_no_row_is_refused(runtime: Runtime, reference: tuple[str, str, str]) -> None:
    table, column, parent = reference
    async with runtime.sessions() as session:
        parents = [await _parent(session, parent) for _ in range(3)]
        good = [await _child(session, table, column, ref) for ref in parents]
        bad = await _child(session, table, column, new_ref())
        await session.commit()
    async with runtime.sessions() as session:
        before = await _count(session, table)
        with pytest.raises(IntegrityError):
            await session.execute(insert(Base.metadata.tables[table]), [*good, bad])
        await session.rollback()
        assert await _count(session, table) == before  # nothing of the statement was written
        await session.execute(insert(Base.metadata.tables[table]), good)
        await session.commit()
        assert await _count(session, table) == before + 3
        assert await _orphans(session) == 0


@pytest.mark.parametrize("reference", REFERENCES, ids=_ids)
async def test_a_reference_changed_to_no_row_is_refused(runtime: Runtime, reference: tuple[str, str, str]) -> None:
    table, column, parent = reference
    child = Base.metadata.tables[table]
    async with runtime.sessions() as session:
        first, second = await _parent(session, parent), await _parent(session, parent)
        row = await _child(session, table, column, first)
        await session.execute(insert(child), [row])
        await session.commit()
    key = _key(child, row)
    async with runtime.sessions() as session:
        with pytest.raises(IntegrityError):
            await session.execute(update(child).where(key).values({column: new_ref()}))
        await session.rollback()
        await session.execute(update(child).where(key).values({column: second}))  # another existing row: fine
        await session.commit()
        assert (await session.execute(select(child.c[column]).where(key))).scalar_one() == second


@pytest.mark.parametrize("reference", REFERENCES, ids=_ids)
async def test_a_row_still_referred_to_cannot_be_deleted(runtime: Runtime, reference: tuple[str, str, str]) -> None:
    table, column, parent = reference
    child, referred = Base.metadata.tables[table], Base.metadata.tables[parent]
    async with runtime.sessions() as session:
        target, other = await _parent(session, parent), await _parent(session, parent)
        row = await _child(session, table, column, target)
        await session.execute(insert(child), [row])
        await session.commit()
    async with runtime.sessions() as session:
        with pytest.raises(IntegrityError):
            await session.execute(delete(referred).where(referred.c.ref.in_([other, target])))
        await session.rollback()
        with pytest.raises(IntegrityError):
            await session.execute(update(referred).where(referred.c.ref == target).values(ref=new_ref()))
        await session.rollback()
        await session.execute(delete(referred).where(referred.c.ref == other))  # referred to by nothing
        await session.execute(delete(child).where(child.c[column] == target))
        await session.execute(delete(referred).where(referred.c.ref == target))  # no longer referred to
        await session.commit()
        assert (await session.execute(select(func.count()).where(referred.c.ref.in_([target, other])))).scalar() == 0


Step = Callable[[AsyncSession, str], Any]


async def _add_identifier(session: AsyncSession, guest_ref: str) -> None:
    table = cast(Table, GuestIdentifier.__table__)
    rows = [_row(table, guest_ref=guest_ref, provider="CRM", value=new_ref()) for _ in range(3)]
    await session.execute(insert(table), rows)


async def _delete_guest(session: AsyncSession, guest_ref: str) -> None:
    await session.execute(delete(GUESTS).where(GUESTS.c.ref == guest_ref))


@pytest.mark.parametrize("first", ["writer", "delete"])
async def test_a_writer_racing_a_delete_of_its_parent_never_leaves_an_orphan(runtime: Runtime, first: str) -> None:
    """Whichever commits first wins; the other waits for it, then is refused (as a foreign key makes it)."""
    sessions: async_sessionmaker[AsyncSession] = runtime.sessions
    async with sessions() as session:
        guest_ref = await _guest(session)
        await session.commit()
    steps: list[Step] = [_add_identifier, _delete_guest] if first == "writer" else [_delete_guest, _add_identifier]
    async with sessions() as leading:
        await steps[0](leading, guest_ref)  # its transaction stays open

        async def trailing() -> None:
            async with sessions() as session:
                await steps[1](session, guest_ref)
                await session.commit()

        task = asyncio.create_task(trailing())
        await asyncio.sleep(0.5)
        assert not task.done()  # waits for the leading transaction (PostgreSQL: the row lock; SQLite: the writer)
        await leading.commit()
    with pytest.raises(IntegrityError):
        await asyncio.wait_for(task, 30)
    async with sessions() as session:
        identifiers = await _count(session, "guest_identifiers")
        guests = (await session.execute(select(func.count()).where(GUESTS.c.ref == guest_ref))).scalar_one()
        assert (identifiers, guests) == ((3, 1) if first == "writer" else (0, 0))
        assert await _orphans(session) == 0
