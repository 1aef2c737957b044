"""Compiling and evaluating audiences (§6.2): built-ins, custom JS conditions, groups, ``not``, segments.

``compile_audience`` validates a flow-wide ``audience`` object once (at publish or when a flow revision is
loaded) and returns an immutable ``Audience`` that any thread may evaluate. ``compile_rules`` does the same
for Sitecore's variant-level ``conditionsTask`` rules. Evaluation short-circuits (AND stops at the first
false, OR at the first true); a condition that fails counts as false and is reported in ``errors``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfoNotFoundError

from innkeeper.personalize.conditions.catalog import BUILTINS, Builtin
from innkeeper.personalize.conditions.context import ConditionContext
from innkeeper.personalize.conditions.errors import ConditionError
from innkeeper.personalize.conditions.sandbox import JsSandbox, build_payload, needs_of_source
from innkeeper.personalize.templates.parameters import ParameterError, declarations, substitute

__all__ = ["Audience", "AudienceResult", "compile_audience", "compile_rules"]

logger = logging.getLogger(__name__)

Combinator = Literal["AND", "OR"]
_SEGMENT_MODES = ("ANY", "ALL", "NONE")
# Errors a built-in may raise on malformed guest data; anything else is a bug and propagates.
_BUILTIN_FAILURES = (TypeError, ValueError, KeyError, AttributeError, ArithmeticError, ZoneInfoNotFoundError)


@dataclass(frozen=True)
class AudienceResult:
    """Outcome of an audience: pass/fail, the custom JS ``filter``/``filters`` (§5.4), errors and debug logs."""

    passed: bool
    filter: Any = None
    filters: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)


@dataclass
class _Run:
    """Mutable state of one evaluation."""

    ctx: ConditionContext
    sandbox: JsSandbox
    js_needs: frozenset[str]
    payload: str | None = None
    js_ms: float = 0.0
    filter: Any = None
    filters: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _BuiltinNode:
    name: str
    builtin: Builtin
    params: Mapping[str, Any]

    def evaluate(self, run: _Run) -> bool:
        try:
            result = bool(self.builtin.evaluate(run.ctx, self.params))
        except _BUILTIN_FAILURES as exc:
            logger.warning("built-in condition %s failed: %s", self.builtin.friendly_id, type(exc).__name__)
            run.errors.append(f"{self.name}: the condition failed ({type(exc).__name__})")
            result = False
        run.filters[self.name] = result
        return result


@dataclass(frozen=True)
class _ScriptNode:
    name: str
    source: str
    params: Mapping[str, Any]

    def evaluate(self, run: _Run) -> bool:
        if run.payload is None:
            run.payload = build_payload(run.ctx, run.js_needs)
        remaining = run.sandbox.total_ms - run.js_ms
        result = run.sandbox.run_payload(self.source, run.payload, params=self.params, timeout_ms=remaining)
        run.js_ms += result.elapsed_ms
        run.logs.extend(result.logs)
        run.filters[self.name] = result.value
        if result.error is not None:
            run.errors.append(f"{self.name}: {result.error}")
            return False
        if result.truthy:
            run.filter = result.value
        return result.truthy


@dataclass(frozen=True)
class _NotNode:
    child: _Node

    def evaluate(self, run: _Run) -> bool:
        return not self.child.evaluate(run)


@dataclass(frozen=True)
class _GroupNode:
    combinator: Combinator
    children: tuple[_Node, ...]

    def evaluate(self, run: _Run) -> bool:
        if self.combinator == "AND":
            return all(child.evaluate(run) for child in self.children)
        return any(child.evaluate(run) for child in self.children) if self.children else True


_Node = _BuiltinNode | _ScriptNode | _NotNode | _GroupNode


@dataclass(frozen=True)
class _Segments:
    mode: str
    refs: frozenset[str]

    def passes(self, guest: Mapping[str, Any]) -> bool:
        memberships = guest.get("segmentMemberships")
        mine: set[str] = set()
        for m in memberships if isinstance(memberships, list) else []:
            if isinstance(m, Mapping):
                mine.update(str(v) for v in (m.get("ref"), m.get("friendlyId")) if v is not None)
        if self.mode == "ANY":
            return bool(self.refs & mine)
        if self.mode == "ALL":
            return self.refs <= mine
        return not (self.refs & mine)


class Audience:
    """A compiled audience; immutable and safe to evaluate from several threads at once."""

    def __init__(self, root: _GroupNode, segments: _Segments | None, sandbox: JsSandbox) -> None:
        self._root = root
        self._segments = segments
        self._sandbox = sandbox
        scripts = list(_scripts(root))
        self._js_needs = frozenset().union(*(needs_of_source(s.source) for s in scripts))
        builtin_needs = frozenset().union(*(b.builtin.needs for b in _builtins(root)))
        self._needs: frozenset[str] = (builtin_needs | self._js_needs) & {"sessions", "orders"}
        self._uses_js = bool(scripts)

    @property
    def needs(self) -> frozenset[str]:
        """Heavy guest parts (``sessions``, ``orders``) evaluation may read; load them only when listed."""
        return self._needs

    @property
    def uses_js(self) -> bool:
        """Whether evaluation runs JavaScript (then call ``evaluate`` from a worker thread)."""
        return self._uses_js

    @property
    def always(self) -> bool:
        """True when the audience has no condition and no segment filter (everyone passes)."""
        return not self._root.children and self._segments is None

    def evaluate(self, ctx: ConditionContext) -> AudienceResult:
        """Evaluate against ``ctx``: segments first, then the conditions with short-circuit; synchronous."""
        started = time.perf_counter()
        run = _Run(ctx, self._sandbox, self._js_needs)
        passed = (self._segments is None or self._segments.passes(ctx.guest)) and self._root.evaluate(run)
        logger.debug("audience evaluated in %.2f ms (js %.2f ms)", (time.perf_counter() - started) * 1000, run.js_ms)
        return AudienceResult(passed, run.filter, run.filters, run.errors, run.logs)


def _walk(node: _Node) -> Sequence[_Node]:
    if isinstance(node, _GroupNode):
        return [n for child in node.children for n in _walk(child)]
    if isinstance(node, _NotNode):
        return _walk(node.child)
    return [node]


def _scripts(root: _Node) -> list[_ScriptNode]:
    return [n for n in _walk(root) if isinstance(n, _ScriptNode)]


def _builtins(root: _Node) -> list[_BuiltinNode]:
    return [n for n in _walk(root) if isinstance(n, _BuiltinNode)]


class _Compiler:
    def __init__(self, sandbox: JsSandbox, custom_templates: Mapping[str, str] | None) -> None:
        self.sandbox = sandbox
        self.custom_templates = custom_templates or {}
        self.names: set[str] = set()

    def unique(self, name: str) -> str:
        candidate, n = name, 1
        while candidate in self.names:
            n += 1
            candidate = f"{name}#{n}"
        self.names.add(candidate)
        return candidate

    def group(self, raw: Mapping[str, Any], *, depth: int, where: str) -> _GroupNode:
        combinator = str(raw.get("combinator") or "AND").upper()
        if combinator not in ("AND", "OR"):
            raise ConditionError(f"{where}: combinator must be AND or OR")
        conditions = raw.get("conditions") or []
        if not isinstance(conditions, list):
            raise ConditionError(f"{where}: conditions must be a list")
        children = tuple(self.entry(c, depth=depth, where=f"{where}.conditions[{i}]") for i, c in enumerate(conditions))
        return _GroupNode("AND" if combinator == "AND" else "OR", children)

    def entry(self, raw: Any, *, depth: int, where: str) -> _Node:
        if not isinstance(raw, Mapping):
            raise ConditionError(f"{where}: a condition must be an object")
        if "not" in raw:
            return _NotNode(self.entry(raw["not"], depth=depth, where=f"{where}.not"))
        if "conditions" in raw or "combinator" in raw:
            if depth >= 1:
                raise ConditionError(f"{where}: groups can be nested one level only")
            return self.group(raw, depth=depth + 1, where=where)
        if "script" in raw:
            return self.script(raw.get("script"), raw.get("params"), raw.get("name") or "script", where=where)
        if "template" in raw:
            return self.template(raw, where=where)
        raise ConditionError(f"{where}: expected template, script, not or a group")

    def template(self, raw: Mapping[str, Any], *, where: str) -> _Node:
        friendly_id = raw.get("template")
        params = raw.get("params")
        if params is not None and not isinstance(params, Mapping):
            raise ConditionError(f"{where}: params must be an object")
        if isinstance(friendly_id, str) and friendly_id in BUILTINS:
            builtin = BUILTINS[friendly_id]
            values = builtin.validate(params)
            return _BuiltinNode(self.unique(str(raw.get("name") or friendly_id)), builtin, values)
        if isinstance(friendly_id, str) and friendly_id in self.custom_templates:
            return self.script(
                self.custom_templates[friendly_id], params, str(raw.get("name") or friendly_id), where=where
            )
        raise ConditionError(f"{where}: unknown condition template {friendly_id!r}")

    def script(self, source: Any, params: Any, name: str, *, where: str) -> _ScriptNode:
        if not isinstance(source, str) or not source.strip():
            raise ConditionError(f"{where}: script must be a non-empty string")
        if params is not None and not isinstance(params, Mapping):
            raise ConditionError(f"{where}: params must be an object")
        values = dict(params or {})
        try:
            if values or declarations(source):
                source = substitute(source, values)
        except ParameterError as exc:
            raise ConditionError(f"{where}: {exc}") from exc
        try:
            self.sandbox.check_syntax(source)
        except ConditionError as exc:
            raise ConditionError(f"{where}: {exc.message}") from exc
        return _ScriptNode(self.unique(str(name)), source, values)

    def segments(self, raw: Any) -> _Segments | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise ConditionError("audience.segments must be an object")
        mode = str(raw.get("mode") or "ANY").upper()
        if mode not in _SEGMENT_MODES:
            raise ConditionError("audience.segments.mode must be ANY, ALL or NONE")
        refs = raw.get("refs") or []
        if not isinstance(refs, list) or not all(isinstance(r, str) and r for r in refs):
            raise ConditionError("audience.segments.refs must be a list of segment refs or friendly ids")
        return _Segments(mode, frozenset(refs)) if refs else None


def compile_audience(
    audience: Mapping[str, Any] | None,
    *,
    sandbox: JsSandbox,
    custom_templates: Mapping[str, str] | None = None,
) -> Audience:
    """Validate a §6.2 ``audience`` object; None or empty gives an audience everyone passes.

    ``custom_templates`` maps the friendly ids of the tenant's published custom conditions to their JS source,
    so ``{"template": "<custom id>", "params": …}`` entries resolve like built-ins do.
    """
    compiler = _Compiler(sandbox, custom_templates)
    if audience is None:
        return Audience(_GroupNode("AND", ()), None, sandbox)
    if not isinstance(audience, Mapping):
        raise ConditionError("audience must be an object")
    root = compiler.group(audience, depth=0, where="audience")
    return Audience(root, compiler.segments(audience.get("segments")), sandbox)


def compile_rules(rules: Sequence[Mapping[str, Any]], *, sandbox: JsSandbox) -> Audience:
    """Compile Sitecore ``conditionsTask`` rules (``[{"id", "ruleData": {"expression"}}]``), combined with AND."""
    compiler = _Compiler(sandbox, None)
    children: list[_Node] = []
    for i, rule in enumerate(rules):
        where = f"rules[{i}]"
        if not isinstance(rule, Mapping) or not isinstance(rule.get("ruleData"), Mapping):
            raise ConditionError(f"{where}: expected {{id, ruleData: {{expression}}}}")
        name = str(rule.get("id") or f"rule-{i + 1}")
        children.append(compiler.script(rule["ruleData"].get("expression"), None, name, where=where))
    return Audience(_GroupNode("AND", tuple(children)), None, sandbox)
