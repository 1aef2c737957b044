"""Every SQL statement of portal users."""

from __future__ import annotations

from sqlalchemy import select
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
