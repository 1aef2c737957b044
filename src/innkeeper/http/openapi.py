"""The published OpenAPI document says what the HTTP layer really answers.

FastAPI documents a ``422`` validation error on every operation with inputs; our handler
answers ``400`` with the REST error body instead (spec §1.7). The authentication dependency
adds ``401``/``403`` to every REST and admin operation, every operation whose path names a
resource can answer ``404``, and the REST limits middleware adds ``413``/``415`` to every
operation that takes a JSON body. Routes document their other domain errors (``409``) with
``http.schemas.error_responses``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from innkeeper.http.schemas import RestError

_REF = "#/components/schemas/RestError"
_DESCRIPTIONS = {
    400: "Invalid request (validation failed, malformed JSON, bad query parameter)",
    401: "Missing or wrong Basic credentials",
    403: "The API token's scope does not allow this operation",
    404: "Not found",
    413: "Body over 1 MB",
    415: "Content-Type is not application/json",
}
_METHODS = ("get", "put", "post", "delete", "patch")


def install(app: FastAPI) -> None:
    """Make ``app.openapi()`` document the HTTP layer's own error responses."""
    original: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            document_rest_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_rest_errors(schema: dict[str, Any]) -> None:
    """Rewrite ``422`` as ``400`` and add the statuses the auth and limits layers answer."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("RestError", RestError.model_json_schema(ref_template="#/components/schemas/{model}"))
    for operations in schema.get("paths", {}).values():
        for method in _METHODS:
            operation = operations.get(method)
            if operation is not None:
                _document(operation)
    if not any("HTTPValidationError" in str(p) for p in schema.get("paths", {}).values()):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)


def _document(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    has_input = bool(parameters) or "requestBody" in operation
    if responses.pop("422", None) is not None or has_input:
        _add(responses, 400)
    signed = any(p.get("in") == "query" and p.get("name") == "signature" for p in parameters)
    if not signed:
        _add(responses, 401)
    _add(responses, 403)  # a token without the scope, or a signed URL with a bad signature
    if any(p.get("in") == "path" for p in parameters):
        _add(responses, 404)  # the resource the path names does not exist
    if "requestBody" in operation:
        _add(responses, 413)
        _add(responses, 415)


def _add(responses: dict[str, Any], status: int) -> None:
    responses.setdefault(
        str(status),
        {"description": _DESCRIPTIONS[status], "content": {"application/json": {"schema": {"$ref": _REF}}}},
    )
