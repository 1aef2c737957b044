"""Registration of built-in condition definitions (the Python half; ``catalog.py`` attaches the JS twins)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from innkeeper.personalize.conditions._params import ParamSpec
from innkeeper.personalize.conditions.context import ConditionContext
from innkeeper.personalize.conditions.errors import ConditionError

__all__ = ["DEFINITIONS", "Definition", "Evaluate", "define", "require_value"]

Evaluate = Callable[[ConditionContext, Mapping[str, Any]], bool]
Check = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Definition:
    """A built-in condition as registered by a ``_catalog_*`` module."""

    friendly_id: str
    params: tuple[ParamSpec, ...]
    needs: frozenset[str]
    evaluate: Evaluate
    flow_types: tuple[str, ...]
    check: Check | None


DEFINITIONS: dict[str, Definition] = {}

ALL = ("web", "interactive", "triggered")
WEB_INTERACTIVE = ("web", "interactive")


def define(
    friendly_id: str,
    *params: ParamSpec,
    needs: frozenset[str] = frozenset(),
    flow_types: tuple[str, ...] = ALL,
    check: Check | None = None,
) -> Callable[[Evaluate], Evaluate]:
    """Register the decorated function as the Python reference implementation of built-in ``friendly_id``."""

    def register(fn: Evaluate) -> Evaluate:
        assert friendly_id not in DEFINITIONS, friendly_id
        DEFINITIONS[friendly_id] = Definition(friendly_id, params, needs, fn, flow_types, check)
        return fn

    return register


def require_value(friendly_id: str, params: dict[str, Any]) -> None:
    """Matching operators other than exists/not exists need a ``value``; ``regex`` values must compile."""
    op = params.get("op")
    if op in ("exists", "not exists"):
        return
    if params.get("value") is None:
        raise ConditionError(f"{friendly_id}: parameter 'value' is required with operator {op!r}")
    if op in ("regex", "not regex"):
        try:
            re.compile(str(params["value"]))
        except re.error as exc:
            raise ConditionError(f"{friendly_id}: parameter 'value' is not a valid regular expression") from exc
