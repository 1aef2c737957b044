"""Guest errors."""

from innkeeper.core.errors import Conflict, Invalid, NotFound


class BrowserNotFound(NotFound):
    """The browser ref is unknown (or its guest was deleted)."""

    code = "invalid_browser"


class GuestNotFound(NotFound):
    """The guest ref is unknown, retired or deleted."""

    code = "guest_not_found"


class InvalidGuest(Invalid):
    """A guest body or search query failed validation (the fields are in developer_message)."""

    code = "invalid_guest"


class IdentifierTaken(Conflict):
    """An identifier given for a guest already belongs to another guest."""

    code = "identifier_taken"


class InvalidExtension(Invalid):
    """A guest data extension failed validation (name, keys, values or limits)."""

    code = "invalid_extension"


class ExtensionExists(Conflict):
    """The guest already has a data extension with that name."""

    code = "extension_exists"


class ExtensionNotFound(NotFound):
    """The guest has no data extension with that name."""

    code = "extension_not_found"
