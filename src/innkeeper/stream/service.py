"""Event ingestion (spec cdp.md §3–5, §7.3): validate, sessionize, apply, store."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import events
from innkeeper.core.clock import Clock
from innkeeper.core.ids import new_ref
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
        ref=new_ref(),
        type=event_type,
        browser_ref=browser.ref,
        guest_ref=browser.guest_ref,
        channel=channel,
        point_of_sale=pos_name,
        language=_text(message, "language", 8),
        currency=_text(message, "currency", 8),
        page=_text(message, "page", 2000),
        client_key=ctx.client_key,
        created_at=now,
        modified_at=now,
        processing_status="SUCCESS",
        warnings=[],
        transport=ctx.transport,
        user_agent=ctx.user_agent[:1000] if ctx.user_agent else None,
        client_requested_at=_text(message, "requested_at", 40),
        raw=raw,
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
