"""Orders and their items."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from innkeeper.core.db import Base, JSONType, UTCDateTime, bulk_reference

# The statuses of the Order REST API and the batch order model (spec §9.1–9.2; the
# `PARTIALY_` spelling is Sitecore's).
OrderStatus = Literal[
    "BROWSED",
    "CANCELLED",
    "CONFIRMED",
    "DECLINED",
    "PARTIALY_CONFIRMED",
    "PARTIALY_REFUNDED",
    "PAYMENT_PENDING",
    "PENDING",
    "PURCHASED",
    "REFUNDED",
    "RESERVED",
    "SEARCHED",
    "UNKNOWN",
]
ItemStatus = Literal["RESERVED", "PENDING", "DECLINED", "CONFIRMED", "CANCELLED", "REFUNDED", "PURCHASED", "UNKNOWN"]
ORDER_STATUSES = frozenset(get_args(OrderStatus))
ITEM_STATUSES = frozenset(get_args(ItemStatus))


class Order(Base):
    """An order, created by a converting CHECKOUT / ORDER_CHECKOUT or the REST API."""

    __tablename__ = "orders"
    __table_args__ = (bulk_reference("guest_ref", "guests.ref"),)

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Orders created over REST without a contact belong to no guest yet.
    guest_ref: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    reference_id: Mapped[str] = mapped_column(String(200), unique=True)
    session_ref: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(30))
    currency_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    price: Mapped[float] = mapped_column(Float, default=0.0)
    payment_type: Mapped[str | None] = mapped_column(String(50), nullable=True)
    card_type: Mapped[str | None] = mapped_column(String(50), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(40), nullable=True)
    point_of_sale: Mapped[str | None] = mapped_column(String(100), nullable=True)
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrderItem(Base):
    """One line of an order."""

    __tablename__ = "order_items"
    __table_args__ = (bulk_reference("order_ref", "orders.ref"),)

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_ref: Mapped[str] = mapped_column(String(36), index=True)
    item_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    name: Mapped[str | None] = mapped_column(String(500), nullable=True)
    product_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reference_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str | None] = mapped_column(String(30), nullable=True)
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    price: Mapped[float] = mapped_column(Float, default=0.0)
    currency_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    original_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    original_currency_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    description: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    vendor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ordered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OrderContact(Base):
    """The primary contact of an order; links the order to a guest."""

    __tablename__ = "order_contacts"
    __table_args__ = (bulk_reference("order_ref", "orders.ref"), bulk_reference("guest_ref", "guests.ref"))

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_ref: Mapped[str] = mapped_column(String(36), unique=True)
    guest_ref: Mapped[str | None] = mapped_column(String(36), index=True, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrderConsumer(Base):
    """Someone who consumes items of an order."""

    __tablename__ = "order_consumers"

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_ref: Mapped[str] = mapped_column(ForeignKey("orders.ref"), index=True)
    guest_ref: Mapped[str | None] = mapped_column(ForeignKey("guests.ref"), index=True, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    order_item_refs: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OrderExtension(Base):
    """The ``ext`` data extension of an order or of an order item."""

    __tablename__ = "order_extensions"
    __table_args__ = (
        UniqueConstraint("owner_type", "owner_ref", "name", name="uq_order_extensions_owner_name"),
        bulk_reference("order_ref", "orders.ref"),
    )

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_type: Mapped[str] = mapped_column(String(10))  # "order" | "orderItem"
    owner_ref: Mapped[str] = mapped_column(String(36), index=True)
    order_ref: Mapped[str] = mapped_column(String(36), index=True)
    name: Mapped[str] = mapped_column(String(10))
    key: Mapped[str] = mapped_column(String(20), default="default")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)
