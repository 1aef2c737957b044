"""Reference generation: lowercase UUID v4 strings, as Sitecore's refs."""

from __future__ import annotations

import uuid


def new_ref() -> str:
    """A new lowercase UUID v4 string."""
    return str(uuid.uuid4())


def is_ref(value: str) -> bool:
    """Whether ``value`` looks like a UUID ref."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36
