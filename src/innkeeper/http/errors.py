"""The only code that knows HTTP statuses: maps InnkeeperError (by MRO) to Sitecore error bodies."""

from __future__ import annotations

from typing import Any

from innkeeper.core import errors

_STATUS: dict[type[errors.InnkeeperError], int] = {
    errors.Invalid: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
}
_STREAM_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    500: "INTERNAL_SERVER_ERROR",
}
_STREAM_MORE_INFO = {
    "invalid_browser": "invalid-browser",
    "invalid_client_key": "invalid-client-key",
    "unparseable_message": "unparseable-message",
    "missing_attribute": "missing-attribute",
    "invalid_ext": "invalid-ext",
    "force_close_not_allowed": "force-close",
    "message_too_large": "message-too-large",
    "invalid_callback": "invalid-callback",
}
DOCS = "https://innkeeper.dev/errors"


def status_of(exc: errors.InnkeeperError) -> int:
    """HTTP status of an error: the first class in its MRO that has one."""
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def stream_error(status: int, message: str, *, client_key: str | None, code: str = "error") -> dict[str, Any]:
    """The Stream/edge error body the SDKs and the legacy library read (spec §1.7)."""
    return {
        "status": _STREAM_STATUS.get(status, "ERROR"),
        "version": "1.2",
        "client_key": client_key or "",
        "error_msg": message,
        "moreInfo": f"{DOCS}/stream#{_STREAM_MORE_INFO.get(code, 'error')}",
    }


_REST_MESSAGES = {
    400: "The request is invalid.",
    401: "Authentication credentials are required to access the resource. All requests must be authenticated.",
    403: "The credentials do not allow this operation.",
    404: "The specified resource does not exist.",
    405: "The method is not allowed for this resource.",
    409: "The request conflicts with the current state of the resource.",
    413: "The request body is too large.",
    415: "The content type is not supported; send application/json.",
    500: "Internal error.",
}


def rest_error(status: int, *, message: str | None = None, developer_message: str | None = None) -> dict[str, Any]:
    """The REST/Batch/Personalize error body (spec §1.7)."""
    body: dict[str, Any] = {
        "status": {401: "UNAUTHORIZED", 403: "FORBIDDEN"}.get(status, status),
        "code": status,
        "message": message or _REST_MESSAGES.get(status, "Error."),
    }
    if developer_message:
        body["developerMessage"] = developer_message
    body["moreInfoUrl"] = f"{DOCS}/rest#{status}"
    return body


def rest_error_for(exc: errors.InnkeeperError) -> tuple[int, dict[str, Any]]:
    """Status and REST body of a domain error."""
    status = status_of(exc)
    message = _REST_MESSAGES.get(status) if status in (401, 404) else exc.message
    return status, rest_error(status, message=message, developer_message=exc.developer_message)
