"""Compiles expression nodes to closures `ev(ctx) -> value` (None = missing)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from . import _nodes as n
from ._builtins import to_text
from ._expr_builtins import BuiltinCompiler, check_bool
from ._format import iso_datetime
from ._runtime import Ctx, Eval, Macro, ReturnSignal
from ._values import (
    EMPTY,
    SEQ_TYPES,
    FtlFunction,
    InfRange,
    ValueTypeError,
    arith,
    compare,
    format_for_output,
    is_number,
    to_json,
    type_name,
)
from .errors import TemplateError

GLOBAL_FUNCTIONS: dict[str, Any] = {"toJSON": FtlFunction(to_json)}
_SPECIALS = frozenset({"now", "vars", "data_model", "globals", "locals", "main", "namespace", "lang", "locale",
                       "version", "template_name", "current_template_name", "main_template_name",
                       "output_encoding", "locale_object"})  # fmt: skip


def to_output(ctx: Ctx, node: n.Expr, v: Any) -> str:
    """Convert an interpolated value to text (`${...}` and `"...${...}..."`)."""
    if isinstance(v, str):
        return str(v)
    if v is None:
        raise ctx.missing(node)
    if isinstance(v, bool):
        raise ctx.error(
            f'Can\'t convert boolean to string automatically: {node.src}. Use ?c for "true"/"false" or '
            '?string("yes", "no")',
            node,
        )
    if is_number(v):
        return format_for_output(v, ctx.number_format)
    if isinstance(v, (datetime, date, time)):
        return iso_datetime(v)
    raise ctx.error(f"Expected a string, number or date, but this has evaluated to a {type_name(v)}: {node.src}", node)


def guard_size(ctx: Ctx, node: n.Node, v: Any) -> None:
    """Refuse to materialize a range larger than the loop limit or an unbounded one."""
    if isinstance(v, InfRange) or (isinstance(v, range) and len(v) > ctx.max_iterations):
        raise ctx.limit_error("Sequence too large to materialize", node)


def make_range(ctx: Ctx, node: n.Range, low: Any, high: Any) -> Any:
    for side, v in (("start", low), ("end", high)):
        if v is not None and (not is_number(v) or int(v) != v):
            raise ctx.error(f"Range {side} must be a whole number, got a {type_name(v)}", node)
    lo = int(low)
    if high is None:
        return InfRange(lo)
    hi = int(high)
    if node.kind == "..":
        return range(lo, hi + 1) if hi >= lo else range(lo, hi - 1, -1)
    if node.kind == "..<":
        return range(lo, hi) if hi >= lo else range(lo, hi, -1)
    return range(lo, lo + hi) if hi >= 0 else range(lo, lo + hi, -1)


def plus(ctx: Ctx, node: n.Binary, a: Any, b: Any) -> Any:
    """FreeMarker `+`: numbers add; with a string it concatenates; sequences and hashes concatenate/merge."""
    if is_number(a) and is_number(b):
        return arith("+", a, b)
    containers = (Mapping, *SEQ_TYPES)
    if a is EMPTY and isinstance(b, containers):
        return b
    if b is EMPTY and isinstance(a, containers):
        return a
    if isinstance(a, str) or isinstance(b, str):
        result = to_text(ctx, node.left, a) + to_text(ctx, node.right, b)
        if len(result) > ctx.max_out:
            raise ctx.limit_error("String concatenation exceeds the output limit", node)
        return result
    if isinstance(a, SEQ_TYPES) and isinstance(b, SEQ_TYPES):
        if len(a) + len(b) > ctx.max_iterations:
            raise ctx.limit_error("Sequence concatenation too large", node)
        return [*a, *b]
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return {**a, **b}
    raise ctx.error(f"Can't add a {type_name(a)} and a {type_name(b)}: {node.src}", node)


class ExprCompiler(BuiltinCompiler):
    """Turns expression nodes into closures; `Compiler` (in `_directives.py`) adds directives."""

    def expr(self, node: n.Expr) -> Eval:
        method = getattr(self, "_" + type(node).__name__.lower())
        result: Eval = method(node)
        return result

    def non_null(self, node: n.Expr) -> Eval:
        """Like `expr` but raises the missing-value error instead of returning None."""
        ev = self.expr(node)

        def run(ctx: Ctx) -> Any:
            v = ev(ctx)
            if v is None:
                raise ctx.missing(node)
            return v

        return run

    def _literal(self, node: n.Literal) -> Eval:
        value = node.value
        return lambda ctx: value

    def _stringtemplate(self, node: n.StringTemplate) -> Eval:
        parts: list[tuple[str | None, Eval | None, n.Expr | None]] = [
            (p, None, None) if isinstance(p, str) else (None, self.expr(p), p) for p in node.parts
        ]

        def run(ctx: Ctx) -> str:
            out: list[str] = []
            for text, ev, pnode in parts:
                if text is not None:
                    out.append(text)
                else:
                    assert ev is not None and pnode is not None
                    out.append(to_output(ctx, pnode, ev(ctx)))
            s = "".join(out)
            if len(s) > ctx.max_out:
                raise ctx.limit_error("String exceeds the output limit", node)
            return s

        return run

    def _var(self, node: n.Var) -> Eval:
        name = node.name
        fallback = GLOBAL_FUNCTIONS.get(name)
        if fallback is None:
            return lambda ctx: ctx.lookup(name)

        def run(ctx: Ctx) -> Any:
            v = ctx.lookup(name)
            return fallback if v is None else v

        return run

    def _special(self, node: n.Special) -> Eval:
        name = node.name
        if name not in _SPECIALS:
            raise self.syntax_error(f"Unknown special variable .{name}", node)
        if name == "now":
            return lambda ctx: ctx.now
        if name == "vars":
            return lambda ctx: {
                **ctx.data,
                **ctx.globals,
                **ctx.namespace,
                **{k: v for s in ctx.frame for k, v in s.items()},
            }
        if name == "data_model":
            return lambda ctx: ctx.data
        if name == "globals":
            return lambda ctx: {**ctx.data, **ctx.globals}
        if name in ("main", "namespace"):
            return lambda ctx: ctx.namespace
        if name == "locals":
            return lambda ctx: ctx.locals
        constant = {"lang": "en", "locale": "en_US", "locale_object": "en_US", "version": "2.3.32",
                    "output_encoding": "UTF-8"}.get(name, self.name)  # fmt: skip
        return lambda ctx: constant

    def _dot(self, node: n.Dot) -> Eval:
        target, key, tnode = self.expr(node.target), node.name, node.target

        def run(ctx: Ctx) -> Any:
            obj = target(ctx)
            if type(obj) is dict:
                return obj.get(key)
            if isinstance(obj, Mapping):
                return obj.get(key)
            if obj is None:
                raise ctx.missing(tnode)
            if obj is EMPTY:
                return None
            raise ctx.error(f"Expected a hash, but this has evaluated to a {type_name(obj)}: {tnode.src}", tnode)

        return run

    def _index(self, node: n.Index) -> Eval:
        target, key, tnode, knode = self.expr(node.target), self.expr(node.key), node.target, node.key

        def run(ctx: Ctx) -> Any:
            obj = target(ctx)
            k = key(ctx)
            if obj is None:
                raise ctx.missing(tnode)
            if k is None:
                raise ctx.missing(knode)
            if isinstance(obj, Mapping):
                if not isinstance(k, str):
                    raise ctx.error(f"A hash key must be a string, got a {type_name(k)}: {knode.src}", knode)
                return obj.get(k)
            if isinstance(k, (range, InfRange)):
                return self._slice(ctx, node, obj, k)
            if not isinstance(obj, (str, *SEQ_TYPES)):
                raise ctx.error(f"Expected a sequence or hash, but this has evaluated to a {type_name(obj)}", tnode)
            if not is_number(k) or int(k) != k:
                raise ctx.error(f"A sequence index must be a whole number, got: {knode.src}", knode)
            i = int(k)
            if 0 <= i < len(obj):
                return obj[i]
            if isinstance(obj, str):
                raise ctx.error(f"String index {i} out of bounds (length {len(obj)})", knode)
            return None

        return run

    @staticmethod
    def _slice(ctx: Ctx, node: n.Index, obj: Any, r: range | InfRange) -> Any:
        if not isinstance(obj, (str, *SEQ_TYPES)):
            raise ctx.error(f"Can't slice a {type_name(obj)}", node)
        size = len(obj)
        if isinstance(r, InfRange):
            if not 0 <= r.start <= size:
                raise ctx.error(f"Range start {r.start} out of bounds (length {size})", node)
            part = obj[r.start :]
        elif len(r) == 0:
            part = obj[0:0]
        else:
            first, last = r[0], r[-1]
            if not (0 <= first < size and 0 <= last < size):
                raise ctx.error(f"Range {first}..{last} out of bounds (length {size})", node)
            part = obj[first : last + 1] if r.step > 0 else obj[last : first + 1][::-1]
        return part if isinstance(part, str) else list(part)

    def _call(self, node: n.Call) -> Eval:
        target, tnode = self.expr(node.target), node.target
        args = [self.expr(a) for a in node.args]
        call_function = self.call_function

        def run(ctx: Ctx) -> Any:
            fn = target(ctx)
            values = [a(ctx) for a in args]
            if isinstance(fn, FtlFunction):
                try:
                    return fn.fn(*values)
                except TemplateError:
                    raise
                except ValueTypeError as exc:
                    raise ctx.error(f"{tnode.src}(...) failed: {exc}", node) from exc
                except Exception as exc:
                    raise ctx.error(f"{tnode.src}(...) failed: {type(exc).__name__}: {exc}", node) from exc
            if isinstance(fn, Macro) and fn.is_function:
                return call_function(ctx, node, fn, values)
            if fn is None:
                raise ctx.missing(tnode)
            raise ctx.error(f"Expected a method or function, but this has evaluated to a {type_name(fn)}", tnode)

        return run

    @staticmethod
    def bind(ctx: Ctx, node: n.Node, m: Macro, positional: list[Any], named: dict[str, Any]) -> dict[str, Any]:
        """Bind arguments to a new local scope (defaults are evaluated inside it)."""
        local: dict[str, Any] = {}
        if len(positional) > len(m.params) and m.catch_all is None:
            raise ctx.error(f"{m.name} takes {len(m.params)} argument(s), got {len(positional)}", node)
        extra_named = {k: v for k, v in named.items() if k not in m.params}
        if extra_named and m.catch_all is None:
            raise ctx.error(f"{m.name} has no parameter named {next(iter(extra_named))!r}", node)
        if m.catch_all is not None:
            local[m.catch_all] = extra_named if named else list(positional[len(m.params) :])
        saved_frame = ctx.frame
        ctx.frame = [local]
        try:
            for i, pname in enumerate(m.params):
                if i < len(positional):
                    local[pname] = positional[i]
                elif pname in named:
                    local[pname] = named[pname]
                else:
                    default = m.defaults[i]
                    if default is None:
                        raise ctx.error(f"{m.name}: the parameter {pname!r} was not specified", node)
                    local[pname] = default(ctx)
                if local[pname] is None:
                    raise ctx.error(f"{m.name}: the argument for {pname!r} is null or missing", node)
        finally:
            ctx.frame = saved_frame
        return local

    def call_function(self, ctx: Ctx, node: n.Node, m: Macro, args: list[Any]) -> Any:
        local = self.bind(ctx, node, m, args, {})
        saved = (ctx.frame, ctx.loops, ctx.locals, ctx.nested, ctx.out, ctx.depth)
        ctx.enter(node)
        ctx.frame, ctx.loops, ctx.locals, ctx.out = [local], [], local, []
        try:
            m.body(ctx)
        except ReturnSignal as ret:
            return ret.value
        finally:
            ctx.frame, ctx.loops, ctx.locals, ctx.nested, ctx.out, ctx.depth = saved
        return None

    def _exists(self, node: n.Exists) -> Eval:
        target = self.catching(node.target)
        return lambda ctx: target(ctx) is not None

    def _default(self, node: n.Default) -> Eval:
        target = self.catching(node.target)
        default = self.expr(node.default) if node.default is not None else None

        def run(ctx: Ctx) -> Any:
            v = target(ctx)
            if v is not None:
                return v
            return EMPTY if default is None else default(ctx)

        return run

    def _paren(self, node: n.Paren) -> Eval:
        return self.expr(node.inner)

    def _unary(self, node: n.Unary) -> Eval:
        operand, onode = self.expr(node.operand), node.operand
        if node.op == "!":
            return lambda ctx: not check_bool(ctx, onode, operand(ctx))
        negate = node.op == "-"

        def run(ctx: Ctx) -> Any:
            v = operand(ctx)
            if v is None:
                raise ctx.missing(onode)
            if not is_number(v):
                raise ctx.error(f"Expected a number, but this has evaluated to a {type_name(v)}: {onode.src}", onode)
            return -v if negate else v

        return run

    def _binary(self, node: n.Binary) -> Eval:
        op, lnode, rnode = node.op, node.left, node.right
        left, right = self.expr(lnode), self.expr(rnode)
        if op == "&&":
            return lambda ctx: check_bool(ctx, lnode, left(ctx)) and check_bool(ctx, rnode, right(ctx))
        if op == "||":
            return lambda ctx: check_bool(ctx, lnode, left(ctx)) or check_bool(ctx, rnode, right(ctx))

        def operands(ctx: Ctx) -> tuple[Any, Any]:
            a = left(ctx)
            if a is None:
                raise ctx.missing(lnode)
            b = right(ctx)
            if b is None:
                raise ctx.missing(rnode)
            return a, b

        if op in ("==", "!=", "<", "<=", ">", ">="):

            def cmp(ctx: Ctx) -> bool:
                a, b = operands(ctx)
                try:
                    return compare(op, a, b)
                except ValueTypeError as exc:
                    raise ctx.error(f"{exc} (in {node.src})", node) from exc

            return cmp
        if op == "+":

            def add(ctx: Ctx) -> Any:
                a, b = operands(ctx)
                if type(a) is int and type(b) is int:
                    return a + b
                return plus(ctx, node, a, b)

            return add

        def math_op(ctx: Ctx) -> Any:
            a, b = operands(ctx)
            for v, vnode in ((a, lnode), (b, rnode)):
                if not is_number(v):
                    raise ctx.error(
                        f"Expected a number, but this has evaluated to a {type_name(v)}: {vnode.src}", vnode
                    )
            try:
                return arith(op, a, b)
            except ValueTypeError as exc:
                raise ctx.error(f"{exc} (in {node.src})", node) from exc

        return math_op

    def _range(self, node: n.Range) -> Eval:
        low = self.non_null(node.low)
        high = self.non_null(node.high) if node.high is not None else None
        return lambda ctx: make_range(ctx, node, low(ctx), high(ctx) if high is not None else None)

    def _seqlit(self, node: n.SeqLit) -> Eval:
        items = [self.non_null(i) for i in node.items]
        return lambda ctx: [i(ctx) for i in items]

    def _hashlit(self, node: n.HashLit) -> Eval:
        pairs = [(self.non_null(k), k, self.non_null(v)) for k, v in node.pairs]

        def run(ctx: Ctx) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for k, knode, v in pairs:
                key = k(ctx)
                if not isinstance(key, str):
                    raise ctx.error(f"A hash key must be a string, got a {type_name(key)}", knode)
                out[str(key)] = v(ctx)
            return out

        return run

    def _lambda(self, node: n.Lambda) -> Eval:
        param, body = node.param, self.expr(node.body)

        def run(ctx: Ctx) -> Any:
            def call(x: Any) -> Any:
                ctx.frame.append({param: x})
                try:
                    return body(ctx)
                finally:
                    ctx.frame.pop()

            return call

        return run
