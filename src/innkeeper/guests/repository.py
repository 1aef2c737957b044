"""Every SQL statement of the guests domain."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.guests.models import Browser, Guest, GuestIdentifier


class GuestRepository:
    """Guests, identifiers and browsers."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Guest | Browser | GuestIdentifier) -> None:
        self.session.add(row)

    async def get(self, ref: str, *, for_update: bool = False) -> Guest | None:
        stmt = select(Guest).where(Guest.ref == ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_browser(self, ref: str, *, for_update: bool = False) -> Browser | None:
        stmt = select(Browser).where(Browser.ref == ref)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def identifiers_of(self, guest_ref: str) -> list[GuestIdentifier]:
        stmt = select(GuestIdentifier).where(GuestIdentifier.guest_ref == guest_ref).order_by(GuestIdentifier.id)
        return list((await self.session.execute(stmt)).scalars())

    async def owners(self, keys: Iterable[tuple[str, str]]) -> list[GuestIdentifier]:
        keys = list(keys)
        if not keys:
            return []
        stmt = select(GuestIdentifier).where(tuple_(GuestIdentifier.provider, GuestIdentifier.value).in_(keys))
        return list((await self.session.execute(stmt)).scalars())

    async def guests(self, refs: Iterable[str]) -> list[Guest]:
        stmt = select(Guest).where(Guest.ref.in_(list(refs))).order_by(Guest.created_at, Guest.ref)
        return list((await self.session.execute(stmt)).scalars())

    async def move_browsers(self, from_guest: str, to_guest: str) -> None:
        await self.session.execute(update(Browser).where(Browser.guest_ref == from_guest).values(guest_ref=to_guest))

    async def move_identifiers(self, from_guest: str, to_guest: str) -> None:
        await self.session.execute(
            update(GuestIdentifier).where(GuestIdentifier.guest_ref == from_guest).values(guest_ref=to_guest)
        )

    async def browsers_of(self, guest_ref: str) -> list[Browser]:
        stmt = select(Browser).where(Browser.guest_ref == guest_ref).order_by(Browser.created_at)
        return list((await self.session.execute(stmt)).scalars())
