"""Identity resolution (spec cdp.md §7.3): link browsers to guests, merge anonymous visitors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import events
from innkeeper.core.clock import Clock
from innkeeper.guests.models import Browser, Guest, GuestIdentifier
from innkeeper.guests.repository import GuestRepository, IdentityGuest

_STRING_FIELDS = {
    "title": "title",
    "firstname": "first_name",
    "lastname": "last_name",
    "gender": "gender",
    "dob": "date_of_birth",
    "city": "city",
    "state": "state",
    "country": "country",
    "postal_code": "post_code",
}


@dataclass(frozen=True, slots=True)
class Identifier:
    """One ``{provider, id, expiry_date}`` of an IDENTITY event."""

    provider: str
    id: str
    expiry_date: str | None = None


@dataclass(slots=True)
class IdentityInput:
    """What an IDENTITY event asks for: identifiers plus supplementary PII."""

    identifiers: list[Identifier] = field(default_factory=list)
    email: str | None = None
    phones: list[str] = field(default_factory=list)
    street: list[str] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Resolution:
    """Outcome: the browser's guest now, and which guests' data must follow it."""

    guest_ref: str
    merged: list[str] = field(default_factory=list)
    switched_from: str | None = None
    warnings: list[str] = field(default_factory=list)


def parse_identity(message: dict[str, Any], *, email_fallback: bool) -> IdentityInput:
    """Read the IDENTITY attributes of an event, collecting warnings for bad values."""
    result = IdentityInput()
    raw_ids = message.get("identifiers")
    if raw_ids is not None and not isinstance(raw_ids, list):
        result.warnings.append("identifiers: must be an array")
        raw_ids = []
    for item in raw_ids or []:
        if not isinstance(item, dict):
            result.warnings.append("identifiers: items must be objects")
            continue
        provider, ident, expiry = item.get("provider"), item.get("id"), item.get("expiry_date")
        if not isinstance(provider, str) or not provider or not isinstance(ident, str) or not ident:
            result.warnings.append("identifiers: id and provider must be non-empty strings")
            continue
        if len(provider) > 100 or len(ident) > 500:
            result.warnings.append("identifiers: id or provider too long")
            continue
        if provider.lower() == "email":
            ident = ident.strip().lower()
        result.identifiers.append(Identifier(provider, ident, expiry if isinstance(expiry, str) else None))
    email = message.get("email")
    if isinstance(email, str) and "@" in email and len(email) <= 320:
        result.email = email.strip().lower()
    elif email is not None:
        result.warnings.append("email: must be an email address")
    for key in ("phone", "mobile"):
        value = message.get(key)
        if isinstance(value, str) and value:
            result.phones.append(value[:50])
    street = message.get("street")
    if isinstance(street, list) and all(isinstance(s, str) for s in street):
        result.street = [s[:200] for s in street]
    elif isinstance(street, str):
        result.street = [street[:200]]
    for wire, column in _STRING_FIELDS.items():
        value = message.get(wire)
        if isinstance(value, str) and value:
            result.fields[column] = value[:200]
        elif value is not None and not isinstance(value, str):
            result.warnings.append(f"{wire}: must be a string")
    if not result.identifiers and result.email and email_fallback:
        result.identifiers.append(Identifier("email", result.email))
    return result


async def identify(
    session: AsyncSession,
    browser: Browser,
    data: IdentityInput,
    *,
    providers: set[str] | None,
    clock: Clock,
) -> Resolution:
    """Resolve the browser's guest from the identifiers, applying PII to the result.

    ``providers`` are the identity-rule providers (None: every provider counts). The
    caller moves sessions, events and orders of ``Resolution.merged`` guests and closes
    the browser's sessions of ``Resolution.switched_from``.
    """
    repo = GuestRepository(session)
    now = clock.now()
    current = await repo.get(browser.guest_ref, for_update=True)
    assert current is not None  # browsers always point at a guest (foreign key)
    qualifying = [i for i in data.identifiers if providers is None or i.provider in providers]
    resolution = Resolution(guest_ref=current.ref, warnings=list(data.warnings))
    if len(qualifying) < len(data.identifiers):
        resolution.warnings.append("identifiers: providers not in the identity rules were ignored")
    if not qualifying:
        if not data.identifiers:
            resolution.warnings.append("IDENTITY without identifiers: no identity resolution")
        _apply_pii(current, data, now)
        return resolution

    owners = await repo.owners((i.provider, i.id) for i in qualifying)
    # Never link to a deleted guest (its identifiers go with the deletion; this also covers
    # a deletion committed while this event was being applied).
    if owners:
        deleted = {g.ref for g in await repo.guests({o.guest_ref for o in owners}) if g.deleted_at is not None}
        owners = [o for o in owners if o.guest_ref not in deleted]
    owner_refs = {o.guest_ref for o in owners}
    others = owner_refs - {current.ref}
    target = current
    if others:
        candidates = await repo.guests(others)
        target = candidates[0]  # the oldest guest owning one of the identifiers
        own_ids = await repo.identifiers_of(current.ref)
        if any(providers is None or i.provider in providers for i in own_ids):
            # A different known customer on a shared device: re-link, never merge.
            resolution.switched_from = current.ref
            browser.guest_ref = target.ref
        else:
            await _merge(repo, current, into=target, now=now)
            browser.guest_ref = target.ref
            resolution.merged.append(current.ref)
        resolution.guest_ref = target.ref
    owned = {(o.provider, o.value): o for o in owners if o.guest_ref == target.ref}
    for ident in qualifying:
        row = owned.get((ident.provider, ident.id))
        if row is not None:
            if ident.expiry_date:
                row.expiry_date = ident.expiry_date
        elif (ident.provider, ident.id) not in {(o.provider, o.value) for o in owners}:
            # Unique (provider, value): a concurrent claim makes this flush fail and the
            # caller's transaction retry, after which the identifier is found above.
            repo.add(
                GuestIdentifier(
                    guest_ref=target.ref,
                    provider=ident.provider,
                    value=ident.id,
                    expiry_date=ident.expiry_date,
                    created_at=now,
                )
            )
    if target.guest_type == "visitor":
        target.guest_type = "customer"
    _apply_pii(target, data, now)
    await session.flush()
    return resolution


# --- the batched path --------------------------------------------------------------------------------------
# An IDENTITY that only confirms or adds the browser's own guest's identifiers (no other guest owns any of
# them: no merge, no switch) is applied by the Stream API's batched path with the batch's other events.


@dataclass(slots=True)
class Claim:
    """An IDENTITY event of a batch: its browser, the browser's guest and what the event asks for."""

    browser_ref: str
    guest_ref: str
    data: IdentityInput


@dataclass(slots=True)
class Confirmed:
    """A claim :func:`resolve_own` settled: its warnings, and the guest and identifier rows to write."""

    warnings: list[str]
    guest: IdentityGuest
    new_identifiers: list[Identifier]


async def resolve_own(
    session: AsyncSession, claims: list[Claim], *, providers: set[str] | None, now: datetime
) -> dict[str, Confirmed]:
    """The claims (by browser ref) that leave the browser with its own guest, resolved as :func:`identify`
    resolves them; the rest (another guest owns an identifier, two claims of the batch touch the same guest
    or identifier, an identifier repeated or given a new expiry date…) are left to :func:`identify`.

    Locks the claims' guests (in ref order). Nothing is written here; :func:`store_own` writes the
    claims the caller keeps, with the guest rows as they were changed here.
    """
    repo = GuestRepository(session)
    per_guest: dict[str, int] = {}
    for claim in claims:
        per_guest[claim.guest_ref] = per_guest.get(claim.guest_ref, 0) + 1
    claims = [claim for claim in claims if per_guest[claim.guest_ref] == 1]
    guests = {row.ref: row for row in await repo.identity_guests(sorted(per_guest))}
    qualifying = {
        claim.browser_ref: [i for i in claim.data.identifiers if providers is None or i.provider in providers]
        for claim in claims
    }
    keys = [(i.provider, i.id) for idents in qualifying.values() for i in idents]
    claimed_twice = {key for key in keys if keys.count(key) > 1}
    owners: dict[tuple[str, str], str] = dict(await repo.identifier_owners(sorted(set(keys)))) if keys else {}
    settled: dict[str, Confirmed] = {}
    for claim in claims:
        guest = guests.get(claim.guest_ref)
        if guest is None or guest.deleted_at is not None or guest.guest_type not in ("visitor", "customer"):
            continue
        wanted = qualifying[claim.browser_ref]
        own = [(i.provider, i.id) for i in wanted]
        if len(set(own)) < len(own) or claimed_twice.intersection(own):
            continue
        if any(owners.get(key, guest.ref) != guest.ref for key in own):
            continue  # another guest owns one of them: a merge or a switch
        if any(i.expiry_date and (i.provider, i.id) in owners for i in wanted):
            continue  # a new expiry date for an existing identifier
        warnings = list(claim.data.warnings)
        if len(wanted) < len(claim.data.identifiers):
            warnings.append("identifiers: providers not in the identity rules were ignored")
        if not wanted:
            if not claim.data.identifiers:
                warnings.append("IDENTITY without identifiers: no identity resolution")
        elif guest.guest_type == "visitor":
            guest.guest_type = "customer"
        _apply_pii(guest, claim.data, now)
        new = [i for i in wanted if (i.provider, i.id) not in owners]
        settled[claim.browser_ref] = Confirmed(warnings, guest, new)
    return settled


async def store_own(session: AsyncSession, confirmed: list[Confirmed], *, now: datetime) -> None:
    """Write what :func:`resolve_own` settled for these claims: their guests' fields and new identifiers."""
    repo = GuestRepository(session)
    await repo.write_identity_guests([item.guest for item in confirmed])
    await repo.insert_identifiers(
        [
            {
                "guest_ref": item.guest.ref,
                "provider": ident.provider,
                "value": ident.id,
                "expiry_date": ident.expiry_date,
                "created_at": now,
            }
            for item in confirmed
            for ident in item.new_identifiers
        ]
    )


async def _merge(repo: GuestRepository, source: Guest, *, into: Guest, now: datetime) -> None:
    await repo.move_browsers(source.ref, into.ref)
    await repo.move_identifiers(source.ref, into.ref)
    for column in (*_STRING_FIELDS.values(), "email"):
        if getattr(into, column) is None and getattr(source, column) is not None:
            setattr(into, column, getattr(source, column))
    into.emails = _union(into.emails, source.emails)
    into.phone_numbers = _union(into.phone_numbers, source.phone_numbers)
    if source.first_seen and (into.first_seen is None or source.first_seen < into.first_seen):
        into.first_seen = source.first_seen
    source.guest_type = "retired"
    source.merged_into = into.ref
    source.modified_at = now
    into.modified_at = now
    await events.publish(repo.session, events.GuestMerged(source.ref, into.ref))


def _apply_pii(guest: Guest | IdentityGuest, data: IdentityInput, now: datetime) -> None:
    for column, value in data.fields.items():
        setattr(guest, column, value)
    if data.email:
        guest.email = data.email
        guest.emails = _union(guest.emails, [data.email])
    if data.phones:
        guest.phone_numbers = _union(guest.phone_numbers, data.phones)
    if data.street is not None:
        guest.street = data.street
    guest.modified_at = now


def _union(first: list[str] | None, second: list[str] | None) -> list[str]:
    out = list(first or [])
    for item in second or []:
        if item not in out:
            out.append(item)
    return out
