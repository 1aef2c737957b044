"""Every SQL statement of the batch domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.batch.models import Batch, BatchError


class BatchRepository:
    """Batches and their error lines."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Batch | BatchError) -> None:
        self.session.add(row)

    async def get(self, ref: str, *, for_update: bool = False) -> Batch | None:
        stmt = select(Batch).where(Batch.ref == ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def page(
        self,
        *,
        statuses: Sequence[str] | None,
        created_after: datetime,
        created_before: datetime | None,
        offset: int,
        limit: int,
    ) -> tuple[int, list[Batch]]:
        """Batches created in the window (newest first) and how many there are."""
        where = [Batch.created_at >= created_after]
        if statuses:
            where.append(Batch.status.in_(list(statuses)))
        if created_before is not None:
            where.append(Batch.created_at < created_before)
        total = (await self.session.execute(select(func.count()).select_from(Batch).where(*where))).scalar_one()
        stmt = select(Batch).where(*where).order_by(Batch.created_at.desc(), Batch.ref).offset(offset).limit(limit)
        return int(total), list((await self.session.execute(stmt)).scalars())

    async def errors_after(self, ref: str, line: int, limit: int) -> list[BatchError]:
        """Error lines of a batch after ``line``, in file order."""
        stmt = (
            select(BatchError)
            .where(BatchError.batch_ref == ref, BatchError.line > line)
            .order_by(BatchError.line)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def plan_each_statement(self) -> None:
        """On PostgreSQL, plan this transaction's statements with their actual parameters.

        The import repeats the same lookups thousands of times through cached prepared
        statements; a generic plan made while the tables were still empty keeps scanning them
        whole as they grow (until autoanalyze runs), so the chunk asks for custom plans.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
