"""REST request limits (spec §1.7): JSON bodies only (415), at most 1 MB (413), no NUL characters (400)."""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from innkeeper.http.errors import rest_error
from innkeeper.http.responses import json_response

MAX_REST_BODY = 1024 * 1024
REST_PREFIXES = ("/v2/", "/v2.1/", "/admin/")
_WITH_BODY = {"POST", "PUT", "PATCH"}
# PostgreSQL text and JSONB cannot hold NUL: refuse it at the edge on every dialect alike,
# as the Stream API does, instead of failing in the database.
_NUL_MESSAGE = "NUL characters (\\u0000) are not allowed in text"


class RestLimits:
    """Buffers REST request bodies up to the limit, refusing larger or non-JSON ones.

    ``skip_prefixes`` are REST paths that take other bodies (batch file uploads).
    """

    def __init__(self, app: ASGIApp, *, skip_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(REST_PREFIXES) and _nul_in_url(scope):
            await json_response(rest_error(400, developer_message=_NUL_MESSAGE), 400)(scope, receive, send)
            return
        if (
            scope["type"] != "http"
            or scope["method"] not in _WITH_BODY
            or not path.startswith(REST_PREFIXES)
            or path.startswith(self.skip_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_REST_BODY:
            await json_response(rest_error(413), 413)(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_REST_BODY:
                await json_response(rest_error(413), 413)(scope, receive, send)
                return
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if body.strip() and not (content_type == "application/json" or content_type.endswith("+json")):
            response = json_response(rest_error(415, developer_message="Content-Type: must be application/json"), 415)
            await response(scope, receive, send)
            return
        if _nul_in_json(bytes(body)):
            await json_response(rest_error(400, developer_message=_NUL_MESSAGE), 400)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _nul_in_url(scope: Scope) -> bool:
    raw_path = scope.get("raw_path") or scope.get("path", "").encode()
    query = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"%00" in raw_path or b"%00" in query or b"\x00" in query


def _nul_in_json(body: bytes) -> bool:
    if b"\x00" in body:
        return True
    if b"\\u0000" not in body:
        return False
    try:
        return _has_nul(json.loads(body))
    except ValueError:
        return False  # not JSON: the route's own parsing answers 400


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False
