"""Batch guest records (spec cdp.md §10.7–10.8): validate a ``guest`` value, match, apply.

Every check runs before the first write, so a rejected record changes nothing. The batch
domain calls these functions once per record, inside its chunk transaction.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from json.encoder import JSONEncoder, c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import JSON, DateTime, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from innkeeper.core.clock import Clock
from innkeeper.core.db import UTCDateTime
from innkeeper.core.errors import InnkeeperError
from innkeeper.core.ids import is_ref, new_ref
from innkeeper.core.timeparse import parse_iso
from innkeeper.guests import service
from innkeeper.guests.models import Browser, Guest, GuestExtension, GuestIdentifier
from innkeeper.guests.repository import GuestBatchRepository as GuestRepository

GuestMode = Literal["upsert", "insert", "merge", "create"]
GUEST_TYPES = frozenset({"visitor", "customer", "traveller"})
EXTENSION_NAMES = frozenset({"ext", "ext1", "ext2", "ext3", "ext4", "ext5"})
EXTENSION_MAX_KEYS = 100
_KEY = re.compile(r"^[A-Za-z0-9]+$")

# wire name -> (column, max length); plain optional strings
_STRINGS: dict[str, tuple[str, int]] = {
    "title": ("title", 50),
    "firstName": ("first_name", 200),
    "lastName": ("last_name", 200),
    "gender": ("gender", 20),
    "language": ("language", 8),
    "nationality": ("nationality", 100),
    "city": ("city", 200),
    "state": ("state", 200),
    "postCode": ("post_code", 40),
    "passportNumber": ("passport_number", 100),
}
_DATES = {"dateOfBirth": "date_of_birth", "passportExpiry": "passport_expiry"}
_TIMES = {"firstSeen": "first_seen", "lastSeen": "last_seen"}
_LISTS = {"emails": "emails", "phoneNumbers": "phone_numbers", "street": "street"}
_OTHER = {"ref", "guestType", "email", "country", "identifiers", "extensions"}
GUEST_ATTRIBUTES = frozenset({*_STRINGS, *_DATES, *_TIMES, *_LISTS, *_OTHER})
# Columns an ``insert`` clears when the record omits them.
_CLEARABLE = (*(c for c, _ in _STRINGS.values()), *_DATES.values(), "email", "country")


class RecordRejected(InnkeeperError):
    """A batch record that cannot be applied; ``log_code``/``message`` go to the error log."""

    code = "batch_record_rejected"

    def __init__(self, log_code: str, message: str) -> None:
        super().__init__(message)
        self.log_code = log_code


def invalid(detail: str) -> RecordRejected:
    """``400 Validation error: <detail>`` (spec §10.6)."""
    return RecordRejected("400", f"Validation error: {detail}")


NOT_IDENTIFIED = "Not enough identifying information"
IDENTITY_EXISTS = "Identity already exists"


@dataclass(frozen=True, slots=True)
class IdentifierInput:
    """One ``{provider, id, expiryDate}`` of a record."""

    provider: str
    id: str
    expiry_date: str | None = None


@dataclass(slots=True)
class GuestInput:
    """A validated guest value: the columns it sets and its identity data."""

    ref: str | None = None
    guest_type: str | None = None
    columns: dict[str, Any] = field(default_factory=dict)
    email: str | None = None
    identifiers: list[IdentifierInput] = field(default_factory=list)
    extensions: dict[str, dict[str, str | int | float | bool]] | None = None


@dataclass(frozen=True, slots=True)
class IdentityRules:
    """The tenant's identity rules as matching needs them (None: every provider counts)."""

    providers: frozenset[str] | None
    email_fallback: bool


def parse_guest(value: dict[str, Any], *, where: str = "value", extensions: bool = True) -> GuestInput:
    """Validate a guest (or order contact) value; raise RecordRejected naming the field."""
    result = GuestInput()
    for key, item in value.items():
        if key not in GUEST_ATTRIBUTES or (key == "extensions" and not extensions):
            raise invalid(f"{where}.{key}: undefined attribute")
        if item is None:
            continue
        string = _STRINGS.get(key)
        if string is not None and type(item) is str and len(item) <= string[1] and "\x00" not in item:
            result.columns[string[0]] = item  # what ``_string`` accepts, without making the path first
            continue
        path = f"{where}.{key}"
        if key == "ref":
            result.ref = _string(item, path, 36).lower()
        elif key == "guestType":
            text = _string(item, path, 16)
            if text not in GUEST_TYPES:
                raise invalid(f"{path}: must be one of visitor, customer, traveller")
            result.guest_type = text
        elif key == "email":
            result.email = _email(item, path)
            result.columns["email"] = result.email
        elif key == "country":
            text = _string(item, path, 2)
            if len(text) != 2 or not text.isalpha():
                raise invalid(f"{path}: must be an ISO 3166-1 alpha-2 code")
            result.columns["country"] = text.upper()
        elif key in _STRINGS:
            column, limit = _STRINGS[key]
            result.columns[column] = _string(item, path, limit)
        elif key in _DATES:
            text = _string(item, path, 40)
            if parse_iso(text) is None:
                raise invalid(f"{path}: must be an ISO 8601 date")
            result.columns[_DATES[key]] = text
        elif key in _TIMES:
            result.columns[_TIMES[key]] = _time(item, path)
        elif key in _LISTS:
            if not isinstance(item, list) or not all(isinstance(v, str) for v in item):
                raise invalid(f"{path}: must be an array of strings")
            values = [v[:320] for v in item]
            result.columns[_LISTS[key]] = [v.lower() for v in values] if key == "emails" else values
        elif key == "identifiers":
            result.identifiers = _identifiers(item, path)
        else:
            result.extensions = _extensions(item, path)
    born = result.columns.get("date_of_birth")
    if born is not None:
        parsed = parse_iso(born)
        if parsed is not None and parsed.year > 9000:
            raise invalid(f"{where}.dateOfBirth: must be in the past")
    return result


def _string(value: Any, path: str, limit: int) -> str:
    if not isinstance(value, str):
        raise invalid(f"{path}: must be a string")
    if len(value) > limit:
        raise invalid(f"{path}: must be at most {limit} characters")
    if "\x00" in value:
        raise invalid(f"{path}: must not contain NUL")
    return value


def _email(value: Any, path: str) -> str:
    text = _string(value, path, 320).strip().lower()
    if "@" not in text or text.startswith("@") or text.endswith("@"):
        raise invalid(f"{path}: must be an email address")
    return text


def _time(value: Any, path: str) -> datetime:
    parsed = parse_iso(value) if isinstance(value, str) else None
    if parsed is None:
        raise invalid(f"{path}: must be an ISO 8601 date-time")
    return parsed


_IDENTIFIER_KEYS = frozenset({"provider", "id", "expiryDate", "expiry_date"})


def _identifiers(value: Any, path: str) -> list[IdentifierInput]:
    if not isinstance(value, list):
        raise invalid(f"{path}: must be an array")
    out: list[IdentifierInput] = []
    for item in value:
        if not isinstance(item, dict):
            raise invalid(f"{path}: items must be objects")
        unknown = () if _IDENTIFIER_KEYS.issuperset(item) else set(item) - _IDENTIFIER_KEYS
        if unknown:
            raise invalid(f"{path}.{sorted(unknown)[0]}: undefined attribute")
        provider, ident = item.get("provider"), item.get("id")
        if not isinstance(provider, str) or not provider or not isinstance(ident, str) or not ident:
            raise invalid(f"{path}: provider and id must be non-empty strings")
        if len(provider) > 100 or len(ident) > 500:
            raise invalid(f"{path}: provider or id too long")
        expiry = item.get("expiryDate", item.get("expiry_date"))
        if expiry is not None and (not isinstance(expiry, str) or parse_iso(expiry) is None):
            raise invalid(f"{path}.expiryDate: must be an ISO 8601 date")
        if provider.lower() == "email":
            ident = ident.strip().lower()
        out.append(IdentifierInput(provider, ident, expiry))
    return out


def _extensions(value: Any, path: str) -> dict[str, dict[str, str | int | float | bool]]:
    if not isinstance(value, list):
        raise invalid(f"{path}: must be an array")
    out: dict[str, dict[str, str | int | float | bool]] = {}
    seen_keys: set[str] = set()
    for item in value:
        if not isinstance(item, dict):
            raise invalid(f"{path}: items must be objects")
        name = item.get("name")
        if name not in EXTENSION_NAMES or not isinstance(name, str):
            raise invalid(f"{path}.name: must be one of ext, ext1 … ext5")
        if item.get("key", "default") != "default":
            raise invalid(f"{path}.key: must be default")
        if name in out:
            raise invalid(f"{path}.{name}: given twice")
        data = {k: v for k, v in item.items() if k not in ("name", "key")}
        out[name] = check_extension_data(data, f"{path}.{name}", seen_keys)
    return out


def check_extension_data(
    data: dict[str, Any], path: str, seen_keys: set[str] | None = None
) -> dict[str, str | int | float | bool]:
    """A data extension: ≤ 100 alphanumeric keys with primitive values, unique across extensions."""
    if len(data) > EXTENSION_MAX_KEYS:
        raise invalid(f"{path}: at most {EXTENSION_MAX_KEYS} attributes")
    clean: dict[str, str | int | float | bool] = {}
    for key, item in data.items():
        if not _KEY.match(key):
            raise invalid(f"{path}.{key[:50]}: keys must be alphanumeric")
        if not isinstance(item, str | int | float | bool):
            raise invalid(f"{path}.{key}: must be a string, number or boolean")
        if isinstance(item, str) and ("\x00" in item or len(item) > 10_000):
            raise invalid(f"{path}.{key}: invalid string")
        if seen_keys is not None:
            if key in seen_keys:
                raise invalid(f"{path}.{key}: key used by another extension")
            seen_keys.add(key)
        clean[key] = item
    return clean


def _qualifying(data: GuestInput, rules: IdentityRules) -> list[IdentifierInput]:
    return [i for i in data.identifiers if rules.providers is None or i.provider in rules.providers]


# --- Plain new rows: a chunk's new rows without ORM instrumentation ---------------------------
#
# A chunk creates tens of thousands of rows. As mapped objects each costs an instrumented
# constructor, an attribute event per column set and the ORM's bulk-insert bookkeeping — most
# of an import's time. ``plain`` rows are ordinary objects with the same attributes; the
# records set them exactly as they would set a mapped row, and ``insert_rows`` writes them with
# one executemany INSERT (SQLite) or one COPY (PostgreSQL) per table. Rows read from the
# database stay mapped (the session writes their changes), so matching and updating work the
# same either way.

M = TypeVar("M")


class PlainRow:
    """A new row as plain attributes (typed as its model by ``plain``; never added to a session)."""

    def __init__(self, columns: dict[str, Any]) -> None:
        self.__dict__.update(columns)

    def __getattr__(self, name: str) -> Any:
        """An unset column reads None, as on a new mapped row."""
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def plain(model: type[M], **columns: Any) -> M:
    """A new ``model`` row as a :class:`PlainRow`: it reads and writes like the mapped row."""
    return cast(M, PlainRow(columns))


# The variant's hex digit ("10" and two random bits) for the random digit in its place.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class _OrderedRefs:
    """:func:`innkeeper.core.ids.ordered_ref`'s refs at a third of its cost, for rows made by the million.

    The same layout (the Unix time in milliseconds in the first 48 bits, version 4, the RFC 4122
    variant, 74 random bits from ``os.urandom``), formatted as text directly: the random bytes are
    read 40 KiB at a time (one system call per 4,096 refs) and the time prefix is formatted once per
    millisecond, where ``ordered_ref`` makes a ``UUID`` object and calls ``os.urandom`` per ref.
    """

    __slots__ = ("_at", "_millisecond", "_prefix", "_random")
    REFS_PER_READ = 4096

    def __init__(self) -> None:
        self._random, self._at, self._millisecond, self._prefix = "", 0, -1, ""

    def __call__(self) -> str:
        millisecond = time.time_ns() // 1_000_000
        if millisecond != self._millisecond:
            stamp = f"{millisecond:012x}"
            self._millisecond, self._prefix = millisecond, f"{stamp[:8]}-{stamp[8:]}-4"
        at = self._at
        if at == len(self._random):
            self._random, at = os.urandom(10 * self.REFS_PER_READ).hex(), 0
        self._at = at + 20
        digits = self._random[at : at + 20]  # the ten bytes after the time; the first digit gives way to the "4"
        return f"{self._prefix}{digits[1:4]}-{_VARIANT[digits[4]]}{digits[5:8]}-{digits[8:]}"


fresh_ref = _OrderedRefs()
"""A new ref for an imported row: time-ordered, in the v4 format (:func:`innkeeper.core.ids.ordered_ref`)."""


@dataclass(frozen=True, slots=True)
class _Insert:
    """How ``insert_rows`` writes a table's plain rows."""

    sql: str  # SQLite: the INSERT of every column (but an autoincrement key), run once per row
    copy: bool  # PostgreSQL (asyncpg): the rows go by binary COPY into ``names``
    names: tuple[str, ...]  # the columns, in the order of a row's parameters
    parameters: Callable[[Sequence[object]], list[tuple[Any, ...]]]  # plain rows -> driver parameters


_INSERTS: dict[tuple[Table, str], _Insert] = {}
# Processed date-times by (dialect, column type): a record's rows share its timestamp.
_MEMOS: dict[tuple[str, type], dict[datetime, Any]] = {}
_MEMO_SIZE = 50_000


def _memoized(processor: Callable[[Any], Any], memo: dict[Any, Any]) -> Callable[[Any], Any]:
    """The processor, run once per distinct value (``memo`` keeps its results)."""

    def convert(value: Any) -> Any:
        processed = memo.get(value, memo)
        if processed is memo:
            processed = memo[value] = processor(value)
        return processed

    return convert


def _sqlite_datetimes(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``UTCDateTime``'s SQLite processor as one C call (SQLAlchemy's takes two Python layers and a format)."""

    def convert(value: Any) -> Any:
        if type(value) is not datetime or value.tzinfo is None:
            return processor(value)  # anything unusual (a naive date-time: refused) goes SQLAlchemy's way
        return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]  # without its "+00:00"

    # Only while it writes exactly what SQLAlchemy would.
    sample = datetime(1999, 12, 31, 23, 59, 58, 7, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    return convert if convert(sample) == processor(sample) else processor


def _json_values(processor: Callable[[Any], Any], dialect: Dialect) -> Callable[[Any], Any]:
    """A JSON column's processor with one reused C encoder for lists and dicts (``json.dumps`` builds one per call).

    Writes the very text ``json.dumps`` does (same separators, ASCII escapes); used only when the
    dialect serializes with ``json.dumps`` and the processor writes the same for a few samples.
    """
    if c_make_encoder is None or getattr(dialect, "_json_serializer", None) is not None:
        return processor
    encoder = JSONEncoder()
    # Parsed JSON cannot be circular: no markers dict (json.dumps keeps one to detect cycles).
    encode = c_make_encoder(None, encoder.default, encode_basestring_ascii, None, ": ", ", ", False, False, True)

    def convert(value: Any) -> Any:
        if type(value) is list or type(value) is dict:
            return "".join(encode(value, 0))
        return processor(value)

    samples: list[Any] = [
        [],
        {},
        ["a@b.ie", 'é\u2028\x00"', 1.5e300],
        {"k": "v", "n": -1, "b": True, "z": None, "l": [{}]},
    ]
    return convert if all(convert(sample) == processor(sample) for sample in samples) else processor


_ABSENT = object()


def _parameters_function(
    table: Table, keys: list[str], dialect: Dialect
) -> Callable[[Sequence[object]], list[tuple[Any, ...]]]:
    """A function turning plain rows into parameter tuples (``keys``' values), generated for the table.

    Per column: the row's value, else the column's default (a scalar, or made per row when
    callable), then the column's bind processor (None gives what the processor gives for None).
    The function is generated as source, one line per column, because a generic loop over the
    columns of every row (a dict merge, a lookup and a call per column) was a tenth of an
    import's time; it does exactly what that loop did.
    """
    namespace: dict[str, Any] = {"ABSENT": _ABSENT}
    lines = [
        "def parameters(rows):",
        "    out = []",
        "    append = out.append",
        "    for row in rows:",
        "        get = row.__dict__.get",
    ]
    for number, key in enumerate(keys):
        column = table.columns[key]
        value = f"c{number}"
        default = column.default
        if isinstance(default, CallableColumnDefault):
            namespace[f"M{number}"] = default.arg
            lines.append(f"        {value} = get({key!r}, ABSENT)")
            lines.append(f"        if {value} is ABSENT: {value} = M{number}(None)")
        else:
            namespace[f"D{number}"] = None if default is None else cast(ScalarElementColumnDefault, default).arg
            lines.append(f"        {value} = get({key!r}, D{number})")
        processor = column.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            convert: Callable[[Any], Any] = processor
            if isinstance(column.type, DateTime | UTCDateTime):
                if dialect.name == "sqlite" and isinstance(column.type, UTCDateTime):
                    convert = _sqlite_datetimes(convert)
                convert = _memoized(convert, _MEMOS.setdefault((dialect.name, type(column.type)), {}))
            elif isinstance(column.type, JSON):
                convert = _json_values(convert, dialect)
            namespace[f"C{number}"], namespace[f"N{number}"] = convert, processor(None)
            lines.append(f"        {value} = N{number} if {value} is None else C{number}({value})")
    lines.append(f"        append(({', '.join(f'c{number}' for number in range(len(keys)))},))")
    lines.append("    return out")
    exec(compile("\n".join(lines), f"<insert_rows {table.name}>", "exec"), namespace)  # noqa: S102 - our own source
    return cast(Callable[[Sequence[object]], list[tuple[Any, ...]]], namespace["parameters"])


def _insert_of(table: Table, dialect: Dialect) -> _Insert:
    """The table's INSERT and what turns a row into its parameters, built once per dialect."""
    found = _INSERTS.get((table, dialect.name))
    if found is None:
        keys = [column.key for column in table.columns if column is not table.autoincrement_column]
        compiled = insert(table).compile(dialect=dialect, column_keys=keys)
        assert compiled.positiontup == keys
        found = _INSERTS[(table, dialect.name)] = _Insert(
            str(compiled),
            dialect.name == "postgresql" and dialect.driver == "asyncpg",
            tuple(table.columns[key].name for key in keys),
            _parameters_function(table, keys, dialect),
        )
    return found


async def insert_rows(session: AsyncSession, table: Table, rows: Sequence[object]) -> None:
    """Insert plain rows giving every column (unset: its default), in the session's transaction.

    An executemany on SQLite; on PostgreSQL a binary ``COPY … FROM STDIN`` of all the rows
    (asyncpg's ``copy_records_to_table``), which the server applies faster than any INSERT and
    which asyncpg encodes with each column's own codec. The values go through the columns' own
    bind processors, as SQLAlchemy's would (SQLite date-times and JSON lists and dicts by
    equivalent faster converters); a date-time is processed once per distinct value (a
    record's rows share its timestamp). A refused write raises SQLAlchemy's ``DBAPIError``
    (``IntegrityError`` for a constraint) either way.
    """
    if not rows:
        return
    connection = await session.connection()
    plan = _insert_of(table, connection.dialect)
    for seen in _MEMOS.values():
        if len(seen) > _MEMO_SIZE:
            seen.clear()
    params = plan.parameters(rows)
    if not plan.copy:
        await connection.exec_driver_sql(plan.sql, params)
        return
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        await connection.exec_driver_sql("SELECT 1")  # SQLAlchemy's adapter begins on its first statement
    try:
        await driver.copy_records_to_table(table.name, schema_name=table.schema, columns=plan.names, records=params)
    except Exception as exc:
        if not type(exc).__module__.startswith("asyncpg"):
            raise
        # As SQLAlchemy's asyncpg adapter would raise it: SQLSTATE class 23 is an integrity constraint.
        refused = IntegrityError if str(getattr(exc, "sqlstate", "")).startswith("23") else DBAPIError
        raise refused(f"COPY {table.name}", None, exc) from exc


class GuestChunk:
    """What a chunk of batch records reads and writes about guests, read once and written together.

    ``preload`` looks up every guest ref and identifier of the chunk with one query each; the
    records then match and change guests in memory (new rows are plain and kept aside, loaded
    rows are changed in the session), and ``insert_guests`` / ``insert_rest`` write the new rows
    with one bulk write per table (``insert_rows``). A chunk of one record is the record-by-record path.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = GuestRepository(session)
        self._by_ref: dict[str, Guest | None] = {}
        self._owner: dict[tuple[str, str], str | None] = {}
        self._identifiers: dict[str, list[GuestIdentifier]] = {}
        self._extensions: dict[str, dict[str, GuestExtension]] = {}
        self._new_guests: list[Guest] = []
        self._new_identifiers: list[GuestIdentifier] = []
        self._new_extensions: list[GuestExtension] = []

    async def preload(self, values: list[GuestInput]) -> None:
        """Look up, in one query each, the guests, identifiers and extensions the records name."""
        keys = {(i.provider, i.id) for data in values for i in data.identifiers} - self._owner.keys()
        refs = {data.ref for data in values if data.ref and is_ref(data.ref)} - self._by_ref.keys()
        owned = await self.repo.owners(keys) if keys else []
        self._owner.update(dict.fromkeys(keys))
        self._owner.update({(row.provider, row.value): row.guest_ref for row in owned})
        refs |= {row.guest_ref for row in owned} - self._by_ref.keys()
        if not refs:
            return
        found = {guest.ref: guest for guest in await self.repo.batch_guests(refs)}
        for ref in refs:
            self._by_ref[ref] = found.get(ref)
        live = [ref for ref in found if ref not in self._identifiers]
        for ref in live:
            self._identifiers[ref], self._extensions[ref] = [], {}
        for row in await self.repo.identifiers_of_many(live):
            self._identifiers[row.guest_ref].append(row)
        for ext in await self.repo.batch_extensions_of_many(live):
            self._extensions[ext.guest_ref][ext.name] = ext

    async def guest(self, ref: str) -> Guest | None:
        """The guest row with this ref, live or not (None: no such row)."""
        if ref not in self._by_ref:
            self._by_ref[ref] = await self.repo.get(ref, for_update=True)
        return self._by_ref[ref]

    async def owners(self, keys: list[tuple[str, str]]) -> set[str]:
        """Refs of the guests owning any of the identifiers."""
        missing = [key for key in keys if key not in self._owner]
        if missing:
            self._owner.update(dict.fromkeys(missing))
            self._owner.update({(r.provider, r.value): r.guest_ref for r in await self.repo.owners(missing)})
        return {ref for key in keys if (ref := self._owner[key]) is not None}

    async def identifiers(self, guest_ref: str) -> list[GuestIdentifier]:
        if guest_ref not in self._identifiers:
            self._identifiers[guest_ref] = await self.repo.identifiers_of(guest_ref)
        return self._identifiers[guest_ref]

    async def extensions(self, guest_ref: str) -> dict[str, GuestExtension]:
        if guest_ref not in self._extensions:
            self._extensions[guest_ref] = {e.name: e for e in await self.repo.batch_extensions_of(guest_ref)}
        return self._extensions[guest_ref]

    async def by_email(self, email: str) -> Guest | None:
        """The oldest live guest whose primary email is ``email``, counting this chunk's changes."""
        candidates = {g.ref: g for g in await self.repo.batch_by_email(email)}
        candidates.update({ref: g for ref, g in self._by_ref.items() if g is not None})
        live = [g for g in candidates.values() if g.email == email and _live(g)]
        return min(live, key=lambda g: (g.created_at, g.ref), default=None)

    def add_guest(self, guest: Guest) -> None:
        self._new_guests.append(guest)
        self._by_ref[guest.ref] = guest
        self._identifiers[guest.ref], self._extensions[guest.ref] = [], {}

    def add_identifier(self, row: GuestIdentifier) -> None:
        self._new_identifiers.append(row)
        self._identifiers[row.guest_ref].append(row)
        self._owner[(row.provider, row.value)] = row.guest_ref

    def add_extension(self, row: GuestExtension) -> None:
        self._new_extensions.append(row)
        self._extensions[row.guest_ref][row.name] = row

    async def remove_extension(self, row: GuestExtension) -> None:
        del self._extensions[row.guest_ref][row.name]
        if row in self._new_extensions:
            self._new_extensions.remove(row)
        else:
            await self.repo.batch_delete_extension(row)

    async def insert_guests(self) -> None:
        """Write the new guest rows (before anything that refers to them)."""
        await insert_rows(self.session, Guest.__table__, self._new_guests)  # type: ignore[arg-type]
        self._new_guests = []

    async def insert_rest(self) -> None:
        """Write the new identifier and extension rows (after the session's flush deleted old ones)."""
        await insert_rows(self.session, GuestIdentifier.__table__, self._new_identifiers)  # type: ignore[arg-type]
        await insert_rows(self.session, GuestExtension.__table__, self._new_extensions)  # type: ignore[arg-type]
        self._new_identifiers, self._new_extensions = [], []


def _live(guest: Guest) -> bool:
    return guest.guest_type != "retired" and guest.deleted_at is None


async def match_guest(chunk: GuestChunk, data: GuestInput, *, rules: IdentityRules) -> Guest | None:
    """The guest a record means (spec §10.8): its ``ref``, an identifier, or its email (fallback).

    Raises ``Not enough identifying information`` when the record carries nothing usable and
    ``Identity already exists`` when its identifiers belong to different guests.
    """
    target: Guest | None = None
    if data.ref and is_ref(data.ref):
        found = await chunk.guest(data.ref)
        if found is not None and _live(found):
            target = found
    keys = _qualifying(data, rules)
    if keys:
        refs = await chunk.owners([(i.provider, i.id) for i in keys])
        if target is not None and refs - {target.ref}:
            raise RecordRejected("409", IDENTITY_EXISTS)
        if target is None and refs:
            if len(refs) > 1:
                raise RecordRejected("409", IDENTITY_EXISTS)
            target = await chunk.guest(refs.pop())
        return target
    if target is not None:
        return target
    if rules.email_fallback and data.email:
        return await chunk.by_email(data.email)
    raise RecordRejected("400", NOT_IDENTIFIED)


async def apply_guest(
    chunk: GuestChunk,
    data: GuestInput,
    *,
    mode: GuestMode,
    rules: IdentityRules,
    clock: Clock,
    target: Guest | Literal[False] | None = False,
) -> str:
    """Upsert / insert / merge / create one guest record; returns the guest's ref.

    Every rejection happens before the first change. ``target`` is the already matched guest
    (or None for "no match"), when the caller matched it. New rows are plain (``plain``).
    """
    if target is False:
        target = await match_guest(chunk, data, rules=rules)
    if target is not None and mode == "create":
        raise RecordRejected("409", IDENTITY_EXISTS)
    now = clock.now()
    if target is None:
        created: Guest = plain(
            Guest, ref=fresh_ref(), **service.new_guest_columns(now, guest_type=data.guest_type or "customer")
        )
        if data.ref and is_ref(data.ref) and await chunk.guest(data.ref) is None:
            created.ref = data.ref
        chunk.add_guest(created)
        target = created
    elif mode == "insert":
        for column in _CLEARABLE:
            setattr(target, column, None)
        target.emails, target.phone_numbers, target.street = [], [], []
    for column, value in data.columns.items():
        setattr(target, column, value)
    if data.email and data.email not in (target.emails or []):
        target.emails = [*(target.emails or []), data.email]
    if data.guest_type:
        target.guest_type = data.guest_type
    elif target.guest_type == "visitor" and _qualifying(data, rules):
        target.guest_type = "customer"
    target.modified_at = now
    owned = {(i.provider, i.value): i for i in await chunk.identifiers(target.ref)}
    for ident in data.identifiers:
        row = owned.get((ident.provider, ident.id))
        if row is not None:
            row.expiry_date = ident.expiry_date or row.expiry_date
        else:
            new = plain(
                GuestIdentifier,
                guest_ref=target.ref,
                provider=ident.provider,
                value=ident.id,
                expiry_date=ident.expiry_date,
                created_at=now,
            )
            chunk.add_identifier(new)
            owned[(ident.provider, ident.id)] = new
    if data.extensions is not None:
        await _apply_extensions(chunk, target.ref, data.extensions, replace=mode == "insert", now=now)
    return target.ref


async def _apply_extensions(
    chunk: GuestChunk,
    guest_ref: str,
    extensions: dict[str, dict[str, str | int | float | bool]],
    *,
    replace: bool,
    now: datetime,
) -> None:
    current = dict(await chunk.extensions(guest_ref))
    if replace:
        for name, old in current.items():
            if name not in extensions:
                await chunk.remove_extension(old)
    for name, data in extensions.items():
        row = current.get(name)
        if row is None:
            chunk.add_extension(
                plain(
                    GuestExtension,
                    ref=fresh_ref(),
                    guest_ref=guest_ref,
                    name=name,
                    key="default",
                    data=data,
                    created_at=now,
                    modified_at=now,
                )
            )
        else:
            row.data = dict(data) if replace else {**row.data, **data}
            row.modified_at = now


async def resolve_contact(
    chunk: GuestChunk, data: GuestInput, *, rules: IdentityRules, clock: Clock, target: Guest | None
) -> str:
    """The guest an order contact stands for (``target``, matched by the caller), created as a customer when none."""
    return await apply_guest(chunk, data, mode="upsert", rules=rules, clock=clock, target=target)


async def delete_candidates(session: AsyncSession, data: GuestInput, *, rules: IdentityRules) -> list[Guest]:
    """The live guests a delete record names (its ref, identifiers, or email fallback), oldest first.

    Raises ``Not enough identifying information`` when the record carries nothing usable.
    """
    chunk = GuestChunk(session)
    has_ref = bool(data.ref and is_ref(data.ref))
    keys = _qualifying(data, rules)
    refs = {data.ref} if has_ref and data.ref else set()
    if keys:
        refs |= await chunk.owners([(i.provider, i.id) for i in keys])
    found = [g for ref in refs if (g := await chunk.guest(ref)) is not None and _live(g)]
    if not keys and not has_ref:
        if not (rules.email_fallback and data.email):
            raise RecordRejected("400", NOT_IDENTIFIED)
        found = await chunk.repo.batch_by_email(data.email)
    return sorted(found, key=lambda g: (g.created_at, g.ref))


async def browser_for(
    session: AsyncSession, *, browser_ref: str | None, guest_ref: str | None, clock: Clock
) -> Browser:
    """The browser an imported tracking event belongs to (an offline one for a bare guest ref)."""
    repo = GuestRepository(session)
    if browser_ref is not None:
        browser = await repo.get_browser(browser_ref.lower()) if is_ref(browser_ref) else None
        if browser is None or browser.deleted_at is not None:
            raise invalid("value.browser_id: unknown browser")
        return browser
    guest = await repo.get(guest_ref.lower()) if guest_ref and is_ref(guest_ref) else None
    if guest is None or guest.guest_type == "retired" or guest.deleted_at is not None:
        raise RecordRejected("404", "Guest not found")
    browsers = await repo.browsers_of(guest.ref)
    if browsers:
        return browsers[0]
    browser = Browser(ref=new_ref(), guest_ref=guest.ref, user_agent=None, created_at=clock.now())
    repo.add(browser)
    await session.flush()
    return browser
