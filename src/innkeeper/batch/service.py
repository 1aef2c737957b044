"""Batch API (spec cdp.md §10): allocate, receive the file, report status, serve the error log.

The import itself runs in the worker (``_importer.py``, re-exported here as ``import_batch``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import secrets
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from innkeeper.batch import _signing
from innkeeper.batch._importer import IMPORT_JOB, ImportOptions, import_batch
from innkeeper.batch.errors import (
    BatchFileTooLarge,
    BatchNotFound,
    BatchRefTaken,
    ChecksumMismatch,
    InvalidBatch,
    SizeMismatch,
    UploadForbidden,
)
from innkeeper.batch.models import Batch
from innkeeper.batch.repository import BatchRepository
from innkeeper.core import jobs
from innkeeper.core.clock import Clock, iso
from innkeeper.core.errors import InnkeeperError
from innkeeper.core.ids import is_ref
from innkeeper.core.timeparse import parse_iso

__all__ = ["IMPORT_JOB", "ImportOptions", "InnkeeperError", "import_batch"]

LOCATION_TTL = timedelta(hours=1)
LOG_TTL = timedelta(hours=1)
LIST_WINDOW = timedelta(days=30)
STATUSES = ("uploading", "file_uploaded", "processing", "success", "error", "corrupted")
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")
_FORGED = "The upload URL is invalid or has expired."


@dataclass(frozen=True, slots=True)
class BatchView:
    """What the Batch API reports about one batch (hrefs already absolute)."""

    href: str
    ref: str
    checksum: str
    size: int
    location_href: str
    location_expiry: str
    status: str
    log: str | None
    counts: tuple[int, int, int] | None
    created_at: str
    modified_at: str


@dataclass(frozen=True, slots=True)
class Received:
    """An upload body stored in a temporary file, with its length and MD5."""

    path: Path
    size: int
    md5: bytes


def _view(batch: Batch, *, base_url: str, inspect: bool, now: datetime) -> BatchView:
    status = batch.status
    if status == "file_uploaded" and not inspect:
        status = "processing"  # only the inspect endpoints show file_uploaded (spec §10.4)
    expires = int(batch.location_expires_at.timestamp())
    upload = _signing.signature(batch.secret, batch.ref, "upload", expires)
    counts = None
    if batch.status in ("processing", "success", "error"):
        counts = (batch.records_total, batch.records_succeeded, batch.records_failed)
    return BatchView(
        href=f"{base_url}/v2/batches/{'inspect/' if inspect else ''}{batch.ref}",
        ref=batch.ref,
        checksum=batch.checksum,
        size=batch.size,
        location_href=f"{base_url}/v2/batch-files/{batch.ref}?expires={expires}&signature={upload}",
        location_expiry=iso(batch.location_expires_at) or "",
        status=status,
        log=log_url(batch, base_url=base_url, now=now),
        counts=counts,
        created_at=iso(batch.created_at) or "",
        modified_at=iso(batch.modified_at) or "",
    )


def log_url(batch: Batch, *, base_url: str, now: datetime) -> str | None:
    """A signed error-log URL, valid for an hour, when the batch has an error log."""
    if batch.status != "error" or batch.records_failed == 0:
        return None
    expires = int((now + LOG_TTL).timestamp())
    signature = _signing.signature(batch.secret, batch.ref, "log", expires)
    return f"{base_url}/v2/batches/{batch.ref}/log?expires={expires}&signature={signature}"


def _check_ref(ref: str) -> str:
    if not is_ref(ref):
        raise InvalidBatch("The batch ref is invalid.", developer_message="batchRef: must be a UUID")
    return ref.lower()


async def allocate(
    session: AsyncSession, ref: str, *, checksum: str, size: int, max_size: int, base_url: str, clock: Clock
) -> tuple[BatchView, bool]:
    """Allocate an upload location for a batch; returns the batch and whether it was created.

    Repeating an allocation of a batch still ``uploading`` with the same checksum and size
    refreshes its location; any other reuse of the ref is a conflict.
    """
    ref = _check_ref(ref)
    if not _HEX32.match(checksum):
        raise InvalidBatch("The checksum is invalid.", developer_message="checksum: must be 32 hex characters (MD5)")
    if not 1 <= size <= max_size:
        raise InvalidBatch(
            "The batch file is too large." if size > max_size else "The size is invalid.",
            developer_message=f"size: must be an integer from 1 to {max_size}",
        )
    checksum = checksum.lower()
    now = clock.now()
    repo = BatchRepository(session)
    batch = await repo.get(ref, for_update=True)
    created = batch is None
    if batch is None:
        batch = Batch(
            ref=ref,
            checksum=checksum,
            size=size,
            status="uploading",
            secret=secrets.token_hex(32),
            location_expires_at=now + LOCATION_TTL,
            lines_done=0,
            records_total=0,
            records_succeeded=0,
            records_failed=0,
            created_at=now,
            modified_at=now,
        )
        repo.add(batch)
    elif batch.status != "uploading" or batch.checksum != checksum or batch.size != size:
        raise BatchRefTaken(
            "The batch ref is already in use.",
            developer_message=f"batch {ref} already exists with another checksum or size, or was uploaded",
        )
    else:
        batch.location_expires_at = now + LOCATION_TTL
        batch.modified_at = now
    await session.flush()
    return _view(batch, base_url=base_url, inspect=False, now=now), created


async def get_batch(session: AsyncSession, ref: str, *, inspect: bool, base_url: str, clock: Clock) -> BatchView:
    """A batch's status (``inspect`` shows ``file_uploaded``; the plain endpoint, ``processing``)."""
    batch = await BatchRepository(session).get(ref.lower()) if is_ref(ref) else None
    if batch is None:
        raise BatchNotFound("The specified resource does not exist.", developer_message=f"Batch {ref} was not found")
    return _view(batch, base_url=base_url, inspect=inspect, now=clock.now())


async def list_batches(
    session: AsyncSession,
    *,
    status: str | None,
    created_before: str | None,
    created_after: str | None,
    offset: int,
    limit: int,
    base_url: str,
    clock: Clock,
) -> tuple[int, list[BatchView]]:
    """Batches of the last 30 days, newest first, filtered by status codes and creation time."""
    statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
    for code in statuses or []:
        if code not in STATUSES:
            raise InvalidBatch("The status filter is invalid.", developer_message=f"status: unknown code {code[:30]!r}")
    now = clock.now()
    after = now - LIST_WINDOW
    if created_after is not None:
        parsed = parse_iso(created_after)
        if parsed is None:
            raise InvalidBatch(
                "createdAfter is invalid.", developer_message="createdAfter: must be an ISO 8601 date-time"
            )
        after = max(after, parsed)
    before = None
    if created_before is not None:
        before = parse_iso(created_before)
        if before is None:
            raise InvalidBatch(
                "createdBefore is invalid.", developer_message="createdBefore: must be an ISO 8601 date-time"
            )
    total, rows = await BatchRepository(session).page(
        statuses=statuses, created_after=after, created_before=before, offset=offset, limit=limit
    )
    return total, [_view(row, base_url=base_url, inspect=True, now=now) for row in rows]


async def authorize_upload(
    session: AsyncSession, ref: str, *, expires: str | None, signature: str | None, clock: Clock
) -> tuple[int, str]:
    """Check a signed upload URL; returns the batch's declared (size, checksum).

    A forged or expired URL is 403; a batch already uploaded (and not corrupted) is 409.
    """
    batch = await _signed(session, ref, "upload", expires, signature, clock)
    if batch.status not in ("uploading", "corrupted"):
        raise BatchRefTaken("The batch was already uploaded.", developer_message=f"batch {batch.ref} is {batch.status}")
    return batch.size, batch.checksum


async def _signed(
    session: AsyncSession, ref: str, purpose: _signing.Purpose, expires: str | None, signature: str | None, clock: Clock
) -> Batch:
    batch = await BatchRepository(session).get(ref.lower(), for_update=True) if is_ref(ref) else None
    if batch is None or expires is None or signature is None or not expires.isdigit() or len(expires) > 12:
        raise UploadForbidden(_FORGED, developer_message="the URL signature is missing or invalid")
    if not _signing.valid(batch.secret, batch.ref, purpose, int(expires), signature):
        raise UploadForbidden(_FORGED, developer_message="the URL signature is invalid")
    if purpose == "upload" and int(expires) != int(batch.location_expires_at.timestamp()):
        raise UploadForbidden(_FORGED, developer_message="the URL was replaced by a newer allocation")
    if clock.now().timestamp() > int(expires):
        raise UploadForbidden(_FORGED, developer_message="the URL has expired")
    return batch


def upload_dir(data_dir: str) -> Path:
    """The directory uploaded batch files live in (created when missing)."""
    path = Path(data_dir).resolve() / "batches"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def receive_file(
    chunks: AsyncIterator[bytes], *, ref: str, data_dir: str, limit: int, declared_length: int | None
) -> Received:
    """Stream an upload body to a temporary file while hashing it, stopping at ``limit`` bytes.

    Nothing larger than the limit is ever held, in memory or on disk (413).
    """
    if declared_length is not None and declared_length > limit:
        raise BatchFileTooLarge("The batch file is too large.", developer_message=f"the limit is {limit} bytes")
    path = upload_dir(data_dir) / f".{ref}.{secrets.token_hex(8)}.part"
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with path.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise BatchFileTooLarge(
                        "The batch file is too large.", developer_message=f"the limit is {limit} bytes"
                    )
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Received(path, size, digest.digest())


def discard(received: Received) -> None:
    """Delete a received file that was not accepted."""
    received.path.unlink(missing_ok=True)


async def complete_upload(
    session: AsyncSession,
    ref: str,
    received: Received,
    *,
    content_md5: str | None,
    options: ImportOptions,
    clock: Clock,
) -> InnkeeperError | None:
    """Check the received file against the allocation (size, then MD5) and queue its import.

    Returns the error to answer with: the batch is then ``corrupted``, which must commit
    even though the request fails, and the file is discarded (nothing is imported).
    """
    now = clock.now()
    batch = await BatchRepository(session).get(ref.lower(), for_update=True)
    if batch is None or batch.status not in ("uploading", "corrupted"):
        discard(received)
        return BatchRefTaken("The batch was already uploaded.")
    error: InnkeeperError | None = None
    if received.size != batch.size:
        error = SizeMismatch(
            "The size of the upload does not match the declared size.",
            developer_message=f"size: declared {batch.size} bytes, received {received.size}",
        )
    elif received.md5.hex() != batch.checksum or (content_md5 is not None and not _md5_matches(content_md5, received)):
        error = ChecksumMismatch(
            "The checksum of the upload does not match.",
            developer_message="Content-Md5 / checksum: the MD5 of the body differs",
        )
    batch.modified_at = now
    if error is not None:
        batch.status = "corrupted"
        discard(received)
        return error
    final = upload_dir(options.data_dir) / f"{batch.ref}.gz"
    os.replace(received.path, final)
    batch.file_name = final.name
    batch.status = "file_uploaded"
    await jobs.enqueue(session, IMPORT_JOB, options.payload(batch.ref), now=now)
    await session.flush()
    return None


def _md5_matches(header: str, received: Received) -> bool:
    with contextlib.suppress(binascii.Error, ValueError):
        return base64.b64decode(header.strip(), validate=True) == received.md5
    return False


async def authorize_log(
    session: AsyncSession, ref: str, *, expires: str | None, signature: str | None, clock: Clock
) -> str:
    """Check a signed error-log URL; returns the batch ref."""
    batch = await _signed(session, ref, "log", expires, signature, clock)
    return batch.ref


async def error_log(sessions: async_sessionmaker[AsyncSession], ref: str, *, page: int = 1000) -> AsyncIterator[bytes]:
    """The error log as gzip bytes: NDJSON ``{ref, code, message}``, one line per failed record.

    Pages through the error lines in short read transactions (a download may be slow), so
    memory stays bounded whatever the log's size.
    """
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    last = 0
    while True:
        async with sessions() as session:
            rows = await BatchRepository(session).errors_after(ref, last, page)
            text = "".join(
                json.dumps({"ref": r.record_ref, "code": r.code, "message": r.message}, separators=(",", ":")) + "\n"
                for r in rows
            )
            last = rows[-1].line if rows else last
            await session.rollback()
        if not rows:
            break
        out = compressor.compress(text.encode())
        if out:
            yield out
    yield compressor.flush()
