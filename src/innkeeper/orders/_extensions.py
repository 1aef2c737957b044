"""Order and order-item data extensions (spec §9.3): one flat ``ext`` object of primitives."""

from __future__ import annotations

import re
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import numbers
from innkeeper.core.clock import Clock
from innkeeper.core.ids import new_ref
from innkeeper.orders.errors import ExtensionExists, ExtensionNotFound, InvalidExtension
from innkeeper.orders.models import OrderExtension
from innkeeper.orders.repository import OrderRepository

OwnerType = Literal["order", "orderItem"]
EXTENSION_NAMES = frozenset({"ext"})
MAX_PAIRS = 100
MAX_STRING = 4000
_KEY = re.compile(r"^[A-Za-z0-9]{1,100}$")
# Keys of the representation that a pair may not shadow.
RESERVED = frozenset({"href", "ref", "name", "key", "createdAt", "modifiedAt", "order", "orderItem"})


def check_name(name: str) -> str:
    """The extension name, which must be ``ext``."""
    if name not in EXTENSION_NAMES:
        raise InvalidExtension("Invalid data extension", developer_message="name: must be ext")
    return name


def parse_body(body: Any, *, name: str | None) -> tuple[str, dict[str, Any]]:
    """The extension name and its validated pairs from a request body.

    ``name`` is the name in the path; a ``name`` in the body must then agree with it. A
    ``key`` in the body may only be ``default`` (v2 clients send it).
    """
    if not isinstance(body, dict):
        raise InvalidExtension("Invalid data extension", developer_message="body: must be a JSON object")
    pairs = dict(body)
    body_name = pairs.pop("name", None)
    if body_name is not None and (not isinstance(body_name, str) or (name is not None and body_name != name)):
        raise InvalidExtension("Invalid data extension", developer_message="name: must match the extension name")
    resolved = name if name is not None else body_name
    if not isinstance(resolved, str):
        raise InvalidExtension("Invalid data extension", developer_message="name: required")
    check_name(resolved)
    key = pairs.pop("key", "default")
    if key != "default":
        raise InvalidExtension("Invalid data extension", developer_message="key: must be default")
    check_pairs(pairs)
    return resolved, pairs


def check_pairs(pairs: dict[str, Any], *, total: int | None = None) -> None:
    """≤ 100 pairs, alphanumeric keys, primitive bounded values (spec §8.7)."""
    problems: list[str] = []
    for key, value in pairs.items():
        if not _KEY.match(key):
            problems.append(f"{key[:100]!r}: keys must be alphanumeric ([A-Za-z0-9], at most 100 characters)")
        elif key in RESERVED:
            problems.append(f"{key}: reserved field name")
        elif not _primitive(value):
            problems.append(f"{key}: values must be a string, number or boolean")
    count = len(pairs) if total is None else total
    if count > MAX_PAIRS:
        problems.insert(0, f"ext supports a maximum of {MAX_PAIRS} attributes")
    if problems:
        raise InvalidExtension("Invalid data extension", developer_message="; ".join(problems[:20]))


def _primitive(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, str):
        return len(value) <= MAX_STRING and "\x00" not in value
    if isinstance(value, int | float):
        return numbers.amount(value) is not None
    return False


async def get(session: AsyncSession, owner_type: OwnerType, owner_ref: str, name: str) -> OrderExtension:
    """One extension, or ExtensionNotFound."""
    row = await OrderRepository(session).extension(owner_type, owner_ref, check_name(name), for_update=True)
    if row is None:
        raise ExtensionNotFound(
            "The specified resource does not exist.",
            developer_message=f"Extension {name} of {owner_type} {owner_ref[:64]} was not found",
        )
    return row


async def list_all(session: AsyncSession, owner_type: OwnerType, owner_ref: str) -> list[OrderExtension]:
    """Every extension of the owner."""
    return await OrderRepository(session).extensions_of(owner_type, owner_ref)


async def create(
    session: AsyncSession,
    owner_type: OwnerType,
    owner_ref: str,
    *,
    order_ref: str,
    name: str,
    pairs: dict[str, Any],
    clock: Clock,
) -> OrderExtension:
    """Create the extension; ExtensionExists when the owner already has it."""
    repo = OrderRepository(session)
    if await repo.extension(owner_type, owner_ref, name) is not None:
        raise ExtensionExists(
            "The data extension already exists", developer_message=f"name: {name} already exists; use PUT or PATCH"
        )
    now = clock.now()
    row = OrderExtension(
        ref=new_ref(),
        owner_type=owner_type,
        owner_ref=owner_ref,
        order_ref=order_ref,
        name=name,
        key="default",
        data=pairs,
        created_at=now,
        modified_at=now,
    )
    repo.add(row)
    # The unique (owner_type, owner_ref, name) key settles a concurrent create: the loser's
    # transaction is retried and then sees the winner's row (409).
    await session.flush()
    return row


async def update(
    session: AsyncSession,
    owner_type: OwnerType,
    owner_ref: str,
    name: str,
    pairs: dict[str, Any],
    *,
    replace: bool,
    clock: Clock,
) -> OrderExtension:
    """Replace (PUT) or merge (PATCH) the pairs."""
    row = await get(session, owner_type, owner_ref, name)
    data = dict(pairs) if replace else {**(row.data or {}), **pairs}
    check_pairs(data)
    row.data = data
    row.modified_at = clock.now()
    await session.flush()
    return row


async def delete(session: AsyncSession, owner_type: OwnerType, owner_ref: str, name: str) -> OrderExtension:
    """Delete the extension."""
    row = await get(session, owner_type, owner_ref, name)
    await OrderRepository(session).delete_row(row)
    await session.flush()
    return row


async def delete_fields(
    session: AsyncSession, owner_type: OwnerType, owner_ref: str, name: str, keys: list[str] | None, *, clock: Clock
) -> OrderExtension:
    """Delete the listed keys (unknown ones are ignored); ``None`` empties the extension."""
    row = await get(session, owner_type, owner_ref, name)
    row.data = {} if keys is None else {k: v for k, v in (row.data or {}).items() if k not in set(keys)}
    row.modified_at = clock.now()
    await session.flush()
    return row
