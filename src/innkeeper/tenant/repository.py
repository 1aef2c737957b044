"""Every SQL statement of the tenant domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.sqlite_fast import SqliteRead
from innkeeper.tenant.models import ApiToken, PointOfSale, Tenant

_POS_BY_NAME = select(PointOfSale).where(PointOfSale.name == bindparam("name"))  # per event: built once
# What identity resolution needs of the tenant, without loading the ORM object (the batched ingest path).
_IDENTITY_SETTINGS = SqliteRead(select(Tenant.identity_rules, Tenant.email_fallback).where(Tenant.id == 1))
# What sessionization needs of a point of sale, without loading the ORM object (the batched ingest path).
_POS_SETTINGS = SqliteRead(
    select(PointOfSale.name, PointOfSale.timeout_minutes, PointOfSale.language, PointOfSale.currency_code).where(
        PointOfSale.name == bindparam("name")
    )
)


class TenantRepository:
    """Tenant row, API tokens and points of sale."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_tenant(self) -> Tenant | None:
        return (await self.session.execute(select(Tenant).where(Tenant.id == 1))).scalar_one_or_none()

    def add(self, row: Tenant | ApiToken | PointOfSale) -> None:
        self.session.add(row)

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        stmt = select(ApiToken).where(ApiToken.token_hash == token_hash)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def touch_token(self, token_id: str, when: datetime) -> None:
        await self.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=when))

    async def list_tokens(self) -> list[ApiToken]:
        stmt = select(ApiToken).where(ApiToken.revoked_at.is_(None)).order_by(ApiToken.created_at)
        return list((await self.session.execute(stmt)).scalars())

    async def get_token(self, token_id: str) -> ApiToken | None:
        return await self.session.get(ApiToken, token_id)

    async def pos_by_name(self, name: str) -> PointOfSale | None:
        return (await self.session.execute(_POS_BY_NAME, {"name": name})).scalar_one_or_none()

    async def identity_settings(self) -> tuple[list[dict[str, Any]], bool] | None:
        """(identity rules, email fallback) of the tenant."""
        rows = await _IDENTITY_SETTINGS.rows(self.session, {})
        return (list(rows[0][0] or []), bool(rows[0][1])) if rows else None

    async def pos_settings(self, name: str) -> tuple[str, int, str | None, str | None] | None:
        """(name, timeout in minutes, language, currency code) of the named point of sale."""
        rows = await _POS_SETTINGS.rows(self.session, {"name": name})
        return (rows[0][0], rows[0][1], rows[0][2], rows[0][3]) if rows else None

    async def pos_by_site(self, site: str) -> PointOfSale | None:
        stmt = (
            select(PointOfSale)
            .where(or_(PointOfSale.name == site, PointOfSale.site_name == site))
            .order_by(PointOfSale.name != site, PointOfSale.id)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_pos(self) -> list[PointOfSale]:
        return list((await self.session.execute(select(PointOfSale).order_by(PointOfSale.name))).scalars())

    async def delete_pos(self, name: str) -> int:
        result = await self.session.execute(delete(PointOfSale).where(PointOfSale.name == name))
        return int(result.rowcount)  # type: ignore[attr-defined]
