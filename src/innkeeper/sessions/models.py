"""Sessions and the events recorded in them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.engine.interfaces import ExecutionContext
from sqlalchemy.orm import Mapped, mapped_column

from innkeeper.core.clock import iso
from innkeeper.core.db import Base, JSONType, UTCDateTime


class Session(Base):
    """A run of events of one browser on one channel and point of sale."""

    __tablename__ = "sessions"
    __table_args__ = (
        # At most one OPEN session per (browser, channel, point of sale).
        Index(
            "uq_sessions_open_key",
            "browser_ref",
            "channel",
            "point_of_sale",
            unique=True,
            sqlite_where=text("status = 'OPEN'"),
            postgresql_where=text("status = 'OPEN'"),
        ),
        # The sweeper's index: OPEN sessions by ``sweep_at``, a lower bound of their expiry that an event does
        # not move (see ``sweep_at``). ``sweep_at IS NOT NULL`` (always true) keeps it to queries that compare
        # sweep_at: a query for a browser's OPEN sessions could otherwise walk it whole. PostgreSQL did, under
        # load on a young table, instead of uq_sessions_open_key: ~4 ms a lookup, a third fewer events a second.
        Index(
            "ix_sessions_open_sweep",
            "sweep_at",
            sqlite_where=text("status = 'OPEN' AND sweep_at IS NOT NULL"),
            postgresql_where=text("status = 'OPEN' AND sweep_at IS NOT NULL"),
        ),
        Index("ix_sessions_guest_started", "guest_ref", "started_at"),
    )

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    guest_ref: Mapped[str] = mapped_column(ForeignKey("guests.ref"))
    # None for the closed sessions written by flow executions by email or identifier.
    browser_ref: Mapped[str | None] = mapped_column(ForeignKey("browsers.ref"), nullable=True, index=True)
    channel: Mapped[str] = mapped_column(String(40))
    point_of_sale: Mapped[str] = mapped_column(String(100))
    # None for sessions built from tracked events; FLOW_EXECUTION for the per-run sessions of callFlows.
    origin: Mapped[str | None] = mapped_column(String(20), nullable=True)
    status: Mapped[str] = mapped_column(String(10))
    close_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the sweeper looks at the session next: never after ``expires_at`` (an expiry moved earlier, by an event
    # or a shorter point-of-sale timeout, brings it along: ``repository.set_expiry``), else left alone by events,
    # so that no per-event UPDATE changes an indexed
    # column (PostgreSQL then updates the row in place, a "HOT" update, with no new entry in any of the
    # table's indexes). The sweeper closes OPEN sessions with ``sweep_at`` and ``expires_at`` both past, and
    # moves ``sweep_at`` up to ``expires_at`` for those still active (``sessions.service.reschedule_sweeps``).
    sweep_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    currency_code: Mapped[str | None] = mapped_column(String(8), nullable=True)
    first_page: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    last_page: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    num_events: Mapped[int] = mapped_column(Integer, default=0)
    num_views: Mapped[int] = mapped_column(Integer, default=0)
    num_searches: Mapped[int] = mapped_column(Integer, default=0)
    num_adds: Mapped[int] = mapped_column(Integer, default=0)
    num_selects: Mapped[int] = mapped_column(Integer, default=0)
    num_confirms: Mapped[int] = mapped_column(Integer, default=0)
    num_checkouts: Mapped[int] = mapped_column(Integer, default=0)
    cart: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    cart_cleared: Mapped[bool] = mapped_column(default=False)
    converted: Mapped[bool] = mapped_column(default=False)
    cart_type: Mapped[str | None] = mapped_column(String(12), nullable=True)
    abandoned_revenue: Mapped[float | None] = mapped_column(Float, nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    order_ref: Mapped[str | None] = mapped_column(String(36), nullable=True)
    utm: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    referrer: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    device: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    session_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)


_LINE_ENCODER = msgspec.json.Encoder()


def timeline_line(
    ref: str, type_: str, created_at: datetime, page: str | None, status: str, failure: str | None
) -> str:
    """An event's line of the guest timeline (``sessions.views.timeline``), as the JSON stored in ``events.line``:
    ref, type, time, page, processing status and a one-line summary."""
    if status == "FAILED":
        summary = f"{type_} failed: {failure}" if failure else f"{type_} failed"
    elif page:
        summary = f"{type_} on {page}"
    else:
        summary = type_
    line = {
        "ref": ref,
        "type": type_,
        "createdAt": iso(created_at),
        "page": page,
        "processingStatus": status,
        "summary": summary,
    }
    return _LINE_ENCODER.encode(line).decode()


def event_line(values: Mapping[str, Any]) -> str:
    """:func:`timeline_line` of an event's column values."""
    return timeline_line(
        values["ref"],
        values["type"],
        values["created_at"],
        values["page"],
        values["processing_status"],
        values["failure_reason"],
    )


def _line_default(context: ExecutionContext) -> str:
    """``events.line`` of a row inserted without it (an ``Event`` added to an ORM session)."""
    return event_line(context.get_current_parameters())  # type: ignore[attr-defined]


class Event(Base):
    """One received Stream/edge event, with the exact JSON that was sent."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_guest_created", "guest_ref", "created_at"),
        # A session's events in timeline order (sessions.views.timeline); also every session_ref lookup.
        Index("ix_events_session_created", "session_ref", "created_at", "ref"),
    )

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    browser_ref: Mapped[str] = mapped_column(ForeignKey("browsers.ref"), index=True)
    guest_ref: Mapped[str] = mapped_column(ForeignKey("guests.ref"))
    session_ref: Mapped[str | None] = mapped_column(ForeignKey("sessions.ref"), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(40), nullable=True)
    point_of_sale: Mapped[str | None] = mapped_column(String(100), nullable=True)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)
    currency: Mapped[str | None] = mapped_column(String(8), nullable=True)
    page: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    client_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processing_status: Mapped[str] = mapped_column(String(10))
    failure_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    warnings: Mapped[list[str]] = mapped_column(JSONType, default=list)
    transport: Mapped[str] = mapped_column(String(12))
    user_agent: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    client_requested_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    raw: Mapped[str] = mapped_column(Text)
    # The event's line of the guest timeline as JSON (``sessions.repository.timeline_line``), written with the row
    # (an event never changes): a timeline of 5,000 events reads one column of each, decoded in one go.
    line: Mapped[str] = mapped_column(Text, default=_line_default)
