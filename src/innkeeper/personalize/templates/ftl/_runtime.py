"""Render-time state: sandbox limits, the per-render context, loop state, macro values and flow-control signals."""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import MissingValueError, TemplateLimitError, TemplateRenderError

if TYPE_CHECKING:
    from . import _nodes as n

Stmt = Callable[["Ctx"], None]
Eval = Callable[["Ctx"], Any]


@dataclass(frozen=True, slots=True)
class Limits:
    """Sandbox limits for one render (defaults from the Personalize contract §5.6)."""

    max_output_chars: int = 1_048_576
    max_loop_iterations: int = 100_000
    max_nesting: int = 64
    max_seconds: float = 0.05


DEFAULT_LIMITS = Limits()


class LoopState:
    """State of one `<#list>` iteration, read by `x?index`, `x?has_next`, ..."""

    __slots__ = ("has_next", "index", "var")

    def __init__(self, var: str) -> None:
        self.var = var
        self.index = 0
        self.has_next = False


class Macro:
    """A `<#macro>` or `<#function>` value (functions are called as `f(...)`, macros as `<@m .../>`)."""

    __slots__ = ("body", "catch_all", "defaults", "ftl_kind", "is_function", "name", "params")

    def __init__(self, definition: n.MacroDef, body: Stmt, defaults: list[Eval | None]) -> None:
        self.name = definition.name
        self.params = [p.name for p in definition.params]
        self.defaults = defaults
        self.catch_all = definition.catch_all
        self.is_function = definition.is_function
        self.ftl_kind = "method" if definition.is_function else "macro"
        self.body = body


class NestedContent:
    """What `<#nested>` runs inside a macro: the caller's body with the caller's variable frame."""

    __slots__ = ("body", "frame", "locals", "loop_vars", "loops", "parent")

    def __init__(self, body: Stmt | None, ctx: Ctx, loop_vars: list[str]) -> None:
        self.body = body
        self.frame = list(ctx.frame)
        self.loops = list(ctx.loops)
        self.locals = ctx.locals
        self.loop_vars = loop_vars
        self.parent = ctx.nested


class BreakSignal(Exception):
    """`<#break>`."""


class ContinueSignal(Exception):
    """`<#continue>`."""


class ReturnSignal(Exception):
    """`<#return>`; carries the function's value."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


class StopSignal(TemplateRenderError):
    """`<#stop>`: aborts the render with an error."""


class Ctx:
    """Mutable state of a single render; never shared between renders (compiled templates stay immutable)."""

    __slots__ = (
        "data",
        "deadline",
        "depth",
        "frame",
        "globals",
        "items_stack",
        "iterations",
        "limits",
        "locals",
        "loops",
        "max_depth",
        "max_iterations",
        "max_out",
        "namespace",
        "nested",
        "now",
        "number_format",
        "out",
        "size",
        "template_name",
    )  # fmt: skip

    def __init__(self, data: Mapping[str, Any], *, now: datetime, number_format: str, limits: Limits,
                 template_name: str) -> None:  # fmt: skip
        self.data = data
        self.now = now
        self.number_format = number_format
        self.limits = limits
        self.template_name = template_name
        self.out: list[str] = []
        self.size = 0
        self.max_out = limits.max_output_chars
        self.iterations = 0
        self.max_iterations = limits.max_loop_iterations
        self.depth = 0
        self.max_depth = limits.max_nesting
        self.deadline = _time.perf_counter() + limits.max_seconds
        self.namespace: dict[str, Any] = {}
        self.globals: dict[str, Any] = {}
        self.frame: list[dict[str, Any]] = []
        self.loops: list[LoopState] = []
        self.locals: dict[str, Any] | None = None
        self.nested: NestedContent | None = None
        self.items_stack: list[tuple[Any, bool]] = []

    def lookup(self, name: str) -> Any:
        """Variable resolution order: loop variables and macro locals, assigns, globals, the data model."""
        for scope in reversed(self.frame):
            if name in scope:
                return scope[name]
        ns = self.namespace
        if name in ns:
            return ns[name]
        if name in self.globals:
            return self.globals[name]
        return self.data.get(name)

    def write(self, text: str, node: n.Node) -> None:
        self.size += len(text)
        if self.size > self.max_out:
            raise self.limit_error(f"Output exceeds the limit of {self.max_out} characters", node)
        self.out.append(text)

    def tick(self, node: n.Node) -> None:
        """Count one loop iteration and check the wall clock."""
        self.iterations += 1
        if self.iterations > self.max_iterations:
            raise self.limit_error(f"More than {self.max_iterations} loop iterations in one render", node)
        if _time.perf_counter() > self.deadline:
            raise self.limit_error(f"Rendering took longer than {self.limits.max_seconds} s", node)

    def enter(self, node: n.Node) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.limit_error(f"Nesting deeper than {self.max_depth} levels (directives or recursion)", node)
        if _time.perf_counter() > self.deadline:
            raise self.limit_error(f"Rendering took longer than {self.limits.max_seconds} s", node)

    def limit_error(self, message: str, node: n.Node) -> TemplateLimitError:
        return TemplateLimitError(message, line=node.line, column=node.column, template_name=self.template_name)

    def error(self, message: str, node: n.Node) -> TemplateRenderError:
        return TemplateRenderError(message, line=node.line, column=node.column, template_name=self.template_name)

    def missing(self, node: n.Expr) -> MissingValueError:
        return MissingValueError(
            f"The following has evaluated to null or missing: ==> {node.src}",
            line=node.line,
            column=node.column,
            template_name=self.template_name,
        )
