"""Background jobs of the batch domain: the import of an uploaded file."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.batch import service
from innkeeper.core.clock import Clock
from innkeeper.worker import handles


@handles(service.IMPORT_JOB)
async def import_batch(session: AsyncSession, payload: dict[str, Any], clock: Clock) -> None:
    """Import (or resume importing) the batch named in the job; a no-op once it is finished."""
    await service.import_batch(
        session, str(payload["ref"]), options=service.ImportOptions.from_payload(payload), clock=clock
    )
