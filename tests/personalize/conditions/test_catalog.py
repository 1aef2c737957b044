"""Every built-in of the §6.4 catalog on fixtures, both ways: the Python reference and its JavaScript twin."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from innkeeper.personalize.conditions import BUILTINS, ConditionContext, ConditionError, JsSandbox
from tests.personalize.conditions.guests import (
    ANDROID_TABLET,
    CONTEXTS,
    IPAD,
    WINDOWS,
    anonymous_ctx,
    customer_ctx,
    request,
)

LATE = datetime(2025, 5, 14, 23, 30, tzinfo=UTC)  # Thursday 00:30 in Dublin

FACTORIES: dict[str, Callable[[], ConditionContext]] = {
    **CONTEXTS,
    "customer_late": lambda: customer_ctx(now=LATE),
    "ipad": lambda: customer_ctx(request=request(headers={"user-agent": IPAD})),
    "android_tablet": lambda: customer_ctx(request=request(headers={"user-agent": ANDROID_TABLET})),
    "windows": lambda: customer_ctx(request=request(headers={"user-agent": WINDOWS})),
    "geo_params": lambda: anonymous_ctx(request=request(params={"geo": {"country": "FR"}})),
    "no_pos": lambda: anonymous_ctx(request=request(pointOfSale=None)),
    "customer_no_lang": lambda: customer_ctx(request=request(language=None)),
    "anonymous_no_session": lambda: anonymous_ctx(session=None),
}

CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    # time_of_day: Dublin is 10:30, UTC 09:30
    ("time_of_day", "customer", {"when": "before", "time": "11:00"}, True),
    ("time_of_day", "customer", {"is": "is not", "when": "before", "time": "11:00"}, False),
    ("time_of_day", "customer", {"when": "after", "time": "10:30"}, True),
    ("time_of_day", "customer", {"when": "after", "time": "10:00"}, True),
    ("time_of_day", "anonymous", {"when": "after", "time": "10:00"}, False),
    ("month_of_visit", "customer", {"months": ["MAY"]}, True),
    ("month_of_visit", "customer", {"is": "is not", "months": ["may", "June"]}, False),
    ("month_of_visit", "anonymous", {"months": ["JANUARY"]}, False),
    ("day_of_week", "customer", {"days": ["WEDNESDAY"]}, True),
    ("day_of_week", "customer", {"is": "is not", "days": ["WEDNESDAY", "FRIDAY"]}, False),
    ("day_of_week", "customer", {"days": ["SATURDAY", "SUNDAY"]}, False),
    ("day_of_week", "customer", {"is": "is not", "days": ["SUNDAY"]}, True),
    ("day_of_week", "customer_late", {"days": ["THURSDAY"]}, True),
    ("day_of_month", "customer", {"op": ">=", "n": 14}, True),
    ("day_of_month", "customer", {"op": "<", "n": 14}, False),
    ("day_of_month", "customer", {"is": "is not", "op": "=", "n": 14}, False),
    ("day_of_month", "customer_late", {"op": "==", "n": 15}, True),
    # device / OS: customer = Mac Chrome UA, anonymous = no UA → session device (mobile, iOS)
    ("device", "customer", {"devices": ["desktop"]}, True),
    ("device", "customer", {"is": "is not", "devices": ["desktop"]}, False),
    ("device", "anonymous", {"devices": ["mobile"]}, True),
    ("device", "anonymous", {"devices": ["desktop", "tablet"]}, False),
    ("device", "ipad", {"devices": ["tablet"]}, True),
    ("device", "android_tablet", {"devices": ["tablet"]}, True),
    ("device", "windows", {"devices": ["mobile", "tablet"]}, False),
    ("operating_system", "customer", {"os": ["macOS"]}, True),
    ("operating_system", "customer", {"os": ["windows"]}, False),
    ("operating_system", "anonymous", {"os": ["iOS"]}, True),
    ("operating_system", "ipad", {"os": ["iOS"]}, True),
    ("operating_system", "android_tablet", {"os": ["Android"]}, True),
    ("operating_system", "windows", {"is": "is not", "os": ["Windows"]}, False),
    # location from request.geo (customer: IE / Leinster / Dublin; anonymous: none)
    ("country", "customer", {"values": ["ie"]}, True),
    ("country", "customer", {"is": "is not", "values": ["IE"]}, False),
    ("country", "anonymous", {"values": ["IE"]}, False),
    ("country", "anonymous", {"is": "is not", "values": ["IE"]}, True),
    ("country", "geo_params", {"values": ["FR"]}, True),
    ("region", "customer", {"values": ["Leinster"]}, True),
    ("region", "customer", {"values": ["Munster"]}, False),
    ("city", "customer", {"values": ["dublin", "Cork"]}, True),
    ("city", "customer", {"is": "is not", "values": ["Cork"]}, True),
    ("city", "customer", {"is": "is not", "values": ["Dublin"]}, False),
    # utm: customer from request params; anonymous from the session's first-touch utm
    ("utm_parameter", "customer", {"name": "campaign", "op": "is", "value": "summer-sale"}, True),
    ("utm_parameter", "customer", {"name": "campaign", "op": "contains", "value": "SALE"}, True),
    ("utm_parameter", "customer", {"name": "medium", "op": "equals", "value": "email"}, True),
    ("utm_parameter", "customer", {"name": "source", "op": "exists"}, False),
    ("utm_parameter", "anonymous", {"name": "source", "op": "equals", "value": "newsletter"}, True),
    ("utm_parameter", "anonymous", {"name": "campaign", "op": "is not", "value": "spring"}, False),
    ("utm_parameter", "anonymous", {"name": "term", "op": "not exists"}, True),
    ("referrer", "customer", {"op": "contains", "value": "news.example"}, True),
    ("referrer", "customer", {"op": "starts with", "value": "https://www.google"}, False),
    ("referrer", "anonymous", {"op": "contains", "value": "google"}, True),
    ("referrer", "anonymous", {"op": "is not", "value": "https://www.google.com/"}, False),
    ("point_of_sale", "customer", {"values": ["MyRetailSite/Ireland"]}, True),
    ("point_of_sale", "customer", {"is": "is not", "values": ["myretailsite/ireland"]}, False),
    ("point_of_sale", "customer", {"values": ["myretailsite/uk"]}, False),
    ("point_of_sale", "no_pos", {"values": ["myretailsite/ireland"]}, True),
    ("channel", "customer", {"values": ["web"]}, True),
    ("channel", "customer", {"is": "is not", "values": ["WEB", "MOBILE_APP"]}, False),
    ("channel", "customer", {"values": ["MOBILE_APP"]}, False),
    ("language", "customer", {"values": ["en"]}, True),
    ("language", "customer", {"values": ["EN-gb"]}, True),
    ("language", "customer", {"values": ["fr"]}, False),
    ("language", "customer", {"is": "is not", "values": ["fr"]}, True),
    ("language", "anonymous", {"values": ["en"]}, False),
    ("language", "anonymous", {"is": "is not", "values": ["en"]}, True),
    ("language", "customer_no_lang", {"values": ["en"]}, True),
    # guest profile
    ("guest_type", "customer", {"type": "customer"}, True),
    ("guest_type", "customer", {"is": "is not", "type": "customer"}, False),
    ("guest_type", "anonymous", {"type": "customer"}, False),
    ("guest_type", "anonymous", {"type": "visitor"}, True),
    ("guest_has_email", "customer", {}, True),
    ("guest_has_email", "customer", {"has": "has not"}, False),
    ("guest_has_email", "anonymous", {}, False),
    ("guest_has_email", "anonymous", {"has": False}, True),
    ("guest_attribute", "customer", {"field": "gender", "op": "equals", "value": "Female"}, True),
    ("guest_attribute", "customer", {"field": "country", "op": "not equals", "value": "IE"}, False),
    ("guest_attribute", "customer", {"field": "firstName", "op": "contains", "value": "an"}, True),
    ("guest_attribute", "customer", {"field": "nationality", "op": "exists"}, True),
    ("guest_attribute", "anonymous", {"field": "nationality", "op": "exists"}, False),
    ("guest_attribute", "anonymous", {"field": "gender", "op": "not exists"}, True),
    ("guest_attribute", "customer", {"field": "emails", "op": "ends with", "value": "@example.com"}, True),
    ("guest_attribute", "customer", {"field": "identifiers.0.provider", "op": "equals", "value": "email"}, True),
    ("guest_attribute", "customer", {"field": "dateOfBirth", "op": "starts with", "value": "1990-04-01T"}, True),
    (
        "data_extension",
        "customer",
        {"name": "lastsearch", "path": "loyalty.tier", "op": "equals", "value": "gold"},
        True,
    ),
    ("data_extension", "customer", {"name": "LastSearch", "path": "count", "op": ">", "value": 1}, True),
    ("data_extension", "customer", {"name": "LastSearch", "path": "count", "op": ">=", "value": "3"}, False),
    ("data_extension", "customer", {"name": "LastSearch", "path": "searches", "op": "contains", "value": "sand"}, True),
    (
        "data_extension",
        "customer",
        {"name": "Preferences", "key": "email", "path": "optIn", "op": "=", "value": True},
        True,
    ),
    ("data_extension", "customer", {"name": "Preferences", "path": "optIn", "op": "exists"}, False),
    ("data_extension", "customer", {"name": "LastSearch", "op": "exists"}, True),
    ("data_extension", "anonymous", {"name": "LastSearch", "op": "exists"}, False),
    ("segment_membership", "customer", {"segments": ["high_value"]}, True),
    ("segment_membership", "customer", {"segments": ["seg-1"]}, True),
    ("segment_membership", "customer", {"is": "is not", "segments": ["high_value"]}, False),
    ("segment_membership", "anonymous", {"segments": ["high_value"]}, False),
    ("segment_membership", "anonymous", {"is": "is not", "segments": ["high_value"]}, True),
    # history
    ("first_visit", "anonymous", {}, True),
    ("first_visit", "anonymous", {"is": "is not"}, False),
    ("first_visit", "anonymous_no_session", {}, True),
    ("first_visit", "customer", {}, False),
    ("first_visit", "customer", {"is": "is not"}, True),
    ("number_of_sessions", "customer", {"op": "=", "n": 4}, True),
    ("number_of_sessions", "customer", {"op": ">", "n": 4}, False),
    ("number_of_sessions", "customer", {"op": "=", "n": 2, "days": 7}, True),
    ("number_of_sessions", "customer", {"op": "=", "n": 3, "days": 45}, True),
    ("number_of_sessions", "anonymous", {"op": "=", "n": 1}, True),
    ("number_of_sessions", "anonymous", {"op": ">", "n": 1}, False),
    ("days_since_last_visit", "customer", {"op": "=", "n": 2}, True),
    ("days_since_last_visit", "customer", {"op": ">=", "n": 3}, False),
    ("days_since_last_visit", "customer", {"op": "<", "n": 7}, True),
    ("days_since_last_visit", "anonymous", {"op": ">=", "n": 0}, False),
    ("days_since_last_visit", "triggered", {"op": "=", "n": 0}, True),
    ("viewed_page", "customer", {"op": "contains", "value": "/checkout"}, True),
    ("viewed_page", "customer", {"op": "equals", "value": "/shoes/runner"}, False),
    ("viewed_page", "customer", {"scope": "days", "days": 7, "op": "equals", "value": "/shoes/runner"}, True),
    ("viewed_page", "customer", {"scope": "days", "days": 7, "op": "starts with", "value": "/shoes", "count": 4}, True),
    (
        "viewed_page",
        "customer",
        {"scope": "days", "days": 7, "op": "starts with", "value": "/shoes", "count": 5},
        False,
    ),
    ("viewed_page", "customer", {"has": "has not", "scope": "days", "days": 7, "op": "equals", "value": "/home"}, True),
    ("viewed_page", "anonymous", {"op": "regex", "value": "^/sho"}, True),
    ("viewed_page", "anonymous", {"has": "has not", "op": "equals", "value": "/home"}, False),
    ("page_views_count", "customer", {"n": 4, "days": 7}, True),
    ("page_views_count", "customer", {"n": 6, "days": 7}, False),
    ("page_views_count", "customer", {"has": "has not", "n": 6, "days": 7}, True),
    ("page_views_count", "customer", {"op": "=", "n": 7, "days": 45}, True),
    ("page_views_count", "customer", {"op": "=", "n": 8, "days": 90}, False),
    ("page_views_count", "anonymous", {"n": 2, "days": 1}, True),
    ("page_views_count", "anonymous", {"n": 3, "days": 1}, False),
    ("event_in_session", "customer", {"types": ["add"]}, True),
    ("event_in_session", "customer", {"types": ["CHECKOUT"]}, False),
    ("event_in_session", "customer", {"has": "has not", "types": ["CHECKOUT"]}, True),
    ("event_in_session", "anonymous", {"types": ["SEARCH"]}, True),
    ("event_in_session", "anonymous", {"has": "has not", "types": ["SEARCH", "ADD"]}, False),
    ("cart_in_session", "customer", {}, False),
    ("cart_in_session", "customer", {"is": "is not"}, True),
    ("cart_in_session", "anonymous", {}, True),
    ("cart_in_session", "customer", {"op": ">", "n": 100}, True),
    ("cart_in_session", "customer", {"op": "=", "n": 135.5}, True),
    ("cart_in_session", "customer", {"op": ">", "n": 200}, False),
    ("cart_in_session", "customer", {"is": "is not", "op": ">", "n": 200}, True),
    ("cart_in_session", "anonymous", {"op": ">", "n": 0}, False),
    ("has_abandoned_cart", "customer", {"days": 7}, True),
    ("has_abandoned_cart", "customer", {"days": 2}, False),
    ("has_abandoned_cart", "customer", {"has": "has not", "days": 2}, True),
    ("has_abandoned_cart", "customer", {"days": 7, "op": ">", "n": 50}, True),
    ("has_abandoned_cart", "customer", {"days": 7, "op": ">", "n": 100}, False),
    ("has_abandoned_cart", "anonymous", {"days": 30}, False),
    ("orders_count", "customer", {"op": "=", "n": 2}, True),
    ("orders_count", "customer", {"op": ">=", "n": 1, "days": 30}, False),
    ("orders_count", "customer", {"op": "=", "n": 1, "days": 60}, True),
    ("orders_count", "anonymous", {"op": "=", "n": 0}, True),
    ("orders_count", "anonymous", {"op": ">", "n": 0}, False),
    ("lifetime_value", "customer", {"op": "=", "n": 165}, True),
    ("lifetime_value", "customer", {"op": ">", "n": 200}, False),
    ("lifetime_value", "customer", {"op": ">=", "n": 120, "currency": "eur"}, True),
    ("lifetime_value", "customer", {"op": ">", "n": 120, "currency": "EUR"}, False),
    ("lifetime_value", "anonymous", {"op": "=", "n": 0}, True),
    ("purchased_item", "customer", {"field": "productId", "op": "equals", "value": "sku1"}, True),
    ("purchased_item", "customer", {"field": "type", "op": "equals", "value": "SOCKS", "days": 100}, False),
    ("purchased_item", "customer", {"field": "type", "op": "equals", "value": "SOCKS"}, True),
    ("purchased_item", "customer", {"has": "has not", "field": "name", "op": "contains", "value": "runner"}, False),
    ("purchased_item", "anonymous", {"field": "productId", "op": "exists"}, False),
    ("purchased_item", "anonymous", {"has": "has not", "field": "productId", "op": "exists"}, True),
    # request and trigger
    ("request_param", "customer", {"path": "plan.tier", "op": "equals", "value": "GOLD"}, True),
    ("request_param", "customer", {"path": "plan.seats", "op": ">=", "value": 10}, True),
    ("request_param", "customer", {"path": "plan.seats", "op": "<", "value": "10"}, False),
    ("request_param", "customer", {"path": "missing", "op": "not exists"}, True),
    ("request_param", "anonymous", {"path": "plan.tier", "op": "exists"}, False),
    ("trigger_event_attribute", "triggered", {"path": "cartType", "op": "equals", "value": "ABANDONED"}, True),
    ("trigger_event_attribute", "triggered", {"path": "abandonedRevenue", "op": ">", "value": 50}, True),
    ("trigger_event_attribute", "triggered", {"path": "ref", "op": "equals", "value": "s-c9"}, False),
    ("trigger_event_attribute", "triggered", {"path": "events.0.type", "op": "equals", "value": "VIEW"}, True),
    ("trigger_event_attribute", "customer", {"path": "ref", "op": "exists"}, False),
]


def _ids() -> list[str]:
    return [f"{fid}-{ctx}-{i}" for i, (fid, ctx, _params, _expected) in enumerate(CASES)]


@pytest.mark.parametrize(("friendly_id", "context", "params", "expected"), CASES, ids=_ids())
def test_python_builtin(friendly_id: str, context: str, params: dict[str, Any], expected: bool) -> None:
    builtin = BUILTINS[friendly_id]
    assert builtin.evaluate(FACTORIES[context](), builtin.validate(params)) is expected


@pytest.mark.parametrize(("friendly_id", "context", "params", "expected"), CASES, ids=_ids())
def test_js_twin_agrees(
    sandbox: JsSandbox, friendly_id: str, context: str, params: dict[str, Any], expected: bool
) -> None:
    builtin = BUILTINS[friendly_id]
    result = sandbox.run(builtin.js_source, FACTORIES[context](), params=builtin.validate(params), timeout_ms=None)
    assert result.error is None
    assert result.truthy is expected
    assert result.value is expected


def test_every_builtin_is_covered_both_ways() -> None:
    outcomes: dict[str, set[bool]] = {}
    for friendly_id, _context, _params, expected in CASES:
        outcomes.setdefault(friendly_id, set()).add(expected)
    assert set(outcomes) == set(BUILTINS)
    assert all(seen == {True, False} for seen in outcomes.values()), outcomes


def test_catalog_matches_the_spec_table() -> None:
    assert set(BUILTINS) == {
        "time_of_day", "month_of_visit", "day_of_week", "day_of_month", "device", "operating_system",
        "country", "region", "city", "utm_parameter", "referrer", "point_of_sale", "channel", "language",
        "guest_type", "guest_has_email", "guest_attribute", "data_extension", "segment_membership", "first_visit",
        "number_of_sessions", "days_since_last_visit", "viewed_page", "page_views_count", "event_in_session",
        "cart_in_session", "has_abandoned_cart", "orders_count", "lifetime_value", "purchased_item",
        "request_param", "trigger_event_attribute",
    }  # fmt: skip


def test_needs_declared_for_history_builtins() -> None:
    assert BUILTINS["page_views_count"].needs == {"sessions"}
    assert BUILTINS["lifetime_value"].needs == {"orders"}
    assert BUILTINS["guest_type"].needs == frozenset()
    assert "sessions" in BUILTINS["page_views_count"].js_source


@pytest.mark.parametrize(
    ("friendly_id", "params", "message"),
    [
        ("time_of_day", {"when": "before", "time": "25:00"}, "'time' must be a time HH:MM"),
        ("time_of_day", {"when": "soon", "time": "10:00"}, "'when' must be one of before, after"),
        ("time_of_day", {"time": "10:00"}, "'when' is required"),
        ("day_of_week", {"days": ["FUNDAY"]}, "'days' must be one of"),
        ("day_of_month", {"op": "=", "n": 32}, "'n' must be at most 31"),
        ("day_of_month", {"op": "=", "n": 1.5}, "'n' must be a whole number"),
        ("number_of_sessions", {"op": "~", "n": 1}, "'op' must be one of"),
        ("number_of_sessions", {"op": ">", "n": "many"}, "'n' must be a number"),
        ("guest_attribute", {"field": "gender", "op": "equals"}, "'value' is required with operator 'equals'"),
        ("guest_attribute", {"field": "sessions.0.ref", "op": "exists"}, "cannot read sessions"),
        ("guest_attribute", {"field": "a b", "op": "exists"}, "'field' must be a dot path"),
        ("request_param", {"path": "x", "op": "regex", "value": "("}, "not a valid regular expression"),
        ("viewed_page", {"scope": "days", "op": "contains", "value": "/x"}, "'days' is required when scope"),
        ("cart_in_session", {"op": ">"}, "'op' and 'n' go together"),
        ("device", {"devices": ["desktop"], "colour": "red"}, "unknown parameter(s) 'colour'"),
        ("segment_membership", {"segments": []}, "'segments' is required"),
    ],
)
def test_invalid_params_are_rejected_with_a_clear_message(
    friendly_id: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConditionError, match="^" + friendly_id) as info:
        BUILTINS[friendly_id].validate(params)
    assert message in str(info.value)
