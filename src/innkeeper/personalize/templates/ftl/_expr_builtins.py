"""Compiles `value?builtin(...)` nodes, including the loop-variable, null-safe and lazy built-ins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _nodes as n
from ._builtins import LAZY_BUILTINS, LOOP_BUILTINS, NULL_SAFE
from ._builtins_seq import ALL_BUILTINS as BUILTINS
from ._runtime import Ctx, Eval, LoopState
from ._values import EMPTY, ValueTypeError, compare, type_name
from .errors import MissingValueError, TemplateSyntaxError


def check_bool(ctx: Ctx, node: n.Expr, v: Any) -> bool:
    if v is True or v is False:
        return v
    if v is None:
        raise ctx.missing(node)
    raise ctx.error(f"Expected a boolean, but this has evaluated to a {type_name(v)}: {node.src}", node)


class BuiltinCompiler:
    """Base of `ExprCompiler`: compiles built-in calls; `expr` is provided by the subclass."""

    def __init__(self, name: str) -> None:
        self.name = name

    def expr(self, node: n.Expr) -> Eval:  # pragma: no cover - overridden by ExprCompiler
        raise NotImplementedError

    def syntax_error(self, message: str, node: n.Node) -> TemplateSyntaxError:
        return TemplateSyntaxError(message, line=node.line, column=node.column, template_name=self.name)

    def _builtin(self, node: n.BuiltIn) -> Eval:
        name, tnode = node.name, node.target
        if name in LOOP_BUILTINS:
            return self._loop_builtin(node)
        if name in NULL_SAFE:
            return self._null_safe_builtin(node)
        target = self.expr(tnode)
        args = [self.expr(a) for a in node.args or []]
        if name in LAZY_BUILTINS:
            return self._lazy_builtin(node, target, args)
        impl = BUILTINS[name]

        def run(ctx: Ctx) -> Any:
            v = target(ctx)
            if v is None:
                raise ctx.missing(tnode)
            return impl(ctx, node, v, [a(ctx) for a in args])

        return run

    def _loop_builtin(self, node: n.BuiltIn) -> Eval:
        if not isinstance(node.target, n.Var):
            raise self.syntax_error(f"?{node.name} can only be applied to a loop variable", node)
        var, name = node.target.name, node.name
        args = [self.expr(a) for a in node.args or []]

        def run(ctx: Ctx) -> Any:
            state: LoopState | None = None
            for s in reversed(ctx.loops):
                if s.var == var:
                    state = s
                    break
            if state is None:
                raise ctx.error(f"?{name}: {var} is not a loop variable of an enclosing #list", node)
            i = state.index
            if name == "index":
                return i
            if name == "counter":
                return i + 1
            if name == "has_next":
                return state.has_next
            if name == "is_first":
                return i == 0
            if name == "is_last":
                return not state.has_next
            if name == "item_parity":
                return "even" if i % 2 else "odd"
            if name == "item_parity_cap":
                return "Even" if i % 2 else "Odd"
            if name == "is_odd_item":
                return i % 2 == 0
            if name == "is_even_item":
                return i % 2 == 1
            values = [a(ctx) for a in args]
            if not values:
                raise ctx.error("?item_cycle needs at least one argument", node)
            return values[i % len(values)]

        return run

    def catching(self, node: n.Expr) -> Eval:
        """Evaluate `node`; if it is parenthesized, a missing value anywhere inside yields None (FreeMarker)."""
        if not isinstance(node, n.Paren):
            return self.expr(node)
        inner = self.expr(node.inner)

        def run(ctx: Ctx) -> Any:
            try:
                return inner(ctx)
            except MissingValueError:
                return None

        return run

    def _null_safe_builtin(self, node: n.BuiltIn) -> Eval:
        target, name = self.catching(node.target), node.name
        args = [self.expr(a) for a in node.args or []]

        def run(ctx: Ctx) -> Any:
            v = target(ctx)
            if name == "has_content":
                if isinstance(v, (str, Mapping, list, tuple, range)):
                    return len(v) > 0
                return v is not None
            if name == "exists":
                return v is not None
            if name == "if_exists":
                return EMPTY if v is None else v
            if v is not None:
                return v
            for a in args:
                d = a(ctx)
                if d is not None:
                    return d
            return None

        return run

    def _lazy_builtin(self, node: n.BuiltIn, target: Eval, args: list[Eval]) -> Eval:
        tnode = node.target
        if node.name == "then":
            if len(args) != 2:
                raise self.syntax_error("?then needs exactly 2 arguments", node)
            yes, no = args

            def then(ctx: Ctx) -> Any:
                return yes(ctx) if check_bool(ctx, tnode, target(ctx)) else no(ctx)

            return then
        if len(args) < 2:
            raise self.syntax_error("?switch needs at least 2 arguments", node)

        def switch(ctx: Ctx) -> Any:
            v = target(ctx)
            if v is None:
                raise ctx.missing(tnode)
            for i in range(0, len(args) - 1, 2):
                try:
                    if compare("==", v, args[i](ctx)):
                        return args[i + 1](ctx)
                except ValueTypeError as exc:
                    raise ctx.error(str(exc), node) from exc
            if len(args) % 2:
                return args[-1](ctx)
            raise ctx.error(f"?switch: no case matched {v!r} and there is no default", node)

        return switch
