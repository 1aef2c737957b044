"""Every SQL statement of flows, revisions, assignments and executions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.sqlite_fast import SqliteInsert, SqliteRead
from innkeeper.personalize.experiences.models import Flow, FlowAssignment, FlowExecution, FlowRevision

EXPOSURE_OUTCOMES = ("variant", "control")


@dataclass(frozen=True, slots=True)
class FlowHead:
    """What flow execution reads of a ``flows`` row before it knows it runs the flow: no document."""

    ref: str
    type: str
    status: str
    archived: bool
    revision: int
    published_revision: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    # ``(allocated, variant_ref)`` of the sticky assignment of the guest key asked for, None when there is none.
    decision: tuple[bool, str | None] | None = None


_HEAD_COLUMNS = (
    Flow.ref,
    Flow.type,
    Flow.status,
    Flow.archived,
    Flow.revision,
    Flow.published_revision,
    Flow.starts_at,
    Flow.ends_at,
)
# The statements of flow execution, built once: constructing a select and computing its cache key cost more
# than running it on SQLite. The head comes with the guest's stored assignment (one round trip, not two).
_HEAD = select(
    *_HEAD_COLUMNS, FlowAssignment.guest_key, FlowAssignment.allocated, FlowAssignment.variant_ref
).outerjoin(
    FlowAssignment, (FlowAssignment.flow_ref == Flow.ref) & (FlowAssignment.guest_key == bindparam("guest_key"))
)
_HEAD_BY_REF = _HEAD.where(Flow.ref == bindparam("key"))
_HEAD_BY_FRIENDLY_ID = _HEAD.where(Flow.friendly_id == bindparam("key"))
_ASSIGNMENT_KEY = (FlowAssignment.flow_ref == bindparam("flow_ref")) & (
    FlowAssignment.guest_key == bindparam("guest_key")
)
_DECISION = select(FlowAssignment.allocated, FlowAssignment.variant_ref).where(_ASSIGNMENT_KEY)
_REMOVE_ASSIGNMENT = delete(FlowAssignment).where(_ASSIGNMENT_KEY)
# The same, straight on SQLite's connection (SQLAlchemy's execution machinery costs more than these statements).
_SQLITE_HEAD_BY_REF = SqliteRead(_HEAD_BY_REF)
_SQLITE_HEAD_BY_FRIENDLY_ID = SqliteRead(_HEAD_BY_FRIENDLY_ID)
_SQLITE_INSERT_ASSIGNMENT = SqliteInsert(cast(Table, FlowAssignment.__table__))
_SQLITE_INSERT_EXECUTION = SqliteInsert(cast(Table, FlowExecution.__table__))


class FlowRepository:
    """Flows and their revisions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Flow | FlowRevision | FlowAssignment | FlowExecution) -> None:
        self.session.add(row)

    async def get(self, ref: str, *, for_update: bool = False) -> Flow | None:
        stmt = select(Flow).where(Flow.ref == ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_friendly_id(self, friendly_id: str) -> Flow | None:
        return (await self.session.execute(select(Flow).where(Flow.friendly_id == friendly_id))).scalar_one_or_none()

    async def head(
        self, *, ref: str | None = None, friendly_id: str | None = None, guest_key: str | None = None
    ) -> FlowHead | None:
        """The :class:`FlowHead` of the flow with this ref or friendly id, with the stored assignment of
        ``guest_key`` when one is given (one Core select, no JSON decoded)."""
        read = _SQLITE_HEAD_BY_REF if ref is not None else _SQLITE_HEAD_BY_FRIENDLY_ID
        params = {"key": ref if ref is not None else friendly_id, "guest_key": guest_key}
        rows = await read.rows(self.session, params)
        if not rows:
            return None
        row = rows[0]
        flow_ref, kind, status, archived, revision, published, starts_at, ends_at, key, allocated, variant_ref = row
        return FlowHead(
            flow_ref,
            kind,
            status,
            bool(archived),
            revision,
            published,
            starts_at,
            ends_at,
            decision=(bool(allocated), variant_ref) if key is not None else None,
        )

    async def live_with_prefix(self, prefix: str) -> list[Flow]:
        """Flows whose friendly id starts with ``prefix``, in lexicographic order (wildcard ids, §1.3)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = (
            select(Flow)
            .where(Flow.friendly_id.like(escaped + "%", escape="\\"), Flow.status == "LIVE", Flow.archived.is_(False))
            .order_by(Flow.friendly_id)
            .limit(100)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def of_type(self, flow_type: str) -> list[Flow]:
        stmt = select(Flow).where(Flow.type == flow_type).order_by(Flow.friendly_id)
        return list((await self.session.execute(stmt)).scalars())

    async def live_of_type(self, flow_type: str) -> list[Flow]:
        stmt = select(Flow).where(Flow.type == flow_type, Flow.status == "LIVE", Flow.archived.is_(False))
        return list((await self.session.execute(stmt.order_by(Flow.friendly_id))).scalars())

    async def friendly_ids_like(self, base: str) -> set[str]:
        escaped = base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = select(Flow.friendly_id).where(Flow.friendly_id.like(escaped + "%", escape="\\"))
        return set((await self.session.execute(stmt)).scalars())

    async def page(self, *, offset: int, limit: int, include_archived: bool) -> tuple[list[Flow], int]:
        stmt = select(Flow)
        count = select(func.count()).select_from(Flow)
        if not include_archived:
            stmt = stmt.where(Flow.archived.is_(False))
            count = count.where(Flow.archived.is_(False))
        stmt = stmt.order_by(Flow.created_at.desc(), Flow.ref).offset(offset).limit(limit)
        total = int((await self.session.execute(count)).scalar_one())
        return list((await self.session.execute(stmt)).scalars()), total

    async def revision(self, ref: str, revision: int) -> FlowRevision | None:
        return await self.session.get(FlowRevision, (ref, revision))

    async def revisions(self, ref: str) -> list[FlowRevision]:
        """Every stored revision of a flow, newest first."""
        stmt = select(FlowRevision).where(FlowRevision.flow_ref == ref).order_by(FlowRevision.revision.desc())
        return list((await self.session.execute(stmt)).scalars())

    async def due_for_schedule(self, now: datetime) -> list[Flow]:
        """SCHEDULED flows whose start has come and LIVE/PAUSED/SCHEDULED flows whose end has passed."""
        stmt = (
            select(Flow)
            .where(
                ((Flow.status == "SCHEDULED") & (Flow.starts_at <= now))
                | (Flow.status.in_(("LIVE", "PAUSED", "SCHEDULED")) & (Flow.ends_at <= now))
            )
            .with_for_update(skip_locked=True)
            .limit(200)
        )
        return list((await self.session.execute(stmt)).scalars())


class AssignmentRepository:
    """Sticky traffic assignments."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, flow_ref: str, guest_key: str) -> FlowAssignment | None:
        return await self.session.get(FlowAssignment, (flow_ref, guest_key))

    async def decision(self, flow_ref: str, guest_key: str) -> tuple[bool, str | None] | None:
        """``(allocated, variant_ref)`` of the stored assignment (a Core select), None when there is none."""
        row = (await self.session.execute(_DECISION, {"flow_ref": flow_ref, "guest_key": guest_key})).first()
        return (bool(row[0]), row[1]) if row is not None else None

    async def remove(self, flow_ref: str, guest_key: str) -> None:
        """Delete one stored assignment (Core)."""
        await self.session.execute(_REMOVE_ASSIGNMENT, {"flow_ref": flow_ref, "guest_key": guest_key})

    async def insert(self, row: Mapping[str, Any]) -> None:
        """Insert one assignment row (Core; column name → value)."""
        await _SQLITE_INSERT_ASSIGNMENT.execute(self.session, row)

    async def of_guest(self, guest_key: str) -> list[FlowAssignment]:
        stmt = select(FlowAssignment).where(FlowAssignment.guest_key == guest_key)
        return list((await self.session.execute(stmt)).scalars())

    async def delete(self, row: FlowAssignment) -> None:
        await self.session.delete(row)


class ExecutionRepository:
    """Execution rows and the exposure queries behind results."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, row: Mapping[str, Any]) -> None:
        """Insert one execution row (Core, no unit-of-work; column name → value)."""
        await _SQLITE_INSERT_EXECUTION.execute(self.session, row)

    async def exposures(
        self, flow_ref: str, *, start: datetime | None, end: datetime | None
    ) -> Sequence[tuple[str, str | None, str | None, str | None, datetime]]:
        """(guest, session, browser, variant, time) of every exposure of a known guest, oldest first."""
        return await self._rows(flow_ref, EXPOSURE_OUTCOMES, start=start, end=end)

    async def holdouts(
        self, flow_ref: str, *, start: datetime | None, end: datetime | None
    ) -> Sequence[tuple[str, str | None, str | None, str | None, datetime]]:
        """Eligible guests left outside the allocation (the implicit control of experiences, §7.3)."""
        return await self._rows(flow_ref, ("not_allocated",), start=start, end=end)

    async def of_flows(
        self, flow_refs: Sequence[str], outcomes: Sequence[str], *, start: datetime, end: datetime
    ) -> list[FlowExecution]:
        """Executions of these flows with these outcomes in [start, end), oldest first."""
        if not flow_refs:
            return []
        stmt = (
            select(FlowExecution)
            .where(
                FlowExecution.flow_ref.in_(list(flow_refs)),
                FlowExecution.outcome.in_(list(outcomes)),
                FlowExecution.guest_ref.is_not(None),
                FlowExecution.created_at >= start,
                FlowExecution.created_at < end,
            )
            .order_by(FlowExecution.created_at, FlowExecution.ref)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def _rows(
        self, flow_ref: str, outcomes: Sequence[str], *, start: datetime | None, end: datetime | None
    ) -> Sequence[tuple[str, str | None, str | None, str | None, datetime]]:
        stmt = select(
            FlowExecution.guest_ref,
            FlowExecution.session_ref,
            FlowExecution.browser_ref,
            FlowExecution.variant_ref,
            FlowExecution.created_at,
        ).where(
            FlowExecution.flow_ref == flow_ref,
            FlowExecution.outcome.in_(outcomes),
            FlowExecution.guest_ref.is_not(None),
        )
        if start is not None:
            stmt = stmt.where(FlowExecution.created_at >= start)
        if end is not None:
            stmt = stmt.where(FlowExecution.created_at < end)
        stmt = stmt.order_by(FlowExecution.created_at, FlowExecution.ref)
        rows = (await self.session.execute(stmt)).all()
        return [(str(g), s, b, v, c) for g, s, b, v, c in rows]

    async def outcome_counts(self, flow_ref: str, *, start: datetime | None, end: datetime | None) -> dict[str, int]:
        stmt = select(FlowExecution.outcome, func.count()).where(FlowExecution.flow_ref == flow_ref)
        if start is not None:
            stmt = stmt.where(FlowExecution.created_at >= start)
        if end is not None:
            stmt = stmt.where(FlowExecution.created_at < end)
        stmt = stmt.group_by(FlowExecution.outcome)
        return {str(outcome): int(n) for outcome, n in (await self.session.execute(stmt)).all()}

    async def exposed_since(self, flow_ref: str, guest_ref: str, since: datetime) -> bool:
        stmt = (
            select(FlowExecution.ref)
            .where(
                FlowExecution.flow_ref == flow_ref,
                FlowExecution.guest_ref == guest_ref,
                FlowExecution.outcome.in_(EXPOSURE_OUTCOMES),
                FlowExecution.created_at >= since,
            )
            .limit(1)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def set_outcome(self, ref: str, outcome: str) -> None:
        row = await self.session.get(FlowExecution, ref)
        if row is not None:
            row.outcome = outcome

    async def move_guest(self, from_guest: str, to_guest: str) -> None:
        rows = await self.session.execute(select(FlowExecution).where(FlowExecution.guest_ref == from_guest))
        for row in rows.scalars():
            row.guest_ref = to_guest
