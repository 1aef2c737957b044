"""Basic authentication (client key : API token) as FastAPI dependencies."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import in_transaction
from innkeeper.core.runtime import Runtime
from innkeeper.tenant import service as tenant
from innkeeper.tenant.errors import InvalidCredentials
from innkeeper.tenant.models import ApiToken


def runtime_of(request: Request) -> Runtime:
    """The process runtime stored on the app."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def basic_credentials(header: str | None) -> tuple[str, str]:
    """Decode ``Authorization: Basic …`` into (client key, token)."""
    if not header or not header.lower().startswith("basic "):
        raise InvalidCredentials("Authentication required")
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidCredentials("Malformed credentials") from None
    user, sep, password = decoded.partition(":")
    if not sep or not user or not password:
        raise InvalidCredentials("Malformed credentials")
    return user, password


def require(scope: tenant.Scope) -> Callable[[Request], Awaitable[ApiToken]]:
    """A dependency that authenticates the request and checks the token's scope."""

    async def dependency(request: Request) -> ApiToken:
        runtime = runtime_of(request)
        user, password = basic_credentials(request.headers.get("authorization"))

        async def work(session: AsyncSession) -> ApiToken:
            return await tenant.authenticate(session, user, password, needs=scope, clock=runtime.clock)

        return await in_transaction(runtime.sessions, work)

    return dependency
