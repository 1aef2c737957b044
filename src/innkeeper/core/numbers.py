"""Bounded numbers from untrusted JSON: finite, within what the database columns hold."""

from __future__ import annotations

import math
from typing import Any

MAX_AMOUNT = 1e15  # prices and revenue: far beyond any real order, safely representable
MAX_QUANTITY = 2_147_483_647  # a 32-bit INTEGER column on every dialect


def amount(value: Any) -> float | None:
    """A finite number within ±MAX_AMOUNT, else None (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and abs(value) > MAX_AMOUNT:
        return None
    result = float(value)
    if not math.isfinite(result) or abs(result) > MAX_AMOUNT:
        return None
    return result


def quantity(value: Any) -> int | float | None:
    """A quantity in 0..MAX_QUANTITY (integral values as int), else None."""
    number = amount(value)
    if number is None or number < 0 or number > MAX_QUANTITY:
        return None
    return int(number) if number.is_integer() else number
