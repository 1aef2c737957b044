"""Published flow revisions compiled once per process: templates parsed, JS checked, traffic validated."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from innkeeper.personalize.conditions import Audience, ConditionError, JsSandbox, compile_audience, compile_rules
from innkeeper.personalize.experiences.definitions import Problems
from innkeeper.personalize.experiments.assignment import TrafficError, validate_traffic
from innkeeper.personalize.templates.ftl import Template, TemplateError, compile_template
from innkeeper.personalize.templates.parameters import ParameterError, declarations, substitute

EMPTY_TEMPLATE = "{}"


@dataclass(frozen=True, slots=True)
class CompiledVariant:
    ref: str
    name: str
    is_control: bool
    template: Template
    rules: Audience | None


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    ref: str
    revision: int
    friendly_id: str
    name: str
    type: str
    subtype: str
    channels: frozenset[str]
    pos_mode: str
    pos_values: frozenset[str]
    audience: Audience
    traffic: Mapping[str, Any] | None
    variants: Mapping[str, CompiledVariant]
    variant_refs: tuple[str, ...]
    needs: frozenset[str]
    # Triggered flows: variant ref → {"connectionRef", "headers"?} (§5.1).
    destinations: Mapping[str, dict[str, Any]]

    @property
    def runs_js(self) -> bool:
        """Whether a run may evaluate custom JavaScript (the audience's or a variant's rules)."""
        return self.audience.uses_js or any(
            variant.rules is not None and variant.rules.uses_js for variant in self.variants.values()
        )

    def summary(self) -> dict[str, Any]:
        """The ``flow`` object of the template data model and condition globals."""
        return {
            "ref": self.ref,
            "friendlyId": self.friendly_id,
            "name": self.name,
            "type": self.type,
            "subtype": self.subtype,
            "revision": self.revision,
        }


_sandbox: JsSandbox | None = None
_sandbox_lock = threading.Lock()


def sandbox() -> JsSandbox:
    """The process-wide JavaScript sandbox (one V8 isolate per thread inside)."""
    global _sandbox
    with _sandbox_lock:
        if _sandbox is None:
            _sandbox = JsSandbox()
        return _sandbox


def compile_flow(ref: str, revision: int, document: Mapping[str, Any]) -> CompiledFlow:
    """Compile a flow document or raise ``ValueError`` carrying the list of problems."""
    problems = Problems()
    js = sandbox()
    try:
        audience = compile_audience(document.get("audience"), sandbox=js)
    except ConditionError as exc:
        problems.add("audience", str(exc))
        audience = compile_audience(None, sandbox=js)
    variants: dict[str, CompiledVariant] = {}
    needs: set[str] = set(audience.needs)
    for index, variant in enumerate(document.get("variants") or []):
        compiled = _compile_variant(variant, f"variants[{index}]", problems, js)
        if compiled is not None:
            variants[compiled.ref] = compiled
            needs.update(_template_needs(compiled.template.source))
            if compiled.rules is not None:
                needs.update(compiled.rules.needs)
    if _reads_event_data(document):
        needs.update(("sessions", "event_data"))
    traffic = document.get("traffic")
    try:
        validate_traffic(traffic, list(variants))
    except TrafficError as exc:
        problems.add("traffic", str(exc))
    if document.get("subtype") == "EXPERIMENT":
        controls = [variant for variant in variants.values() if variant.is_control]
        if len(controls) != 1 or len(variants) < 2:
            problems.add("variants", "an experiment needs exactly one control variant and at least one other variant")
    if problems:
        raise ValueError(problems.items)
    pos_filter = document.get("pointOfSaleFilter") or {}
    return CompiledFlow(
        ref=ref,
        revision=revision,
        friendly_id=str(document.get("friendlyId")),
        name=str(document.get("name")),
        type=str(document.get("type")),
        subtype=str(document.get("subtype")),
        channels=frozenset(str(channel).upper() for channel in document.get("channels") or ["WEB"]),
        pos_mode=str(pos_filter.get("mode", "ALL")),
        pos_values=frozenset(pos_filter.get("values") or ()),
        audience=audience,
        traffic=traffic,
        variants=variants,
        variant_refs=tuple(variants),
        needs=frozenset(needs),
        destinations={
            str(variant.get("ref")): dict(variant["destination"])
            for variant in document.get("variants") or []
            if isinstance(variant.get("destination"), dict)
        },
    )


def _compile_variant(
    variant: Mapping[str, Any], where: str, problems: Problems, js: JsSandbox
) -> CompiledVariant | None:
    template_source: str | None = None
    rules: list[Mapping[str, Any]] = []
    for task_index, task in enumerate(variant.get("tasks") or []):
        task_where = f"{where}.tasks[{task_index}]"
        implementation = task.get("implementation")
        task_input = task.get("input") or {}
        if implementation == "templateRenderTask":
            template_source = str(task_input.get("template", ""))
        elif implementation == "conditionsTask":
            rules.extend(task_input.get("rules") or [])
        elif implementation == "decisionModelTask":
            problems.add(task_where, "decision models are not supported yet; remove the decisionModelTask")
    template_source = template_source if template_source is not None else EMPTY_TEMPLATE
    variables = variant.get("templateVariables") or {}
    try:
        template_source = _with_parameters(template_source, variables)
        rules = [_rule_with_parameters(rule, variables) for rule in rules]
    except ParameterError as exc:
        problems.add(f"{where}.templateVariables", str(exc))
        return None
    try:
        template = compile_template(template_source, name=f"{where}.template")
    except TemplateError as exc:
        problems.add(f"{where}.template", str(exc))
        return None
    compiled_rules: Audience | None = None
    if rules:
        try:
            compiled_rules = compile_rules(rules, sandbox=js)
        except ConditionError as exc:
            problems.add(f"{where}.conditions", str(exc))
            return None
    return CompiledVariant(
        ref=str(variant.get("ref")),
        name=str(variant.get("name") or variant.get("ref")),
        is_control=bool(variant.get("isControl", False)),
        template=template,
        rules=compiled_rules,
    )


def _with_parameters(source: str, values: Mapping[str, Any]) -> str:
    """Template parameters ``[[ … ]]`` are resolved at publish from the variant's ``templateVariables`` (§5.3)."""
    if "[[" not in source or not declarations(source):
        return source
    return substitute(source, values)


def _rule_with_parameters(rule: Mapping[str, Any], values: Mapping[str, Any]) -> Mapping[str, Any]:
    data = rule.get("ruleData") or {}
    expression = str(data.get("expression", ""))
    resolved = _with_parameters(expression, values)
    if resolved == expression:
        return rule
    return {**rule, "ruleData": {**data, "expression": resolved}}


def _reads_event_data(document: Mapping[str, Any]) -> bool:
    """Event messages are decoded only for flows whose templates or scripts read them."""
    text = json.dumps(document.get("variants")) + json.dumps(document.get("audience"))
    return any(token in text for token in ("arbitraryData", "sessionData", ".ext"))


def _template_needs(source: str) -> set[str]:
    needs = set()
    if "sessions" in source or "interactions" in source:
        needs.add("sessions")
    if "orders" in source:
        needs.add("orders")
    return needs


class FlowCache:
    """LRU of compiled revisions keyed by (flow ref, revision); revisions are immutable once published."""

    def __init__(self, size: int = 512) -> None:
        self._items: OrderedDict[tuple[str, int], CompiledFlow] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, ref: str, revision: int) -> CompiledFlow | None:
        with self._lock:
            found = self._items.get((ref, revision))
            if found is not None:
                self._items.move_to_end((ref, revision))
            return found

    def put(self, flow: CompiledFlow) -> None:
        with self._lock:
            self._items[(flow.ref, flow.revision)] = flow
            self._items.move_to_end((flow.ref, flow.revision))
            while len(self._items) > self._size:
                self._items.popitem(last=False)


CACHE = FlowCache()
