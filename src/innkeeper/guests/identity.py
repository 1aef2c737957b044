"""Identity resolution (spec cdp.md §7.3): link browsers to guests, merge anonymous visitors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import events
from innkeeper.core.clock import Clock
from innkeeper.guests.models import Browser, Guest, GuestIdentifier
from innkeeper.guests.repository import GuestRepository

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


def _apply_pii(guest: Guest, data: IdentityInput, now: datetime) -> None:
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
