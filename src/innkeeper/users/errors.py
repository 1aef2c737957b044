"""Errors of portal users."""

from __future__ import annotations

from innkeeper.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized


class InvalidUser(Invalid):
    """The user's fields are invalid, or the change would lock everyone out (last admin, yourself)."""

    code = "invalid_user"


class UserNotFound(NotFound):
    """No user has that ref."""

    code = "user_not_found"


class UserChangeForbidden(Forbidden):
    """The acting user's role may not make this change (only an Enterprise Admin manages admins)."""

    code = "user_change_forbidden"


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
