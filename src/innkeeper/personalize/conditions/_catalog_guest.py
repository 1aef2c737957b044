"""Built-ins on the guest profile: type, email, attributes, data extensions, segment membership."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from innkeeper.personalize.conditions._params import ParamSpec, has_param, is_param, match_op
from innkeeper.personalize.conditions._registry import define, require_value
from innkeeper.personalize.conditions._values import lines, match, path_get, positive
from innkeeper.personalize.conditions.context import ConditionContext
from innkeeper.personalize.conditions.errors import ConditionError

_HEAVY = ("sessions", "orders", "interactions")


@define("guest_type", is_param(), ParamSpec("type", "choice", choices=("customer", "visitor")))
def guest_type(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The guest is / is not a customer (or visitor), from ``guest.guestType`` (lower case)."""
    value = ctx.guest.get("guestType")
    return positive(p["is"], isinstance(value, str) and value.lower() == p["type"])


@define("guest_has_email", has_param())
def guest_has_email(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The guest has / has not an email (``guest.email``, or a non-empty ``guest.emails``)."""
    email = ctx.guest.get("email")
    emails = ctx.guest.get("emails")
    found = (isinstance(email, str) and email != "") or (isinstance(emails, list) and len(emails) > 0)
    return positive(p["has"], found)


def _check_field(friendly_id: str, params: dict[str, Any]) -> None:
    if params["field"].split(".")[0] in _HEAVY:
        raise ConditionError(
            f"{friendly_id}: parameter 'field' cannot read sessions or orders; use a history condition"
        )
    require_value(friendly_id, params)


@define(
    "guest_attribute",
    ParamSpec("field", "path"),
    match_op(),
    ParamSpec("value", "string", required=False),
    check=_check_field,
)
def guest_attribute(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """Guest field (dot path, e.g. ``gender``, ``country``) op value."""
    return match(path_get(ctx.guest, p["field"]), p["op"], p["value"])


@define(
    "data_extension",
    ParamSpec("name", "string"),
    ParamSpec("key", "string", required=False, default="default"),
    ParamSpec("path", "path", required=False, default=""),
    match_op(),
    ParamSpec("value", "string", required=False),
    check=require_value,
)
def data_extension(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """Data extension ``name``/``key`` (case-insensitive), value at ``path`` inside its ``values``, op value."""
    name, key = str(p["name"]).lower(), str(p["key"]).lower()
    found: Any = None
    for ext in lines(ctx.guest.get("dataExtensions")):
        if (
            isinstance(ext, Mapping)
            and str(ext.get("name")).lower() == name
            and str(ext.get("key", "default")).lower() == key
        ):
            found = ext.get("values")
            break
    actual = path_get(found, p["path"]) if found is not None else None
    return match(actual, p["op"], p["value"])


@define("segment_membership", is_param(), ParamSpec("segments", "strings"))
def segment_membership(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The guest is / is not a member of any of the segments (by ref or friendlyId)."""
    wanted = set(p["segments"])
    member = any(
        isinstance(m, Mapping) and (m.get("ref") in wanted or m.get("friendlyId") in wanted)
        for m in lines(ctx.guest.get("segmentMemberships"))
    )
    return positive(p["is"], member)
