"""Guest data extensions (spec §8.7): ``ext``, ``ext1`` … ``ext5``, flat primitive key-value pairs.

Limits are checked here, at the edge of storage: at most 6 extensions per guest, 100 pairs per
extension, alphanumeric keys unique across the guest's extensions, primitive values only.
Every write locks the guest row, so two requests cannot both take the same key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import Clock
from innkeeper.core.ids import new_ref
from innkeeper.guests.errors import ExtensionExists, ExtensionNotFound, InvalidExtension
from innkeeper.guests.models import GuestExtension
from innkeeper.guests.repository import GuestExtensionRepository
from innkeeper.guests.rest import live_guest

NAMES = ("ext", "ext1", "ext2", "ext3", "ext4", "ext5")
MAX_EXTENSIONS = len(NAMES)
MAX_PAIRS = 100
MAX_KEY_LENGTH = 100
MAX_STRING_LENGTH = 10_000
KEY = re.compile(r"^[A-Za-z0-9]+$")
# Keys the representation uses for its own fields.
RESERVED = frozenset({"href", "ref", "name", "key", "createdAt", "modifiedAt", "guest"})
DEFAULT_KEY = "default"
_INT64 = 2**63


async def create(
    session: AsyncSession, guest_ref: str, name: str, pairs: dict[str, Any], *, key: str | None, clock: Clock
) -> GuestExtension:
    """Add an extension to a live guest; a name already in use is a conflict."""
    if name not in NAMES:
        raise InvalidExtension("The request is invalid.", developer_message=f"name: must be one of {', '.join(NAMES)}")
    _check_key(key)
    _check_pairs(pairs)
    guest = await live_guest(session, guest_ref, for_update=True)
    repo = GuestExtensionRepository(session)
    existing = await repo.of_guests([guest.ref])
    if any(e.name == name for e in existing):
        raise ExtensionExists(
            "The request conflicts with the current state of the resource.",
            developer_message=f"name: the guest already has an extension named {name}",
        )
    if len(existing) >= MAX_EXTENSIONS:
        raise InvalidExtension(
            "The request is invalid.", developer_message=f"a guest has at most {MAX_EXTENSIONS} extensions"
        )
    _check_unique(pairs, existing, name=name)
    now = clock.now()
    row = GuestExtension(
        ref=new_ref(),
        guest_ref=guest.ref,
        name=name,
        key=DEFAULT_KEY,
        data=dict(pairs),
        created_at=now,
        modified_at=now,
    )
    repo.add(row)
    await session.flush()
    return row


async def get(session: AsyncSession, guest_ref: str, name: str, *, ref: str | None = None) -> GuestExtension:
    """One extension of a live guest; with ``ref`` (legacy v2 addressing) it must also have that ref."""
    guest = await live_guest(session, guest_ref)
    return await _existing(GuestExtensionRepository(session), guest.ref, name, ref=ref)


async def page(
    session: AsyncSession, guest_ref: str, *, offset: int, limit: int, name: str | None = None
) -> list[GuestExtension]:
    """A page of a live guest's extensions, by name; ``name`` keeps only that one (legacy v2)."""
    guest = await live_guest(session, guest_ref)
    return await GuestExtensionRepository(session).page(guest.ref, offset=offset, limit=limit, name=name)


async def replace(
    session: AsyncSession,
    guest_ref: str,
    name: str,
    pairs: dict[str, Any],
    *,
    key: str | None,
    clock: Clock,
    ref: str | None = None,
) -> GuestExtension:
    """PUT: the extension holds exactly ``pairs`` afterwards (``ref``: see :func:`get`)."""
    _check_key(key)
    _check_pairs(pairs)
    return await _write(session, guest_ref, name, lambda _old: dict(pairs), clock=clock, ref=ref)


async def merge(
    session: AsyncSession, guest_ref: str, name: str, pairs: dict[str, Any], *, key: str | None, clock: Clock
) -> GuestExtension:
    """PATCH: ``pairs`` are added or overwritten, other pairs stay."""
    _check_key(key)
    _check_pairs(pairs)
    return await _write(session, guest_ref, name, lambda old: {**old, **pairs}, clock=clock)


async def delete(session: AsyncSession, guest_ref: str, name: str, *, ref: str | None = None) -> GuestExtension:
    """Delete the extension; returns the deleted row (for its href and ref). ``ref``: see :func:`get`."""
    guest = await live_guest(session, guest_ref, for_update=True)
    repo = GuestExtensionRepository(session)
    row = await _existing(repo, guest.ref, name, ref=ref)
    await repo.remove(row)
    await session.flush()
    return row


async def delete_fields(
    session: AsyncSession, guest_ref: str, name: str, keys: list[str] | None, *, clock: Clock
) -> GuestExtension:
    """Remove the listed keys (unknown ones are ignored); ``None`` empties the extension but keeps it."""
    drop = None if keys is None else set(keys)
    return await _write(
        session,
        guest_ref,
        name,
        lambda old: {} if drop is None else {k: v for k, v in old.items() if k not in drop},
        clock=clock,
    )


async def _write(
    session: AsyncSession,
    guest_ref: str,
    name: str,
    change: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    clock: Clock,
    ref: str | None = None,
) -> GuestExtension:
    guest = await live_guest(session, guest_ref, for_update=True)
    repo = GuestExtensionRepository(session)
    row = await _existing(repo, guest.ref, name, ref=ref)
    data: dict[str, Any] = change(dict(row.data or {}))
    if len(data) > MAX_PAIRS:
        raise InvalidExtension(
            "The request is invalid.", developer_message=f"an extension holds at most {MAX_PAIRS} key-value pairs"
        )
    _check_unique(data, await repo.of_guests([guest.ref]), name=name)
    row.data = data
    row.modified_at = clock.now()
    await session.flush()
    return row


async def _existing(
    repo: GuestExtensionRepository, guest_ref: str, name: str, *, ref: str | None = None
) -> GuestExtension:
    row = await repo.get(guest_ref, name) if name in NAMES else None
    if row is None:
        raise ExtensionNotFound(
            "The specified resource does not exist.",
            developer_message=f"Guest {guest_ref} has no data extension named {name[:20]}",
        )
    if ref is not None and ref.lower() != row.ref:
        raise ExtensionNotFound(
            "The specified resource does not exist.",
            developer_message=f"Guest {guest_ref} has no data extension {name} with ref {ref[:64]}",
        )
    return row


def _check_key(key: str | None) -> None:
    if key is not None and key != DEFAULT_KEY:
        raise InvalidExtension("The request is invalid.", developer_message='key: must be "default"')


def _check_pairs(pairs: dict[str, Any]) -> None:
    """Flat, primitive, alphanumeric-keyed, at most 100 pairs; every problem is listed."""
    problems: list[str] = []
    if len(pairs) > MAX_PAIRS:
        problems.append(f"an extension holds at most {MAX_PAIRS} key-value pairs")
    for key, value in pairs.items():
        label = key[:MAX_KEY_LENGTH]
        if len(key) > MAX_KEY_LENGTH or not KEY.match(key):
            problems.append(f"{label}: keys must be 1 to {MAX_KEY_LENGTH} letters or digits")
        elif key in RESERVED:
            problems.append(f"{label}: reserved key")
        elif not _primitive(value):
            problems.append(f"{label}: values must be a string, number or boolean")
        if len(problems) >= 20:
            break
    if problems:
        raise InvalidExtension("The request is invalid.", developer_message="; ".join(problems))


def _primitive(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_INT64 <= value < _INT64
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH or "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    return False


def _check_unique(pairs: dict[str, Any], extensions: list[GuestExtension], *, name: str) -> None:
    """Keys must be unique across the guest's extensions (spec §8.7)."""
    clashes = [
        f"{key}: already used by extension {other.name}"
        for other in extensions
        if other.name != name
        for key in pairs
        if key in (other.data or {})
    ]
    if clashes:
        raise InvalidExtension("The request is invalid.", developer_message="; ".join(clashes[:20]))
