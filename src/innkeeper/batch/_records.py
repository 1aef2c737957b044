"""Apply one chunk of batch lines (spec cdp.md §10.6–10.8): parse, then write in bulk.

The fast path validates every line, looks up everything the chunk's guest and order records
name with one query per kind (``GuestChunk`` / ``OrderChunk``), applies the records in file
order in memory and writes the new rows with multi-row INSERTs, all inside one savepoint.
New rows are plain objects (``guests.plain``), not mapped ones, written by one Core
executemany per table: instrumented construction and the ORM's bulk-insert bookkeeping
were most of an import's CPU time. Rows read from the database stay mapped.
Every rejection of a record happens before it changes anything, so no per-record savepoint is
needed. When the database refuses the chunk's writes, the savepoint is rolled back and the
chunk runs again record by record, each in its own savepoint, so only the failing record is
lost (``500 Internal server error``), exactly as if it had been alone.

The importer reads and parses the next chunk (``read_chunk``, no database access) while the
current one is applied (``apply_chunk``), so parsing overlaps the waits for the database.

Tracking and delete records change rows the caches do not follow: the pending writes go out
first, the record runs in its own savepoint, and the rest of the chunk gets fresh caches.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import msgspec
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.batch import _deletes, _tracking
from innkeeper.core.clock import Clock
from innkeeper.guests import batch_import as guests
from innkeeper.guests.batch_import import IdentityRules, RecordRejected, invalid
from innkeeper.orders import batch_import as orders

log = logging.getLogger(__name__)

MODES = frozenset({"insert", "create", "upsert", "merge", "delete", "gdpr_delete"})
SCHEMA_MODES: dict[str, frozenset[str]] = {
    "guest": frozenset({"upsert", "insert", "merge", "create", "delete", "gdpr_delete"}),
    "order": frozenset({"upsert", "insert", "delete"}),
    "tracking": frozenset({"insert"}),
}
RECORD_KEYS = frozenset({"ref", "schema", "mode", "value"})
PARSE_ERROR = ("400", "Failed to parse import line")

# A line is decoded by msgspec (~2x faster than ``json``), and by ``json`` when msgspec refuses it.
_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder()

# Lines parsed between two turns of the event loop while a chunk is read ahead (~1 ms of parsing).
PARSE_SLICE = 64

LogEntry = tuple[str, str, str]  # (ref, code, message) of the error log


@dataclass(frozen=True, slots=True)
class Context:
    """What applying records needs besides the session."""

    rules: IdentityRules
    client_key: str
    batch_ref: str
    log_info: bool
    clock: Clock


@dataclass(frozen=True, slots=True)
class Outcome:
    """One record's result: ``entry`` goes to the error log; ``ok`` counts it as succeeded."""

    line: int
    ok: bool
    entry: LogEntry | None = None


@dataclass(slots=True)
class _Record:
    line: int
    ref: str
    schema: str
    mode: str
    value: dict[str, Any]
    guest: guests.GuestInput | None = None
    order: orders.OrderInput | None = None

    @property
    def bulk(self) -> bool:
        """Whether the record goes through the chunk caches (else: alone, after a barrier)."""
        return self.schema in ("guest", "order") and self.mode not in ("delete", "gdpr_delete")


class _Caches:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.guests = guests.GuestChunk(session)
        self.orders = orders.OrderChunk(session)

    async def preload(self, records: list[_Record]) -> None:
        bulk = [r for r in records if r.bulk]
        await self.guests.preload([r.guest for r in bulk if r.guest is not None])
        await self.orders.preload([r.order.reference_id for r in bulk if r.order is not None])

    async def write(self) -> None:
        """Write the pending rows: guests, the session's changes to loaded rows, then the rest."""
        await self.guests.insert_guests()
        await self.session.flush()
        await self.guests.insert_rest()
        await self.orders.insert()


@dataclass(slots=True)
class ParsedChunk:
    """A chunk's lines, parsed and validated (no database access yet)."""

    last_line: int | None  # the number of its last line; None: the file had no more lines
    records: list[_Record]
    refused: list[Outcome]  # lines that are no valid record


async def read_chunk(reader: Iterator[tuple[int, bytes | None]], count: int) -> ParsedChunk:
    """Read up to ``count`` lines and parse them, letting other tasks run every ``PARSE_SLICE`` lines.

    The importer reads the next chunk this way while the current one waits for the database,
    so parsing costs no wall time then. Reading errors (``UnreadableArchive``) propagate.
    """
    parsed = ParsedChunk(None, [], [])
    records, refused = parsed.records, parsed.refused
    for number, raw in islice(reader, count):
        parsed.last_line = number
        if raw is not None and not raw.strip():
            pass  # a blank line is no record
        elif isinstance(outcome := _parse(number, raw), Outcome):
            refused.append(outcome)
        else:
            records.append(outcome)
        if number % PARSE_SLICE == 0:
            await asyncio.sleep(0)
    return parsed


async def apply_chunk(session: AsyncSession, parsed: ParsedChunk, *, context: Context) -> list[Outcome]:
    """Apply a parsed chunk; returns one outcome per record, in line order (blank lines are not records)."""
    records = parsed.records
    try:
        async with session.begin_nested():
            applied = await _apply_fast(session, records, context=context)
    except DBAPIError:
        log.warning("batch %s: a chunk write failed; applying it record by record", context.batch_ref)
        applied = [await _apply_alone(session, record, context=context) for record in records]
    if not parsed.refused:
        return applied
    return sorted([*parsed.refused, *applied], key=lambda outcome: outcome.line)


def _parse(number: int, raw: bytes | None) -> _Record | Outcome:
    """Parse and validate a line; no database access."""
    if raw is None:
        return Outcome(number, False, ("null", *PARSE_ERROR))
    try:
        record = _DECODER.decode(raw)
    except msgspec.MsgspecError:
        # msgspec refuses what ``json`` accepts (NaN, a BOM, lone surrogates, huge numbers): ask ``json``.
        try:
            record = json.loads(raw)
        except ValueError:
            return Outcome(number, False, ("null", *PARSE_ERROR))
    if not isinstance(record, dict):
        return Outcome(number, False, ("null", *PARSE_ERROR))
    ref = record.get("ref")
    record_ref = ref[:100] if isinstance(ref, str) and ref else "null"
    try:
        return _validate(number, record_ref, record)
    except RecordRejected as exc:
        return Outcome(number, False, (record_ref, exc.log_code, exc.message))


def _validate(number: int, record_ref: str, record: dict[str, Any]) -> _Record:
    for key in record:
        if key not in RECORD_KEYS:
            raise invalid(f"{str(key)[:50]}: undefined attribute")
    for key in ("ref", "schema", "mode", "value"):
        if record.get(key) is None:
            raise invalid(f"{key}: required")
    if not isinstance(record["ref"], str):
        raise invalid("ref: must be a string")
    schema, mode, value = record["schema"], record["mode"], record["value"]
    if schema not in SCHEMA_MODES:
        raise invalid("schema: unknown schema")
    if mode not in MODES or mode not in SCHEMA_MODES[schema]:
        raise RecordRejected("402", "Unsupported mode")
    if not isinstance(value, dict):
        raise invalid("value: must be an object")
    parsed = _Record(number, record_ref, schema, mode, value)
    if schema == "guest":
        parsed.guest = guests.parse_guest(value)
    elif schema == "order" and mode == "delete":
        parsed.order = orders.parse_order_reference(value)
    elif schema == "order":
        parsed.order = orders.parse_order(value, mode=mode)
        parsed.guest = guests.parse_guest(parsed.order.contact or {}, where="value.contact", extensions=False)
    return parsed


async def _apply_fast(session: AsyncSession, records: list[_Record], *, context: Context) -> list[Outcome]:
    caches = _Caches(session)
    outcomes: list[Outcome] = []
    with session.no_autoflush:
        await caches.preload(records)
        for index, record in enumerate(records):
            if not record.bulk:
                await caches.write()
                outcomes.append(await _apply_alone(session, record, context=context))
                caches = _Caches(session)
                await caches.preload(records[index + 1 :])
                continue
            try:
                await _apply_bulk(caches, record, context=context)
            except RecordRejected as exc:
                outcomes.append(Outcome(record.line, False, (record.ref, exc.log_code, exc.message)))
            else:
                outcomes.append(Outcome(record.line, True))
        await caches.write()
    return outcomes


async def _apply_alone(session: AsyncSession, record: _Record, *, context: Context) -> Outcome:
    """Apply one record in its own savepoint (the record-by-record path)."""
    info: LogEntry | None = None
    try:
        async with session.begin_nested():
            with session.no_autoflush:
                if record.bulk:
                    caches = _Caches(session)
                    await caches.preload([record])
                    await _apply_bulk(caches, record, context=context)
                    await caches.write()
                else:
                    info = await _apply_other(session, record, context=context)
    except RecordRejected as exc:
        return Outcome(record.line, False, (record.ref, exc.log_code, exc.message))
    except IntegrityError:
        log.warning("batch record %s: integrity error", record.ref)
        return Outcome(record.line, False, (record.ref, "500", "Internal server error"))
    return Outcome(record.line, True, info if context.log_info else None)


async def _apply_bulk(caches: _Caches, record: _Record, *, context: Context) -> None:
    """A guest or order upsert/insert/merge/create; rejects before changing anything."""
    assert record.guest is not None
    rules, clock = context.rules, context.clock
    if record.order is None:
        await guests.apply_guest(caches.guests, record.guest, mode=record.mode, rules=rules, clock=clock)  # type: ignore[arg-type]
        return
    target = await guests.match_guest(caches.guests, record.guest, rules=rules)
    await orders.check_owner(caches.orders, record.order, guest_ref=target.ref if target is not None else None)
    guest_ref = await guests.resolve_contact(caches.guests, record.guest, rules=rules, clock=clock, target=target)
    await orders.apply_order(caches.orders, record.order, mode=record.mode, guest_ref=guest_ref, clock=clock)  # type: ignore[arg-type]


async def _apply_other(session: AsyncSession, record: _Record, *, context: Context) -> LogEntry | None:
    """A tracking or delete record; returns an informational log entry, if any."""
    if record.schema == "tracking":
        await _tracking.apply(session, record.value, client_key=context.client_key, clock=context.clock)
        return None
    if record.schema == "order":
        assert record.order is not None
        await _deletes.delete_order(session, record.order.reference_id)
        return None
    assert record.guest is not None
    matches = await _deletes.delete_guest(
        session,
        record.guest,
        gdpr=record.mode == "gdpr_delete",
        rules=context.rules,
        actor=f"batch:{context.batch_ref}",
        clock=context.clock,
    )
    if matches > 1:
        return (record.ref, "200", f"{matches} matches found for this guest, 1st match deleted")
    return None
