"""CORS for every route (spec §1.4): preflight 204, origin echoed, no cookies."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
ALLOW_HEADERS = (
    "Content-Type, Accept, Authorization, X-Library-Version, X-Client-Software-ID, x-sc-correlation-id, "
    "x-sitecore-contextid, X-Innkeeper-Preview"
)
EXPOSE_HEADERS = "X-Innkeeper-Flow-Outcome, X-Innkeeper-Variant-Ref, X-Innkeeper-Error, x-sc-correlation-id"


class CORSMiddleware:
    """Answers preflights for any path and marks responses as readable by any origin."""

    def __init__(self, app: ASGIApp, *, skip_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.skip_prefixes = skip_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip_prefixes):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin") or "*"
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", origin.encode("latin-1")),
                        (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                        (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                        (b"access-control-max-age", b"86400"),
                        (b"vary", b"Origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = origin
                out["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
                out.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)
