"""Guest REST API operations (spec §8): create, search, retrieve, replace, partial update.

Bodies arrive as plain dicts keyed by column name (the API layer parses the wire shape); this
module checks the semantic rules of §8.1, writes the rows and hands back what to render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import replace as replace_fields
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import events
from innkeeper.core.clock import Clock, iso
from innkeeper.core.ids import is_ref
from innkeeper.core.timeparse import parse_iso
from innkeeper.guests.errors import GuestNotFound, IdentifierTaken, InvalidGuest
from innkeeper.guests.identity import Identifier
from innkeeper.guests.models import Guest, GuestExtension, GuestIdentifier
from innkeeper.guests.repository import GuestExtensionRepository, GuestQuery, GuestRepository
from innkeeper.guests.service import new_guest

GUEST_TYPES = ("visitor", "customer", "traveller")
GENDERS = ("male", "female", "unknown")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COUNTRY = re.compile(r"^[A-Za-z]{2}$")
# Writable columns in wire order (problems are listed in this order), and the list columns.
COLUMNS = (
    "guest_type",
    "title",
    "first_name",
    "last_name",
    "gender",
    "date_of_birth",
    "email",
    "emails",
    "phone_numbers",
    "language",
    "nationality",
    "passport_number",
    "passport_expiry",
    "street",
    "city",
    "state",
    "post_code",
    "country",
)
LISTS = ("emails", "phone_numbers", "street")
WIRE = {
    "guest_type": "guestType",
    "first_name": "firstName",
    "last_name": "lastName",
    "date_of_birth": "dateOfBirth",
    "phone_numbers": "phoneNumbers",
    "passport_number": "passportNumber",
    "passport_expiry": "passportExpiry",
    "post_code": "postCode",
}

Mode = Literal["create", "replace", "patch"]


@dataclass(frozen=True, slots=True)
class GuestView:
    """A guest with the rows its representation embeds."""

    guest: Guest
    identifiers: list[GuestIdentifier]
    extensions: list[GuestExtension]


async def live_guest(session: AsyncSession, ref: str, *, for_update: bool = False) -> Guest:
    """A guest that is neither retired nor deleted, else GuestNotFound."""
    guest = await GuestRepository(session).get_live(ref.lower(), for_update=for_update) if is_ref(ref) else None
    if guest is None:
        raise GuestNotFound(
            "The specified resource does not exist.", developer_message=f"Guest with ref {ref} was not found"
        )
    return guest


async def retrieve(session: AsyncSession, ref: str) -> GuestView:
    """A live guest with its identifiers and data extensions."""
    return await _view(session, await live_guest(session, ref))


async def create(session: AsyncSession, fields: dict[str, Any], *, clock: Clock) -> GuestView:
    """Create a guest (no duplicate check, as Sitecore); identifiers of other guests are a conflict."""
    now = clock.now()
    values, identifiers = _validate(fields, mode="create", now=now)
    guest = new_guest(now, guest_type=values.pop("guest_type"))
    for column, value in values.items():
        setattr(guest, column, value)
    repo = GuestRepository(session)
    await _check_owners(repo, guest.ref, identifiers or [])
    repo.add(guest)
    await session.flush()
    await events.publish(session, events.GuestCreated(guest.ref, guest.guest_type, now))
    await _set_identifiers(repo, guest.ref, identifiers or [], now=now)
    return await _view(session, guest)


async def replace(session: AsyncSession, ref: str, fields: dict[str, Any], *, clock: Clock) -> GuestView:
    """PUT: every writable field is set; omitted optional fields and identifiers are cleared."""
    return await _update(session, ref, fields, mode="replace", clock=clock)


async def patch(session: AsyncSession, ref: str, fields: dict[str, Any], *, clock: Clock) -> GuestView:
    """PATCH: only the given fields change; ``null`` clears, arrays are replaced whole."""
    return await _update(session, ref, fields, mode="patch", clock=clock)


async def search(
    session: AsyncSession, query: GuestQuery, *, offset: int, limit: int, expand: bool
) -> list[GuestView] | list[str]:
    """Live guests matching the query: full views with ``expand``, else just their refs."""
    repo = GuestRepository(session)
    if query.identifier is not None and query.identifier[0].lower() == "email":
        query = replace_fields(query, identifier=(query.identifier[0], query.identifier[1].lower()))
    if not expand:
        return await repo.search_refs(query, offset=offset, limit=limit)
    guests = await repo.search(query, offset=offset, limit=limit)
    refs = [g.ref for g in guests]
    identifiers = await repo.identifiers_of_many(refs)
    extensions = await GuestExtensionRepository(session).of_guests(refs)
    return [
        GuestView(
            g,
            [i for i in identifiers if i.guest_ref == g.ref],
            [e for e in extensions if e.guest_ref == g.ref],
        )
        for g in guests
    ]


async def _update(session: AsyncSession, ref: str, fields: dict[str, Any], *, mode: Mode, clock: Clock) -> GuestView:
    now = clock.now()
    values, identifiers = _validate(fields, mode=mode, now=now)
    guest = await live_guest(session, ref, for_update=True)
    repo = GuestRepository(session)
    if identifiers is not None:
        await _check_owners(repo, guest.ref, identifiers)
    for column, value in values.items():
        setattr(guest, column, value)
    guest.modified_at = now
    if identifiers is not None:
        await _set_identifiers(repo, guest.ref, identifiers, now=now)
    await session.flush()
    return await _view(session, guest)


async def _view(session: AsyncSession, guest: Guest) -> GuestView:
    identifiers = await GuestRepository(session).identifiers_of(guest.ref)
    extensions = await GuestExtensionRepository(session).of_guests([guest.ref])
    return GuestView(guest, identifiers, extensions)


async def _check_owners(repo: GuestRepository, guest_ref: str, identifiers: list[Identifier]) -> None:
    owners = await repo.owners((i.provider, i.id) for i in identifiers)
    taken = {(o.provider, o.value) for o in owners if o.guest_ref != guest_ref}
    if taken:
        where = ", ".join(f"identifiers[{n}]" for n, i in enumerate(identifiers) if (i.provider, i.id) in taken)
        raise IdentifierTaken(
            "The request conflicts with the current state of the resource.",
            developer_message=f"{where}: already belongs to another guest",
        )


async def _set_identifiers(
    repo: GuestRepository, guest_ref: str, identifiers: list[Identifier], *, now: datetime
) -> None:
    """Make the guest's identifiers exactly ``identifiers`` (kept rows keep their id and age)."""
    wanted = {(i.provider, i.id): i for i in identifiers}
    for row in await repo.identifiers_of(guest_ref):
        match = wanted.pop((row.provider, row.value), None)
        if match is None:
            await repo.remove_identifier(row)
        else:
            row.expiry_date = match.expiry_date
    await repo.session.flush()
    for ident in wanted.values():
        repo.add(
            GuestIdentifier(
                guest_ref=guest_ref,
                provider=ident.provider,
                value=ident.id,
                expiry_date=ident.expiry_date,
                created_at=now,
            )
        )
    await repo.session.flush()


def _validate(fields: dict[str, Any], *, mode: Mode, now: datetime) -> tuple[dict[str, Any], list[Identifier] | None]:
    """Normalised column values and identifiers (None: leave identifiers alone), or InvalidGuest."""
    problems: list[str] = []
    present = {c: fields.get(c) for c in COLUMNS if mode != "patch" or c in fields}
    values: dict[str, Any] = {}
    for column, value in present.items():
        if value is None:
            if column == "guest_type":
                problems.append("guestType: required" if mode != "patch" else "guestType: cannot be cleared")
            values[column] = [] if column in LISTS else None
            continue
        checked = _check(column, value, now=now)
        if isinstance(checked, _Problem):
            problems.append(f"{WIRE.get(column, column)}: {checked.text}")
        else:
            values[column] = checked
    identifiers: list[Identifier] | None = None
    if mode != "patch" or "identifiers" in fields:
        identifiers = _identifiers(fields.get("identifiers") or [], problems)
    if problems:
        raise InvalidGuest("The request is invalid.", developer_message="; ".join(problems))
    return values, identifiers


@dataclass(frozen=True, slots=True)
class _Problem:
    text: str


def _check(column: str, value: Any, *, now: datetime) -> Any:
    """One normalised value, or a _Problem describing why it is wrong."""
    if column == "guest_type":
        return value if value in GUEST_TYPES else _Problem(f"must be one of {', '.join(GUEST_TYPES)}")
    if column == "gender":
        lowered = value.lower()
        return lowered if lowered in GENDERS else _Problem(f"must be one of {', '.join(GENDERS)}")
    if column in ("date_of_birth", "passport_expiry"):
        parsed = parse_iso(value)
        if parsed is None:
            return _Problem("must be an ISO 8601 date or date-time")
        if column == "date_of_birth" and parsed >= now:
            return _Problem("must be in the past")
        return iso(parsed)
    if column == "email":
        value = value.strip()
        return value if EMAIL.match(value) else _Problem("must be a valid email address")
    if column == "emails":
        cleaned = [v.strip() for v in value]
        return cleaned if all(EMAIL.match(v) for v in cleaned) else _Problem("must be valid email addresses")
    if column == "country":
        return value.upper() if COUNTRY.match(value) else _Problem("must be an ISO 3166-1 alpha-2 code")
    return value


def _identifiers(raw: list[dict[str, Any]], problems: list[str]) -> list[Identifier]:
    """Identifiers in request order, de-duplicated; email ids lower-cased as identity resolution does."""
    result: dict[tuple[str, str], Identifier] = {}
    for n, item in enumerate(raw):
        provider, ident = item["provider"].strip(), item["id"].strip()
        if not provider or not ident:
            problems.append(f"identifiers[{n}]: provider and id are required")
            continue
        if provider.lower() == "email":
            ident = ident.lower()
        expiry = item.get("expiry_date")
        if expiry is not None:
            parsed = parse_iso(expiry)
            if parsed is None:
                problems.append(f"identifiers[{n}].expiryDate: must be an ISO 8601 date or date-time")
                continue
            expiry = iso(parsed)
        result[(provider, ident)] = Identifier(provider, ident, expiry)
    return list(result.values())
