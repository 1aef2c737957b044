"""Console senders for development: write the message to a stream instead of delivering it.

They write to the stream they are given (stdout by default), never to the log: a rendered email
holds personal data, and logs must not.
"""

from __future__ import annotations

import re
import sys
from typing import TextIO

from innkeeper.connections.senders._mime import InvalidEmail, build_mime
from innkeeper.connections.senders._types import DeliveryResult, EmailMessage, WebhookRequest, fail, sent
from innkeeper.core.clock import Clock

SECRET_HEADERS = re.compile(r"auth|key|token|secret|password|signature|cookie", re.IGNORECASE)


class ConsoleEmailSender:
    """Prints each email as MIME text."""

    def __init__(self, *, clock: Clock, stream: TextIO | None = None) -> None:
        self.clock = clock
        self.stream = stream

    async def send(self, message: EmailMessage) -> DeliveryResult:
        """Write the message; invalid messages fail as they would over SMTP."""
        try:
            mime = build_mime(message, now=self.clock.now())
        except InvalidEmail as exc:
            return fail(str(exc))
        out = self.stream or sys.stdout
        bcc = f"Bcc: {', '.join(message.bcc)}\n" if message.bcc else ""
        out.write(f"----- email (console sender) -----\n{bcc}{mime.as_string()}\n----- end of email -----\n")
        out.flush()
        return sent("written to the console")


class ConsoleWebhookSender:
    """Prints each request; credentials are not printed."""

    def __init__(self, *, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def send(self, request: WebhookRequest) -> DeliveryResult:
        """Write the request line, headers and body."""
        out = self.stream or sys.stdout
        lines = ["----- webhook (console sender) -----", f"{request.method} {request.url}"]
        for name, value in request.headers:
            shown = "********" if SECRET_HEADERS.search(name) else value
            lines.append(f"{name}: {shown}")
        body = request.body.decode("utf-8", errors="replace")
        out.write("\n".join(lines) + "\n\n" + body + "\n----- end of webhook -----\n")
        out.flush()
        return sent("written to the console")
