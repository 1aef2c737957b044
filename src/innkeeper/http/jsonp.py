"""JSONP callback handling (spec §1.6): validated names only, never reflected otherwise."""

from __future__ import annotations

import re

from innkeeper.core.errors import Invalid

_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$")
MAX_LENGTH = 128


class InvalidCallback(Invalid):
    """The JSONP callback name is not a safe JavaScript identifier path."""

    code = "invalid_callback"


def callback_name(params: dict[str, str]) -> str | None:
    """The JSONP callback of the request, None for plain JSON; InvalidCallback if unsafe."""
    value = params.get("callback")
    if value is None:
        value = params.get("cb")
    if value is None or value in ("", "?"):
        return None
    if len(value) > MAX_LENGTH or not _NAME.match(value):
        raise InvalidCallback("Invalid callback name")
    return value
