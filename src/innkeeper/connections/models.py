"""The outbox (side effects written in the transaction that causes them) and connections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from innkeeper.core.db import Base, JSONType, UTCDateTime


class OutboxMessage(Base):
    """One pending or delivered side effect (e.g. ``session.closed``)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "available_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(100))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # The guest the message is about, so a guest deletion can purge it.
    guest_ref: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Connection(Base):
    """A destination (SMTP_EMAIL or WEBHOOK): its resource fields, with the secrets encrypted apart."""

    __tablename__ = "connections"

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    icon: Mapped[str | None] = mapped_column(String(100), nullable=True)
    system_type: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    # The resource without its secrets; ``secretsSet`` names the secrets that have a value.
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # One Fernet token holding every secret of the connection (see connections/secrets.py).
    secrets: Mapped[str | None] = mapped_column(Text, nullable=True)
    revision: Mapped[int] = mapped_column(Integer)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_by_ref: Mapped[str | None] = mapped_column(String(64), nullable=True)
