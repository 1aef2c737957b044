"""Errors raised while compiling audience conditions and template parameters."""

from __future__ import annotations

from innkeeper.core.errors import Invalid


class ConditionError(Invalid):
    """An audience condition is invalid: unknown built-in, bad parameter, JS syntax error, source too large."""

    code = "invalid_condition"
