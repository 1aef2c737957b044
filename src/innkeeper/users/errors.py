"""Errors of portal users."""

from __future__ import annotations

from innkeeper.core.errors import Conflict, Invalid, Unauthorized


class InvalidUser(Invalid):
    code = "invalid_user"


class UserExists(Conflict):
    code = "user_exists"


class LoginFailed(Unauthorized):
    """Wrong email or password (never says which)."""

    code = "login_failed"


class LoginThrottled(Unauthorized):
    """Too many wrong passwords for this account: sign-in is refused until ``retry_after`` seconds pass."""

    code = "login_throttled"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
