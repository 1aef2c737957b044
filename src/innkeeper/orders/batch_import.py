"""Batch order records (spec cdp.md §10.7–10.8): validate an ``order`` value and apply it.

The contact is resolved to a guest by the caller (``guests.batch_import.resolve_contact``);
every check here runs before the first write, so a rejected record changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import numbers
from innkeeper.core.clock import Clock
from innkeeper.core.timeparse import parse_iso
from innkeeper.guests.batch_import import (
    RecordRejected,
    check_extension_data,
    fresh_ref,
    insert_rows,
    invalid,
    plain,
)
from innkeeper.orders.models import ITEM_STATUSES, ORDER_STATUSES, Order, OrderContact, OrderExtension, OrderItem
from innkeeper.orders.repository import OrderBatchRepository

OrderMode = Literal["upsert", "insert"]
CHANNELS = frozenset(
    {
        "WEB",
        "MOBILE_WEB",
        "MOBILE_APP",
        "CALL_CENTER",
        "AIRPORT_KIOSK",
        "BRANCH",
        "KIOSK",
        "OFFLINE",
        "GDS",
        "OTA",
        "OTHER",
    }
)
ORDER_ATTRIBUTES = frozenset(
    {
        "referenceId",
        "channel",
        "pointOfSale",
        "status",
        "orderedAt",
        "currencyCode",
        "price",
        "paymentType",
        "cardType",
        "extensions",
        "contact",
        "orderItems",
        "consumers",
    }
)
ITEM_ATTRIBUTES = frozenset(
    {
        "type",
        "productId",
        "name",
        "description",
        "vendor",
        "orderedAt",
        "quantity",
        "price",
        "currencyCode",
        "originalPrice",
        "originalCurrencyCode",
        "referenceId",
        "status",
        "extensions",
    }
)
_REQUIRED = ("referenceId", "channel", "pointOfSale", "orderedAt", "contact", "orderItems")
_ITEM_REQUIRED = ("type", "productId", "name", "price", "currencyCode")


@dataclass(slots=True)
class ItemInput:
    """A validated order item."""

    columns: dict[str, Any]
    extension: dict[str, str | int | float | bool] | None = None


@dataclass(slots=True)
class OrderInput:
    """A validated order value (the contact stays raw: the guests domain parses it)."""

    reference_id: str
    columns: dict[str, Any] = field(default_factory=dict)
    contact: dict[str, Any] | None = None
    items: list[ItemInput] | None = None
    extension: dict[str, str | int | float | bool] | None = None


def parse_order(value: dict[str, Any], *, mode: OrderMode) -> OrderInput:
    """Validate an order value; raise RecordRejected naming the first bad field."""
    for key in value:
        if key not in ORDER_ATTRIBUTES:
            raise invalid(f"value.{key}: undefined attribute")
    for key in _REQUIRED:
        if value.get(key) is None:
            raise invalid(f"value.{key}: required")
    result = OrderInput(reference_id=_text(value["referenceId"], "value.referenceId", 200))
    cols = result.columns
    channel = _text(value["channel"], "value.channel", 40)
    if channel not in CHANNELS:
        raise invalid("value.channel: unknown channel")
    cols["channel"] = channel
    cols["point_of_sale"] = _text(value["pointOfSale"], "value.pointOfSale", 100)
    cols["ordered_at"] = _time_of(value, "orderedAt", "value")
    if value.get("status") is not None:
        status = _text(value["status"], "value.status", 30)
        if status not in ORDER_STATUSES:
            raise invalid("value.status: unknown status")
        cols["status"] = status
    if value.get("currencyCode") is not None:
        cols["currency_code"] = _currency(value["currencyCode"], "value.currencyCode")
    if value.get("price") is not None:
        cols["price"] = _amount(value["price"], "value.price")
    for wire, column in (("paymentType", "payment_type"), ("cardType", "card_type")):
        if value.get(wire) is not None:
            cols[column] = _text(value[wire], f"value.{wire}", 50)
    if mode == "insert" and cols.get("payment_type") == "Card" and not cols.get("card_type"):
        raise invalid("value.cardType: required when paymentType is Card")
    contact = value["contact"]
    if not isinstance(contact, dict):
        raise invalid("value.contact: must be an object")
    result.contact = contact
    items = value["orderItems"]
    if not isinstance(items, list):
        raise invalid("value.orderItems: must be an array")
    result.items = [_item(item, f"value.orderItems[{n}]") for n, item in enumerate(items)]
    if value.get("extensions") is not None:
        result.extension = _extension(value["extensions"], "value.extensions")
    if value.get("consumers") is not None and not isinstance(value["consumers"], list):
        raise invalid("value.consumers: must be an array")
    return result


def _item(value: Any, path: str) -> ItemInput:
    # The hot path of an import (one call per order item): each field's path is only made for its error.
    if not isinstance(value, dict):
        raise invalid(f"{path}: must be an object")
    if not ITEM_ATTRIBUTES.issuperset(value):
        for key in value:
            if key not in ITEM_ATTRIBUTES:
                raise invalid(f"{path}.{key}: undefined attribute")
    get = value.get
    for key in _ITEM_REQUIRED:
        if get(key) is None:
            raise invalid(f"{path}.{key}: required")
    item_type = _text_of(value, "type", path, 100)
    if item_type != item_type.upper():
        raise invalid(f"{path}.type: must be uppercase")
    cols: dict[str, Any] = {
        "type": item_type,
        "product_id": _text_of(value, "productId", path, 200),
        "name": _text_of(value, "name", path, 128),
        "price": _amount_of(value, "price", path),
        "currency_code": _currency_of(value, "currencyCode", path),
        "quantity": 1,
    }
    if get("status") is not None:
        status = _text_of(value, "status", path, 30)
        if status not in ITEM_STATUSES:
            raise invalid(f"{path}.status: unknown status")
        cols["status"] = status
    for wire, column, limit in _ITEM_TEXTS:
        if get(wire) is not None:
            cols[column] = _text_of(value, wire, path, limit)
    if cols.get("reference_id"):
        cols["item_id"] = cols["reference_id"]
    if get("orderedAt") is not None:
        cols["ordered_at"] = _time_of(value, "orderedAt", path)
    if get("quantity") is not None:
        quantity = numbers.quantity(value["quantity"])
        if quantity is None or not float(quantity).is_integer():
            raise invalid(f"{path}.quantity: must be a whole number ≥ 0")
        cols["quantity"] = int(quantity)
    if get("originalPrice") is not None:
        cols["original_price"] = _amount_of(value, "originalPrice", path)
    if get("originalCurrencyCode") is not None:
        cols["original_currency_code"] = _currency_of(value, "originalCurrencyCode", path)
    extension = _extension(value["extensions"], f"{path}.extensions") if get("extensions") is not None else None
    return ItemInput(cols, extension)


_ITEM_TEXTS = (("description", "description", 2000), ("vendor", "vendor", 200), ("referenceId", "reference_id", 200))


def _text_of(value: dict[str, Any], key: str, path: str, limit: int) -> str:
    """``_text(value[key], f"{path}.{key}", limit)``, with the path made only for an error."""
    found = value[key]
    if type(found) is str and found and len(found) <= limit and "\x00" not in found:
        return found
    return _text(found, f"{path}.{key}", limit)


def _currency_of(value: dict[str, Any], key: str, path: str) -> str:
    """``_currency(value[key], f"{path}.{key}")``, with the path made only for an error."""
    found = value[key]
    if type(found) is str and len(found) == 3 and found.isalpha():
        return found.upper()
    return _currency(found, f"{path}.{key}")


def _amount_of(value: dict[str, Any], key: str, path: str) -> float:
    """``_amount(value[key], f"{path}.{key}")``, with the path made only for an error."""
    number = numbers.amount(value[key])
    if number is None:
        raise invalid(f"{path}.{key}: must be a number")
    return number


_TIMES: dict[str, datetime | None] = {}  # parse_iso's answers: an import repeats the same few time stamps
_TIMES_SIZE = 10_000


def _time_of(value: dict[str, Any], key: str, path: str) -> datetime:
    """``_time(value[key], f"{path}.{key}")``, with the path made only for an error and answers remembered."""
    found = value[key]
    if type(found) is not str:
        return _time(found, f"{path}.{key}")
    parsed = _TIMES.get(found, _TIMES)
    if parsed is _TIMES:
        if len(_TIMES) >= _TIMES_SIZE:
            _TIMES.clear()
        parsed = _TIMES[found] = parse_iso(found)
    if parsed is None:
        raise invalid(f"{path}.{key}: must be an ISO 8601 date-time")
    return cast(datetime, parsed)


def _extension(value: Any, path: str) -> dict[str, str | int | float | bool]:
    if not isinstance(value, list):
        raise invalid(f"{path}: must be an array")
    if not value:
        return {}
    if len(value) > 1 or not isinstance(value[0], dict) or value[0].get("name") != "ext":
        raise invalid(f"{path}: one extension named ext")
    if value[0].get("key", "default") != "default":
        raise invalid(f"{path}.key: must be default")
    data = {k: v for k, v in value[0].items() if k not in ("name", "key")}
    return check_extension_data(data, f"{path}.ext")


def _text(value: Any, path: str, limit: int) -> str:
    if not isinstance(value, str) or not value:
        raise invalid(f"{path}: must be a non-empty string")
    if len(value) > limit or "\x00" in value:
        raise invalid(f"{path}: must be at most {limit} characters")
    return value


def _currency(value: Any, path: str) -> str:
    text = _text(value, path, 3)
    if len(text) != 3 or not text.isalpha():
        raise invalid(f"{path}: must be an ISO 4217 code")
    return text.upper()


def _amount(value: Any, path: str) -> float:
    number = numbers.amount(value)
    if number is None:
        raise invalid(f"{path}: must be a number")
    return number


def _time(value: Any, path: str) -> datetime:
    parsed = parse_iso(value) if isinstance(value, str) else None
    if parsed is None:
        raise invalid(f"{path}: must be an ISO 8601 date-time")
    return parsed


class OrderChunk:
    """What a chunk of batch records reads and writes about orders, read once and written together.

    ``preload`` looks up every ``referenceId`` of the chunk (and those orders' contacts) with
    one query each; new orders, contacts, items and extensions are plain rows kept aside and
    written by ``insert`` with one bulk write per table (``insert_rows``), after the guests they refer to.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = OrderBatchRepository(session)
        self._by_reference: dict[str, Order | None] = {}
        self._contacts: dict[str, OrderContact | None] = {}
        self._new_refs: set[str] = set()
        self._new_orders: list[Order] = []
        self._new_contacts: list[OrderContact] = []
        self._new_items: dict[str, list[OrderItem]] = {}
        self._new_extensions: dict[tuple[str, str], OrderExtension] = {}

    async def preload(self, reference_ids: list[str]) -> None:
        """Look up the orders with these reference ids and their contacts."""
        wanted = set(reference_ids) - self._by_reference.keys()
        if not wanted:
            return
        found = {order.reference_id: order for order in await self.repo.batch_by_references(wanted)}
        for reference_id in wanted:
            self._by_reference[reference_id] = found.get(reference_id)
        refs = [order.ref for order in found.values()]
        contacts = {row.order_ref: row for row in await self.repo.batch_contacts(refs)}
        for ref in refs:
            self._contacts[ref] = contacts.get(ref)

    async def order(self, reference_id: str) -> Order | None:
        if reference_id not in self._by_reference:
            self._by_reference[reference_id] = await self.repo.by_reference(reference_id)
        return self._by_reference[reference_id]

    async def contact(self, order_ref: str) -> OrderContact | None:
        if order_ref not in self._contacts:
            self._contacts[order_ref] = await self.repo.contact_row(order_ref)
        return self._contacts[order_ref]

    def add_order(self, order: Order) -> None:
        self._new_orders.append(order)
        self._new_refs.add(order.ref)
        self._by_reference[order.reference_id] = order
        self._contacts[order.ref] = None

    def add_contact(self, row: OrderContact) -> None:
        self._new_contacts.append(row)
        self._contacts[row.order_ref] = row

    def add_item(self, row: OrderItem, extension: OrderExtension | None) -> None:
        self._new_items.setdefault(row.order_ref, []).append(row)
        if extension is not None:
            self._new_extensions[("orderItem", row.ref)] = extension

    def add_extension(self, row: OrderExtension) -> None:
        self._new_extensions[(row.owner_type, row.owner_ref)] = row

    async def clear_items(self, order_ref: str) -> None:
        for item in self._new_items.pop(order_ref, []):
            self._new_extensions.pop(("orderItem", item.ref), None)
        if order_ref not in self._new_refs:
            await self.repo.batch_clear_items(order_ref)

    async def clear_extension(self, order_ref: str) -> None:
        self._new_extensions.pop(("order", order_ref), None)
        if order_ref not in self._new_refs:
            await self.repo.batch_clear_extension("order", order_ref)

    async def insert(self) -> None:
        """Write the new rows: orders, then what refers to them."""
        items = [item for rows in self._new_items.values() for item in rows]
        await insert_rows(self.session, Order.__table__, self._new_orders)  # type: ignore[arg-type]
        await insert_rows(self.session, OrderContact.__table__, self._new_contacts)  # type: ignore[arg-type]
        await insert_rows(self.session, OrderItem.__table__, items)  # type: ignore[arg-type]
        await insert_rows(self.session, OrderExtension.__table__, list(self._new_extensions.values()))  # type: ignore[arg-type]
        self._new_orders, self._new_contacts, self._new_items, self._new_extensions = [], [], {}, {}
        self._new_refs = set()


async def check_owner(chunk: OrderChunk, data: OrderInput, *, guest_ref: str | None) -> None:
    """Refuse giving an order tracked for one guest to another (``guest_ref``; None: a new guest)."""
    order = await chunk.order(data.reference_id)
    if order is not None and order.session_ref is not None and order.guest_ref not in (None, guest_ref):
        # An order tracked for one guest is not re-assigned by an import for another.
        raise RecordRejected("409", "Order belongs to another guest")


async def apply_order(chunk: OrderChunk, data: OrderInput, *, mode: OrderMode, guest_ref: str, clock: Clock) -> str:
    """Insert (replace entirely) or upsert an order by its ``referenceId``; returns its ref.

    The caller ran ``check_owner`` first, so nothing here rejects the record. New rows are
    plain (``plain``).
    """
    now = clock.now()
    order = await chunk.order(data.reference_id)
    if order is None:
        order = plain(
            Order,
            ref=fresh_ref(),
            reference_id=data.reference_id,
            status="UNKNOWN",
            price=0.0,
            created_at=now,
            ordered_at=now,
        )
        chunk.add_order(order)
    elif mode == "insert":
        order.status, order.price = "UNKNOWN", 0.0
        order.currency_code = order.payment_type = order.card_type = None
    for column, value in data.columns.items():
        setattr(order, column, value)
    order.guest_ref = guest_ref
    order.modified_at = now
    contact = await chunk.contact(order.ref)
    if contact is None:
        chunk.add_contact(
            plain(
                OrderContact,
                ref=fresh_ref(),
                order_ref=order.ref,
                guest_ref=guest_ref,
                data=data.contact or {},
                created_at=now,
                modified_at=now,
            )
        )
    else:
        contact.guest_ref = guest_ref
        contact.data = data.contact or {}
        contact.modified_at = now
    if data.items is not None:
        await chunk.clear_items(order.ref)
        for item in data.items:
            row = plain(
                OrderItem, ref=fresh_ref(), order_ref=order.ref, created_at=now, modified_at=now, **item.columns
            )
            extension = None
            if item.extension is not None:
                extension = _extension_row("orderItem", row.ref, order.ref, item.extension, now)
            chunk.add_item(row, extension)
    if data.extension is not None or mode == "insert":
        await chunk.clear_extension(order.ref)
        if data.extension is not None:
            chunk.add_extension(_extension_row("order", order.ref, order.ref, data.extension, now))
    return order.ref


def parse_order_reference(value: dict[str, Any]) -> OrderInput:
    """Validate the value of an order ``delete``: only its ``referenceId`` matters."""
    for key in value:
        if key not in ORDER_ATTRIBUTES:
            raise invalid(f"value.{key}: undefined attribute")
    if value.get("referenceId") is None:
        raise invalid("value.referenceId: required")
    return OrderInput(reference_id=_text(value["referenceId"], "value.referenceId", 200))


async def delete_order(session: AsyncSession, reference_id: str) -> bool:
    """Delete the order with this ``referenceId`` and everything under it; False when there is none."""
    repo = OrderBatchRepository(session)
    order = await repo.by_reference(reference_id)
    if order is None:
        return False
    await repo.delete_order_tree(order.ref)
    session.expunge(order)
    return True


async def detach_guests(session: AsyncSession, guest_refs: list[str]) -> None:
    """Keep the guests' orders but unlink them (order, contact and consumer rows) from the guests."""
    await OrderBatchRepository(session).batch_detach_guests(guest_refs)


def _extension_row(
    owner_type: str, owner_ref: str, order_ref: str, data: dict[str, str | int | float | bool], now: datetime
) -> OrderExtension:
    return plain(
        OrderExtension,
        ref=fresh_ref(),
        owner_type=owner_type,
        owner_ref=owner_ref,
        order_ref=order_ref,
        name="ext",
        key="default",
        data=dict(data),
        created_at=now,
        modified_at=now,
    )
