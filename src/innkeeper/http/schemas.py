"""Wire shapes shared by every REST route: the error body and OpenAPI error responses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class RestError(BaseModel):
    """The REST error body (spec §1.7)."""

    status: int | str
    code: int
    message: str
    developerMessage: str | None = None  # noqa: N815
    moreInfoUrl: str  # noqa: N815


_DESCRIPTIONS = {
    400: "Invalid request (validation failed, malformed JSON, bad query parameter)",
    401: "Missing or wrong Basic credentials",
    403: "The API token's scope does not allow this operation",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Body over 1 MB",
    415: "Content-Type is not application/json",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for the given error statuses (401 is always included)."""
    wanted = sorted({401, *codes})
    return {code: {"model": RestError, "description": _DESCRIPTIONS.get(code, "Error")} for code in wanted}
