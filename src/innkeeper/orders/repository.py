"""Every SQL statement of the orders domain."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.orders.models import Order, OrderItem


class OrderRepository:
    """Orders and order items."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Order | OrderItem) -> None:
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

    async def for_guest(self, guest_ref: str) -> list[Order]:
        stmt = select(Order).where(Order.guest_ref == guest_ref).order_by(Order.ordered_at.desc())
        return list((await self.session.execute(stmt)).scalars())

    async def move_guest(self, from_guest: str, to_guest: str) -> None:
        await self.session.execute(update(Order).where(Order.guest_ref == from_guest).values(guest_ref=to_guest))
