"""Guest-context fixtures (§5.5 dicts) and condition contexts shared by the condition tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from innkeeper.personalize.conditions import ConditionContext

NOW = datetime(2025, 5, 14, 9, 30, tzinfo=UTC)  # a Wednesday; 10:30 in Europe/Dublin (IST)
MAC_CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
ANDROID_TABLET = "Mozilla/5.0 (Linux; Android 14; SM-X910) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"


def ago(**delta: float) -> datetime:
    """A time before NOW."""
    return NOW - timedelta(**delta)


def event(kind: str, at: datetime, page: str | None = None, **extra: Any) -> dict[str, Any]:
    """An event as the guest context exposes it (arbitraryData holds the page)."""
    data: dict[str, Any] = dict(extra)
    if page is not None:
        data["page"] = page
    return {
        "ref": f"e-{kind.lower()}-{int(at.timestamp())}",
        "type": kind,
        "channel": "WEB",
        "pointOfSale": "myretailsite/ireland",
        "createdAt": at,
        "page": page,
        "arbitraryData": data,
        "sessionData": {},
    }


def session(ref: str, started: datetime, events: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A session item (closed unless ``status`` says otherwise)."""
    base: dict[str, Any] = {
        "ref": ref,
        "sessionType": "WEB",
        "channel": "WEB",
        "status": "CLOSED",
        "pointOfSale": "myretailsite/ireland",
        "browserRef": "b-1",
        "startedAt": started,
        "endedAt": started + timedelta(minutes=20),
        "duration": 1200,
        "language": "EN",
        "currencyCode": "EUR",
        "cartType": "BROWSED",
        "cart": [],
        "abandonedRevenue": 0,
        "utm": {},
        "referrer": None,
        "device": {"type": "desktop", "os": "macOS", "browser": "Chrome"},
        "events": events,
    }
    base.update(fields)
    return base


def anonymous_guest() -> dict[str, Any]:
    """A first-time anonymous visitor on mobile, with one open session."""
    current = session(
        "s-anon",
        ago(minutes=5),
        [
            event("VIEW", ago(minutes=4), "/home"),
            event("VIEW", ago(minutes=3), "/shoes"),
            event("SEARCH", ago(minutes=2), None, query="boots"),
        ],
        status="OPEN",
        endedAt=None,
        cartType=None,
        utm={"utm_source": "newsletter", "utm_campaign": "spring"},
        referrer="https://www.google.com/",
        device={"type": "mobile", "os": "iOS", "browser": "Safari"},
    )
    return {
        "ref": "g-anon",
        "guestType": "visitor",
        "email": None,
        "emails": [],
        "firstSeen": ago(minutes=5),
        "lastSeen": ago(minutes=2),
        "identifiers": [],
        "dataExtensions": [],
        "segmentMemberships": [],
        "sessions": [current],
        "orders": [],
    }


def customer_guest() -> dict[str, Any]:
    """An identified customer: four sessions (one abandoned cart 3 days ago), two orders, data extensions."""
    current = session(
        "s-c3",
        ago(minutes=10),
        [
            event("VIEW", ago(minutes=9), "/shoes"),
            event("ADD", ago(minutes=8), None, product={"productId": "SKU1"}),
            event("VIEW", ago(minutes=7), "/checkout"),
        ],
        status="OPEN",
        endedAt=None,
        cartType=None,
        cart=[
            {"itemId": "i1", "productId": "SKU1", "name": "Runner", "type": "SHOES", "quantity": 2, "price": 60.0},
            {"itemId": "i2", "productId": "SKU9", "name": "Laces", "type": "ACCESSORY", "quantity": 1, "price": 15.5},
        ],
    )
    abandoned = session(
        "s-c2",
        ago(days=3),
        [
            event("VIEW", ago(days=3), "/shoes"),
            event("VIEW", ago(days=3) + timedelta(minutes=1), "/shoes/runner"),
            event("VIEW", ago(days=3) + timedelta(minutes=2), "/shoes/trail"),
            event("ADD", ago(days=3) + timedelta(minutes=3)),
        ],
        cartType="ABANDONED",
        abandonedRevenue=89.9,
        utm={"utm_source": "google"},
    )
    converted = session(
        "s-c1",
        ago(days=40),
        [
            event("VIEW", ago(days=40), "/home"),
            event("VIEW", ago(days=40) + timedelta(minutes=1), "/shoes"),
            event("CHECKOUT", ago(days=40) + timedelta(minutes=5)),
            event("CONFIRM", ago(days=40) + timedelta(minutes=6)),
        ],
        cartType="CONVERTED",
    )
    app = session(
        "s-c0",
        ago(days=60),
        [event("VIEW", ago(days=60), "/app/home")],
        sessionType="APP",
        channel="MOBILE_APP",
    )
    return {
        "ref": "g-jane",
        "guestType": "customer",
        "firstName": "Jane",
        "lastName": "Doe",
        "title": "Ms",
        "gender": "female",
        "email": "jane@example.com",
        "emails": ["jane@example.com"],
        "dateOfBirth": datetime(1990, 4, 1, tzinfo=UTC),
        "nationality": "IE",
        "city": "Dublin",
        "country": "IE",
        "language": "EN",
        "firstSeen": ago(days=60),
        "lastSeen": ago(minutes=7),
        "identifiers": [{"provider": "email", "id": "jane@example.com"}],
        "dataExtensions": [
            {
                "name": "LastSearch",
                "key": "default",
                "values": {"searches": ["boots", "sandals"], "count": 2, "loyalty": {"tier": "gold", "points": 1200}},
            },
            {"name": "Preferences", "key": "email", "values": {"optIn": True, "frequency": "weekly"}},
        ],
        "segmentMemberships": [{"ref": "seg-1", "friendlyId": "high_value", "name": "High value"}],
        "sessions": [current, abandoned, converted, app],
        "orders": [
            {
                "ref": "o-2",
                "referenceId": "ORD-2",
                "status": "PURCHASED",
                "orderedAt": ago(days=40),
                "price": 120.0,
                "currencyCode": "EUR",
                "channel": "WEB",
                "pointOfSale": "myretailsite/ireland",
                "orderItems": [
                    {"productId": "SKU1", "type": "SHOES", "name": "Runner", "price": 60.0, "quantity": 2},
                ],
            },
            {
                "ref": "o-1",
                "referenceId": "ORD-1",
                "status": "PURCHASED",
                "orderedAt": ago(days=200),
                "price": 45.0,
                "currencyCode": "GBP",
                "channel": "WEB",
                "pointOfSale": "myretailsite/uk",
                "orderItems": [
                    {"productId": "SKU7", "type": "SOCKS", "name": "Wool socks", "price": 15.0, "quantity": 3},
                ],
            },
        ],
    }


def request(**fields: Any) -> dict[str, Any]:
    """A §6.3 request object with defaults for a web call."""
    base: dict[str, Any] = {
        "clientKey": "ck",
        "channel": "WEB",
        "language": None,
        "currencyCode": "EUR",
        "pointOfSale": "myretailsite/ireland",
        "browserId": "b-1",
        "email": None,
        "identifiers": [],
        "friendlyId": "home_banner",
        "params": {},
        "variants": [],
        "headers": {},
        "ip": "203.0.113.9",
        "geo": None,
    }
    base.update(fields)
    return base


def anonymous_ctx(**overrides: Any) -> ConditionContext:
    """The anonymous visitor, no User-Agent header (device falls back to the session), request without extras."""
    guest = anonymous_guest()
    values: dict[str, Any] = {"guest": guest, "request": request(), "now": NOW, "session": guest["sessions"][0]}
    values.update(overrides)
    return ConditionContext(**values)


def customer_ctx(**overrides: Any) -> ConditionContext:
    """The customer on desktop Chrome/macOS in Dublin, with UTM, referrer and custom request params."""
    guest = customer_guest()
    req = request(
        language="en-GB",
        headers={"user-agent": MAC_CHROME, "referer": "https://news.example.org/article"},
        geo={"country": "IE", "region": "Leinster", "city": "Dublin"},
        params={"utm": {"campaign": "summer-sale"}, "utm_medium": "email", "plan": {"tier": "gold", "seats": 12}},
    )
    values: dict[str, Any] = {
        "guest": guest,
        "request": req,
        "now": NOW,
        "session": guest["sessions"][0],
        "timezone": "Europe/Dublin",
    }
    values.update(overrides)
    return ConditionContext(**values)


def triggered_ctx() -> ConditionContext:
    """The customer's abandoned-cart trigger: event.message is the closed session."""
    guest = customer_guest()
    closed = guest["sessions"][1]
    return ConditionContext(
        guest=guest,
        request=request(channel="WEB"),
        now=NOW,
        session=closed,
        event={"type": "SESSION_ABANDONED", "createdAt": ago(minutes=1), "message": closed},
        flow={"ref": "f-1", "friendlyId": "cart_reminder", "subtype": "TRIGGERED", "type": "TRIGGERED"},
    )


CONTEXTS = {"anonymous": anonymous_ctx, "customer": customer_ctx, "triggered": triggered_ctx}
