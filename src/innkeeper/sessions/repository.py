"""Every SQL statement of the sessions domain."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.sessions.models import Event, Session


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

    async def open_for_key(self, browser_ref: str, channel: str, pos: str) -> Session | None:
        stmt = (
            select(Session)
            .where(
                Session.browser_ref == browser_ref,
                Session.channel == channel,
                Session.point_of_sale == pos,
                Session.status == "OPEN",
            )
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def open_for_browser(self, browser_ref: str) -> list[Session]:
        stmt = (
            select(Session)
            .where(Session.browser_ref == browser_ref, Session.status == "OPEN")
            .order_by(Session.last_activity_at.desc())
            .with_for_update()
        )
        return list((await self.session.execute(stmt)).scalars())

    async def has_open(self, guest_ref: str) -> bool:
        stmt = select(Session.ref).where(Session.guest_ref == guest_ref, Session.status == "OPEN").limit(1)
        return (await self.session.execute(stmt)).first() is not None

    async def latest_open_for_browser(self, browser_ref: str) -> Session | None:
        stmt = (
            select(Session)
            .where(Session.browser_ref == browser_ref, Session.status == "OPEN")
            .order_by(Session.last_activity_at.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def expired(self, now: datetime, limit: int) -> list[Session]:
        stmt = (
            select(Session)
            .where(Session.status == "OPEN", Session.expires_at < now)
            .order_by(Session.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

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
            select(Session).where(Session.point_of_sale == pos, Session.status == "OPEN").with_for_update()
        )
        for row in rows.scalars():
            row.expires_at = row.last_activity_at + idle

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
