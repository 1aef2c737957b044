"""Session errors."""

from innkeeper.core.errors import Invalid


class ForceCloseNotAllowed(Invalid):
    """FORCE_CLOSE is refused in production environments."""

    code = "force_close_not_allowed"
