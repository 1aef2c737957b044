"""Read a gzipped NDJSON file line by line with bounded memory, whatever its size."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Generator
from pathlib import Path

MAX_LINE = 1024 * 1024  # a longer line is consumed in pieces and reported unparseable
GZIP_MAGIC = b"\x1f\x8b"


class UnreadableArchive(Exception):
    """The file is not (or stops being) a gzip stream."""


def is_gzip(path: Path) -> bool:
    """Whether the file starts with the gzip magic bytes."""
    with path.open("rb") as f:
        return f.read(2) == GZIP_MAGIC


def lines(path: Path, *, skip: int = 0) -> Generator[tuple[int, bytes | None]]:
    """Yield ``(line number, bytes)`` from line ``skip + 1`` on; ``None`` for an over-long line.

    Line numbers count every physical line, so a resumed read lands on the same numbers.
    """
    number = 0
    try:
        with gzip.open(path, "rb") as f:
            while True:
                raw = f.readline(MAX_LINE)
                if not raw:
                    return
                number += 1
                too_long = len(raw) >= MAX_LINE and not raw.endswith(b"\n")
                while too_long:
                    more = f.readline(MAX_LINE)
                    if not more or more.endswith(b"\n"):
                        break
                if number <= skip:
                    continue
                yield number, None if too_long else raw
    except (OSError, EOFError, zlib.error) as exc:
        raise UnreadableArchive(str(exc)) from exc
