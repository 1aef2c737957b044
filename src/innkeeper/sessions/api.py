"""Admin read routes of sessions: the guest timeline and the debug event viewer (spec §12.3)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from innkeeper.guests import service as guests
from innkeeper.guests.models import Guest
from innkeeper.http.auth import require, runtime_of
from innkeeper.http.responses import json_response
from innkeeper.sessions import views
from innkeeper.tenant import service as tenant

router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(require("admin"))])


@router.get("/guests/{guest_ref}/timeline", response_model=dict[str, Any])
async def guest_timeline(
    request: Request,
    guest_ref: str,
    channel: Annotated[str | None, Query(max_length=40)] = None,
    cartType: Annotated[Literal["BROWSED", "CONVERTED", "ABANDONED"] | None, Query()] = None,  # noqa: N803
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
) -> Response:
    """The guest's last 100 sessions, newest first, each with its events."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        guest: Guest = await guests.get_guest(session, guest_ref)
        identifiers = await guests.identifiers_of(session, guest.ref)
        items = await views.timeline(session, guest.ref, channel=channel, cart_type=cartType, start=from_, end=to)
    # Encoded straight with msgspec: FastAPI's generic encoder costs more than the reads for thousands of events.
    return json_response({"guest": guests.guest_summary(guest, identifiers), "items": items})


@router.get("/guests/{guest_ref}/events")
async def guest_events(
    request: Request,
    guest_ref: str,
    status: Annotated[Literal["success", "failed"] | None, Query()] = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: Annotated[datetime | None, Query()] = None,
) -> dict[str, Any]:
    """The debug event viewer; ``raw`` JSON is included only while the debug flag is on."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        guest = await guests.get_guest(session, guest_ref)
        debug = (await tenant.get_tenant(session)).debug
        items = await views.guest_events(
            session, guest.ref, status=status.upper() if status else None, start=from_, end=to, include_raw=debug
        )
    return {"guestRef": guest.ref, "debug": debug, "items": items}
