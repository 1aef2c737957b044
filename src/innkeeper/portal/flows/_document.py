"""The create/edit form: its values, reading a post, and the flow document it describes.

The document is built on top of the stored one, so fields the form does not show (decision models,
template variables, secondary goals, web targeting …) survive an edit. ``compile_problems`` runs what
Start would (templates with line and column, JavaScript syntax, traffic), so a save can refuse them.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from innkeeper.core.clock import iso
from innkeeper.core.ids import new_ref
from innkeeper.core.timeparse import parse_iso
from innkeeper.personalize.experiences.compiled import compile_flow
from innkeeper.personalize.experiences.definitions import (
    CHANNELS,
    GOAL_TYPES,
    TRIGGER_TYPES,
    friendly_id_from,
    validate_document,
)
from innkeeper.personalize.experiences.models import Flow
from innkeeper.portal.flows._common import EDITABLE_TYPES, KINDS, kind_of

MAX_VARIANTS = 20
MAX_TEXT = 256 * 1024
_WHERE_VARIANT = re.compile(r"^variants\[(\d+)\]")
_LINE_COLUMN = re.compile(r"line (\d+), column (\d+)")
# Compile problems that only repeat a variant's own error (it is left out of the traffic and control checks).
FOLLOW_ON = ("traffic:", "variants:")


@dataclass(slots=True)
class VariantForm:
    """One variant's inputs as the form shows them."""

    index: int
    ref: str = ""
    name: str = ""
    template: str = ""
    split: str = ""
    condition: str = ""
    condition_locked: bool = False
    connection: str = ""
    control: bool = False
    remove: bool = False
    errors: list[str] = field(default_factory=list)
    error_lines: list[tuple[int, int]] = field(default_factory=list)

    @property
    def blank(self) -> bool:
        return not (self.ref or self.name.strip() or self.template.strip())

    @property
    def excerpts(self) -> list[str]:
        """The template lines with errors, numbered, with a caret under the column."""
        lines = self.template.splitlines()
        shown = []
        for line, column in self.error_lines:
            if 1 <= line <= len(lines):
                gutter = f"{line} | "
                shown.append(f"{gutter}{lines[line - 1]}\n{' ' * (len(gutter) + max(column - 1, 0))}^")
        return shown


@dataclass(slots=True)
class FlowForm:
    """The create/edit form's values (also re-rendered with the input after a failed save)."""

    kind: str
    name: str = ""
    friendly_id: str = ""
    friendly_id_locked: bool = False
    type: str = "INTERACTIVE_API_FLOW"
    channels: list[str] = field(default_factory=lambda: ["WEB"])
    pos_mode: str = "ALL"
    pos_values: str = ""
    start_date: str = ""
    end_date: str = ""
    allocation: str = "100"
    traffic_locked: bool = False
    audience: str = ""
    goal_name: str = ""
    goal_type: str = "CONVERSION_RATE"
    goal_target: str = "SESSIONS"
    goal_page: str = ""
    goal_event: str = ""
    trigger_type: str = "ABANDONED_CART"
    trigger_events: str = ""
    trigger_delay: str = ""
    variants: list[VariantForm] = field(default_factory=list)

    @property
    def subtype(self) -> str:
        return KINDS[self.kind]


def _local(value: Any) -> str:
    """An ISO date-time as a ``datetime-local`` input value (UTC)."""
    parsed = parse_iso(value) if isinstance(value, str) else None
    return parsed.strftime("%Y-%m-%dT%H:%M") if parsed is not None else ""


def task_of(variant: dict[str, Any], implementation: str) -> dict[str, Any] | None:
    for task in variant.get("tasks") or []:
        if isinstance(task, dict) and task.get("implementation") == implementation:
            return task
    return None


def rules_of(variant: dict[str, Any]) -> list[Any]:
    task = task_of(variant, "conditionsTask")
    rules = (task.get("input") or {}).get("rules") if task is not None else None
    return rules if isinstance(rules, list) else []


def blank_form(kind: str) -> FlowForm:
    form = FlowForm(kind=kind)
    if kind == "experiment":
        form.variants = [
            VariantForm(0, name="Control", template="{}", split="50", control=True),
            VariantForm(1, name="Variant B", template="{}", split="50"),
        ]
        form.goal_name = "Conversion"
    else:
        form.variants = [VariantForm(0, name="Default", template="{}")]
    return with_blank_slot(form)


def with_blank_slot(form: FlowForm) -> FlowForm:
    """Drop empty variant slots and add one at the end: the form's "add a variant"."""
    kept = [variant for variant in form.variants if not variant.blank]
    for index, variant in enumerate(kept):
        variant.index = index
    if len(kept) < MAX_VARIANTS:
        kept.append(VariantForm(len(kept)))
    form.variants = kept
    return form


def form_of(flow: Flow) -> FlowForm:
    document = flow.document
    form = FlowForm(kind=kind_of(flow))
    form.name = flow.name
    form.friendly_id = flow.friendly_id
    form.friendly_id_locked = flow.started
    form.type = flow.type
    form.channels = [str(channel) for channel in document.get("channels") or []]
    pos_filter = document.get("pointOfSaleFilter") or {}
    form.pos_mode = str(pos_filter.get("mode") or "ALL")
    form.pos_values = "\n".join(str(value) for value in pos_filter.get("values") or [])
    schedule = document.get("schedule") or {}
    form.start_date = _local(schedule.get("startDate"))
    form.end_date = _local(schedule.get("endDate"))
    traffic = document.get("traffic") or {}
    form.traffic_locked = traffic.get("type", "simpleTraffic") != "simpleTraffic"
    form.allocation = str(traffic.get("allocation", 100))
    splits = {str(item.get("ref")): item.get("split") for item in traffic.get("splits") or [] if isinstance(item, dict)}
    audience = document.get("audience")
    form.audience = json.dumps(audience, indent=2) if audience else ""
    primary = (document.get("goals") or {}).get("primary") or {}
    if primary:
        form.goal_name = str(primary.get("name") or "")
        form.goal_type = str(primary.get("type") or "CONVERSION_RATE")
        form.goal_target = str((primary.get("goalCalculation") or {}).get("target") or "SESSIONS")
        pages = primary.get("pageParameters") or []
        form.goal_page = str(pages[0].get("parameterString") or "") if pages and isinstance(pages[0], dict) else ""
        form.goal_event = str((primary.get("eventType") or {}).get("matchString") or "")
    trigger = document.get("trigger") or {}
    if trigger:
        form.trigger_type = str(trigger.get("type") or "ABANDONED_CART")
        form.trigger_events = ", ".join(str(item) for item in trigger.get("eventTypes") or [])
        delay = trigger.get("delayMinutes")
        form.trigger_delay = "" if delay is None else str(delay)
    for index, variant in enumerate(document.get("variants") or []):
        render = task_of(variant, "templateRenderTask")
        rules = rules_of(variant)
        first = rules[0] if rules and isinstance(rules[0], dict) else {}
        split = splits.get(str(variant.get("ref")))
        form.variants.append(
            VariantForm(
                index,
                ref=str(variant.get("ref") or ""),
                name=str(variant.get("name") or ""),
                template=str((render.get("input") or {}).get("template", "")) if render is not None else "",
                split="" if split is None else str(split),
                condition=str((first.get("ruleData") or {}).get("expression", "")),
                condition_locked=len(rules) > 1,
                connection=str((variant.get("destination") or {}).get("connectionRef") or ""),
                control=bool(variant.get("isControl")),
            )
        )
    return with_blank_slot(form)


def text_field(data: FormData, key: str, limit: int = 2000) -> str:
    value = data.get(key)
    return value[:limit] if isinstance(value, str) else ""


def posted_form(data: FormData, kind: str, flow: Flow | None) -> FlowForm:
    form = FlowForm(kind=kind)
    form.name = text_field(data, "name", 300)
    form.friendly_id = text_field(data, "friendly_id", 300).strip()
    if flow is not None:
        form.friendly_id_locked = flow.started
        if flow.started or not form.friendly_id:
            form.friendly_id = flow.friendly_id
    form.type = text_field(data, "type", 40) or (flow.type if flow is not None else "INTERACTIVE_API_FLOW")
    if flow is not None and flow.type not in EDITABLE_TYPES:
        form.type = flow.type
    form.channels = [value for value in data.getlist("channels") if isinstance(value, str)][: len(CHANNELS)]
    form.pos_mode = text_field(data, "pos_mode", 10) or "ALL"
    form.pos_values = text_field(data, "pos_values", 20000)
    form.start_date = text_field(data, "start_date", 40).strip()
    form.end_date = text_field(data, "end_date", 40).strip()
    form.allocation = text_field(data, "allocation", 10).strip()
    form.audience = text_field(data, "audience", 64 * 1024)
    form.goal_name = text_field(data, "goal_name", 200)
    form.goal_type = text_field(data, "goal_type", 40) or "CONVERSION_RATE"
    form.goal_target = text_field(data, "goal_target", 20) or "SESSIONS"
    form.goal_page = text_field(data, "goal_page", 500)
    form.goal_event = text_field(data, "goal_event", 200)
    form.trigger_type = text_field(data, "trigger_type", 40) or "ABANDONED_CART"
    form.trigger_events = text_field(data, "trigger_events", 2000)
    form.trigger_delay = text_field(data, "trigger_delay", 20).strip()
    if flow is not None:
        traffic = flow.document.get("traffic") or {}
        form.traffic_locked = traffic.get("type", "simpleTraffic") != "simpleTraffic"
    existing = {str(variant.get("ref")): variant for variant in (flow.document.get("variants") if flow else None) or []}
    control = text_field(data, "control", 10)
    count = text_field(data, "variant_count", 10)
    for index in range(min(int(count) if count.isdigit() else 0, MAX_VARIANTS + 1)):
        prefix = f"v{index}_"
        ref = text_field(data, prefix + "ref", 100).strip()
        variant = VariantForm(
            index,
            ref=ref if ref in existing else "",
            name=text_field(data, prefix + "name", 300),
            template=text_field(data, prefix + "template", MAX_TEXT),
            split=text_field(data, prefix + "split", 10).strip(),
            condition=text_field(data, prefix + "condition", 64 * 1024),
            condition_locked=len(rules_of(existing[ref])) > 1 if ref in existing else False,
            connection=text_field(data, prefix + "connection", 100).strip(),
            control=control == str(index),
            remove=text_field(data, prefix + "remove", 10) == "1",
        )
        form.variants.append(variant)
    return form


def _whole(text: str, where: str, low: int, high: int, problems: list[str]) -> int | None:
    try:
        value = int(text)
    except ValueError:
        problems.append(f"{where}: must be a whole number between {low} and {high}")
        return None
    if not low <= value <= high:
        problems.append(f"{where}: must be a whole number between {low} and {high}")
        return None
    return value


def build_document(form: FlowForm, flow: Flow | None) -> tuple[dict[str, Any], list[str], list[int]]:
    """The flow document the form describes (on top of the stored one), form problems, and for each
    document variant the form index it came from."""
    problems: list[str] = []
    document: dict[str, Any] = copy.deepcopy(flow.document) if flow is not None else {}
    for key in ("ref", "status", "archived", "revision", "modifiedAt", "clientKey", "href"):
        document.pop(key, None)
    document["name"] = form.name.strip()
    document["subtype"] = form.subtype
    if form.type not in EDITABLE_TYPES and (flow is None or form.type != flow.type):
        problems.append("type: choose Full stack (API) or Triggered")
    document["type"] = form.type
    if form.friendly_id:
        document["friendlyId"] = form.friendly_id
    else:
        document.pop("friendlyId", None)
    _where_and_when(form, document, problems)
    if form.audience.strip():
        try:
            document["audience"] = json.loads(form.audience)
        except ValueError as exc:
            problems.append(f"audience: not valid JSON ({exc})")
    else:
        document.pop("audience", None)
    variants, origin = _variants(form, flow, problems)
    document["variants"] = variants
    if not form.traffic_locked:
        allocation = _whole(form.allocation or "100", "traffic.allocation", 0, 100, problems)
        traffic: dict[str, Any] = {
            **(document.get("traffic") or {}),
            "type": "simpleTraffic",
            "weightingAlgorithm": "USER_DEFINED",
            "allocation": allocation if allocation is not None else 100,
            "splits": _splits(form, variants, origin, problems),
        }
        traffic.setdefault("coupled", False)
        document["traffic"] = traffic
    if form.kind == "experiment":
        document["goals"] = _goals(form, document.get("goals"), problems)
    if form.type == "TRIGGERED_V3":
        document["trigger"] = _trigger(form, document.get("trigger"), problems)
    return document, problems, origin


def _where_and_when(form: FlowForm, document: dict[str, Any], problems: list[str]) -> None:
    """Channels, point of sale filter and schedule (§1.4)."""
    document["channels"] = [channel for channel in CHANNELS if channel in form.channels]
    values = [line.strip() for line in form.pos_values.splitlines() if line.strip()]
    if form.pos_mode == "INCLUDE":
        if not values:
            problems.append("pointOfSaleFilter: list at least one point of sale, or choose all points of sale")
        document["pointOfSaleFilter"] = {"mode": "INCLUDE", "values": values}
    else:
        document["pointOfSaleFilter"] = {"mode": "ALL", "values": []}
    schedule: dict[str, Any] = {"type": "simpleSchedule"}
    for key, text in (("startDate", form.start_date), ("endDate", form.end_date)):
        if text:
            parsed = parse_iso(text)
            if parsed is None:
                problems.append(f"schedule.{key}: must be a date and time (UTC)")
            else:
                schedule[key] = iso(parsed)
    document["schedule"] = schedule


def _variants(form: FlowForm, flow: Flow | None, problems: list[str]) -> tuple[list[dict[str, Any]], list[int]]:
    stored = {str(variant.get("ref")): variant for variant in (flow.document.get("variants") if flow else None) or []}
    variants: list[dict[str, Any]] = []
    origin: list[int] = []
    for entry in form.variants:
        if entry.remove or entry.blank:
            continue
        variant = copy.deepcopy(stored[entry.ref]) if entry.ref in stored else {"ref": new_ref(), "tasks": []}
        variant["name"] = entry.name.strip() or f"Variant {len(variants) + 1}"
        variant["isControl"] = entry.control if form.kind == "experiment" else bool(variant.get("isControl", False))
        tasks = [task for task in variant.get("tasks") or [] if isinstance(task, dict)]
        if not entry.condition_locked:
            tasks = [task for task in tasks if task.get("implementation") != "conditionsTask"]
            if entry.condition.strip():
                rule = {"id": "condition", "ruleData": {"expression": entry.condition}}
                task_input = {"inputType": "conditionsTaskInput", "rules": [rule]}
                tasks.insert(0, {"implementation": "conditionsTask", "input": task_input})
        render = next((task for task in tasks if task.get("implementation") == "templateRenderTask"), None)
        if render is None:
            render = {"implementation": "templateRenderTask", "input": {}}
            tasks.append(render)
        render["input"] = {
            "inputType": "templateRenderTaskInput",
            "type": "application/json",
            **(render.get("input") or {}),
            "template": entry.template,
        }
        variant["tasks"] = tasks
        if form.type == "TRIGGERED_V3":
            destination = variant.get("destination")
            if entry.connection:
                kept = dict(destination) if isinstance(destination, dict) else {}
                variant["destination"] = {**kept, "connectionRef": entry.connection}
            else:
                variant.pop("destination", None)
        variants.append(variant)
        origin.append(entry.index)
    if len(variants) > MAX_VARIANTS:
        problems.append(f"variants: at most {MAX_VARIANTS}")
    return variants, origin


def _splits(
    form: FlowForm, variants: list[dict[str, Any]], origin: list[int], problems: list[str]
) -> list[dict[str, Any]]:
    entries = {entry.index: entry for entry in form.variants}
    given = [(variant["ref"], entries[index].split) for variant, index in zip(variants, origin, strict=True)]
    if form.kind != "experiment" or all(not split for _, split in given):
        return []  # an even split over the variants
    if any(not split for _, split in given):
        problems.append("traffic.splits: give every variant a split, or leave them all empty for an even split")
        return []
    splits = []
    for ref, text in given:
        value = _whole(text, "traffic.splits", 0, 100, problems)
        if value is not None:
            splits.append({"ref": ref, "split": value})
    return splits


def _goals(form: FlowForm, stored: Any, problems: list[str]) -> dict[str, Any]:
    goals = dict(stored) if isinstance(stored, dict) else {}
    goals.setdefault("secondary", [])
    if form.goal_type not in GOAL_TYPES:
        problems.append(f"goals.primary.type: must be one of {', '.join(GOAL_TYPES)}")
    stored_primary = goals.get("primary")
    previous: dict[str, Any] = dict(stored_primary) if isinstance(stored_primary, dict) else {}
    stored_calculation = previous.get("goalCalculation")
    calculation: dict[str, Any] = dict(stored_calculation) if isinstance(stored_calculation, dict) else {}
    decrease = form.goal_type in ("BOUNCE_RATE", "EXIT_RATE")
    if form.goal_type in ("REVENUE", "CUSTOM"):
        kind = calculation.get("type") if calculation.get("type") in ("SUM", "AVERAGE") else "SUM"
    else:
        kind = "BINARY"
    primary: dict[str, Any] = {
        **previous,
        "name": form.goal_name.strip() or "Primary goal",
        "friendlyId": friendly_id_from(form.goal_name.strip() or "primary_goal"),
        "type": form.goal_type,
        "goalCalculation": {
            **calculation,
            "type": kind,
            "calculation": "DECREASE" if decrease else "INCREASE",
            "target": form.goal_target if form.goal_target in ("SESSIONS", "GUESTS") else "SESSIONS",
        },
    }
    if form.goal_page.strip():
        primary["pageParameters"] = [{"matchCondition": "CONTAINS", "parameterString": form.goal_page.strip()}]
    else:
        primary.pop("pageParameters", None)
    if form.goal_event.strip():
        primary["eventType"] = {"matchCondition": "EQUALS", "matchString": form.goal_event.strip().upper()}
    else:
        primary.pop("eventType", None)
    goals["primary"] = primary
    return goals


def _trigger(form: FlowForm, stored: Any, problems: list[str]) -> dict[str, Any]:
    trigger = dict(stored) if isinstance(stored, dict) else {}
    if form.trigger_type not in TRIGGER_TYPES:
        problems.append(f"trigger.type: must be one of {', '.join(TRIGGER_TYPES)}")
    trigger["type"] = form.trigger_type
    events = [item.strip().upper() for item in form.trigger_events.split(",") if item.strip()]
    if events:
        trigger["eventTypes"] = events
    else:
        trigger.pop("eventTypes", None)
    if form.trigger_delay:
        try:
            trigger["delayMinutes"] = float(form.trigger_delay)
        except ValueError:
            problems.append("trigger.delayMinutes: must be a number of minutes")
    else:
        trigger.pop("delayMinutes", None)
    return trigger


def compile_problems(document: dict[str, Any], ref: str, revision: int) -> list[str]:
    """Everything Start would refuse in the content: templates (line, column), JavaScript, traffic."""
    shape = validate_document(document, creating=False)
    if shape:
        return list(shape.items)
    try:
        compile_flow(ref, revision, document)
    except ValueError as exc:
        return [str(problem) for problem in exc.args[0]]
    return []


def attach(form: FlowForm, problems: list[str], origin: list[int]) -> list[str]:
    """Show variant problems next to their variant (lines and columns as jump links); return the rest."""
    by_index = {entry.index: entry for entry in form.variants}
    general = []
    for problem in problems:
        match = _WHERE_VARIANT.match(problem)
        position = int(match.group(1)) if match else -1
        if 0 <= position < len(origin) and origin[position] in by_index:
            entry = by_index[origin[position]]
            entry.errors.append(problem)
            found = _LINE_COLUMN.search(problem)
            if found is not None and ".template" in problem:
                entry.error_lines.append((int(found.group(1)), int(found.group(2))))
        else:
            general.append(problem)
    return general
