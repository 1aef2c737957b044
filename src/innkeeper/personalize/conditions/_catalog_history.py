"""Built-ins on the guest's history: sessions, page views, events, carts, abandoned carts and orders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from innkeeper.personalize.conditions._params import ParamSpec, count_op, has_param, is_param, match_op
from innkeeper.personalize.conditions._registry import WEB_INTERACTIVE, define, require_value
from innkeeper.personalize.conditions._values import (
    DAY_MS,
    all_sessions,
    compare,
    events_of,
    js_truthy,
    lines,
    match,
    millis,
    num,
    other_sessions,
    path_get,
    positive,
)
from innkeeper.personalize.conditions.context import ConditionContext, to_millis
from innkeeper.personalize.conditions.errors import ConditionError

SESSIONS = frozenset({"sessions"})
ORDERS = frozenset({"orders"})
PAGE_OPS = ("equals", "contains", "starts with", "ends with", "regex")


def _n(*, integer: bool = True, minimum: float = 0) -> ParamSpec:
    return ParamSpec("n", "number", integer=integer, minimum=minimum)


def _days(*, required: bool = False) -> ParamSpec:
    return ParamSpec("days", "number", required=required, minimum=0)


def _now(ctx: ConditionContext) -> int:
    now = to_millis(ctx.now)
    assert now is not None
    return now


def _within(value: Any, ctx: ConditionContext, days: float | None) -> bool:
    """True when no window is set, else when ``value`` is a time within the last ``days`` days."""
    if days is None:
        return True
    t = millis(value)
    return t is not None and t >= _now(ctx) - days * DAY_MS


@define("first_visit", is_param(), needs=SESSIONS, flow_types=WEB_INTERACTIVE)
def first_visit(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """This is / is not the guest's first session (no session other than the current one)."""
    return positive(p["is"], len(other_sessions(ctx)) == 0)


@define("number_of_sessions", count_op(), _n(), _days(), needs=SESSIONS)
def number_of_sessions(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The guest has had ``op n`` sessions (started within the last ``days`` days when given)."""
    count = sum(1 for s in all_sessions(ctx) if _within(s.get("startedAt"), ctx, p["days"]))
    return compare(count, p["op"], p["n"])


@define("days_since_last_visit", count_op(), _n(), needs=SESSIONS)
def days_since_last_visit(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """Whole days since the previous session ended (or started) ``op n``; False when there is none."""
    previous = other_sessions(ctx)
    if not previous:
        return False
    t = millis(previous[0].get("endedAt")) or millis(previous[0].get("startedAt"))
    if t is None:
        return False
    return compare((_now(ctx) - t) // DAY_MS, p["op"], p["n"])


def _check_viewed_page(friendly_id: str, params: dict[str, Any]) -> None:
    require_value(friendly_id, params)
    if params["scope"] == "days" and params["days"] is None:
        raise ConditionError(f"{friendly_id}: parameter 'days' is required when scope is 'days'")


def _page(event: Mapping[str, Any]) -> Any:
    page = event.get("page")
    return page if page is not None else path_get(event.get("arbitraryData"), "page")


@define(
    "viewed_page",
    has_param(),
    match_op(PAGE_OPS),
    ParamSpec("value", "string", required=False),
    ParamSpec("count", "number", required=False, default=1, integer=True, minimum=1),
    ParamSpec("scope", "choice", required=False, default="session", choices=("session", "days")),
    _days(),
    needs=SESSIONS,
    check=_check_viewed_page,
)
def viewed_page(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The guest has / has not viewed (``count`` times) a page whose URL matches, this session or last d days."""
    if p["scope"] == "session":
        events = events_of(ctx.session)
    else:
        events = [e for s in all_sessions(ctx) for e in events_of(s) if _within(e.get("createdAt"), ctx, p["days"])]
    views = sum(1 for e in events if e.get("type") == "VIEW" and match(_page(e), p["op"], p["value"]))
    return positive(p["has"], views >= p["count"])


@define(
    "page_views_count",
    has_param(),
    count_op(required=False, default=">="),
    _n(),
    _days(required=True),
    needs=SESSIONS,
)
def page_views_count(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The guest has / has not viewed ``op n`` pages (WEB sessions, VIEW events) in the last ``days`` days (§6.1)."""
    now = _now(ctx)
    views = 0
    for s in all_sessions(ctx):
        if s.get("sessionType") != "WEB":
            continue
        for e in events_of(s):
            t = millis(e.get("createdAt"))
            if (
                e.get("type") == "VIEW"
                and js_truthy(path_get(e.get("arbitraryData"), "page"))
                and t is not None
                and (now - t) / DAY_MS <= p["days"]
            ):
                views += 1
    return positive(p["has"], compare(views, p["op"], p["n"]))


@define("event_in_session", has_param(), ParamSpec("types", "strings"))
def event_in_session(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The current session has / has not an event of one of the types (case-insensitive)."""
    wanted = {t.upper() for t in p["types"]}
    found = any(isinstance(e.get("type"), str) and e["type"].upper() in wanted for e in events_of(ctx.session))
    return positive(p["has"], found)


def _check_cart(friendly_id: str, params: dict[str, Any]) -> None:
    if (params["op"] is None) != (params["n"] is None):
        raise ConditionError(f"{friendly_id}: parameters 'op' and 'n' go together")


def _line_value(line: Any) -> float:
    if not isinstance(line, Mapping):
        return 0
    price = num(line.get("price"))
    quantity = num(line.get("quantity"))
    return (price or 0) * (1 if quantity is None else quantity)


@define(
    "cart_in_session",
    is_param(),
    count_op(required=False),
    ParamSpec("n", "number", required=False),
    check=_check_cart,
)
def cart_in_session(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The current session's cart is / is not empty; with ``op``/``n``: its value (Σ price × quantity) op n."""
    cart = lines(ctx.session.get("cart")) if ctx.session is not None else []
    if p["op"] is None:
        return positive(p["is"], len(cart) == 0)
    total: float = 0
    for line in cart:
        total += _line_value(line)
    return positive(p["is"], compare(total, p["op"], p["n"]))


@define(
    "has_abandoned_cart",
    has_param(),
    _days(required=True),
    count_op(required=False),
    ParamSpec("n", "number", required=False),
    needs=SESSIONS,
    check=_check_cart,
)
def has_abandoned_cart(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The guest has / has not abandoned a cart (session ``cartType`` ABANDONED) in the last d days [value op n]."""
    for s in all_sessions(ctx):
        if s.get("cartType") != "ABANDONED":
            continue
        ended = s.get("endedAt") if s.get("endedAt") is not None else s.get("startedAt")
        if not _within(ended, ctx, p["days"]):
            continue
        if p["op"] is None or compare(num(s.get("abandonedRevenue")) or 0, p["op"], p["n"]):
            return positive(p["has"], True)
    return positive(p["has"], False)


def _orders(ctx: ConditionContext) -> list[Mapping[str, Any]]:
    return [o for o in lines(ctx.guest.get("orders")) if isinstance(o, Mapping)]


@define("orders_count", count_op(), _n(), _days(), needs=ORDERS)
def orders_count(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The guest has placed ``op n`` orders (within the last ``days`` days when given)."""
    count = sum(1 for o in _orders(ctx) if _within(o.get("orderedAt"), ctx, p["days"]))
    return compare(count, p["op"], p["n"])


@define("lifetime_value", count_op(), _n(integer=False), ParamSpec("currency", "string", required=False), needs=ORDERS)
def lifetime_value(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The total order value (Σ ``price``, optionally only orders in ``currency``) op n."""
    currency = str(p["currency"]).lower() if p["currency"] is not None else None
    total: float = 0
    for o in _orders(ctx):
        code = o.get("currencyCode")
        if currency is None or (isinstance(code, str) and code.lower() == currency):
            total += num(o.get("price")) or 0
    return compare(total, p["op"], p["n"])


@define(
    "purchased_item",
    has_param(),
    ParamSpec("field", "choice", choices=("productId", "type", "name")),
    match_op(),
    ParamSpec("value", "string", required=False),
    _days(),
    needs=ORDERS,
    check=require_value,
)
def purchased_item(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The guest has / has not purchased an item whose ``field`` matches (in orders of the last d days)."""
    for o in _orders(ctx):
        if not _within(o.get("orderedAt"), ctx, p["days"]):
            continue
        for item in lines(o.get("orderItems")):
            if isinstance(item, Mapping) and match(item.get(p["field"]), p["op"], p["value"]):
                return positive(p["has"], True)
    return positive(p["has"], False)
