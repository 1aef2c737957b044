"""Trigger jobs (a flow to run for one cause) and deliveries (what a run sends through a connection)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from innkeeper.core.db import Base, JSONType, UTCDateTime


class TriggerJob(Base):
    """One triggered flow to run for one cause; the unique key makes a cause fire a flow once."""

    __tablename__ = "trigger_jobs"
    __table_args__ = (
        UniqueConstraint("flow_ref", "trigger_type", "entity_ref", name="uq_trigger_jobs_cause"),
        Index("ix_trigger_jobs_due", "status", "run_at"),
    )

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow_ref: Mapped[str] = mapped_column(String(36))
    trigger_type: Mapped[str] = mapped_column(String(30))
    entity_ref: Mapped[str] = mapped_column(String(100))
    guest_ref: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # The trigger entity (the closed session, the order…) as the flow's ``event.message``.
    message: Mapped[dict[str, Any]] = mapped_column(JSONType)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # PENDING → DONE (ran, whatever the outcome) | FAILED (could not run after retries).
    status: Mapped[str] = mapped_column(String(12))
    outcome: Mapped[str | None] = mapped_column(String(30), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Delivery(Base):
    """A rendered request waiting to be, or already, sent through a connection (§9.3 outbox)."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    # (flow, cause, recipient): one delivery per cause, however often the job runs.
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    flow_ref: Mapped[str] = mapped_column(String(36), index=True)
    job_ref: Mapped[str] = mapped_column(String(36))
    execution_ref: Mapped[str] = mapped_column(String(36))
    variant_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    connection_ref: Mapped[str] = mapped_column(String(36))
    guest_ref: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    recipient: Mapped[str | None] = mapped_column(String(320), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    headers: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    # PENDING | SENDING | RETRYING | SENT | FAILED (dead letter) | SKIPPED
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class EmailSuppression(Base):
    """An address that must never get mail (bounces, complaints, unsubscribes)."""

    __tablename__ = "email_suppressions"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
