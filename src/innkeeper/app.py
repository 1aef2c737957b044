"""create_app(settings) -> the ASGI app: routes, error handlers, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Route

from innkeeper import __version__, worker
from innkeeper.batch.api import UPLOAD_PREFIX
from innkeeper.batch.api import router as batch_router
from innkeeper.connections.api import router as connections_router
from innkeeper.core.clock import Clock, SystemClock
from innkeeper.core.config import Settings
from innkeeper.core.db import create_engine, in_transaction, session_factory
from innkeeper.core.errors import InnkeeperError
from innkeeper.core.runtime import Runtime
from innkeeper.guests.api import provide_orders
from innkeeper.guests.api import rest_router as guests_rest_router
from innkeeper.guests.api import router as guests_router
from innkeeper.http.cors import CORSMiddleware
from innkeeper.http.errors import rest_error, rest_error_for
from innkeeper.http.guest_orders import guest_orders
from innkeeper.http.hot import InnkeeperAPI
from innkeeper.http.limits import RestLimits
from innkeeper.http.openapi import install as install_openapi
from innkeeper.http.responses import json_response
from innkeeper.orders.api import router as orders_router
from innkeeper.personalize.experiences.api import router as flows_router
from innkeeper.personalize.experiences.api import routes as personalize_routes
from innkeeper.portal._web import PortalInterrupt, interrupted
from innkeeper.portal.routes import router as portal_router
from innkeeper.sessions.api import router as sessions_router
from innkeeper.stream.api import routes as stream_routes
from innkeeper.tenant import service as tenant
from innkeeper.tenant.api import router as tenant_router
from innkeeper.triggers.api import reports_router
from innkeeper.triggers.api import router as triggers_router
from innkeeper.users import service as users

log = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    """Liveness: the process answers and reaches its database."""
    runtime: Runtime = request.app.state.runtime
    async with runtime.sessions() as session:
        await tenant.get_tenant(session)
    return json_response({"status": "OK", "version": __version__})


def create_app(settings: Settings, *, clock: Clock | None = None, run_workers: bool = False) -> FastAPI:
    """Build the application. The database must already be migrated."""
    engine = create_engine(settings.async_database_url)
    runtime = Runtime(settings=settings, engine=engine, sessions=session_factory(engine), clock=clock or SystemClock())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def boot(session: AsyncSession) -> tenant.Bootstrap:
            result = await tenant.bootstrap(session, settings, clock=runtime.clock)
            await users.ensure_admin(
                session, email=settings.admin_email, password=settings.admin_password, clock=runtime.clock
            )
            return result

        result = await in_transaction(runtime.sessions, boot)
        runtime.client_key = result.client_key
        app.state.bootstrap = result
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(runtime, stop)) if run_workers else None
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await engine.dispose()

    app = InnkeeperAPI(
        title="Innkeeper",
        version=__version__,
        description="Sitecore CDP / Personalize compatible customer data platform.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    hot = [*stream_routes(), *personalize_routes()]
    app.router.routes[:0] = [*hot, Route("/healthz", healthz, methods=["GET"])]
    app.include_router(tenant_router)
    app.include_router(guests_router)
    app.include_router(guests_rest_router)
    provide_orders(app, guest_orders)
    app.include_router(sessions_router)
    app.include_router(orders_router)
    app.include_router(batch_router)
    app.include_router(flows_router)
    app.include_router(triggers_router)
    app.include_router(reports_router)
    app.include_router(portal_router)
    app.include_router(connections_router)
    _error_handlers(app)
    install_openapi(app)
    skip = (UPLOAD_PREFIX, "/v2/callFlows")
    app.add_middleware(RestLimits, skip_prefixes=skip)
    app.add_middleware(CORSMiddleware)
    app.shortcut(hot, lambda inner: CORSMiddleware(RestLimits(inner, skip_prefixes=skip)))
    return app


def _error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(PortalInterrupt, interrupted)

    @app.exception_handler(InnkeeperError)
    async def domain_error(request: Request, exc: InnkeeperError) -> Response:
        status, body = rest_error_for(exc)
        headers = {"WWW-Authenticate": 'Basic realm="innkeeper"'} if status == 401 else None
        return json_response(body, status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for error in exc.errors():
            location = ".".join(str(part) for part in error.get("loc", ())[1:]) or "body"
            problems.append(f"{location}: {error.get('msg', 'invalid')}")
        return json_response(rest_error(400, developer_message="; ".join(problems)[:2000]), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        developer = None
        if exc.status_code == 405:
            developer = f"METHOD_NOT_ALLOWED: {request.method} is not allowed on this resource"
        return json_response(rest_error(exc.status_code, developer_message=developer), exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return json_response(rest_error(500), 500)
