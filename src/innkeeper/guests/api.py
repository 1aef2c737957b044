"""Admin read routes of guests: browser lookup (spec §12.3)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from innkeeper.core.clock import iso
from innkeeper.guests import service as guests
from innkeeper.http.auth import require, runtime_of

router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(require("admin"))])


@router.get("/browsers/{browser_ref}")
async def browser_lookup(request: Request, browser_ref: str) -> dict[str, Any]:
    """A browser and the guest it belongs to now."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        browser = await guests.get_browser(session, browser_ref)
    return {
        "ref": browser.ref,
        "guestRef": browser.guest_ref,
        "createdAt": iso(browser.created_at),
        "userAgent": browser.user_agent,
        "lastSeen": iso(browser.last_seen),
    }
