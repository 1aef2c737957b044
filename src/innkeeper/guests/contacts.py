"""Find or create the guest an order contact describes, by the identity rules (spec §7.3, §9.3).

Unlike a Stream IDENTITY there is no browser here: nothing is merged or re-linked. The contact's
qualifying identifiers (after the email fallback) either point at a live guest, which gains the
identifiers it lacks and any PII it has no value for, or create a new ``customer`` guest.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import Clock
from innkeeper.guests.identity import Identifier, IdentityInput
from innkeeper.guests.models import Guest, GuestIdentifier
from innkeeper.guests.repository import GuestRepository
from innkeeper.guests.service import new_guest

# Guest columns a contact may fill (IdentityInput.fields is keyed by column).
CONTACT_COLUMNS = frozenset(
    {
        "title",
        "first_name",
        "last_name",
        "gender",
        "date_of_birth",
        "language",
        "nationality",
        "passport_number",
        "passport_expiry",
        "city",
        "state",
        "post_code",
        "country",
    }
)


def qualifying_identifiers(
    person: IdentityInput, *, providers: set[str] | None, email_fallback: bool
) -> list[Identifier]:
    """The identifiers that count for identity: rule providers only, email as a fallback."""
    identifiers: list[Identifier] = []
    seen: set[tuple[str, str]] = set()
    candidates = list(person.identifiers)
    if not candidates and person.email and email_fallback:
        candidates.append(Identifier("email", person.email))
    for ident in candidates:
        value = ident.id.strip().lower() if ident.provider.lower() == "email" else ident.id
        if (providers is not None and ident.provider not in providers) or (ident.provider, value) in seen:
            continue
        seen.add((ident.provider, value))
        identifiers.append(Identifier(ident.provider, value, ident.expiry_date))
    return identifiers


async def find_or_create_guest(
    session: AsyncSession,
    person: IdentityInput,
    *,
    providers: set[str] | None,
    email_fallback: bool,
    clock: Clock,
) -> Guest | None:
    """The live guest owning the contact's identifiers, else a new customer; None without any.

    ``providers`` are the identity-rule providers (None: every provider counts). When several
    guests own the identifiers the oldest wins and nothing is merged; identifiers owned by
    another guest stay where they are. Identifiers held only by guests awaiting deletion
    resolve to no guest (they cannot be claimed until the purge has run).
    """
    identifiers = qualifying_identifiers(person, providers=providers, email_fallback=email_fallback)
    if not identifiers:
        return None
    repo = GuestRepository(session)
    now = clock.now()
    owners = await repo.owners((i.provider, i.id) for i in identifiers)
    created = False
    if owners:
        live = [g for g in await repo.guests({o.guest_ref for o in owners}) if g.deleted_at is None]
        live = [g for g in live if g.guest_type != "retired"]
        if not live:
            return None
        guest = live[0]
    else:
        guest = new_guest(now, guest_type="customer")
        repo.add(guest)
        await session.flush()
        created = True
    taken = {(o.provider, o.value): o for o in owners}
    for ident in identifiers:
        row = taken.get((ident.provider, ident.id))
        if row is None:
            # Unique (provider, value): a concurrent claim fails this flush and the caller's
            # transaction retries, after which the identifier is found among the owners.
            repo.add(
                GuestIdentifier(
                    guest_ref=guest.ref,
                    provider=ident.provider,
                    value=ident.id,
                    expiry_date=ident.expiry_date,
                    created_at=now,
                )
            )
        elif row.guest_ref == guest.ref and ident.expiry_date:
            row.expiry_date = ident.expiry_date
    if guest.guest_type == "visitor":
        guest.guest_type = "customer"
    _apply_contact_pii(guest, person, overwrite=created, now=now)
    await session.flush()
    return guest


def _apply_contact_pii(guest: Guest, person: IdentityInput, *, overwrite: bool, now: datetime) -> None:
    """Copy PII onto the guest: everything for a new guest, only missing values otherwise."""
    for column, value in person.fields.items():
        if column in CONTACT_COLUMNS and (overwrite or getattr(guest, column) is None):
            setattr(guest, column, value)
    if person.email:
        if overwrite or guest.email is None:
            guest.email = person.email
        if person.email not in (guest.emails or []):
            guest.emails = [*(guest.emails or []), person.email]
    if person.phones:
        phones = list(guest.phone_numbers or [])
        guest.phone_numbers = phones + [p for p in person.phones if p not in phones]
    if person.street is not None and (overwrite or not guest.street):
        guest.street = list(person.street)
    guest.modified_at = now
