"""Guests: search, the guest profile, its timeline and the debug event viewer (spec cdp.md §5.5, §12.1).

Everything on these pages came from the outside world (names, pages, product names, extension
values, the raw event JSON): it is rendered as text by Jinja's autoescape, never marked safe.
The debug controls (the orange cog with the event's record and its raw JSON) appear only when
the tenant's debug flag is on *and* the user's role has ``debug.read``. A cog's body is not on the
timeline page (a guest can have 5,000 events): ``static/portal.js`` fetches it from the event's
page (``/portal/guests/{ref}/events/{event_ref}?fragment=1``) when the cog first opens, and only
that page reads the raw JSON from the database.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Protocol

import msgspec
from fastapi import Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import as_utc
from innkeeper.core.timeparse import parse_iso
from innkeeper.guests import service as guests
from innkeeper.guests.errors import GuestNotFound
from innkeeper.orders import service as orders
from innkeeper.portal._web import Portal, PortalInterrupt, need, page, router
from innkeeper.sessions import views
from innkeeper.tenant import service as tenant

OUTCOMES = {"browsed": "BROWSED", "converted": "CONVERTED", "abandoned": "ABANDONED"}
STATUSES = {"success": "SUCCESS", "failed": "FAILED"}
CHANNELS = (
    "WEB",
    "MOBILE_WEB",
    "MOBILE_APP",
    "EMAIL",
    "SMS",
    "CALL_CENTER",
    "BRANCH",
    "KIOSK",
    "AIRPORT_KIOSK",
    "GDS",
    "OTA",
    "OFFLINE",
    "OTHER",
)
PROFILE_ORDERS = 100
EVENT_VIEWER_LIMIT = 500


@router.get("/guests")
async def guest_search(
    request: Request,
    portal: Annotated[Portal, Depends(need("guests.read"))],
    q: Annotated[str, Query(max_length=320)] = "",
) -> Response:
    async with portal.runtime.sessions() as session:
        rows = await guests.find_guests(session, q)
    return page(request, "guests.html", portal=portal, q=q, guests=rows, **HELPERS)


@router.get("/guests/{ref}")
async def guest_profile(
    request: Request, ref: str, portal: Annotated[Portal, Depends(need("guests.read"))]
) -> Response:
    async with portal.runtime.sessions() as session:
        guest, debug = await _guest(request, session, portal, ref)
        identifiers = await guests.identifiers_of(session, guest.ref)
        browsers = await guests.browsers_of(session, guest.ref)
        extensions = await guests.extensions_of(session, guest.ref)
        order_rows = await orders.orders_for_guest(session, guest.ref, limit=PROFILE_ORDERS)
        items = await orders.items_of_orders(session, [o.ref for o in order_rows])
    lines: dict[str, list[Any]] = {}
    for item in items:
        lines.setdefault(item.order_ref, []).append(item)
    return _guest_page(
        request,
        portal,
        guest,
        "profile",
        debug,
        identifiers=identifiers,
        browsers=browsers,
        extensions=extensions,
        orders=[(o, lines.get(o.ref, [])) for o in order_rows],
    )


@router.get("/guests/{ref}/timeline")
async def guest_timeline(
    request: Request,
    ref: str,
    portal: Annotated[Portal, Depends(need("guests.read"))],
    channel: str = "",
    outcome: str = "",
    from_: Annotated[str, Query(alias="from")] = "",
    to: str = "",
) -> Response:
    """The last 100 sessions, newest first, each with its cart and events (spec §5.5)."""
    form = {"channel": channel, "outcome": outcome, "from": from_, "to": to}
    async with portal.runtime.sessions() as session:
        guest, debug = await _guest(request, session, portal, ref)
        error = None
        items: list[dict[str, Any]] = []
        try:
            start, end = _date_range(from_, to)
            cart_type = _choice(outcome, OUTCOMES, "Outcome")
            channel_filter = _channel(channel)
        except BadFilter as exc:
            error = str(exc)
        else:
            items = await views.timeline(
                session, guest.ref, channel=channel_filter, cart_type=cart_type, start=start, end=end
            )
    for item in items:
        item["events"] = event_lines(views.timeline_events(item["events"]))
    return _guest_page(
        request,
        portal,
        guest,
        "timeline",
        debug,
        status=400 if error else 200,
        form=form,
        error=error,
        sessions=items,
        channels=CHANNELS,
        limit=views.TIMELINE_LIMIT,
    )


@router.get("/guests/{ref}/events")
async def guest_event_viewer(
    request: Request,
    ref: str,
    portal: Annotated[Portal, Depends(need("debug.read"))],
    status: str = "",
    from_: Annotated[str, Query(alias="from")] = "",
    to: str = "",
) -> Response:
    """The debug event viewer: every event of the guest (failed ones too), newest first (spec §12.1)."""
    form = {"status": status, "from": from_, "to": to}
    async with portal.runtime.sessions() as session:
        guest, debug = await _guest(request, session, portal, ref)
        error = None
        rows: list[dict[str, Any]] = []
        try:
            start, end = _date_range(from_, to)
            wanted = _choice(status, STATUSES, "Status")
        except BadFilter as exc:
            error = str(exc)
        else:
            if debug:
                rows = await views.guest_events(
                    session, guest.ref, status=wanted, start=start, end=end, include_raw=False, limit=EVENT_VIEWER_LIMIT
                )
    return _guest_page(
        request,
        portal,
        guest,
        "events",
        debug,
        status=400 if error else 200,
        form=form,
        error=error,
        events=event_lines(rows),
        limit=EVENT_VIEWER_LIMIT,
    )


@router.get("/guests/{ref}/events/{event_ref}")
async def guest_event(
    request: Request,
    ref: str,
    event_ref: str,
    portal: Annotated[Portal, Depends(need("debug.read"))],
    fragment: bool = False,
) -> Response:
    """One event's debug details (its stored record and raw JSON): the body of a cog, fetched by
    ``static/portal.js`` with ``?fragment=1``, or a page of its own. 404 when the event is not the
    guest's, and while the tenant's debug flag is off (the page then only says so)."""
    async with portal.runtime.sessions() as session:
        guest, debug = await _guest(request, session, portal, ref)
        wanted = event_ref.strip().lower()
        record = await views.event_debug(session, guest.ref, wanted) if debug and len(wanted) <= 64 else None
    event = None if record is None else event_detail(record)
    if event is not None and fragment:
        return page(request, "_event_debug.html", event=event)
    return _guest_page(
        request,
        portal,
        guest,
        "event",
        debug,
        status=200 if event is not None else 404,
        event=event,
        event_ref=event_ref[:64],
    )


# --- helpers ------------------------------------------------------------------------------------


class BadFilter(ValueError):
    """A filter of the timeline or event viewer that cannot be used (shown on the page, status 400)."""


class _Named(Protocol):
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...
    @property
    def guest_type(self) -> str: ...
    @property
    def email(self) -> str | None: ...


def guest_label(guest: _Named) -> str:
    """The guest's name; "Anonymous Visitor" for a visitor without one, as Sitecore shows it."""
    name = " ".join(part for part in (guest.first_name, guest.last_name) if part)
    if name:
        return name
    if guest.guest_type == "visitor":
        return "Anonymous Visitor"
    return guest.email or f"Unnamed {guest.guest_type}"


def when(value: datetime | str | None) -> str:
    """A stored time (datetime or ISO string) as ``YYYY-MM-DD HH:MM:SS`` UTC; empty when unknown."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:19].replace("T", " ")
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S")


def minutes(duration: float | None) -> str:
    """A session duration (spec §5.3: minutes + seconds / 100, so 44.55 is 44 min 55 s) for people."""
    if duration is None:
        return ""
    whole = int(duration)
    return f"{whole} min {round((duration - whole) * 100):02d} s"


def money(value: float | int | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def pretty_json(raw: str) -> str:
    """The stored message, indented when it is JSON; only whitespace changes (strings, numbers, escapes stay)."""
    try:
        return msgspec.json.format(raw, indent=2)
    except (msgspec.DecodeError, TypeError, ValueError):
        return raw


def event_lines(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add what the event table shows to each event line (in place): the display time and why it failed."""
    for event in events:
        event["time"] = when(event["createdAt"])
        if event["processingStatus"] != "SUCCESS":
            event["reason"] = event.get("failureReason") or event.get("summary") or ""
    return events


def event_detail(record: dict[str, Any]) -> dict[str, Any]:
    """An event record (``raw`` included) with what its debug details show: the display time, the
    key/value details and the raw message pretty-printed."""
    event = event_lines([record])[0]
    event["details"] = debug_details(event)
    event["pretty"] = pretty_json(event["raw"])
    return event


def debug_details(event: dict[str, Any]) -> str:
    """The event viewer's key/value details of one event, as aligned text lines (spec §4.3, §12.1)."""
    problems = ""
    if event["failureReason"]:
        problems += f"Failure reason     {event['failureReason']}\n"
    for warning in event["warnings"]:
        problems += f"Warning            {warning}\n"
    return (
        f"Processing status  {event['processingStatus']}\n{problems}"
        f"Browser Ref        {event['browserRef']}\n"
        f"Channel            {event['channel'] or ''}\n"
        f"Client Key         {event['clientKey']}\n"
        f"Created At         {event['createdAt']}\n"
        f"Modified At        {event['modifiedAt']}\n"
        f"Point of Sale      {event['pointOfSale'] or ''}\n"
        f"Ref                {event['ref']}\n"
        f"Session Ref        {event['sessionRef'] or 'none'}\n"
        f"Transport          {event['transport']}"
    )


# What the templates use to show a guest, a time, an amount and a session duration.
HELPERS: dict[str, Any] = {"label": guest_label, "when": when, "money": money, "minutes": minutes}


async def _guest(request: Request, session: AsyncSession, portal: Portal, ref: str) -> tuple[guests.Guest, bool]:
    """The live guest with this ref (without one, the request ends with the guest's 404 page), and
    whether its pages show debug controls: the tenant's debug flag and the role's ``debug.read``."""
    try:
        guest = await guests.get_guest(session, ref.strip().lower())
    except GuestNotFound:
        raise PortalInterrupt(page(request, "guest_not_found.html", 404, portal=portal, ref=ref)) from None
    return guest, portal.can("debug.read") and bool((await tenant.get_tenant(session)).debug)


def _guest_page(
    request: Request, portal: Portal, guest: guests.Guest, tab: str, debug: bool, *, status: int = 200, **context: Any
) -> Response:
    """A page of the guest's tabs (``guest_{tab}.html``) with its header and the display helpers."""
    return page(
        request, f"guest_{tab}.html", status, portal=portal, guest=guest, tab=tab, debug=debug, **HELPERS, **context
    )


def _parse_day(value: str, name: str, *, end_of_day: bool) -> datetime | None:
    text = value.strip()
    if not text:
        return None
    try:
        parsed = parse_iso(text) if len(text) <= 40 else None
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is before the first representable UTC time
        parsed = None
    if parsed is None:
        raise BadFilter(f"{name}: {text[:40]!r} is not a date; use YYYY-MM-DD or an ISO 8601 date-time.")
    if end_of_day and len(text) == 10:
        # A day given as "to" includes the whole day.
        parsed = parsed.replace(hour=23, minute=59, second=59, microsecond=999_999)
    return parsed


def _date_range(start: str, end: str) -> tuple[datetime | None, datetime | None]:
    first = _parse_day(start, "From", end_of_day=False)
    last = _parse_day(end, "To", end_of_day=True)
    if first is not None and last is not None and first > last:
        raise BadFilter("From must not be after To.")
    return first, last


def _choice(value: str, allowed: dict[str, str], name: str) -> str | None:
    key = value.strip().lower()
    if not key:
        return None
    if key not in allowed:
        raise BadFilter(f"{name}: choose one of {', '.join(allowed)}.")
    return allowed[key]


def _channel(value: str) -> str | None:
    text = value.strip()
    if len(text) > 40:
        raise BadFilter("Channel: at most 40 characters.")
    return text or None
