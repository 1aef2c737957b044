"""Guest errors."""

from innkeeper.core.errors import NotFound


class BrowserNotFound(NotFound):
    """The browser ref is unknown (or its guest was deleted)."""

    code = "invalid_browser"


class GuestNotFound(NotFound):
    """The guest ref is unknown, retired or deleted."""

    code = "guest_not_found"
