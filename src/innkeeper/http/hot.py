"""A shorter way in for the hot routes (issue 8): Stream events and flow executions.

FastAPI runs every request through its own layers (native OpenTelemetry check, exception telemetry, body
limit, the async exit stack for uploaded files) and the router's route matching before our endpoint. For the
plain Starlette endpoints of the Stream API and callFlows none of those do anything, yet together they cost
about a tenth of an ingested event's CPU. :class:`InnkeeperAPI` sends a request whose method and exact path
belong to a hot route straight to that route's endpoint, through the same layers of ours every route gets
(:class:`~starlette.middleware.errors.ServerErrorMiddleware` with the app's 500 handler, CORS, the REST
limits, the app's exception handlers); everything else goes through FastAPI as before.

FastAPI's native OpenTelemetry instrumentation therefore does not see the hot routes (it is off unless an
OpenTelemetry provider is configured).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

Wrap = Callable[[ASGIApp], ASGIApp]


class InnkeeperAPI(FastAPI):
    """FastAPI, with :meth:`shortcut` routes answered without FastAPI's per-request layers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hot: dict[tuple[str, str], ASGIApp] = {}

    def shortcut(self, routes: Iterable[Route], wrap: Wrap) -> None:
        """Answer ``routes`` (only those without path parameters) by the shortcut: ``wrap`` adds the app's own
        middleware (the same as ``add_middleware`` adds for every other route). Call it once the exception
        handlers are registered."""
        handlers: dict[Any, Any] = {}
        error_handler = None
        for key, value in self.exception_handlers.items():
            if key in (500, Exception):
                error_handler = value
            else:
                handlers[key] = value
        for route in routes:
            if route.param_convertors:
                continue
            endpoint = _Endpoint(route)
            app = ServerErrorMiddleware(
                wrap(ExceptionMiddleware(endpoint, handlers=handlers, debug=self.debug)),
                handler=error_handler,
                debug=self.debug,
            )
            for method in route.methods or ():
                self._hot[(method, route.path)] = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.root_path:
            app = self._hot.get((scope["method"], scope["path"]))
            if app is not None:
                scope["app"] = self
                scope["router"] = self.router
                await app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class _Endpoint:
    """A route's endpoint, with the scope entries routing would have set."""

    __slots__ = ("app", "endpoint")

    def __init__(self, route: Route) -> None:
        self.app = route.app
        self.endpoint = route.endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["endpoint"] = self.endpoint
        scope["path_params"] = {}
        await self.app(scope, receive, send)
