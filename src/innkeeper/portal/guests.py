"""Guests: search by browser id, guest ref, email or name; recent guests."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response

from innkeeper.guests import service as guests
from innkeeper.portal._web import Portal, need, page, router


@router.get("/guests")
async def guest_search(
    request: Request,
    portal: Annotated[Portal, Depends(need("guests.read"))],
    q: Annotated[str, Query(max_length=320)] = "",
) -> Response:
    async with portal.runtime.sessions() as session:
        rows = await guests.find_guests(session, q)
    return page(request, "guests.html", portal=portal, q=q, guests=rows)
