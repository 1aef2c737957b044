"""The audit log: who did what and when, with no personal data (subjects are hashed)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from innkeeper.core.db import Base, JSONType, UTCDateTime


class AuditEntry(Base):
    """One audited action."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(50))
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str | None] = mapped_column(String(100), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


def subject_hash(ref: str) -> str:
    """SHA-256 of a ref: lets an auditor check "was X deleted?" without storing X."""
    return hashlib.sha256(ref.encode()).hexdigest()


async def record(session: AsyncSession, action: str, *, subject: str, actor: str | None, now: datetime) -> AuditEntry:
    """Write an audit entry in the caller's transaction."""
    entry = AuditEntry(action=action, subject_hash=subject_hash(subject), actor=actor, requested_at=now, details={})
    session.add(entry)
    await session.flush()
    return entry


async def get(session: AsyncSession, entry_id: int) -> AuditEntry | None:
    """An entry by id."""
    return (await session.execute(select(AuditEntry).where(AuditEntry.id == entry_id))).scalar_one_or_none()


async def for_subject(session: AsyncSession, ref: str) -> list[AuditEntry]:
    """Entries about a ref (looked up by its hash)."""
    stmt = select(AuditEntry).where(AuditEntry.subject_hash == subject_hash(ref)).order_by(AuditEntry.id)
    return list((await session.execute(stmt)).scalars())
