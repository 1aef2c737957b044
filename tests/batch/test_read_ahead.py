"""The importer reads and parses the next chunk while the current one is applied: the parsing lets other tasks
run, outcomes keep file order, and an archive that breaks later keeps the chunks before the break."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import gzip
import json
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.batch._records import PARSE_SLICE, Outcome, read_chunk
from innkeeper.core.config import Settings
from innkeeper.core.runtime import Runtime
from innkeeper.guests.models import Guest
from innkeeper.worker import run_jobs_once
from tests.batch.test_api import count, status, submit
from tests.batch.test_records import Auth
from tests.factories.batch import guest_record, ndjson


def _lines(values: list[bytes | None]) -> Any:
    return iter(enumerate(values, start=1))


async def test_reading_a_chunk_lets_other_tasks_run() -> None:
    line = json.dumps(guest_record(1)).encode() + b"\n"
    turns = 0
    done = False

    async def other() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    other_task = asyncio.create_task(other())
    await asyncio.sleep(0)
    parsed = await read_chunk(_lines([line] * (10 * PARSE_SLICE)), 10 * PARSE_SLICE)
    done = True
    await other_task
    assert len(parsed.records) == 10 * PARSE_SLICE
    assert turns >= 10  # once every PARSE_SLICE lines


async def test_read_chunk_stops_at_the_count_and_sorts_lines_into_records_and_refusals() -> None:
    good = json.dumps(guest_record(1)).encode() + b"\n"
    lines = _lines([good, b"\n", b"{broken\n", None, good, good, good])
    first = await read_chunk(lines, 5)
    assert first.last_line == 5  # the blank line counts as a line, not a record
    assert [r.line for r in first.records] == [1, 5]
    assert [(o.line, o.ok, o.entry and o.entry[1:]) for o in first.refused] == [
        (3, False, ("400", "Failed to parse import line")),
        (4, False, ("400", "Failed to parse import line")),  # an over-long line
    ]
    assert all(isinstance(o, Outcome) for o in first.refused)
    second = await read_chunk(lines, 5)
    assert (second.last_line, [r.line for r in second.records]) == (7, [6, 7])
    third = await read_chunk(lines, 5)
    assert (third.last_line, third.records, third.refused) == (None, [], [])


async def test_an_archive_broken_in_a_later_chunk_keeps_the_chunks_before(
    client: httpx.AsyncClient, admin_auth: Auth, runtime: Runtime, db: AsyncSession, settings: Settings
) -> None:
    assert settings.batch_chunk_lines == 3
    whole = gzip.compress(ndjson([guest_record(n, lastName=f"{n * 7919:x}" * 8) for n in range(1, 201)]), mtime=0)
    body = whole[: len(whole) // 2]  # cut mid-stream: the first lines still decompress
    ref = await submit(client, admin_auth, body)
    thresholds = gc.get_threshold()
    await run_jobs_once(runtime)
    assert gc.get_threshold() == thresholds
    done = (await status(client, admin_auth, ref))["status"]
    assert done["code"] == "error"
    imported = await count(db, Guest)
    assert 3 <= imported < 200 and imported % 3 == 0  # whole chunks only
    assert (done["recordsTotal"], done["recordsSucceeded"], done["recordsFailed"]) == (imported, imported, 0)


def test_chunks_default_to_2000_lines_on_sqlite_and_10000_on_postgresql(settings: Settings) -> None:
    from innkeeper.batch._importer import POSTGRES_CHUNK_LINES, SQLITE_CHUNK_LINES, ImportOptions

    unset = dataclasses.replace(settings, batch_chunk_lines=0)
    on_sqlite = dataclasses.replace(unset, database_url="sqlite:///./x.db")
    on_postgres = dataclasses.replace(unset, database_url="postgresql://u@h:5432/db")
    assert (SQLITE_CHUNK_LINES, POSTGRES_CHUNK_LINES) == (2_000, 10_000)
    assert ImportOptions.from_settings(on_sqlite).chunk_lines == SQLITE_CHUNK_LINES
    assert ImportOptions.from_settings(on_postgres).chunk_lines == POSTGRES_CHUNK_LINES
    assert ImportOptions.from_settings(dataclasses.replace(on_postgres, batch_chunk_lines=7)).chunk_lines == 7
    assert Settings.from_env({}).batch_chunk_lines == 0
    assert Settings.from_env({"INNKEEPER_BATCH_CHUNK_LINES": "500"}).batch_chunk_lines == 500
