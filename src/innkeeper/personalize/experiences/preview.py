"""Preview a flow for a chosen guest: what a variant renders for them, with nothing recorded.

The portal's *Preview for guest* (spec personalize.md §1.2 "any status … executes the draft/paused
revision, no analytics"; §5.6 errors "shown in Preview API with line/column"). It compiles the flow's
latest authored revision (not the published one, so a draft can be checked before Start), builds the
same guest context and data model as an execution, and renders one variant. It never writes: no
``TRACKING`` event, no ``flow_executions`` row, no sticky assignment (the variant the guest would get
is computed with the pure assignment function, or read from an existing assignment), and the
session is rolled back before returning.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import Clock
from innkeeper.core.ids import is_ref
from innkeeper.guests import service as guests
from innkeeper.guests.service import Guest
from innkeeper.personalize.conditions import ConditionContext
from innkeeper.personalize.experiences import service as flows
from innkeeper.personalize.experiences.calls import CallRequest
from innkeeper.personalize.experiences.compiled import CompiledFlow, CompiledVariant, compile_flow
from innkeeper.personalize.experiences.context import guest_context, session_with_events
from innkeeper.personalize.experiences.definitions import trigger_of
from innkeeper.personalize.experiences.execution import (
    EMPTY,
    Options,
    browser_guest,
    current_session,
    evaluate,
    template_model,
)
from innkeeper.personalize.experiences.models import Flow
from innkeeper.personalize.experiences.repository import AssignmentRepository, FlowRepository
from innkeeper.personalize.experiments.assignment import TrafficError, assign
from innkeeper.personalize.templates.ftl import TemplateError
from innkeeper.sessions import service as sessions

__all__ = ["Outcome", "PreviewResult", "Revision", "preview", "revision_history"]

MAX_LOOKUP = 320
_SESSION_TRIGGERS = ("SESSION_CLOSED", "ABANDONED_CART")


Outcome = Literal["rendered", "template_error", "no_guest", "invalid", "no_variant", "not_allocated"]


@dataclass(frozen=True, slots=True)
class PreviewResult:
    """What a preview showed.

    ``outcome``: ``rendered`` (``body`` holds the output), ``template_error`` (``error`` has the line and
    column), ``no_guest``, ``invalid`` (the flow does not compile: ``problems``), ``no_variant`` (unknown
    variant or a flow without variants) or ``not_allocated`` (the guest is in the hold-out).
    """

    outcome: Outcome
    guest_ref: str | None = None
    guest_name: str | None = None
    browser_ref: str | None = None
    variant_ref: str | None = None
    variant_name: str | None = None
    is_control: bool = False
    chosen_by: str | None = None
    audience_passed: bool | None = None
    rules_passed: bool | None = None
    body: str | None = None
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Revision:
    """One stored revision of a flow, for the portal's revision history."""

    revision: int
    created_at: datetime
    published_at: datetime | None
    modified_by: str | None
    name: str


@dataclass(frozen=True, slots=True)
class _Who:
    guest: Guest
    browser_ref: str | None
    email: str | None


async def preview(
    session: AsyncSession,
    flow_ref: str,
    who: str,
    *,
    variant_ref: str | None,
    client_key: str,
    clock: Clock,
    options: Options,
) -> PreviewResult:
    """Render ``flow_ref`` for the guest named by ``who`` (guest ref, browser id, ``bid:<id>`` or email).

    ``variant_ref`` forces a variant; None shows the one the guest would get. Raises FlowNotFound. The
    session is rolled back whatever happens, so a preview can never leave a write behind.
    """
    try:
        flow = await flows.get_flow(session, flow_ref)
        try:
            compiled = compile_flow(flow.ref, flow.revision, flow.document)
        except ValueError as exc:
            return PreviewResult("invalid", problems=[str(problem) for problem in exc.args[0]])
        found = await _find_guest(session, who)
        if found is None:
            return PreviewResult("no_guest")
        guest = found.guest
        name = " ".join(part for part in (guest.first_name, guest.last_name) if part) or None
        shown = PreviewResult("no_variant", guest_ref=guest.ref, guest_name=name, browser_ref=found.browser_ref)
        variant, chosen_by = await _variant(session, compiled, guest.ref, variant_ref)
        if variant is None:
            return replace(shown, outcome="no_variant" if chosen_by is None else "not_allocated", chosen_by=chosen_by)
        shown = replace(
            shown,
            variant_ref=variant.ref,
            variant_name=variant.name,
            is_control=variant.is_control,
            chosen_by=chosen_by,
        )
        context = await guest_context(
            session,
            guest,
            needs=compiled.needs,
            max_sessions=options.context_sessions,
            cached_sessions=options.cached_sessions,
        )
        request = _request_model(compiled, found, client_key=client_key, pos_name=options.default_pos)
        event = await _trigger_event(session, flow, guest, clock.now())
        current = await current_session(session, found.browser_ref, context)
        condition_context = ConditionContext(
            guest=context,
            request=request,
            now=clock.now(),
            session=event["message"] if event is not None and event["type"] in _SESSION_TRIGGERS else current,
            event=event,
            flow=compiled.summary(),
        )
        return await _render(shown, compiled, variant, condition_context, clock=clock, options=options)
    finally:
        await session.rollback()


async def revision_history(session: AsyncSession, flow: Flow) -> list[Revision]:
    """The flow's stored revisions, newest first."""
    found = []
    for row in await FlowRepository(session).revisions(flow.ref):
        modified_by = row.document.get("modifiedByRef")
        found.append(
            Revision(
                revision=row.revision,
                created_at=row.created_at,
                published_at=row.published_at,
                modified_by=str(modified_by) if modified_by else None,
                name=str(row.document.get("name") or ""),
            )
        )
    return found


def _request_model(flow: CompiledFlow, who: _Who, *, client_key: str, pos_name: str | None) -> dict[str, Any]:
    """The ``request`` a call by this guest's browser id (else email, else guest ref) would carry."""
    return CallRequest(
        client_key=client_key,
        friendly_id=flow.friendly_id,
        flow_ref=None,
        channel="WEB" if "WEB" in flow.channels else sorted(flow.channels)[0],
        language=who.guest.language,
        currency_code=None,
        point_of_sale=pos_name,
        browser_id=who.browser_ref,
        email=who.email,
        identifier=None,
        guest_ref=who.guest.ref if who.browser_ref is None and who.email is None else None,
        params={},
        variants=[],
    ).as_model(pos_name)


async def _render(
    shown: PreviewResult,
    flow: CompiledFlow,
    variant: CompiledVariant,
    condition_context: ConditionContext,
    *,
    clock: Clock,
    options: Options,
) -> PreviewResult:
    """Evaluate the audience and the variant's conditions (reported, not enforced), then render."""
    audience = await evaluate(flow.audience, condition_context)
    logs = [*audience.logs, *audience.errors]
    filter_value, filters = audience.filter, dict(audience.filters)
    rules_passed: bool | None = None
    if variant.rules is not None:
        rules = await evaluate(variant.rules, condition_context)
        rules_passed = rules.passed
        logs.extend([*rules.logs, *rules.errors])
        filters.update(rules.filters)
        filter_value = rules.filter if rules.filter is not None else filter_value
    shown = replace(shown, audience_passed=audience.passed, rules_passed=rules_passed, logs=logs)
    model = template_model(condition_context, flow, variant, filter_value=filter_value, filters=filters)
    try:
        body = variant.template.render(model, now=clock.now(), number_format=options.number_format)
    except TemplateError as exc:
        return replace(shown, outcome="template_error", error=str(exc))
    return replace(shown, outcome="rendered", body=body if body.strip() else EMPTY)


async def _find_guest(session: AsyncSession, who: str) -> _Who | None:
    text = who.strip()[:MAX_LOOKUP]
    if not text:
        return None
    if text.lower().startswith("bid:"):
        return await _by_browser(session, text[4:].strip())
    if "@" in text:
        guest = await guests.find_live_guest(session, email=text)
        return _Who(guest, None, text) if guest is not None else None
    if not is_ref(text):
        return None
    guest = await guests.find_live_guest(session, ref=text.lower())
    if guest is not None:
        return _Who(guest, None, None)
    return await _by_browser(session, text)


async def _by_browser(session: AsyncSession, browser_id: str) -> _Who | None:
    found = await browser_guest(session, browser_id)
    return _Who(found[0], found[1], None) if found is not None else None


async def _variant(
    session: AsyncSession, flow: CompiledFlow, guest_ref: str, forced: str | None
) -> tuple[CompiledVariant | None, str | None]:
    """The variant to show and why; (None, None) when there is none, (None, reason) for the hold-out."""
    if forced:
        found = flow.variants.get(forced)
        return (found, "chosen in the form") if found is not None else (None, None)
    if not flow.variants:
        return None, None
    existing = await AssignmentRepository(session).get(flow.ref, guest_ref)
    if existing is not None and (not existing.allocated or existing.variant_ref in flow.variants):
        if not existing.allocated or existing.variant_ref is None:
            return None, "the guest's stored assignment (outside the traffic allocation)"
        return flow.variants[existing.variant_ref], "the guest's stored assignment"
    try:
        decision = assign(flow.traffic, flow_ref=flow.ref, guest_key=guest_ref, variant_refs=list(flow.variant_refs))
    except TrafficError:
        return None, None
    if not decision.allocated or decision.variant_ref is None:
        return None, "the traffic allocation (not stored)"
    return flow.variants[decision.variant_ref], "the traffic split (not stored)"


async def _trigger_event(session: AsyncSession, flow: Flow, guest: Guest, now: datetime) -> dict[str, Any] | None:
    """Triggered flows: a stand-in trigger ``event`` whose message is the guest's most recent session."""
    if flow.type != "TRIGGERED_V3":
        return None
    trigger = trigger_of(flow.document)
    recent = await sessions.recent_for_guest(session, guest.ref, limit=1)
    message: dict[str, Any] = {}
    if recent:
        message = await session_with_events(session, recent[0].ref) or {}
    return {"type": trigger.type if trigger is not None else "PREVIEW", "createdAt": now, "message": message}
