"""REST request limits (spec §1.7): JSON bodies only (415) and at most 1 MB (413)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from innkeeper.http.errors import rest_error
from innkeeper.http.responses import json_response

MAX_REST_BODY = 1024 * 1024
REST_PREFIXES = ("/v2/", "/v2.1/", "/admin/")
_WITH_BODY = {"POST", "PUT", "PATCH"}


class RestLimits:
    """Buffers REST request bodies up to the limit, refusing larger or non-JSON ones.

    ``skip_prefixes`` are REST paths that take other bodies (batch file uploads).
    """

    def __init__(self, app: ASGIApp, *, skip_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
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
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
