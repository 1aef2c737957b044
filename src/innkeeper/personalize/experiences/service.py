"""Flow definitions: create, edit, Start / Pause / Complete, archive and the schedule (§1.2–1.6)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.connections import service as connections
from innkeeper.core import events
from innkeeper.core.clock import Clock, iso
from innkeeper.core.ids import new_ref
from innkeeper.personalize.experiences.compiled import CACHE, CompiledFlow, compile_flow
from innkeeper.personalize.experiences.definitions import (
    BUSINESS_PROCESS,
    SAMPLE_SIZE_DEFAULTS,
    content_of,
    friendly_id_from,
    schedule_window,
    validate_document,
    validate_trigger,
)
from innkeeper.personalize.experiences.errors import FlowConflict, FlowInvalid, FlowNotFound
from innkeeper.personalize.experiences.models import Flow, FlowAssignment, FlowRevision
from innkeeper.personalize.experiences.repository import (
    AssignmentRepository,
    ExecutionRepository,
    FlowHead,
    FlowRepository,
)

RUNNING = ("LIVE", "SCHEDULED")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change (an API token id or a portal user ref)."""

    ref: str | None = None


def document_of(flow: Flow, *, client_key: str) -> dict[str, Any]:
    """The flow as served by /v3/flowDefinitions (without ``href``, which the HTTP layer adds)."""
    document = copy.deepcopy(flow.document)
    document.update(
        {
            "ref": flow.ref,
            "clientKey": client_key,
            "status": flow.status,
            "archived": flow.archived,
            "revision": flow.revision,
            "modifiedAt": iso(flow.modified_at),
        }
    )
    return document


async def list_flows(
    session: AsyncSession, *, offset: int, limit: int, include_archived: bool
) -> tuple[list[Flow], int]:
    return await FlowRepository(session).page(offset=offset, limit=limit, include_archived=include_archived)


async def get_flow(session: AsyncSession, ref_or_friendly_id: str, *, for_update: bool = False) -> Flow:
    repo = FlowRepository(session)
    flow = await repo.get(ref_or_friendly_id, for_update=for_update)
    if flow is None:
        by_id = await repo.by_friendly_id(ref_or_friendly_id)
        if by_id is not None and for_update:
            by_id = await repo.get(by_id.ref, for_update=True)
        flow = by_id
    if flow is None:
        raise FlowNotFound("Not Found", developer_message=f"No flow with ref or friendlyId {ref_or_friendly_id[:256]}")
    return flow


async def _unique_friendly_id(repo: FlowRepository, base: str) -> str:
    taken = await repo.friendly_ids_like(base)
    if base not in taken:
        return base
    number = 2
    while f"{base}_{number}" in taken:
        number += 1
    return f"{base}_{number}"


def _normalise(document: dict[str, Any]) -> dict[str, Any]:
    stored = {key: value for key, value in document.items() if key not in ("href", "clientKey", "transpiledVariants")}
    stored["businessProcess"] = BUSINESS_PROCESS.get(str(stored.get("type")), "interactive_v1")
    stored["channels"] = [str(channel).upper() for channel in stored.get("channels") or []]
    stored.setdefault("tags", [])
    stored.setdefault("variants", [])
    stored.setdefault("schedule", {"type": "simpleSchedule"})
    if stored.get("subtype") == "EXPERIMENT":
        stored["sampleSizeConfig"] = {**SAMPLE_SIZE_DEFAULTS, **(stored.get("sampleSizeConfig") or {})}
    for key in ("ref", "status", "archived", "revision", "modifiedAt", "createdAt"):
        stored.pop(key, None)
    return stored


async def create_flow(session: AsyncSession, document: Any, *, actor: Actor, clock: Clock) -> Flow:
    problems = validate_document(document, creating=True)
    if problems:
        raise FlowInvalid(problems.items)
    repo = FlowRepository(session)
    stored = _normalise(document)
    requested = document.get("friendlyId")
    if requested:
        if await repo.by_friendly_id(requested) is not None:
            raise FlowConflict("Conflict", developer_message=f"friendlyId {requested} is already used")
        friendly_id = str(requested)
    else:
        friendly_id = await _unique_friendly_id(repo, friendly_id_from(str(document["name"])))
    stored["friendlyId"] = friendly_id
    stored["modifiedByRef"] = actor.ref
    now = clock.now()
    start, end = schedule_window(stored)
    flow = Flow(
        ref=new_ref(),
        friendly_id=friendly_id,
        name=str(stored["name"]),
        type=str(stored["type"]),
        subtype=str(stored["subtype"]),
        status="DRAFT",
        archived=bool(document.get("archived", False)),
        revision=1,
        published_revision=None,
        started=False,
        starts_at=start,
        ends_at=end,
        document=stored,
        created_at=now,
        modified_at=now,
    )
    repo.add(flow)
    repo.add(FlowRevision(flow_ref=flow.ref, revision=1, document=stored, published_at=None, created_at=now))
    await session.flush()
    return flow


async def update_flow(session: AsyncSession, ref: str, document: Any, *, actor: Actor, clock: Clock) -> Flow:
    """PUT: a full document. Content changes need DRAFT or PAUSED; ``status`` drives the lifecycle (§1.2)."""
    flow = await get_flow(session, ref, for_update=True)
    if isinstance(document, dict) and "friendlyId" not in document:
        document = {**document, "friendlyId": flow.friendly_id}
    problems = validate_document(document, creating=False)
    if problems:
        raise FlowInvalid(problems.items)
    repo = FlowRepository(session)
    stored = _normalise(document)
    target = str(document.get("status", flow.status))
    target = "LIVE" if target in ("PRODUCTION", "PUBLISHING") else target
    archived = bool(document.get("archived", flow.archived))
    changed = content_of(stored) != content_of(flow.document)
    if stored["friendlyId"] != flow.friendly_id:
        if flow.started:
            raise FlowInvalid(["friendlyId: cannot change after the flow was first started"])
        if await repo.by_friendly_id(stored["friendlyId"]) is not None:
            raise FlowConflict("Conflict", developer_message=f"friendlyId {stored['friendlyId']} is already used")
    if stored["type"] != flow.type and flow.started:
        raise FlowInvalid(["type: cannot change after the flow was first started"])
    if changed and flow.status not in ("DRAFT", "PAUSED"):
        raise FlowConflict(
            "Conflict", developer_message=f"A {flow.status} flow cannot be edited; pause it first (status PAUSED)"
        )
    now = clock.now()
    if changed:
        stored["modifiedByRef"] = actor.ref
        flow.revision += 1
        flow.document = stored
        flow.friendly_id = str(stored["friendlyId"])
        flow.name = str(stored["name"])
        flow.type = str(stored["type"])
        flow.subtype = str(stored["subtype"])
        flow.starts_at, flow.ends_at = schedule_window(stored)
        repo.add(FlowRevision(flow_ref=flow.ref, revision=flow.revision, document=stored, created_at=now))
    if target != flow.status:
        await _transition(session, flow, target, clock=clock)
    if archived and not flow.archived and flow.status in RUNNING:
        raise FlowConflict(
            "Conflict", developer_message="A LIVE or SCHEDULED flow cannot be archived; complete it first"
        )
    flow.archived = archived
    flow.modified_at = now
    await session.flush()
    return flow


async def _transition(session: AsyncSession, flow: Flow, target: str, *, clock: Clock) -> None:
    current = flow.status
    allowed = {
        "DRAFT": ("LIVE", "COMPLETED"),
        "PAUSED": ("LIVE", "COMPLETED"),
        "LIVE": ("PAUSED", "COMPLETED"),
        "SCHEDULED": ("PAUSED", "COMPLETED"),
        "COMPLETED": (),
    }
    if target not in allowed.get(current, ()):
        raise FlowConflict("Conflict", developer_message=f"Cannot change status from {current} to {target}")
    if target == "LIVE":
        await start(session, flow, clock=clock)
    else:
        flow.status = target


async def start(session: AsyncSession, flow: Flow, *, clock: Clock) -> CompiledFlow:
    """Publish synchronously: compile, freeze the revision, go LIVE (or SCHEDULED); 400 leaves the status."""
    if flow.type == "INTERACTIVE_WEB_FLOW":
        raise FlowInvalid(["type: web experiences cannot be started yet (web personalization is not built)"])
    try:
        compiled = compile_flow(flow.ref, flow.revision, flow.document)
    except ValueError as exc:
        raise FlowInvalid(list(exc.args[0])) from exc
    if flow.type == "TRIGGERED_V3":
        problems = validate_trigger(flow.document) + await _destination_problems(session, compiled)
        if problems:
            raise FlowInvalid(problems)
    now = clock.now()
    if flow.ends_at is not None and flow.ends_at <= now:
        raise FlowInvalid(["schedule.endDate: is in the past"])
    revision = await FlowRepository(session).revision(flow.ref, flow.revision)
    if revision is not None and revision.published_at is None:
        revision.published_at = now
    flow.published_revision = flow.revision
    flow.started = True
    flow.status = "SCHEDULED" if flow.starts_at is not None and flow.starts_at > now else "LIVE"
    CACHE.put(compiled)
    return compiled


async def _destination_problems(session: AsyncSession, flow: CompiledFlow) -> list[str]:
    """Every variant of a triggered flow but the control sends through an existing connection."""
    problems = []
    for index, variant in enumerate(flow.variants.values()):
        if variant.is_control:
            continue
        ref = str((flow.destinations.get(variant.ref) or {}).get("connectionRef") or "")
        if not ref:
            problems.append(f'variants[{index}].destination: a triggered variant needs {{"connectionRef": "…"}}')
        elif not await connections.connection_exists(session, ref):
            problems.append(f"variants[{index}].destination.connectionRef: no connection {ref[:64]}")
    return problems


async def apply_schedules(session: AsyncSession, *, clock: Clock) -> int:
    """Worker: SCHEDULED → LIVE at startDate, → COMPLETED at endDate. Returns flows changed."""
    now = clock.now()
    changed = 0
    for flow in await FlowRepository(session).due_for_schedule(now):
        if flow.ends_at is not None and flow.ends_at <= now:
            flow.status = "COMPLETED"
        elif flow.status == "SCHEDULED":
            flow.status = "LIVE"
        flow.modified_at = now
        changed += 1
    return changed


async def published(session: AsyncSession, flow: Flow) -> CompiledFlow:
    """The compiled published revision of a flow (cached per process)."""
    revision = flow.published_revision
    if revision is None:
        raise FlowNotFound("Not Found", developer_message="flow was never started")
    cached = CACHE.get(flow.ref, revision)
    if cached is not None:
        return cached
    row = await FlowRepository(session).revision(flow.ref, revision)
    document: Mapping[str, Any] = row.document if row is not None else flow.document
    compiled = compile_flow(flow.ref, revision, document)
    CACHE.put(compiled)
    return compiled


def in_window(flow: Flow | FlowHead, now: datetime) -> bool:
    if flow.starts_at is not None and now < flow.starts_at:
        return False
    return not (flow.ends_at is not None and now >= flow.ends_at)


@events.subscribe(events.GuestMerged)
async def keep_assignments_on_merge(session: AsyncSession, merged: events.GuestMerged) -> None:
    """§7.2: the merged guest keeps its variants where the survivor has none; exposures follow the guest."""
    repo = AssignmentRepository(session)
    for row in await repo.of_guest(merged.source):
        if await repo.get(row.flow_ref, merged.into) is None:
            session.add(
                FlowAssignment(
                    flow_ref=row.flow_ref,
                    guest_key=merged.into,
                    allocated=row.allocated,
                    variant_ref=row.variant_ref,
                    method=row.method,
                    bucket=row.bucket,
                    assigned_at=row.assigned_at,
                )
            )
        await repo.delete(row)
    await ExecutionRepository(session).move_guest(merged.source, merged.into)
    await session.flush()
