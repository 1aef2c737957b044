"""Admin routes of triggered flows: deliveries (dead letters included, with Resend) and the suppression list."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import iso
from innkeeper.core.db import in_transaction
from innkeeper.core.errors import Invalid, NotFound
from innkeeper.core.timeparse import parse_iso
from innkeeper.http.auth import require, runtime_of
from innkeeper.http.pagination import collection, collection_href
from innkeeper.http.responses import json_response
from innkeeper.http.schemas import error_responses
from innkeeper.personalize.experiences import service as flows
from innkeeper.triggers import reports, service
from innkeeper.triggers.models import Delivery, EmailSuppression

router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(require("admin"))])
Status = Literal["PENDING", "SENDING", "RETRYING", "SENT", "FAILED", "SKIPPED"]


def _delivery(row: Delivery) -> dict[str, Any]:
    return {
        "ref": row.ref,
        "flowRef": row.flow_ref,
        "executionRef": row.execution_ref,
        "variantRef": row.variant_ref,
        "connectionRef": row.connection_ref,
        "guestRef": row.guest_ref,
        "recipient": row.recipient,
        "status": row.status,
        "attempts": row.attempts,
        "nextAttemptAt": iso(row.next_attempt_at) if row.status in ("PENDING", "RETRYING") else None,
        "lastError": row.last_error,
        "responseStatus": row.response_status,
        "createdAt": iso(row.created_at),
        "sentAt": iso(row.sent_at),
    }


@router.get("/deliveries", responses=error_responses(401, 403))
async def list_deliveries(
    request: Request,
    status: Annotated[Status | None, Query(description="FAILED lists the dead letters")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Messages of triggered flows, newest first."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        rows, total = await service.list_deliveries(session, status=status, offset=offset, limit=limit)
    href = collection_href(request, runtime, offset=offset, limit=limit, status=status)
    return collection(href, offset=offset, limit=limit, items=[_delivery(row) for row in rows], total=total)


@router.get("/deliveries/{ref}", responses=error_responses(401, 403, 404))
async def get_delivery(request: Request, ref: str) -> dict[str, Any]:
    """One delivery, with the receiver's answer (first 4 KiB) and the rendered body."""
    async with runtime_of(request).sessions() as session:
        row = await service.get_delivery(session, ref)
    if row is None:
        raise NotFound("Not Found", developer_message=f"no delivery {ref[:64]}")
    return {**_delivery(row), "body": row.body, "responseExcerpt": row.response_excerpt}


@router.post("/deliveries/{ref}/resend", responses=error_responses(401, 403, 404, 409))
async def resend(request: Request, ref: str) -> dict[str, Any]:
    """Put a FAILED delivery back in the queue."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> Delivery | None:
        return await service.resend(session, ref, clock=runtime.clock)

    row = await in_transaction(runtime.sessions, work)
    if row is None:
        raise NotFound("Not Found", developer_message=f"no delivery {ref[:64]}")
    return _delivery(row)


class SuppressionIn(BaseModel):
    """An address to suppress."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    reason: str = Field(default="manual", max_length=100)


def _suppression(row: EmailSuppression) -> dict[str, Any]:
    return {"email": row.email, "reason": row.reason, "createdAt": iso(row.created_at)}


@router.get("/email-suppressions", responses=error_responses(401, 403))
async def list_suppressions(
    request: Request,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Addresses that never get mail from triggered flows."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        rows = await service.suppressions(session, offset=offset, limit=limit)
    href = collection_href(request, runtime, offset=offset, limit=limit)
    return collection(href, offset=offset, limit=limit, items=[_suppression(row) for row in rows])


@router.post("/email-suppressions", status_code=201, responses=error_responses(400, 401, 403))
async def add_suppression(request: Request, body: SuppressionIn) -> Response:
    """Suppress an address (bounces, complaints, unsubscribes)."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> dict[str, Any]:
        return _suppression(await service.suppress(session, body.email, reason=body.reason, clock=runtime.clock))

    return json_response(await in_transaction(runtime.sessions, work), 201)


@router.delete("/email-suppressions/{email}", status_code=204, responses=error_responses(401, 403, 404))
async def remove_suppression(request: Request, email: str) -> Response:
    """Allow mail to an address again."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> bool:
        return await service.unsuppress(session, email)

    if not await in_transaction(runtime.sessions, work):
        raise NotFound("Not Found", developer_message="that address is not suppressed")
    return Response(status_code=204)


reports_router = APIRouter(prefix="/innkeeper/v1/reports", tags=["reports"], dependencies=[Depends(require("ro"))])


def _window(runtime_now: datetime, start: str | None, end: str | None, days: int) -> tuple[datetime, datetime]:
    until = _parse(end, "to") if end else runtime_now
    since = _parse(start, "from") if start else until - timedelta(days=days)
    if since >= until:
        raise Invalid("Bad Request", developer_message="from: must be before to")
    return since, until


def _parse(value: str, name: str) -> datetime:
    parsed = parse_iso(value)
    if parsed is None:
        raise Invalid("Bad Request", developer_message=f"{name}: must be an ISO 8601 date or date-time")
    return parsed


@reports_router.get("/abandonment", responses=error_responses(400, 401))
async def abandonment_report(
    request: Request,
    start: Annotated[str | None, Query(alias="from", description="ISO 8601; default 30 days before `to`")] = None,
    end: Annotated[str | None, Query(alias="to", description="ISO 8601; default now")] = None,
    point_of_sale: Annotated[str | None, Query(alias="pointOfSale", max_length=100)] = None,
    channel: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """Abandoned sessions and revenue, reminders sent, recovered revenue (7-day window) and the previous period."""
    runtime = runtime_of(request)
    since, until = _window(runtime.clock.now(), start, end, 30)
    async with runtime.sessions() as session:
        report = await reports.abandonment(session, start=since, end=until, pos=point_of_sale, channel=channel)
    return {**report, "from": iso(since), "to": iso(until)}


@reports_router.get("/triggered/{flow_ref}", responses=error_responses(400, 401, 404))
async def triggered_goals(
    request: Request,
    flow_ref: str,
    start: Annotated[str | None, Query(alias="from", description="ISO 8601; default 7 days before `to`")] = None,
    end: Annotated[str | None, Query(alias="to", description="ISO 8601; default now")] = None,
) -> dict[str, Any]:
    """Conversions, revenue and AOV per variant (and control) in the 1h/3h/1d/3d/7d windows, with delivery counts."""
    runtime = runtime_of(request)
    since, until = _window(runtime.clock.now(), start, end, 7)
    async with runtime.sessions() as session:
        flow = await flows.get_flow(session, flow_ref)
        report = await reports.triggered_goals(session, flow.ref, start=since, end=until)
    return {**report, "from": iso(since), "to": iso(until)}
