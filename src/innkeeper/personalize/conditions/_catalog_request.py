"""Built-ins on the request and the current session: device, OS, location, UTM, referrer, POS, channel, …"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from innkeeper.personalize.conditions._params import ParamSpec, is_param, match_op
from innkeeper.personalize.conditions._registry import WEB_INTERACTIVE, define, require_value
from innkeeper.personalize.conditions._values import (
    classify_device,
    classify_os,
    js_str,
    match,
    path_get,
    positive,
    user_agent,
)
from innkeeper.personalize.conditions.context import ConditionContext

OPERATING_SYSTEMS = ("Windows", "macOS", "iOS", "Android", "Linux", "Chrome OS", "Windows Phone", "Other")
UTM_NAMES = ("campaign", "source", "medium", "content", "term")


def _value() -> ParamSpec:
    return ParamSpec("value", "string", required=False)


def _params(ctx: ConditionContext) -> Mapping[str, Any]:
    params = ctx.request.get("params")
    return params if isinstance(params, Mapping) else {}


def _in(actual: Any, values: list[str]) -> bool:
    if actual is None or isinstance(actual, Mapping | list):
        return False
    text = js_str(actual).lower()
    return any(text == value.lower() for value in values)


@define(
    "device",
    is_param(),
    ParamSpec("devices", "choices", choices=("mobile", "desktop", "tablet")),
    flow_types=WEB_INTERACTIVE,
)
def device(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The visitor is / is not using one of the device types (User-Agent header, else session ``device.type``)."""
    ua = user_agent(ctx)
    kind = classify_device(ua) if ua else path_get(ctx.session, "device.type")
    return positive(p["is"], _in(kind, p["devices"]))


@define(
    "operating_system", is_param(), ParamSpec("os", "choices", choices=OPERATING_SYSTEMS), flow_types=WEB_INTERACTIVE
)
def operating_system(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The visitor is / is not using one of the operating systems (User-Agent, else session ``device.os``)."""
    ua = user_agent(ctx)
    name = classify_os(ua) if ua else path_get(ctx.session, "device.os")
    return positive(p["is"], _in(name, p["os"]))


def _geo(ctx: ConditionContext, field: str) -> Any:
    geo = ctx.request.get("geo")
    if not isinstance(geo, Mapping):
        geo = _params(ctx).get("geo")
    return geo.get(field) if isinstance(geo, Mapping) else None


@define("country", is_param(), ParamSpec("values", "strings"), flow_types=WEB_INTERACTIVE)
def country(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The visitor is / is not in one of the countries (``request.geo.country``)."""
    return positive(p["is"], _in(_geo(ctx, "country"), p["values"]))


@define("region", is_param(), ParamSpec("values", "strings"), flow_types=WEB_INTERACTIVE)
def region(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The visitor is / is not in one of the regions (``request.geo.region``)."""
    return positive(p["is"], _in(_geo(ctx, "region"), p["values"]))


@define("city", is_param(), ParamSpec("values", "strings"), flow_types=WEB_INTERACTIVE)
def city(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The visitor is / is not in one of the cities (``request.geo.city``)."""
    return positive(p["is"], _in(_geo(ctx, "city"), p["values"]))


@define(
    "utm_parameter",
    ParamSpec("name", "choice", choices=UTM_NAMES),
    match_op(),
    _value(),
    flow_types=WEB_INTERACTIVE,
    check=require_value,
)
def utm_parameter(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """UTM ``name`` matches: ``request.params.utm.<name>``, ``request.params.utm_<name>``, else session ``utm``."""
    name = p["name"]
    params = _params(ctx)
    candidates = (
        path_get(params, f"utm.{name}"),
        params.get(f"utm_{name}"),
        path_get(ctx.session, f"utm.utm_{name}"),
        path_get(ctx.session, f"utm.{name}"),
    )
    actual = next((c for c in candidates if c is not None), None)
    return match(actual, p["op"], p["value"])


@define("referrer", match_op(), _value(), flow_types=WEB_INTERACTIVE, check=require_value)
def referrer(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The referrer matches: ``request.params.referrer``, the ``referer`` header, else session ``referrer``."""
    candidates = (
        _params(ctx).get("referrer"),
        path_get(ctx.request.get("headers"), "referer"),
        path_get(ctx.session, "referrer"),
    )
    actual = next((c for c in candidates if c is not None), None)
    return match(actual, p["op"], p["value"])


@define("point_of_sale", is_param(), ParamSpec("values", "strings"))
def point_of_sale(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The point of sale (request, else current session) is / is not one of the values (case-insensitive)."""
    pos = ctx.request.get("pointOfSale") or path_get(ctx.session, "pointOfSale")
    return positive(p["is"], _in(pos, p["values"]))


@define("channel", is_param(), ParamSpec("values", "strings"))
def channel(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The channel (request, else current session) is / is not one of the values (case-insensitive)."""
    value = ctx.request.get("channel") or path_get(ctx.session, "channel")
    return positive(p["is"], _in(value, p["values"]))


@define("language", is_param(), ParamSpec("values", "strings"))
def language(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The language (request, else guest) is / is not one of the values; ``en`` also matches ``en-GB``."""
    value = ctx.request.get("language") or ctx.guest.get("language")
    if not isinstance(value, str) or not value:
        return positive(p["is"], False)
    text = value.lower()
    found = any(
        text == v.lower() or text.startswith(v.lower() + "-") or text.startswith(v.lower() + "_") for v in p["values"]
    )
    return positive(p["is"], found)


@define(
    "request_param",
    ParamSpec("path", "path"),
    match_op(),
    _value(),
    flow_types=("interactive", "web"),
    check=require_value,
)
def request_param(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """Request parameter at dot path ``path`` (in ``request.params``) matches."""
    return match(path_get(_params(ctx), p["path"]), p["op"], p["value"])


@define(
    "trigger_event_attribute",
    ParamSpec("path", "path"),
    match_op(),
    _value(),
    flow_types=("triggered",),
    check=require_value,
)
def trigger_event_attribute(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """Trigger entity (``event.message``) attribute at dot path ``path`` matches."""
    message = ctx.event.get("message") if ctx.event is not None else None
    return match(path_get(message, p["path"]), p["op"], p["value"])
