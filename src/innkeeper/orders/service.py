"""Orders: created by Stream CHECKOUT / ORDER_CHECKOUT and by the Order REST API v2.1 (spec §4.2, §9)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import events, numbers
from innkeeper.core.clock import Clock
from innkeeper.core.ids import is_ref, new_ref
from innkeeper.core.timeparse import parse_iso
from innkeeper.orders import _extensions
from innkeeper.orders._extensions import OwnerType as OwnerType
from innkeeper.orders._lookup import get_consumer as get_consumer
from innkeeper.orders._lookup import get_item as get_item
from innkeeper.orders._lookup import get_order as get_order
from innkeeper.orders._people import ContactMode as ContactMode
from innkeeper.orders._people import add_consumer as add_consumer
from innkeeper.orders._people import delete_consumer as delete_consumer
from innkeeper.orders._people import delete_contact as delete_contact
from innkeeper.orders._people import get_contact as get_contact
from innkeeper.orders._people import list_consumers as list_consumers
from innkeeper.orders._people import set_contact as set_contact
from innkeeper.orders._people import update_consumer as update_consumer
from innkeeper.orders.errors import DuplicateReferenceId, InvalidOrder
from innkeeper.orders.models import Order, OrderContact, OrderExtension, OrderItem
from innkeeper.orders.repository import CONTEXT_ITEM_COLUMNS as CONTEXT_ITEM_COLUMNS
from innkeeper.orders.repository import CONTEXT_ORDER_COLUMNS as CONTEXT_ORDER_COLUMNS
from innkeeper.orders.repository import OrderRepository

CONVERTING_STATUSES = frozenset({"PURCHASED", "CONFIRMED", "PAYMENT_PENDING"})
ORDER_STATUSES = CONVERTING_STATUSES | {"CANCELLED", "REFUNDED"}
DEFAULT_STATUS = "UNKNOWN"
# Writable columns of the REST API and which of them a PATCH may not clear (spec §9.1, §9.2).
ORDER_COLUMNS = (
    "reference_id",
    "ordered_at",
    "currency_code",
    "price",
    "status",
    "channel",
    "point_of_sale",
    "payment_type",
    "card_type",
)
ORDER_REQUIRED = ("reference_id", "ordered_at", "currency_code", "price")
ITEM_COLUMNS = (
    "type",
    "reference_id",
    "product_id",
    "name",
    "description",
    "vendor",
    "ordered_at",
    "quantity",
    "price",
    "currency_code",
    "original_price",
    "original_currency_code",
    "status",
)
ITEM_REQUIRED = ("type", "price", "currency_code", "status", "name", "product_id")
WIRE_NAMES = {
    "reference_id": "referenceId",
    "ordered_at": "orderedAt",
    "currency_code": "currencyCode",
    "product_id": "productId",
}


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
    created = order is None
    if order is None:
        order = Order(
            ref=new_ref(),
            guest_ref=guest_ref,
            reference_id=reference_id,
            ordered_at=now,
            created_at=now,
        )
        repo.add(order)
    if order.guest_ref is None:
        order.guest_ref = guest_ref
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
                original_price=numbers.amount(line.get("originalPrice")),
                original_currency_code=_str(line.get("originalCurrencyCode"), 8),
                ordered_at=_parse_time(line.get("orderedAt")),
                created_at=now,
                modified_at=now,
            )
            for line in lines
        ],
    )
    await _ensure_contact(repo, order, now)
    await session.flush()
    if created:
        await events.publish(session, events.OrderCreated(order.ref, order.guest_ref, reference_id, order.price, now))
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
    if order.guest_ref is None:
        order.guest_ref = guest_ref
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
                ordered_at=_parse_time(item.get("orderedAt")),
                created_at=now,
                modified_at=now,
            )
            for item in items
            if isinstance(item, dict)
        ],
    )
    await _ensure_contact(repo, order, now)
    await session.flush()
    return order, warnings


async def set_payment_type(session: AsyncSession, order_ref: str, pay_type: str, *, clock: Clock) -> None:
    """Copy a PAYMENT event's ``pay_type`` onto the session's order."""
    order = await OrderRepository(session).get(order_ref)
    if order is not None:
        order.payment_type = pay_type[:50]
        order.modified_at = clock.now()


async def move_guest(session: AsyncSession, from_guest: str, *, into: str) -> None:
    """Move a merged guest's orders, order contacts and consumers to the surviving guest."""
    repo = OrderRepository(session)
    await repo.move_guest(from_guest, into)
    await repo.move_guest_links(from_guest, into)


async def orders_for_guest(session: AsyncSession, guest_ref: str, *, limit: int | None = None) -> list[Order]:
    """The guest's orders, most recently ordered first (at most ``limit`` of them)."""
    return await OrderRepository(session).for_guest(guest_ref, limit=limit)


async def _ensure_contact(repo: OrderRepository, order: Order, now: datetime) -> None:
    """A Stream order's contact is the session's guest (spec §9.3), unless one was set over REST."""
    if order.guest_ref is not None and await repo.contact_of(order.ref) is None:
        repo.add(
            OrderContact(
                ref=new_ref(), order_ref=order.ref, guest_ref=order.guest_ref, data={}, created_at=now, modified_at=now
            )
        )


def _parse_time(value: Any) -> datetime | None:
    return parse_iso(value) if isinstance(value, str) and len(value) <= 64 else None


async def purge_guest(session: AsyncSession, guest_ref: str) -> int:
    """Delete a guest's orders, their items, contacts, consumers and extensions (guest deletion)."""
    return await OrderRepository(session).purge_guest(guest_ref)


# --- Order REST API v2.1 (spec §9) ------------------------------------------------------------


async def list_orders(
    session: AsyncSession, *, reference_id: str | None, guest_ref: str | None = None, offset: int, limit: int
) -> list[Order]:
    """A page of orders, newest first, optionally only the one with ``referenceId`` / those of one guest.

    ``guest_ref`` must be a UUID (InvalidOrder otherwise); an unknown guest simply has no orders.
    """
    if guest_ref is not None and not is_ref(guest_ref):
        raise InvalidOrder("The request is invalid.", developer_message="guestRef: must be a guest ref (a UUID)")
    return await OrderRepository(session).list_orders(
        reference_id=reference_id,
        guest_ref=None if guest_ref is None else guest_ref.lower(),
        offset=offset,
        limit=limit,
    )


async def create_order(session: AsyncSession, fields: dict[str, Any], *, clock: Clock) -> Order:
    """Create an order from validated fields (column names); DuplicateReferenceId on a taken ``referenceId``."""
    repo = OrderRepository(session)
    await _check_reference(repo, fields["reference_id"], other_than=None)
    now = clock.now()
    order = Order(ref=new_ref(), created_at=now, modified_at=now, price=0.0)
    _assign(order, fields, ORDER_COLUMNS)
    order.status = order.status or DEFAULT_STATUS
    repo.add(order)
    # Unique reference_id: a concurrent create fails this flush, the transaction is retried
    # and the check above then reports the conflict.
    await session.flush()
    await events.publish(
        session, events.OrderCreated(order.ref, order.guest_ref, order.reference_id, order.price or 0.0, now)
    )
    return order


async def update_order(
    session: AsyncSession, ref: str, changes: dict[str, Any], *, replace: bool, clock: Clock
) -> Order:
    """PUT (``replace``: omitted optional fields are cleared) or PATCH (only given keys change)."""
    order = await get_order(session, ref, for_update=True)
    _require_present(changes, ORDER_REQUIRED)
    if changes.get("reference_id") is not None:
        await _check_reference(OrderRepository(session), changes["reference_id"], other_than=order.ref)
    values = {column: changes.get(column) for column in ORDER_COLUMNS} if replace else changes
    _assign(order, values, ORDER_COLUMNS)
    order.status = order.status or DEFAULT_STATUS
    order.modified_at = clock.now()
    await session.flush()
    return order


async def delete_order(session: AsyncSession, ref: str) -> Order:
    """Delete an order with its items, contact, consumers and data extensions."""
    order = await get_order(session, ref, for_update=True)
    await OrderRepository(session).delete_order_tree(order.ref)
    return order


async def _check_reference(repo: OrderRepository, reference_id: str, *, other_than: str | None) -> None:
    if await repo.reference_taken(reference_id, other_than=other_than):
        raise DuplicateReferenceId(
            "An order with this referenceId already exists", developer_message="referenceId: already used by an order"
        )


def _require_present(changes: dict[str, Any], required: tuple[str, ...]) -> None:
    """PATCH may not clear a required field."""
    missing = [WIRE_NAMES.get(c, c) for c in required if c in changes and changes[c] is None]
    if missing:
        raise InvalidOrder(
            "The request is invalid.", developer_message="; ".join(f"{m}: may not be null" for m in missing)
        )


def _assign(row: Order | OrderItem, values: dict[str, Any], columns: tuple[str, ...]) -> None:
    for column in columns:
        if column in values:
            setattr(row, column, values[column])


# --- order items ------------------------------------------------------------------------------


async def list_items(session: AsyncSession, order_ref: str, *, offset: int, limit: int) -> list[OrderItem]:
    """A page of the order's items (OrderNotFound for an unknown order)."""
    order = await get_order(session, order_ref)
    return await OrderRepository(session).items_of(order.ref, offset=offset, limit=limit)


async def add_item(session: AsyncSession, order_ref: str, fields: dict[str, Any], *, clock: Clock) -> OrderItem:
    """Add an item to an order."""
    order = await get_order(session, order_ref, for_update=True)
    now = clock.now()
    item = OrderItem(ref=new_ref(), order_ref=order.ref, created_at=now, modified_at=now)
    _assign(item, fields, ITEM_COLUMNS)
    item.quantity = 1 if item.quantity is None else item.quantity
    repo = OrderRepository(session)
    repo.add(item)
    order.modified_at = now
    await session.flush()
    return item


async def update_item(
    session: AsyncSession, ref: str, changes: dict[str, Any], *, replace: bool, clock: Clock
) -> OrderItem:
    """PUT (``replace``) or PATCH an order item."""
    item = await get_item(session, ref, for_update=True)
    _require_present(changes, ITEM_REQUIRED)
    values = {column: changes.get(column) for column in ITEM_COLUMNS} if replace else changes
    _assign(item, values, ITEM_COLUMNS)
    item.quantity = 1 if item.quantity is None else item.quantity
    item.modified_at = clock.now()
    await session.flush()
    return item


async def delete_item(session: AsyncSession, ref: str) -> OrderItem:
    """Delete an item, its data extensions and the consumers' links to it."""
    item = await get_item(session, ref, for_update=True)
    repo = OrderRepository(session)
    for consumer in await repo.consumers_of(item.order_ref):
        if item.ref in (consumer.order_item_refs or []):
            consumer.order_item_refs = [r for r in consumer.order_item_refs if r != item.ref]
    await repo.delete_item_extensions(item.ref)
    await repo.delete_row(item)
    await session.flush()
    return item


# --- data extensions ----------------------------------------------------------------------------


async def extension_owner(session: AsyncSession, owner_type: OwnerType, owner_ref: str) -> str:
    """The order ref of an extension owner (an order or an order item); NotFound when it is unknown."""
    if owner_type == "order":
        return (await get_order(session, owner_ref)).ref
    return (await get_item(session, owner_ref)).order_ref


async def get_extension(session: AsyncSession, owner_type: OwnerType, owner_ref: str, name: str) -> OrderExtension:
    """One data extension of an order or order item."""
    await extension_owner(session, owner_type, owner_ref)
    return await _extensions.get(session, owner_type, owner_ref, name)


async def list_extensions(session: AsyncSession, owner_type: OwnerType, owner_ref: str) -> list[OrderExtension]:
    """The data extensions of an order or order item."""
    await extension_owner(session, owner_type, owner_ref)
    return await _extensions.list_all(session, owner_type, owner_ref)


async def create_extension(
    session: AsyncSession, owner_type: OwnerType, owner_ref: str, body: Any, *, name: str | None, clock: Clock
) -> OrderExtension:
    """Create a data extension from a raw body ``{"name": "ext", …pairs}`` (``name`` from the path wins)."""
    order_ref = await extension_owner(session, owner_type, owner_ref)
    ext_name, pairs = _extensions.parse_body(body, name=name)
    return await _extensions.create(
        session, owner_type, owner_ref, order_ref=order_ref, name=ext_name, pairs=pairs, clock=clock
    )


async def update_extension(
    session: AsyncSession, owner_type: OwnerType, owner_ref: str, name: str, body: Any, *, replace: bool, clock: Clock
) -> OrderExtension:
    """Replace (PUT) or merge (PATCH) a data extension's pairs."""
    await extension_owner(session, owner_type, owner_ref)
    ext_name, pairs = _extensions.parse_body(body, name=_extensions.check_name(name))
    return await _extensions.update(session, owner_type, owner_ref, ext_name, pairs, replace=replace, clock=clock)


async def delete_extension(session: AsyncSession, owner_type: OwnerType, owner_ref: str, name: str) -> OrderExtension:
    """Delete a data extension."""
    await extension_owner(session, owner_type, owner_ref)
    return await _extensions.delete(session, owner_type, owner_ref, name)


async def delete_extension_fields(
    session: AsyncSession, owner_type: OwnerType, owner_ref: str, name: str, keys: list[str] | None, *, clock: Clock
) -> OrderExtension:
    """Delete the listed keys of a data extension (all of them when ``keys`` is None)."""
    await extension_owner(session, owner_type, owner_ref)
    return await _extensions.delete_fields(session, owner_type, owner_ref, name, keys, clock=clock)


async def context_orders(
    session: AsyncSession, guest_ref: str, *, limit: int
) -> tuple[list[Sequence[Any]], list[Sequence[Any]]]:
    """The guest's newest orders and their items as plain rows (``CONTEXT_ORDER_COLUMNS``,
    ``CONTEXT_ITEM_COLUMNS``), ordered as :func:`orders_for_guest` and :func:`items_of_orders` order them."""
    return await OrderRepository(session).context_orders(guest_ref, limit=limit)


async def items_of_orders(session: AsyncSession, order_refs: list[str]) -> list[OrderItem]:
    """Items of several orders, in creation order."""
    return await OrderRepository(session).items_of_many(order_refs)


async def orders_of_sessions(session: AsyncSession, session_refs: list[str]) -> list[Order]:
    """Orders placed in these sessions (experiment goal attribution)."""
    return await OrderRepository(session).of_sessions(session_refs)


async def orders_of_guests_between(
    session: AsyncSession, guest_refs: list[str], start: datetime, end: datetime
) -> list[Order]:
    """Orders of these guests placed in ``(start, end]``, oldest first (attribution windows)."""
    refs = list(dict.fromkeys(guest_refs))
    found: list[Order] = []
    for index in range(0, len(refs), 500):
        found.extend(await OrderRepository(session).of_guests_between(refs[index : index + 500], start, end))
    return found
