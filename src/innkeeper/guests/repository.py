"""Every SQL statement of the guests domain."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import among
from innkeeper.core.sqlite_fast import SqliteRead, SqliteWrite, sqlite_connection, sqlite_execute
from innkeeper.guests.models import Browser, Guest, GuestExtension, GuestIdentifier

# Every event reads its browser (and a new session its guest): these statements are built once (building one
# and computing its cache key per call cost about as much as running it).
_GUEST = select(Guest).where(Guest.ref == bindparam("ref"))
_GUEST_FOR_UPDATE = _GUEST.with_for_update()
_BROWSER = select(Browser).where(Browser.ref == bindparam("ref"))
_BROWSER_FOR_UPDATE = _BROWSER.with_for_update()
_GUESTS = cast(Table, Guest.__table__)
_BROWSERS = cast(Table, Browser.__table__)
_SEEN_AT = bindparam("b_when", type_=_GUESTS.c.last_seen.type)
# A session opened: its guest and browser were seen (the batched form of service.seen).
_GUEST_SEEN = (
    update(_GUESTS)
    .where(_GUESTS.c.ref == bindparam("b_ref"))
    .values(last_seen=_SEEN_AT, first_seen=func.coalesce(_GUESTS.c.first_seen, _SEEN_AT))
)
_BROWSER_SEEN = update(_BROWSERS).where(_BROWSERS.c.ref == bindparam("b_ref")).values(last_seen=_SEEN_AT)


@dataclass(slots=True)
class IdentityGuest:
    """A guest as the batched IDENTITY path reads and writes it: the fields :func:`identify` may change."""

    ref: str
    guest_type: str
    deleted_at: datetime | None
    email: str | None
    emails: list[str]
    phone_numbers: list[str]
    street: list[str]
    title: str | None
    first_name: str | None
    last_name: str | None
    gender: str | None
    date_of_birth: str | None
    city: str | None
    state: str | None
    post_code: str | None
    country: str | None
    modified_at: datetime


# The batched IDENTITY path: its guests' identity fields, locked; and the fields it writes back.
_IDENTITY_READ = tuple(field.name for field in fields(IdentityGuest))
_IDENTITY_WRITTEN = tuple(name for name in _IDENTITY_READ if name not in ("ref", "deleted_at"))
_IDENTITY_GUESTS_FOR_UPDATE = (
    select(*(_GUESTS.c[name] for name in _IDENTITY_READ))
    .where(_GUESTS.c.ref.in_(bindparam("refs", expanding=True)))
    .order_by(_GUESTS.c.ref)
    .with_for_update()
)
_WRITE_IDENTITY_GUEST = (
    update(_GUESTS)
    .where(_GUESTS.c.ref == bindparam("b_ref"))
    .values({name: bindparam(f"b_{name}") for name in _IDENTITY_WRITTEN})
)
# A group-commit batch's browsers, locked together in ref order (two processes never lock them crosswise).
_LIVE_BROWSERS_FOR_UPDATE = (
    select(Browser.ref, Browser.guest_ref)
    .where(Browser.ref.in_(bindparam("refs", expanding=True)), Browser.deleted_at.is_(None))
    .order_by(Browser.ref)
    .with_for_update()
)


def _email_matches(email: str) -> ColumnElement[bool]:
    """The primary email equals ``email`` ignoring case: exactly the expression of ix_guests_email_lower, the only
    index on email (migration 0014)."""
    return func.lower(Guest.email) == email.lower()


def _email_exactly(email: str) -> ColumnElement[bool]:
    """``email = :email``, led by :func:`_email_matches` so that the index serves it: the exact comparison then
    filters the few rows the index finds. It compares ``coalesce(email, '')``, not the bare column: SQLite would
    otherwise propagate the constant into ``lower(email)`` (``lower(:email) = :email``) and lose the index."""
    return and_(_email_matches(email), func.coalesce(Guest.email, "") == email)


class GuestRepository:
    """Guests, identifiers and browsers."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: Guest | Browser | GuestIdentifier) -> None:
        self.session.add(row)

    async def get(self, ref: str, *, for_update: bool = False) -> Guest | None:
        stmt = _GUEST_FOR_UPDATE if for_update else _GUEST
        return (await self.session.execute(stmt, {"ref": ref})).scalar_one_or_none()

    async def get_browser(self, ref: str, *, for_update: bool = False) -> Browser | None:
        stmt = _BROWSER_FOR_UPDATE if for_update else _BROWSER
        return (await self.session.execute(stmt, {"ref": ref})).scalar_one_or_none()

    async def mark_seen(self, guests: list[tuple[str, datetime]], browsers: list[tuple[str, datetime]]) -> None:
        """Set ``last_seen`` (and a missing ``first_seen``) of these guests and browsers, one executemany each."""
        await _SQLITE_GUEST_SEEN.execute_many(self.session, [{"b_ref": ref, "b_when": when} for ref, when in guests])
        await _SQLITE_BROWSER_SEEN.execute_many(
            self.session, [{"b_ref": ref, "b_when": when} for ref, when in browsers]
        )

    async def identity_guests(self, refs: list[str]) -> list[IdentityGuest]:
        """These guests' identity fields (the batched IDENTITY path), locked in ref order."""
        if not refs:
            return []
        rows = await _SQLITE_IDENTITY_GUESTS.rows(self.session, {"refs": refs})
        return [IdentityGuest(*row) for row in rows]

    async def identifier_owners(self, keys: list[tuple[str, str]]) -> list[tuple[tuple[str, str], str]]:
        """``((provider, value), guest ref)`` of the identifiers among ``keys`` that exist."""
        found: list[tuple[tuple[str, str], str]] = []
        connection = await sqlite_connection(self.session)
        if connection is not None:
            for at in range(0, len(keys), 100):
                chunk = keys[at : at + 100]
                values = [part for key in chunk for part in key]
                rows = sqlite_execute(connection[0], _sqlite_owners_sql(len(chunk)), values).fetchall()
                found.extend(((provider, value), guest) for provider, value, guest in rows)
            return found
        for at in range(0, len(keys), 500):
            stmt = select(GuestIdentifier.provider, GuestIdentifier.value, GuestIdentifier.guest_ref).where(
                tuple_(GuestIdentifier.provider, GuestIdentifier.value).in_(keys[at : at + 500])
            )
            found.extend(((provider, value), guest) for provider, value, guest in (await self.session.execute(stmt)))
        return found

    async def write_identity_guests(self, rows: list[IdentityGuest]) -> None:
        """Store the identity fields of these guests (IdentityGuest rows), one executemany."""
        if rows:
            params = [{f"b_{name}": getattr(row, name) for name in ("ref", *_IDENTITY_WRITTEN)} for row in rows]
            await _SQLITE_WRITE_IDENTITY_GUEST.execute_many(self.session, params)

    async def insert_identifiers(self, rows: list[dict[str, Any]]) -> None:
        """New identifier rows in one multi-row INSERT."""
        await _SQLITE_INSERT_IDENTIFIERS.execute_many(self.session, rows)

    async def lock_live_browsers(self, refs: list[str]) -> dict[str, str]:
        """Lock these browsers (in ref order) and return ``ref → guest ref`` of the live ones among them."""
        rows = await _SQLITE_LIVE_BROWSERS.rows(self.session, {"refs": refs})
        return {ref: guest_ref for ref, guest_ref in rows}

    async def identifiers_of(self, guest_ref: str) -> list[GuestIdentifier]:
        stmt = select(GuestIdentifier).where(GuestIdentifier.guest_ref == guest_ref).order_by(GuestIdentifier.id)
        return list((await self.session.execute(stmt)).scalars())

    async def owners(self, keys: Iterable[tuple[str, str]]) -> list[GuestIdentifier]:
        """The identifier rows of these ``(provider, value)`` pairs (by the unique index on both stores)."""
        return await identifier_rows(self.session, keys)

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

    # --- Guest REST API (spec §8) ------------------------------------------------------------

    async def get_live(self, ref: str, *, for_update: bool = False) -> Guest | None:
        """The guest unless it is unknown, retired or deleted."""
        stmt = select(Guest).where(Guest.ref == ref, Guest.deleted_at.is_(None), Guest.guest_type != "retired")
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def live_guest_of_browser(self, browser_ref: str) -> tuple[Guest, str] | None:
        """The live guest of a browser that is not deleted, and the browser's ref: one query (callFlows)."""
        row = (await self.session.execute(_LIVE_GUEST_OF_BROWSER, {"ref": browser_ref})).first()
        return (row[0], row[1]) if row is not None else None

    async def live_profile_of_browser(self, browser_ref: str) -> tuple[GuestProfile, str] | None:
        """:meth:`live_guest_of_browser` as a :class:`GuestProfile` (no ORM object): one plain read (callFlows)."""
        rows = await _SQLITE_LIVE_PROFILE.rows(self.session, {"ref": browser_ref})
        if not rows:
            return None
        *values, ref = rows[0]
        return GuestProfile(*values), ref

    async def identifier_pairs(self, guest_ref: str) -> list[tuple[str, str]]:
        """The guest's ``(provider, value)`` identifiers in the order :meth:`identifiers_of` gives them."""
        rows = await _SQLITE_IDENTIFIER_PAIRS.rows(self.session, {"guest_ref": guest_ref})
        return [(provider, value) for provider, value in rows]

    async def extension_rows(self, guest_ref: str) -> list[Sequence[Any]]:
        """Plain ``(name, key, data)`` rows of the guest's data extensions, in name order."""
        return await _SQLITE_EXTENSION_ROWS.rows(self.session, {"guest_ref": guest_ref})

    async def search(self, query: GuestQuery, *, offset: int, limit: int) -> list[Guest]:
        """Live guests matching every given filter, newest (or oldest) first."""
        stmt = self._search(select(Guest), query).offset(offset).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def search_refs(self, query: GuestQuery, *, offset: int, limit: int) -> list[str]:
        """The refs of the guests :meth:`search` finds, in its order (the unexpanded search shows only refs:
        no ORM objects)."""
        stmt = self._search(select(Guest.ref), query).offset(offset).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    def _search(self, stmt: Select[Any], query: GuestQuery) -> Select[Any]:
        stmt = stmt.where(Guest.deleted_at.is_(None), Guest.guest_type != "retired")
        for column, value in ((Guest.first_name, query.first_name), (Guest.last_name, query.last_name)):
            if value is not None:
                stmt = stmt.where(func.lower(column) == value.lower())
        if query.email is not None:
            stmt = stmt.where(_email_matches(query.email))
        if query.email_exact is not None:
            stmt = stmt.where(_email_exactly(query.email_exact))
        if query.phone is not None:
            stmt = stmt.where(self._phone_matches(query.phone))
        if query.identifier is not None:
            provider, value = query.identifier
            owners = select(GuestIdentifier.guest_ref).where(
                GuestIdentifier.provider == provider, GuestIdentifier.value == value
            )
            stmt = stmt.where(Guest.ref.in_(owners))
        if query.newest_first:
            return stmt.order_by(Guest.created_at.desc(), Guest.ref.desc())
        return stmt.order_by(Guest.created_at, Guest.ref)

    def _phone_matches(self, phone: str) -> ColumnElement[bool]:
        # phone_numbers is a JSON array: JSONB containment on PostgreSQL, json_each on SQLite.
        if self.session.get_bind().dialect.name == "postgresql":
            return func.jsonb_exists(Guest.phone_numbers, phone)
        each = func.json_each(Guest.phone_numbers).table_valued("value")
        return exists(select(1).select_from(each).where(each.c.value == phone))

    async def live_by_email(self, email: str) -> Guest | None:
        """The most recently seen live guest having ``email`` (case-insensitive) as primary email."""
        stmt = (
            select(Guest)
            .where(_email_matches(email), Guest.deleted_at.is_(None), Guest.guest_type != "retired")
            .order_by(Guest.last_seen.desc(), Guest.created_at.desc(), Guest.ref)
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def live_of_type(self, refs: list[str], guest_type: str) -> set[str]:
        """The refs among ``refs`` of live guests of ``guest_type``."""
        found: set[str] = set()
        for at in range(0, len(refs), 500):
            stmt = select(Guest.ref).where(
                Guest.ref.in_(refs[at : at + 500]), Guest.deleted_at.is_(None), Guest.guest_type == guest_type
            )
            found.update((await self.session.execute(stmt)).scalars())
        return found

    async def live_by_identifier(self, provider: str, value: str) -> Guest | None:
        owner = select(GuestIdentifier.guest_ref).where(
            GuestIdentifier.provider == provider, GuestIdentifier.value == value
        )
        stmt = select(Guest).where(Guest.ref.in_(owner), Guest.deleted_at.is_(None), Guest.guest_type != "retired")
        return (await self.session.execute(stmt.limit(1))).scalar_one_or_none()

    async def find_text(self, text: str, *, limit: int) -> list[Guest]:
        """Portal search: a guest or browser ref, an email, or a first/last name (case-insensitive)."""
        live = (Guest.deleted_at.is_(None), Guest.guest_type != "retired")
        value = text.strip()
        if len(value) == 36 and value.count("-") == 4:
            by_browser = select(Browser.guest_ref).where(Browser.ref == value)
            stmt = select(Guest).where(*live, (Guest.ref == value) | Guest.ref.in_(by_browser))
        elif "@" in value:
            stmt = select(Guest).where(*live, _email_matches(value))
        else:
            lowered = value.lower()
            stmt = select(Guest).where(
                *live, (func.lower(Guest.first_name) == lowered) | (func.lower(Guest.last_name) == lowered)
            )
        stmt = stmt.order_by(Guest.last_seen.desc(), Guest.created_at.desc(), Guest.ref).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def recent(self, *, limit: int) -> list[Guest]:
        stmt = (
            select(Guest)
            .where(Guest.deleted_at.is_(None), Guest.guest_type != "retired")
            .order_by(Guest.last_seen.desc(), Guest.created_at.desc(), Guest.ref)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def identifiers_of_many(self, guest_refs: list[str]) -> list[GuestIdentifier]:
        """Identifiers of several guests, in insertion order."""
        if not guest_refs:
            return []
        stmt = select(GuestIdentifier).where(GuestIdentifier.guest_ref.in_(guest_refs)).order_by(GuestIdentifier.id)
        return list((await self.session.execute(stmt)).scalars())

    async def remove_identifier(self, row: GuestIdentifier) -> None:
        """Delete one identifier row."""
        await self.session.delete(row)

    # --- guest deletion (spec §8.5) -------------------------------------------------------

    async def hide_guest(self, guest_ref: str, now: datetime) -> None:
        """Mark the guest's browsers deleted and drop its identifiers at once."""
        await self.session.execute(
            update(Browser).where(Browser.guest_ref == guest_ref, Browser.deleted_at.is_(None)).values(deleted_at=now)
        )
        await self.session.execute(delete(GuestIdentifier).where(GuestIdentifier.guest_ref == guest_ref))

    async def merged_into(self, refs: list[str]) -> list[str]:
        """Refs of the (retired) guests merged into any of ``refs``."""
        if not refs:
            return []
        stmt = select(Guest.ref).where(Guest.merged_into.in_(refs)).order_by(Guest.ref)
        return list((await self.session.execute(stmt)).scalars())

    async def browser_refs_of(self, guest_refs: list[str]) -> list[str]:
        """Refs of the browsers of any of ``guest_refs``."""
        if not guest_refs:
            return []
        stmt = select(Browser.ref).where(Browser.guest_ref.in_(guest_refs)).order_by(Browser.ref)
        return list((await self.session.execute(stmt)).scalars())

    async def reassign_browser(self, browser_ref: str, guest_ref: str, now: datetime) -> None:
        """Point a deleted browser at another guest that still has data on it (a shared device)."""
        await self.session.execute(
            update(Browser)
            .where(Browser.ref == browser_ref)
            .values(guest_ref=guest_ref, user_agent=None, deleted_at=now)
        )

    async def purge(self, guest_refs: list[str]) -> int:
        """Delete the guests' extensions, identifiers, browsers and rows; returns rows deleted."""
        if not guest_refs:
            return 0
        total = 0
        for model in (GuestExtension, GuestIdentifier, Browser):
            result = await self.session.execute(delete(model).where(model.guest_ref.in_(guest_refs)))
            total += _rowcount(result)
        result = await self.session.execute(delete(Guest).where(Guest.ref.in_(guest_refs)))
        return total + _rowcount(result)


def _rowcount(result: object) -> int:
    count = getattr(result, "rowcount", 0)
    return int(count) if isinstance(count, int) and count > 0 else 0


@dataclass(frozen=True, slots=True)
class GuestQuery:
    """Filters of the guest search (spec §8.2); None means "not filtered"."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    email_exact: str | None = None
    phone: str | None = None
    identifier: tuple[str, str] | None = None
    newest_first: bool = True


class GuestExtensionRepository:
    """Guest data extensions (spec §8.7)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, row: GuestExtension) -> None:
        self.session.add(row)

    async def get(self, guest_ref: str, name: str) -> GuestExtension | None:
        stmt = select(GuestExtension).where(GuestExtension.guest_ref == guest_ref, GuestExtension.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def of_guests(self, guest_refs: list[str]) -> list[GuestExtension]:
        """Every extension of the guests, by guest then name (ext, ext1 … ext5)."""
        if not guest_refs:
            return []
        stmt = (
            select(GuestExtension)
            .where(GuestExtension.guest_ref.in_(guest_refs))
            .order_by(GuestExtension.guest_ref, GuestExtension.name)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def page(self, guest_ref: str, *, offset: int, limit: int, name: str | None = None) -> list[GuestExtension]:
        """One page of a guest's extensions, by name; ``name`` keeps only that one."""
        stmt = select(GuestExtension).where(GuestExtension.guest_ref == guest_ref)
        if name is not None:
            stmt = stmt.where(GuestExtension.name == name)
        stmt = stmt.order_by(GuestExtension.name).offset(offset).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def remove(self, row: GuestExtension) -> None:
        """Delete one extension."""
        await self.session.delete(row)


class GuestBatchRepository(GuestRepository):
    """The extra statements of batch guest records (guests/batch_import.py)."""

    async def batch_by_email(self, email: str) -> list[Guest]:
        """The oldest live guests whose primary email is ``email`` (batch email fallback)."""
        stmt = (
            select(Guest)
            .where(_email_exactly(email), Guest.guest_type != "retired", Guest.deleted_at.is_(None))
            .order_by(Guest.created_at, Guest.ref)
            .limit(20)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def batch_guests(self, refs: Iterable[str]) -> list[Guest]:
        """The guests with these refs (live or not), locked."""
        stmt = select(Guest).where(Guest.ref.in_(list(refs))).with_for_update()
        return list((await self.session.execute(stmt)).scalars())

    async def batch_extensions_of_many(self, guest_refs: list[str]) -> list[GuestExtension]:
        """The data extensions of several guests."""
        if not guest_refs:
            return []
        stmt = select(GuestExtension).where(GuestExtension.guest_ref.in_(guest_refs))
        return list((await self.session.execute(stmt)).scalars())

    async def batch_extensions_of(self, guest_ref: str) -> list[GuestExtension]:
        """A guest's data extensions."""
        stmt = select(GuestExtension).where(GuestExtension.guest_ref == guest_ref).order_by(GuestExtension.name)
        return list((await self.session.execute(stmt)).scalars())

    def batch_add_extension(self, row: GuestExtension) -> None:
        self.session.add(row)

    async def batch_delete_extension(self, row: GuestExtension) -> None:
        await self.session.delete(row)


# What personalization reads of a guest per callFlows (its profile by browser, identifiers, data extensions):
# statements built once, identifiers and extensions as plain rows.
_LIVE_GUEST_OF_BROWSER = (
    select(Guest, Browser.ref)
    .join(Browser, Browser.guest_ref == Guest.ref)
    .where(
        Browser.ref == bindparam("ref"),
        Browser.deleted_at.is_(None),
        Guest.deleted_at.is_(None),
        Guest.guest_type != "retired",
    )
)
_IDENTIFIERS = cast(Table, GuestIdentifier.__table__)
_INSERT_IDENTIFIER = insert(_IDENTIFIERS)
_IDENTIFIER_PAIRS = (
    select(_IDENTIFIERS.c.provider, _IDENTIFIERS.c.value)
    .where(_IDENTIFIERS.c.guest_ref == bindparam("guest_ref"))
    .order_by(_IDENTIFIERS.c.id)
)
_EXTENSIONS = cast(Table, GuestExtension.__table__)
_EXTENSION_ROWS = (
    select(_EXTENSIONS.c.name, _EXTENSIONS.c.key, _EXTENSIONS.c.data)
    .where(_EXTENSIONS.c.guest_ref == bindparam("guest_ref"))
    .order_by(_EXTENSIONS.c.name)
)


@dataclass(frozen=True, slots=True)
class GuestProfile:
    """What personalization reads of a guest row (its §5.5 context fields), a plain object instead of an ORM row."""

    ref: str
    guest_type: str
    first_name: str | None
    last_name: str | None
    title: str | None
    gender: str | None
    email: str | None
    emails: list[str]
    phone_numbers: list[str]
    date_of_birth: str | None
    nationality: str | None
    city: str | None
    country: str | None
    language: str | None
    first_seen: datetime | None
    last_seen: datetime | None


_LIVE_PROFILE_OF_BROWSER = (
    select(*(_GUESTS.c[field.name] for field in fields(GuestProfile)), _BROWSERS.c.ref)
    .join_from(_BROWSERS, _GUESTS, _BROWSERS.c.guest_ref == _GUESTS.c.ref)
    .where(
        _BROWSERS.c.ref == bindparam("ref"),
        _BROWSERS.c.deleted_at.is_(None),
        _GUESTS.c.deleted_at.is_(None),
        _GUESTS.c.guest_type != "retired",
    )
)


_SQLITE_LIVE_PROFILE = SqliteRead(_LIVE_PROFILE_OF_BROWSER)
_SQLITE_LIVE_BROWSERS = SqliteRead(_LIVE_BROWSERS_FOR_UPDATE)
_SQLITE_IDENTITY_GUESTS = SqliteRead(_IDENTITY_GUESTS_FOR_UPDATE)
_SQLITE_WRITE_IDENTITY_GUEST = SqliteWrite(_WRITE_IDENTITY_GUEST)
_SQLITE_INSERT_IDENTIFIERS = SqliteWrite(_INSERT_IDENTIFIER)
_SQLITE_GUEST_SEEN = SqliteWrite(_GUEST_SEEN)
_SQLITE_BROWSER_SEEN = SqliteWrite(_BROWSER_SEEN)
_SQLITE_IDENTIFIER_PAIRS = SqliteRead(_IDENTIFIER_PAIRS)
_SQLITE_EXTENSION_ROWS = SqliteRead(_EXTENSION_ROWS)


@functools.cache
def _sqlite_owners_sql(count: int) -> str:
    """SQLite: the owners of ``count`` (provider, value) pairs. OR-ed equalities, each a search of the unique
    index: SQLite answers the row-value form SQLAlchemy renders for ``tuple_(…).in_(…)``, ``(provider, value) IN
    (VALUES …)``, by scanning the whole table."""
    pairs = " OR ".join(["(provider = ? AND value = ?)"] * count)
    return f"SELECT provider, value, guest_ref FROM guest_identifiers WHERE {pairs}"


async def identifier_rows(session: AsyncSession, keys: Iterable[tuple[str, str]]) -> list[GuestIdentifier]:
    """The identifier rows of these ``(provider, value)`` pairs.

    ``provider IN … AND value IN …`` (then an exact filter here) rather than a row-value IN, which SQLite answers
    with a scan of the whole table instead of the unique index; ``= ANY(array)`` on PostgreSQL (:func:`among`).
    """
    wanted = set(keys)
    if not wanted:
        return []
    providers, values = sorted({p for p, _ in wanted}), [v for _, v in wanted]
    stmt = select(GuestIdentifier).where(
        among(session, GuestIdentifier.provider, providers), among(session, GuestIdentifier.value, values)
    )
    rows = (await session.execute(stmt)).scalars()
    return [row for row in rows if (row.provider, row.value) in wanted]
