"""The guest context object given to templates and conditions (spec personalize.md §5.5).

Built per request from what is stored at that moment. Sessions and orders are loaded only when the
flow's templates or conditions read them (``needs``). A *closed* session never changes again (events only
ever join an open one; a merge changes only its guest, which the context does not show), so each process
keeps the closed sessions it built, with their events, in a bounded LRU (:class:`ClosedSessions`): every
request still reads which sessions the guest has (and whether each is open) and builds the open ones and
any it does not hold afresh.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.guests import service as guests
from innkeeper.guests.service import Guest, GuestProfile
from innkeeper.orders import service as orders
from innkeeper.sessions import service as sessions
from innkeeper.sessions.service import Session

_decoder = msgspec.json.Decoder()
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder().decode
MAX_SESSIONS = 50
MAX_EVENTS_PER_SESSION = 200
MAX_ORDERS = 50
# Closed sessions (with their events) a process keeps per database (INNKEEPER_PERSONALIZE_CACHED_SESSIONS).
CACHED_SESSIONS = 20_000
# The columns of ``sessions.context_rows``' rows, in the order ``_event`` / ``session_of_row`` take them.
_EVENT_COLUMNS = sessions.CONTEXT_EVENT_COLUMNS
_SESSION_COLUMNS = sessions.CONTEXT_SESSION_COLUMNS
_STATUS = _SESSION_COLUMNS.index("status")
# Event fields that are not "arbitrary data" (cdp.md event model).
_STANDARD_EVENT_FIELDS = frozenset(
    {"type", "channel", "pos", "language", "currency", "browser_id", "client_key", "page", "requested_at"}
)


def transient_guest() -> dict[str, Any]:
    """The empty visitor used when the request names nobody we know (§2.4)."""
    return {
        "ref": None,
        "guestType": "visitor",
        "email": None,
        "emails": [],
        "identifiers": [],
        "dataExtensions": [],
        "extensions": [],
        "segmentMemberships": [],
        "sessions": [],
        "orders": [],
    }


class ClosedSessions:
    """The guest context's closed sessions as built (the session dict with its events), least recently used out.

    Keyed by (session ref, whether events carry their message): the two builds differ. Each is kept as msgpack
    bytes and decoded afresh for every request (~2 µs a session), so no request sees another's changes, and a
    bytes object is not tracked by the garbage collector: kept as dicts and lists (~15 containers a session),
    10,000 sessions made every full collection ~75 ms longer (a callFlows p99 of 30-40 ms at half load).
    A session whose build would not come back exactly (a value msgpack cannot carry) is not kept.
    """

    __slots__ = ("_items", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, bool], bytes] = OrderedDict()

    def get(self, key: tuple[str, bool]) -> dict[str, Any] | None:
        blob = self._items.get(key)
        if blob is None:
            return None
        self._items.move_to_end(key)
        item: dict[str, Any] = _unpack(blob)
        if "events" in item:
            item["interactions"] = item["events"]  # one list under both names, as built
        return item

    def put(self, key: tuple[str, bool], item: dict[str, Any]) -> None:
        try:
            blob = _pack(item)
        except (TypeError, ValueError, msgspec.MsgspecError):
            return
        if _unpack(blob) != item:
            return
        self._items[key] = blob
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


_CLOSED_SESSIONS: weakref.WeakKeyDictionary[Engine, ClosedSessions] = weakref.WeakKeyDictionary()


def closed_sessions(session: AsyncSession, size: int) -> ClosedSessions | None:
    """The process's :class:`ClosedSessions` of the session's database (one per engine); None when ``size`` is 0."""
    bind = session.bind
    if size <= 0 or bind is None:
        return None
    engine = bind.sync_engine
    cache = _CLOSED_SESSIONS.get(engine)
    if cache is None:
        cache = _CLOSED_SESSIONS[engine] = ClosedSessions(size)
    cache.size = size
    return cache


async def guest_context(
    session: AsyncSession,
    guest: Guest | GuestProfile,
    *,
    needs: Iterable[str],
    max_sessions: int = MAX_SESSIONS,
    cached_sessions: int = CACHED_SESSIONS,
) -> dict[str, Any]:
    needs = set(needs)
    identifiers = await guests.identifier_pairs(session, guest.ref)
    extensions = await guests.extension_rows(session, guest.ref)
    data_extensions = [{"name": name, "key": key, "values": dict(data)} for name, key, data in extensions]
    context: dict[str, Any] = {
        "ref": guest.ref,
        "guestType": (guest.guest_type or "visitor").lower(),
        "firstName": guest.first_name,
        "lastName": guest.last_name,
        "title": guest.title,
        "gender": guest.gender,
        "email": guest.email,
        "emails": list(guest.emails or []),
        "phoneNumbers": list(guest.phone_numbers or []),
        "dateOfBirth": guest.date_of_birth,
        "nationality": guest.nationality,
        "city": guest.city,
        "country": guest.country,
        "language": guest.language,
        "firstSeen": guest.first_seen,
        "lastSeen": guest.last_seen,
        "identifiers": [{"provider": provider, "id": value} for provider, value in identifiers],
        "dataExtensions": data_extensions,
        "extensions": data_extensions,
        "segmentMemberships": [],
        "sessions": [],
        "orders": [],
    }
    if "sessions" in needs:
        context["sessions"] = await _sessions(
            session,
            guest.ref,
            max_sessions,
            event_data="event_data" in needs,
            cache=closed_sessions(session, cached_sessions),
        )
    if "orders" in needs:
        context["orders"] = await _orders(session, guest.ref)
    return context


async def _sessions(
    session: AsyncSession, guest_ref: str, limit: int, *, event_data: bool, cache: ClosedSessions | None
) -> list[dict[str, Any]]:
    """The guest's newest sessions, newest first: closed ones from ``cache`` when it holds them, the rest read."""
    heads = await sessions.context_heads(session, guest_ref, limit=limit)
    if not heads:
        return []
    built: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    for ref, status in heads:
        item = cache.get((ref, event_data)) if cache is not None and status != "OPEN" else None
        if item is None:
            missing.append(ref)
        else:
            built[ref] = item
    if missing:
        # Rows by position: ``_SESSION_COLUMNS``, and ``_EVENT_COLUMNS`` then ``raw`` when asked.
        rows, found = await sessions.context_rows(session, missing, with_raw=event_data)
        events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        raw_at = len(_EVENT_COLUMNS)
        for row in found:
            events[row[1]].append(_event(row, row[raw_at] if event_data else None))
        for row in rows:
            ref = row[0]
            item = built[ref] = session_of_row(row, events[ref][-MAX_EVENTS_PER_SESSION:])
            if cache is not None and row[_STATUS] != "OPEN":
                cache.put((ref, event_data), item)
    # A session deleted since the first read is left out.
    return [built[ref] for ref, _ in heads if ref in built]


async def session_with_events(session: AsyncSession, session_ref: str) -> dict[str, Any] | None:
    """One session as personalization code sees it, with its events (a trigger's ``event.message``)."""
    row = await sessions.get_session(session, session_ref)
    if row is None:
        return None
    events = await sessions.event_rows_of_sessions(session, [row.ref], with_raw=True)
    return session_dict(row, [_event_from_row(event, True) for event in events][-MAX_EVENTS_PER_SESSION:])


def _event_from_row(row: Any, event_data: bool) -> dict[str, Any]:
    """An event for personalization; ``arbitraryData`` holds the full message only when some code reads it."""
    return _event(
        (
            row.ref,
            row.session_ref,
            row.type,
            row.channel,
            row.point_of_sale,
            row.created_at,
            row.page,
            row.language,
            row.currency,
            row.processing_status,
        ),
        row.raw if event_data else None,
    )


def _event(columns: Sequence[Any], raw: str | None) -> dict[str, Any]:
    """The event of a row's ``_EVENT_COLUMNS`` (by position; more may follow); ``raw`` (the message) is decoded
    into ``arbitraryData`` if given."""
    created_at, page = columns[5], columns[6]
    if raw is None:
        arbitrary: dict[str, Any] = {"page": page} if page is not None else {}
        session_data: Any = None
    else:
        arbitrary = _arbitrary(raw)
        if page is not None:
            arbitrary["page"] = page
        session_data = arbitrary.get("sessionData")
    return {
        "ref": columns[0],
        "type": columns[2],
        "channel": columns[3],
        "pointOfSale": columns[4],
        "createdAt": created_at,
        "date": created_at,
        "page": page,
        "language": columns[7],
        "currency": columns[8],
        "status": columns[9],
        "arbitraryData": arbitrary,
        "sessionData": session_data if isinstance(session_data, dict) else {},
    }


def _arbitrary(raw: str) -> dict[str, Any]:
    try:
        message = _decoder.decode(raw)
    except msgspec.DecodeError:
        return {}
    if not isinstance(message, dict):
        return {}
    return {key: value for key, value in message.items() if key not in _STANDARD_EVENT_FIELDS}


def session_of_row(columns: Sequence[Any], event_dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """``session_dict`` of a plain row's ``_SESSION_COLUMNS`` (its JSON values are the row's own, not copied)."""
    (
        ref,
        browser_ref,
        channel,
        pos,
        origin,
        status,
        close_reason,
        started_at,
        last_activity_at,
        ended_at,
        language,
        currency_code,
        cart,
        cart_type,
        abandoned_revenue,
        value,
        utm,
        referrer,
        device,
        session_data,
    ) = columns
    return {
        "ref": ref,
        "sessionType": sessions.session_type(channel),
        "channel": channel,
        "status": status,
        "pointOfSale": pos,
        "browserRef": browser_ref,
        "origin": origin,
        "startedAt": started_at,
        "endedAt": ended_at,
        "duration": sessions.duration(started_at, ended_at or last_activity_at),
        "language": language,
        "currencyCode": currency_code,
        "cartType": cart_type,
        "cart": cart if type(cart) is list else list(cart or []),
        "abandonedRevenue": abandoned_revenue or 0,
        "value": value,
        "utm": utm if type(utm) is dict else dict(utm or {}),
        "referrer": referrer,
        "device": device if type(device) is dict else dict(device or {}),
        "closeReason": close_reason,
        "sessionData": session_data if type(session_data) is dict else dict(session_data or {}),
        "events": event_dicts,
        "interactions": event_dicts,
    }


def session_dict(row: Session, event_dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """A session as seen by personalization code; ``interactions`` aliases ``events`` for FreeMarker."""
    return {
        "ref": row.ref,
        "sessionType": sessions.session_type(row.channel),
        "channel": row.channel,
        "status": row.status,
        "pointOfSale": row.point_of_sale,
        "browserRef": row.browser_ref,
        "origin": row.origin,
        "startedAt": row.started_at,
        "endedAt": row.ended_at,
        "duration": sessions.duration(row.started_at, row.ended_at or row.last_activity_at),
        "language": row.language,
        "currencyCode": row.currency_code,
        "cartType": row.cart_type,
        "cart": list(row.cart or []),
        "abandonedRevenue": row.abandoned_revenue or 0,
        "value": row.value,
        "utm": dict(row.utm or {}),
        "referrer": row.referrer,
        "device": dict(row.device or {}),
        "closeReason": row.close_reason,
        "sessionData": dict(row.session_data or {}),
        "events": event_dicts,
        "interactions": event_dicts,
    }


async def _orders(session: AsyncSession, guest_ref: str) -> list[dict[str, Any]]:
    # Rows by position: ``orders.CONTEXT_ORDER_COLUMNS`` and ``orders.CONTEXT_ITEM_COLUMNS``.
    rows, item_rows = await orders.context_orders(session, guest_ref, limit=MAX_ORDERS)
    items: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ref, order_ref, item_id, type_, product_id, reference_id, name, status, price, currency, quantity in item_rows:
        items[order_ref].append(
            {
                "ref": ref,
                "itemId": item_id,
                "type": type_,
                "productId": product_id,
                "referenceId": reference_id,
                "name": name,
                "status": status,
                "price": price,
                "currencyCode": currency,
                "quantity": quantity,
            }
        )
    return [
        {
            "ref": ref,
            "referenceId": reference_id,
            "status": status,
            "orderedAt": ordered_at,
            "price": price,
            "currencyCode": currency,
            "channel": channel,
            "pointOfSale": pos,
            "paymentType": payment_type,
            "orderItems": items[ref],
        }
        for ref, reference_id, status, ordered_at, price, currency, channel, pos, payment_type in rows
    ]


def current_session(context: dict[str, Any], session_ref: str | None) -> dict[str, Any] | None:
    for item in context.get("sessions") or []:
        if item.get("ref") == session_ref:
            return dict(item)
    return None
