"""Validation of flow definition documents (spec personalize.md §1.2–1.5)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from innkeeper.core.timeparse import parse_iso

FLOW_TYPES = ("INTERACTIVE_API_FLOW", "INTERACTIVE_WEB_FLOW", "TRIGGERED_V3")
SUBTYPES = ("EXPERIENCE", "EXPERIMENT")
STATUSES = ("DRAFT", "PUBLISHING", "PRODUCTION", "SCHEDULED", "LIVE", "PAUSED", "COMPLETED")
CHANNELS = ("CALL_CENTER", "EMAIL", "MOBILE_APP", "MOBILE_WEB", "PUSH_NOTIFICATION", "SMS", "WEB")
BUSINESS_PROCESS = {
    "INTERACTIVE_API_FLOW": "interactive_v1",
    "INTERACTIVE_WEB_FLOW": "interactive_v1",
    "TRIGGERED_V3": "triggered_v1",
}
TASKS = ("templateRenderTask", "conditionsTask", "decisionModelTask")
GOAL_TYPES = (
    "CONVERSION_RATE",
    "REVENUE",
    "BOUNCE_RATE",
    "EXIT_RATE",
    "PAGE_VIEW",
    "CUSTOM_CONVERSION",
    "CUSTOM",
)
TRIGGER_TYPES = ("SESSION_CLOSED", "ABANDONED_CART", "ORDER_CREATED", "GUEST_CREATED", "CUSTOM_EVENT")
DEFAULT_COOLDOWN_HOURS = {"ABANDONED_CART": 24.0}
FRIENDLY_ID = re.compile(r"^[a-z0-9_]+$")
MAX_FRIENDLY_ID = 256
# Fields the server owns: accepted on input (exports carry them) and overwritten.
SERVER_FIELDS = ("ref", "clientKey", "href", "revision", "modifiedAt", "createdAt", "transpiledVariants")
SAMPLE_SIZE_DEFAULTS = {"baseValue": 0.02, "minimumDetectableDifference": 0.2, "confidenceLevel": 0.95}
SAMPLE_SIZE_RANGES = {
    "baseValue": (0.005, 0.5),
    "minimumDetectableDifference": (0.01, 0.5),
    "confidenceLevel": (0.8, 0.99),
}


def friendly_id_from(name: str) -> str:
    """``Product Recommender`` → ``product_recommender`` (§1.3)."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return (slug or "flow")[:200]


class Problems:
    """Collects every validation problem so one 400 lists them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)


def parse_datetime(value: Any) -> datetime | None:
    return parse_iso(value) if isinstance(value, str) else None


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def schedule_window(document: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    schedule = document.get("schedule") or {}
    start = parse_datetime(schedule.get("startDate")) if isinstance(schedule, dict) else None
    end = parse_datetime(schedule.get("endDate")) if isinstance(schedule, dict) else None
    return start, end


def validate_document(document: Any, *, creating: bool) -> Problems:
    """Check the shape of a flow document; compile-time checks (templates, JS, traffic) happen at Start."""
    problems = Problems()
    if not isinstance(document, dict):
        problems.add("body", "must be a JSON object")
        return problems
    name = document.get("name")
    if not _is_str(name) or len(str(name)) > 200:
        problems.add("name", "is required (1–200 characters)")
    friendly_id = document.get("friendlyId")
    if friendly_id is not None and (
        not isinstance(friendly_id, str) or not FRIENDLY_ID.match(friendly_id) or len(friendly_id) > MAX_FRIENDLY_ID
    ):
        problems.add("friendlyId", "must match ^[a-z0-9_]+$ (at most 256 characters)")
    if document.get("type") not in FLOW_TYPES:
        problems.add("type", f"must be one of {', '.join(FLOW_TYPES)}")
    if document.get("subtype") not in SUBTYPES:
        problems.add("subtype", f"must be one of {', '.join(SUBTYPES)}")
    status = document.get("status", "DRAFT")
    if status not in STATUSES:
        problems.add("status", f"must be one of {', '.join(STATUSES)}")
    elif creating and status != "DRAFT":
        problems.add("status", "a new flow must be created as DRAFT")
    if "archived" in document and not isinstance(document["archived"], bool):
        problems.add("archived", "must be a boolean")
    _validate_channels(document.get("channels"), problems)
    _validate_schedule(document.get("schedule"), problems)
    _validate_pos_filter(document.get("pointOfSaleFilter"), problems)
    _validate_variants(document.get("variants"), problems)
    if "traffic" in document and document["traffic"] is not None and not isinstance(document["traffic"], dict):
        problems.add("traffic", "must be an object")
    if "audience" in document and document["audience"] is not None and not isinstance(document["audience"], dict):
        problems.add("audience", "must be an object")
    _validate_goals(document.get("goals"), problems)
    _validate_sample_size(document.get("sampleSizeConfig"), problems)
    if "priority" in document and (not isinstance(document["priority"], int) or isinstance(document["priority"], bool)):
        problems.add("priority", "must be an integer")
    if "tags" in document and not (
        isinstance(document["tags"], list) and all(isinstance(tag, str) for tag in document["tags"])
    ):
        problems.add("tags", "must be an array of strings")
    return problems


def _validate_channels(channels: Any, problems: Problems) -> None:
    if not isinstance(channels, list) or not channels:
        problems.add("channels", "must be a non-empty array")
        return
    for index, channel in enumerate(channels):
        if not isinstance(channel, str) or channel.upper() not in CHANNELS:
            problems.add(f"channels[{index}]", f"must be one of {', '.join(CHANNELS)}")


def _validate_schedule(schedule: Any, problems: Problems) -> None:
    if schedule is None:
        return
    if not isinstance(schedule, dict):
        problems.add("schedule", "must be an object")
        return
    if schedule.get("type", "simpleSchedule") != "simpleSchedule":
        problems.add("schedule.type", "must be simpleSchedule")
    for key in ("startDate", "endDate"):
        value = schedule.get(key)
        if value is not None and parse_datetime(value) is None:
            problems.add(f"schedule.{key}", "must be an ISO 8601 date-time")
    start, end = parse_datetime(schedule.get("startDate")), parse_datetime(schedule.get("endDate"))
    if start is not None and end is not None and end <= start:
        problems.add("schedule.endDate", "must be after startDate")


def _validate_pos_filter(pos_filter: Any, problems: Problems) -> None:
    if pos_filter is None:
        return
    if not isinstance(pos_filter, dict) or pos_filter.get("mode", "ALL") not in ("ALL", "INCLUDE"):
        problems.add("pointOfSaleFilter", 'must be {"mode": "ALL"|"INCLUDE", "values": [...]}')
        return
    values = pos_filter.get("values", [])
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        problems.add("pointOfSaleFilter.values", "must be an array of point of sale names")


def _validate_variants(variants: Any, problems: Problems) -> None:
    if variants is None:
        return
    if not isinstance(variants, list):
        problems.add("variants", "must be an array")
        return
    seen: set[str] = set()
    for index, variant in enumerate(variants):
        where = f"variants[{index}]"
        if not isinstance(variant, dict):
            problems.add(where, "must be an object")
            continue
        ref = variant.get("ref")
        if not _is_str(ref) or len(str(ref)) > 100:
            problems.add(f"{where}.ref", "is required (at most 100 characters)")
        elif ref in seen:
            problems.add(f"{where}.ref", "is used by another variant")
        else:
            seen.add(str(ref))
        if "name" in variant and not isinstance(variant["name"], str):
            problems.add(f"{where}.name", "must be a string")
        if "isControl" in variant and not isinstance(variant["isControl"], bool):
            problems.add(f"{where}.isControl", "must be a boolean")
        tasks = variant.get("tasks", [])
        if not isinstance(tasks, list):
            problems.add(f"{where}.tasks", "must be an array")
            continue
        for task_index, task in enumerate(tasks):
            _validate_task(task, f"{where}.tasks[{task_index}]", problems)


def _validate_task(task: Any, where: str, problems: Problems) -> None:
    if not isinstance(task, dict) or task.get("implementation") not in TASKS:
        problems.add(where, f"implementation must be one of {', '.join(TASKS)}")
        return
    task_input = task.get("input")
    if not isinstance(task_input, dict):
        problems.add(f"{where}.input", "must be an object")
        return
    implementation = task["implementation"]
    if implementation == "templateRenderTask" and not isinstance(task_input.get("template"), str):
        problems.add(f"{where}.input.template", "must be a string")
    elif implementation == "conditionsTask":
        rules = task_input.get("rules")
        if not isinstance(rules, list) or not all(
            isinstance(rule, dict)
            and isinstance(rule.get("ruleData"), dict)
            and isinstance(rule["ruleData"].get("expression"), str)
            for rule in rules
        ):
            problems.add(f"{where}.input.rules", 'must be [{"id", "ruleData": {"expression": "<JavaScript>"}}]')
    elif implementation == "decisionModelTask":
        refs = task_input.get("decisionModelRefs")
        if not isinstance(refs, list) or not all(isinstance(ref, str) for ref in refs):
            problems.add(f"{where}.input.decisionModelRefs", "must be an array of decision model refs")


def _validate_goals(goals: Any, problems: Problems) -> None:
    if goals is None:
        return
    if not isinstance(goals, dict):
        problems.add("goals", "must be an object")
        return
    primary = goals.get("primary")
    entries: list[tuple[str, Any]] = []
    if primary is not None:
        entries.append(("goals.primary", primary))
    secondary = goals.get("secondary", [])
    if not isinstance(secondary, list):
        problems.add("goals.secondary", "must be an array")
    else:
        entries.extend((f"goals.secondary[{index}]", goal) for index, goal in enumerate(secondary))
    for where, goal in entries:
        if not isinstance(goal, dict):
            problems.add(where, "must be an object")
            continue
        if goal.get("type") not in GOAL_TYPES:
            problems.add(f"{where}.type", f"must be one of {', '.join(GOAL_TYPES)}")
        calculation = goal.get("goalCalculation") or {}
        if not isinstance(calculation, dict):
            problems.add(f"{where}.goalCalculation", "must be an object")
        elif calculation.get("target", "SESSIONS") not in ("SESSIONS", "GUESTS"):
            problems.add(f"{where}.goalCalculation.target", "must be SESSIONS or GUESTS")
        elif calculation.get("calculation", "INCREASE") not in ("INCREASE", "DECREASE"):
            problems.add(f"{where}.goalCalculation.calculation", "must be INCREASE or DECREASE")


def _validate_sample_size(config: Any, problems: Problems) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        problems.add("sampleSizeConfig", "must be an object")
        return
    for key, (low, high) in SAMPLE_SIZE_RANGES.items():
        value = config.get(key, SAMPLE_SIZE_DEFAULTS[key])
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
            problems.add(f"sampleSizeConfig.{key}", f"must be a number between {low} and {high}")


def content_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """The authored part of a document: what counts as an edit (status and server fields excluded)."""
    return {
        key: value
        for key, value in document.items()
        if key not in (*SERVER_FIELDS, "status", "archived", "modifiedByRef")
    }


@dataclass(frozen=True, slots=True)
class Trigger:
    """The trigger of a TRIGGERED_V3 flow (``trigger`` object, or Sitecore's ``triggers[]`` mapped)."""

    type: str
    event_types: tuple[str, ...] = ()
    logic: str | None = None
    delay_minutes: float = 0.0
    cooldown_hours: float = 0.0


def trigger_of(document: Mapping[str, Any]) -> Trigger | None:
    raw = document.get("trigger")
    if not isinstance(raw, dict):
        legacy = document.get("triggers")
        if isinstance(legacy, list) and legacy and isinstance(legacy[0], dict):
            name = str(legacy[0].get("name", "")).upper().replace(" ", "_")
            raw = {"type": name}
        else:
            return None
    kind = str(raw.get("type", "")).upper()
    if kind not in TRIGGER_TYPES:
        return None
    cooldown = raw.get("cooldownHours", DEFAULT_COOLDOWN_HOURS.get(kind, 0.0))
    logic = raw.get("logic")
    return Trigger(
        type=kind,
        event_types=tuple(str(item).upper() for item in raw.get("eventTypes") or []),
        logic=logic if isinstance(logic, str) and logic.strip() else None,
        delay_minutes=float(raw.get("delayMinutes") or 0),
        cooldown_hours=float(cooldown or 0),
    )


def validate_trigger(document: Mapping[str, Any]) -> list[str]:
    """Problems with a triggered flow's trigger (checked at Start)."""
    raw = document.get("trigger")
    if raw is None and document.get("triggers"):
        return [] if trigger_of(document) is not None else ["triggers: unknown trigger name"]
    if not isinstance(raw, dict):
        return ['trigger: a TRIGGERED_V3 flow needs {"type": "ABANDONED_CART" | "SESSION_CLOSED" | …}']
    problems = []
    if str(raw.get("type", "")).upper() not in TRIGGER_TYPES:
        problems.append(f"trigger.type: must be one of {', '.join(TRIGGER_TYPES)}")
    for key, low, high in (("delayMinutes", 0, 60 * 24 * 30), ("cooldownHours", 0, 24 * 365)):
        value = raw.get(key)
        if value is not None and (
            not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high
        ):
            problems.append(f"trigger.{key}: must be a number between {low} and {high}")
    if raw.get("type") == "CUSTOM_EVENT" and not raw.get("eventTypes"):
        problems.append("trigger.eventTypes: a CUSTOM_EVENT trigger needs at least one event type")
    if raw.get("logic") is not None and not isinstance(raw.get("logic"), str):
        problems.append("trigger.logic: must be JavaScript source")
    return problems
