"""Real servers the connection tests deliver to: aiosmtpd (SMTP) and http.server (webhooks)."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

SMTP_USER = "mailer"
SMTP_PASSWORD = "smtp-pass-5b1e"
REFUSED = "nobody@refused.example"
TEMPORARY = "later@greylist.example"
OAUTH_CLIENT = "client-1"
OAUTH_SECRET = "oauth-secret-77"


def free_port() -> int:
    """A TCP port nothing listens on (for a moment)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Received:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class _Handler:
    def __init__(self) -> None:
        self.messages: list[Received] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address == REFUSED:
            return f"550 5.1.1 <{address}>: Recipient address rejected"
        if address == TEMPORARY:
            return "450 4.2.0 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _authenticator(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = (
        isinstance(data, LoginPassword) and data.login.decode() == SMTP_USER and data.password.decode() == SMTP_PASSWORD
    )
    # handled=False: aiosmtpd then answers 535 itself (True means "I already replied").
    return AuthResult(success=ok, handled=False)


@dataclass
class SmtpServer:
    """A running aiosmtpd server."""

    port: int
    handler: _Handler

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


@contextmanager
def smtp_server(*, auth: bool = True, port: int | None = None) -> Iterator[SmtpServer]:
    """aiosmtpd on a free port, or ``port`` (AUTH LOGIN/PLAIN allowed without TLS, for the test only)."""
    handler = _Handler()
    port = port or free_port()
    options: dict[str, Any] = {"auth_require_tls": False}
    if auth:
        options["authenticator"] = _authenticator
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield SmtpServer(port, handler)
    finally:
        controller.stop()


@dataclass
class Hit:
    """One HTTP request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local HTTP receiver: records requests, answers by path."""

    port: int
    hits: list[Hit] = field(default_factory=list)
    token_requests: int = 0
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path.split("?")[0] == path]


def _handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def _answer(
            self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
        ) -> None:
            payload = json.dumps(body or {}).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            if path == "/token":
                self._token(body)
                return
            receiver.hits.append(Hit(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            auth = self.headers.get("Authorization") or ""
            if path == "/slow":
                time.sleep(1.5)
                with contextlib.suppress(OSError):  # the client gave up long ago
                    self._answer(200)
            elif path.startswith("/status/"):
                status = int(path.rsplit("/", 1)[1])
                self._answer(status, {"error": "as requested"}, {"Retry-After": "120"} if status == 429 else None)
            elif path == "/basic":
                expected = "Basic " + base64.b64encode(b"hook-user:hook-pass").decode()
                self._answer(200 if auth == expected else 401)
            elif path == "/protected":
                token = auth.removeprefix("Bearer ")
                ok = auth.startswith("Bearer ") and token in receiver.issued and token not in receiver.revoked
                self._answer(200 if ok else 401)
            else:
                self._answer(200, {"ok": True})

        def _token(self, body: bytes) -> None:
            expected = "Basic " + base64.b64encode(f"{OAUTH_CLIENT}:{OAUTH_SECRET}".encode()).decode()
            form = dict(part.split("=", 1) for part in body.decode().split("&") if "=" in part)
            if self.headers.get("Authorization") != expected or form.get("grant_type") != "client_credentials":
                self._answer(401, {"error": "invalid_client"})
                return
            receiver.token_requests += 1
            token = f"token-{receiver.token_requests}"
            receiver.issued.append(token)
            self._answer(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

    return Handler


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    """A threaded HTTP server on a free port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(Receiver(0)))
    receiver = Receiver(server.server_address[1])
    server.RequestHandlerClass = _handler_for(receiver)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
