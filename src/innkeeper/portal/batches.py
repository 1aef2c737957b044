"""Batch uploads: the last 30 days of batches, one batch's status, and its error log (cdp.md §10, §12.1)."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from innkeeper.batch import service as batches
from innkeeper.batch.errors import BatchNotFound
from innkeeper.http.pagination import base_url
from innkeeper.portal._web import Portal, PortalInterrupt, need, page, protect, router

PAGE_SIZE = 50
FINAL = frozenset(("success", "error", "corrupted"))


def human_size(size: int) -> str:
    """1 536 → "1.5 KB"."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def when(stamp: str) -> str:
    """An ISO timestamp of the Batch API as "2026-01-15 09:00:00" (UTC)."""
    return stamp[:19].replace("T", " ") if stamp else ""


def _missing(request: Request, portal: Portal, message: str) -> Response:
    return page(request, "batches_not_found.html", 404, portal=portal, message=message)


async def _batch(request: Request, portal: Portal, ref: str) -> batches.BatchView:
    """The batch with this reference; without one, the request ends with the 404 page."""
    runtime = portal.runtime
    async with runtime.sessions() as session:
        try:
            return await batches.get_batch(
                session, ref, inspect=True, base_url=base_url(request, runtime), clock=runtime.clock
            )
        except BatchNotFound:
            message = "No batch with this reference (or it was deleted)."
            raise PortalInterrupt(_missing(request, portal, message)) from None


@router.get("/batches")
async def batch_list(
    request: Request,
    portal: Annotated[Portal, Depends(need("batches.read"))],
    status: Annotated[str, Query(max_length=20)] = "",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Batches created in the last 30 days, newest first, optionally of one status."""
    runtime = portal.runtime
    chosen = status if status in batches.STATUSES else ""
    async with runtime.sessions() as session:
        total, rows = await batches.list_batches(
            session,
            status=chosen or None,
            created_before=None,
            created_after=None,
            offset=offset,
            limit=PAGE_SIZE,
            base_url=base_url(request, runtime),
            clock=runtime.clock,
        )
    return page(
        request,
        "batches.html",
        portal=portal,
        batches=rows,
        total=total,
        offset=offset,
        page_size=PAGE_SIZE,
        chosen=chosen,
        statuses=batches.STATUSES,
        final=FINAL,
        size=human_size,
        when=when,
    )


@router.get("/batches/{ref}")
async def batch_detail(
    request: Request, ref: str, portal: Annotated[Portal, Depends(need("batches.read"))]
) -> Response:
    """One batch: status, record counts, file size and checksum, and the error log when there is one."""
    batch = await _batch(request, portal, ref)
    return page(request, "batches_detail.html", portal=portal, batch=batch, final=FINAL, size=human_size, when=when)


async def _plain(gzipped: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Unzip the Batch API's gzipped error log on the fly (memory stays bounded)."""
    inflater = zlib.decompressobj(31)
    async for chunk in gzipped:
        out = inflater.decompress(chunk)
        if out:
            yield out
    rest = inflater.flush()
    if rest:
        yield rest


@router.get("/batches/{ref}/log")
async def batch_log(request: Request, ref: str, portal: Annotated[Portal, Depends(need("batches.read"))]) -> Response:
    """Download the error log: one NDJSON line ``{ref, code, message}`` per failed record, as plain text."""
    batch = await _batch(request, portal, ref)
    if batch.log is None:
        return _missing(request, portal, "This batch has no error log: no record failed.")
    response = StreamingResponse(
        _plain(batches.error_log(portal.runtime.sessions, batch.ref)),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="batch-{batch.ref}-errors.ndjson"'},
    )
    protect(response)
    return response
