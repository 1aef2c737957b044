"""Every SQL statement of trigger jobs, deliveries and suppressions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.triggers.models import Delivery, EmailSuppression, TriggerJob


class TriggerRepository:
    """Trigger jobs and deliveries."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: TriggerJob | Delivery | EmailSuppression) -> None:
        self.session.add(row)

    async def insert_new_jobs(self, rows: list[dict[str, Any]]) -> int:
        """Insert trigger jobs (column dicts) in one multi-row statement, skipping those whose cause
        (flow, trigger type, entity) already has a job; returns how many were inserted."""
        if not rows:
            return 0
        table = cast(Table, TriggerJob.__table__)
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
        stmt = insert.on_conflict_do_nothing(index_elements=["flow_ref", "trigger_type", "entity_ref"])
        result = await self.session.execute(stmt.returning(table.c.ref), rows)
        return len(result.all())

    async def lease_jobs(self, now: datetime, limit: int) -> list[TriggerJob]:
        """Due jobs nobody holds, locked so other workers skip them."""
        stmt = (
            select(TriggerJob)
            .where(
                TriggerJob.status == "PENDING",
                TriggerJob.run_at <= now,
                (TriggerJob.lease_until.is_(None)) | (TriggerJob.lease_until < now),
            )
            .order_by(TriggerJob.run_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def job(self, ref: str, *, for_update: bool = False) -> TriggerJob | None:
        stmt = select(TriggerJob).where(TriggerJob.ref == ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lease_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        stmt = (
            select(Delivery)
            .where(
                Delivery.status.in_(("PENDING", "RETRYING", "SENDING")),
                Delivery.next_attempt_at <= now,
                (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def delivery(self, ref: str, *, for_update: bool = False) -> Delivery | None:
        stmt = select(Delivery).where(Delivery.ref == ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def delivery_by_key(self, key: str) -> Delivery | None:
        return (
            await self.session.execute(select(Delivery).where(Delivery.idempotency_key == key))
        ).scalar_one_or_none()

    async def deliveries(self, *, status: str | None, offset: int, limit: int) -> tuple[list[Delivery], int]:
        stmt = select(Delivery)
        count = select(func.count()).select_from(Delivery)
        if status is not None:
            stmt = stmt.where(Delivery.status == status)
            count = count.where(Delivery.status == status)
        stmt = stmt.order_by(Delivery.created_at.desc(), Delivery.ref).offset(offset).limit(limit)
        return list((await self.session.execute(stmt)).scalars()), int((await self.session.execute(count)).scalar_one())

    async def delivery_counts(self, flow_refs: list[str], *, start: datetime, end: datetime) -> dict[str, int]:
        stmt = (
            select(Delivery.status, func.count())
            .where(Delivery.flow_ref.in_(flow_refs), Delivery.created_at >= start, Delivery.created_at < end)
            .group_by(Delivery.status)
        )
        return {str(status): int(n) for status, n in (await self.session.execute(stmt)).all()}

    async def sent_execution_refs(self, flow_refs: list[str], *, start: datetime, end: datetime) -> set[str]:
        return {ref for ref, _ in await self.sent_deliveries(flow_refs, start=start, end=end)}

    async def sent_deliveries(self, flow_refs: list[str], *, start: datetime, end: datetime) -> list[Any]:
        """``(execution ref, created at)`` of the SENT deliveries of these flows created in [start, end)."""
        if not flow_refs:
            return []
        stmt = select(Delivery.execution_ref, Delivery.created_at).where(
            Delivery.flow_ref.in_(flow_refs),
            Delivery.status == "SENT",
            Delivery.created_at >= start,
            Delivery.created_at < end,
        )
        return list((await self.session.execute(stmt)).all())

    async def suppressed(self, email: str) -> bool:
        return await self.session.get(EmailSuppression, email.strip().lower()) is not None

    async def suppression(self, email: str) -> EmailSuppression | None:
        return await self.session.get(EmailSuppression, email.strip().lower())

    async def suppressions(self, *, offset: int, limit: int) -> list[EmailSuppression]:
        stmt = (
            select(EmailSuppression)
            .order_by(EmailSuppression.created_at.desc(), EmailSuppression.email)
            .offset(offset)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def remove(self, row: EmailSuppression) -> None:
        await self.session.delete(row)
