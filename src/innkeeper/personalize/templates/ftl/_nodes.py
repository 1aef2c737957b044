"""The FTL-lite syntax tree produced by the parser and consumed by the compiler (`_compile.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Node:
    """Base of every node: `start`/`end` are source offsets, `line`/`column` where it starts."""

    start: int
    end: int
    line: int
    column: int


# ---------------------------------------------------------------- expressions


@dataclass(slots=True)
class Expr(Node):
    """Base of expression nodes; `src` is the expression's source text (used in error messages)."""

    src: str


@dataclass(slots=True)
class Literal(Expr):
    value: Any


@dataclass(slots=True)
class StringTemplate(Expr):
    parts: list[str | Expr]


@dataclass(slots=True)
class Var(Expr):
    name: str


@dataclass(slots=True)
class Special(Expr):
    name: str


@dataclass(slots=True)
class Dot(Expr):
    target: Expr
    name: str


@dataclass(slots=True)
class Index(Expr):
    target: Expr
    key: Expr


@dataclass(slots=True)
class Call(Expr):
    target: Expr
    args: list[Expr]


@dataclass(slots=True)
class BuiltIn(Expr):
    target: Expr
    name: str
    args: list[Expr] | None


@dataclass(slots=True)
class Exists(Expr):
    target: Expr


@dataclass(slots=True)
class Default(Expr):
    target: Expr
    default: Expr | None


@dataclass(slots=True)
class Unary(Expr):
    op: str
    operand: Expr


@dataclass(slots=True)
class Binary(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(slots=True)
class Range(Expr):
    low: Expr
    high: Expr | None
    kind: str  # "..", "..<", "..*"


@dataclass(slots=True)
class SeqLit(Expr):
    items: list[Expr]


@dataclass(slots=True)
class HashLit(Expr):
    pairs: list[tuple[Expr, Expr]]


@dataclass(slots=True)
class Paren(Expr):
    inner: Expr


@dataclass(slots=True)
class Lambda(Expr):
    param: str
    body: Expr


# ---------------------------------------------------------------- directives


@dataclass(slots=True)
class Text(Node):
    text: str


@dataclass(slots=True)
class Interp(Node):
    expr: Expr


@dataclass(slots=True)
class If(Node):
    branches: list[tuple[Expr | None, list[Node]]]


@dataclass(slots=True)
class ListDirective(Node):
    seq: Expr
    var: str | None  # None when the body uses <#items>
    value_var: str | None
    body: list[Node]
    else_body: list[Node] | None


@dataclass(slots=True)
class Items(Node):
    var: str
    value_var: str | None
    body: list[Node]


@dataclass(slots=True)
class Sep(Node):
    body: list[Node]


@dataclass(slots=True)
class Assign(Node):
    scope: str  # assign, global, local
    targets: list[tuple[str, str, Expr | None]]  # (name, operator "=" "+=" "++" ..., value)


@dataclass(slots=True)
class Capture(Node):
    scope: str
    name: str
    body: list[Node]


@dataclass(slots=True)
class Switch(Node):
    value: Expr
    cases: list[tuple[list[Expr] | None, list[Node]]]  # None = default
    on_style: bool  # <#on> cases never fall through


@dataclass(slots=True)
class Attempt(Node):
    body: list[Node]
    recover: list[Node]


@dataclass(slots=True)
class Compress(Node):
    body: list[Node]


@dataclass(slots=True)
class Param:
    name: str
    default: Expr | None


@dataclass(slots=True)
class MacroDef(Node):
    name: str
    params: list[Param]
    catch_all: str | None
    body: list[Node]
    is_function: bool


@dataclass(slots=True)
class Return(Node):
    value: Expr | None


@dataclass(slots=True)
class Nested(Node):
    args: list[Expr]


@dataclass(slots=True)
class MacroCall(Node):
    callee: Expr
    positional: list[Expr]
    named: list[tuple[str, Expr]]
    loop_vars: list[str]
    body: list[Node] | None = field(default=None)


@dataclass(slots=True)
class Flow(Node):
    kind: str  # break, continue, stop
    value: Expr | None = None
