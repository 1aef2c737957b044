"""Flows (experiences and experiments), their revisions, sticky assignments and executions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from innkeeper.core.db import Base, JSONType, UTCDateTime


class Flow(Base):
    """A flow definition: the authored document of its latest revision plus what execution filters on."""

    __tablename__ = "flows"

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    friendly_id: Mapped[str] = mapped_column(String(256), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    subtype: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # The latest authored revision and the one executions run (None until the first Start).
    revision: Mapped[int] = mapped_column(Integer)
    published_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FlowRevision(Base):
    """One stored revision of a flow document, exactly as exchanged over /v3/flowDefinitions."""

    __tablename__ = "flow_revisions"

    flow_ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FlowAssignment(Base):
    """The first traffic decision for a guest in a flow; reused so a guest never flips variant."""

    __tablename__ = "flow_assignments"

    flow_ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    guest_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    allocated: Mapped[bool] = mapped_column(Boolean)
    variant_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    method: Mapped[str] = mapped_column(String(12))
    bucket: Mapped[int] = mapped_column(Integer)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FlowExecution(Base):
    """One execution of a flow (spec personalize.md §2.9); exposures are the variant/control rows."""

    __tablename__ = "flow_executions"
    __table_args__ = (
        Index("ix_flow_executions_flow_created", "flow_ref", "created_at"),
        Index("ix_flow_executions_guest", "guest_ref"),
        Index("ix_flow_executions_session", "session_ref"),
    )

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow_ref: Mapped[str | None] = mapped_column(String(36), nullable=True)
    flow_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    variant_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    guest_ref: Mapped[str | None] = mapped_column(String(36), nullable=True)
    browser_ref: Mapped[str | None] = mapped_column(String(36), nullable=True)
    session_ref: Mapped[str | None] = mapped_column(String(36), nullable=True)
    channel: Mapped[str] = mapped_column(String(40))
    point_of_sale: Mapped[str | None] = mapped_column(String(100), nullable=True)
    friendly_id_requested: Mapped[str | None] = mapped_column(String(256), nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
