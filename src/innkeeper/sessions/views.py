"""Read models of sessions and events: the guest timeline and the debug event viewer."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import Select, String, Table, Text, bindparam, func, literal_column, select, true, type_coerce
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
    by the database; then each session's events as one JSON array, joined by the database from the lines
    stored with them (``events.line``, :func:`innkeeper.sessions.models.timeline_line`). A session's
    ``events`` is that array as ``msgspec.Raw``: the REST route sends it as it is (msgspec splices it into the
    response); :func:`timeline_events` decodes it. Never ``raw``: a guest can have thousands of events (5,000 in
    the reads benchmark, p95 ≤ 20 ms); the portal reads one event's record and raw JSON on demand
    (:func:`event_debug`).
    """
    rows = await _timeline_sessions(
        session, guest_ref, channel=channel, cart_type=cart_type, start=start, end=end, limit=TIMELINE_LIMIT
    )
    if not rows:
        return []
    lines = dict(await _timeline_events(session, [r[0] for r in rows]))
    items = []
    for row in rows:
        item = session_record(row)
        found = lines.get(row[0])
        item["events"] = msgspec.Raw(f"[{found}]" if found else "[]")
        items.append(item)
    return items


def timeline_events(events: msgspec.Raw) -> list[dict[str, Any]]:
    """A timeline session's ``events`` (see :func:`timeline`) as a list of event lines."""
    return _LINES.decode(events)


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
    """``(session_ref, lines)`` of these sessions: ``lines`` are the ``line`` of each of the session's events,
    oldest first, joined by commas (NULL, or no row, for a session without events). Straight from the driver
    (``SqliteRead``: sqlite3, asyncpg), past SQLAlchemy's result machinery. One string per session instead of
    one or more per event: making 5,000 Python strings cost more than the rest of the read."""
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
    if dialect == "postgresql":
        # Per wanted session, one ordered scan of ix_events_session_created: PostgreSQL 15 cannot walk an index in
        # order for `session_ref IN (…)`. string_agg takes the lines in the order of the subquery it reads
        # (nothing between them could reorder them); string_agg(… ORDER BY …) would sort each session's rows
        # again, from a bitmap scan: 15 ms instead of 6 for 100 sessions of 50 events.
        refs = (
            func.unnest(cast_(bindparam("session_refs", type_=_Refs()), ARRAY(String)))
            .table_valued("ref")
            .render_derived("wanted")
        )
        ordered = (
            select(e.line)
            .where(e.session_ref == refs.c.ref)
            .order_by(e.created_at, e.ref)
            .correlate(refs)
            .lateral("ordered")
        )
        lines = select(func.string_agg(ordered.c.line, literal_column("','")).label("lines")).lateral("lines")
        return select(refs.c.ref, lines.c.lines).join_from(refs, lines, true())
    # SQLite (3.40 has no ORDER BY in an aggregate): group_concat joins a group's rows in the order they come,
    # and GROUP BY session_ref walks ix_events_session_created (session_ref, created_at, ref) in its order, with
    # no sort: each session's lines come oldest first (tests/sessions/test_views_timeline.py checks the plan).
    return (
        select(e.session_ref, func.group_concat(e.line, literal_column("','")))
        .where(e.session_ref.in_(bindparam("session_refs", expanding=True)))
        .group_by(e.session_ref)
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


_LINES: msgspec.json.Decoder[list[dict[str, Any]]] = msgspec.json.Decoder(list[dict[str, Any]])
_TIMELINE_EVENTS = {dialect: SqliteRead(_events_statement(dialect)) for dialect in ("sqlite", "postgresql")}


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name
