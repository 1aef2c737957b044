"""Guests and browsers: creation, lookup, profile updates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import events
from innkeeper.core.clock import Clock, iso
from innkeeper.core.ids import is_ref, new_ref
from innkeeper.guests.errors import BrowserNotFound, GuestNotFound
from innkeeper.guests.models import Browser, GuestExtension, GuestIdentifier
from innkeeper.guests.models import Guest as Guest
from innkeeper.guests.repository import GuestExtensionRepository, GuestRepository
from innkeeper.guests.repository import GuestProfile as GuestProfile

BROWSER_NOT_FOUND = "Invalid browser id/ref specified"


@dataclass(frozen=True, slots=True)
class BrowserRefs:
    """A browser and the guest it currently belongs to."""

    ref: str
    guest_ref: str


async def create_browser(session: AsyncSession, *, user_agent: str | None, clock: Clock) -> BrowserRefs:
    """Create a browser and its anonymous visitor guest in one transaction."""
    now = clock.now()
    repo = GuestRepository(session)
    guest = new_guest(now)
    browser = Browser(ref=new_ref(), guest_ref=guest.ref, user_agent=_clip(user_agent, 1000), created_at=now)
    repo.add(guest)
    await session.flush()
    repo.add(browser)
    await session.flush()
    await events.publish(session, events.GuestCreated(guest.ref, guest.guest_type, now))
    return BrowserRefs(browser.ref, guest.ref)


def new_guest_columns(now: datetime, *, guest_type: str = "visitor") -> dict[str, Any]:
    """The columns of a new, empty guest (without its ref)."""
    return {
        "guest_type": guest_type,
        "created_at": now,
        "modified_at": now,
        "first_seen": now,
        "last_seen": now,
        "emails": [],
        "phone_numbers": [],
        "street": [],
    }


def new_guest(now: datetime, *, guest_type: str = "visitor") -> Guest:
    """A new, empty guest row."""
    return Guest(ref=new_ref(), **new_guest_columns(now, guest_type=guest_type))


async def get_browser(session: AsyncSession, ref: str, *, for_update: bool = False) -> Browser:
    """The browser, or BrowserNotFound (the exact Sitecore message), also when its guest was deleted."""
    if not isinstance(ref, str) or not is_ref(ref):
        raise BrowserNotFound(BROWSER_NOT_FOUND)
    browser = await GuestRepository(session).get_browser(ref.lower(), for_update=for_update)
    # Deleting a guest marks all its browsers deleted in the same transaction. (No join with
    # guests here: under FOR UPDATE, PostgreSQL re-checks a join against the old guest row
    # when a concurrent merge moved the browser, and would report it missing.)
    if browser is None or browser.deleted_at is not None:
        raise BrowserNotFound(BROWSER_NOT_FOUND)
    return browser


async def lock_live_browsers(session: AsyncSession, refs: list[str]) -> dict[str, str]:
    """Lock the browsers among ``refs`` (lower-case refs) for this transaction, in ref order, and return
    ``ref → guest ref`` of those not deleted (the batched form of ``get_browser(…, for_update=True)``)."""
    return await GuestRepository(session).lock_live_browsers(refs) if refs else {}


async def get_guest(session: AsyncSession, ref: str, *, for_update: bool = False) -> Guest:
    """A live guest (retired and deleted guests read as not found)."""
    guest = await GuestRepository(session).get(ref, for_update=for_update) if is_ref(ref) else None
    if guest is None or guest.guest_type == "retired" or guest.deleted_at is not None:
        raise GuestNotFound(
            "The specified resource does not exist.", developer_message=f"Guest with ref {ref} was not found"
        )
    return guest


async def identifiers_of(session: AsyncSession, guest_ref: str) -> list[GuestIdentifier]:
    """The guest's identifiers."""
    return await GuestRepository(session).identifiers_of(guest_ref)


async def browsers_of(session: AsyncSession, guest_ref: str) -> list[Browser]:
    """The guest's browsers."""
    return await GuestRepository(session).browsers_of(guest_ref)


async def seen(session: AsyncSession, guest_ref: str, browser: Browser, *, when: datetime) -> None:
    """Record that a guest was active (called when a session opens)."""
    guest = await GuestRepository(session).get(guest_ref)
    if guest is not None:
        guest.last_seen = when
        if guest.first_seen is None:
            guest.first_seen = when
    browser.last_seen = when


async def seen_many(session: AsyncSession, opened: list[tuple[str, str, datetime]]) -> None:
    """:func:`seen` for many sessions opened at once: ``(guest ref, browser ref, when)`` each, in order."""
    repo = GuestRepository(session)
    await repo.mark_seen([(guest, when) for guest, _, when in opened], [(browser, when) for _, browser, when in opened])


def guest_summary(guest: Guest, identifiers: list[GuestIdentifier]) -> dict[str, Any]:
    """Profile fields for admin views (Sitecore field names)."""
    return {
        "ref": guest.ref,
        "guestType": guest.guest_type,
        "createdAt": iso(guest.created_at),
        "modifiedAt": iso(guest.modified_at),
        "firstSeen": iso(guest.first_seen),
        "lastSeen": iso(guest.last_seen),
        "title": guest.title,
        "firstName": guest.first_name,
        "lastName": guest.last_name,
        "gender": guest.gender,
        "dateOfBirth": guest.date_of_birth,
        "email": guest.email,
        "emails": list(guest.emails or []),
        "phoneNumbers": list(guest.phone_numbers or []),
        "street": list(guest.street or []),
        "city": guest.city,
        "state": guest.state,
        "postCode": guest.post_code,
        "country": guest.country,
        "identifiers": [
            {"provider": i.provider, "id": i.value, **({"expiryDate": i.expiry_date} if i.expiry_date else {})}
            for i in identifiers
        ],
    }


def _clip(value: str | None, limit: int) -> str | None:
    return None if value is None else value[:limit]


# --- guest deletion (spec §8.5): hide at once here, purge in the worker --------------------


async def hide(session: AsyncSession, guest_ref: str, *, clock: Clock) -> Guest:
    """Hide a live guest at once: its browsers read as deleted and its identifiers are gone.

    Dropping the identifiers now means a new IDENTITY with the same email makes a fresh
    guest and no search finds the deleted one. Raises GuestNotFound when there is no live guest.
    """
    guest = await get_guest(session, guest_ref, for_update=True)
    now = clock.now()
    guest.deleted_at = now
    guest.modified_at = now
    await GuestRepository(session).hide_guest(guest.ref, now)
    await session.flush()
    return guest


async def purge_family(session: AsyncSession, guest_ref: str) -> list[str]:
    """The guest's ref and, recursively, the refs of retired guests merged into it."""
    repo = GuestRepository(session)
    family = [guest_ref]
    frontier = [guest_ref]
    while frontier:
        frontier = [ref for ref in await repo.merged_into(frontier) if ref not in family]
        family.extend(frontier)
    return family


async def browser_refs_of(session: AsyncSession, guest_refs: list[str]) -> list[str]:
    """Refs of the browsers of the given guests."""
    return await GuestRepository(session).browser_refs_of(guest_refs)


async def purge_guest(
    session: AsyncSession, guest_ref: str, *, keep_browsers: Mapping[str, str] | None = None, clock: Clock
) -> int:
    """Delete a guest, the retired guests merged into it, their extensions, identifiers and browsers.

    Callers delete the rows of other domains that refer to these guests first. A browser in
    ``keep_browsers`` (browser ref -> another guest) still carries that other guest's events
    (a shared device): it stays, deleted, pointing at that guest. Returns rows deleted.
    """
    repo = GuestRepository(session)
    for browser_ref, other in (keep_browsers or {}).items():
        await repo.reassign_browser(browser_ref, other, clock.now())
    return await repo.purge(await purge_family(session, guest_ref))


async def find_live_guest(
    session: AsyncSession,
    *,
    email: str | None = None,
    identifier: tuple[str, str] | None = None,
    ref: str | None = None,
) -> Guest | None:
    """A live guest by primary email, by identifier or by ref (personalization lookups); None when unknown."""
    repo = GuestRepository(session)
    if email is not None:
        return await repo.live_by_email(email)
    if identifier is not None:
        return await repo.live_by_identifier(*identifier)
    if ref is not None:
        return await repo.get_live(ref)
    return None


async def live_guest_of_browser(session: AsyncSession, browser_id: str) -> tuple[Guest, str] | None:
    """The live guest of a browser id and the browser's ref, in one query: None when the id is not a
    reference, or the browser or its guest is unknown, deleted or retired (``get_browser`` then
    ``get_guest`` would raise)."""
    if not isinstance(browser_id, str) or not is_ref(browser_id):
        return None
    return await GuestRepository(session).live_guest_of_browser(browser_id.lower())


async def live_profile_of_browser(session: AsyncSession, browser_id: str) -> tuple[GuestProfile, str] | None:
    """:func:`live_guest_of_browser` as a plain :class:`GuestProfile` (the fields personalization reads)."""
    if not isinstance(browser_id, str) or not is_ref(browser_id):
        return None
    return await GuestRepository(session).live_profile_of_browser(browser_id.lower())


async def identifier_pairs(session: AsyncSession, guest_ref: str) -> list[tuple[str, str]]:
    """The guest's ``(provider, value)`` identifiers, in ``identifiers_of`` order, as plain tuples."""
    return await GuestRepository(session).identifier_pairs(guest_ref)


async def extension_rows(session: AsyncSession, guest_ref: str) -> list[Sequence[Any]]:
    """The guest's data extensions as plain ``(name, key, data)`` rows, in name order (``extensions_of``)."""
    return sorted(await GuestRepository(session).extension_rows(guest_ref), key=lambda row: row[0])


async def identified_refs(session: AsyncSession, refs: list[str]) -> set[str]:
    """The refs among ``refs`` of live guests that are identified (``customer``): one query for a
    whole batch, the set-based form of ``find_live_guest(ref=…).guest_type == "customer"``."""
    return await GuestRepository(session).live_of_type(refs, "customer")


async def extensions_of(session: AsyncSession, guest_ref: str) -> list[GuestExtension]:
    """The guest's data extensions, in name order."""
    return sorted(await GuestExtensionRepository(session).of_guests([guest_ref]), key=lambda row: row.name)


async def find_guests(session: AsyncSession, text: str | None, *, limit: int = 50) -> list[Guest]:
    """The portal's guest search (browser id, guest ref, email or name); recent guests when empty."""
    repo = GuestRepository(session)
    if not text or not text.strip():
        return await repo.recent(limit=limit)
    return await repo.find_text(text[:320], limit=limit)
