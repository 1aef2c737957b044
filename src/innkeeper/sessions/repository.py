"""Every SQL statement of the sessions domain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Select,
    Table,
    Text,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.elements import ColumnElement

from innkeeper.core.sqlite_fast import (
    SqliteInsert,
    SqliteRead,
    SqliteWrite,
)
from innkeeper.sessions.models import Event, Session, event_line, timeline_line

# The literal, not a bound parameter: the partial indexes on OPEN sessions (uq_sessions_open_key,
# ix_sessions_open_sweep) can only serve a query whose WHERE names status = 'OPEN' itself (SQLite's
# planner, and PostgreSQL's generic plans of prepared statements, cannot match a parameter).
OPEN: ColumnElement[str] = literal_column("'OPEN'")
_EVENT_KEYS = tuple(column.key for column in Event.__table__.columns)
# The ingest path's statements, built once: building a select and computing its cache key on each call cost
# about as much as running it (SQLite: 146–187 µs built, 84–91 µs prebuilt, per statement).
_SESSIONS = cast(Table, Session.__table__)
_EVENTS = cast(Table, Event.__table__)
_INSERT_EVENT = insert(_EVENTS)
_INSERT_SESSION = insert(_SESSIONS)
_OPEN_FOR_KEY = (
    select(Session)
    .where(
        Session.browser_ref == bindparam("browser_ref"),
        Session.channel == bindparam("channel"),
        Session.point_of_sale == bindparam("pos"),
        Session.status == OPEN,
    )
    .with_for_update()
)


@dataclass(slots=True)
class OpenSession:
    """An OPEN session as the batched ingest path reads it: its key and every field an event can change
    (:func:`innkeeper.sessions.service.touch`), a plain object instead of an ORM row."""

    ref: str
    guest_ref: str
    browser_ref: str
    channel: str
    point_of_sale: str
    last_activity_at: datetime
    expires_at: datetime
    sweep_at: datetime
    modified_at: datetime
    language: str | None
    currency_code: str | None
    first_page: str | None
    last_page: str | None
    num_events: int
    num_views: int
    num_searches: int
    num_adds: int
    num_selects: int
    num_confirms: int
    num_checkouts: int
    cart: list[dict[str, Any]]
    cart_cleared: bool
    utm: dict[str, Any]
    referrer: str | None
    session_data: dict[str, Any]


def set_expiry(row: Session | OpenSession, expires_at: datetime) -> None:
    """Give an OPEN session a new expiry, bringing ``sweep_at`` along only when the expiry moves before it (a
    shorter timeout): ``sweep_at`` never comes after ``expires_at`` (``Session.sweep_at``)."""
    row.expires_at = expires_at
    if expires_at < row.sweep_at:
        row.sweep_at = expires_at


# A browser's OPEN sessions, the one it was most recently active in first: the one an event naming neither channel
# nor point of sale joins. Ties (one instant: a frozen clock, events of a batch) go to the most recently started,
# then by (channel, point of sale), which is unique among a browser's OPEN sessions: never to the rows' physical
# order, which differs with the order they were written in.
LATEST_ACTIVE_FIRST = (
    _SESSIONS.c.last_activity_at.desc(),
    _SESSIONS.c.started_at.desc(),
    _SESSIONS.c.channel,
    _SESSIONS.c.point_of_sale,
)

# What an OpenSession holds, and the fields of it an event can change.
OPEN_FIELDS = tuple(field.name for field in fields(OpenSession))
_KEY_FIELDS = ("ref", "guest_ref", "browser_ref", "channel", "point_of_sale")
TOUCHED_FIELDS = tuple(name for name in OPEN_FIELDS if name not in _KEY_FIELDS)
# Every OPEN session of a batch's browsers, locked (the partial unique index serves browser_ref IN … AND OPEN).
_OPEN_OF_BROWSERS = (
    select(*(_SESSIONS.c[name] for name in OPEN_FIELDS))
    .where(_SESSIONS.c.browser_ref.in_(bindparam("refs", expanding=True)), _SESSIONS.c.status == OPEN)
    .order_by(_SESSIONS.c.browser_ref, _SESSIONS.c.ref)
    .with_for_update()
)
# One executemany writes the touched fields of every session of a batch.
_WRITE_TOUCHED = (
    update(_SESSIONS)
    .where(_SESSIONS.c.ref == bindparam("b_ref"))
    .values({name: bindparam(f"b_{name}") for name in TOUCHED_FIELDS})
)


class SessionRepository:
    """Sessions and events."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def abandonment(
        self, start: datetime, end: datetime, *, pos: str | None, channel: str | None
    ) -> tuple[int, float, int, int]:
        """(abandoned sessions, abandoned revenue, sessions with an ADD, closed sessions) closed in [start, end)."""
        stmt = select(
            func.count().filter(Session.cart_type == "ABANDONED"),
            func.coalesce(func.sum(Session.abandoned_revenue).filter(Session.cart_type == "ABANDONED"), 0.0),
            func.count().filter(Session.num_adds > 0),
            func.count(),
        ).where(
            Session.status == "CLOSED",
            Session.origin.is_(None),
            Session.ended_at >= start,
            Session.ended_at < end,
        )
        if pos:
            stmt = stmt.where(Session.point_of_sale == pos)
        if channel:
            stmt = stmt.where(Session.channel == channel)
        abandoned, revenue, with_adds, closed = (await self.session.execute(stmt)).one()
        return int(abandoned), float(revenue or 0.0), int(with_adds), int(closed)

    async def get(self, ref: str) -> Session | None:
        return await self.session.get(Session, ref)

    def add(self, row: Session | Event) -> None:
        self.session.add(row)

    async def insert_event(self, event: Event) -> None:
        """One event row by a Core INSERT of the object's columns: the object is not added to the session
        (the unit of work's bookkeeping cost more than the insert itself on the ingest path)."""
        event.line = timeline_line(
            event.ref, event.type, event.created_at, event.page, event.processing_status, event.failure_reason
        )
        await self.session.execute(_INSERT_EVENT, {key: getattr(event, key) for key in _EVENT_KEYS})

    async def insert_sessions(self, rows: list[dict[str, Any]]) -> None:
        """Session rows (every column of ``sessions``) in one multi-row INSERT."""
        await _SQLITE_INSERT_SESSIONS.execute_many(self.session, rows)

    async def insert_events(self, rows: list[dict[str, Any]]) -> None:
        """Event rows (every column of ``events`` but ``line``, which is added to each) in one multi-row INSERT."""
        for row in rows:
            row["line"] = event_line(row)
        await _SQLITE_INSERT_EVENTS.execute_many(self.session, rows)

    async def open_of_browsers(self, browser_refs: list[str]) -> list[OpenSession]:
        """Every OPEN session of these browsers, locked for this transaction, as plain objects."""
        if not browser_refs:
            return []
        rows = await _SQLITE_OPEN_OF_BROWSERS.rows(self.session, {"refs": browser_refs})
        return [OpenSession(*row) for row in rows]

    async def write_touched(self, rows: Sequence[OpenSession]) -> None:
        """Store what events changed in these sessions (their touched fields), one executemany."""
        if rows:
            params = [{f"b_{name}": getattr(row, name) for name in ("ref", *TOUCHED_FIELDS)} for row in rows]
            await _SQLITE_WRITE_TOUCHED.execute_many(self.session, params)

    async def open_for_key(self, browser_ref: str, channel: str, pos: str) -> Session | None:
        params = {"browser_ref": browser_ref, "channel": channel, "pos": pos}
        return (await self.session.execute(_OPEN_FOR_KEY, params)).scalar_one_or_none()

    async def open_for_browser(self, browser_ref: str) -> list[Session]:
        stmt = (
            select(Session)
            .where(Session.browser_ref == browser_ref, Session.status == OPEN)
            .order_by(*LATEST_ACTIVE_FIRST)
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars())

    async def has_open(self, guest_ref: str) -> bool:
        stmt = select(Session.ref).where(Session.guest_ref == guest_ref, Session.status == OPEN).limit(1)
        return (await self.session.execute(stmt)).first() is not None

    async def latest_open_for_browser(self, browser_ref: str) -> Session | None:
        stmt = (
            select(Session)
            .where(Session.browser_ref == browser_ref, Session.status == OPEN)
            .order_by(*LATEST_ACTIVE_FIRST)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def expired_for_close(self, now: datetime, limit: int) -> list[Any]:
        """What closing needs of up to ``limit`` expired OPEN sessions, oldest expiry first, locked for this
        transaction (rows another sweeper holds are skipped): plain rows of ``ref, guest_ref, origin,
        converted, cart``."""
        sessions = Session.__table__.c
        stmt = (
            select(sessions.ref, sessions.guest_ref, sessions.origin, sessions.converted, sessions.cart)
            # ix_sessions_open_sweep (its predicate spelled out: SQLite matches it term by term); sweep_at never
            # comes after expires_at (Session.sweep_at).
            .where(sessions.status == OPEN, sessions.sweep_at.is_not(None), sessions.sweep_at < now)
            .where(sessions.expires_at < now)
            .order_by(sessions.sweep_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).all())

    async def reschedule_sweeps(self, now: datetime) -> int:
        """Move ``sweep_at`` up to ``expires_at`` for the OPEN sessions due for a look but still active; rows
        another transaction holds (an event being applied, another sweeper) are skipped. Returns how many."""
        sessions = Session.__table__.c
        due = (
            select(sessions.ref)
            .where(sessions.status == OPEN, sessions.sweep_at.is_not(None), sessions.sweep_at < now)
            .where(sessions.expires_at >= now)
            .with_for_update(skip_locked=True)
        )
        stmt = update(Session).where(Session.ref.in_(due.scalar_subquery())).values(sweep_at=Session.expires_at)
        result = await self.session.execute(stmt, execution_options={"synchronize_session": False})
        return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]

    async def close_timed_out(self, outcomes: Sequence[tuple[str, str, float | None]], *, now: datetime) -> None:
        """Close sessions by TIMEOUT, given each one's ``(ref, cart type, abandoned revenue)``: one UPDATE
        per cart type for the sessions without revenue (``ref IN (…)``), one multi-row UPDATE for the rest."""
        if not outcomes:
            return
        table = cast(Table, Session.__table__)
        closing = {
            "status": "CLOSED",
            "close_reason": "TIMEOUT",
            "ended_at": table.c.last_activity_at,  # TIMEOUT: the session ended at its last activity
            "modified_at": now,
        }
        plain: dict[str, list[str]] = {}
        priced: list[dict[str, Any]] = []
        for ref, cart_type, revenue in outcomes:
            if revenue is None:
                plain.setdefault(cart_type, []).append(ref)
            else:
                priced.append({"b_ref": ref, "b_cart_type": cart_type, "b_revenue": revenue})
        for cart_type, refs in plain.items():
            for at in range(0, len(refs), 5000):
                await self.session.execute(
                    update(table)
                    .where(table.c.ref.in_(refs[at : at + 5000]), table.c.status == "OPEN")
                    .values(**closing, cart_type=cart_type, abandoned_revenue=None)
                )
        if priced:
            stmt = (
                update(table)
                .where(table.c.ref == bindparam("b_ref"), table.c.status == "OPEN")
                .values(**closing, cart_type=bindparam("b_cart_type"), abandoned_revenue=bindparam("b_revenue"))
            )
            await self.session.execute(stmt, priced)
        # Sessions already loaded in this unit of work get the values just written, as close() leaves them.
        if self.session.identity_map:
            by_ref = {ref: (cart_type, revenue) for ref, cart_type, revenue in outcomes}
            for obj in list(self.session.identity_map.values()):
                if not isinstance(obj, Session) or obj.status != "OPEN" or obj.ref not in by_ref:
                    continue
                cart_type, revenue = by_ref[obj.ref]
                for key, value in (
                    ("status", "CLOSED"),
                    ("close_reason", "TIMEOUT"),
                    ("ended_at", obj.last_activity_at),
                    ("cart_type", cart_type),
                    ("abandoned_revenue", revenue),
                    ("modified_at", now),
                ):
                    set_committed_value(obj, key, value)

    def closed_messages(self, refs: list[str], *, topic: str) -> Select[Any]:
        """A SELECT of the ``session.closed`` outbox message of each of these (just closed) sessions:
        ``(idempotency key, guest ref, payload)``, the payload built by the database from the row."""
        sessions = Session.__table__.c
        postgres = self.session.get_bind().dialect.name == "postgresql"
        fields = [
            ("sessionRef", sessions.ref),
            ("guestRef", sessions.guest_ref),
            ("browserRef", sessions.browser_ref),
            ("cartType", sessions.cart_type),
            ("abandonedRevenue", sessions.abandoned_revenue),
            ("pointOfSale", sessions.point_of_sale),
            ("closeReason", sessions.close_reason),
            ("endedAt", iso_text(self.session.get_bind().dialect.name, sessions.ended_at)),
        ]
        arguments = [item for name, column in fields for item in (literal_column(f"'{name}'", Text), column)]
        build = func.jsonb_build_object if postgres else func.json_object
        key = (literal_column(f"'{topic}:'", Text) + sessions.ref).label("idempotency_key")
        return select(key, sessions.guest_ref, build(*arguments).label("payload")).where(sessions.ref.in_(refs))

    async def for_guest(
        self,
        guest_ref: str,
        *,
        channel: str | None,
        cart_type: str | None,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> list[Session]:
        stmt = select(Session).where(Session.guest_ref == guest_ref)
        if channel:
            stmt = stmt.where(Session.channel == channel)
        if cart_type:
            stmt = stmt.where(Session.cart_type == cart_type)
        if start:
            stmt = stmt.where(Session.started_at >= start)
        if end:
            stmt = stmt.where(Session.started_at <= end)
        stmt = stmt.order_by(Session.started_at.desc(), Session.ref).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def events_of_sessions(self, session_refs: list[str]) -> list[Event]:
        if not session_refs:
            return []
        stmt = select(Event).where(Event.session_ref.in_(session_refs)).order_by(Event.created_at, Event.ref)
        return list((await self.session.execute(stmt)).scalars())

    async def event_rows_of_sessions(self, session_refs: list[str], *, with_raw: bool) -> list[Any]:
        """Plain rows (no ORM objects) of these sessions' events, oldest first; ``raw`` only when asked."""
        if not session_refs:
            return []
        columns = [
            Event.ref,
            Event.session_ref,
            Event.type,
            Event.channel,
            Event.point_of_sale,
            Event.created_at,
            Event.page,
            Event.language,
            Event.currency,
            Event.processing_status,
        ]
        if with_raw:
            columns.append(Event.raw)
        stmt = select(*columns).where(Event.session_ref.in_(session_refs)).order_by(Event.created_at, Event.ref)
        return list((await self.session.execute(stmt)).all())

    async def context_latest_open(self, browser_ref: str) -> Sequence[Any] | None:
        """The plain row (``CONTEXT_SESSION_COLUMNS``, by position) of the browser's most recently active OPEN
        session."""
        rows = await _SQLITE_CONTEXT_LATEST_OPEN.rows(self.session, {"browser_ref": browser_ref})
        return rows[0] if rows else None

    async def insert_event_values(self, values: Mapping[str, Any]) -> None:
        """One event row from its column values (every column of ``events`` but ``line``), straight on SQLite's
        connection there (callFlows' exposure event); the same INSERT as :meth:`insert_event`."""
        await _SQLITE_INSERT_EVENT.execute(self.session, {**values, "line": event_line(values)})

    async def context_heads(self, guest_ref: str, *, limit: int) -> list[Sequence[Any]]:
        """``(ref, status)`` of the guest's newest sessions, newest first: the sessions its guest context holds."""
        return await _CONTEXT_HEADS.rows(self.session, {"guest_ref": guest_ref, "limit": limit})

    async def context_rows(
        self, session_refs: list[str], *, with_raw: bool
    ) -> tuple[list[Sequence[Any]], list[Sequence[Any]]]:
        """Plain rows of ``CONTEXT_SESSION_COLUMNS`` of these sessions (in no particular order), then those of
        ``CONTEXT_EVENT_COLUMNS`` (and ``raw`` when asked) of their events, oldest first; straight from SQLite's
        connection there. The sessions are read first, so a session read as CLOSED comes with all its events (none
        join a session once it is closed)."""
        if not session_refs:
            return [], []
        found = await _CONTEXT_SESSIONS_BY_REF.rows(self.session, {"refs": session_refs})
        if not found:
            return [], []
        events = _CONTEXT_EVENTS_RAW_READ if with_raw else _CONTEXT_EVENTS_READ
        return found, await events.rows(self.session, {"refs": [row[0] for row in found]})

    async def open_key_row(self, browser_ref: str, channel: str, pos: str) -> Any | None:
        """``(ref, guest_ref, last_activity_at)`` of the OPEN session of this key as stored, locked like
        :meth:`open_for_key` locks it; no ORM object."""
        params = {"browser_ref": browser_ref, "channel": channel, "pos": pos}
        rows = await _SQLITE_OPEN_KEY_ROW.rows(self.session, params)
        return rows[0] if rows else None

    async def events_for_guest(
        self, guest_ref: str, *, status: str | None, start: datetime | None, end: datetime | None, limit: int
    ) -> list[Event]:
        stmt = select(Event).where(Event.guest_ref == guest_ref)
        if status:
            stmt = stmt.where(Event.processing_status == status)
        if start:
            stmt = stmt.where(Event.created_at >= start)
        if end:
            stmt = stmt.where(Event.created_at <= end)
        stmt = stmt.order_by(Event.created_at.desc(), Event.ref).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def get_event(self, ref: str) -> Event | None:
        return await self.session.get(Event, ref)

    async def retime(self, pos: str, idle: timedelta) -> None:
        rows = await self.session.execute(
            select(Session).where(Session.point_of_sale == pos, Session.status == OPEN).with_for_update()
        )
        for row in rows.scalars():
            set_expiry(row, row.last_activity_at + idle)

    async def move_guest(self, from_guest: str, to_guest: str) -> None:
        await self.session.execute(update(Session).where(Session.guest_ref == from_guest).values(guest_ref=to_guest))
        await self.session.execute(update(Event).where(Event.guest_ref == from_guest).values(guest_ref=to_guest))

    # --- guest deletion (spec §8.5) -------------------------------------------------------

    async def purge_guest(self, guest_ref: str) -> int:
        """Delete the guest's events (also any event in its sessions), then its sessions."""
        own_sessions = select(Session.ref).where(Session.guest_ref == guest_ref).scalar_subquery()
        events = await self.session.execute(
            delete(Event).where(or_(Event.guest_ref == guest_ref, Event.session_ref.in_(own_sessions)))
        )
        sessions = await self.session.execute(delete(Session).where(Session.guest_ref == guest_ref))
        return max(events.rowcount or 0, 0) + max(sessions.rowcount or 0, 0)  # type: ignore[attr-defined]

    async def guests_on_browsers(self, browser_refs: list[str]) -> dict[str, str]:
        """For each browser that still has sessions or events, one guest they belong to."""
        if not browser_refs:
            return {}
        found: dict[str, str] = {}
        for model in (Session, Event):
            stmt = (
                select(model.browser_ref, model.guest_ref)
                .where(model.browser_ref.in_(browser_refs))
                .order_by(model.created_at.desc())
            )
            for browser_ref, guest_ref in (await self.session.execute(stmt)).all():
                if browser_ref is not None:
                    found.setdefault(browser_ref, guest_ref)
        return found

    async def closed_per_day(
        self, start: datetime, end: datetime, *, pos: str | None, channel: str | None
    ) -> list[tuple[str, str | None, int, float]]:
        """(UTC day ``YYYY-MM-DD``, cart type, sessions, abandoned revenue) per day, for tracked sessions.

        The sessions closed in [start, end) that :meth:`abandonment` counts, by the UTC day they ended on.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            day: Any = func.to_char(func.timezone("UTC", Session.ended_at), "YYYY-MM-DD")
        else:  # SQLite keeps UTC datetimes as ISO text
            day = func.strftime("%Y-%m-%d", Session.ended_at)
        stmt = (
            select(
                day.label("ended_day"),
                Session.cart_type,
                func.count(),
                func.coalesce(func.sum(Session.abandoned_revenue), 0.0),
            )
            .where(
                Session.status == "CLOSED",
                Session.origin.is_(None),
                Session.ended_at >= start,
                Session.ended_at < end,
            )
            .group_by(literal_column("ended_day"), Session.cart_type)
            .order_by(literal_column("ended_day"))
        )
        if pos:
            stmt = stmt.where(Session.point_of_sale == pos)
        if channel:
            stmt = stmt.where(Session.channel == channel)
        return [
            (str(found_day), cart_type, int(count), float(revenue or 0.0))
            for found_day, cart_type, count, revenue in (await self.session.execute(stmt)).all()
        ]

    async def event_of_guest(self, ref: str, guest_ref: str) -> Event | None:
        """The event ``ref`` when it is the guest's: its own (a merge moves the events to the surviving guest)
        or one in the guest's sessions (a session keeps the events sent before an identity switch), as the
        timeline shows them."""
        in_own_session = (
            select(Session.ref).where(Session.ref == Event.session_ref, Session.guest_ref == guest_ref).exists()
        )
        stmt = select(Event).where(Event.ref == ref, or_(Event.guest_ref == guest_ref, in_own_session))
        return (await self.session.execute(stmt)).scalar_one_or_none()


# What personalization reads of a guest's sessions and their events (the guest context of callFlows): plain
# rows of only the columns it uses, by statements built once (building a select and its cache key per call
# cost as much as running it; ORM objects cost more than both).
CONTEXT_SESSION_COLUMNS = (
    "ref",
    "browser_ref",
    "channel",
    "point_of_sale",
    "origin",
    "status",
    "close_reason",
    "started_at",
    "last_activity_at",
    "ended_at",
    "language",
    "currency_code",
    "cart",
    "cart_type",
    "abandoned_revenue",
    "value",
    "utm",
    "referrer",
    "device",
    "session_data",
)
_CONTEXT_SESSION_SELECT = select(*(_SESSIONS.c[name] for name in CONTEXT_SESSION_COLUMNS))
_CONTEXT_LATEST_OPEN = (
    _CONTEXT_SESSION_SELECT.where(_SESSIONS.c.browser_ref == bindparam("browser_ref"), _SESSIONS.c.status == OPEN)
    .order_by(*LATEST_ACTIVE_FIRST)
    .limit(1)
)
_SQLITE_CONTEXT_LATEST_OPEN = SqliteRead(_CONTEXT_LATEST_OPEN)
_SQLITE_INSERT_EVENT = SqliteInsert(_EVENTS)
_SQLITE_INSERT_EVENTS = SqliteWrite(_INSERT_EVENT)
_SQLITE_INSERT_SESSIONS = SqliteWrite(_INSERT_SESSION)
_SQLITE_OPEN_OF_BROWSERS = SqliteRead(_OPEN_OF_BROWSERS)
_SQLITE_WRITE_TOUCHED = SqliteWrite(_WRITE_TOUCHED)
CONTEXT_EVENT_COLUMNS = (
    "ref",
    "session_ref",
    "type",
    "channel",
    "point_of_sale",
    "created_at",
    "page",
    "language",
    "currency",
    "processing_status",
)
_CONTEXT_EVENTS = (
    select(*(_EVENTS.c[name] for name in CONTEXT_EVENT_COLUMNS))
    .where(_EVENTS.c.session_ref.in_(bindparam("refs", expanding=True)))
    .order_by(_EVENTS.c.created_at, _EVENTS.c.ref)
)
_CONTEXT_EVENTS_RAW = _CONTEXT_EVENTS.add_columns(_EVENTS.c.raw)
_CONTEXT_HEADS = SqliteRead(
    select(_SESSIONS.c.ref, _SESSIONS.c.status)
    .where(_SESSIONS.c.guest_ref == bindparam("guest_ref"))
    .order_by(_SESSIONS.c.started_at.desc(), _SESSIONS.c.ref)
    .limit(bindparam("limit"))
)
_CONTEXT_SESSIONS_BY_REF = SqliteRead(
    _CONTEXT_SESSION_SELECT.where(_SESSIONS.c.ref.in_(bindparam("refs", expanding=True)))
)
_CONTEXT_EVENTS_READ = SqliteRead(_CONTEXT_EVENTS)
_CONTEXT_EVENTS_RAW_READ = SqliteRead(_CONTEXT_EVENTS_RAW)
_OPEN_KEY_ROW = (
    select(_SESSIONS.c.ref, _SESSIONS.c.guest_ref, _SESSIONS.c.last_activity_at)
    .where(
        _SESSIONS.c.browser_ref == bindparam("browser_ref"),
        _SESSIONS.c.channel == bindparam("channel"),
        _SESSIONS.c.point_of_sale == bindparam("pos"),
        _SESSIONS.c.status == OPEN,
    )
    .with_for_update()
)
_SQLITE_OPEN_KEY_ROW = SqliteRead(_OPEN_KEY_ROW)


def iso_text(dialect: str, column: Any) -> Any:
    """SQL for a UTC datetime column as :func:`innkeeper.core.clock.iso` writes it
    (``2026-01-15T09:00:00.123Z``, milliseconds truncated); NULL stays NULL."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    # SQLAlchemy keeps SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text (always six digits).
    return func.replace(func.substr(type_coerce(column, Text), 1, 23, type_=Text), " ", "T", type_=Text) + "Z"
