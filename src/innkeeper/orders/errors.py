"""Order errors."""

from innkeeper.core.errors import Conflict, Invalid, NotFound


class OrderNotFound(NotFound):
    """The order ref is unknown (or the order was deleted)."""

    code = "order_not_found"


class OrderItemNotFound(NotFound):
    """The order item ref is unknown."""

    code = "order_item_not_found"


class ContactNotFound(NotFound):
    """The order has no contact."""

    code = "order_contact_not_found"


class ConsumerNotFound(NotFound):
    """The consumer ref is unknown."""

    code = "order_consumer_not_found"


class ExtensionNotFound(NotFound):
    """The order or order item has no data extension of that name."""

    code = "order_extension_not_found"


class DuplicateReferenceId(Conflict):
    """Another order already has this ``referenceId``."""

    code = "duplicate_reference_id"


class ContactExists(Conflict):
    """The order already has a contact (use PUT or PATCH to change it)."""

    code = "order_contact_exists"


class ExtensionExists(Conflict):
    """The data extension already exists (use PUT or PATCH to change it)."""

    code = "order_extension_exists"


class InvalidOrder(Invalid):
    """An order, item, contact or consumer body failed validation."""

    code = "invalid_order"


class InvalidExtension(Invalid):
    """A data extension body or name failed validation."""

    code = "invalid_order_extension"
