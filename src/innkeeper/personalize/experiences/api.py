"""Personalize routes: flow execution (``/v2/callFlows``, Cloud SDK ``/v1/personalize``) and
``/v3/flowDefinitions`` (spec personalize.md §1.6, §2)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response
from starlette.routing import Route

from innkeeper.core.auth import same
from innkeeper.core.db import in_transaction
from innkeeper.core.errors import InnkeeperError
from innkeeper.core.runtime import Runtime
from innkeeper.core.timeparse import parse_iso
from innkeeper.http.auth import require, runtime_of
from innkeeper.http.errors import rest_error, rest_error_for
from innkeeper.http.pagination import base_url, collection, collection_href
from innkeeper.http.responses import JSON_TYPE, json_response
from innkeeper.http.schemas import error_responses
from innkeeper.personalize.experiences import results, service
from innkeeper.personalize.experiences.calls import CallRequest, parse_call
from innkeeper.personalize.experiences.errors import CallFlowsInvalid, FlowInvalid
from innkeeper.personalize.experiences.execution import CallResult, Options, finish, prepare
from innkeeper.tenant import service as tenant
from innkeeper.tenant.models import ApiToken

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
_decoder = msgspec.json.Decoder()


# --- flow execution ------------------------------------------------------------------------


_REASONS = {400: "Bad Request"}


def _error(status: int, code: str, cause: str) -> Response:
    body = rest_error(status, message=_REASONS.get(status), developer_message=f"{code}: {cause}")
    return json_response(body, status)


async def _read_body(request: StarletteRequest) -> Any:
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "text/plain", ""):
        raise _Reject(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise _Reject(413, "PAYLOAD_TOO_LARGE", f"the body is larger than {MAX_BODY} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_BODY:
            raise _Reject(413, "PAYLOAD_TOO_LARGE", f"the body is larger than {MAX_BODY} bytes")
    try:
        return _decoder.decode(bytes(raw))
    except msgspec.DecodeError:
        raise _Reject(400, "INVALID_JSON", "the body is not valid JSON") from None


class _Reject(Exception):
    def __init__(self, status: int, code: str, cause: str) -> None:
        super().__init__(cause)
        self.status, self.code, self.cause = status, code, cause


async def _context_client_key(request: StarletteRequest, runtime: Runtime, call: CallRequest) -> None:
    """Cloud SDK routes: the tenant comes from the context id; a conflicting clientKey is refused."""
    context_id = request.query_params.get("sitecoreContextId") or request.headers.get("x-sitecore-contextid") or ""
    if not context_id:
        raise _Reject(401, "INVALID_CLIENT_KEY", "sitecoreContextId is required")
    if runtime.settings.production and context_id not in runtime.settings.context_ids:
        async with runtime.sessions() as session:
            allowed = (await tenant.get_tenant(session)).context_ids
        if context_id not in allowed:
            raise _Reject(401, "INVALID_CLIENT_KEY", "unknown sitecoreContextId")
    if call.client_key and not same(call.client_key, runtime.client_key):
        raise _Reject(401, "INVALID_CLIENT_KEY", "clientKey does not belong to this context")


async def _site_pos(runtime: Runtime, site: str | None) -> str | None:
    if not site:
        return None
    async with runtime.sessions() as session:
        pos = await tenant.pos_for_site(session, site)
    return pos.name if pos is not None else None


def _answer(runtime: Runtime, call: CallRequest, result: CallResult) -> Response:
    headers = {"X-Innkeeper-Flow-Outcome": result.outcome}
    if result.variant_ref and result.outcome in ("variant", "control"):
        headers["X-Innkeeper-Variant-Ref"] = result.variant_ref
    if result.error and not runtime.settings.production:
        headers["X-Innkeeper-Error"] = result.error
    if call.correlation_id:
        headers["x-sc-correlation-id"] = call.correlation_id[:100]
    if result.outcome == "not_found" and runtime.settings.personalize_strict_not_found:
        body = rest_error(404, developer_message="FLOW_NOT_FOUND: no live flow with that friendlyId")
        return json_response(body, 404, headers=headers)
    text = result.body
    if call.legacy_context:
        text = '{"result":' + text + "}"
    return Response(text.encode("utf-8"), status_code=200, headers=headers, media_type=JSON_TYPE)


async def _call(request: StarletteRequest, *, cloud: bool, flow_ref: str | None = None) -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        body = await _read_body(request)
        headers = {
            name: request.headers[name]
            for name in ("user-agent", "referer", "accept-language")
            if name in request.headers
        }
        call = parse_call(
            body,
            cloud=cloud,
            flow_ref=flow_ref,
            headers=headers,
            ip=request.client.host if request.client else None,
            correlation_id=request.headers.get("x-sc-correlation-id"),
        )
        if cloud:
            await _context_client_key(request, runtime, call)
        elif not same(call.client_key, runtime.client_key):
            raise _Reject(401, "INVALID_CLIENT_KEY", "unknown client key")
        default_pos = call.point_of_sale or await _site_pos(runtime, request.query_params.get("siteId"))
        options = Options(
            number_format=runtime.settings.ftl_number_format,
            context_sessions=runtime.settings.personalize_context_sessions,
            cached_sessions=runtime.settings.personalize_cached_sessions,
            default_pos=default_pos or runtime.settings.point_of_sale,
            budget_seconds=runtime.settings.personalize_budget_ms / 1000,
        )

        async def work(session: AsyncSession) -> CallResult:
            prepared = await prepare(session, call, clock=runtime.clock, options=options)
            if prepared.runs_js:
                # Custom JavaScript runs in a worker thread for milliseconds: end the read-only transaction so
                # the connection (SQLite's only one) serves other calls meanwhile; the writes take a second one.
                await session.commit()
            return await finish(session, prepared, clock=runtime.clock, options=options)

        result = await in_transaction(runtime.sessions, work)
    except _Reject as exc:
        return _error(exc.status, exc.code, exc.cause)
    except CallFlowsInvalid as exc:
        return json_response(rest_error(400, message=exc.message, developer_message=exc.developer_message), 400)
    except InnkeeperError as exc:
        status, error_body = rest_error_for(exc)
        return json_response(error_body, status)
    except Exception:
        log.exception("callFlows failed")
        return _error(500, "INTERNAL_ERROR", "unexpected error")
    return _answer(runtime, call, result)


async def call_flows(request: StarletteRequest) -> Response:
    """``POST /v2/callFlows`` — run an interactive flow by friendly id (Engage SDK, curl, servers)."""
    return await _call(request, cloud=False)


async def call_flow_by_ref(request: StarletteRequest) -> Response:
    """``POST /v2/callFlows/{flowRef}`` — legacy Boxever: the flow is chosen by ref."""
    return await _call(request, cloud=False, flow_ref=request.path_params["flow_ref"])


async def cloud_personalize(request: StarletteRequest) -> Response:
    """``POST /v1/personalize`` and ``/personalize/v2/callFlows`` — Cloud SDK, tenant from the context id."""
    return await _call(request, cloud=True)


def routes() -> list[Route]:
    return [
        Route("/v2/callFlows", call_flows, methods=["POST"]),
        Route("/v2/callFlows/{flow_ref}", call_flow_by_ref, methods=["POST"]),
        Route("/v1/personalize", cloud_personalize, methods=["POST"]),
        Route("/personalize/v2/callFlows", cloud_personalize, methods=["POST"]),
    ]


# --- /v3/flowDefinitions --------------------------------------------------------------------

router = APIRouter(prefix="/v3/flowDefinitions", tags=["personalize"])
Reader = Annotated[ApiToken, Depends(require("ro"))]
Writer = Annotated[ApiToken, Depends(require("rw"))]
Document = Annotated[dict[str, Any], Body(description="A flow definition document (spec personalize.md §1.5).")]


def _href(request: Request, runtime: Runtime, ref: str) -> str:
    return f"{base_url(request, runtime)}/v3/flowDefinitions/{ref}"


def _out(request: Request, runtime: Runtime, flow: Any) -> dict[str, Any]:
    document = service.document_of(flow, client_key=runtime.client_key)
    document["href"] = _href(request, runtime, flow.ref)
    return document


def _actor(token: ApiToken) -> service.Actor:
    return service.Actor(ref=token.id)


@router.get("", responses=error_responses(401))
async def list_flow_definitions(
    request: Request,
    _: Reader,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    archived: Annotated[bool, Query(description="Include archived flows.")] = False,
) -> dict[str, Any]:
    """Flow definitions, newest first: ``{href, offset, limit, items, total}``."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        rows, total = await service.list_flows(session, offset=offset, limit=limit, include_archived=archived)
    href = collection_href(request, runtime, offset=offset, limit=limit)
    return collection(
        href, offset=offset, limit=limit, items=[_out(request, runtime, row) for row in rows], total=total
    )


@router.post("", status_code=201, responses=error_responses(400, 401, 409))
async def create_flow_definition(request: Request, body: Document, token: Writer) -> Response:
    """Create a flow (status DRAFT). The friendly id is generated from the name when omitted."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> dict[str, Any]:
        flow = await service.create_flow(session, body, actor=_actor(token), clock=runtime.clock)
        return _out(request, runtime, flow)

    document = await in_transaction(runtime.sessions, work)
    return json_response(document, 201, headers={"Location": document["href"]})


@router.get("/{ref}", responses=error_responses(401, 404))
async def get_flow_definition(request: Request, ref: str, _: Reader) -> dict[str, Any]:
    """One flow by ref or friendly id."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        return _out(request, runtime, await service.get_flow(session, ref))


@router.put("/{ref}", responses=error_responses(400, 401, 404, 409))
async def update_flow_definition(request: Request, ref: str, body: Document, token: Writer) -> dict[str, Any]:
    """Replace a flow's document; ``status`` LIVE starts it, PAUSED pauses, COMPLETED completes (§1.2)."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> dict[str, Any]:
        flow = await service.update_flow(session, ref, body, actor=_actor(token), clock=runtime.clock)
        return _out(request, runtime, flow)

    return await in_transaction(runtime.sessions, work)


@router.get("/{ref}/performance", responses=error_responses(400, 401, 404))
async def flow_performance(
    request: Request,
    ref: str,
    _: Reader,
    start: Annotated[str | None, Query(alias="from", description="ISO 8601 start (inclusive)")] = None,
    end: Annotated[str | None, Query(alias="to", description="ISO 8601 end (exclusive)")] = None,
    unit: Annotated[Literal["SESSIONS", "GUESTS"] | None, Query(description="Override the goals' unit")] = None,
) -> dict[str, Any]:
    """Per-variant results of the primary and secondary goals: units, conversions, rates, uplift,
    confidence and CI, minimum sample size, verdict, Bayesian chance to beat control, SRM check."""
    runtime = runtime_of(request)
    window = [_when(value, name) for value, name in ((start, "from"), (end, "to"))]
    async with runtime.sessions() as session:
        flow = await service.get_flow(session, ref)
        return await results.performance(session, flow, start=window[0], end=window[1], unit=unit)


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    parsed = parse_iso(value)
    if parsed is None:
        raise FlowInvalid([f"{name}: must be an ISO 8601 date or date-time"])
    return parsed
