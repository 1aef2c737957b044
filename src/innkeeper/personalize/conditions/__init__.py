"""Audience conditions: the declarative built-in catalog (§6.4) and sandboxed custom JavaScript (§6.5).

Typical use by the flow pipeline::

    audience = compile_audience(flow["audience"], sandbox=sandbox)    # once per flow revision
    if audience.needs: ...                                            # load sessions/orders lazily
    result = audience.evaluate(ConditionContext(guest=..., request=..., now=clock.now()))
"""

from __future__ import annotations

from innkeeper.personalize.conditions.audience import Audience, AudienceResult, compile_audience, compile_rules
from innkeeper.personalize.conditions.catalog import BUILTINS, Builtin, ParamSpec
from innkeeper.personalize.conditions.context import ConditionContext
from innkeeper.personalize.conditions.errors import ConditionError
from innkeeper.personalize.conditions.sandbox import JsResult, JsSandbox

__all__ = [
    "BUILTINS",
    "Audience",
    "AudienceResult",
    "Builtin",
    "ConditionContext",
    "ConditionError",
    "JsResult",
    "JsSandbox",
    "ParamSpec",
    "compile_audience",
    "compile_rules",
]
