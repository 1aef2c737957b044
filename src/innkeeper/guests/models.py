"""Guests, their identifiers and the browsers linked to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from innkeeper.core.db import Base, JSONType, UTCDateTime, bulk_reference


class Guest(Base):
    """A guest profile (data model 2.1)."""

    __tablename__ = "guests"
    # Email lookups are case-insensitive (``lower(email) = lower(:value)``): the REST search, find by email. The
    # exact lookups (``email_exact``, the batch email fallback) add ``lower(email) = lower(:value)`` and use this
    # index too: one index on email, not two (migration 0014).
    __table_args__ = (Index("ix_guests_email_lower", func.lower(text("email"))),)

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    guest_type: Mapped[str] = mapped_column(String(16))
    merged_into: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    title: Mapped[str | None] = mapped_column(String(50), nullable=True)
    first_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    last_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    gender: Mapped[str | None] = mapped_column(String(20), nullable=True)
    date_of_birth: Mapped[str | None] = mapped_column(String(40), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    emails: Mapped[list[str]] = mapped_column(JSONType, default=list)
    phone_numbers: Mapped[list[str]] = mapped_column(JSONType, default=list)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    nationality: Mapped[str | None] = mapped_column(String(100), nullable=True)
    street: Mapped[list[str]] = mapped_column(JSONType, default=list)
    city: Mapped[str | None] = mapped_column(String(200), nullable=True)
    state: Mapped[str | None] = mapped_column(String(200), nullable=True)
    post_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    country: Mapped[str | None] = mapped_column(String(8), nullable=True)
    passport_number: Mapped[str | None] = mapped_column(String(100), nullable=True)
    passport_expiry: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # Set by DELETE: the guest is hidden at once and purged by the worker.
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GuestIdentifier(Base):
    """An identifier owned by exactly one guest; the unique key settles identity races."""

    __tablename__ = "guest_identifiers"
    __table_args__ = (
        UniqueConstraint("provider", "value", name="uq_guest_identifiers_provider_value"),
        bulk_reference("guest_ref", "guests.ref"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    guest_ref: Mapped[str] = mapped_column(String(36), index=True)
    provider: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(String(500))
    expiry_date: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Browser(Base):
    """A browser id handed out by browser/create; linked to one guest at a time."""

    __tablename__ = "browsers"

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    guest_ref: Mapped[str] = mapped_column(ForeignKey("guests.ref"), index=True)
    user_agent: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GuestExtension(Base):
    """A guest data extension (``ext``, ``ext1`` … ``ext5``): one flat object of primitives."""

    __tablename__ = "guest_extensions"
    __table_args__ = (
        UniqueConstraint("guest_ref", "name", name="uq_guest_extensions_guest_name"),
        bulk_reference("guest_ref", "guests.ref"),
    )

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    guest_ref: Mapped[str] = mapped_column(String(36))  # indexed by the unique key (guest_ref leads)
    name: Mapped[str] = mapped_column(String(10))
    key: Mapped[str] = mapped_column(String(20), default="default")
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)
