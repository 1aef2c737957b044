"""``/v2/connections``: Sitecore's Connection REST API shape — create, list, retrieve, update, test (§9.1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from innkeeper.connections import service
from innkeeper.connections.models import Connection
from innkeeper.connections.schemas import (
    ConnectionCollection,
    ConnectionIn,
    ConnectionOut,
    ConnectionTestIn,
    ConnectionTestOut,
)
from innkeeper.core.db import in_transaction
from innkeeper.core.runtime import Runtime
from innkeeper.http.auth import require, runtime_of
from innkeeper.http.pagination import DEFAULT_LIMIT, MAX_LIMIT, base_url, collection_href
from innkeeper.http.responses import json_response
from innkeeper.http.schemas import error_responses
from innkeeper.tenant.models import ApiToken

router = APIRouter(prefix="/v2/connections", tags=["connections"])
Reader = Annotated[ApiToken, Depends(require("ro"))]
Writer = Annotated[ApiToken, Depends(require("rw"))]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (max 100)")]


def outbound(request: Request) -> service.Outbound:
    """The app's outbound side (secret box, senders, OAuth2 token cache), built on first use."""
    state = request.app.state
    existing: service.Outbound | None = getattr(state, "connections_outbound", None)
    if existing is None:
        runtime = runtime_of(request)
        existing = service.Outbound.from_settings(runtime.settings, clock=runtime.clock)
        state.connections_outbound = existing
    return existing


def _out(request: Request, runtime: Runtime, row: Connection) -> ConnectionOut:
    return ConnectionOut.of(row, service.masked_config(row), base_url(request, runtime))


@router.post("", status_code=201, responses=error_responses(400, 403, 409, 413, 415))
async def create_connection(request: Request, body: ConnectionIn, token: Writer) -> Response:
    """Create a connection (revision 1); secrets are encrypted at rest and read back as ``"********"``."""
    runtime = runtime_of(request)
    secrets = outbound(request).secrets

    async def work(session: AsyncSession) -> ConnectionOut:
        row = await service.create_connection(
            session, body.document(), secrets=secrets, actor_ref=token.id, clock=runtime.clock
        )
        return _out(request, runtime, row)

    created = await in_transaction(runtime.sessions, work)
    return json_response(created.model_dump(mode="json"), 201, headers={"Location": created.href})


@router.get("", responses=error_responses(400, 403))
async def list_connections(
    request: Request,
    _: Reader,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    archived: Annotated[bool, Query(description="Include archived connections")] = False,
) -> ConnectionCollection:
    """Connections, newest first: ``{href, offset, limit, items, total}``."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        rows, total = await service.list_connections(session, offset=offset, limit=limit, include_archived=archived)
    href = collection_href(request, runtime, offset=offset, limit=limit, archived="true" if archived else None)
    items = [_out(request, runtime, row) for row in rows]
    return ConnectionCollection(href=href, offset=offset, limit=limit, items=items, total=total)


@router.get("/{ref}", responses=error_responses(403, 404))
async def get_connection(request: Request, ref: str, _: Reader) -> ConnectionOut:
    """One connection."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        return _out(request, runtime, await service.get_connection(session, ref))


@router.put("/{ref}", responses=error_responses(400, 403, 404, 409, 413, 415))
async def update_connection(request: Request, ref: str, body: ConnectionIn, token: Writer) -> ConnectionOut:
    """Replace a connection (revision + 1). A secret sent as ``"********"`` keeps its stored value;
    ``null`` or omitted clears it. ``revision``, when sent, must be the current one (409 otherwise)."""
    runtime = runtime_of(request)
    secrets = outbound(request).secrets

    async def work(session: AsyncSession) -> ConnectionOut:
        row = await service.update_connection(
            session, ref, body.document(), secrets=secrets, actor_ref=token.id, clock=runtime.clock
        )
        return _out(request, runtime, row)

    return await in_transaction(runtime.sessions, work)


@router.post("/{ref}/test", responses=error_responses(400, 403, 404, 409, 413, 415))
async def run_connection_test(
    request: Request, ref: str, token: Writer, body: Annotated[ConnectionTestIn | None, Body()] = None
) -> ConnectionTestOut:
    """Test a connection. SMTP_EMAIL: connect, EHLO, STARTTLS/TLS, AUTH, and send a test email when
    ``to`` is given. WEBHOOK: send a small JSON test body. Answers 200 with the outcome, status code,
    latency and the steps that succeeded, whether or not the destination accepted."""
    runtime = runtime_of(request)
    options = body or ConnectionTestIn()
    report = await service.check_connection(
        runtime.sessions, ref, outbound=outbound(request), to=options.to, body=options.body
    )
    result = report.result
    return ConnectionTestOut(
        ref=report.ref,
        kind=report.kind,
        success=result.ok,
        outcome=result.outcome,
        status_code=result.status_code,
        latency_ms=result.latency_ms,
        message=result.reason,
        steps=list(report.steps),
    )
