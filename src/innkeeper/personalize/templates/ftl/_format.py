"""Number formatting (Java `DecimalFormat`, en_US) and date formatting/parsing (Java `SimpleDateFormat`, UTC)."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from functools import lru_cache

NUMBER_PATTERN = "#,##0.###"  # en_US "number" format, what `${n}` uses by default
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_CTX = Context(prec=200)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class FormatError(ValueError):
    """A pattern or a value could not be formatted / parsed; the caller adds the template position."""


# ---------------------------------------------------------------- numbers


def to_decimal(value: int | float | Decimal) -> Decimal:
    """Decimal value of a number; a float gives its shortest repr digits (Java `Double.toString`)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _round(value: int | float | Decimal, places: int) -> Decimal:
    """Round HALF_EVEN like Java's DecimalFormat: a float's shortest digits, but ties decided by the binary value."""
    step = Decimal(1).scaleb(-places)
    d = to_decimal(value)
    q = d.quantize(step, rounding=ROUND_HALF_EVEN, context=_CTX)
    if isinstance(value, float) and abs(_CTX.subtract(d, d.quantize(step, rounding=ROUND_DOWN, context=_CTX))) == (
        step / 2
    ):
        q = Decimal(value).quantize(step, rounding=ROUND_HALF_EVEN, context=_CTX)
    return q


@lru_cache(maxsize=256)
def _parse_number_pattern(pattern: str) -> tuple[str, str, int, int, int, int, int]:
    """(prefix, suffix, grouping, min_int, min_frac, max_frac, multiplier) of a DecimalFormat pattern."""
    positive = pattern.split(";", 1)[0]
    m = re.fullmatch(r"((?:'[^']*'|[^#0,.'])*)([#0,]*(?:\.[#0]*)?)((?:'[^']*'|[^#0,.'])*)", positive)
    if m is None or not m.group(2) or "E" in positive:
        raise FormatError(f"Unsupported number format pattern: {pattern!r}")
    prefix_raw, body, suffix_raw = m.groups()
    int_part, _, frac_part = body.partition(".")
    grouping = len(int_part) - int_part.rfind(",") - 1 if "," in int_part else 0
    digits = int_part.replace(",", "")
    min_int = digits.count("0")
    min_frac = frac_part.count("0")
    max_frac = len(frac_part)
    multiplier = 1
    affixes = prefix_raw + suffix_raw
    if "%" in affixes:
        multiplier = 100
    elif "\u2030" in affixes:
        multiplier = 1000

    def affix(text: str) -> str:
        return re.sub(r"'([^']*)'", lambda q: q.group(1) or "'", text).replace("\u00a4", "$")

    return affix(prefix_raw), affix(suffix_raw), grouping, min_int, min_frac, max_frac, multiplier


def format_number(value: int | float | Decimal, pattern: str = NUMBER_PATTERN) -> str:
    """Format like Java `new DecimalFormat(pattern, en_US)` with HALF_EVEN rounding."""
    prefix, suffix, grouping, min_int, min_frac, max_frac, multiplier = _parse_number_pattern(pattern)
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return "NaN"
        return ("-" if value < 0 else "") + prefix + "\u221e" + suffix
    d = to_decimal(value)
    if d.is_nan():
        return "NaN"
    negative = d.is_signed() and not d.is_zero()
    if multiplier != 1:
        value = d = _CTX.multiply(d, Decimal(multiplier))
    q = abs(_round(value, max_frac))
    text = format(q, "f")
    int_digits, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if len(frac) < min_frac:
        frac = frac.ljust(min_frac, "0")
    int_digits = int_digits.lstrip("0")
    if len(int_digits) < min_int:
        int_digits = int_digits.rjust(min_int, "0")
    if grouping and len(int_digits) > grouping:
        head = len(int_digits) % grouping or grouping
        groups = [int_digits[:head]] + [int_digits[i : i + grouping] for i in range(head, len(int_digits), grouping)]
        int_digits = ",".join(groups)
    body = int_digits + ("." + frac if frac else "")
    if not body:
        body = "0"
    return ("-" if negative else "") + prefix + body + suffix


def format_computer(value: int | float | Decimal) -> str:
    """FreeMarker's `?c` for numbers: no grouping, `.` separator, up to 16 fraction digits, INF / -INF / NaN."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "INF" if value > 0 else "-INF"
    d = to_decimal(value)
    if d.is_nan():
        return "NaN"
    if d.is_infinite():
        return "INF" if d > 0 else "-INF"
    q = _round(value, 16)
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def parse_number(text: str) -> int | Decimal:
    """FreeMarker's `?number` on a string (a Java BigDecimal literal, plus INF/-INF/NaN)."""
    s = text.strip()
    if s in ("INF", "+INF", "Infinity"):
        return Decimal("Infinity")
    if s in ("-INF", "-Infinity"):
        return Decimal("-Infinity")
    if not re.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN", s):
        raise FormatError(f"Can't convert this string to number: {text!r}")
    if re.fullmatch(r"[+-]?\d+", s):
        return int(s)
    try:
        return Decimal(s)
    except InvalidOperation as exc:  # pragma: no cover - the regex already checked
        raise FormatError(f"Can't convert this string to number: {text!r}") from exc


# ---------------------------------------------------------------- dates


def to_utc(value: datetime) -> datetime:
    """Treat naive datetimes as UTC and convert aware ones to UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_datetime(value: datetime | date | time, *, ms: str = "always") -> str:
    """ISO 8601 in UTC: `2025-05-14T09:30:00.000Z` (ms="always"), ms="optional" drops `.000`."""
    if isinstance(value, datetime):
        v = to_utc(value)
        millis = v.microsecond // 1000
        frac = f".{millis:03d}" if ms == "always" or (ms == "optional" and millis) else ""
        return v.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    if isinstance(value, date):
        return value.isoformat()
    return value.replace(microsecond=value.microsecond // 1000 * 1000).isoformat(timespec="seconds")


def epoch_millis(value: datetime) -> int:
    """Milliseconds since 1970-01-01T00:00:00Z (Java `Date.getTime()`)."""
    delta = to_utc(value) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


_PATTERN_TOKEN = re.compile(r"'((?:[^']|'')*)'|([A-Za-z])\2*|(.)", re.S)
_NUMERIC = frozenset("yYdHhkKmsSDuwWF")


@lru_cache(maxsize=256)
def _tokenize_date_pattern(pattern: str) -> tuple[tuple[str, str], ...]:
    """[(kind, text)]: kind is a pattern letter (text = the run) or "" for literal text."""
    out: list[tuple[str, str]] = []
    for m in _PATTERN_TOKEN.finditer(pattern):
        if m.group(1) is not None:
            out.append(("", m.group(1).replace("''", "'") if m.group(1) else "'"))
        elif m.group(2):
            run = m.group(0)
            if run[0] not in "GyYMLdDEuaHkKhmsSzZXwWF":
                raise FormatError(f"Illegal pattern character {run[0]!r} in date pattern {pattern!r}")
            out.append((run[0], run))
        else:
            out.append(("", m.group(3)))
    return tuple(out)


def format_date(value: datetime | date | time, pattern: str) -> str:
    """Format like Java `SimpleDateFormat(pattern, en_US)` in the UTC time zone."""
    if isinstance(value, datetime):
        v = to_utc(value)
    elif isinstance(value, date):
        v = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        v = datetime.combine(date(1970, 1, 1), value, tzinfo=UTC)
    out: list[str] = []
    for kind, run in _tokenize_date_pattern(pattern):
        n = len(run)
        if not kind:
            out.append(run)
        elif kind in "yY":
            out.append(f"{v.year % 100:02d}" if n == 2 else str(v.year).zfill(n))
        elif kind in "ML":
            out.append(str(v.month).zfill(n) if n <= 2 else _MONTHS[v.month - 1][: 3 if n == 3 else None])
        elif kind == "d":
            out.append(str(v.day).zfill(n))
        elif kind == "D":
            out.append(str(v.timetuple().tm_yday).zfill(n))
        elif kind == "E":
            out.append(_DAYS[v.weekday()][: 3 if n <= 3 else None])
        elif kind == "u":
            out.append(str(v.isoweekday()).zfill(n))
        elif kind == "a":
            out.append("AM" if v.hour < 12 else "PM")
        elif kind == "H":
            out.append(str(v.hour).zfill(n))
        elif kind == "k":
            out.append(str(v.hour or 24).zfill(n))
        elif kind == "K":
            out.append(str(v.hour % 12).zfill(n))
        elif kind == "h":
            out.append(str(v.hour % 12 or 12).zfill(n))
        elif kind == "m":
            out.append(str(v.minute).zfill(n))
        elif kind == "s":
            out.append(str(v.second).zfill(n))
        elif kind == "S":
            out.append(str(v.microsecond // 1000).zfill(n))
        elif kind == "z":
            out.append("UTC" if n < 4 else "Coordinated Universal Time")
        elif kind == "Z":
            out.append("+0000")
        elif kind == "X":
            out.append("Z")
        elif kind == "G":
            out.append("AD")
        elif kind == "w":
            out.append(str(v.isocalendar()[1]).zfill(n))
        else:  # W, F
            out.append(str((v.day - 1) // 7 + 1).zfill(n))
    return "".join(out)


_ZONE_RE = r"(Z|[+-]\d{2}:?\d{2}|[+-]\d{2}|UTC|GMT(?:[+-]\d{1,2}(?::?\d{2})?)?|[A-Z]{3,4})"


@lru_cache(maxsize=256)
def _date_parser(pattern: str) -> tuple[re.Pattern[str], tuple[tuple[str, int], ...]]:
    tokens = _tokenize_date_pattern(pattern)
    parts: list[str] = []
    fields: list[tuple[str, int]] = []
    for i, (kind, run) in enumerate(tokens):
        n = len(run)
        if not kind:
            parts.append(re.escape(run))
            continue
        abutting = i + 1 < len(tokens) and tokens[i + 1][0] in _NUMERIC | {"M"}
        if kind in _NUMERIC or (kind in "ML" and n <= 2):
            parts.append(rf"(\d{{{n}}})" if abutting else r"(\d+)")
        elif kind in "ML":
            parts.append("(" + "|".join(sorted(_MONTHS + tuple(m[:3] for m in _MONTHS), key=len, reverse=True)) + ")")
        elif kind == "E":
            parts.append("(" + "|".join(sorted(_DAYS + tuple(d[:3] for d in _DAYS), key=len, reverse=True)) + ")")
        elif kind == "a":
            parts.append("(AM|PM|am|pm)")
        elif kind in "zZX":
            parts.append(_ZONE_RE)
        else:
            parts.append(r"(\w+)")
        fields.append((kind, n))
    return re.compile("".join(parts), re.I), tuple(fields)


def _zone_offset(text: str) -> timedelta:
    t = text.upper()
    if t in ("Z", "UTC", "GMT") or re.fullmatch(r"[A-Z]{3,4}", t):
        return timedelta(0)
    m = re.fullmatch(r"(?:GMT)?([+-])(\d{1,2}):?(\d{2})?", t)
    if m is None:
        raise FormatError(f"Unparseable time zone {text!r}")
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
    return -delta if m.group(1) == "-" else delta


def parse_date(text: str, pattern: str, *, now: datetime) -> datetime:
    """Parse like Java `SimpleDateFormat.parse` (text after the pattern is ignored); the result is in UTC."""
    regex, fields = _date_parser(pattern)
    m = regex.match(text)
    if m is None:
        raise FormatError(f"Can't parse {text!r} to a date-time with pattern {pattern!r}")
    year, month, day, hour, minute, second, millis = 1970, 1, 1, 0, 0, 0, 0
    pm: bool | None = None
    offset = timedelta(0)
    for (kind, n), raw in zip(fields, m.groups(), strict=True):
        if kind in "yY":
            year = int(raw)
            if n <= 2 and len(raw) == 2:  # Java's two-digit-year window: within 80 years before / 20 after now
                base = now.year - 80
                year = base - base % 100 + year
                if year < base:
                    year += 100
        elif kind in "ML":
            month = int(raw) if raw.isdigit() else [mm[:3].lower() for mm in _MONTHS].index(raw[:3].lower()) + 1
        elif kind == "d":
            day = int(raw)
        elif kind in "Hk":
            hour = int(raw) % 24
        elif kind in "hK":
            hour = int(raw) % 12
            pm = bool(pm)
        elif kind == "m":
            minute = int(raw)
        elif kind == "s":
            second = int(raw)
        elif kind == "S":
            millis = int(raw)
        elif kind == "a":
            pm = raw.upper() == "PM"
        elif kind in "zZX":
            offset = _zone_offset(raw)
    if pm:
        hour += 12
    try:
        result = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError as exc:
        raise FormatError(f"Can't parse {text!r} with pattern {pattern!r}: {exc}") from exc
    return (result + timedelta(milliseconds=millis)).astimezone(UTC)


def parse_iso(text: str) -> datetime | date:
    """Parse an ISO 8601 date or date-time string (the default for `?datetime` / `?date` without a pattern)."""
    s = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
            return date.fromisoformat(s)
        return to_utc(datetime.fromisoformat(s))
    except ValueError as exc:
        raise FormatError(f"Can't parse {text!r} as an ISO 8601 date-time") from exc
