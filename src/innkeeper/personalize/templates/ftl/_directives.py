"""Compiles directive nodes to closures `run(ctx)` that append to the render's output."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import _nodes as n
from ._expr import ExprCompiler, plus, to_output
from ._expr_builtins import check_bool
from ._runtime import (
    BreakSignal,
    ContinueSignal,
    Ctx,
    Eval,
    LoopState,
    Macro,
    NestedContent,
    ReturnSignal,
    Stmt,
    StopSignal,
)
from ._values import EMPTY, SEQ_TYPES, InfRange, ValueTypeError, arith, compare, is_number, type_name
from .errors import TemplateLimitError, TemplateRenderError

_COMPRESS_WS = re.compile(r"\s+")


def _noop(ctx: Ctx) -> None:
    return None


def _compress(text: str) -> str:
    text = text.strip()
    return _COMPRESS_WS.sub(lambda m: "\n" if ("\n" in m.group() or "\r" in m.group()) else " ", text)


class Compiler(ExprCompiler):
    """Compiles a parsed template (nodes + hoisted macro definitions) into one `Stmt` and a macro table."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.loop_depth = 0
        self.switch_depth = 0
        self.in_macro = False

    def block(self, nodes: list[n.Node]) -> Stmt:
        stmts = tuple(s for s in (self.stmt(x) for x in nodes) if s is not _noop)
        if not stmts:
            return _noop
        if len(stmts) == 1:
            return stmts[0]

        def run(ctx: Ctx) -> None:
            for s in stmts:
                s(ctx)

        return run

    def stmt(self, node: n.Node) -> Stmt:
        method = getattr(self, "_" + type(node).__name__.lower())
        result: Stmt = method(node)
        return result

    def macro(self, definition: n.MacroDef) -> Macro:
        saved = self.loop_depth, self.switch_depth, self.in_macro
        self.loop_depth, self.switch_depth, self.in_macro = 0, 0, True
        try:
            body = self.block(definition.body)
        finally:
            self.loop_depth, self.switch_depth, self.in_macro = saved
        defaults: list[Eval | None] = [
            self.expr(p.default) if p.default is not None else None for p in definition.params
        ]
        return Macro(definition, body, defaults)

    # ------------------------------------------------------------ output

    def _text(self, node: n.Text) -> Stmt:
        text, size = node.text, len(node.text)

        def run(ctx: Ctx) -> None:
            ctx.size += size
            if ctx.size > ctx.max_out:
                raise ctx.limit_error(f"Output exceeds the limit of {ctx.max_out} characters", node)
            ctx.out.append(text)

        return run

    def _interp(self, node: n.Interp) -> Stmt:
        ev, enode = self.expr(node.expr), node.expr

        def run(ctx: Ctx) -> None:
            v = ev(ctx)
            s = v if type(v) is str else to_output(ctx, enode, v)
            ctx.size += len(s)
            if ctx.size > ctx.max_out:
                raise ctx.limit_error(f"Output exceeds the limit of {ctx.max_out} characters", node)
            ctx.out.append(s)

        return run

    # ------------------------------------------------------------ control flow

    def _if(self, node: n.If) -> Stmt:
        branches = [(self.expr(c) if c is not None else None, c, self.block(b)) for c, b in node.branches]

        def run(ctx: Ctx) -> None:
            for cond, cnode, body in branches:
                if cond is None or check_bool(ctx, cnode, cond(ctx)):  # type: ignore[arg-type]
                    if body is not _noop:
                        ctx.enter(node)
                        body(ctx)
                        ctx.depth -= 1
                    return

        return run

    def _listdirective(self, node: n.ListDirective) -> Stmt:
        seq, snode = self.expr(node.seq), node.seq
        var, value_var = node.var, node.value_var
        self.loop_depth += var is not None
        body = self.block(node.body)
        self.loop_depth -= var is not None
        else_body = self.block(node.else_body) if node.else_body is not None else None
        iterate = self._iterate

        def run(ctx: Ctx) -> None:
            v = seq(ctx)
            if v is None:
                raise ctx.missing(snode)
            if isinstance(v, Mapping):
                if var is not None and value_var is None:
                    raise ctx.error(
                        f"Listing a hash needs two loop variables: <#list {snode.src} as key, value>", snode
                    )
                items: Any = list(v.items())
                pairs = True
            elif isinstance(v, (*SEQ_TYPES, InfRange)) or v is EMPTY:
                if value_var is not None:
                    raise ctx.error(f"Only a hash can be listed with a key and a value variable: {snode.src}", snode)
                items, pairs = ([] if v is EMPTY else v), False
            else:
                raise ctx.error(f"Expected a sequence or hash, but this has evaluated to a {type_name(v)}", snode)
            if not isinstance(items, InfRange) and len(items) == 0:
                if else_body is not None:
                    else_body(ctx)
                return
            ctx.enter(node)
            if var is None:
                ctx.items_stack.append((items, pairs))
                try:
                    body(ctx)
                finally:
                    ctx.items_stack.pop()
            else:
                iterate(ctx, node, items, pairs, var, value_var, body)
            ctx.depth -= 1

        return run

    @staticmethod
    def _iterate(ctx: Ctx, node: n.Node, items: Any, pairs: bool, var: str, value_var: str | None, body: Stmt) -> None:
        state = LoopState(var)
        scope: dict[str, Any] = {}
        ctx.frame.append(scope)
        ctx.loops.append(state)
        depth = ctx.depth
        size = -1 if isinstance(items, InfRange) else len(items)
        index_name, has_next_name = var + "_index", var + "_has_next"
        try:
            for i, item in enumerate(items):
                ctx.tick(node)
                has_next = size < 0 or i + 1 < size
                state.index = i
                state.has_next = has_next
                if pairs:
                    scope[var], scope[value_var] = item  # type: ignore[index]
                else:
                    scope[var] = item
                scope[index_name] = i
                scope[has_next_name] = has_next
                try:
                    body(ctx)
                except ContinueSignal:
                    ctx.depth = depth
        except BreakSignal:
            ctx.depth = depth
        finally:
            ctx.frame.pop()
            ctx.loops.pop()

    def _items(self, node: n.Items) -> Stmt:
        var, value_var = node.var, node.value_var
        self.loop_depth += 1
        body = self.block(node.body)
        self.loop_depth -= 1
        iterate = self._iterate

        def run(ctx: Ctx) -> None:
            if not ctx.items_stack:
                raise ctx.error("#items must be directly inside a #list without 'as'", node)
            items, pairs = ctx.items_stack[-1]
            if pairs and value_var is None:
                raise ctx.error("Listing a hash needs two loop variables: <#items as key, value>", node)
            iterate(ctx, node, items, pairs, var, value_var, body)

        return run

    def _sep(self, node: n.Sep) -> Stmt:
        body = self.block(node.body)

        def run(ctx: Ctx) -> None:
            if not ctx.loops:
                raise ctx.error("#sep must be inside a #list or #items loop", node)
            if ctx.loops[-1].has_next:
                body(ctx)

        return run

    def _flow(self, node: n.Flow) -> Stmt:
        if node.kind == "stop":
            value = self.expr(node.value) if node.value is not None else None

            def stop(ctx: Ctx) -> None:
                msg = to_output(ctx, node.value, value(ctx)) if value is not None and node.value else "Stopped"
                raise StopSignal(msg, line=node.line, column=node.column, template_name=ctx.template_name)

            return stop
        if node.kind == "break" and self.loop_depth == 0 and self.switch_depth == 0:
            raise self.syntax_error("#break must be inside a #list or #switch", node)
        if node.kind == "continue" and self.loop_depth == 0:
            raise self.syntax_error("#continue must be inside a #list", node)
        signal = BreakSignal if node.kind == "break" else ContinueSignal

        def run(ctx: Ctx) -> None:
            raise signal()

        return run

    def _switch(self, node: n.Switch) -> Stmt:
        value, vnode = self.expr(node.value), node.value
        self.switch_depth += 1
        cases = [([self.expr(v) for v in values] if values is not None else None, self.block(body))
                 for values, body in node.cases]  # fmt: skip
        self.switch_depth -= 1
        on_style = node.on_style

        def run(ctx: Ctx) -> None:
            v = value(ctx)
            if v is None:
                raise ctx.missing(vnode)
            matched = False
            depth = ctx.depth
            try:
                for values, body in cases:
                    if not matched:
                        try:
                            matched = values is None or any(compare("==", v, c(ctx)) for c in values)
                        except ValueTypeError as exc:
                            raise ctx.error(str(exc), node) from exc
                    if matched:
                        body(ctx)
                        if on_style:
                            return
            except BreakSignal:
                ctx.depth = depth

        return run

    # ------------------------------------------------------------ variables

    def _assign(self, node: n.Assign) -> Stmt:
        if node.scope == "local" and not self.in_macro:
            raise self.syntax_error("#local can only be used inside a #macro or #function", node)
        scope = node.scope
        targets = [(name, op, self.expr(e) if e is not None else None, e) for name, op, e in node.targets]
        var = n.Var(node.start, node.end, node.line, node.column, node.targets[0][0], node.targets[0][0])
        plus_node = n.Binary(node.start, node.end, node.line, node.column, "+=", "+", var, var)

        def run(ctx: Ctx) -> None:
            for name, op, ev, enode in targets:
                if ev is not None:
                    value = ev(ctx)
                    if value is None:
                        assert enode is not None
                        raise ctx.missing(enode)
                if op != "=":
                    current = ctx.lookup(name)
                    if current is None:
                        raise ctx.error(f"{op} needs an existing variable, but {name} is missing", node)
                    if op in ("++", "--"):
                        if not is_number(current):
                            raise ctx.error(f"{op} needs a number, but {name} is a {type_name(current)}", node)
                        value = arith("+" if op == "++" else "-", current, 1)
                    elif op == "+=":
                        value = plus(ctx, plus_node, current, value)
                    else:
                        if not is_number(current) or not is_number(value):
                            raise ctx.error(f"{op} needs numbers", node)
                        try:
                            value = arith(op[0], current, value)
                        except ValueTypeError as exc:
                            raise ctx.error(str(exc), node) from exc
                self._store(ctx, node, scope, name, value)

        return run

    @staticmethod
    def _store(ctx: Ctx, node: n.Node, scope: str, name: str, value: Any) -> None:
        if scope == "assign":
            ctx.namespace[name] = value
        elif scope == "global":
            ctx.globals[name] = value
        else:
            if ctx.locals is None:
                raise ctx.error("#local can only be used inside a #macro or #function", node)
            ctx.locals[name] = value

    def _capture(self, node: n.Capture) -> Stmt:
        body = self.block(node.body)
        store, scope, name = self._store, node.scope, node.name

        def run(ctx: Ctx) -> None:
            saved = ctx.out
            ctx.out = []
            try:
                body(ctx)
                value = "".join(ctx.out)
            finally:
                ctx.out = saved
            store(ctx, node, scope, name, value)

        return run

    # ------------------------------------------------------------ attempt, compress

    def _attempt(self, node: n.Attempt) -> Stmt:
        body, recover = self.block(node.body), self.block(node.recover)

        def run(ctx: Ctx) -> None:
            saved_out, saved_size, depth = ctx.out, ctx.size, ctx.depth
            frame_len, loops_len, items_len = len(ctx.frame), len(ctx.loops), len(ctx.items_stack)
            ctx.out = []
            failed = False
            try:
                body(ctx)
            except (TemplateLimitError, StopSignal):
                raise
            except TemplateRenderError:
                failed = True
            finally:
                buffered, ctx.out = ctx.out, saved_out
            if failed:
                ctx.size, ctx.depth = saved_size, depth
                del ctx.frame[frame_len:], ctx.loops[loops_len:], ctx.items_stack[items_len:]
                recover(ctx)
            else:
                saved_out.extend(buffered)

        return run

    def _compress(self, node: n.Compress) -> Stmt:
        body = self.block(node.body)

        def run(ctx: Ctx) -> None:
            saved = ctx.out
            ctx.out = []
            try:
                body(ctx)
                text = _compress("".join(ctx.out))
            finally:
                ctx.out = saved
            saved.append(text)

        return run

    # ------------------------------------------------------------ macros

    def _return(self, node: n.Return) -> Stmt:
        value = self.expr(node.value) if node.value is not None else None
        vnode = node.value

        def run(ctx: Ctx) -> None:
            result = None
            if value is not None:
                result = value(ctx)
                if result is None:
                    assert vnode is not None
                    raise ctx.missing(vnode)
            raise ReturnSignal(result)

        return run

    def _nested(self, node: n.Nested) -> Stmt:
        args = [self.expr(a) for a in node.args]

        def run(ctx: Ctx) -> None:
            nc = ctx.nested
            if nc is None:
                raise ctx.error("#nested can only be used inside a #macro", node)
            if nc.body is None:
                return
            values = [a(ctx) for a in args]
            saved = (ctx.frame, ctx.loops, ctx.locals, ctx.nested, ctx.depth)
            ctx.enter(node)
            ctx.frame = [*nc.frame, dict(zip(nc.loop_vars, values, strict=False))]
            ctx.loops, ctx.locals, ctx.nested = list(nc.loops), nc.locals, nc.parent
            try:
                nc.body(ctx)
            finally:
                ctx.frame, ctx.loops, ctx.locals, ctx.nested, ctx.depth = saved

        return run

    def _macrocall(self, node: n.MacroCall) -> Stmt:
        callee, cnode = self.expr(node.callee), node.callee
        positional = [self.expr(a) for a in node.positional]
        named = [(k, self.expr(v)) for k, v in node.named]
        saved = self.loop_depth, self.switch_depth
        body = self.block(node.body) if node.body is not None else None
        self.loop_depth, self.switch_depth = saved
        loop_vars, bind = node.loop_vars, self.bind

        def run(ctx: Ctx) -> None:
            m = callee(ctx)
            if m is None:
                raise ctx.missing(cnode)
            if not isinstance(m, Macro) or m.is_function:
                raise ctx.error(f"Expected a macro, but this has evaluated to a {type_name(m)}: {cnode.src}", cnode)
            local = bind(ctx, node, m, [a(ctx) for a in positional], {k: v(ctx) for k, v in named})
            nested = NestedContent(body, ctx, loop_vars)
            saved_state = (ctx.frame, ctx.loops, ctx.locals, ctx.nested, ctx.depth)
            ctx.enter(node)
            ctx.frame, ctx.loops, ctx.locals, ctx.nested = [local], [], local, nested
            try:
                m.body(ctx)
            except ReturnSignal:
                pass
            finally:
                ctx.frame, ctx.loops, ctx.locals, ctx.nested, ctx.depth = saved_state

        return run
