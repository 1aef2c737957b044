"""Tenant admin routes: points of sale, settings, identity rules, API access (spec §12.3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import in_transaction
from innkeeper.http.auth import require, runtime_of
from innkeeper.http.schemas import error_responses
from innkeeper.tenant import service
from innkeeper.tenant.errors import InvalidPointOfSale
from innkeeper.tenant.schemas import (
    ApiAccess,
    IdentityRules,
    PointOfSaleIn,
    PointOfSaleList,
    PointOfSaleOut,
    SettingsOut,
    SettingsPatch,
    TokenCreated,
    TokenIn,
    TokenOut,
)

router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(require("admin"))])


@router.get("/points-of-sale")
async def list_points_of_sale(request: Request) -> PointOfSaleList:
    """All points of sale."""
    async with runtime_of(request).sessions() as session:
        rows = await service.list_points_of_sale(session)
    return PointOfSaleList(items=[PointOfSaleOut.of(r) for r in rows])


@router.post("/points-of-sale", status_code=201, responses=error_responses(400, 409))
async def create_point_of_sale(request: Request, body: PointOfSaleIn) -> PointOfSaleOut:
    """Create a point of sale."""
    runtime = runtime_of(request)
    if not body.name:
        raise InvalidPointOfSale("Invalid point of sale", developer_message="name: required")
    name = body.name

    async def work(session: AsyncSession) -> PointOfSaleOut:
        pos = await service.create_point_of_sale(session, name, fields=body.fields(), clock=runtime.clock)
        return PointOfSaleOut.of(pos)

    return await in_transaction(runtime.sessions, work)


@router.get("/points-of-sale/{name:path}")
async def get_point_of_sale(request: Request, name: str) -> PointOfSaleOut:
    """One point of sale (the name may contain ``/``)."""
    async with runtime_of(request).sessions() as session:
        return PointOfSaleOut.of(await service.get_point_of_sale(session, name))


@router.put("/points-of-sale/{name:path}")
async def update_point_of_sale(request: Request, name: str, body: PointOfSaleIn) -> PointOfSaleOut:
    """Replace a point of sale's fields."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> PointOfSaleOut:
        pos = await service.update_point_of_sale(session, name, fields=body.fields(), clock=runtime.clock)
        return PointOfSaleOut.of(pos)

    return await in_transaction(runtime.sessions, work)


@router.delete("/points-of-sale/{name:path}", status_code=204)
async def delete_point_of_sale(request: Request, name: str) -> Response:
    """Delete a point of sale."""

    async def work(session: AsyncSession) -> None:
        await service.delete_point_of_sale(session, name)

    await in_transaction(runtime_of(request).sessions, work)
    return Response(status_code=204)


@router.get("/settings")
async def get_settings(request: Request) -> SettingsOut:
    """Tenant feature settings."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        return SettingsOut.of(await service.get_tenant(session), runtime.settings.environment)


@router.patch("/settings")
async def patch_settings(request: Request, body: SettingsPatch) -> SettingsOut:
    """Change the debug flag, POS auto-creation or the accepted edge context ids."""
    runtime = runtime_of(request)
    changes = body.model_dump(exclude_unset=True)

    async def work(session: AsyncSession) -> SettingsOut:
        row = await service.update_settings(session, changes, clock=runtime.clock)
        return SettingsOut.of(row, runtime.settings.environment)

    return await in_transaction(runtime.sessions, work)


@router.get("/identity-rules")
async def get_identity_rules(request: Request) -> IdentityRules:
    """Identity rules and the email fallback."""
    async with runtime_of(request).sessions() as session:
        row = await service.get_tenant(session)
    return IdentityRules.model_validate({"rules": row.identity_rules, "emailFallback": row.email_fallback})


@router.put("/identity-rules")
async def put_identity_rules(request: Request, body: IdentityRules) -> IdentityRules:
    """Replace the identity rules."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> IdentityRules:
        row = await service.update_identity_rules(
            session,
            rules=[r.model_dump() for r in body.rules],
            email_fallback=body.emailFallback,
            clock=runtime.clock,
        )
        return IdentityRules.model_validate({"rules": row.identity_rules, "emailFallback": row.email_fallback})

    return await in_transaction(runtime.sessions, work)


@router.get("/api-access")
async def api_access(request: Request) -> ApiAccess:
    """The client key and active API tokens (values are never returned)."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        rows = await service.list_tokens(session)
    return ApiAccess(clientKey=runtime.client_key, tokens=[TokenOut.of(r) for r in rows])


@router.post("/api-tokens", status_code=201)
async def create_api_token(request: Request, body: TokenIn) -> TokenCreated:
    """Create an API token; its value is in this response only."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> TokenCreated:
        row, value = await service.create_token(session, label=body.label, scope=body.scope, clock=runtime.clock)
        return TokenCreated(**TokenOut.of(row).model_dump(), token=value)

    return await in_transaction(runtime.sessions, work)


@router.delete("/api-tokens/{token_id}", status_code=204)
async def revoke_api_token(request: Request, token_id: str) -> Response:
    """Revoke an API token; it stops working at once."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> None:
        await service.revoke_token(session, token_id, clock=runtime.clock)

    await in_transaction(runtime.sessions, work)
    return Response(status_code=204)
