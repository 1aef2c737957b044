"""Every SQL statement of the orders domain."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import among
from innkeeper.core.sqlite_fast import SqliteRead
from innkeeper.orders.models import Order, OrderConsumer, OrderContact, OrderExtension, OrderItem

_ORDERS = cast(Table, Order.__table__)
_ITEMS = cast(Table, OrderItem.__table__)
# What a guest context shows of an order and of its items, in the order the rows of ``context_orders`` hold them.
CONTEXT_ORDER_COLUMNS = (
    "ref",
    "reference_id",
    "status",
    "ordered_at",
    "price",
    "currency_code",
    "channel",
    "point_of_sale",
    "payment_type",
)
CONTEXT_ITEM_COLUMNS = (
    "ref",
    "order_ref",
    "item_id",
    "type",
    "product_id",
    "reference_id",
    "name",
    "status",
    "price",
    "currency_code",
    "quantity",
)
_CONTEXT_ORDERS = SqliteRead(
    select(*(_ORDERS.c[name] for name in CONTEXT_ORDER_COLUMNS))
    .where(_ORDERS.c.guest_ref == bindparam("guest_ref"))
    .order_by(_ORDERS.c.ordered_at.desc(), _ORDERS.c.created_at.desc(), _ORDERS.c.ref)
    .limit(bindparam("limit"))
)
_CONTEXT_ITEMS = SqliteRead(
    select(*(_ITEMS.c[name] for name in CONTEXT_ITEM_COLUMNS))
    .where(_ITEMS.c.order_ref.in_(bindparam("refs", expanding=True)))
    .order_by(_ITEMS.c.created_at, _ITEMS.c.ref)
)


class OrderRepository:
    """Orders and order items."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Order | OrderItem | OrderContact | OrderConsumer | OrderExtension) -> None:
        self.session.add(row)

    async def by_reference(self, reference_id: str) -> Order | None:
        stmt = select(Order).where(Order.reference_id == reference_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get(self, ref: str) -> Order | None:
        return await self.session.get(Order, ref)

    async def replace_items(self, order_ref: str, items: list[OrderItem]) -> None:
        await self.session.execute(delete(OrderItem).where(OrderItem.order_ref == order_ref))
        for item in items:
            self.session.add(item)

    async def for_guest(self, guest_ref: str, *, limit: int | None = None) -> list[Order]:
        """The guest's orders, most recently ordered first (ties: newest created first)."""
        stmt = (
            select(Order)
            .where(Order.guest_ref == guest_ref)
            .order_by(Order.ordered_at.desc(), Order.created_at.desc(), Order.ref)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def context_orders(self, guest_ref: str, *, limit: int) -> tuple[list[Sequence[Any]], list[Sequence[Any]]]:
        """Plain rows of ``CONTEXT_ORDER_COLUMNS`` of the guest's newest orders (as :meth:`for_guest` orders them),
        then of ``CONTEXT_ITEM_COLUMNS`` of their items (as :meth:`items_of_many`); straight from SQLite there."""
        orders = await _CONTEXT_ORDERS.rows(self.session, {"guest_ref": guest_ref, "limit": limit})
        if not orders:
            return [], []
        return orders, await _CONTEXT_ITEMS.rows(self.session, {"refs": [row[0] for row in orders]})

    async def of_guests_between(self, guest_refs: list[str], start: datetime, end: datetime) -> list[Order]:
        if not guest_refs:
            return []
        stmt = (
            select(Order)
            .where(Order.guest_ref.in_(guest_refs), Order.ordered_at > start, Order.ordered_at <= end)
            .order_by(Order.ordered_at, Order.ref)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def move_guest(self, from_guest: str, to_guest: str) -> None:
        await self.session.execute(update(Order).where(Order.guest_ref == from_guest).values(guest_ref=to_guest))

    # --- Order REST API v2.1 (spec §9) ----------------------------------------------------

    async def find(self, ref: str, *, for_update: bool = False) -> Order | None:
        """An order by ref, optionally locked for the rest of the transaction."""
        stmt = select(Order).where(Order.ref == ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def reference_taken(self, reference_id: str, *, other_than: str | None = None) -> bool:
        """Whether an order (other than ``other_than``) has this ``referenceId``."""
        stmt = select(Order.ref).where(Order.reference_id == reference_id)
        if other_than is not None:
            stmt = stmt.where(Order.ref != other_than)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def list_orders(
        self, *, reference_id: str | None, guest_ref: str | None = None, offset: int, limit: int
    ) -> list[Order]:
        """A page of orders, newest first, optionally only those with ``referenceId`` / of one guest."""
        stmt = select(Order)
        if reference_id is not None:
            stmt = stmt.where(Order.reference_id == reference_id)
        if guest_ref is not None:
            stmt = stmt.where(Order.guest_ref == guest_ref)
        stmt = stmt.order_by(Order.created_at.desc(), Order.ref).offset(offset).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def get_item(self, ref: str, *, for_update: bool = False) -> OrderItem | None:
        """An order item by ref."""
        stmt = select(OrderItem).where(OrderItem.ref == ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def items_of(self, order_ref: str, *, offset: int = 0, limit: int | None = None) -> list[OrderItem]:
        """The order's items in creation order."""
        stmt = select(OrderItem).where(OrderItem.order_ref == order_ref)
        stmt = stmt.order_by(OrderItem.created_at, OrderItem.ref).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def of_sessions(self, session_refs: list[str]) -> list[Order]:
        if not session_refs:
            return []
        stmt = select(Order).where(Order.session_ref.in_(session_refs)).order_by(Order.ordered_at, Order.ref)
        return list((await self.session.execute(stmt)).scalars())

    async def items_of_many(self, order_refs: list[str]) -> list[OrderItem]:
        if not order_refs:
            return []
        stmt = (
            select(OrderItem).where(OrderItem.order_ref.in_(order_refs)).order_by(OrderItem.created_at, OrderItem.ref)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def contact_of(self, order_ref: str, *, for_update: bool = False) -> OrderContact | None:
        """The order's contact."""
        stmt = select(OrderContact).where(OrderContact.order_ref == order_ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_consumer(self, ref: str, *, for_update: bool = False) -> OrderConsumer | None:
        """A consumer by ref."""
        stmt = select(OrderConsumer).where(OrderConsumer.ref == ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def consumers_of(self, order_ref: str, *, offset: int = 0, limit: int | None = None) -> list[OrderConsumer]:
        """The order's consumers in creation order."""
        stmt = select(OrderConsumer).where(OrderConsumer.order_ref == order_ref)
        stmt = stmt.order_by(OrderConsumer.created_at, OrderConsumer.ref).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def extension(
        self, owner_type: str, owner_ref: str, name: str, *, for_update: bool = False
    ) -> OrderExtension | None:
        """The named data extension of an order or order item."""
        stmt = select(OrderExtension).where(
            OrderExtension.owner_type == owner_type, OrderExtension.owner_ref == owner_ref, OrderExtension.name == name
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def extensions_of(self, owner_type: str, owner_ref: str) -> list[OrderExtension]:
        """The data extensions of an order or order item."""
        stmt = select(OrderExtension).where(
            OrderExtension.owner_type == owner_type, OrderExtension.owner_ref == owner_ref
        )
        return list((await self.session.execute(stmt.order_by(OrderExtension.name))).scalars())

    async def delete_row(self, row: OrderItem | OrderContact | OrderConsumer | OrderExtension) -> None:
        """Delete one child row."""
        await self.session.delete(row)

    async def delete_item_extensions(self, item_ref: str) -> None:
        """Delete the data extensions of one order item."""
        await self.session.execute(
            delete(OrderExtension).where(OrderExtension.owner_type == "orderItem", OrderExtension.owner_ref == item_ref)
        )

    async def delete_order_tree(self, order_ref: str) -> None:
        """Delete an order with its items, contact, consumers and data extensions."""
        for model in (OrderExtension, OrderConsumer, OrderContact, OrderItem):
            await self.session.execute(delete(model).where(model.order_ref == order_ref))
        await self.session.execute(delete(Order).where(Order.ref == order_ref))

    async def move_guest_links(self, from_guest: str, to_guest: str) -> None:
        """Point order contacts and consumers of a merged guest at the surviving guest."""
        for model in (OrderContact, OrderConsumer):
            await self.session.execute(update(model).where(model.guest_ref == from_guest).values(guest_ref=to_guest))

    # --- guest deletion (spec §8.5) -------------------------------------------------------

    async def purge_guest(self, guest_ref: str) -> int:
        """Delete the guest's orders (its own, or those it is the contact of) with everything
        under them, and its contact/consumer rows on other orders; returns rows deleted."""
        linked = select(OrderContact.order_ref).where(OrderContact.guest_ref == guest_ref)
        stmt = select(Order.ref).where(or_(Order.guest_ref == guest_ref, Order.ref.in_(linked)))
        orders = list((await self.session.execute(stmt)).scalars())
        total = 0
        for purge in (
            delete(OrderExtension).where(OrderExtension.order_ref.in_(orders)),
            delete(OrderConsumer).where(or_(OrderConsumer.order_ref.in_(orders), OrderConsumer.guest_ref == guest_ref)),
            delete(OrderContact).where(or_(OrderContact.order_ref.in_(orders), OrderContact.guest_ref == guest_ref)),
            delete(OrderItem).where(OrderItem.order_ref.in_(orders)),
            delete(Order).where(Order.ref.in_(orders)),
        ):
            result = await self.session.execute(purge)
            total += max(result.rowcount or 0, 0)  # type: ignore[attr-defined]
        return total


class OrderBatchRepository(OrderRepository):
    """The extra statements of batch order records (orders/batch_import.py)."""

    async def contact_row(self, order_ref: str) -> OrderContact | None:
        """The order's contact row, locked."""
        stmt = select(OrderContact).where(OrderContact.order_ref == order_ref).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def batch_clear_items(self, order_ref: str) -> None:
        """Delete an order's items and their extensions (an import replaces them)."""
        await self.session.execute(
            delete(OrderExtension).where(
                OrderExtension.order_ref == order_ref, OrderExtension.owner_type == "orderItem"
            )
        )
        await self.session.execute(delete(OrderItem).where(OrderItem.order_ref == order_ref))

    async def batch_clear_extension(self, owner_type: str, owner_ref: str) -> None:
        """Delete the ``ext`` extension of an order or order item."""
        await self.session.execute(
            delete(OrderExtension).where(OrderExtension.owner_type == owner_type, OrderExtension.owner_ref == owner_ref)
        )

    async def batch_by_references(self, reference_ids: Iterable[str]) -> list[Order]:
        """The orders with these reference ids, locked."""
        stmt = select(Order).where(among(self.session, Order.reference_id, reference_ids)).with_for_update()
        return list((await self.session.execute(stmt)).scalars())

    async def batch_contacts(self, order_refs: list[str]) -> list[OrderContact]:
        """The contact rows of these orders, locked."""
        if not order_refs:
            return []
        stmt = select(OrderContact).where(among(self.session, OrderContact.order_ref, order_refs)).with_for_update()
        return list((await self.session.execute(stmt)).scalars())

    async def batch_detach_guests(self, guest_refs: list[str]) -> None:
        """Clear the guest links of the orders, contacts and consumers of these guests."""
        for model in (Order, OrderContact, OrderConsumer):
            await self.session.execute(update(model).where(model.guest_ref.in_(guest_refs)).values(guest_ref=None))
