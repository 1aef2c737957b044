"""Batch ``tracking`` records (spec cdp.md §10.8, our choice): offline events on a guest's timeline."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import Clock
from innkeeper.core.ids import new_ref
from innkeeper.core.timeparse import parse_iso
from innkeeper.guests import batch_import as guests
from innkeeper.guests.batch_import import RecordRejected, invalid
from innkeeper.sessions import service as sessions

TRACKING_REQUIRED = ("type", "createdAt")


async def apply(session: AsyncSession, value: dict[str, Any], *, client_key: str, clock: Clock) -> None:
    """An offline event (spec §10.8 ``tracking``): stored on the guest's timeline, no session, no triggers."""
    for key in TRACKING_REQUIRED:
        if value.get(key) is None:
            raise invalid(f"value.{key}: required")
    event_type = value["type"]
    if not isinstance(event_type, str) or not event_type.strip() or len(event_type) > 100:
        raise invalid("value.type: must be a non-empty string")
    created = parse_iso(value["createdAt"]) if isinstance(value["createdAt"], str) else None
    if created is None:
        raise invalid("value.createdAt: must be an ISO 8601 date-time")
    browser_id, guest_ref = value.get("browser_id"), value.get("guestRef")
    if not isinstance(browser_id, str) and not isinstance(guest_ref, str):
        raise RecordRejected("400", guests.NOT_IDENTIFIED)
    texts = {key: value.get(key) for key in ("channel", "pos", "language", "currency", "page")}
    for key, found in texts.items():
        if found is not None and not isinstance(found, str):
            raise invalid(f"value.{key}: must be a string")
    browser = await guests.browser_for(
        session,
        browser_ref=browser_id if isinstance(browser_id, str) else None,
        guest_ref=guest_ref if isinstance(guest_ref, str) else None,
        clock=clock,
    )
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if "\x00" in raw or "\\u0000" in raw:
        raise invalid("value: must not contain NUL")

    def text(key: str, limit: int) -> str | None:
        found = texts[key]
        return found[:limit] if isinstance(found, str) and found else None

    await sessions.record_event(
        session,
        sessions.Event(
            ref=new_ref(),
            type=event_type.strip(),
            browser_ref=browser.ref,
            guest_ref=browser.guest_ref,
            session_ref=None,
            channel=text("channel", 40) or "OFFLINE",
            point_of_sale=text("pos", 100),
            language=text("language", 8),
            currency=text("currency", 8),
            page=text("page", 2000),
            client_key=client_key,
            created_at=created,
            modified_at=clock.now(),
            processing_status="SUCCESS",
            warnings=[],
            transport="batch",
            user_agent=None,
            client_requested_at=None,
            raw=raw,
        ),
    )
