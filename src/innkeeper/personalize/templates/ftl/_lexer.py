"""Lexing: the expression tokenizer, the template chunker (text / tags / interpolations) and white-space stripping.

The chunker finds the exact extent of every FTL tag by tokenizing its content (strings may contain `>`), then
applies FreeMarker's white-space stripping: a line that holds only FTL tags, comments and white-space loses its
indentation and its trailing white-space including the line break. `${...}` is not a tag for this rule.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from .errors import TemplateSyntaxError

_WS = re.compile(r"\s+")
_NUM = re.compile(r"\d+(?:\.\d+)?")
_NAME = re.compile(r"[A-Za-z_$@\u00c0-\uffff][\w$@\u00c0-\uffff]*")
_OPS = (
    "..<", "..!", "..*", "->", "..", "??", "==", "!=", "<=", ">=", "&&", "||", "+=", "-=", "*=", "/=", "%=",
    "++", "--", "?", "!", "=", "<", ">", "+", "-", "*", "/", "%", "(", ")", "[", "]", "{", "}", ",", ":",
    ".", ";", "&", "|",
)  # fmt: skip
_TAG_START = re.compile(r"\$\{|<#--|</?#(?=[A-Za-z])|</?@(?=[A-Za-z_$.])")
_END_TAG_CLOSE = re.compile(r"\s*>")
_NEWLINE_SPLIT = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")

# Directives whose tags count as "FTL tags" for white-space stripping are all of them; these four also trim.
TRIM_DIRECTIVES = frozenset({"t", "lt", "rt", "nt"})


@dataclass(frozen=True, slots=True)
class Token:
    """One expression token: kind is num, str, rawstr, name, op or eof; value is the text (string content for str)."""

    kind: str
    value: str
    start: int
    end: int


class Positions:
    """Maps source offsets to 1-based (line, column)."""

    def __init__(self, source: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer(r"\r\n|\n|\r", source)]

    def at(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self._starts, offset) - 1
        return i + 1, offset - self._starts[i] + 1


class Tokenizer:
    """Lazily tokenizes an expression starting at an offset of the source; `pos` is where the next token starts."""

    def __init__(self, source: str, pos: int, positions: Positions, name: str, limit: int | None = None) -> None:
        self.src = source
        self.pos = pos
        self.limit = len(source) if limit is None else limit
        self.positions = positions
        self.name = name
        self._peeked: Token | None = None

    def error(self, message: str, offset: int) -> TemplateSyntaxError:
        line, col = self.positions.at(offset)
        return TemplateSyntaxError(message, line=line, column=col, template_name=self.name)

    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self._lex()
        return self._peeked

    def next(self) -> Token:
        tok = self.peek()
        self._peeked = None
        return tok

    def mark(self) -> tuple[int, Token | None]:
        return self.pos, self._peeked

    def reset(self, state: tuple[int, Token | None]) -> None:
        self.pos, self._peeked = state

    def _lex(self) -> Token:
        src, pos = self.src, self.pos
        while True:
            m = _WS.match(src, pos)
            if m:
                pos = m.end()
            if src.startswith("<#--", pos):  # comments are allowed inside tags and interpolations
                end = src.find("-->", pos + 4)
                if end < 0:
                    raise self.error("Unclosed comment", pos)
                pos = end + 3
                continue
            break
        if pos >= self.limit:
            self.pos = pos
            return Token("eof", "", pos, pos)
        ch = src[pos]
        if ch in "\"'" or (ch == "r" and src[pos + 1 : pos + 2] in ("'", '"')):
            raw = ch == "r"
            quote = src[pos + 1] if raw else ch
            i = pos + (2 if raw else 1)
            while True:
                j = src.find(quote, i)
                if j < 0:
                    raise self.error("Unclosed string literal", pos)
                if raw:
                    break
                k = j - 1
                backslashes = 0
                while src[k] == "\\":
                    backslashes += 1
                    k -= 1
                if backslashes % 2 == 0:
                    break
                i = j + 1
            start = pos + (2 if raw else 1)
            self.pos = j + 1
            return Token("rawstr" if raw else "str", src[start:j], pos, j + 1)
        m = _NUM.match(src, pos)
        if m:
            self.pos = m.end()
            return Token("num", m.group(), pos, m.end())
        m = _NAME.match(src, pos)
        if m:
            self.pos = m.end()
            return Token("name", m.group(), pos, m.end())
        for op in _OPS:
            if src.startswith(op, pos):
                self.pos = pos + len(op)
                return Token("op", op, pos, self.pos)
        raise self.error(f"Unexpected character {ch!r}", pos)

    def skip_to_close(self, closer: str, open_offset: int) -> tuple[int, int, bool]:
        """Skip tokens up to `closer` (`>` or `}`) at bracket depth 0; return (content_end, tag_end, self_closing)."""
        depth = 0
        last: Token | None = None
        while True:
            tok = self.next()
            if tok.kind == "eof":
                raise self.error("Unclosed tag or interpolation (reached the end of the template)", open_offset)
            if tok.kind != "op":
                last = tok
                continue
            v = tok.value
            if v in ("(", "[", "{"):
                depth += 1
            elif depth == 0 and v == closer:
                self_closing = last is not None and last.kind == "op" and last.value == "/" and last.end == tok.start
                content_end = last.start if self_closing and last is not None else tok.start
                return content_end, tok.end, self_closing
            elif v in (")", "]", "}"):
                depth -= 1
            last = tok


@dataclass(slots=True)
class Item:
    """A template chunk: text, raw (noparse) text, interp, tag, endtag, call, endcall or comment."""

    kind: str
    start: int
    end: int
    text: str = ""  # text content, or directive name for tag/endtag, or callee source for endcall
    body_start: int = 0  # where the tag's arguments / interpolation expression start
    body_end: int = 0
    self_closing: bool = False


def chunk(source: str, positions: Positions, name: str) -> list[Item]:
    """Split the template into items with exact extents (see module docstring)."""
    items: list[Item] = []
    pos = 0
    n = len(source)
    while pos < n:
        m = _TAG_START.search(source, pos)
        if m is None:
            items.append(Item("text", pos, n, source[pos:]))
            break
        if m.start() > pos:
            items.append(Item("text", pos, m.start(), source[pos : m.start()]))
        start, opener = m.start(), m.group()
        tok = Tokenizer(source, m.end(), positions, name)
        if opener == "${":
            content_end, end, _ = tok.skip_to_close("}", start)
            items.append(Item("interp", start, end, body_start=m.end(), body_end=content_end))
        elif opener == "<#--":
            close = source.find("-->", m.end())
            if close < 0:
                raise tok.error("Unclosed comment <#--", start)
            end = close + 3
            items.append(Item("comment", start, end))
        elif opener in ("<#", "</#"):
            nm = _NAME.match(source, m.end())
            assert nm is not None  # the lookahead guaranteed a letter
            dname = nm.group()
            if opener == "</#":
                end_match = _END_TAG_CLOSE.match(source, nm.end())
                if end_match is None:
                    raise tok.error(f"Expected '>' to close </#{dname}", start)
                end = end_match.end()
                items.append(Item("endtag", start, end, dname))
            elif dname == "noparse":
                gt = source.find(">", nm.end())
                close = source.find("</#noparse>", gt)
                if gt < 0 or close < 0:
                    raise tok.error("Unclosed #noparse", start)
                end = close + len("</#noparse>")
                items.append(Item("raw", start, end, source[gt + 1 : close]))
            else:
                tok.pos = nm.end()
                content_end, end, self_closing = tok.skip_to_close(">", start)
                items.append(Item("tag", start, end, dname, nm.end(), content_end, self_closing))
        else:  # <@ or </@
            if opener == "</@":
                close = source.find(">", m.end())
                if close < 0:
                    raise tok.error("Unclosed </@...> tag", start)
                end = close + 1
                items.append(Item("endcall", start, end, source[m.end() : close].strip()))
            else:
                content_end, end, self_closing = tok.skip_to_close(">", start)
                items.append(Item("call", start, end, "", m.end(), content_end, self_closing))
        pos = end
    return _strip_whitespace(items)


_TAGGY = frozenset({"tag", "endtag", "call", "endcall", "comment"})


def _strip_whitespace(items: list[Item]) -> list[Item]:
    pieces: list[Item] = []
    for it in items:
        if it.kind != "text":
            pieces.append(it)
            continue
        offset = it.start
        for part in _NEWLINE_SPLIT.split(it.text):
            if part:
                pieces.append(Item("text", offset, offset + len(part), part))
                offset += len(part)
    out: list[Item] = []
    line: list[Item] = []

    def flush() -> None:
        tag_positions = [i for i, p in enumerate(line) if p.kind in _TAGGY]
        only_tags = bool(tag_positions) and all(
            p.kind in _TAGGY or (p.kind == "text" and p.text.strip() == "") for p in line
        )
        if only_tags:  # white-space between two tags is embedded, not indentation or trailing white-space
            only_tags = not any(p.kind == "text" for p in line[tag_positions[0] : tag_positions[-1]])
        trims = {p.text for p in line if p.kind == "tag" and p.text in TRIM_DIRECTIVES}
        kept = [p for p in line if not (p.kind == "tag" and p.text in TRIM_DIRECTIVES)]
        if only_tags and "nt" not in trims:
            kept = [p for p in kept if p.kind != "text"]
        elif trims - {"nt"}:
            if trims & {"t", "lt"}:
                while kept and kept[0].kind == "text" and not kept[0].text.strip():
                    kept.pop(0)
                if kept and kept[0].kind == "text":
                    kept[0] = Item("text", kept[0].start, kept[0].end, kept[0].text.lstrip())
            if trims & {"t", "rt"}:
                while kept and kept[-1].kind == "text" and not kept[-1].text.strip():
                    kept.pop()
                if kept and kept[-1].kind == "text":
                    kept[-1] = Item("text", kept[-1].start, kept[-1].end, kept[-1].text.rstrip())
        out.extend(kept)
        line.clear()

    for p in pieces:
        line.append(p)
        if p.kind == "text" and p.text.endswith(("\n", "\r")):
            flush()
    flush()
    merged: list[Item] = []
    for p in out:
        if p.kind == "text" and merged and merged[-1].kind == "text":
            prev = merged[-1]
            merged[-1] = Item("text", prev.start, p.end, prev.text + p.text)
        else:
            merged.append(p)
    return merged
