"""Session lifecycle (spec cdp.md §5): open, append, close on timeout, cart outcome."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.connections import service as outbox
from innkeeper.core import events, numbers
from innkeeper.core.clock import Clock, iso
from innkeeper.core.ids import new_ref
from innkeeper.guests import service as guests
from innkeeper.sessions._device import parse_user_agent
from innkeeper.sessions.models import Event as Event
from innkeeper.sessions.models import Session as Session
from innkeeper.sessions.repository import CONTEXT_EVENT_COLUMNS as CONTEXT_EVENT_COLUMNS
from innkeeper.sessions.repository import CONTEXT_SESSION_COLUMNS as CONTEXT_SESSION_COLUMNS
from innkeeper.sessions.repository import OPEN_FIELDS as OPEN_FIELDS
from innkeeper.sessions.repository import TOUCHED_FIELDS as TOUCHED_FIELDS
from innkeeper.sessions.repository import OpenSession as OpenSession
from innkeeper.sessions.repository import SessionRepository, set_expiry

log = logging.getLogger(__name__)


CloseReason = Literal["TIMEOUT", "FORCE_CLOSE", "IDENTITY_SWITCH"]
CartType = Literal["BROWSED", "ABANDONED", "CONVERTED"]
SESSION_CLOSED = "session.closed"


@dataclass(frozen=True, slots=True)
class PosInfo:
    """What sessionization needs to know of a point of sale."""

    name: str
    timeout_minutes: int
    language: str | None = None
    currency_code: str | None = None


def session_type(channel: str) -> str:
    """WEB for web channels, MOBILE for apps, EMAIL for email, else the channel."""
    if channel in ("WEB", "MOBILE_WEB"):
        return "WEB"
    if channel == "MOBILE_APP":
        return "MOBILE"
    return channel


async def session_for_event(
    session: AsyncSession,
    *,
    browser_ref: str,
    guest_ref: str,
    channel: str,
    pos: PosInfo,
    user_agent: str | None,
    clock: Clock,
) -> tuple[Session, bool]:
    """The OPEN session this event belongs to, closing a stale one first (rule §5.2.2).

    Returns the session and whether it was just opened.
    """
    repo = SessionRepository(session)
    now = clock.now()
    current = await repo.open_for_key(browser_ref, channel, pos.name)
    if current is not None and now - current.last_activity_at > timedelta(minutes=pos.timeout_minutes):
        await close(session, current, reason="TIMEOUT", clock=clock)
        current = None
    if current is not None:
        if current.guest_ref != guest_ref:
            current.guest_ref = guest_ref
        return current, False
    opened = Session(**new_session_values(browser_ref, guest_ref, channel, pos, user_agent, now))
    repo.add(opened)
    await session.flush()
    return opened, True


def new_session_values(
    browser_ref: str, guest_ref: str, channel: str, pos: PosInfo, user_agent: str | None, now: datetime
) -> dict[str, Any]:
    """Every column of a session opened now by a browser's event (both ingest paths)."""
    expires = now + timedelta(minutes=pos.timeout_minutes)
    return {
        "ref": new_ref(),
        "guest_ref": guest_ref,
        "browser_ref": browser_ref,
        "channel": channel,
        "point_of_sale": pos.name,
        "origin": None,
        "status": "OPEN",
        "close_reason": None,
        "started_at": now,
        "last_activity_at": now,
        "expires_at": expires,
        "sweep_at": expires,
        "ended_at": None,
        "language": pos.language,
        "currency_code": pos.currency_code,
        "first_page": None,
        "last_page": None,
        "num_events": 0,
        "num_views": 0,
        "num_searches": 0,
        "num_adds": 0,
        "num_selects": 0,
        "num_confirms": 0,
        "num_checkouts": 0,
        "cart": [],
        "cart_cleared": False,
        "converted": False,
        "cart_type": None,
        "abandoned_revenue": None,
        "value": None,
        "order_ref": None,
        "utm": {},
        "referrer": None,
        "user_agent": user_agent[:1000] if user_agent else None,
        "device": parse_user_agent(user_agent),
        "session_data": {},
        "created_at": now,
        "modified_at": now,
    }


def touch(
    row: Session | OpenSession, *, message: dict[str, Any], event_type: str, timeout_minutes: int, now: datetime
) -> list[str]:
    """Apply an event's common effects and type semantics to its session; return warnings."""
    warnings: list[str] = []
    row.num_events += 1
    row.last_activity_at = now
    set_expiry(row, now + timedelta(minutes=timeout_minutes))
    row.modified_at = now
    language, currency = message.get("language"), message.get("currency")
    if isinstance(language, str) and language:
        row.language = language[:8]
    if isinstance(currency, str) and currency:
        row.currency_code = currency[:8]
    if not row.utm:
        utm = {k.lower(): v for k, v in message.items() if k.lower().startswith("utm_") and isinstance(v, str)}
        if utm:
            row.utm = utm
    referrer = message.get("referrer")
    if row.referrer is None and isinstance(referrer, str) and referrer:
        row.referrer = referrer[:2000]
    data = message.get("session_data")
    if isinstance(data, dict):
        merged = dict(row.session_data or {})
        for key, value in data.items():
            if isinstance(value, str | int | float | bool) or value is None:
                merged[str(key)] = value
            else:
                warnings.append(f"session_data.{key}: values must be primitives")
        row.session_data = merged
    elif data is not None:
        warnings.append("session_data: must be an object")

    page = message.get("page")
    if event_type == "VIEW":
        row.num_views += 1
        if isinstance(page, str) and page:
            row.first_page = row.first_page or page[:2000]
            row.last_page = page[:2000]
    elif event_type == "SEARCH":
        row.num_searches += 1
    elif event_type == "SELECT":
        row.num_selects += 1
    elif event_type == "ADD":
        row.num_adds += 1
        warnings.extend(_add_to_cart(row, message.get("product"), currency))
    elif event_type == "CONFIRM":
        row.num_confirms += 1
        warnings.extend(_confirm(row, message.get("product")))
    elif event_type == "CHECKOUT":
        row.num_checkouts += 1
    elif event_type == "CLEAR_CART":
        row.cart = []
        row.cart_cleared = True
    return warnings


def _add_to_cart(row: Session | OpenSession, product: Any, currency: Any) -> list[str]:
    if not isinstance(product, dict):
        return ["product: ADD needs a product object; no cart line"]
    warnings = [
        f"product.{name}: missing"
        for name in ("type", "item_id", "name", "orderedAt", "quantity", "price", "productId", "currency")
        if product.get(name) in (None, "")
    ]
    item_id = product.get("item_id")
    quantity, price = numbers.quantity(product.get("quantity")), numbers.amount(product.get("price"))
    if not isinstance(item_id, str | int) or isinstance(item_id, bool) or item_id == "":
        return [*warnings, "product.item_id: required for a cart line; line ignored"]
    if quantity is None or price is None:
        return [*warnings, "product.quantity/price: numbers required for a cart line; line ignored"]
    item_key = str(item_id)[:200]
    cart = [line for line in (row.cart or []) if line["itemId"] != item_key]
    if quantity > 0:
        cart.append(
            {
                "itemId": item_key,
                "productId": _str(product.get("productId")),
                "name": _str(product.get("name")),
                "type": _str(product.get("type")),
                "referenceId": _str(product.get("referenceId")),
                "orderedAt": _str(product.get("orderedAt")),
                "quantity": quantity,
                "price": price,
                "currency": _str(product.get("currency")) or (currency if isinstance(currency, str) else None),
                "originalPrice": numbers.amount(product.get("originalPrice")),
                "originalCurrencyCode": _str(product.get("originalCurrencyCode")),
                "confirmed": False,
            }
        )
    row.cart = cart
    row.cart_cleared = False
    return warnings


def _confirm(row: Session | OpenSession, products: Any) -> list[str]:
    if isinstance(products, dict):
        products = [products]
    if not isinstance(products, list):
        return ["product: CONFIRM needs a list of {item_id}"]
    wanted = {str(p.get("item_id")) for p in products if isinstance(p, dict) and p.get("item_id") is not None}
    cart = [dict(line) for line in (row.cart or [])]
    known = {line["itemId"] for line in cart}
    for line in cart:
        if line["itemId"] in wanted:
            line["confirmed"] = True
    row.cart = cart
    return [f"product.item_id {item}: no ADD in this session" for item in sorted(wanted - known)]


def _str(value: Any) -> str | None:
    return value[:500] if isinstance(value, str) and value else None


def checkout_lines(row: Session) -> list[dict[str, Any]]:
    """The lines a converting checkout turns into order items: confirmed ones, else all."""
    lines = list(row.cart or [])
    confirmed = [line for line in lines if line.get("confirmed")]
    return confirmed or lines


def mark_converted(row: Session, *, order_ref: str, value: float | None) -> None:
    """The session placed an order: it converts and its cart is emptied."""
    row.converted = True
    row.order_ref = order_ref
    row.value = value
    row.cart = []


def cart_outcome(row: Session) -> tuple[CartType, float | None]:
    """CONVERTED, else ABANDONED with the revenue left in the cart, else BROWSED (§5.4)."""
    return _outcome(row.converted, row.cart)


def _outcome(converted: bool, cart: list[dict[str, Any]] | None) -> tuple[CartType, float | None]:
    if converted:
        return "CONVERTED", None
    lines = cart or []
    if lines:
        return "ABANDONED", round(sum(float(line["quantity"]) * float(line["price"]) for line in lines), 2)
    return "BROWSED", None


def duration(start: datetime, end: datetime) -> float:
    """Minutes and seconds as ``minutes + seconds/100`` (44 min 55 s → 44.55)."""
    total = max(0, int((end - start).total_seconds()))
    return round(total // 60 + (total % 60) / 100, 2)


async def close(session: AsyncSession, row: Session, *, reason: CloseReason, clock: Clock) -> None:
    """Close a session, compute its cart outcome and write ``session.closed`` to the outbox."""
    if row.status != "OPEN":
        return
    now = clock.now()
    row.status = "CLOSED"
    row.close_reason = reason
    row.ended_at = row.last_activity_at if reason == "TIMEOUT" else max(now, row.last_activity_at)
    row.cart_type, row.abandoned_revenue = cart_outcome(row)
    row.modified_at = now
    await session.flush()
    await outbox.enqueue(
        session,
        SESSION_CLOSED,
        key=f"{SESSION_CLOSED}:{row.ref}",
        guest_ref=row.guest_ref,
        payload={
            "sessionRef": row.ref,
            "guestRef": row.guest_ref,
            "browserRef": row.browser_ref,
            "cartType": row.cart_type,
            "abandonedRevenue": row.abandoned_revenue,
            "pointOfSale": row.point_of_sale,
            "closeReason": reason,
            "endedAt": iso(row.ended_at),
        },
        clock=clock,
    )
    guest = await guests.find_live_guest(session, ref=row.guest_ref) if row.cart_type == "ABANDONED" else None
    await events.publish(
        session,
        events.SessionClosed(
            session_ref=row.ref,
            guest_ref=row.guest_ref,
            cart_type=row.cart_type,
            abandoned_revenue=row.abandoned_revenue,
            closed_at=now,
            identified=guest is not None and guest.guest_type == "customer",
            origin=row.origin,
        ),
    )
    log.info("session %s closed (%s, %s)", row.ref, reason, row.cart_type)


async def close_browser_sessions(
    session: AsyncSession, browser_ref: str, *, reason: CloseReason, clock: Clock, guest_ref: str | None = None
) -> list[Session]:
    """Close every OPEN session of a browser (optionally only those of one guest)."""
    closed = []
    for row in await SessionRepository(session).open_for_browser(browser_ref):
        if guest_ref is None or row.guest_ref == guest_ref:
            await close(session, row, reason=reason, clock=clock)
            closed.append(row)
    return closed


async def has_open_session(session: AsyncSession, guest_ref: str) -> bool:
    """Whether the guest is in an OPEN session right now."""
    return await SessionRepository(session).has_open(guest_ref)


async def latest_open(session: AsyncSession, browser_ref: str) -> Session | None:
    """The browser's most recently active OPEN session (for channel/pos inheritance)."""
    return await SessionRepository(session).latest_open_for_browser(browser_ref)


async def reschedule_sweeps(session: AsyncSession, *, clock: Clock) -> int:
    """Move the next look of OPEN sessions that were due for one but are still active to their expiry (see
    ``Session.sweep_at``): each such session costs the sweeper one UPDATE per timeout, not one per event, and
    :func:`sweep` finds the expired ones without walking past them. Returns how many were moved."""
    return await SessionRepository(session).reschedule_sweeps(clock.now())


async def sweep(session: AsyncSession, *, clock: Clock, limit: int = 200) -> int:
    """Close up to ``limit`` sessions idle past their timeout; safe to run in many workers at once.

    The set-based form of :func:`close` with reason TIMEOUT, same results: the expired rows are read
    (and locked, skipping rows another worker holds) in one query and their outcomes computed here with
    :func:`cart_outcome`'s rule; then, for the whole batch, a few UPDATEs (one per outcome, one multi-row
    for the abandoned carts), one INSERT … SELECT of the outbox messages, one identified-guest lookup and
    one ``SessionClosed`` publication (batch subscribers see the whole list at once).
    """
    repo = SessionRepository(session)
    rows = await repo.expired_for_close(clock.now(), limit)
    if not rows:
        return 0
    now = clock.now()
    outcomes: list[tuple[str, CartType, float | None]] = []
    for row in rows:
        cart_type, revenue = _outcome(row.converted, row.cart)
        outcomes.append((row.ref, cart_type, revenue))
    await repo.close_timed_out(outcomes, now=now)
    # The same session.closed message as close() writes, built by the database from the closed rows.
    refs = [ref for ref, _, _ in outcomes]
    await outbox.enqueue_selected(
        session, SESSION_CLOSED, repo.closed_messages(refs, topic=SESSION_CLOSED), clock=clock
    )
    abandoned = {
        row.guest_ref for row, (_, cart_type, _) in zip(rows, outcomes, strict=True) if cart_type == "ABANDONED"
    }
    identified = await guests.identified_refs(session, sorted(abandoned)) if abandoned else set()
    await events.publish_many(
        session,
        [
            events.SessionClosed(
                session_ref=row.ref,
                guest_ref=row.guest_ref,
                cart_type=cart_type,
                abandoned_revenue=revenue,
                closed_at=now,
                identified=cart_type == "ABANDONED" and row.guest_ref in identified,
                origin=row.origin,
            )
            for row, (_, cart_type, revenue) in zip(rows, outcomes, strict=True)
        ],
    )
    log.debug("sweeper closed %d sessions", len(rows))
    return len(rows)


async def open_of_browsers(session: AsyncSession, browser_refs: list[str]) -> list[OpenSession]:
    """Every OPEN session of these browsers, locked for this transaction (the batched ingest path)."""
    return await SessionRepository(session).open_of_browsers(browser_refs)


async def record_batch(
    session: AsyncSession,
    *,
    opened: list[dict[str, Any]],
    touched: list[OpenSession],
    events: list[dict[str, Any]],
) -> None:
    """Store a batch of events (rows of every ``events`` column), the sessions they opened (rows of every
    ``sessions`` column, as the events left them) and what they changed in the OPEN sessions they found."""
    repo = SessionRepository(session)
    await repo.insert_sessions(opened)
    await repo.write_touched(touched)
    await repo.insert_events(events)


async def record_event(session: AsyncSession, event: Event) -> None:
    """Store an event row (written at once; ``event`` stays a plain, transient object)."""
    await session.flush()  # its session row first (foreign key)
    await SessionRepository(session).insert_event(event)


@events.subscribe(events.PointOfSaleRetimed)
async def retime_open_sessions(session: AsyncSession, event: events.PointOfSaleRetimed) -> None:
    """A point of sale's timeout changed: open sessions now expire by the new timeout."""
    await SessionRepository(session).retime(event.name, timedelta(minutes=event.timeout_minutes))


async def move_guest(session: AsyncSession, from_guest: str, *, into: str) -> None:
    """Move every session and event of a merged guest to the surviving one."""
    await SessionRepository(session).move_guest(from_guest, into)


async def purge_guest(session: AsyncSession, guest_ref: str) -> int:
    """Delete every session and event of a guest (guest deletion); returns rows deleted."""
    return await SessionRepository(session).purge_guest(guest_ref)


async def guests_on_browsers(session: AsyncSession, browser_refs: list[str]) -> dict[str, str]:
    """Browsers that still carry sessions or events, each with a guest they belong to."""
    return await SessionRepository(session).guests_on_browsers(browser_refs)


async def recent_for_guest(session: AsyncSession, guest_ref: str, *, limit: int) -> list[Session]:
    """The guest's newest sessions first (personalization guest context)."""
    return await SessionRepository(session).for_guest(
        guest_ref, channel=None, cart_type=None, start=None, end=None, limit=limit
    )


async def events_of_sessions(session: AsyncSession, session_refs: list[str]) -> list[Event]:
    """Events of these sessions, oldest first."""
    return await SessionRepository(session).events_of_sessions(session_refs)


async def record_flow_session(
    session: AsyncSession, *, guest_ref: str, channel: str, pos: str, clock: Clock
) -> Session:
    """The CLOSED session written for a flow execution by email or identifier (one per run)."""
    now = clock.now()
    row = Session(
        ref=new_ref(),
        guest_ref=guest_ref,
        browser_ref=None,
        channel=channel,
        point_of_sale=pos,
        origin="FLOW_EXECUTION",
        status="CLOSED",
        close_reason="FLOW_EXECUTION",
        started_at=now,
        last_activity_at=now,
        expires_at=now,
        sweep_at=now,
        ended_at=now,
        num_events=0,
        num_views=0,
        num_searches=0,
        num_adds=0,
        num_selects=0,
        num_confirms=0,
        num_checkouts=0,
        cart=[],
        cart_cleared=False,
        converted=False,
        cart_type=None,
        utm={},
        device={},
        session_data={},
        created_at=now,
        modified_at=now,
    )
    SessionRepository(session).add(row)
    return row


async def guest_events_between(session: AsyncSession, guest_ref: str, *, start: datetime, end: datetime) -> list[Event]:
    """The guest's events in ``[start, end]``, newest first (goal attribution windows)."""
    return await SessionRepository(session).events_for_guest(guest_ref, status=None, start=start, end=end, limit=10_000)


async def event_rows_of_sessions(session: AsyncSession, session_refs: list[str], *, with_raw: bool) -> list[Any]:
    """Light event rows for personalization (``ref, session_ref, type, channel, point_of_sale, created_at, page,
    language, currency, processing_status[, raw]``), oldest first."""
    return await SessionRepository(session).event_rows_of_sessions(session_refs, with_raw=with_raw)


async def context_latest_open(session: AsyncSession, browser_ref: str) -> Sequence[Any] | None:
    """``latest_open`` as a plain row of ``CONTEXT_SESSION_COLUMNS`` (by position), or None."""
    return await SessionRepository(session).context_latest_open(browser_ref)


async def record_exposure_event(session: AsyncSession, values: Mapping[str, Any]) -> None:
    """``record_event`` for callFlows' exposure: the event row given as column values (every column of
    ``events``), written at once, after any pending ORM rows (its session's, first: foreign key)."""
    if session.new or session.dirty or session.deleted:
        await session.flush()
    await SessionRepository(session).insert_event_values(values)


async def context_heads(session: AsyncSession, guest_ref: str, *, limit: int) -> list[Sequence[Any]]:
    """``(ref, status)`` of the guest's newest sessions, newest first (which sessions its guest context holds)."""
    return await SessionRepository(session).context_heads(guest_ref, limit=limit)


async def context_rows(
    session: AsyncSession, session_refs: list[str], *, with_raw: bool
) -> tuple[list[Sequence[Any]], list[Sequence[Any]]]:
    """These sessions as plain rows (``CONTEXT_SESSION_COLUMNS``, any order) and their events' rows
    (``CONTEXT_EVENT_COLUMNS`` then ``raw`` when asked, oldest first), read leanly; sessions first, so a session
    read as CLOSED comes with all its events."""
    return await SessionRepository(session).context_rows(session_refs, with_raw=with_raw)


async def joinable_open_session(
    session: AsyncSession, *, browser_ref: str, guest_ref: str, channel: str, pos: PosInfo, clock: Clock
) -> str | None:
    """The ref of the OPEN session an event of ``guest_ref`` joins unchanged: the browser's session of this
    channel and point of sale when it has not timed out and is the guest's already (``session_for_event``
    returns it then and changes nothing), read as stored, without an ORM object, and locked as
    ``session_for_event`` locks it. None otherwise: ``session_for_event`` closes, reassigns or opens."""
    row = await SessionRepository(session).open_key_row(browser_ref, channel, pos.name)
    if row is None:
        return None
    ref, owner, last_activity_at = row
    if owner != guest_ref or clock.now() - last_activity_at > timedelta(minutes=pos.timeout_minutes):
        return None
    return str(ref)


async def get_session(session: AsyncSession, ref: str) -> Session | None:
    """One session by ref (None when unknown)."""
    return await SessionRepository(session).get(ref)


async def abandonment(
    session: AsyncSession, start: datetime, end: datetime, *, pos: str | None = None, channel: str | None = None
) -> tuple[int, float, int, int]:
    """Abandoned sessions, abandoned revenue, sessions with an ADD and closed sessions in a period (§10.4)."""
    return await SessionRepository(session).abandonment(start, end, pos=pos, channel=channel)


@dataclass(slots=True)
class ClosedDay:
    """Tracked sessions closed on one UTC day (``YYYY-MM-DD``), by cart outcome (§5.4)."""

    day: str
    browsed: int = 0
    converted: int = 0
    abandoned: int = 0
    abandoned_revenue: float = 0.0


async def closed_per_day(
    session: AsyncSession, start: datetime, end: datetime, *, pos: str | None = None, channel: str | None = None
) -> dict[str, ClosedDay]:
    """Per UTC day with closed sessions in [start, end): browsed, converted, abandoned and abandoned revenue.

    The same sessions as :func:`abandonment` (tracked, closed in the period), so the days add up to its totals.
    """
    days: dict[str, ClosedDay] = {}
    for day, cart_type, count, revenue in await SessionRepository(session).closed_per_day(
        start, end, pos=pos, channel=channel
    ):
        row = days.setdefault(day, ClosedDay(day))
        if cart_type == "ABANDONED":
            row.abandoned += count
            row.abandoned_revenue += revenue
        elif cart_type == "CONVERTED":
            row.converted += count
        else:  # BROWSED (and sessions closed before outcomes were recorded)
            row.browsed += count
    return days
