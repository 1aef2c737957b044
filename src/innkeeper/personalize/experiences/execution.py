"""Flow execution (spec personalize.md §2.4–2.9): resolve, select, target, assign, render, record."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import Clock
from innkeeper.core.ids import new_ref
from innkeeper.guests import service as guests
from innkeeper.guests.service import Guest, GuestProfile
from innkeeper.personalize.conditions import Audience, AudienceResult, ConditionContext
from innkeeper.personalize.experiences import service as flows
from innkeeper.personalize.experiences.calls import CallRequest
from innkeeper.personalize.experiences.compiled import CACHE, CompiledFlow, CompiledVariant
from innkeeper.personalize.experiences.context import CACHED_SESSIONS, guest_context, session_of_row, transient_guest
from innkeeper.personalize.experiences.models import Flow, FlowAssignment
from innkeeper.personalize.experiences.repository import AssignmentRepository, ExecutionRepository, FlowRepository
from innkeeper.personalize.experiments.assignment import assign, transient_key
from innkeeper.personalize.templates.ftl import FtlFunction, TemplateError
from innkeeper.sessions import service as sessions
from innkeeper.tenant import service as tenant

log = logging.getLogger(__name__)

EXECUTABLE = ("INTERACTIVE_API_FLOW", "INTERACTIVE_WEB_FLOW")
EMPTY = "{}"
UNREAD: Any = object()  # "the stored assignment was not read yet" (None means: read, there is none)


@dataclass(slots=True)
class CallResult:
    """What the HTTP layer needs to answer: outcome header, body text, variant and error code."""

    outcome: str
    body: str = EMPTY
    variant_ref: str | None = None
    error: str | None = None
    flow_ref: str | None = None


@dataclass(slots=True)
class _Guest:
    row: Guest | GuestProfile | None
    browser_ref: str | None
    key: str | None

    @property
    def transient(self) -> bool:
        return self.row is None


@dataclass(frozen=True, slots=True)
class Options:
    number_format: str = "number"
    context_sessions: int = 50
    cached_sessions: int = CACHED_SESSIONS
    default_pos: str | None = None
    # Whole interactive execution (§11.2); beyond it the call fails open.
    budget_seconds: float = 1.5


@dataclass(slots=True)
class Prepared:
    """A call after its reads (:func:`prepare`): the guest, the flow to run, and what its conditions and
    template read, or the outcome when there is nothing to run."""

    call: CallRequest
    started: float
    pos_name: str | None
    guest: _Guest
    flow_ref: str | None
    compiled: CompiledFlow | None
    result: CallResult | None
    stored: Any
    # When the run (context, conditions, assignment, template) started, and its event-loop deadline.
    run_started: float = 0.0
    deadline: float = 0.0
    context: ConditionContext | None = None
    timed_out: bool = False

    @property
    def runs_js(self) -> bool:
        """Whether the run still ahead may evaluate custom JavaScript (in a worker thread, for milliseconds)."""
        return self.compiled is not None and self.result is None and not self.timed_out and self.compiled.runs_js


async def prepare(session: AsyncSession, call: CallRequest, *, clock: Clock, options: Options) -> Prepared:
    """The reads of a call: resolve the guest, select the flow, load the guest context the flow reads.

    Nothing is written: the caller may end the transaction before :func:`finish` (callFlows does when the
    run evaluates JavaScript, so that no connection is held while it runs).
    """
    started = time.perf_counter()
    pos_name = call.point_of_sale or options.default_pos
    guest = await _resolve_guest(session, call)
    flow_ref, compiled, result, stored = await _select(session, call, pos_name, guest, clock=clock)
    prepared = Prepared(call, started, pos_name, guest, flow_ref, compiled, result, stored)
    if compiled is None:
        return prepared
    prepared.run_started = time.perf_counter()
    prepared.deadline = asyncio.get_running_loop().time() + options.budget_seconds
    try:
        async with asyncio.timeout_at(prepared.deadline):
            await _load(session, prepared, clock=clock, options=options)
    except TimeoutError:
        prepared.timed_out = True
    return prepared


async def finish(session: AsyncSession, prepared: Prepared, *, clock: Clock, options: Options) -> CallResult:
    """Run the prepared flow (conditions, sticky assignment, template) and record the call (the new
    assignment, the exposure and the execution row) in ``session``'s transaction; the answer is sent after
    commit. When the reads were committed first, a new assignment that another call stored meanwhile fails
    its insert (primary key) as it does in one transaction: the call runs again from :func:`prepare` and
    uses the stored one."""
    call, compiled, result = prepared.call, prepared.compiled, prepared.result
    assignment: dict[str, Any] | None = None
    if compiled is not None and not prepared.timed_out:
        try:
            if result is None:
                async with asyncio.timeout_at(prepared.deadline):
                    result, assignment = await _run(session, prepared, clock=clock, options=options)
            # A run that never yields to the event loop (the in-loop SQLite driver answers without
            # suspending) cannot be interrupted by the timeout: it is judged when it returns.
            if time.perf_counter() - prepared.run_started > options.budget_seconds:
                raise TimeoutError
        except TimeoutError:
            prepared.timed_out = True
    if compiled is not None and prepared.timed_out:
        # Fail open (§11.2): drop whatever the run wrote, answer {} and keep the execution row.
        guest_ref = prepared.guest.row.ref if prepared.guest.row else None  # read before the rollback expires it
        await session.rollback()
        result = CallResult("error", error="TIME_BUDGET", flow_ref=prepared.flow_ref)
        await ExecutionRepository(session).insert(
            _execution_row(
                call,
                result,
                prepared.flow_ref,
                compiled.revision,
                guest_ref,
                prepared.guest.browser_ref,
                prepared.pos_name,
                prepared.started,
                clock,
            )
        )
        return result
    assert result is not None
    await _record(
        session,
        call,
        result,
        prepared.flow_ref,
        compiled,
        prepared.guest,
        prepared.pos_name,
        assignment=assignment,
        started=prepared.started,
        clock=clock,
    )
    return result


def _execution_row(
    call: CallRequest,
    result: CallResult,
    flow_ref: str | None,
    revision: int | None,
    guest_ref: str | None,
    browser_ref: str | None,
    pos_name: str | None,
    started: float,
    clock: Clock,
    session_ref: str | None = None,
) -> dict[str, Any]:
    """The ``flow_executions`` row of a call (column → value)."""
    return {
        "ref": new_ref(),
        "flow_ref": flow_ref,
        "flow_revision": revision,
        "variant_ref": result.variant_ref,
        "outcome": result.outcome,
        "guest_ref": guest_ref,
        "browser_ref": browser_ref,
        "session_ref": session_ref,
        "channel": call.channel,
        "point_of_sale": pos_name,
        "friendly_id_requested": call.friendly_id,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        "error": result.error,
        "correlation_id": call.correlation_id[:100] if call.correlation_id else None,
        "created_at": clock.now(),
    }


async def _resolve_guest(session: AsyncSession, call: CallRequest) -> _Guest:
    row: Guest | GuestProfile | None = None
    browser_ref: str | None = None
    if call.browser_id is not None:
        found = await guests.live_profile_of_browser(session, call.browser_id)
        if found is not None:
            row, browser_ref = found
    elif call.email is not None:
        row = await guests.find_live_guest(session, email=call.email)
    elif call.identifier is not None:
        row = await guests.find_live_guest(session, identifier=call.identifier)
    elif call.guest_ref is not None:
        row = await guests.find_live_guest(session, ref=call.guest_ref)
    if row is not None:
        return _Guest(row, browser_ref, row.ref)
    if call.email is not None:
        return _Guest(None, None, transient_key(email=call.email))
    if call.identifier is not None:
        return _Guest(None, None, transient_key(provider=call.identifier[0], id=call.identifier[1]))
    return _Guest(None, None, None)


async def browser_guest(session: AsyncSession, browser_id: str) -> tuple[Guest, str] | None:
    """The live guest of a browser id, and the browser's ref; None when either is unknown or deleted."""
    return await guests.live_guest_of_browser(session, browser_id)


async def _select(
    session: AsyncSession, call: CallRequest, pos_name: str | None, guest: _Guest, *, clock: Clock
) -> tuple[str | None, CompiledFlow | None, CallResult | None, Any]:
    """(flow ref, compiled published revision to run, None, stored assignment) or (flow ref or None, None, the
    outcome without a run, …). The stored assignment is the known guest's ``(allocated, variant_ref)`` or None,
    read with the flow; ``UNREAD`` when it was not (see ``decide_assignment``).

    By ref or friendly id, one Core select of the flow's head row decides; eligibility (channels, point of sale
    filter) then comes from the compiled published revision, which for a LIVE flow is the flow's current
    document (a LIVE flow cannot be edited: ``revision == published_revision``). When that revision is not
    compiled in this process yet, or the revisions differ, the full row and its document decide, as always.
    """
    now = clock.now()
    repo = FlowRepository(session)
    if call.flow_ref is None and call.friendly_id is not None and call.friendly_id.endswith("*"):
        flow, result = await _select_wildcard(repo, call, pos_name, now)
        return (*await _selected(session, flow, result), UNREAD)
    key = guest.key if not guest.transient else None
    if call.flow_ref is not None:
        head = await repo.head(ref=call.flow_ref, guest_key=key)
    else:
        head = await repo.head(friendly_id=call.friendly_id or "", guest_key=key)
    if head is None or head.type not in EXECUTABLE:
        return None, None, CallResult("not_found"), UNREAD
    stored = head.decision if key is not None else UNREAD
    if head.status != "LIVE" or head.archived or head.published_revision is None or not flows.in_window(head, now):
        return head.ref, None, CallResult("not_live", flow_ref=head.ref), stored
    compiled = CACHE.get(head.ref, head.published_revision) if head.published_revision == head.revision else None
    if compiled is None:
        flow = await repo.get(head.ref)
        if flow is None or flow.type not in EXECUTABLE:
            return None, None, CallResult("not_found"), UNREAD
        return (*await _selected(session, flow, _problem(flow, call, pos_name, now)), stored)
    if call.channel not in compiled.channels or (
        compiled.pos_mode == "INCLUDE" and (pos_name is None or pos_name not in compiled.pos_values)
    ):
        return head.ref, None, CallResult("not_eligible", flow_ref=head.ref), stored
    return head.ref, compiled, None, stored


async def _select_wildcard(
    repo: FlowRepository, call: CallRequest, pos_name: str | None, now: datetime
) -> tuple[Flow | None, CallResult | None]:
    """A wildcard friendly id (``prefix*``): the first eligible live flow, else why the first one is not."""
    candidates = await repo.live_with_prefix((call.friendly_id or "")[:-1])
    candidates = [flow for flow in candidates if flow.type in EXECUTABLE]
    eligible = [flow for flow in candidates if _eligibility(flow, call, pos_name, now) is None]
    if eligible:
        return eligible[0], None
    if not candidates:
        return None, CallResult("not_found")
    return candidates[0], _problem(candidates[0], call, pos_name, now)


def _problem(flow: Flow, call: CallRequest, pos_name: str | None, now: datetime) -> CallResult | None:
    problem = _eligibility(flow, call, pos_name, now)
    return CallResult(problem, flow_ref=flow.ref) if problem is not None else None


async def _selected(
    session: AsyncSession, flow: Flow | None, result: CallResult | None
) -> tuple[str | None, CompiledFlow | None, CallResult | None]:
    if flow is None:
        return None, None, result
    if result is not None:
        return flow.ref, None, result
    return flow.ref, await flows.published(session, flow), None


def _eligibility(flow: Flow, call: CallRequest, pos_name: str | None, now: datetime) -> str | None:
    if flow.status != "LIVE" or flow.archived or flow.published_revision is None or not flows.in_window(flow, now):
        return "not_live"
    document = flow.document
    channels = {str(channel).upper() for channel in document.get("channels") or ["WEB"]}
    if call.channel not in channels:
        return "not_eligible"
    pos_filter = document.get("pointOfSaleFilter") or {}
    if pos_filter.get("mode") == "INCLUDE" and (pos_name is None or pos_name not in (pos_filter.get("values") or [])):
        return "not_eligible"
    return None


async def _load(session: AsyncSession, prepared: Prepared, *, clock: Clock, options: Options) -> None:
    """The condition context of a run (the guest context the flow reads, the browser's open session)."""
    assert prepared.compiled is not None
    flow, guest = prepared.compiled, prepared.guest
    try:
        if guest.row is not None:
            context = await guest_context(
                session,
                guest.row,
                needs=flow.needs,
                max_sessions=options.context_sessions,
                cached_sessions=options.cached_sessions,
            )
        else:
            context = transient_guest()
        current = await current_session(session, guest.browser_ref, context)
        request = prepared.call.as_model(prepared.pos_name)
        prepared.context = ConditionContext(
            guest=context, request=request, now=clock.now(), session=current, flow=flow.summary()
        )
    except Exception:
        log.exception("flow %s failed", flow.friendly_id)
        prepared.result = CallResult("error", error="INTERNAL_ERROR", flow_ref=flow.ref)


async def _run(
    session: AsyncSession, prepared: Prepared, *, clock: Clock, options: Options
) -> tuple[CallResult, dict[str, Any] | None]:
    """The outcome, and the new sticky assignment row to store with the execution (None when there is none)."""
    flow, guest, condition_context = prepared.compiled, prepared.guest, prepared.context
    assert flow is not None and condition_context is not None
    assignment: dict[str, Any] | None = None
    try:
        audience = await evaluate(flow.audience, condition_context)
        if not audience.passed:
            return CallResult("not_in_audience", flow_ref=flow.ref), None
        variant, allocated, assignment = await decide_assignment(
            session, flow, guest.key or new_ref(), transient=guest.transient, clock=clock, stored=prepared.stored
        )
        if not allocated or variant is None:
            return CallResult("not_allocated", flow_ref=flow.ref), assignment
        filter_value, filters = audience.filter, dict(audience.filters)
        if variant.rules is not None:
            rules = await evaluate(variant.rules, condition_context)
            if not rules.passed:
                return CallResult("not_in_audience", variant_ref=variant.ref, flow_ref=flow.ref), assignment
            filters.update(rules.filters)
            filter_value = rules.filter if rules.filter is not None else filter_value
        model = template_model(condition_context, flow, variant, filter_value=filter_value, filters=filters)
        body = variant.template.render(model, now=clock.now(), number_format=options.number_format)
        if not body.strip():
            body = EMPTY
        outcome = "control" if variant.is_control else "variant"
        return CallResult(outcome, body, variant_ref=variant.ref, flow_ref=flow.ref), assignment
    except TemplateError as exc:
        log.info("flow %s failed to render: %s", flow.friendly_id, type(exc).__name__)
        return CallResult("error", error="TEMPLATE_ERROR", flow_ref=flow.ref), assignment
    except Exception:
        log.exception("flow %s failed", flow.friendly_id)
        return CallResult("error", error="INTERNAL_ERROR", flow_ref=flow.ref), assignment


async def current_session(
    session: AsyncSession, browser_ref: str | None, context: dict[str, Any]
) -> dict[str, Any] | None:
    """The browser's open session (from the guest ``context`` when it is there), or None."""
    if browser_ref is None:
        return None
    row = await sessions.context_latest_open(session, browser_ref)
    if row is None:
        return None
    for item in context.get("sessions") or []:
        if item.get("ref") == row[0]:
            return dict(item)
    return session_of_row(row, [])


async def evaluate(audience: Audience, context: ConditionContext) -> AudienceResult:
    """Evaluate conditions; JavaScript runs in a worker thread so the event loop keeps serving."""
    if audience.uses_js:
        return await anyio.to_thread.run_sync(audience.evaluate, context)
    return audience.evaluate(context)


def guest_key_of(guest_ref: str) -> str:
    """The assignment key of a known guest (its ref)."""
    return guest_ref


async def assignment_for(
    session: AsyncSession, flow: CompiledFlow, key: str, *, transient: bool, clock: Clock
) -> tuple[CompiledVariant | None, bool]:
    """The guest's sticky variant (§7.2): the stored first decision, else a new one stored now."""
    variant, allocated, row = await decide_assignment(session, flow, key, transient=transient, clock=clock)
    if row is not None:
        session.add(FlowAssignment(**row))
    return variant, allocated


async def decide_assignment(
    session: AsyncSession, flow: CompiledFlow, key: str, *, transient: bool, clock: Clock, stored: Any = UNREAD
) -> tuple[CompiledVariant | None, bool, dict[str, Any] | None]:
    """The guest's sticky variant (§7.2), and the row of a new decision the caller must store (None when the
    stored decision stands or the guest is transient). A stored decision for a variant the flow no longer has
    is deleted here. ``stored`` is the stored ``(allocated, variant_ref)`` (or None) when the caller read it
    in this transaction already (callFlows reads it with the flow), else it is read here."""
    if not flow.variants:
        return None, False, None
    repo = AssignmentRepository(session)
    if not transient:
        existing = await repo.decision(flow.ref, key) if stored is UNREAD else stored
        if existing is not None:
            allocated, variant_ref = existing
            if not allocated or variant_ref in flow.variants:
                return (flow.variants[variant_ref] if variant_ref else None), allocated, None
            await repo.remove(flow.ref, key)
    decision = assign(flow.traffic, flow_ref=flow.ref, guest_key=key, variant_refs=list(flow.variant_refs))
    row: dict[str, Any] | None = None
    if not transient:
        row = {
            "flow_ref": flow.ref,
            "guest_key": key,
            "allocated": decision.allocated,
            "variant_ref": decision.variant_ref,
            "method": decision.method,
            "bucket": decision.bucket,
            "assigned_at": clock.now(),
        }
    variant = flow.variants.get(decision.variant_ref) if decision.variant_ref else None
    return variant, decision.allocated, row


async def _record(
    session: AsyncSession,
    call: CallRequest,
    result: CallResult,
    flow_ref: str | None,
    compiled: CompiledFlow | None,
    guest: _Guest,
    pos_name: str | None,
    *,
    assignment: dict[str, Any] | None,
    started: float,
    clock: Clock,
) -> None:
    """Store the new sticky assignment, the exposure (TRACKING event or flow session) and the execution row."""
    if assignment is not None:
        await AssignmentRepository(session).insert(assignment)
    session_ref: str | None = None
    exposure = result.outcome in ("variant", "control") and guest.row is not None
    if exposure and guest.row is not None:
        if guest.browser_ref is not None:
            session_ref = await _track_exposure(session, call, result, guest, pos_name, clock=clock)
        else:
            row = await sessions.record_flow_session(
                session, guest_ref=guest.row.ref, channel=call.channel, pos=pos_name or "", clock=clock
            )
            session_ref = row.ref
    await ExecutionRepository(session).insert(
        _execution_row(
            call,
            result,
            flow_ref,
            compiled.revision if compiled is not None else None,
            guest.row.ref if guest.row is not None else None,
            guest.browser_ref,
            pos_name,
            started,
            clock,
            session_ref=session_ref,
        )
    )


async def _track_exposure(
    session: AsyncSession,
    call: CallRequest,
    result: CallResult,
    guest: _Guest,
    pos_name: str | None,
    *,
    clock: Clock,
) -> str | None:
    """The exposure as a TRACKING event in the browser's session (opened if none is open; §2.9)."""
    assert guest.row is not None and guest.browser_ref is not None
    if pos_name is None:
        return None
    pos = await tenant.pos_settings(session, pos_name)  # a plain row, read once per transaction
    if pos is None:
        return None
    info = sessions.PosInfo(pos.name, pos.timeout_minutes, pos.language, pos.currency_code)
    # Nearly always the browser's session is open and the guest's: its ref is all the event needs.
    session_ref = await sessions.joinable_open_session(
        session, browser_ref=guest.browser_ref, guest_ref=guest.row.ref, channel=call.channel, pos=info, clock=clock
    )
    if session_ref is None:
        row, _ = await sessions.session_for_event(
            session,
            browser_ref=guest.browser_ref,
            guest_ref=guest.row.ref,
            channel=call.channel,
            pos=info,
            user_agent=call.headers.get("user-agent"),
            clock=clock,
        )
        session_ref = row.ref
    now = clock.now()
    message = {
        "type": "TRACKING",
        "channel": call.channel,
        "pos": pos.name,
        "browser_id": guest.browser_ref,
        "flowRef": result.flow_ref,
        "variantRef": result.variant_ref,
        "friendlyId": call.friendly_id,
        "outcome": result.outcome,
    }
    await sessions.record_exposure_event(
        session,
        {
            "ref": new_ref(),
            "type": "TRACKING",
            "browser_ref": guest.browser_ref,
            "guest_ref": guest.row.ref,
            "session_ref": session_ref,
            "channel": call.channel,
            "point_of_sale": pos.name,
            "language": call.language,
            "currency": call.currency_code,
            "page": None,
            "client_key": call.client_key or "",
            "created_at": now,
            "modified_at": now,
            "processing_status": "SUCCESS",
            "failure_reason": None,
            "warnings": [],
            "transport": "callFlows",
            "user_agent": None,
            "client_requested_at": None,
            "raw": msgspec.json.encode(message).decode(),
        },
    )
    return session_ref


def template_model(
    context: ConditionContext,
    flow: CompiledFlow,
    variant: CompiledVariant,
    *,
    filter_value: Any,
    filters: dict[str, Any],
) -> dict[str, Any]:
    """The data model a variant's template renders against (spec personalize.md §5.3)."""
    model: dict[str, Any] = {
        "guest": context.guest,
        "request": context.request,
        "context": context.request,
        "session": context.session,
        "flow": flow.summary(),
        "variant": {"ref": variant.ref, "name": variant.name, "isControl": variant.is_control},
        "filter": filter_value,
        "filters": filters,
        "getDecisionModelResultNode": FtlFunction(lambda name: None),
    }
    if context.event is not None:
        model["event"] = context.event
        model["entity"] = context.event["message"]
    return model
