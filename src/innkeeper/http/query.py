"""Query-string parsing for the Stream GET routes, tolerant of raw ``curl -g`` JSON (spec §3.1)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus

import msgspec

KNOWN_PARAMS = ("client_key", "callback", "cb", "boxever_version", "content_version", "api_token", "message")
_NEXT_PARAM = re.compile(r"&(?:" + "|".join(KNOWN_PARAMS) + r")=")
_decoder = msgspec.json.Decoder()


def query_params(query_string: bytes) -> dict[str, str]:
    """First value of each parameter, percent-decoded (latin-1 safe)."""
    text = query_string.decode("latin-1")
    out: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace"):
        out.setdefault(key, value)
    return out


def decode_json(text: str | bytes) -> Any:
    """Decode JSON or raise ValueError."""
    try:
        return _decoder.decode(text.encode() if isinstance(text, str) else text)
    except (msgspec.DecodeError, RecursionError, UnicodeEncodeError) as exc:
        raise ValueError("unparseable") from exc


def raw_message(query_string: bytes) -> str | None:
    """The raw (still percent-encoded) ``message`` value, up to the next known parameter."""
    text = query_string.decode("latin-1")
    start = 0 if text.startswith("message=") else text.find("&message=")
    if start < 0:
        return None
    begin = start + len("message=") + (0 if start == 0 else 1)
    match = _NEXT_PARAM.search(text, begin)
    return text[begin : match.start() if match else len(text)]


def parse_message(query_string: bytes, params: dict[str, str]) -> tuple[Any, str] | None:
    """The decoded ``message`` and its exact JSON text; None when absent.

    Standard percent-decoding first; a ``+`` becomes a space only if the result still
    parses; raw JSON with ``&`` inside strings (curl -g) is taken up to the next known
    parameter. Raises ValueError when nothing parses.
    """
    if "message" not in params:
        return None
    segment = _first_segment(query_string)
    raw = raw_message(query_string)
    candidates: list[str] = []
    for piece in (segment, raw):
        if piece is None:
            continue
        for decoded in (unquote_plus(piece, encoding="latin-1"), unquote(piece, encoding="latin-1")):
            text = _utf8(decoded)
            if text is not None:
                candidates.append(text)
    for candidate in candidates:
        try:
            return decode_json(candidate), candidate
        except ValueError:
            continue
    raise ValueError("unparseable")


def _first_segment(query_string: bytes) -> str | None:
    for part in query_string.decode("latin-1").split("&"):
        if part.startswith("message="):
            return part[len("message=") :]
    return None


def _utf8(latin: str) -> str | None:
    """Percent-decoded bytes were read as latin-1; reinterpret them as UTF-8 (None if invalid)."""
    try:
        return latin.encode("latin-1").decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return None
