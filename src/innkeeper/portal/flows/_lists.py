"""The Experiences and Experiments lists: search by name or friendly id, status and type filters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.personalize.experiences import service as flows
from innkeeper.personalize.experiences.models import Flow
from innkeeper.portal._web import Portal, need, page, router
from innkeeper.portal.flows._common import TYPE_LABELS

LIST_STATUSES = ("DRAFT", "SCHEDULED", "LIVE", "PAUSED", "COMPLETED")


@dataclass(frozen=True, slots=True)
class Row:
    ref: str
    name: str
    friendly_id: str
    type: str
    type_label: str
    status: str
    modified: str


async def _all_flows(session: AsyncSession) -> list[Flow]:
    found: list[Flow] = []
    while True:
        rows, total = await flows.list_flows(session, offset=len(found), limit=500, include_archived=False)
        found.extend(rows)
        if not rows or len(found) >= total:
            return found


def _list_page(subtype: str) -> Callable[..., Awaitable[Response]]:
    """The list of one subtype's flows (``/portal/experiences`` or ``/portal/experiments``), newest change first."""

    async def flow_list(
        request: Request,
        portal: Annotated[Portal, Depends(need("experiences.read"))],
        q: Annotated[str, Query(max_length=256)] = "",
        status: Annotated[str, Query(max_length=20)] = "",
        type: Annotated[str, Query(max_length=40)] = "",
    ) -> Response:
        async with portal.runtime.sessions() as session:
            every = await _all_flows(session)
        needle = q.strip().lower()
        rows = [
            Row(
                ref=flow.ref,
                name=flow.name,
                friendly_id=flow.friendly_id,
                type=flow.type,
                type_label=TYPE_LABELS.get(flow.type, flow.type),
                status=flow.status,
                modified=flow.modified_at.strftime("%Y-%m-%d %H:%M"),
            )
            for flow in sorted(every, key=lambda item: item.modified_at, reverse=True)
            if flow.subtype == subtype
            and (not needle or needle in flow.name.lower() or needle in flow.friendly_id)
            and (not status or flow.status == status)
            and (not type or flow.type == type)
        ]
        return page(
            request,
            "flows.html",
            portal=portal,
            kind="experience" if subtype == "EXPERIENCE" else "experiment",
            rows=rows,
            q=q,
            status_filter=status,
            flow_type=type,
            statuses=LIST_STATUSES,
            type_labels=TYPE_LABELS,
        )

    return flow_list


router.get("/experiences", name="experiences")(_list_page("EXPERIENCE"))
router.get("/experiments", name="experiments")(_list_page("EXPERIMENT"))
