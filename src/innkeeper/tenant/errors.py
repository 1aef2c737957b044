"""Tenant errors."""

from innkeeper.core.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized


class InvalidClientKey(Unauthorized):
    """The client key (or edge context id) is unknown."""

    code = "invalid_client_key"


class InvalidCredentials(Unauthorized):
    """Basic credentials are missing, malformed, wrong or revoked."""

    code = "invalid_credentials"


class InsufficientScope(Forbidden):
    """The API token's scope does not allow this operation."""

    code = "insufficient_scope"


class PointOfSaleNotFound(NotFound):
    """No point of sale has that name."""

    code = "point_of_sale_not_found"


class PointOfSaleExists(Conflict):
    """A point of sale with that name already exists."""

    code = "point_of_sale_exists"


class InvalidPointOfSale(Invalid):
    """The point of sale fields are invalid."""

    code = "invalid_point_of_sale"


class InvalidSettings(Invalid):
    """Tenant settings, identity rules or token fields are invalid."""

    code = "invalid_settings"


class TokenNotFound(NotFound):
    """No active API token has that id."""

    code = "token_not_found"
