"""Stream API errors (rendered in the Stream error shape by the HTTP layer)."""

from innkeeper.core.errors import Invalid, PayloadTooLarge


class UnparseableMessage(Invalid):
    """The message is not a JSON object."""

    code = "unparseable_message"


class MissingAttribute(Invalid):
    """A required event attribute is missing or empty."""

    code = "missing_attribute"


class InvalidExt(Invalid):
    """The event ``ext`` breaks its limits."""

    code = "invalid_ext"


class MessageTooLarge(PayloadTooLarge):
    """The message exceeds 64 KB."""

    code = "message_too_large"
