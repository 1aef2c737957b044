"""Read models of sessions and events: the guest timeline and the debug event viewer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import iso
from innkeeper.sessions.models import Event, Session
from innkeeper.sessions.repository import SessionRepository
from innkeeper.sessions.service import duration, session_type

TIMELINE_LIMIT = 100


def session_record(row: Session) -> dict[str, Any]:
    """The session record of spec §5.3."""
    end = row.ended_at or row.last_activity_at
    return {
        "ref": row.ref,
        "guestRef": row.guest_ref,
        "browserRef": row.browser_ref,
        "sessionType": session_type(row.channel),
        "channel": row.channel,
        "pointOfSale": row.point_of_sale,
        "status": row.status,
        "closeReason": row.close_reason,
        "startedAt": iso(row.started_at),
        "lastActivityAt": iso(row.last_activity_at),
        "endedAt": iso(row.ended_at),
        "duration": duration(row.started_at, end),
        "language": row.language,
        "currencyCode": row.currency_code,
        "firstPageUri": row.first_page,
        "lastPageUri": row.last_page,
        "numEvents": row.num_events,
        "numViews": row.num_views,
        "numSearches": row.num_searches,
        "numAdds": row.num_adds,
        "numSelects": row.num_selects,
        "numConfirms": row.num_confirms,
        "numCheckouts": row.num_checkouts,
        "cartType": row.cart_type,
        "cart": list(row.cart or []),
        "abandonedRevenue": row.abandoned_revenue,
        "value": row.value,
        "orderRef": row.order_ref,
        "utm": dict(row.utm or {}),
        "referrer": row.referrer,
        "userAgent": row.user_agent,
        "device": dict(row.device or {}),
        "sessionData": dict(row.session_data or {}),
        "createdAt": iso(row.created_at),
        "modifiedAt": iso(row.modified_at),
    }


def event_record(event: Event, *, include_raw: bool) -> dict[str, Any]:
    """The stored event record of spec §4.3; ``raw`` only when the debug flag is on."""
    record: dict[str, Any] = {
        "ref": event.ref,
        "type": event.type,
        "browserRef": event.browser_ref,
        "guestRef": event.guest_ref,
        "sessionRef": event.session_ref,
        "channel": event.channel,
        "pointOfSale": event.point_of_sale,
        "language": event.language,
        "currency": event.currency,
        "page": event.page,
        "clientKey": event.client_key,
        "createdAt": iso(event.created_at),
        "modifiedAt": iso(event.modified_at),
        "processingStatus": event.processing_status,
        "failureReason": event.failure_reason,
        "warnings": list(event.warnings or []),
        "transport": event.transport,
        "userAgent": event.user_agent,
        "clientRequestedAt": event.client_requested_at,
    }
    if include_raw:
        record["raw"] = event.raw
    return record


async def timeline(
    session: AsyncSession,
    guest_ref: str,
    *,
    channel: str | None = None,
    cart_type: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """The guest's last 100 sessions, newest first, each with its events: two queries, the events read
    as plain rows of the few columns a timeline line shows (no ORM objects, never ``raw``): a guest can
    have thousands. The portal reads one event's record and raw JSON on demand (:func:`event_debug`).
    """
    repo = SessionRepository(session)
    rows = await repo.for_guest(
        guest_ref, channel=channel, cart_type=cart_type, start=start, end=end, limit=TIMELINE_LIMIT
    )
    by_session: dict[str, list[dict[str, Any]]] = {}
    for event in await repo.timeline_event_rows([r.ref for r in rows]):
        by_session.setdefault(event[1], []).append(_timeline_event(event))
    return [{**session_record(r), "events": by_session.get(r.ref, [])} for r in rows]


async def guest_events(
    session: AsyncSession,
    guest_ref: str,
    *,
    status: str | None,
    start: datetime | None,
    end: datetime | None,
    include_raw: bool,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """The debug event viewer: the guest's events, newest first."""
    rows = await SessionRepository(session).events_for_guest(
        guest_ref, status=status, start=start, end=end, limit=limit
    )
    return [event_record(r, include_raw=include_raw) for r in rows]


def _line_summary(type_: str, page: str | None, status: str, failure: str | None) -> str:
    if status == "FAILED":
        return f"{type_} failed: {failure}"
    return f"{type_} on {page}" if page else type_


def _timeline_event(row: Any) -> dict[str, Any]:
    """A timeline event line from a plain row of :meth:`SessionRepository.timeline_event_rows`
    (unpacked by position: a row's attribute lookups cost more than building the dict)."""
    ref, _, type_, created_at, page, status, failure = row
    return {
        "ref": ref,
        "type": type_,
        "createdAt": created_at,
        "page": page,
        "processingStatus": status,
        "summary": _line_summary(type_, page, status, failure),
    }


async def event_debug(session: AsyncSession, guest_ref: str, event_ref: str) -> dict[str, Any] | None:
    """One event's stored record of spec §4.3, ``raw`` included, for the portal's debug details; ``None``
    when there is no such event or it is not the guest's (:meth:`SessionRepository.event_of_guest`)."""
    row = await SessionRepository(session).event_of_guest(event_ref, guest_ref)
    return None if row is None else event_record(row, include_raw=True)
