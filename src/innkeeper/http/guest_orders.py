"""Orders embedded in an expanded guest (``GET /v2.1/guests/{ref}?expand=true``, spec §8.3, §9).

This composes two domains: guests sits left of orders in the layer order, so ``guests/api.py``
cannot call the orders service itself. It takes an ``OrderSource`` instead, and ``create_app``
hands it :func:`guest_orders` (``guests.api.provide_orders``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import iso
from innkeeper.guests.schemas import GuestOrder
from innkeeper.orders import service as orders
from innkeeper.orders.schemas import order_href

MAX_EMBEDDED_ORDERS = 100


async def guest_orders(session: AsyncSession, guest_ref: str, base: str) -> list[GuestOrder]:
    """The guest's most recent orders (by ``orderedAt``, newest first), at most 100."""
    rows = await orders.orders_for_guest(session, guest_ref, limit=MAX_EMBEDDED_ORDERS)
    return [
        GuestOrder(
            href=order_href(base, o.ref),
            ref=o.ref,
            reference_id=o.reference_id,
            status=o.status,
            price=o.price,
            currency_code=o.currency_code,
            ordered_at=iso(o.ordered_at),
            channel=o.channel,
            point_of_sale=o.point_of_sale,
        )
        for o in rows
    ]
