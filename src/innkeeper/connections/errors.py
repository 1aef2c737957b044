"""Errors of the connections domain (spec personalize.md §9.1)."""

from __future__ import annotations

from innkeeper.core.errors import Conflict, Invalid, NotFound


class ConnectionInvalid(Invalid):
    """A connection failed validation; ``problems`` lists every reason."""

    code = "INVALID_CONNECTION"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Bad Request", developer_message="; ".join(problems)[:2000])
        self.problems = problems


class ConnectionNotFound(NotFound):
    """No connection has that ref."""

    code = "CONNECTION_NOT_FOUND"


class ConnectionConflict(Conflict):
    """The change conflicts with the stored connection (name taken, stale revision, kind change)."""

    code = "CONNECTION_CONFLICT"


class SecretsUnavailable(Conflict):
    """Stored secrets cannot be decrypted with the configured key (INNKEEPER_SECRET_KEY changed?)."""

    code = "SECRETS_UNAVAILABLE"
