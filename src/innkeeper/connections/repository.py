"""Every SQL statement of the outbox and the connections."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Integer, Select, String, Table, delete, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.connections.models import Connection, OutboxMessage


class OutboxRepository:
    """Outbox rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_once(
        self, *, topic: str, key: str, payload: dict[str, Any], now: datetime, guest_ref: str | None = None
    ) -> None:
        exists = await self.session.execute(select(OutboxMessage.id).where(OutboxMessage.idempotency_key == key))
        if exists.first() is not None:
            return
        self.session.add(
            OutboxMessage(
                topic=topic,
                idempotency_key=key,
                payload=payload,
                guest_ref=guest_ref,
                created_at=now,
                available_at=now,
                attempts=0,
            )
        )

    async def insert_selected_once(self, *, topic: str, rows: Select[Any], now: datetime) -> None:
        """Insert one message per row of ``rows``, a SELECT of ``(idempotency key, guest ref, payload)``,
        in one INSERT … SELECT; a key already written is skipped (``ON CONFLICT DO NOTHING``)."""
        table = cast(Table, OutboxMessage.__table__)
        selected = rows.add_columns(
            literal(topic, String()),
            literal(now, table.c.created_at.type),
            literal(now, table.c.available_at.type),
            literal(0, Integer()),
        )
        columns = ["idempotency_key", "guest_ref", "payload", "topic", "created_at", "available_at", "attempts"]
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
        stmt = insert.from_select(columns, selected).on_conflict_do_nothing(index_elements=["idempotency_key"])
        await self.session.execute(stmt)

    async def pending(self, topic: str | None) -> list[OutboxMessage]:
        stmt = select(OutboxMessage).where(OutboxMessage.delivered_at.is_(None)).order_by(OutboxMessage.id)
        if topic is not None:
            stmt = stmt.where(OutboxMessage.topic == topic)
        return list((await self.session.execute(stmt)).scalars())

    async def purge_guest(self, guest_ref: str) -> int:
        """Delete every message about a guest (delivered or not)."""
        result = await self.session.execute(delete(OutboxMessage).where(OutboxMessage.guest_ref == guest_ref))
        return max(result.rowcount or 0, 0)  # type: ignore[attr-defined]


class ConnectionRepository:
    """Connection rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, ref: str) -> Connection | None:
        return await self.session.get(Connection, ref)

    async def by_name(self, name: str) -> Connection | None:
        result = await self.session.execute(select(Connection).where(Connection.name == name))
        return result.scalars().first()

    async def page(self, *, offset: int, limit: int, include_archived: bool) -> tuple[list[Connection], int]:
        stmt = select(Connection)
        count = select(func.count()).select_from(Connection)
        if not include_archived:
            stmt = stmt.where(Connection.archived.is_(False))
            count = count.where(Connection.archived.is_(False))
        stmt = stmt.order_by(Connection.created_at.desc(), Connection.ref).offset(offset).limit(limit)
        rows = list((await self.session.execute(stmt)).scalars())
        total = (await self.session.execute(count)).scalar_one()
        return rows, total

    def add(self, connection: Connection) -> None:
        self.session.add(connection)
