"""Lookups shared by the order services: a row by ref, or the domain's NotFound."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.ids import is_ref
from innkeeper.orders.errors import ConsumerNotFound, OrderItemNotFound, OrderNotFound
from innkeeper.orders.models import Order, OrderConsumer, OrderItem
from innkeeper.orders.repository import OrderRepository


async def get_order(session: AsyncSession, ref: str, *, for_update: bool = False) -> Order:
    """An order by ref, or OrderNotFound."""
    order = await OrderRepository(session).find(ref, for_update=for_update) if is_ref(ref) else None
    if order is None:
        raise OrderNotFound(
            "The specified resource does not exist.", developer_message=f"Order {ref[:64]} was not found"
        )
    return order


async def get_item(session: AsyncSession, ref: str, *, for_update: bool = False) -> OrderItem:
    """An order item by ref, or OrderItemNotFound."""
    item = await OrderRepository(session).get_item(ref, for_update=for_update) if is_ref(ref) else None
    if item is None:
        raise OrderItemNotFound(
            "The specified resource does not exist.", developer_message=f"Order item {ref[:64]} was not found"
        )
    return item


async def get_consumer(session: AsyncSession, ref: str, *, for_update: bool = False) -> OrderConsumer:
    """A consumer by ref, or ConsumerNotFound."""
    consumer = await OrderRepository(session).get_consumer(ref, for_update=for_update) if is_ref(ref) else None
    if consumer is None:
        raise ConsumerNotFound(
            "The specified resource does not exist.", developer_message=f"Consumer {ref[:64]} was not found"
        )
    return consumer
