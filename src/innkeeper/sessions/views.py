"""Read models of sessions and events: the guest timeline and the debug event viewer."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, String, Table, Text, bindparam, func, select, true, type_coerce
from sqlalchemy import cast as cast_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import UserDefinedType

from innkeeper.core.clock import iso
from innkeeper.core.sqlite_fast import SqliteRead
from innkeeper.sessions.models import Event, Session
from innkeeper.sessions.repository import SessionRepository, iso_text
from innkeeper.sessions.service import duration, session_type

TIMELINE_LIMIT = 100


def session_record(row: Sequence[Any]) -> dict[str, Any]:
    """The session record of spec §5.3, from a row of :func:`_timeline_sessions` (unpacked by position:
    a row's attribute lookups cost more than building the dict)."""
    (
        ref,
        guest_ref,
        browser_ref,
        channel,
        point_of_sale,
        status,
        close_reason,
        started_at,
        last_activity_at,
        ended_at,
        started,
        ended,
        language,
        currency_code,
        first_page,
        last_page,
        num_events,
        num_views,
        num_searches,
        num_adds,
        num_selects,
        num_confirms,
        num_checkouts,
        cart_type,
        cart,
        abandoned_revenue,
        value,
        order_ref,
        utm,
        referrer,
        user_agent,
        device,
        session_data,
        created_at,
        modified_at,
    ) = row
    return {
        "ref": ref,
        "guestRef": guest_ref,
        "browserRef": browser_ref,
        "sessionType": session_type(channel),
        "channel": channel,
        "pointOfSale": point_of_sale,
        "status": status,
        "closeReason": close_reason,
        "startedAt": started_at,
        "lastActivityAt": last_activity_at,
        "endedAt": ended_at,
        "duration": duration(started, ended),
        "language": language,
        "currencyCode": currency_code,
        "firstPageUri": first_page,
        "lastPageUri": last_page,
        "numEvents": num_events,
        "numViews": num_views,
        "numSearches": num_searches,
        "numAdds": num_adds,
        "numSelects": num_selects,
        "numConfirms": num_confirms,
        "numCheckouts": num_checkouts,
        "cartType": cart_type,
        "cart": list(_json(cart) or []),
        "abandonedRevenue": abandoned_revenue,
        "value": value,
        "orderRef": order_ref,
        "utm": dict(_json(utm) or {}),
        "referrer": referrer,
        "userAgent": user_agent,
        "device": dict(_json(device) or {}),
        "sessionData": dict(_json(session_data) or {}),
        "createdAt": created_at,
        "modifiedAt": modified_at,
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
    """The guest's last 100 sessions, newest first, each with its events, oldest first.

    Two Core queries, rows straight from the cursor (no ORM objects): the sessions, their times formatted
    by the database; then every event of those sessions, as the few columns a timeline line shows. Never
    ``raw``: a guest can have thousands of events (5,000 in the reads benchmark, p95 ≤ 20 ms); the portal
    reads one event's record and raw JSON on demand (:func:`event_debug`).
    """
    rows = await _timeline_sessions(
        session, guest_ref, channel=channel, cart_type=cart_type, start=start, end=end, limit=TIMELINE_LIMIT
    )
    if not rows:
        return []
    by_session: dict[str, list[dict[str, Any]]] = {r[0]: [] for r in rows}
    # SQLite hands the stored text back ('YYYY-MM-DD HH:MM:SS.ffffff', always six digits): slicing it here
    # costs less than doing it in SQL. PostgreSQL formats it (to_char).
    sqlite = _dialect(session) == "sqlite"
    # One loop over thousands of rows, unpacked by position and built inline: a function call or a row
    # attribute lookup per event costs more than the dict itself.
    for session_ref, ref, type_, created_at, page, status, failure in await _timeline_events(session, list(by_session)):
        by_session[session_ref].append(
            {
                "ref": ref,
                "type": type_,
                "createdAt": f"{created_at[:10]}T{created_at[11:23]}Z" if sqlite else created_at,
                "page": page,
                "processingStatus": status,
                "summary": f"{type_} failed: {failure}"
                if status == "FAILED"
                else (f"{type_} on {page}" if page else type_),
            }
        )
    items = []
    for row in rows:
        item = session_record(row)
        item["events"] = by_session[row[0]]
        items.append(item)
    return items


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


async def event_debug(session: AsyncSession, guest_ref: str, event_ref: str) -> dict[str, Any] | None:
    """One event's stored record of spec §4.3, ``raw`` included, for the portal's debug details; ``None``
    when there is no such event or it is not the guest's (:meth:`SessionRepository.event_of_guest`)."""
    row = await SessionRepository(session).event_of_guest(event_ref, guest_ref)
    return None if row is None else event_record(row, include_raw=True)


# --- the timeline's reads ------------------------------------------------------------------------------------
# Core selects of table columns, here beside the only read model that uses them: what a timeline needs
# differs from the domain's ORM reads (:class:`SessionRepository`), and 5,000 ORM objects cannot be built
# within the timeline's budget (issue 8: p95 ≤ 20 ms).

_SESSIONS = cast(Table, Session.__table__).c
_EVENTS = cast(Table, Event.__table__).c


async def _timeline_sessions(
    session: AsyncSession,
    guest_ref: str,
    *,
    channel: str | None,
    cart_type: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> Sequence[Any]:
    """The guest's sessions, newest first: plain rows of what :func:`session_record` shows, in its order,
    the times as :func:`innkeeper.core.clock.iso` writes them, plus the two datetimes its duration
    runs between (the start, and the end or else the last activity)."""
    stmt = _sessions_statement(
        _dialect(session),
        channel=bool(channel),
        cart_type=bool(cart_type),
        start=bool(start),
        end=bool(end),
        limit=limit,
    )
    values = {"guest_ref": guest_ref, "channel": channel, "cart_type": cart_type, "start": start, "end": end}
    return list((await session.execute(stmt, values)).all())


async def _timeline_events(session: AsyncSession, session_refs: list[str]) -> Sequence[Any]:
    """These sessions' events, oldest first: plain rows of ``(session_ref, ref, type, created_at, page,
    processing_status, failure_reason)``; ``created_at`` as :func:`innkeeper.core.clock.iso` writes it on
    PostgreSQL, as stored on SQLite (see :func:`timeline`). Straight from the driver (``SqliteRead``: sqlite3,
    asyncpg), past SQLAlchemy's result machinery: ~0.7 ms of a 16 ms, 5,000-event timeline on SQLite, ~3 ms of
    its CPU on PostgreSQL (an interleaved A/B in one process, session 10)."""
    return await _TIMELINE_EVENTS[_dialect(session)].rows(session, {"session_refs": session_refs})


# The statements are built once per dialect (and filter set) and reused with bound values: building a
# select of 40 columns and computing its cache key afresh costs ~1 ms a call.


@functools.cache
def _sessions_statement(
    dialect: str, *, channel: bool, cart_type: bool, start: bool, end: bool, limit: int
) -> Select[Any]:
    c = _SESSIONS
    stmt = select(
        c.ref,
        c.guest_ref,
        c.browser_ref,
        c.channel,
        c.point_of_sale,
        c.status,
        c.close_reason,
        iso_text(dialect, c.started_at),
        iso_text(dialect, c.last_activity_at),
        iso_text(dialect, c.ended_at),
        c.started_at,
        func.coalesce(c.ended_at, c.last_activity_at, type_=c.last_activity_at.type),  # where the duration ends
        c.language,
        c.currency_code,
        c.first_page,
        c.last_page,
        c.num_events,
        c.num_views,
        c.num_searches,
        c.num_adds,
        c.num_selects,
        c.num_confirms,
        c.num_checkouts,
        c.cart_type,
        _json_text(dialect, c.cart),
        c.abandoned_revenue,
        c.value,
        c.order_ref,
        _json_text(dialect, c.utm),
        c.referrer,
        c.user_agent,
        _json_text(dialect, c.device),
        _json_text(dialect, c.session_data),
        iso_text(dialect, c.created_at),
        iso_text(dialect, c.modified_at),
    ).where(c.guest_ref == bindparam("guest_ref"))
    if channel:
        stmt = stmt.where(c.channel == bindparam("channel"))
    if cart_type:
        stmt = stmt.where(c.cart_type == bindparam("cart_type"))
    if start:
        stmt = stmt.where(c.started_at >= bindparam("start", type_=c.started_at.type))
    if end:
        stmt = stmt.where(c.started_at <= bindparam("end", type_=c.started_at.type))
    return stmt.order_by(c.started_at.desc(), c.ref).limit(limit)


class _Refs(UserDefinedType[list[str]]):
    """A ``varchar[]`` parameter handed to the driver as the list it is (asyncpg takes a list of str)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "VARCHAR[]"


@functools.cache
def _events_statement(dialect: str) -> Select[Any]:
    e = _EVENTS
    columns = (e.session_ref, e.ref, e.type, e.page, e.processing_status, e.failure_reason)
    if dialect == "postgresql":
        # One ordered scan of ix_events_session_created per session (a nested loop over the refs): PostgreSQL 15
        # cannot walk an index in order for `session_ref IN (…)`, and a sort of them all costs more. Each
        # session's events come in the lateral subquery's order (a nested loop keeps the inner rows' order);
        # the sessions may come in any order (timeline() groups them by session).
        refs = (
            func.unnest(cast_(bindparam("session_refs", type_=_Refs()), ARRAY(String)))
            .table_valued("ref")
            .render_derived("wanted")
        )
        lines = (
            select(*columns, iso_text(dialect, e.created_at).label("created_at"))
            .where(e.session_ref == refs.c.ref)
            .order_by(e.created_at, e.ref)
            .lateral("lines")
        )
        c = lines.c
        return select(
            c.session_ref, c.ref, c.type, c.created_at, c.page, c.processing_status, c.failure_reason
        ).join_from(refs, lines, true())
    # SQLite: each session's events in order straight from ix_events_session_created (no sort); the stored text.
    return (
        select(
            e.session_ref, e.ref, e.type, type_coerce(e.created_at, Text), e.page, e.processing_status, e.failure_reason
        )
        .where(e.session_ref.in_(bindparam("session_refs", expanding=True)))
        .order_by(e.session_ref, e.created_at, e.ref)
    )


def _json_text(dialect: str, column: Any) -> Any:
    """A JSON column as its text, decoded by :func:`_json` (cheaper than the driver's or SQLAlchemy's
    ``json.loads`` of each value: most are ``[]`` or ``{}``)."""
    return cast_(column, Text) if dialect == "postgresql" else type_coerce(column, Text)


_EMPTY: dict[str, type[list[Any]] | type[dict[str, Any]]] = {"[]": list, "{}": dict}


def _json(text: str | None) -> Any:
    """A JSON value read as text (SQL NULL → None)."""
    if text is None:
        return None
    empty = _EMPTY.get(text)
    return empty() if empty is not None else json.loads(text)


_TIMELINE_EVENTS = {dialect: SqliteRead(_events_statement(dialect)) for dialect in ("sqlite", "postgresql")}


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name
