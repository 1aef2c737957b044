"""The InnkeeperError hierarchy. ``http/errors.py`` is the only code that maps these to HTTP."""

from __future__ import annotations


class InnkeeperError(Exception):
    """Base of every expected failure; never surfaces as a 500."""

    code = "error"

    def __init__(self, message: str, *, developer_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.developer_message = developer_message


class Invalid(InnkeeperError):
    """The input failed validation."""

    code = "invalid"


class Unauthorized(InnkeeperError):
    """Credentials are missing or wrong."""

    code = "unauthorized"


class Forbidden(InnkeeperError):
    """Credentials are valid but lack the permission."""

    code = "forbidden"


class NotFound(InnkeeperError):
    """The referenced resource does not exist."""

    code = "not_found"


class Conflict(InnkeeperError):
    """The request conflicts with the current state."""

    code = "conflict"


class PayloadTooLarge(InnkeeperError):
    """The request body or message exceeds its size limit."""

    code = "payload_too_large"
