"""Create and edit: ``/portal/flows/new?kind=…`` and ``/portal/flows/{ref}/edit``.

A save that would not compile is refused with 400 and the input kept, so template errors show their
line and column while the author is still on the form; a LIVE flow is refused by the service (409).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import in_transaction
from innkeeper.personalize.conditions import BUILTINS
from innkeeper.personalize.experiences import service as flows
from innkeeper.personalize.experiences.definitions import CHANNELS, GOAL_TYPES, TRIGGER_TYPES
from innkeeper.personalize.experiences.errors import FlowConflict, FlowInvalid, FlowNotFound
from innkeeper.personalize.experiences.models import Flow
from innkeeper.portal._web import Portal, need, page, redirect, router
from innkeeper.portal.flows._common import EDITABLE_TYPES, KINDS, TYPE_LABELS, kind_of, load, missing
from innkeeper.portal.flows._document import (
    FOLLOW_ON,
    FlowForm,
    attach,
    blank_form,
    build_document,
    compile_problems,
    form_of,
    posted_form,
    text_field,
    with_blank_slot,
)


def _form_page(
    request: Request,
    portal: Portal,
    form: FlowForm,
    *,
    flow: Flow | None,
    status: int = 200,
    problems: list[str] | None = None,
    message: str | None = None,
) -> Response:
    return page(
        request,
        "flow_form.html",
        status,
        portal=portal,
        form=form,
        flow=flow,
        problems=problems or [],
        message=message,
        channels=CHANNELS,
        goal_types=GOAL_TYPES,
        trigger_types=TRIGGER_TYPES,
        type_labels=TYPE_LABELS,
        editable_types=EDITABLE_TYPES,
        builtins=sorted(BUILTINS),
        action=f"/portal/flows/{flow.ref}/edit" if flow is not None else "/portal/flows/new",
    )


@router.get("/flows/new")
async def new_flow(
    request: Request,
    portal: Annotated[Portal, Depends(need("experiences.write"))],
    kind: Annotated[str, Query(max_length=20)] = "experience",
) -> Response:
    return _form_page(request, portal, blank_form(kind if kind in KINDS else "experience"), flow=None)


@router.post("/flows/new")
async def create_flow(request: Request, portal: Annotated[Portal, Depends(need("experiences.write"))]) -> Response:
    data = await request.form()
    kind = text_field(data, "kind", 20)
    form = posted_form(data, kind if kind in KINDS else "experience", None)
    return await _save(request, portal, form, None)


@router.get("/flows/{ref}/edit")
async def edit_flow(
    request: Request, ref: str, portal: Annotated[Portal, Depends(need("experiences.write"))]
) -> Response:
    flow = await load(request, portal, ref)
    message = None
    if flow.status not in ("DRAFT", "PAUSED"):
        message = f"This flow is {flow.status}: pause it before saving changes."
    return _form_page(request, portal, form_of(flow), flow=flow, message=message)


@router.post("/flows/{ref}/edit")
async def update_flow(
    request: Request, ref: str, portal: Annotated[Portal, Depends(need("experiences.write"))]
) -> Response:
    flow = await load(request, portal, ref)
    form = posted_form(await request.form(), kind_of(flow), flow)
    return await _save(request, portal, form, flow)


async def _save(request: Request, portal: Portal, form: FlowForm, flow: Flow | None) -> Response:
    document, problems, origin = build_document(form, flow)
    if not problems:
        checked = document if document.get("friendlyId") else {**document, "friendlyId": "preview"}
        problems = compile_problems(checked, flow.ref if flow else "new", flow.revision + 1 if flow else 1)
    if problems:
        general = attach(form, problems, origin)
        if any(entry.errors for entry in form.variants):
            # A variant that does not compile is left out of the traffic and control checks: not news.
            general = [problem for problem in general if not problem.startswith(FOLLOW_ON)]
        return _form_page(request, portal, with_blank_slot(form), flow=flow, status=400, problems=general)
    actor = flows.Actor(ref=portal.user.ref)
    clock = portal.runtime.clock

    async def work(session: AsyncSession) -> Flow:
        if flow is None:
            return await flows.create_flow(session, {**document, "status": "DRAFT"}, actor=actor, clock=clock)
        return await flows.update_flow(session, flow.ref, document, actor=actor, clock=clock)

    try:
        saved = await in_transaction(portal.runtime.sessions, work)
    except FlowInvalid as exc:
        general = attach(form, exc.problems, origin)
        return _form_page(request, portal, with_blank_slot(form), flow=flow, status=400, problems=general)
    except FlowConflict as exc:
        message = exc.developer_message or exc.message
        return _form_page(request, portal, with_blank_slot(form), flow=flow, status=409, message=message)
    except FlowNotFound:
        return missing(request, portal)
    return redirect(f"/portal/flows/{saved.ref}?done={'created' if flow is None else 'saved'}")
