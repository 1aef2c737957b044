"""The Details tab (friendly id with a copy button, how to call, variants, revision history), Start /
Pause / Complete, and Preview for guest."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import in_transaction
from innkeeper.http.pagination import base_url
from innkeeper.personalize.experiences import service as flows
from innkeeper.personalize.experiences.errors import FlowConflict, FlowInvalid, FlowNotFound
from innkeeper.personalize.experiences.execution import Options
from innkeeper.personalize.experiences.models import Flow
from innkeeper.personalize.experiences.preview import PreviewResult, preview, revision_history
from innkeeper.portal._web import Portal, need, page, redirect, router
from innkeeper.portal.flows._common import LISTS, TYPE_LABELS, kind_of, load, missing
from innkeeper.portal.flows._document import rules_of, task_of, text_field

# A status button: the status it sets and the notice of the redirect (a key of DONE).
ACTIONS = {"start": ("LIVE", "started"), "pause": ("PAUSED", "paused"), "complete": ("COMPLETED", "completed")}
ACTIONS_BY_STATUS = {
    "DRAFT": ("start", "complete"),
    "PAUSED": ("start", "complete"),
    "LIVE": ("pause", "complete"),
    "SCHEDULED": ("pause", "complete"),
    "COMPLETED": (),
}
DONE = {
    "created": "Created as a draft.",
    "saved": "Saved.",
    "started": "Started.",
    "paused": "Paused.",
    "completed": "Completed.",
}


@dataclass(frozen=True, slots=True)
class VariantView:
    ref: str
    name: str
    is_control: bool
    split: str
    template: str
    conditions: list[str]
    connection: str
    other_tasks: list[str]


def _variant_views(document: dict[str, Any]) -> list[VariantView]:
    variants = [variant for variant in document.get("variants") or [] if isinstance(variant, dict)]
    traffic = document.get("traffic") or {}
    splits = {str(item.get("ref")): item for item in traffic.get("splits") or [] if isinstance(item, dict)}
    views = []
    for variant in variants:
        ref = str(variant.get("ref") or "")
        split = splits.get(ref)
        if split is not None and "lowSplit" in split:
            share = f"buckets {split.get('lowSplit')}–{split.get('highSplit')}"
        elif split is not None:
            share = f"{split.get('split')} %"
        elif not splits and variants:
            share = f"{round(100 / len(variants))} % (even)"
        else:
            share = "0 %"
        render = task_of(variant, "templateRenderTask")
        views.append(
            VariantView(
                ref=ref,
                name=str(variant.get("name") or ref),
                is_control=bool(variant.get("isControl")),
                split=share,
                template=str((render.get("input") or {}).get("template", "")) if render is not None else "",
                conditions=[
                    str((rule.get("ruleData") or {}).get("expression", ""))
                    for rule in rules_of(variant)
                    if isinstance(rule, dict)
                ],
                connection=str((variant.get("destination") or {}).get("connectionRef") or ""),
                other_tasks=[
                    str(task.get("implementation"))
                    for task in variant.get("tasks") or []
                    if isinstance(task, dict)
                    and task.get("implementation") not in ("templateRenderTask", "conditionsTask")
                ],
            )
        )
    return views


def _call_body(portal: Portal, flow: Flow) -> dict[str, Any]:
    """A /v2/callFlows body for this flow: its first channel (WEB first) and point of sale."""
    channels = [str(channel) for channel in flow.document.get("channels") or ["WEB"]]
    pos_filter = flow.document.get("pointOfSaleFilter") or {}
    included = [str(value) for value in pos_filter.get("values") or []] if pos_filter.get("mode") == "INCLUDE" else []
    return {
        "clientKey": portal.runtime.client_key,
        "channel": "WEB" if "WEB" in channels else channels[0],
        "language": "EN",
        "currencyCode": "EUR",
        "pointOfSale": included[0] if included else portal.runtime.settings.point_of_sale or "",
        "browserId": "<browser id>",
        "friendlyId": flow.friendly_id,
    }


def _curl(request: Request, portal: Portal, body: dict[str, Any]) -> str:
    return (
        f"curl -X POST {shlex.quote(base_url(request, portal.runtime) + '/v2/callFlows')} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(json.dumps(body))}"
    )


def _sdk(body: dict[str, Any]) -> str:
    """The same call with the Engage SDK (``currency`` is its name for ``currencyCode``)."""
    options = {
        "channel": body["channel"],
        "currency": body["currencyCode"],
        "pointOfSale": body["pointOfSale"],
        "friendlyId": body["friendlyId"],
    }
    return f"const data = await engage.personalize({json.dumps(options)});"


async def _details(
    request: Request,
    portal: Portal,
    flow: Flow,
    *,
    status: int = 200,
    error: str | None = None,
    problems: list[str] | None = None,
    notice: str | None = None,
    result: PreviewResult | None = None,
    who: str = "",
    chosen_variant: str = "",
) -> Response:
    document = flow.document
    traffic = document.get("traffic") or {}
    goals = document.get("goals") or {}
    audience = document.get("audience")
    call = _call_body(portal, flow)
    async with portal.runtime.sessions() as session:
        history = await revision_history(session, flow)
    return page(
        request,
        "flow_preview.html" if result is not None else "flow.html",
        status,
        portal=portal,
        notice=notice,
        flow=flow,
        kind=kind_of(flow),
        list_url=LISTS.get(flow.subtype, "/portal/experiences"),
        type_label=TYPE_LABELS.get(flow.type, flow.type),
        friendly_id=flow.friendly_id,
        channels=[str(channel) for channel in document.get("channels") or []],
        pos_filter=document.get("pointOfSaleFilter") or {"mode": "ALL", "values": []},
        schedule=document.get("schedule") or {},
        allocation=traffic.get("allocation", 100) if traffic.get("type", "simpleTraffic") == "simpleTraffic" else None,
        traffic_json=json.dumps(traffic, indent=2) if traffic else "",
        variants=_variant_views(document),
        audience_json=json.dumps(audience, indent=2) if audience else "",
        primary_goal=goals.get("primary") if isinstance(goals.get("primary"), dict) else None,
        trigger_json=json.dumps(document.get("trigger"), indent=2) if document.get("trigger") else "",
        history=history,
        actions=ACTIONS_BY_STATUS.get(flow.status, ()),
        curl=_curl(request, portal, call),
        sdk=_sdk(call),
        error=error,
        problems=problems or [],
        result=result,
        who=who,
        chosen_variant=chosen_variant,
    )


@router.get("/flows/{ref}")
async def flow_details(
    request: Request,
    ref: str,
    portal: Annotated[Portal, Depends(need("experiences.read"))],
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return await _details(request, portal, await load(request, portal, ref), notice=DONE.get(done))


@router.post("/flows/{ref}/status")
async def flow_status(
    request: Request, ref: str, portal: Annotated[Portal, Depends(need("experiences.write"))]
) -> Response:
    flow = await load(request, portal, ref)
    action = text_field(await request.form(), "action", 20)
    if action not in ACTIONS:
        return await _details(request, portal, flow, status=400, error="Choose Start, Pause or Complete.")
    target, done = ACTIONS[action]
    actor = flows.Actor(ref=portal.user.ref)
    clock = portal.runtime.clock

    async def work(session: AsyncSession) -> Flow:
        current = await flows.get_flow(session, flow.ref)
        document = {**current.document, "status": target}
        return await flows.update_flow(session, flow.ref, document, actor=actor, clock=clock)

    try:
        await in_transaction(portal.runtime.sessions, work)
    except FlowInvalid as exc:
        error = f"{action.capitalize()} failed: the flow has problems to fix first."
        return await _details(request, portal, flow, status=400, error=error, problems=exc.problems)
    except FlowConflict as exc:
        return await _details(request, portal, flow, status=409, error=exc.developer_message or exc.message)
    except FlowNotFound:
        return missing(request, portal)
    return redirect(f"/portal/flows/{flow.ref}?done={done}")


@router.post("/flows/{ref}/preview")
async def flow_preview(
    request: Request, ref: str, portal: Annotated[Portal, Depends(need("experiences.write"))]
) -> Response:
    flow = await load(request, portal, ref)
    data = await request.form()
    who = text_field(data, "guest", 320).strip()
    chosen = text_field(data, "variant", 100).strip()
    if not who:
        return await _details(
            request, portal, flow, status=400, error="Enter a guest ref, a browser id or an email to preview."
        )
    settings = portal.runtime.settings
    options = Options(
        number_format=settings.ftl_number_format,
        context_sessions=settings.personalize_context_sessions,
        cached_sessions=settings.personalize_cached_sessions,
        default_pos=settings.point_of_sale,
    )
    async with portal.runtime.sessions() as session:
        try:
            result = await preview(
                session,
                flow.ref,
                who,
                variant_ref=chosen or None,
                client_key=portal.runtime.client_key,
                clock=portal.runtime.clock,
                options=options,
            )
        except FlowNotFound:
            return missing(request, portal)
    return await _details(request, portal, flow, result=result, who=who, chosen_variant=chosen)
