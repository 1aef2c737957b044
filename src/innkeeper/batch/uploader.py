"""The Batch API client behind ``innkeeper batch upload``: pack, allocate, upload, wait.

Talks plain HTTP to any server with the Sitecore Batch API (spec cdp.md §10.1), ours included.
Input that would exceed the size limit compressed is split on line boundaries into several
gzip files, each below the limit, without holding a file in memory.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx

DEFAULT_MAX_SIZE = 52_428_800
FINAL_STATUSES = ("success", "error", "corrupted")
_GZIP_OVERHEAD = 18 + 16  # header + trailer + the final empty block
_SYNC_EVERY = 1024 * 1024  # uncompressed bytes between exact size checks


class UploadFailed(Exception):
    """The server refused a request, or a line cannot fit in any batch."""


@dataclass(slots=True)
class Part:
    """One gzip file to send as one batch."""

    path: Path
    size: int
    md5: bytes
    lines: int

    @property
    def checksum(self) -> str:
        return self.md5.hex()


@dataclass(slots=True)
class Outcome:
    """What happened to one batch."""

    ref: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _bound(n: int) -> int:
    """Worst-case deflate output for ``n`` input bytes (stored blocks), generously rounded."""
    return n + n // 1000 + 64


class _PartWriter:
    def __init__(self, directory: Path, index: int) -> None:
        self.path = directory / f"part-{index:04d}.json.gz"
        self.file: BinaryIO = self.path.open("wb")
        self.zip = zlib.compressobj(6, zlib.DEFLATED, 31)
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.exact = 0  # compressed bytes written, exact as of the last sync flush
        self.pending = 0  # uncompressed bytes since then
        self.lines = 0

    def _out(self, data: bytes) -> None:
        if data:
            self.file.write(data)
            self.md5.update(data)
            self.exact += len(data)

    def sync(self) -> None:
        self._out(self.zip.flush(zlib.Z_SYNC_FLUSH))
        self.pending = 0

    def fits(self, n: int, limit: int) -> bool:
        return self.exact + _bound(self.pending + n) + _GZIP_OVERHEAD <= limit

    def write(self, line: bytes) -> None:
        self._out(self.zip.compress(line))
        self.pending += len(line)
        self.lines += 1
        if self.pending >= _SYNC_EVERY:
            self.sync()

    def close(self) -> Part:
        self._out(self.zip.flush(zlib.Z_FINISH))
        self.file.close()
        return Part(self.path, self.exact, self.md5.digest(), self.lines)


def _read_lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gzipped else path.open("rb") as f:
        for line in f:
            yield line if line.endswith(b"\n") else line + b"\n"


def pack(path: Path, directory: Path, *, max_size: int) -> list[Part]:
    """Gzip ``path`` (NDJSON, plain or gzipped) into parts of at most ``max_size`` bytes each.

    A gzip file already within the limit is sent as it is.
    """
    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    size = path.stat().st_size
    if gzipped and size <= max_size:
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1024 * 1024), b""):
                digest.update(block)
        return [Part(path, size, digest.digest(), -1)]
    parts: list[Part] = []
    writer = _PartWriter(directory, 1)
    for number, line in enumerate(_read_lines(path), start=1):
        if not writer.fits(len(line), max_size):
            writer.sync()
        if not writer.fits(len(line), max_size):
            if writer.lines == 0:
                raise UploadFailed(f"line {number} alone does not fit in a batch of {max_size} bytes")
            parts.append(writer.close())
            writer = _PartWriter(directory, len(parts) + 1)
            if not writer.fits(len(line), max_size):
                raise UploadFailed(f"line {number} alone does not fit in a batch of {max_size} bytes")
        writer.write(line)
    if writer.lines or not parts:
        parts.append(writer.close())
    return parts


class BatchClient:
    """The Sitecore Batch API over HTTP (Basic auth: client key + API token)."""

    def __init__(self, url: str, client_key: str, api_token: str, *, timeout: float = 120.0) -> None:
        self.http = httpx.Client(base_url=url.rstrip("/"), auth=(client_key, api_token), timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def allocate(self, part: Part) -> tuple[str, str]:
        """Allocate a batch for the part; returns (batch ref, upload URL)."""
        ref = str(uuid.uuid4())
        response = self.http.put(f"/v2/batches/{ref}", json={"checksum": part.checksum, "size": part.size})
        _check(response, "allocate")
        return ref, str(response.json()["location"]["href"])

    def upload(self, part: Part, href: str) -> None:
        """PUT the file to its location (no Basic auth there: the URL is signed)."""
        headers = {
            "Content-Md5": base64.b64encode(part.md5).decode(),
            "x-amz-server-side-encryption": "AES256",
            "Content-Type": "application/gzip",
            "Content-Length": str(part.size),
        }
        with part.path.open("rb") as f:
            response = httpx.put(href, content=_chunks(f), headers=headers, timeout=self.http.timeout)
        _check(response, "upload")

    def status(self, ref: str) -> dict[str, Any]:
        response = self.http.get(f"/v2/batches/{ref}")
        _check(response, "status")
        body: dict[str, Any] = response.json()
        return body

    def wait(self, ref: str, *, poll: float = 1.0, timeout: float = 3600.0) -> Outcome:
        """Poll until the batch is final; fetch the first error lines when it failed."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(ref)["status"]
            if status["code"] in FINAL_STATUSES:
                break
            if time.monotonic() > deadline:
                raise UploadFailed(f"batch {ref} still {status['code']} after {timeout:.0f}s")
            time.sleep(poll)
        counts = {k: v for k, v in status.items() if k.startswith("records")}
        outcome = Outcome(ref, status["code"], counts)
        if status.get("log"):
            response = httpx.get(status["log"], timeout=self.http.timeout)
            _check(response, "error log")
            lines = gzip.decompress(response.content).decode().splitlines()
            outcome.errors = [json.loads(line) for line in lines[:10]]
        return outcome


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    yield from iter(lambda: f.read(256 * 1024), b"")


def _check(response: httpx.Response, what: str) -> None:
    if response.status_code >= 300:
        try:
            detail = response.json()
            text = detail.get("developerMessage") or detail.get("message") or response.text
        except ValueError:
            text = response.text
        raise UploadFailed(f"{what}: HTTP {response.status_code}: {str(text)[:300]}")


def upload_file(
    path: Path,
    client: BatchClient,
    *,
    max_size: int,
    wait: bool,
    echo: Callable[[str], None],
) -> list[Outcome]:
    """Pack, allocate and upload every part of ``path``; with ``wait``, poll each to its end."""
    with tempfile.TemporaryDirectory(prefix="innkeeper-batch-") as tmp:
        parts = pack(path, Path(tmp), max_size=max_size)
        echo(f"{path.name}: {len(parts)} batch{'es' if len(parts) != 1 else ''}")
        refs: list[str] = []
        for index, part in enumerate(parts, start=1):
            ref, href = client.allocate(part)
            echo(f"[{index}/{len(parts)}] {ref}: uploading {part.size:,} bytes (md5 {part.checksum})")
            client.upload(part, href)
            refs.append(ref)
    outcomes = []
    for index, ref in enumerate(refs, start=1):
        if not wait:
            outcomes.append(Outcome(ref, "uploaded"))
            continue
        outcome = client.wait(ref)
        counts = ", ".join(f"{k[7:].lower()} {v}" for k, v in outcome.counts.items())
        echo(f"[{index}/{len(refs)}] {ref}: {outcome.status}" + (f" ({counts})" if counts else ""))
        for error in outcome.errors:
            echo(f"    {json.dumps(error, separators=(',', ':'))}")
        outcomes.append(outcome)
    return outcomes
