"""Order contacts and consumers (spec §9.3): person fields; the contact links the order to a guest."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import Clock
from innkeeper.core.ids import new_ref
from innkeeper.guests import contacts
from innkeeper.guests.identity import Identifier, IdentityInput
from innkeeper.orders._lookup import get_consumer, get_order
from innkeeper.orders.errors import ContactExists, ContactNotFound, InvalidOrder
from innkeeper.orders.models import OrderConsumer, OrderContact
from innkeeper.orders.repository import OrderRepository
from innkeeper.tenant import service as tenant

ContactMode = Literal["create", "replace", "patch"]
# Person fields of a contact (wire name -> guest column) that fill the resolved guest.
PERSON_COLUMNS = {
    "title": "title",
    "firstName": "first_name",
    "lastName": "last_name",
    "gender": "gender",
    "dateOfBirth": "date_of_birth",
    "language": "language",
    "nationality": "nationality",
    "passportNumber": "passport_number",
    "passportExpiry": "passport_expiry",
    "city": "city",
    "state": "state",
    "postCode": "post_code",
    "country": "country",
}


async def get_contact(session: AsyncSession, order_ref: str) -> OrderContact:
    """The order's contact, or ContactNotFound."""
    order = await get_order(session, order_ref)
    contact = await OrderRepository(session).contact_of(order.ref)
    if contact is None:
        raise ContactNotFound(
            "The specified resource does not exist.", developer_message=f"Order {order.ref} has no contact"
        )
    return contact


async def set_contact(
    session: AsyncSession,
    order_ref: str,
    person: dict[str, Any],
    *,
    mode: ContactMode,
    clock: Clock,
) -> OrderContact:
    """Create, replace or patch the order's contact and link the order to the guest it resolves to.

    ``person`` holds wire-named person fields (``None`` clears on PATCH). The guest is found
    or created by the identity rules; without qualifying identifiers the order keeps its guest.
    """
    order = await get_order(session, order_ref, for_update=True)
    repo = OrderRepository(session)
    contact = await repo.contact_of(order.ref, for_update=True)
    now = clock.now()
    if mode == "create" and contact is not None:
        raise ContactExists("The order already has a contact", developer_message="contact: exists; use PUT or PATCH")
    if mode != "create" and contact is None:
        raise ContactNotFound(
            "The specified resource does not exist.", developer_message=f"Order {order.ref} has no contact"
        )
    if contact is None:
        contact = OrderContact(ref=new_ref(), order_ref=order.ref, data={}, created_at=now, modified_at=now)
        repo.add(contact)
    contact.data = _merge_person(contact.data, person, replace=mode != "patch")
    guest_ref = await _resolve_guest(session, contact.data, clock=clock)
    contact.guest_ref = guest_ref or order.guest_ref
    contact.modified_at = now
    if contact.guest_ref is not None:
        order.guest_ref = contact.guest_ref
    order.modified_at = now
    await session.flush()
    return contact


async def delete_contact(session: AsyncSession, order_ref: str, *, clock: Clock) -> OrderContact:
    """Delete the order's contact; the order is then linked to no guest."""
    contact = await get_contact(session, order_ref)
    order = await get_order(session, order_ref, for_update=True)
    order.guest_ref = None
    order.modified_at = clock.now()
    await OrderRepository(session).delete_row(contact)
    await session.flush()
    return contact


async def list_consumers(session: AsyncSession, order_ref: str, *, offset: int, limit: int) -> list[OrderConsumer]:
    """A page of the order's consumers."""
    order = await get_order(session, order_ref)
    return await OrderRepository(session).consumers_of(order.ref, offset=offset, limit=limit)


async def add_consumer(
    session: AsyncSession, order_ref: str, person: dict[str, Any], *, item_refs: list[str] | None, clock: Clock
) -> OrderConsumer:
    """Add a consumer of some of the order's items (stored as given; P2: no identity resolution)."""
    order = await get_order(session, order_ref, for_update=True)
    now = clock.now()
    consumer = OrderConsumer(
        ref=new_ref(),
        order_ref=order.ref,
        data=_merge_person({}, person, replace=True),
        order_item_refs=await _own_items(session, order.ref, item_refs or []),
        created_at=now,
        modified_at=now,
    )
    OrderRepository(session).add(consumer)
    await session.flush()
    return consumer


async def update_consumer(
    session: AsyncSession,
    ref: str,
    person: dict[str, Any],
    *,
    item_refs: list[str] | None,
    items_given: bool,
    replace: bool,
    clock: Clock,
) -> OrderConsumer:
    """PUT (``replace``) or PATCH a consumer; ``items_given`` says whether ``orderItems`` was sent."""
    consumer = await get_consumer(session, ref, for_update=True)
    consumer.data = _merge_person(consumer.data, person, replace=replace)
    if replace or items_given:
        consumer.order_item_refs = await _own_items(session, consumer.order_ref, item_refs or [])
    consumer.modified_at = clock.now()
    await session.flush()
    return consumer


async def delete_consumer(session: AsyncSession, ref: str) -> OrderConsumer:
    """Delete a consumer."""
    consumer = await get_consumer(session, ref, for_update=True)
    await OrderRepository(session).delete_row(consumer)
    await session.flush()
    return consumer


async def _own_items(session: AsyncSession, order_ref: str, refs: list[str]) -> list[str]:
    """The refs, checked to be items of this order."""
    own = {item.ref for item in await OrderRepository(session).items_of(order_ref)}
    bad = [f"orderItems[{i}].href: not an item of this order" for i, ref in enumerate(refs) if ref not in own]
    if bad:
        raise InvalidOrder("The request is invalid.", developer_message="; ".join(bad[:20]))
    return list(dict.fromkeys(refs))


def _merge_person(current: dict[str, Any] | None, person: dict[str, Any], *, replace: bool) -> dict[str, Any]:
    merged = {} if replace else dict(current or {})
    for key, value in person.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def _resolve_guest(session: AsyncSession, data: dict[str, Any], *, clock: Clock) -> str | None:
    """The guest the contact's identifiers (or email) resolve to under the tenant's identity rules."""
    settings = await tenant.get_tenant(session)
    providers = {str(rule.get("provider")) for rule in settings.identity_rules} or None
    guest = await contacts.find_or_create_guest(
        session, _identity_input(data), providers=providers, email_fallback=settings.email_fallback, clock=clock
    )
    return None if guest is None else guest.ref


def _identity_input(data: dict[str, Any]) -> IdentityInput:
    fields = {column: data[wire] for wire, column in PERSON_COLUMNS.items() if isinstance(data.get(wire), str)}
    return IdentityInput(
        identifiers=[Identifier(i["provider"], i["id"], i.get("expiryDate")) for i in data.get("identifiers") or []],
        email=data["email"].strip().lower() if isinstance(data.get("email"), str) else None,
        phones=list(data.get("phoneNumbers") or []),
        street=list(data["street"]) if isinstance(data.get("street"), list) else None,
        fields=fields,
    )
