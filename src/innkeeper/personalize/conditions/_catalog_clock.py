"""Built-ins on the injected clock in the tenant time zone: time of day, month, day of week, day of month."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from innkeeper.personalize.conditions._params import ParamSpec, count_op, is_param
from innkeeper.personalize.conditions._registry import define
from innkeeper.personalize.conditions._values import compare, local_time, positive
from innkeeper.personalize.conditions.context import ConditionContext

MONTHS = (
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
)
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


@define(
    "time_of_day",
    is_param(),
    ParamSpec("when", "choice", choices=("before", "after")),
    ParamSpec("time", "time"),
)
def time_of_day(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The visit is / is not before / after HH:MM (before = strictly earlier; after = at or later)."""
    local = local_time(ctx)
    minutes = local.hour * 60 + local.minute
    hours, mins = p["time"].split(":")
    limit = int(hours) * 60 + int(mins)
    result = minutes < limit if p["when"] == "before" else minutes >= limit
    return positive(p["is"], result)


@define("month_of_visit", is_param(), ParamSpec("months", "choices", choices=MONTHS))
def month_of_visit(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The visit is / is not in one of the months."""
    return positive(p["is"], MONTHS[local_time(ctx).month - 1] in p["months"])


@define("day_of_week", is_param(), ParamSpec("days", "choices", choices=DAYS))
def day_of_week(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The visit is / is not on one of the days of the week."""
    return positive(p["is"], local_time(ctx).weekday in p["days"])


@define("day_of_month", is_param(), count_op(), ParamSpec("n", "number", minimum=1, maximum=31, integer=True))
def day_of_month(ctx: ConditionContext, p: Mapping[str, Any]) -> bool:
    """The visit is / is not on a day of the month ``op n``."""
    return positive(p["is"], compare(local_time(ctx).day, p["op"], p["n"]))
