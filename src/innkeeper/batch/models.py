"""Batches and the per-line errors of their imports."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from innkeeper.core.db import Base, UTCDateTime


class Batch(Base):
    """An allocated batch upload and, once uploaded, its import progress.

    ``lines_done``, the counts and the batch's error lines commit in the same transaction
    as the records they describe, so a restarted import resumes exactly where it stopped.
    """

    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_created_at", "created_at"),)

    ref: Mapped[str] = mapped_column(String(36), primary_key=True)
    checksum: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), index=True)
    # Per-batch HMAC key of its upload and log URLs (never leaves the server).
    secret: Mapped[str] = mapped_column(String(64))
    location_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    file_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lines_done: Mapped[int] = mapped_column(Integer, default=0)
    records_total: Mapped[int] = mapped_column(Integer, default=0)
    records_succeeded: Mapped[int] = mapped_column(Integer, default=0)
    records_failed: Mapped[int] = mapped_column(Integer, default=0)
    # An unreadable archive (not gzip): status error without a log.
    failure: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The worker importing the batch holds it until lease_until; lease_token names that worker.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BatchError(Base):
    """One failed line of a batch import (a line of its error log)."""

    __tablename__ = "batch_errors"
    __table_args__ = (UniqueConstraint("batch_ref", "line", name="uq_batch_errors_batch_line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_ref: Mapped[str] = mapped_column(ForeignKey("batches.ref", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    record_ref: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(3))
    message: Mapped[str] = mapped_column(String(500))
