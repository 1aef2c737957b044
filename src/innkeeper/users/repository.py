"""Every SQL statement of portal users."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.users.models import User, UserSession


class UserRepository:
    """Users and their sessions."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: User | UserSession) -> None:
        self.session.add(row)

    async def by_email(self, email: str) -> User | None:
        return (await self.session.execute(select(User).where(User.email == email))).scalar_one_or_none()

    async def get(self, ref: str) -> User | None:
        return await self.session.get(User, ref)

    async def user_session(self, token_hash: str) -> UserSession | None:
        return await self.session.get(UserSession, token_hash)

    async def remove(self, row: UserSession) -> None:
        await self.session.delete(row)

    async def all(self) -> list[User]:
        return list((await self.session.execute(select(User).order_by(User.email))).scalars())

    async def enabled_refs(self, role: str, *, lock: bool = False) -> list[str]:
        """Refs of the enabled users with this role; ``lock`` holds their rows (PostgreSQL) until commit."""
        query = select(User.ref).where(User.role == role, User.disabled_at.is_(None)).order_by(User.ref)
        if lock:
            # Two admins demoting each other at once: the second waits and then counts what the first left.
            query = query.with_for_update()
        return list((await self.session.execute(query)).scalars())

    async def remove_sessions(self, user_ref: str) -> None:
        """End every browser session of a user."""
        await self.session.execute(delete(UserSession).where(UserSession.user_ref == user_ref))
