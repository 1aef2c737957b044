"""Orders and their items."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from innkeeper.core.db import Base, UTCDateTime


class Order(Base):
    """An order, created by a converting CHECKOUT / ORDER_CHECKOUT or the REST API."""

    __tablename__ = "orders"

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    guest_ref: Mapped[str] = mapped_column(ForeignKey("guests.ref"), index=True)
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

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    order_ref: Mapped[str] = mapped_column(ForeignKey("orders.ref"), index=True)
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
