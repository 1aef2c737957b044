"""Batch API routes (spec cdp.md §10): allocate, upload, status, inspect, error log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.batch import service
from innkeeper.batch.errors import InvalidBatch
from innkeeper.batch.schemas import AllocateRequest, BatchList, BatchListItem, BatchOut, BatchStatus, Location
from innkeeper.core.db import in_transaction
from innkeeper.http.auth import require, runtime_of
from innkeeper.http.pagination import DEFAULT_LIMIT, MAX_LIMIT, base_url
from innkeeper.http.responses import json_response
from innkeeper.http.schemas import error_responses
from innkeeper.tenant.models import ApiToken

router = APIRouter(tags=["Batch"])
# Upload bodies are gzip files of up to 50 MB, not REST JSON: RestLimits skips this prefix, so it
# holds only the upload route (allocation under /v2/batches/ keeps the 1 MB JSON limits).
UPLOAD_PREFIX = "/v2/batch-files/"
ReadToken = Annotated[ApiToken, Depends(require("ro"))]
WriteToken = Annotated[ApiToken, Depends(require("rw"))]


def _responses(extra: dict[int | str, dict[str, Any]], *codes: int) -> dict[int | str, dict[str, Any]]:
    return {**extra, **error_responses(*codes)}


def _out(view: service.BatchView) -> BatchOut:
    counts = view.counts
    return BatchOut(
        href=view.href,
        ref=view.ref,
        checksum=view.checksum,
        size=view.size,
        location=Location(href=view.location_href, expiry=view.location_expiry),
        status=BatchStatus(
            code=view.status,
            log=view.log,
            records_total=counts[0] if counts else None,
            records_succeeded=counts[1] if counts else None,
            records_failed=counts[2] if counts else None,
        ),
        created_at=view.created_at,
        modified_at=view.modified_at,
    )


def _json(model: BatchOut | BatchList, status: int = 200) -> Response:
    return json_response(model.model_dump(mode="json", by_alias=True, exclude_none=True), status)


@router.get(
    "/v2/batches/inspect",
    response_model=BatchList,
    response_model_exclude_none=True,
    responses=error_responses(400, 403),
)
async def list_batches(
    request: Request,
    _token: ReadToken,
    status: str | None = None,
    created_before: Annotated[str | None, Query(alias="createdBefore")] = None,
    created_after: Annotated[str | None, Query(alias="createdAfter")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    """Batches of the last 30 days, newest first; ``status`` takes comma-separated codes."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> tuple[int, list[service.BatchView]]:
        return await service.list_batches(
            session,
            status=status,
            created_before=created_before,
            created_after=created_after,
            offset=offset,
            limit=limit,
            base_url=base_url(request, runtime),
            clock=runtime.clock,
        )

    total, views = await in_transaction(runtime.sessions, work)
    items = [
        BatchListItem(
            href=v.href,
            ref=v.ref,
            status=v.status,
            log=v.log,
            created_at=v.created_at,
            modified_at=v.modified_at,
        )
        for v in views
    ]
    return _json(BatchList(total_count=total, offset=offset, limit=limit, items=items))


@router.get(
    "/v2/batches/inspect/{batch_ref}",
    response_model=BatchOut,
    response_model_exclude_none=True,
    responses=error_responses(403, 404),
)
async def inspect_batch(request: Request, batch_ref: str, _token: ReadToken) -> Response:
    """A batch's status, including the queued ``file_uploaded`` state."""
    return await _get(request, batch_ref, inspect=True)


@router.put(
    "/v2/batches/{batch_ref}",
    status_code=201,
    response_model=BatchOut,
    response_model_exclude_none=True,
    responses=_responses(
        {200: {"model": BatchOut, "description": "Allocation repeated: a fresh location"}}, 400, 403, 409, 413, 415
    ),
)
async def allocate(request: Request, batch_ref: str, body: AllocateRequest, _token: WriteToken) -> Response:
    """Allocate an upload location (a signed URL valid for one hour) for a gzipped NDJSON file."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> tuple[service.BatchView, bool]:
        return await service.allocate(
            session,
            batch_ref,
            checksum=body.checksum,
            size=body.size,
            max_size=runtime.settings.batch_max_size,
            base_url=base_url(request, runtime),
            clock=runtime.clock,
        )

    view, created = await in_transaction(runtime.sessions, work)
    return _json(_out(view), 201 if created else 200)


@router.get(
    "/v2/batches/{batch_ref}",
    response_model=BatchOut,
    response_model_exclude_none=True,
    responses=error_responses(403, 404),
)
async def get_batch(request: Request, batch_ref: str, _token: ReadToken) -> Response:
    """A batch's status (``file_uploaded`` reads as ``processing`` here)."""
    return await _get(request, batch_ref, inspect=False)


async def _get(request: Request, batch_ref: str, *, inspect: bool) -> Response:
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> service.BatchView:
        return await service.get_batch(
            session, batch_ref, inspect=inspect, base_url=base_url(request, runtime), clock=runtime.clock
        )

    return _json(_out(await in_transaction(runtime.sessions, work)))


@router.put(
    UPLOAD_PREFIX + "{batch_ref}",
    status_code=200,
    response_class=Response,
    responses=_responses({200: {"description": "File received; the import is queued"}}, 400, 403, 409, 413),
)
async def upload(
    request: Request, batch_ref: str, expires: str | None = None, signature: str | None = None
) -> Response:
    """Upload the batch file to its signed location (no Basic auth: the signature authorises it).

    Checked in order: signature and expiry (403), size limit (413, without reading past it),
    body length against the declared size (400, corrupted), MD5 against the checksum and
    ``Content-Md5`` (409, corrupted).
    """
    runtime = runtime_of(request)

    async def authorize(session: AsyncSession) -> tuple[int, str]:
        return await service.authorize_upload(
            session, batch_ref, expires=expires, signature=signature, clock=runtime.clock
        )

    await in_transaction(runtime.sessions, authorize)
    encryption = request.headers.get("x-amz-server-side-encryption")
    if encryption is not None and encryption != "AES256":
        raise InvalidBatch(
            "Unsupported server-side encryption.", developer_message="x-amz-server-side-encryption: must be AES256"
        )
    declared = request.headers.get("content-length")
    received = await service.receive_file(
        request.stream(),
        ref=batch_ref.lower(),
        data_dir=runtime.settings.data_dir,
        limit=runtime.settings.batch_max_size,
        declared_length=int(declared) if declared and declared.isdigit() else None,
    )
    options = service.ImportOptions.from_settings(runtime.settings)

    async def complete(session: AsyncSession) -> service.InnkeeperError | None:
        return await service.complete_upload(
            session,
            batch_ref,
            received,
            content_md5=request.headers.get("content-md5"),
            options=options,
            clock=runtime.clock,
        )

    try:
        error = await in_transaction(runtime.sessions, complete)
    except BaseException:
        service.discard(received)
        raise
    if error is not None:
        raise error
    return Response(status_code=200)


@router.get(
    "/v2/batches/{batch_ref}/log",
    response_class=StreamingResponse,
    responses=_responses({200: {"content": {"application/gzip": {}}, "description": "Gzipped NDJSON error log"}}, 403),
)
async def error_log(
    request: Request, batch_ref: str, expires: str | None = None, signature: str | None = None
) -> Response:
    """The error log: gzipped NDJSON ``{ref, code, message}``, one line per failed record."""
    runtime = runtime_of(request)

    async def authorize(session: AsyncSession) -> str:
        return await service.authorize_log(
            session, batch_ref, expires=expires, signature=signature, clock=runtime.clock
        )

    ref = await in_transaction(runtime.sessions, authorize)
    return StreamingResponse(service.error_log(runtime.sessions, ref), media_type="application/gzip")
