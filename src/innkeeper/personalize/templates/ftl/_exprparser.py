"""Recursive-descent parser for FTL expressions (precedence as in FreeMarker 2.3's FTL.jj)."""

from __future__ import annotations

import re
from decimal import Decimal

from . import _nodes as n
from ._builtins import LOOP_BUILTINS
from ._builtins_seq import BUILTIN_NAMES
from ._lexer import Positions, Token, Tokenizer
from .errors import TemplateSyntaxError

MAX_EXPR_DEPTH = 100
FORBIDDEN_BUILTINS = frozenset({"eval", "interpret", "new", "api", "has_api", "eval_json"})
_ESCAPES = {
    '"': '"', "'": "'", "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f",
    "l": "<", "g": ">", "a": "&", "{": "{", "=": "=", "$": "$",
}  # fmt: skip
_INTERP_START = re.compile(r"[$#]\{")
_NON_EXPR_NAMES = frozenset({"as", "using", "in"})
_RELATIONAL = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


class ExprParser:
    """Parses expressions from a `Tokenizer`; `Parser` (template level) extends it."""

    def __init__(self, source: str, name: str) -> None:
        self.src = source
        self.name = name
        self.positions = Positions(source)
        self.expr_depth = 0

    def error(self, message: str, offset: int) -> TemplateSyntaxError:
        line, col = self.positions.at(offset)
        return TemplateSyntaxError(message, line=line, column=col, template_name=self.name)

    def _expect_end(self, tz: Tokenizer, what: str) -> None:
        tok = tz.peek()
        if tok.kind != "eof":
            raise self.error(f"Unexpected {tok.value!r} in {what}", tok.start)

    # ------------------------------------------------------------ template level

    @staticmethod
    def _is_op(tok: Token, *values: str) -> bool:
        return tok.kind == "op" and tok.value in values

    def _expect_op(self, tz: Tokenizer, value: str) -> Token:
        tok = tz.next()
        if not self._is_op(tok, value):
            found = "end of tag" if tok.kind == "eof" else repr(tok.value)
            raise self.error(f"Expected {value!r} but found {found}", tok.start)
        return tok

    def _expect_name(self, tz: Tokenizer, what: str) -> Token:
        tok = tz.next()
        if tok.kind != "name":
            raise self.error(f"Expected {what}", tok.start)
        return tok

    # ------------------------------------------------------------ expressions

    def _mk(self, cls: type[n.Expr], start: int, end: int, **kw: object) -> n.Expr:
        line, col = self.positions.at(start)
        return cls(start, end, line, col, self.src[start:end], **kw)

    def parse_expression(self, tz: Tokenizer) -> n.Expr:
        self.expr_depth += 1
        try:
            if self.expr_depth > MAX_EXPR_DEPTH:
                raise self.error("Expression nested too deeply", tz.peek().start)
            return self._parse_or(tz)
        finally:
            self.expr_depth -= 1

    def _binary_level(self, tz: Tokenizer, sub: str, ops: dict[str, str]) -> n.Expr:
        parse_sub = getattr(self, sub)
        left: n.Expr = parse_sub(tz)
        while True:
            tok = tz.peek()
            if tok.kind not in ("op", "name") or tok.value not in ops:
                return left
            tz.next()
            right = parse_sub(tz)
            left = self._mk(n.Binary, left.start, right.end, op=ops[tok.value], left=left, right=right)

    def _parse_or(self, tz: Tokenizer) -> n.Expr:
        return self._binary_level(tz, "_parse_and", {"||": "||", "|": "||"})

    def _parse_and(self, tz: Tokenizer) -> n.Expr:
        return self._binary_level(tz, "_parse_equality", {"&&": "&&", "&": "&&"})

    def _parse_equality(self, tz: Tokenizer) -> n.Expr:
        return self._binary_level(tz, "_parse_relational", {"==": "==", "=": "==", "!=": "!="})

    def _parse_relational(self, tz: Tokenizer) -> n.Expr:
        return self._binary_level(tz, "_parse_range", _RELATIONAL)

    def _parse_range(self, tz: Tokenizer) -> n.Expr:
        low = self._parse_additive(tz)
        tok = tz.peek()
        if not self._is_op(tok, "..", "..<", "..!", "..*"):
            return low
        tz.next()
        kind = "..<" if tok.value == "..!" else tok.value
        if kind == ".." and not self._can_start_expr(tz.peek()):
            return self._mk(n.Range, low.start, tok.end, low=low, high=None, kind=kind)
        high = self._parse_additive(tz)
        return self._mk(n.Range, low.start, high.end, low=low, high=high, kind=kind)

    def _parse_additive(self, tz: Tokenizer) -> n.Expr:
        return self._binary_level(tz, "_parse_multiplicative", {"+": "+", "-": "-"})

    def _parse_multiplicative(self, tz: Tokenizer) -> n.Expr:
        return self._binary_level(tz, "_parse_unary", {"*": "*", "/": "/", "%": "%"})

    def _parse_unary(self, tz: Tokenizer) -> n.Expr:
        tok = tz.peek()
        if self._is_op(tok, "!", "-", "+"):
            tz.next()
            self.expr_depth += 1
            try:
                if self.expr_depth > MAX_EXPR_DEPTH:
                    raise self.error("Expression nested too deeply", tok.start)
                operand = self._parse_unary(tz)
            finally:
                self.expr_depth -= 1
            return self._mk(n.Unary, tok.start, operand.end, op=tok.value, operand=operand)
        return self._parse_postfix(tz, self._parse_primary(tz))

    @staticmethod
    def _can_start_expr(tok: Token) -> bool:
        if tok.kind in ("num", "str", "rawstr"):
            return True
        if tok.kind == "name":
            return tok.value not in _NON_EXPR_NAMES
        return tok.kind == "op" and tok.value in ("(", "[", "{", "!", "-", "+", ".")

    def _parse_postfix(self, tz: Tokenizer, expr: n.Expr, *, allow_builtins: bool = True) -> n.Expr:
        while True:
            tok = tz.peek()
            if tok.kind != "op":
                return expr
            v = tok.value
            if v == ".":
                tz.next()
                key = tz.next()
                if key.kind != "name":
                    raise self.error("Expected a name after '.'", key.start)
                expr = self._mk(n.Dot, expr.start, key.end, target=expr, name=key.value)
            elif v == "[":
                tz.next()
                key_expr = self.parse_expression(tz)
                close = self._expect_op(tz, "]")
                expr = self._mk(n.Index, expr.start, close.end, target=expr, key=key_expr)
            elif v == "(":
                tz.next()
                args = self._parse_call_args(tz, ")")
                expr = self._mk(n.Call, expr.start, tz.pos, target=expr, args=args)
            elif v == "?" and allow_builtins:
                tz.next()
                expr = self._parse_builtin(tz, expr)
            elif v == "??" and allow_builtins:
                tz.next()
                expr = self._mk(n.Exists, expr.start, tok.end, target=expr)
            elif v == "!" and allow_builtins:
                tz.next()
                if self._can_start_expr(tz.peek()):
                    default = self.parse_expression(tz)  # FreeMarker 2.3's (documented) low precedence
                    return self._mk(n.Default, expr.start, default.end, target=expr, default=default)
                return self._mk(n.Default, expr.start, tok.end, target=expr, default=None)
            else:
                return expr

    def _parse_builtin(self, tz: Tokenizer, target: n.Expr) -> n.Expr:
        name_tok = self._expect_name(tz, "a built-in name after '?'")
        name = name_tok.value
        end = name_tok.end
        if name in FORBIDDEN_BUILTINS:
            raise self.error(f"The ?{name} built-in is not allowed in this sandbox", name_tok.start)
        if name in ("string", "date", "datetime", "time") and self._is_op(tz.peek(), "."):
            state = tz.mark()
            dot = tz.next()
            sub = tz.next()
            if sub.kind == "name" and dot.end == sub.start and f"{name}.{sub.value}" in BUILTIN_NAMES:
                name, end = f"{name}.{sub.value}", sub.end
            else:
                tz.reset(state)
        if name not in BUILTIN_NAMES and name not in LOOP_BUILTINS:
            raise self.error(f"Unknown built-in ?{name}", name_tok.start)
        args: list[n.Expr] | None = None
        nxt = tz.peek()
        if self._is_op(nxt, "(") and nxt.start == end:
            tz.next()
            args = self._parse_call_args(tz, ")")
            end = tz.pos
        return self._mk(n.BuiltIn, target.start, end, target=target, name=name, args=args)

    def _parse_call_args(self, tz: Tokenizer, closer: str) -> list[n.Expr]:
        args: list[n.Expr] = []
        while True:
            tok = tz.peek()
            if self._is_op(tok, closer):
                tz.next()
                return args
            if tok.kind == "eof":
                raise self.error(f"Expected {closer!r}", tok.start)
            args.append(self._parse_lambda_or_expr(tz))
            tok = tz.peek()
            if self._is_op(tok, ","):
                tz.next()
            elif not self._is_op(tok, closer):
                raise self.error(f"Expected ',' or {closer!r}", tok.start)

    def _parse_lambda_or_expr(self, tz: Tokenizer) -> n.Expr:
        tok = tz.peek()
        if tok.kind == "name":
            state = tz.mark()
            tz.next()
            if self._is_op(tz.peek(), "->"):
                tz.next()
                body = self.parse_expression(tz)
                return self._mk(n.Lambda, tok.start, body.end, param=tok.value, body=body)
            tz.reset(state)
        return self.parse_expression(tz)

    def _parse_primary(self, tz: Tokenizer) -> n.Expr:
        tok = tz.next()
        k = tok.kind
        if k == "num":
            value: object = int(tok.value) if "." not in tok.value else Decimal(tok.value)
            return self._mk(n.Literal, tok.start, tok.end, value=value)
        if k == "str":
            return self._parse_string(tok)
        if k == "rawstr":
            return self._mk(n.Literal, tok.start, tok.end, value=tok.value)
        if k == "name":
            if tok.value in ("true", "false"):
                return self._mk(n.Literal, tok.start, tok.end, value=tok.value == "true")
            return self._mk(n.Var, tok.start, tok.end, name=tok.value)
        if k == "op":
            if tok.value == "(":
                inner = self.parse_expression(tz)
                close = self._expect_op(tz, ")")
                return self._mk(n.Paren, tok.start, close.end, inner=inner)
            if tok.value == "[":
                items = self._parse_call_args(tz, "]")
                return self._mk(n.SeqLit, tok.start, tz.pos, items=items)
            if tok.value == "{":
                return self._parse_hash(tz, tok)
            if tok.value == ".":
                name = self._expect_name(tz, "a special variable name after '.'")
                return self._mk(n.Special, tok.start, name.end, name=name.value)
        found = "end of expression" if k == "eof" else repr(tok.value)
        raise self.error(f"Expected an expression but found {found}", tok.start)

    def _parse_hash(self, tz: Tokenizer, open_tok: Token) -> n.Expr:
        pairs: list[tuple[n.Expr, n.Expr]] = []
        while True:
            tok = tz.peek()
            if self._is_op(tok, "}"):
                tz.next()
                break
            key = self.parse_expression(tz)
            self._expect_op(tz, ":")
            pairs.append((key, self.parse_expression(tz)))
            tok = tz.peek()
            if self._is_op(tok, ","):
                tz.next()
            elif not self._is_op(tok, "}"):
                raise self.error("Expected ',' or '}' in hash literal", tok.start)
        return self._mk(n.HashLit, open_tok.start, tz.pos, pairs=pairs)

    def _unescape(self, raw: str, offset: int) -> str:
        if "\\" not in raw:
            return raw
        out: list[str] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            nxt = raw[i + 1 : i + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
            elif nxt == "x":
                m = re.match(r"[0-9A-Fa-f]{1,4}", raw[i + 2 :])
                if m is None:
                    raise self.error("Invalid \\x escape in string literal", offset + i)
                out.append(chr(int(m.group(), 16)))
                i += 2 + len(m.group())
            else:
                raise self.error(f"Invalid escape sequence \\{nxt} in string literal", offset + i)
        return "".join(out)

    def _parse_string(self, tok: Token) -> n.Expr:
        raw = tok.value
        base = tok.start + 1
        if "${" not in raw and "#{" not in raw:
            return self._mk(n.Literal, tok.start, tok.end, value=self._unescape(raw, base))
        parts: list[str | n.Expr] = []
        pos = 0
        while True:
            m = _INTERP_START.search(raw, pos)
            if m is None:
                break
            if m.start() > 0 and raw[m.start() - 1] == "\\" and not raw[: m.start()].endswith("\\\\"):
                pos = m.end()
                continue
            if m.start() > pos:
                parts.append(self._unescape(raw[pos : m.start()], base + pos))
            inner = Tokenizer(self.src, base + m.end(), self.positions, self.name, limit=tok.end - 1)
            content_end, close_end, _ = inner.skip_to_close("}", base + m.start())
            tz = Tokenizer(self.src, base + m.end(), self.positions, self.name, limit=content_end)
            parts.append(self.parse_expression(tz))
            self._expect_end(tz, "${...}")
            pos = close_end - base
        if pos < len(raw):
            parts.append(self._unescape(raw[pos:], base + pos))
        return self._mk(n.StringTemplate, tok.start, tok.end, parts=parts)
