"""The built-in condition catalog (§6.4): Python reference implementations and their JavaScript twins.

Each built-in is evaluated in Python. Its JavaScript twin (``js/<friendlyId>.js``) is a Sitecore-style IIFE
that reads its parameter values from a ``params`` global (the same normalised dict the Python version gets)
and the tenant time zone from ``tenant.timezone``; ``Builtin.js_source`` is that file preceded by the helper
functions of ``js/_helpers.js`` it uses, so it runs unchanged as a custom condition ("convert to custom",
§6.6) with ``{"script": js_source, "params": {...}}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from innkeeper.personalize.conditions import _catalog_clock, _catalog_guest, _catalog_history, _catalog_request
from innkeeper.personalize.conditions._params import ParamSpec, validate_params
from innkeeper.personalize.conditions._registry import DEFINITIONS, Check, Evaluate
from innkeeper.personalize.conditions.context import ConditionContext

__all__ = ["BUILTINS", "Builtin", "ParamSpec"]

_LOADED = (_catalog_clock, _catalog_guest, _catalog_history, _catalog_request)  # modules register on import
_HELPER = re.compile(r"^function (\w+)\(.*?^}\n", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Builtin:
    """A built-in condition: its parameters, the heavy guest parts it reads, its Python and JS implementations."""

    friendly_id: str
    params: tuple[ParamSpec, ...]
    needs: frozenset[str]
    evaluate: Evaluate
    js_source: str
    flow_types: tuple[str, ...] = ("web", "interactive", "triggered")
    check: Check | None = None

    def validate(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Validate and normalise parameter values (defaults filled in); raise ConditionError when invalid."""
        values = validate_params(self.friendly_id, self.params, params)
        if self.check is not None:
            self.check(self.friendly_id, values)
        return values

    def __call__(self, ctx: ConditionContext, params: Mapping[str, Any]) -> bool:
        return self.evaluate(ctx, params)


def _js_dir() -> Any:
    return resources.files(__package__).joinpath("js")


def _helpers() -> dict[str, str]:
    text = _js_dir().joinpath("_helpers.js").read_text(encoding="utf-8")
    return {m.group(1): m.group(0) for m in _HELPER.finditer(text)}


def _with_helpers(body: str, helpers: Mapping[str, str]) -> str:
    """Prefix ``body`` with the helpers it calls (transitively), in their file order."""
    used: set[str] = set()
    pending = [body]
    while pending:
        text = pending.pop()
        for name, source in helpers.items():
            if name not in used and re.search(rf"\b{name}\(", text):
                used.add(name)
                pending.append(source)
    prefix = "".join(source + "\n" for name, source in helpers.items() if name in used)
    return prefix + body


def _build() -> dict[str, Builtin]:
    helpers = _helpers()
    catalog: dict[str, Builtin] = {}
    for friendly_id, definition in sorted(DEFINITIONS.items()):
        body = _js_dir().joinpath(f"{friendly_id}.js").read_text(encoding="utf-8")
        catalog[friendly_id] = Builtin(
            friendly_id=friendly_id,
            params=definition.params,
            needs=definition.needs,
            evaluate=definition.evaluate,
            js_source=_with_helpers(body, helpers),
            flow_types=definition.flow_types,
            check=definition.check,
        )
    return catalog


BUILTINS: Mapping[str, Builtin] = MappingProxyType(_build())
