"""The public entry points: `compile_template` and the immutable, thread-safe `Template`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._directives import Compiler
from ._parser import parse_template
from ._runtime import DEFAULT_LIMITS, BreakSignal, ContinueSignal, Ctx, Limits, Macro, ReturnSignal
from .errors import TemplateLimitError, TemplateSyntaxError

MAX_TEMPLATE_BYTES = 256 * 1024


class Template:
    """A compiled FTL-lite template; render it any number of times, from any thread."""

    __slots__ = ("_macros", "_run", "name", "source")

    def __init__(self, source: str, name: str) -> None:
        self.source = source
        self.name = name
        nodes, definitions = parse_template(source, name)
        compiler = Compiler(name)
        try:
            macros: dict[str, Macro] = {}
            for definition in definitions:
                macros[definition.name] = compiler.macro(definition)
            self._macros = macros
            self._run = compiler.block(nodes)
        except RecursionError:
            raise TemplateSyntaxError("Template nested too deeply", line=1, column=1, template_name=name) from None

    def render(self, model: Mapping[str, Any], *, now: datetime, number_format: str = "number",
               limits: Limits | None = None) -> str:  # fmt: skip
        """Render with `model` (plain Python values); `.now` is `now`.

        Raises TemplateRenderError (missing values, type errors; with line and column) and TemplateLimitError.
        """
        ctx = Ctx(model, now=now, number_format=number_format, limits=limits or DEFAULT_LIMITS,
                  template_name=self.name)  # fmt: skip
        if self._macros:
            ctx.namespace.update(self._macros)
        try:
            self._run(ctx)
        except ReturnSignal:
            pass  # a top-level #return ends the template
        except (BreakSignal, ContinueSignal):  # pragma: no cover - rejected at compile time
            pass
        except RecursionError:
            raise TemplateLimitError(
                "Nesting too deep (Python recursion limit reached)", line=1, column=1, template_name=self.name
            ) from None
        return "".join(ctx.out)

    def __repr__(self) -> str:
        return f"<Template {self.name!r} ({len(self.source)} chars)>"


def compile_template(source: str, *, name: str = "template") -> Template:
    """Parse and compile `source`; raises TemplateSyntaxError (with .line, .column, .message)."""
    if len(source.encode("utf-8")) > MAX_TEMPLATE_BYTES:
        raise TemplateSyntaxError(
            f"Template larger than {MAX_TEMPLATE_BYTES // 1024} KiB", line=1, column=1, template_name=name
        )
    return Template(source, name)
