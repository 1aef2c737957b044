"""Orders created from the Stream API (CHECKOUT, ORDER_CHECKOUT) and their lookups."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import numbers
from innkeeper.core.clock import Clock
from innkeeper.core.ids import new_ref
from innkeeper.core.timeparse import parse_iso
from innkeeper.orders.models import Order, OrderItem
from innkeeper.orders.repository import OrderRepository

CONVERTING_STATUSES = frozenset({"PURCHASED", "CONFIRMED", "PAYMENT_PENDING"})
ORDER_STATUSES = CONVERTING_STATUSES | {"CANCELLED", "REFUNDED"}


def _float(value: Any, default: float = 0.0) -> float:
    number = numbers.amount(value)
    return default if number is None else number


def _quantity(value: Any) -> int:
    number = numbers.quantity(value)
    return 1 if number is None else int(number)


def _str(value: Any, limit: int = 200) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


async def checkout(
    session: AsyncSession,
    *,
    guest_ref: str,
    session_ref: str,
    reference_id: str,
    status: str,
    lines: list[dict[str, Any]],
    currency: str | None,
    channel: str | None,
    point_of_sale: str | None,
    clock: Clock,
) -> Order:
    """Create or update the order of a converting CHECKOUT from the session's cart lines."""
    now = clock.now()
    repo = OrderRepository(session)
    order = await repo.by_reference(reference_id)
    price = round(sum(_float(line.get("quantity")) * _float(line.get("price")) for line in lines), 2)
    if order is None:
        order = Order(
            ref=new_ref(),
            guest_ref=guest_ref,
            reference_id=reference_id,
            ordered_at=now,
            created_at=now,
        )
        repo.add(order)
    order.session_ref = session_ref
    order.status = status
    order.currency_code = currency
    order.price = price
    order.channel = channel
    order.point_of_sale = point_of_sale
    order.modified_at = now
    await session.flush()
    await repo.replace_items(
        order.ref,
        [
            OrderItem(
                ref=new_ref(),
                order_ref=order.ref,
                item_id=line.get("itemId"),
                type=line.get("type"),
                name=line.get("name"),
                product_id=line.get("productId"),
                reference_id=line.get("referenceId"),
                status=status,
                quantity=_quantity(line.get("quantity")),
                price=_float(line.get("price")),
                currency_code=line.get("currency") or currency,
                original_price=line.get("originalPrice"),
                original_currency_code=line.get("originalCurrencyCode"),
            )
            for line in lines
        ],
    )
    await session.flush()
    return order


async def update_status(session: AsyncSession, reference_id: str, status: str, *, clock: Clock) -> bool:
    """Set an existing order's status (CANCELLED / REFUNDED); False when there is none."""
    order = await OrderRepository(session).by_reference(reference_id)
    if order is None:
        return False
    order.status = status
    order.modified_at = clock.now()
    return True


async def upsert_order(
    session: AsyncSession,
    *,
    guest_ref: str,
    session_ref: str,
    data: dict[str, Any],
    channel: str | None,
    point_of_sale: str | None,
    clock: Clock,
) -> tuple[Order | None, list[str]]:
    """Upsert the order of an ORDER_CHECKOUT event by its ``referenceId``."""
    reference_id = _str(data.get("referenceId"))
    if reference_id is None:
        return None, ["order.referenceId: required"]
    warnings: list[str] = []
    status = _str(data.get("status"), 30) or "PURCHASED"
    if status not in ORDER_STATUSES:
        warnings.append(f"order.status: unknown value {status[:30]!r}")
    now = clock.now()
    repo = OrderRepository(session)
    order = await repo.by_reference(reference_id)
    if order is None:
        order = Order(ref=new_ref(), guest_ref=guest_ref, reference_id=reference_id, created_at=now, ordered_at=now)
        repo.add(order)
    order.ordered_at = _parse_time(data.get("orderedAt")) or order.ordered_at
    order.session_ref = session_ref
    order.status = status
    order.currency_code = _str(data.get("currencyCode"), 8)
    order.price = _float(data.get("price"))
    order.payment_type = _str(data.get("paymentType"), 50)
    order.card_type = _str(data.get("cardType"), 50)
    order.channel = channel
    order.point_of_sale = point_of_sale
    order.modified_at = now
    await session.flush()
    items = data.get("orderItems") or []
    if not isinstance(items, list):
        warnings.append("order.orderItems: must be an array")
        items = []
    await repo.replace_items(
        order.ref,
        [
            OrderItem(
                ref=new_ref(),
                order_ref=order.ref,
                item_id=_str(item.get("referenceId")),
                type=_str(item.get("type")),
                name=_str(item.get("name"), 500),
                product_id=_str(item.get("productId")),
                reference_id=_str(item.get("referenceId")),
                status=_str(item.get("status"), 30),
                quantity=_quantity(item.get("quantity")),
                price=_float(item.get("price")),
                currency_code=_str(item.get("currencyCode"), 8),
            )
            for item in items
            if isinstance(item, dict)
        ],
    )
    await session.flush()
    return order, warnings


async def set_payment_type(session: AsyncSession, order_ref: str, pay_type: str, *, clock: Clock) -> None:
    """Copy a PAYMENT event's ``pay_type`` onto the session's order."""
    order = await OrderRepository(session).get(order_ref)
    if order is not None:
        order.payment_type = pay_type[:50]
        order.modified_at = clock.now()


async def move_guest(session: AsyncSession, from_guest: str, *, into: str) -> None:
    """Move a merged guest's orders to the surviving guest."""
    await OrderRepository(session).move_guest(from_guest, into)


def _parse_time(value: Any) -> datetime | None:
    return parse_iso(value) if isinstance(value, str) else None
