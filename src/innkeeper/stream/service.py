"""Event ingestion (spec cdp.md §3–5, §7.3): validate, sessionize, apply, store."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import events
from innkeeper.core.clock import Clock
from innkeeper.core.errors import InnkeeperError
from innkeeper.core.ids import is_ref, new_ref
from innkeeper.guests import identity
from innkeeper.guests import service as guests
from innkeeper.orders import service as orders
from innkeeper.sessions import service as sessions
from innkeeper.sessions.errors import ForceCloseNotAllowed
from innkeeper.sessions.service import Event
from innkeeper.stream.errors import InvalidExt, MissingAttribute, UnparseableMessage
from innkeeper.tenant import service as tenant

log = logging.getLogger(__name__)

Transport = Literal["stream-get", "stream-post", "edge", "batch"]
EXT_MAX_KEYS = 50
TYPE_MAX_LEN = 100


@dataclass(frozen=True, slots=True)
class StreamContext:
    """Who sent the event and how: resolved by the HTTP adapter."""

    client_key: str
    production: bool
    transport: Transport
    default_pos: str | None = None
    site_id: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The refs the Stream response reports."""

    browser_ref: str
    guest_ref: str
    event_ref: str


@dataclass(slots=True)
class _Outcome:
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None


def validate(message: Any, *, production: bool) -> tuple[str, str]:
    """Checks 2–4, 6 and 7 of spec §3.5 that need no database; returns (type, browser_id)."""
    if not isinstance(message, dict):
        raise UnparseableMessage("Unable to parse message")
    event_type = message.get("type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise MissingAttribute("Missing required attribute: type")
    if len(event_type) > TYPE_MAX_LEN:
        raise MissingAttribute("Attribute type must be at most 100 characters")
    browser_id = message.get("browser_id")
    if not isinstance(browser_id, str) or not browser_id.strip():
        raise MissingAttribute("Missing required attribute: browser_id")
    return event_type, browser_id.strip()


def reject_nul(message: Any, raw: str) -> None:
    """NUL cannot be stored in PostgreSQL text; refuse such messages on every dialect alike."""
    if "\\u0000" not in raw and "\x00" not in raw:
        return
    if _has_nul(message):
        raise UnparseableMessage("Unable to parse message")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def validate_ext(message: dict[str, Any]) -> None:
    """``ext``: a flat object of at most 50 primitive (or primitive-array) values."""
    ext = message.get("ext")
    if ext is None:
        return
    if not isinstance(ext, dict):
        raise InvalidExt("ext must be an object")
    if len(ext) > EXT_MAX_KEYS:
        raise InvalidExt("ext supports a maximum of 50 attributes")
    for value in ext.values():
        if isinstance(value, list):
            if not all(_primitive(v) for v in value):
                raise InvalidExt("ext values must be string, number, boolean or array of those")
        elif not _primitive(value):
            raise InvalidExt("ext values must be string, number, boolean or array of those")


def _primitive(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _text(message: dict[str, Any], key: str, limit: int) -> str | None:
    value = message.get(key)
    return value[:limit] if isinstance(value, str) and value else None


STANDARD_TYPES = frozenset(
    {
        "VIEW",
        "ADD",
        "CONFIRM",
        "CHECKOUT",
        "PAYMENT",
        "IDENTITY",
        "SEARCH",
        "CLEAR_CART",
        "FORCE_CLOSE",
        "ORDER_CHECKOUT",
        "TRACKING",
        "SELECT",
        "SESSION_CLOSE",
    }
)


async def ingest(session: AsyncSession, ctx: StreamContext, message: Any, *, raw: str, clock: Clock) -> Accepted:
    """Validate and store one event, updating its session, cart, identity and orders.

    Runs inside the caller's transaction; the response must only be sent after commit.
    """
    event_type, browser_id = validate(message, production=ctx.production)
    # Lock the browser row: events of one browser are applied one at a time.
    browser = await guests.get_browser(session, browser_id, for_update=True)
    reject_nul(message, raw)
    validate_ext(message)
    if event_type == "FORCE_CLOSE" and ctx.production:
        raise ForceCloseNotAllowed("FORCE_CLOSE is not supported in production environments")

    now = clock.now()
    channel = _text(message, "channel", 40)
    pos_name = _text(message, "pos", 100)
    if pos_name is None and ctx.site_id:
        site_pos = await tenant.pos_for_site(session, ctx.site_id)
        pos_name = site_pos.name if site_pos else None
    if channel is None or pos_name is None:
        previous = await sessions.latest_open(session, browser.ref)
        if previous is not None:
            channel = channel or previous.channel
            pos_name = pos_name or previous.point_of_sale
    channel = channel or "WEB"
    pos_name = pos_name or ctx.default_pos

    event = Event(
        **_event_values(ctx, message, event_type, browser.ref, browser.guest_ref, channel, pos_name, now, raw)
    )
    outcome = await _process(session, ctx, message, event, browser, pos_name, clock=clock)
    if outcome.failure:
        event.processing_status = "FAILED"
        event.failure_reason = outcome.failure[:500]
        log.info("event %s of browser %s failed: %s", event.ref, browser.ref, event.type)
    event.warnings = outcome.warnings
    await sessions.record_event(session, event)
    if event_type not in STANDARD_TYPES and outcome.failure is None:
        # Custom events can trigger flows (personalize.md §9.2 CUSTOM_EVENT); standard ones never do.
        await events.publish(
            session, events.EventIngested(event.ref, event_type, event.guest_ref, event.session_ref, now)
        )
    if event_type == "FORCE_CLOSE" and outcome.failure is None:
        await sessions.close_browser_sessions(session, browser.ref, reason="FORCE_CLOSE", clock=clock)
    return Accepted(browser.ref, browser.guest_ref, event.ref)


def _event_values(
    ctx: StreamContext,
    message: dict[str, Any],
    event_type: str,
    browser_ref: str,
    guest_ref: str,
    channel: str,
    pos_name: str | None,
    now: datetime,
    raw: str,
) -> dict[str, Any]:
    """A new event's columns, before its session and outcome are known (both ingest paths)."""
    return {
        "ref": new_ref(),
        "type": event_type,
        "browser_ref": browser_ref,
        "guest_ref": guest_ref,
        "session_ref": None,
        "channel": channel,
        "point_of_sale": pos_name,
        "language": _text(message, "language", 8),
        "currency": _text(message, "currency", 8),
        "page": _text(message, "page", 2000),
        "client_key": ctx.client_key,
        "created_at": now,
        "modified_at": now,
        "processing_status": "SUCCESS",
        "failure_reason": None,
        "warnings": [],
        "transport": ctx.transport,
        "user_agent": ctx.user_agent[:1000] if ctx.user_agent else None,
        "client_requested_at": _text(message, "requested_at", 40),
        "raw": raw,
    }


# --- the batched path ---------------------------------------------------------------------
# Most events are a VIEW or an ADD of a known browser, in its OPEN session or opening it, and an
# IDENTITY mostly confirms or adds the browser's own guest's identifiers. The group commit hands such
# events of a batch to ingest_batch, which applies them together with a few statements for the whole
# batch (lock the browsers, read their open sessions, write the sessions, insert the events; for
# IDENTITY, read and write the guests and identifiers) instead of five to ten per event. Everything
# else (a timed-out session, a merge or a switch of guest, checkout, custom types that trigger flows,
# errors) takes ingest() one event at a time. The two paths share validate(), _event_values(),
# sessions.touch() and the identity rules; tests compare what they store.

BATCHED_TYPES = frozenset({"VIEW", "ADD", "SEARCH", "SELECT", "CONFIRM", "CLEAR_CART", "IDENTITY"})


@dataclass(frozen=True, slots=True)
class Incoming:
    """One event of a group-commit batch, as received."""

    ctx: StreamContext
    message: Any
    raw: str


def batchable_browser(item: Incoming) -> str | None:
    """The (lower-case) browser ref of an event :func:`ingest_batch` may apply, else None.

    Only a well-formed event of a :data:`BATCHED_TYPES` type naming its channel and point of sale
    qualifies; whether its browser and session allow it is decided with the database.
    """
    message = item.message
    if not isinstance(message, dict):
        return None
    event_type = message.get("type")
    if not isinstance(event_type, str) or event_type not in BATCHED_TYPES:
        return None
    try:
        _, browser_id = validate(message, production=item.ctx.production)
        reject_nul(message, item.raw)
        validate_ext(message)
    except InnkeeperError:
        return None
    if _text(message, "channel", 40) is None or _text(message, "pos", 100) is None:
        return None  # inherited from the latest open session or a default: ingest() decides
    ref = browser_id.lower()
    return ref if is_ref(ref) else None


# batch_candidates(): browser ref → its items' indexes, and the browser ids of the other events.
Candidates = tuple[dict[str, list[int]], set[str]]


def batch_candidates(items: list[Incoming]) -> Candidates:
    """The browsers whose events all qualify for :func:`ingest_batch` (ref → their items' indexes, in
    order), and the (lower-case) browser ids of the other events."""
    candidates: dict[str, list[int]] = {}
    others: set[str] = set()
    for index, item in enumerate(items):
        ref = batchable_browser(item)
        if ref is not None:
            candidates.setdefault(ref, []).append(index)
        elif isinstance(item.message, dict) and isinstance(item.message.get("browser_id"), str):
            others.add(item.message["browser_id"].strip().lower())
    for ref in others:
        candidates.pop(ref, None)
    return candidates, others


async def ingest_batch(
    session: AsyncSession,
    items: list[Incoming],
    candidates: Candidates,
    *,
    clock: Clock,
) -> list[Accepted | None]:
    """Apply the common events of a batch together; for each item its refs, or None when it must go
    through :func:`ingest` (after this, in the same transaction).

    An event is applied here when its browser is live, its point of sale exists, and its OPEN session for
    (browser, channel, point of sale) has not timed out and belongs to the browser's guest, or there is
    none yet: then all it does is open that session (as :func:`sessions.session_for_event` would, the
    guest and browser marked seen), :func:`sessions.touch` it and store the event, exactly what
    :func:`ingest` does. An IDENTITY also qualifies when it leaves the browser with its own guest
    (:func:`identity.resolve_own`; one per browser and batch). A browser is taken whole or not at all, so
    its events keep their order. Every browser of the batch is locked here, in ref order (as ingest()
    would lock each), and then the guests of its IDENTITY events.
    ``candidates`` is :func:`batch_candidates` of ``items``.
    """
    results: list[Accepted | None] = [None] * len(items)
    by_browser, others = candidates
    if not by_browser:
        return results
    browsers = await guests.lock_live_browsers(session, sorted({*by_browser, *(ref for ref in others if is_ref(ref))}))
    live = [ref for ref in by_browser if ref in browsers]
    claims = await _identity_claims(session, items, by_browser, browsers, live, clock=clock)
    live = sorted(
        ref for ref in live if all(items[i].message["type"] != "IDENTITY" for i in by_browser[ref]) or ref in claims
    )
    found = {
        (row.browser_ref, row.channel, row.point_of_sale): row for row in await sessions.open_of_browsers(session, live)
    }
    opened: list[dict[str, Any]] = []
    touched: dict[str, sessions.OpenSession] = {}
    rows: list[dict[str, Any]] = []
    seen: list[tuple[str, str, datetime]] = []
    confirmed: list[identity.Confirmed] = []
    for ref in live:
        plan = await _plan_browser(session, items, ref, by_browser[ref], browsers[ref], found, clock=clock)
        if plan is None:
            continue
        if ref in claims:
            confirmed.append(claims[ref])
        for step in plan:
            item = items[step.index]
            row, pos, now = step.row, step.pos, step.now
            if step.opens is not None:
                opened.append(step.opens)
                seen.append((row.guest_ref, ref, now))
            message = item.message
            event_type = message["type"]
            values = _event_values(
                item.ctx, message, event_type, ref, row.guest_ref, row.channel, pos.name, now, item.raw
            )
            values["session_ref"] = row.ref
            values["warnings"] = list(claims[ref].warnings) if event_type == "IDENTITY" else []
            values["warnings"] += sessions.touch(
                row, message=message, event_type=event_type, timeout_minutes=pos.timeout_minutes, now=now
            )
            touched[row.ref] = row
            rows.append(values)
            results[step.index] = Accepted(ref, row.guest_ref, values["ref"])
    # A session opened here is inserted as its events left it; the others are updated.
    for values in opened:
        row = touched.pop(values["ref"])
        values.update({name: getattr(row, name) for name in sessions.TOUCHED_FIELDS})
    await sessions.record_batch(session, opened=opened, touched=list(touched.values()), events=rows)
    if seen:
        await guests.seen_many(session, seen)
    if confirmed:
        await identity.store_own(session, confirmed, now=clock.now())
    return results


async def _identity_claims(
    session: AsyncSession,
    items: list[Incoming],
    by_browser: dict[str, list[int]],
    browsers: dict[str, str],
    live: list[str],
    *,
    clock: Clock,
) -> dict[str, identity.Confirmed]:
    """The batch's IDENTITY events that leave their browser with its own guest (one per browser), resolved
    (:func:`identity.resolve_own`); any other IDENTITY sends its browser to :func:`ingest`."""
    wanted = []
    for ref in live:
        mine = [i for i in by_browser[ref] if items[i].message["type"] == "IDENTITY"]
        if len(mine) == 1:
            wanted.append((ref, items[mine[0]].message))
    if not wanted:
        return {}
    settings = await tenant.identity_settings(session)
    providers = {str(rule.get("provider")) for rule in settings.identity_rules} or None
    claims = [
        identity.Claim(ref, browsers[ref], identity.parse_identity(message, email_fallback=settings.email_fallback))
        for ref, message in wanted
    ]
    return await identity.resolve_own(session, claims, providers=providers, now=clock.now())


@dataclass(slots=True)
class _Step:
    """One event of the batched path: its item, session (found or opened by it), point of sale and time."""

    index: int
    row: sessions.OpenSession
    pos: tenant.PosSettings
    now: datetime
    opens: dict[str, Any] | None  # the new session's columns when this event opens it


async def _plan_browser(
    session: AsyncSession,
    items: list[Incoming],
    browser_ref: str,
    indexes: list[int],
    guest_ref: str,
    found: dict[tuple[str, str, str], sessions.OpenSession],
    *,
    clock: Clock,
) -> list[_Step] | None:
    """Each event of one browser with its session, point of sale and time, or None when any of them
    needs :func:`ingest` (a timed-out session, another guest's, an unknown point of sale)."""
    plan: list[_Step] = []
    mine: dict[tuple[str, str, str], sessions.OpenSession] = {}
    for index in indexes:
        item = items[index]
        message = item.message
        pos = await tenant.pos_settings(session, message["pos"][:100])
        if pos is None:
            return None
        key = (browser_ref, message["channel"][:40], pos.name)
        now = clock.now()
        row = mine.get(key) or found.get(key)
        opens = None
        if row is None:
            info = sessions.PosInfo(pos.name, pos.timeout_minutes, pos.language, pos.currency_code)
            opens = sessions.new_session_values(browser_ref, guest_ref, key[1], info, item.ctx.user_agent, now)
            row = sessions.OpenSession(**{name: opens[name] for name in sessions.OPEN_FIELDS})
        elif row.guest_ref != guest_ref or now - row.last_activity_at > timedelta(minutes=pos.timeout_minutes):
            return None
        mine[key] = row
        plan.append(_Step(index, row, pos, now, opens))
    return plan


async def _process(
    session: AsyncSession,
    ctx: StreamContext,
    message: dict[str, Any],
    event: Event,
    browser: Any,
    pos_name: str | None,
    *,
    clock: Clock,
) -> _Outcome:
    outcome = _Outcome()
    if pos_name is None:
        outcome.failure = "Missing point of sale"
        return outcome
    # The tenant row is read only when needed: an unknown point of sale (auto-create
    # setting) or an IDENTITY (identity rules); most events need neither.
    pos = await tenant.resolve_pos(session, pos_name, auto_create=False, clock=clock)
    if pos is None:
        settings = await tenant.get_tenant(session)
        pos = await tenant.resolve_pos(session, pos_name, auto_create=settings.auto_create_pos, clock=clock)
    if pos is None:
        outcome.failure = f"Unknown point of sale: {pos_name}"
        return outcome
    event.point_of_sale = pos.name
    event_type = event.type

    if event_type == "IDENTITY":
        settings = await tenant.get_tenant(session)
        data = identity.parse_identity(message, email_fallback=settings.email_fallback)
        providers = {str(rule.get("provider")) for rule in settings.identity_rules} or None
        resolution = await identity.identify(session, browser, data, providers=providers, clock=clock)
        outcome.warnings.extend(resolution.warnings)
        for merged in resolution.merged:
            await sessions.move_guest(session, merged, into=resolution.guest_ref)
            await orders.move_guest(session, merged, into=resolution.guest_ref)
        if resolution.switched_from:
            await sessions.close_browser_sessions(
                session, browser.ref, reason="IDENTITY_SWITCH", clock=clock, guest_ref=resolution.switched_from
            )
    elif event_type == "ORDER_CHECKOUT":
        guest = await guests.get_guest(session, browser.guest_ref)
        if guest.guest_type == "visitor":
            outcome.failure = "Guest is not identified"
            return outcome
    event.guest_ref = browser.guest_ref

    pos_info = sessions.PosInfo(pos.name, pos.timeout_minutes, pos.language, pos.currency_code)
    row, opened = await sessions.session_for_event(
        session,
        browser_ref=browser.ref,
        guest_ref=browser.guest_ref,
        channel=event.channel or "WEB",
        pos=pos_info,
        user_agent=ctx.user_agent,
        clock=clock,
    )
    if opened:
        await guests.seen(session, browser.guest_ref, browser, when=clock.now())
    event.session_ref = row.ref
    outcome.warnings.extend(
        sessions.touch(
            row, message=message, event_type=event_type, timeout_minutes=pos.timeout_minutes, now=clock.now()
        )
    )
    if event_type == "CHECKOUT":
        outcome.warnings.extend(await _checkout(session, message, row, event, clock=clock))
    elif event_type == "ORDER_CHECKOUT":
        outcome.warnings.extend(await _order_checkout(session, message, row, event, clock=clock))
    elif event_type == "PAYMENT":
        pay_type = message.get("pay_type")
        if isinstance(pay_type, str) and pay_type and row.order_ref:
            await orders.set_payment_type(session, row.order_ref, pay_type, clock=clock)
    return outcome


async def _checkout(
    session: AsyncSession, message: dict[str, Any], row: Any, event: Event, *, clock: Clock
) -> list[str]:
    reference_id = message.get("reference_id")
    status = message.get("status")
    status = status.upper() if isinstance(status, str) else "PURCHASED"
    if not isinstance(reference_id, str) or not reference_id:
        return ["reference_id: CHECKOUT needs the order id; no order recorded"]
    if status in orders.CONVERTING_STATUSES:
        order = await orders.checkout(
            session,
            guest_ref=row.guest_ref,
            session_ref=row.ref,
            reference_id=reference_id[:200],
            status=status,
            lines=sessions.checkout_lines(row),
            currency=event.currency or row.currency_code,
            channel=event.channel,
            point_of_sale=event.point_of_sale,
            clock=clock,
        )
        sessions.mark_converted(row, order_ref=order.ref, value=order.price)
        return []
    if status in orders.ORDER_STATUSES:
        if not await orders.update_status(session, reference_id[:200], status, clock=clock):
            return [f"reference_id: no order to mark {status}"]
        return []
    return [f"status: unknown CHECKOUT status {status[:30]!r}"]


async def _order_checkout(
    session: AsyncSession, message: dict[str, Any], row: Any, event: Event, *, clock: Clock
) -> list[str]:
    data = message.get("order")
    if not isinstance(data, dict):
        return ["order: ORDER_CHECKOUT needs an order object"]
    order, warnings = await orders.upsert_order(
        session,
        guest_ref=row.guest_ref,
        session_ref=row.ref,
        data=data,
        channel=event.channel,
        point_of_sale=event.point_of_sale,
        clock=clock,
    )
    if order is not None and order.status in orders.CONVERTING_STATUSES:
        sessions.mark_converted(row, order_ref=order.ref, value=order.price)
    return warnings
