"""Template-level parser: items from `_lexer.chunk` to the `_nodes` tree (expressions: `_exprparser`)."""

from __future__ import annotations

from . import _nodes as n
from ._exprparser import ExprParser
from ._lexer import Item, Token, Tokenizer, chunk
from .errors import TemplateSyntaxError

MAX_BLOCK_DEPTH = 100
FORBIDDEN_DIRECTIVES = frozenset({"include", "import", "setting", "visit", "recurse", "fallback"})
_UNSUPPORTED_DIRECTIVES = frozenset({"escape", "noescape", "outputformat", "macro_call", "items_"})


class Parser(ExprParser):
    """Parses one template source into a list of directive nodes plus the macro/function definitions."""

    def __init__(self, source: str, name: str) -> None:
        super().__init__(source, name)
        self.items = chunk(source, self.positions, name)
        self.i = 0
        self.block_depth = 0
        self.macros: list[n.MacroDef] = []

    # ------------------------------------------------------------ helpers

    def _pos(self, start: int) -> tuple[int, int, int]:
        line, col = self.positions.at(start)
        return start, line, col

    def _tokens(self, item: Item) -> Tokenizer:
        return Tokenizer(self.src, item.body_start, self.positions, self.name, limit=item.body_end)

    def parse(self) -> list[n.Node]:
        body, stop = self.parse_block(frozenset())
        if stop is not None:
            raise self.error(f"Unexpected tag {stop.text}", stop.start)
        return body

    def parse_block(self, stops: frozenset[str]) -> tuple[list[n.Node], Item | None]:
        """Parse nodes until a tag whose key is in `stops` ("else", "/if", "/@"...); that item is not consumed."""
        self.block_depth += 1
        if self.block_depth > MAX_BLOCK_DEPTH:
            item = self.items[min(self.i, len(self.items) - 1)]
            raise self.error(f"Directives nested too deeply (more than {MAX_BLOCK_DEPTH} levels)", item.start)
        nodes: list[n.Node] = []
        items = self.items
        try:
            while self.i < len(items):
                it = items[self.i]
                kind = it.kind
                if kind in ("text", "raw"):
                    nodes.append(self._text(it))
                elif kind == "interp":
                    tz = self._tokens(it)
                    expr = self.parse_expression(tz)
                    self._expect_end(tz, "${...}")
                    line, col = self.positions.at(it.start)
                    nodes.append(n.Interp(it.start, it.end, line, col, expr=expr))
                elif kind == "comment":
                    pass
                elif kind == "tag":
                    if it.text in stops:
                        return nodes, it
                    self.i += 1
                    node = self.parse_directive(it)
                    if node is not None:
                        nodes.append(node)
                    continue
                elif kind == "endtag":
                    if "/" + it.text in stops:
                        return nodes, it
                    raise self.error(f"Unexpected closing tag </#{it.text}>", it.start)
                elif kind == "call":
                    self.i += 1
                    nodes.append(self.parse_macro_call(it))
                    continue
                elif kind == "endcall":
                    if "/@" in stops:
                        return nodes, it
                    raise self.error("Unexpected closing tag </@...>", it.start)
                self.i += 1
            return nodes, None
        finally:
            self.block_depth -= 1

    def _text(self, it: Item) -> n.Text:
        line, col = self.positions.at(it.start)
        return n.Text(it.start, it.end, line, col, text=it.text)

    def _block_until(self, opener: Item, stops: frozenset[str]) -> tuple[list[n.Node], Item]:
        body, stop = self.parse_block(stops)
        if stop is None:
            ends = " or ".join(f"<#{s}>" if not s.startswith("/") else f"</#{s[1:]}>" for s in sorted(stops))
            raise self.error(f"Unclosed <#{opener.text}>: expected {ends}", opener.start)
        self.i += 1
        return body, stop

    def parse_directive(self, it: Item) -> n.Node | None:
        d = it.text
        start, line, col = self._pos(it.start)
        tz = self._tokens(it)
        if d in FORBIDDEN_DIRECTIVES:
            raise self.error(f"The #{d} directive is not allowed in this sandbox", it.start)
        if d in ("if",):
            return self._parse_if(it, tz)
        if d == "list":
            return self._parse_list(it, tz)
        if d == "items":
            return self._parse_items(it, tz)
        if d == "sep":
            self._expect_end(tz, "#sep")
            body, stop = self.parse_block(frozenset({"/sep", "/list", "/items", "else"}))
            if stop is not None and stop.kind == "endtag" and stop.text == "sep":
                self.i += 1
            return n.Sep(start, it.end, line, col, body=body)
        if d in ("assign", "global", "local"):
            return self._parse_assign(it, tz)
        if d == "switch":
            return self._parse_switch(it, tz)
        if d == "attempt":
            self._expect_end(tz, "#attempt")
            body, _ = self._block_until(it, frozenset({"recover"}))
            recover, _ = self._block_until(it, frozenset({"/attempt"}))
            return n.Attempt(start, it.end, line, col, body=body, recover=recover)
        if d in ("compress", "noautoesc", "autoesc"):
            self._expect_end(tz, f"#{d}")
            if it.self_closing:
                return None
            body, _ = self._block_until(it, frozenset({f"/{d}"}))
            if d == "compress":
                return n.Compress(start, it.end, line, col, body=body)
            return n.If(start, it.end, line, col, branches=[(None, body)])
        if d in ("function", "macro"):
            return self._parse_def(it, tz)
        if d == "return":
            value = None if tz.peek().kind == "eof" else self.parse_expression(tz)
            self._expect_end(tz, "#return")
            return n.Return(start, it.end, line, col, value=value)
        if d == "nested":
            args = self._parse_args_until_eof(tz)
            return n.Nested(start, it.end, line, col, args=args)
        if d in ("break", "continue", "stop"):
            value = None
            if d == "stop" and tz.peek().kind != "eof":
                value = self.parse_expression(tz)
            self._expect_end(tz, f"#{d}")
            return n.Flow(start, it.end, line, col, kind=d, value=value)
        if d in ("flush", "ftl"):
            return None
        if d in ("elseif", "else", "recover", "case", "default", "on", "items"):
            raise self.error(f"<#{d}> is not allowed here", it.start)
        if d in _UNSUPPORTED_DIRECTIVES:
            raise self.error(f"The #{d} directive is not supported", it.start)
        raise self.error(f"Unknown directive #{d}", it.start)

    def _parse_if(self, it: Item, tz: Tokenizer) -> n.Node:
        cond = self.parse_expression(tz)
        self._expect_end(tz, "#if")
        branches: list[tuple[n.Expr | None, list[n.Node]]] = []
        stops = frozenset({"elseif", "else", "/if"})
        while True:
            body, stop = self._block_until(it, stops)
            branches.append((cond, body))
            if stop.kind == "endtag":
                break
            if stop.text == "else":
                self._expect_end(self._tokens(stop), "#else")
                body, _ = self._block_until(it, frozenset({"/if"}))
                branches.append((None, body))
                break
            tz2 = self._tokens(stop)
            cond = self.parse_expression(tz2)
            self._expect_end(tz2, "#elseif")
        start, line, col = self._pos(it.start)
        return n.If(start, it.end, line, col, branches=branches)

    def _loop_vars(self, tz: Tokenizer) -> tuple[str, str | None]:
        var = self._expect_name(tz, "a loop variable name after 'as'").value
        value_var = None
        if self._is_op(tz.peek(), ","):
            tz.next()
            value_var = self._expect_name(tz, "a value variable name").value
        return var, value_var

    def _parse_list(self, it: Item, tz: Tokenizer) -> n.Node:
        seq = self.parse_expression(tz)
        var: str | None = None
        value_var: str | None = None
        tok = tz.peek()
        if tok.kind == "name" and tok.value == "as":
            tz.next()
            var, value_var = self._loop_vars(tz)
        self._expect_end(tz, "#list")
        body, stop = self._block_until(it, frozenset({"else", "/list"}))
        else_body = None
        if stop.kind == "tag":
            else_body, _ = self._block_until(it, frozenset({"/list"}))
        start, line, col = self._pos(it.start)
        return n.ListDirective(start, it.end, line, col, seq=seq, var=var, value_var=value_var, body=body,
                               else_body=else_body)  # fmt: skip

    def _parse_items(self, it: Item, tz: Tokenizer) -> n.Node:
        tok = tz.next()
        if tok.kind != "name" or tok.value != "as":
            raise self.error("Expected 'as' in #items", tok.start)
        var, value_var = self._loop_vars(tz)
        self._expect_end(tz, "#items")
        body, _ = self._block_until(it, frozenset({"/items"}))
        start, line, col = self._pos(it.start)
        return n.Items(start, it.end, line, col, var=var, value_var=value_var, body=body)

    def _assign_name(self, tz: Tokenizer) -> Token:
        tok = tz.next()
        if tok.kind not in ("name", "str", "rawstr"):
            raise self.error("Expected a variable name", tok.start)
        return tok

    def _parse_assign(self, it: Item, tz: Tokenizer) -> n.Node:
        start, line, col = self._pos(it.start)
        targets: list[tuple[str, str, n.Expr | None]] = []
        while True:
            name_tok = self._assign_name(tz)
            op = tz.peek()
            if op.kind == "eof" and not targets:
                if it.self_closing:
                    raise self.error(f"Expected '=' after {name_tok.value}", op.start)
                body, _ = self._block_until(it, frozenset({f"/{it.text}"}))
                return n.Capture(start, it.end, line, col, scope=it.text, name=name_tok.value, body=body)
            tz.next()
            if self._is_op(op, "++", "--"):
                targets.append((name_tok.value, op.value, None))
            elif self._is_op(op, "=", "+=", "-=", "*=", "/=", "%="):
                targets.append((name_tok.value, op.value, self.parse_expression(tz)))
            else:
                raise self.error(f"Expected '=' after {name_tok.value}", op.start)
            if self._is_op(tz.peek(), ","):
                tz.next()
            nxt = tz.peek()
            if nxt.kind == "eof":
                break
            if nxt.kind == "name" and nxt.value == "in":
                raise self.error("'in namespace' is not supported (no #import in this sandbox)", nxt.start)
        return n.Assign(start, it.end, line, col, scope=it.text, targets=targets)

    def _parse_switch(self, it: Item, tz: Tokenizer) -> n.Node:
        value = self.parse_expression(tz)
        self._expect_end(tz, "#switch")
        stops = frozenset({"case", "default", "on", "/switch"})
        self._block_until_case(it, stops)  # text before the first case is ignored
        cases: list[tuple[list[n.Expr] | None, list[n.Node]]] = []
        on_style = False
        while True:
            stop = self.items[self.i - 1]
            if stop.kind == "endtag":
                break
            tz2 = self._tokens(stop)
            if stop.text == "default":
                self._expect_end(tz2, "#default")
                values = None
            else:
                on_style = on_style or stop.text == "on"
                values = [self.parse_expression(tz2)]
                while self._is_op(tz2.peek(), ","):
                    tz2.next()
                    values.append(self.parse_expression(tz2))
                self._expect_end(tz2, f"#{stop.text}")
            body = self._block_until_case(it, stops)
            cases.append((values, body))
        start, line, col = self._pos(it.start)
        return n.Switch(start, it.end, line, col, value=value, cases=cases, on_style=on_style)

    def _block_until_case(self, it: Item, stops: frozenset[str]) -> list[n.Node]:
        body, _ = self._block_until(it, stops)
        return body

    def _parse_def(self, it: Item, tz: Tokenizer) -> n.Node | None:
        name = self._assign_name(tz).value
        params: list[n.Param] = []
        catch_all = None
        if self._is_op(tz.peek(), "("):
            tz.next()
        while True:
            tok = tz.peek()
            if tok.kind == "eof" or self._is_op(tok, ")"):
                if tok.kind != "eof":
                    tz.next()
                break
            if self._is_op(tok, ","):
                tz.next()
                continue
            pname = self._expect_name(tz, "a parameter name").value
            if self._is_op(tz.peek(), ".."):
                tz.next()
                self._expect_op(tz, ".")
                catch_all = pname
                continue
            default = None
            if self._is_op(tz.peek(), "="):
                tz.next()
                default = self.parse_expression(tz)
            params.append(n.Param(pname, default))
        self._expect_end(tz, f"#{it.text}")
        body, _ = self._block_until(it, frozenset({f"/{it.text}"}))
        start, line, col = self._pos(it.start)
        self.macros.append(n.MacroDef(start, it.end, line, col, name=name, params=params, catch_all=catch_all,
                                      body=body, is_function=it.text == "function"))  # fmt: skip
        return None

    def parse_macro_call(self, it: Item) -> n.Node:
        tz = self._tokens(it)
        callee = self._parse_postfix(tz, self._parse_primary(tz), allow_builtins=False)
        positional: list[n.Expr] = []
        named: list[tuple[str, n.Expr]] = []
        loop_vars: list[str] = []
        while True:
            tok = tz.peek()
            if tok.kind == "eof":
                break
            if self._is_op(tok, ";"):
                tz.next()
                while tz.peek().kind != "eof":
                    loop_vars.append(self._expect_name(tz, "a loop variable name").value)
                    if self._is_op(tz.peek(), ","):
                        tz.next()
                break
            if self._is_op(tok, ","):
                tz.next()
                continue
            state = tz.mark()
            if tok.kind == "name":
                tz.next()
                if self._is_op(tz.peek(), "="):
                    tz.next()
                    named.append((tok.value, self.parse_expression(tz)))
                    continue
                tz.reset(state)
            positional.append(self.parse_expression(tz))
        if positional and named:
            raise self.error("Can't mix named and positional macro arguments", it.start)
        start, line, col = self._pos(it.start)
        call = n.MacroCall(start, it.end, line, col, callee=callee, positional=positional, named=named,
                           loop_vars=loop_vars)  # fmt: skip
        if not it.self_closing:
            call.body, _ = self._block_until(it, frozenset({"/@"}))
        return call

    def _parse_args_until_eof(self, tz: Tokenizer) -> list[n.Expr]:
        args: list[n.Expr] = []
        while tz.peek().kind != "eof":
            if self._is_op(tz.peek(), ","):
                tz.next()
                continue
            args.append(self.parse_expression(tz))
        return args


def parse_template(source: str, name: str) -> tuple[list[n.Node], list[n.MacroDef]]:
    """Parse `source`; returns the top-level nodes and every macro/function definition (hoisted)."""
    parser = Parser(source, name)
    try:
        body = parser.parse()
    except RecursionError:
        raise TemplateSyntaxError("Template nested too deeply", line=1, column=1, template_name=name) from None
    return body, parser.macros
