"""Placeholder substitution shared by the golden-file contract tests.

Golden files name generated values ``<browser_ref>``, ``<guest_ref>``, … (filled from the
refs a test's setup created) and pad long inputs with ``<repeat:x:N>``.
"""

from __future__ import annotations

import re
from typing import Any

REPEAT = re.compile(r"<repeat:(.):(\d+)>")


def fill(text: str, refs: dict[str, str]) -> str:
    """Replace ``<name>`` placeholders with refs and expand ``<repeat:x:N>``."""
    for name, value in refs.items():
        text = text.replace(f"<{name}>", value)
    return REPEAT.sub(lambda m: m.group(1) * int(m.group(2)), text)


def fill_json(value: Any, refs: dict[str, str]) -> Any:
    """``fill`` applied to every string (keys included) of a JSON value."""
    if isinstance(value, str):
        return fill(value, refs)
    if isinstance(value, list):
        return [fill_json(v, refs) for v in value]
    if isinstance(value, dict):
        return {fill(k, refs): fill_json(v, refs) for k, v in value.items()}
    return value
