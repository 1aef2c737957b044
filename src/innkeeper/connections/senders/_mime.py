"""Turn an EmailMessage into a MIME message: multipart/alternative text + html, proper headers."""

from __future__ import annotations

import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, getaddresses
from html.parser import HTMLParser

from innkeeper.connections.senders._types import EmailMessage

# Built from the message's own fields; the free-form ``headers`` may not set them.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
    }
)
_ADDR = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII without ':' (RFC 5322 ftext)


class InvalidEmail(ValueError):
    """The rendered email cannot be sent as it is (bad address, injected header, …)."""


def parse_address(value: str, *, field: str) -> tuple[str, str]:
    """(display name, addr-spec) of ``a@b`` or ``Name <a@b>``; refuses CR/LF and malformed input."""
    if "\r" in value or "\n" in value or "\x00" in value:
        raise InvalidEmail(f"{field}: line breaks are not allowed in addresses")
    # One address only: "a@x, b@y" would otherwise smuggle a second recipient into a header.
    found = getaddresses([value])
    if len(found) != 1:
        raise InvalidEmail(f"{field}: exactly one address expected")
    name, addr = found[0]
    if not addr or not _ADDR.match(addr):
        raise InvalidEmail(f"{field}: not a valid email address")
    return name, addr


def envelope_address(value: str) -> str:
    """The addr-spec part, for MAIL FROM / RCPT TO."""
    return parse_address(value, field="address")[1]


def build_mime(message: EmailMessage, *, now: datetime, message_id_domain: str | None = None) -> MimeMessage:
    """A MIME message: text/plain, text/html, or multipart/alternative with both."""
    mime = MimeMessage()
    mime["From"] = _format(message.sender, "from")
    if message.to:
        mime["To"] = ", ".join(_format(a, "to") for a in message.to)
    if message.cc:
        mime["Cc"] = ", ".join(_format(a, "cc") for a in message.cc)
    if message.reply_to:
        mime["Reply-To"] = ", ".join(_format(a, "replyTo") for a in message.reply_to)
    _check_value(message.subject, "subject")
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(now)
    if message.message_id:
        domain = message_id_domain or envelope_address(message.sender).rpartition("@")[2]
        local = re.sub(r"[^A-Za-z0-9._-]", "-", message.message_id)[:200]
        mime["Message-ID"] = f"<{local}@{domain}>"
    for name, value in message.headers:
        if not _HEADER_NAME.match(name) or name.lower() in RESERVED_HEADERS:
            raise InvalidEmail(f"headers: {name[:60]!r} cannot be set")
        _check_value(value, f"headers.{name}")
        mime[name] = value
    text = message.text if message.text is not None else (html_to_text(message.html) if message.html else "")
    mime.set_content(text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime


def _format(value: str, field: str) -> str:
    name, addr = parse_address(value, field=field)
    if not name:
        return addr
    local, _, domain = addr.rpartition("@")
    # Address() encodes non-ASCII display names per RFC 2047 when the message is flattened.
    return str(Address(display_name=name, username=local, domain=domain))


def _check_value(value: str, field: str) -> None:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise InvalidEmail(f"{field}: line breaks are not allowed in headers")


class _TextExtractor(HTMLParser):
    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._skip = max(self._skip - 1, 0)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """A readable plain-text fallback of an HTML body."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
