"""Durable background jobs: rows leased with ``FOR UPDATE SKIP LOCKED`` so any number of
workers can run, and a killed worker's job is picked up again when its lease ends."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Index, Integer, String, Text, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from innkeeper.core.db import Base, JSONType, UTCDateTime

LEASE = timedelta(minutes=5)


class Job(Base):
    """A unit of background work (guest purge, batch import, …)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "done_at", "run_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(50))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


async def enqueue(session: AsyncSession, kind: str, payload: dict[str, Any], *, now: datetime) -> Job:
    """Add a job in the caller's transaction (it runs only if that transaction commits)."""
    job = Job(kind=kind, payload=payload, run_at=now, attempts=0, created_at=now)
    session.add(job)
    await session.flush()
    return job


async def lease(session: AsyncSession, *, now: datetime, kinds: list[str] | None = None) -> Job | None:
    """Take the next due job for LEASE; other workers skip it while the lease holds."""
    stmt = (
        select(Job)
        .where(Job.done_at.is_(None), Job.run_at <= now, or_(Job.locked_until.is_(None), Job.locked_until < now))
        .order_by(Job.run_at, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if kinds:
        stmt = stmt.where(Job.kind.in_(kinds))
    job = (await session.execute(stmt)).scalar_one_or_none()
    if job is not None:
        job.locked_until = now + LEASE
        job.attempts += 1
    return job


async def get(session: AsyncSession, job_id: int, *, for_update: bool = True) -> Job | None:
    """A job by id (locked for the caller's transaction)."""
    stmt = select(Job).where(Job.id == job_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


def finish(job: Job, *, now: datetime) -> None:
    """Mark a job done."""
    job.done_at = now
    job.locked_until = None


def retry_later(job: Job, error: str, *, now: datetime) -> None:
    """Record a failure; the job runs again after a backoff."""
    job.last_error = error[:2000]
    job.locked_until = None
    job.run_at = now + timedelta(seconds=min(300, 2**job.attempts))


async def scrub(session: AsyncSession, kind: str, *, key: str, value: Any) -> None:
    """Drop ``key`` from the payload (and the last error) of the pending jobs of ``kind`` whose
    ``key`` is ``value``: a purge job must not keep the ref of the guest it deleted."""
    stmt = select(Job).where(Job.kind == kind, Job.done_at.is_(None)).with_for_update()
    for job in (await session.execute(stmt)).scalars():
        if (job.payload or {}).get(key) == value:
            job.payload = {k: v for k, v in job.payload.items() if k != key}
            job.last_error = None
