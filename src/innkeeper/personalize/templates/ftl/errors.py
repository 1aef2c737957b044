"""Errors raised by FTL-lite: syntax errors at compile time, render errors (and limit errors) at render time."""

from __future__ import annotations

from innkeeper.core.errors import InnkeeperError


class TemplateError(InnkeeperError):
    """Base of every FTL-lite failure; carries the template name, line and column (1-based)."""

    code = "template_error"

    def __init__(self, message: str, *, line: int = 0, column: int = 0, template_name: str = "template") -> None:
        self.line = line
        self.column = column
        self.template_name = template_name
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f'{self.message} [in template "{self.template_name}" at line {self.line}, column {self.column}]'


class TemplateSyntaxError(TemplateError):
    """The template source does not parse, uses a forbidden construct, or is too large."""

    code = "template_syntax"

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


class TemplateRenderError(TemplateError):
    """Rendering failed: a missing value, a type mismatch, a failing function."""

    code = "template_render"


class TemplateLimitError(TemplateRenderError):
    """Rendering exceeded a sandbox limit (output size, loop iterations, nesting, wall clock)."""

    code = "template_limit"


class MissingValueError(TemplateRenderError):
    """A null or missing value was used where a value is required (internal: `(expr)??` catches it)."""

    code = "template_render"
