"""What the flow pages share: labels, the not-found page, loading a flow by ref or friendly id."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from innkeeper.personalize.experiences import service as flows
from innkeeper.personalize.experiences.errors import FlowNotFound
from innkeeper.personalize.experiences.models import Flow
from innkeeper.portal._web import Portal, PortalInterrupt, page

KINDS = {"experience": "EXPERIENCE", "experiment": "EXPERIMENT"}
LISTS = {"EXPERIENCE": "/portal/experiences", "EXPERIMENT": "/portal/experiments"}
TYPE_LABELS = {
    "INTERACTIVE_API_FLOW": "Full stack (API)",
    "TRIGGERED_V3": "Triggered",
    "INTERACTIVE_WEB_FLOW": "Web",
}
# The types the form creates; web flows are shown and kept, but made through /v3/flowDefinitions.
EDITABLE_TYPES = ("INTERACTIVE_API_FLOW", "TRIGGERED_V3")


def kind_of(flow: Flow) -> str:
    """``experience`` or ``experiment``: the word the pages use."""
    return "experiment" if flow.subtype == "EXPERIMENT" else "experience"


def missing(request: Request, portal: Portal) -> Response:
    return page(request, "flow_missing.html", 404, portal=portal)


async def load(request: Request, portal: Portal, ref: str) -> Flow:
    """The flow with this ref or friendly id; without one, the request ends with the 404 page."""
    async with portal.runtime.sessions() as session:
        try:
            return await flows.get_flow(session, ref[:256])
        except FlowNotFound:
            raise PortalInterrupt(missing(request, portal)) from None
