"""The connections domain's surface: the outbox, connection records, delivery and "test connection"."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.connections import _records
from innkeeper.connections._delivery import (
    CheckReport,
    Outbound,
    RenderedRequest,
    Target,
    check_connection,
    deliver,
    load_target,
    send,
)
from innkeeper.connections.errors import ConnectionConflict, ConnectionInvalid, ConnectionNotFound
from innkeeper.connections.models import Connection
from innkeeper.connections.repository import ConnectionRepository, OutboxRepository
from innkeeper.connections.secrets import SecretBox, secret_box
from innkeeper.connections.senders import DeliveryResult
from innkeeper.core.clock import Clock
from innkeeper.core.ids import is_ref, new_ref

__all__ = [
    "CheckReport",
    "DeliveryResult",
    "Outbound",
    "RenderedRequest",
    "SecretBox",
    "Target",
    "check_connection",
    "connection_exists",
    "create_connection",
    "deliver",
    "enqueue",
    "enqueue_selected",
    "get_connection",
    "kind_of",
    "list_connections",
    "load_target",
    "masked_config",
    "pending",
    "purge_guest",
    "secret_box",
    "send",
    "update_connection",
]


async def enqueue(
    session: AsyncSession,
    topic: str,
    *,
    key: str,
    payload: dict[str, Any],
    clock: Clock,
    guest_ref: str | None = None,
) -> None:
    """Write an outbox message; the same ``key`` is only ever written once.

    ``guest_ref`` names the guest the message is about, so deleting that guest purges it.
    """
    await OutboxRepository(session).insert_once(
        topic=topic, key=key, payload=payload, now=clock.now(), guest_ref=guest_ref
    )


async def enqueue_selected(session: AsyncSession, topic: str, rows: Select[Any], *, clock: Clock) -> None:
    """:func:`enqueue` for every row of ``rows``, a SELECT of ``(key, guest_ref, payload)`` built by the
    calling domain over its own tables: the messages are written by the database in one statement."""
    await OutboxRepository(session).insert_selected_once(topic=topic, rows=rows, now=clock.now())


async def pending(session: AsyncSession, *, topic: str | None = None) -> list[dict[str, Any]]:
    """Undelivered messages, oldest first (for workers and inspection)."""
    rows = await OutboxRepository(session).pending(topic)
    return [
        {"id": r.id, "topic": r.topic, "key": r.idempotency_key, "payload": r.payload, "attempts": r.attempts}
        for r in rows
    ]


async def purge_guest(session: AsyncSession, guest_ref: str) -> int:
    """Delete every outbox message about a guest (guest deletion); returns rows deleted."""
    return await OutboxRepository(session).purge_guest(guest_ref)


# --- connections ----------------------------------------------------------------------------


async def create_connection(
    session: AsyncSession,
    document: dict[str, Any],
    *,
    secrets: SecretBox,
    actor_ref: str | None,
    clock: Clock,
) -> Connection:
    """Create a connection from its resource document (secrets are encrypted before they are stored)."""
    config, values, problems = _records.split(document, None)
    problems += _records.check(document["kind"], config, values)
    if problems:
        raise ConnectionInvalid(problems)
    repo = ConnectionRepository(session)
    if await repo.by_name(document["name"]) is not None:
        raise ConnectionConflict("Conflict", developer_message="name: a connection with this name exists")
    now = clock.now()
    row = Connection(
        ref=new_ref(),
        name=document["name"],
        description=document.get("description"),
        icon=document.get("icon"),
        system_type=document.get("systemType") or "DESTINATION",
        kind=document["kind"],
        config=config,
        secrets=secrets.seal(values),
        revision=1,
        archived=bool(document.get("archived")),
        created_at=now,
        modified_at=now,
        modified_by_ref=actor_ref,
    )
    repo.add(row)
    await session.flush()
    return row


async def update_connection(
    session: AsyncSession,
    ref: str,
    document: dict[str, Any],
    *,
    secrets: SecretBox,
    actor_ref: str | None,
    clock: Clock,
) -> Connection:
    """Replace a connection's fields (revision + 1); a secret sent as ``"********"`` keeps its stored value."""
    repo = ConnectionRepository(session)
    row = await get_connection(session, ref)
    expected = document.get("revision")
    if expected is not None and expected != row.revision:
        raise ConnectionConflict(
            "Conflict", developer_message=f"revision: the connection is at revision {row.revision}, not {expected}"
        )
    if document["kind"] != row.kind:
        raise ConnectionConflict("Conflict", developer_message=f"kind: a {row.kind} connection cannot change kind")
    cache: list[dict[str, str]] = []

    def stored() -> dict[str, str]:
        if not cache:
            cache.append(secrets.open(row.secrets))
        return cache[0]

    config, values, problems = _records.split(document, stored)
    problems += _records.check(row.kind, config, values)
    if problems:
        raise ConnectionInvalid(problems)
    if document["name"] != row.name and await repo.by_name(document["name"]) is not None:
        raise ConnectionConflict("Conflict", developer_message="name: a connection with this name exists")
    row.name = document["name"]
    row.description = document.get("description")
    row.icon = document.get("icon")
    row.system_type = document.get("systemType") or "DESTINATION"
    row.config = config
    row.secrets = secrets.seal(values)
    row.archived = bool(document.get("archived"))
    row.revision += 1
    row.modified_at = clock.now()
    row.modified_by_ref = actor_ref
    await session.flush()
    return row


async def get_connection(session: AsyncSession, ref: str) -> Connection:
    """One connection by ref."""
    row = await ConnectionRepository(session).get(ref) if is_ref(ref) else None
    if row is None:
        raise ConnectionNotFound("Not Found", developer_message=f"no connection with ref {ref[:64]!r}")
    return row


async def list_connections(
    session: AsyncSession, *, offset: int, limit: int, include_archived: bool = False
) -> tuple[list[Connection], int]:
    """A page of connections, newest first, and the total."""
    return await ConnectionRepository(session).page(offset=offset, limit=limit, include_archived=include_archived)


def masked_config(row: Connection) -> dict[str, Any]:
    """The connection's stored fields with every set secret shown as ``"********"``."""
    return _records.masked(row.config)


async def connection_exists(session: AsyncSession, ref: str) -> bool:
    """A live (not archived) connection with this ref exists."""
    row = await ConnectionRepository(session).get(ref) if is_ref(ref) else None
    return row is not None and not row.archived


async def kind_of(session: AsyncSession, ref: str) -> str | None:
    """``SMTP_EMAIL`` / ``WEBHOOK`` of a connection, None when unknown."""
    row = await ConnectionRepository(session).get(ref) if is_ref(ref) else None
    return row.kind if row is not None else None
