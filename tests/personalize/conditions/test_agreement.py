"""Hypothesis: the Python built-ins and their JavaScript twins agree on generated guests and parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from innkeeper.personalize.conditions import BUILTINS, ConditionContext, JsSandbox

NOW = datetime(2025, 5, 14, 9, 30, tzinfo=UTC)
SANDBOX = JsSandbox(timeout_ms=1000, total_ms=2000)  # generous: this test checks semantics, not limits
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

times = st.integers(min_value=0, max_value=120 * 86_400).map(lambda s: NOW - timedelta(seconds=s))
pages = st.sampled_from(["/", "/shoes", "/shoes/runner", "/checkout", "/SHOES", None])
events = st.builds(
    lambda kind, at, page: {"type": kind, "createdAt": at, "page": page, "arbitraryData": {"page": page}},
    st.sampled_from(["VIEW", "VIEW", "ADD", "SEARCH"]),
    times,
    pages,
)
cart_lines = st.fixed_dictionaries(
    {"price": st.one_of(st.none(), st.floats(0, 500, allow_nan=False).map(lambda x: round(x, 2)), st.integers(0, 99)),
     "quantity": st.one_of(st.none(), st.integers(0, 5))}
)  # fmt: skip
sessions = st.builds(
    lambda ref, kind, started, evs, cart_type, revenue, cart: {
        "ref": ref,
        "sessionType": kind,
        "startedAt": started,
        "endedAt": started + timedelta(minutes=30),
        "cartType": cart_type,
        "abandonedRevenue": revenue,
        "cart": cart,
        "events": sorted(evs, key=lambda e: e["createdAt"]),
    },
    st.uuids().map(str),
    st.sampled_from(["WEB", "WEB", "APP"]),
    times,
    st.lists(events, max_size=8),
    st.sampled_from([None, "BROWSED", "ABANDONED", "CONVERTED"]),
    st.one_of(st.integers(0, 300), st.floats(0, 300, allow_nan=False)),
    st.lists(cart_lines, max_size=3),
)
orders = st.builds(
    lambda at, price, currency: {"orderedAt": at, "price": price, "currencyCode": currency, "orderItems": []},
    times,
    st.one_of(st.integers(0, 500), st.floats(0, 500, allow_nan=False).map(lambda x: round(x, 2))),
    st.sampled_from(["EUR", "GBP", "eur"]),
)


def _newest_first(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda s: s["startedAt"], reverse=True)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-1000, 1000), st.sampled_from(["gold", "Gold", "12", "1e3", " 7 ", ""])
)
guests = st.fixed_dictionaries(
    {
        "guestType": st.sampled_from(["customer", "visitor"]),
        "sessions": st.lists(sessions, max_size=5).map(_newest_first),
        "orders": st.lists(orders, max_size=4),
        "dataExtensions": st.lists(
            st.fixed_dictionaries({"name": st.sampled_from(["Loyalty", "loyalty", "Other"]), "key": st.just("default"),
                                   "values": st.fixed_dictionaries({"tier": scalars, "points": scalars})}),
            max_size=2,
        ),
    }
)  # fmt: skip


def _ctx(guest: dict[str, Any], now: datetime, timezone: str) -> ConditionContext:
    current = guest["sessions"][0] if guest["sessions"] else None
    return ConditionContext(guest=guest, request={"params": {}}, now=now, session=current, timezone=timezone)


def _agree(friendly_id: str, ctx: ConditionContext, params: dict[str, Any]) -> None:
    builtin = BUILTINS[friendly_id]
    values = builtin.validate(params)
    expected = builtin.evaluate(ctx, values)
    result = SANDBOX.run(builtin.js_source, ctx, params=values)
    assert result.error is None
    assert result.truthy is expected, (friendly_id, values)


ops = st.sampled_from(["=", "!=", ">", ">=", "<", "<="])


@SETTINGS
@given(guests, ops, st.integers(0, 12), st.integers(0, 60))
def test_page_views_count(guest: dict[str, Any], op: str, n: int, days: int) -> None:
    _agree("page_views_count", _ctx(guest, NOW, "UTC"), {"op": op, "n": n, "days": days})


@SETTINGS
@given(guests, ops, st.integers(0, 6), st.one_of(st.none(), st.integers(0, 90)))
def test_number_of_sessions_and_orders_count(guest: dict[str, Any], op: str, n: int, days: int | None) -> None:
    ctx = _ctx(guest, NOW, "UTC")
    _agree("number_of_sessions", ctx, {"op": op, "n": n, "days": days})
    _agree("orders_count", ctx, {"op": op, "n": n, "days": days})
    _agree("days_since_last_visit", ctx, {"op": op, "n": n})


@SETTINGS
@given(
    guests, ops, st.floats(0, 1500, allow_nan=False).map(lambda x: round(x, 1)), st.sampled_from([None, "EUR", "gbp"])
)
def test_money(guest: dict[str, Any], op: str, n: float, currency: str | None) -> None:
    ctx = _ctx(guest, NOW, "UTC")
    _agree("lifetime_value", ctx, {"op": op, "n": n, "currency": currency})
    _agree("cart_in_session", ctx, {"op": op, "n": n})
    _agree("has_abandoned_cart", ctx, {"days": 30, "op": op, "n": n})


@SETTINGS
@given(
    guests,
    st.sampled_from(["equals", "not equals", "contains", "starts with", "exists", "not exists", ">", "<=", "regex"]),
    st.sampled_from(["gold", "GOLD", "1", "12", "1000", "^g", "7"]),
    st.sampled_from(["tier", "points"]),
)
def test_data_extension_matching(guest: dict[str, Any], op: str, value: str, path: str) -> None:
    _agree("data_extension", _ctx(guest, NOW, "UTC"), {"name": "loyalty", "path": path, "op": op, "value": value})


@SETTINGS
@given(
    st.integers(-5 * 365 * 86_400, 5 * 365 * 86_400).map(lambda s: NOW + timedelta(seconds=s)),
    st.sampled_from(["UTC", "Europe/Dublin", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"]),
    st.sampled_from(["before", "after"]),
    st.integers(0, 23),
    st.integers(0, 59),
)
def test_clock_conditions(now: datetime, timezone: str, when: str, hour: int, minute: int) -> None:
    ctx = _ctx({"guestType": "visitor", "sessions": [], "orders": []}, now, timezone)
    _agree("time_of_day", ctx, {"when": when, "time": f"{hour:02d}:{minute:02d}"})
    _agree("day_of_week", ctx, {"days": ["MONDAY", "SATURDAY"]})
    _agree("day_of_month", ctx, {"op": ">=", "n": 15})
    _agree("month_of_visit", ctx, {"months": ["JANUARY", "JULY", "DECEMBER"]})
