"""FTL-lite: a FreeMarker-compatible template engine in pure Python (Personalize contract §5.6).

Sitecore Personalize API-response and request templates are FreeMarker; customers paste them unchanged. Templates
compile once to a tree of Python closures; rendering is sandboxed (no attribute access to Python objects, only
callables wrapped in `FtlFunction` are callable) and bounded by `Limits`.
"""

from __future__ import annotations

from ._runtime import Limits
from ._template import Template, compile_template
from ._values import FtlFunction
from .errors import TemplateError, TemplateLimitError, TemplateRenderError, TemplateSyntaxError

__all__ = [
    "FtlFunction",
    "Limits",
    "Template",
    "TemplateError",
    "TemplateLimitError",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "compile_template",
]
