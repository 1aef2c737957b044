"""The personalize half of a triggered execution (§9.3 step 2): audience, variant, render, record.

The triggers domain decides *whether* to run (cancellation, cool-down, logic) and delivers what
this renders; this module runs the flow exactly like an interactive execution, with ``event`` and
``entity`` in the data model and the trigger session as ``session``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import Clock
from innkeeper.core.ids import new_ref
from innkeeper.guests.service import Guest
from innkeeper.personalize.conditions import Audience, ConditionContext, compile_rules
from innkeeper.personalize.experiences import service as flows
from innkeeper.personalize.experiences.compiled import CompiledFlow, sandbox
from innkeeper.personalize.experiences.context import guest_context, session_with_events
from innkeeper.personalize.experiences.execution import (
    EMPTY,
    assignment_for,
    evaluate,
    guest_key_of,
    template_model,
)
from innkeeper.personalize.experiences.models import Flow, FlowExecution
from innkeeper.personalize.experiences.repository import ExecutionRepository, FlowRepository
from innkeeper.personalize.templates.ftl import TemplateError

_logic_cache: dict[str, Audience] = {}


@dataclass(slots=True)
class TriggeredRun:
    """What a triggered execution produced."""

    outcome: str
    execution_ref: str
    variant_ref: str | None = None
    body: str | None = None
    destination: dict[str, Any] | None = None
    error: str | None = None


async def live_triggered_flows(session: AsyncSession) -> list[Flow]:
    return await FlowRepository(session).live_of_type("TRIGGERED_V3")


async def recent_exposure(session: AsyncSession, flow_ref: str, guest_ref: str, *, since: datetime) -> bool:
    """Did this guest get a variant or control of this flow since ``since`` (cool-down)?"""
    return await ExecutionRepository(session).exposed_since(flow_ref, guest_ref, since)


async def trigger_message(session: AsyncSession, trigger_type: str, message: dict[str, Any]) -> dict[str, Any]:
    """``event.message``: the closed session as the guest context shows sessions, else the stored message."""
    if trigger_type in ("SESSION_CLOSED", "ABANDONED_CART"):
        found = await session_with_events(session, str(message.get("ref")))
        if found is not None:
            return found
    return dict(message)


async def run(
    session: AsyncSession,
    flow: Flow,
    guest: Guest,
    *,
    trigger_type: str,
    event_message: dict[str, Any],
    occurred_at: datetime,
    logic: str | None,
    clock: Clock,
    number_format: str = "number",
) -> TriggeredRun:
    """Run a LIVE triggered flow for a guest; always records one ``flow_executions`` row."""
    started = time.perf_counter()
    compiled = await flows.published(session, flow)
    execution_ref = new_ref()
    result = await _decide(
        session, compiled, guest, trigger_type, event_message, occurred_at, logic, clock, number_format
    )
    result.execution_ref = execution_ref
    session.add(
        FlowExecution(
            ref=execution_ref,
            flow_ref=flow.ref,
            flow_revision=compiled.revision,
            variant_ref=result.variant_ref,
            outcome=result.outcome,
            guest_ref=guest.ref,
            browser_ref=None,
            session_ref=str(event_message.get("ref")) if trigger_type in ("SESSION_CLOSED", "ABANDONED_CART") else None,
            channel=str(event_message.get("channel") or "WEB"),
            point_of_sale=event_message.get("pointOfSale"),
            friendly_id_requested=flow.friendly_id,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            error=result.error,
            correlation_id=None,
            created_at=clock.now(),
        )
    )
    return result


async def _decide(
    session: AsyncSession,
    flow: CompiledFlow,
    guest: Guest,
    trigger_type: str,
    message: dict[str, Any],
    occurred_at: datetime,
    logic: str | None,
    clock: Clock,
    number_format: str,
) -> TriggeredRun:
    context = await guest_context(session, guest, needs=flow.needs)
    event = {"type": trigger_type, "createdAt": occurred_at, "message": message}
    request: dict[str, Any] = {
        "channel": message.get("channel") or "WEB",
        "pointOfSale": message.get("pointOfSale"),
        "params": {},
    }
    condition_context = ConditionContext(
        guest=context,
        request=request,
        now=clock.now(),
        session=message if trigger_type in ("SESSION_CLOSED", "ABANDONED_CART") else None,
        event=event,
        flow=flow.summary(),
    )
    try:
        if logic:
            compiled_logic = _logic_cache.get(logic)
            if compiled_logic is None:
                compiled_logic = compile_rules([{"id": "logic", "ruleData": {"expression": logic}}], sandbox=sandbox())
                _logic_cache[logic] = compiled_logic
            if not (await evaluate(compiled_logic, condition_context)).passed:
                return TriggeredRun("logic_false", "")
        audience = await evaluate(flow.audience, condition_context)
        if not audience.passed:
            return TriggeredRun("not_in_audience", "")
        variant, allocated = await assignment_for(session, flow, guest_key_of(guest.ref), transient=False, clock=clock)
        if not allocated or variant is None:
            return TriggeredRun("not_allocated", "")
        filter_value, filters = audience.filter, dict(audience.filters)
        if variant.rules is not None:
            rules = await evaluate(variant.rules, condition_context)
            if not rules.passed:
                return TriggeredRun("not_in_audience", "", variant_ref=variant.ref)
            filters.update(rules.filters)
            filter_value = rules.filter if rules.filter is not None else filter_value
        if variant.is_control:
            return TriggeredRun("control", "", variant_ref=variant.ref)
        model = template_model(condition_context, flow, variant, filter_value=filter_value, filters=filters)
        body = variant.template.render(model, now=clock.now(), number_format=number_format)
        destination = flow.destinations.get(variant.ref)
        return TriggeredRun("variant", "", variant_ref=variant.ref, body=body.strip() or EMPTY, destination=destination)
    except TemplateError as exc:
        return TriggeredRun("error", "", error=f"TEMPLATE_ERROR: {exc.message}"[:500])


async def executions(
    session: AsyncSession, flow_refs: list[str], *, start: datetime, end: datetime
) -> list[FlowExecution]:
    """Variant and control executions of triggered flows in a period (attribution, §7.6)."""
    return await ExecutionRepository(session).of_flows(flow_refs, ("variant", "control"), start=start, end=end)


async def triggered_flows(session: AsyncSession) -> list[Flow]:
    """Every triggered flow, live or not (reports cover completed flows too)."""
    return await FlowRepository(session).of_type("TRIGGERED_V3")


async def set_outcome(session: AsyncSession, execution_ref: str, outcome: str) -> None:
    """Correct the outcome of an execution recorded in this transaction (e.g. a suppressed recipient)."""
    await ExecutionRepository(session).set_outcome(execution_ref, outcome)
