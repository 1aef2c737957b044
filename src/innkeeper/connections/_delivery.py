"""Delivery: load a connection with its secrets, turn a rendered request into an email or an HTTP
request, and send it through the sender the settings pick. Independent of any outbox loop."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from innkeeper.connections import _records
from innkeeper.connections.errors import ConnectionNotFound, SecretsUnavailable
from innkeeper.connections.repository import ConnectionRepository
from innkeeper.connections.secrets import SecretBox, secret_box
from innkeeper.connections.senders import (
    BasicAuth,
    ConsoleEmailSender,
    ConsoleWebhookSender,
    DeliveryResult,
    EmailMessage,
    EmailSender,
    HttpWebhookSender,
    NullEmailSender,
    NullWebhookSender,
    OAuth2ClientCredentials,
    Probe,
    Signing,
    SmtpConfig,
    SmtpEmailSender,
    WebhookRequest,
    WebhookSender,
)
from innkeeper.connections.senders._types import fail, skip
from innkeeper.core.clock import Clock, iso
from innkeeper.core.config import Settings
from innkeeper.core.ids import is_ref

EmailMode = Literal["smtp", "console", "null"]
WebhookMode = Literal["http", "console", "null"]
MAX_BODY = 1024 * 1024
_EMAIL_MODES: dict[str, EmailMode] = {"smtp": "smtp", "console": "console", "null": "null"}
_WEBHOOK_MODES: dict[str, WebhookMode] = {"http": "http", "console": "console", "null": "null"}


@dataclass(slots=True)
class Outbound:
    """What delivery needs, built once per process: the secret box, the clock and the senders.

    ``email_mode`` / ``webhook_mode`` pick the implementations (INNKEEPER_EMAIL_SENDER /
    INNKEEPER_WEBHOOK_SENDER). "Test connection" always uses the real SMTP / HTTP transport.
    """

    secrets: SecretBox
    clock: Clock
    email_mode: EmailMode = "smtp"
    webhook_mode: WebhookMode = "http"
    tls_context: ssl.SSLContext | None = None
    http: HttpWebhookSender = field(init=False)
    _webhook: WebhookSender = field(init=False)
    _email: EmailSender | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.http = HttpWebhookSender(clock=self.clock)
        self._webhook = self.http
        if self.webhook_mode == "console":
            self._webhook = ConsoleWebhookSender()
        elif self.webhook_mode == "null":
            self._webhook = NullWebhookSender()
        if self.email_mode == "console":
            self._email = ConsoleEmailSender(clock=self.clock)
        elif self.email_mode == "null":
            self._email = NullEmailSender()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> Outbound:
        """The outbound side configured by the settings."""
        email = _EMAIL_MODES.get(settings.email_sender)
        webhook = _WEBHOOK_MODES.get(settings.webhook_sender)
        if email is None:
            raise ValueError("INNKEEPER_EMAIL_SENDER must be smtp, console or null")
        if webhook is None:
            raise ValueError("INNKEEPER_WEBHOOK_SENDER must be http, console or null")
        return cls(secrets=secret_box(settings), clock=clock, email_mode=email, webhook_mode=webhook)

    def smtp(self, config: SmtpConfig) -> SmtpEmailSender:
        """A real SMTP sender for one connection."""
        return SmtpEmailSender(config, clock=self.clock, tls_context=self.tls_context)

    def email_sender(self, config: SmtpConfig) -> EmailSender:
        """The email sender the settings pick, for one connection."""
        return self._email if self._email is not None else self.smtp(config)

    def webhook_sender(self) -> WebhookSender:
        """The webhook sender the settings pick."""
        return self._webhook


@dataclass(frozen=True, slots=True)
class RenderedRequest:
    """A request a triggered flow rendered for a connection.

    ``body``: for SMTP_EMAIL the JSON ``{"from"?, "to", "cc"?, "bcc"?, "replyTo"?, "subject",
    "html"?, "text"?, "headers"?}``; for WEBHOOK the request body. ``headers``: extra HTTP headers
    (the flow's API-request tab). ``render`` fills the ``${…}`` variables of the connection's URL and
    header values. ``idempotency_key`` / ``attempt`` become ``Idempotency-Key`` and
    ``X-Innkeeper-Delivery-Attempt`` (HTTP) or the ``Message-ID`` (SMTP).
    """

    body: str | bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    render: Callable[[str], str] | None = None
    idempotency_key: str | None = None
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Target:
    """A connection loaded for delivery, secrets decrypted. Build it in a short transaction, send after."""

    ref: str
    name: str
    kind: Literal["SMTP_EMAIL", "WEBHOOK"]
    archived: bool
    config: dict[str, Any]
    secrets: dict[str, str] = field(repr=False)

    def timeouts(self) -> tuple[float, float]:
        """(connect, socket) timeouts in seconds."""
        return (
            float(self.config.get("connectionTimeout") or 2000) / 1000,
            float(self.config.get("socketTimeout") or 10000) / 1000,
        )

    def smtp_config(self) -> SmtpConfig:
        """The SMTP settings of an SMTP_EMAIL connection."""
        smtp = self.config.get("smtp") or {}
        connect, socket = self.timeouts()
        return SmtpConfig(
            host=str(smtp.get("host")),
            port=int(smtp.get("port") or 587),
            security=smtp.get("security") or "STARTTLS",
            username=smtp.get("username") or None,
            password=self.secrets.get("smtp.password"),
            connect_timeout=connect,
            timeout=socket,
        )

    def headers(self, render: Callable[[str], str] | None) -> list[tuple[str, str]]:
        """The connection's custom headers with their values (secret ones decrypted), rendered."""
        out = []
        for header in self.config.get("customHeaders") or []:
            name = str(header["name"])
            value = self.secrets.get(_records.header_path(name), "") if header.get("secret") else header.get("value")
            value = str(value or "")
            out.append((name, render(value) if render else value))
        return out


async def load_target(session: AsyncSession, ref: str, *, secrets: SecretBox) -> Target:
    """Load a connection and decrypt its secrets (raises ConnectionNotFound / SecretsUnavailable)."""
    row = await ConnectionRepository(session).get(ref) if is_ref(ref) else None
    if row is None:
        raise ConnectionNotFound("Not Found", developer_message=f"no connection with ref {ref[:64]!r}")
    return Target(
        ref=row.ref,
        name=row.name,
        kind="SMTP_EMAIL" if row.kind == "SMTP_EMAIL" else "WEBHOOK",
        archived=row.archived,
        config=dict(row.config),
        secrets=secrets.open(row.secrets),
    )


async def deliver(
    sessions: async_sessionmaker[AsyncSession], connection_ref: str, rendered: RenderedRequest, *, outbound: Outbound
) -> DeliveryResult:
    """Send a rendered request through a connection. The database session is closed before sending.

    A missing or archived connection, or secrets that no longer decrypt, are permanent failures.
    """
    try:
        async with sessions() as session:
            target = await load_target(session, connection_ref, secrets=outbound.secrets)
    except ConnectionNotFound:
        return fail("connection not found")
    except SecretsUnavailable:
        return fail("connection secrets cannot be decrypted with the configured key")
    if target.archived:
        return fail("connection archived")
    return await send(target, rendered, outbound=outbound)


async def send(target: Target, rendered: RenderedRequest, *, outbound: Outbound) -> DeliveryResult:
    """Send a rendered request through an already loaded connection."""
    if target.kind == "SMTP_EMAIL":
        message = email_from_rendered(target, rendered)
        if isinstance(message, DeliveryResult):
            return message
        return await outbound.email_sender(target.smtp_config()).send(message)
    request = webhook_from_rendered(target, rendered)
    if isinstance(request, DeliveryResult):
        return request
    return await outbound.webhook_sender().send(request)


def email_from_rendered(target: Target, rendered: RenderedRequest) -> EmailMessage | DeliveryResult:
    """Parse the rendered email JSON (a DeliveryResult when it cannot be sent)."""
    try:
        data = json.loads(rendered.body)
    except (ValueError, UnicodeDecodeError):
        return fail("the rendered email is not valid JSON")
    if not isinstance(data, dict):
        return fail("the rendered email must be a JSON object")
    try:
        to, cc, bcc, reply_to = (_addresses(data.get(k), k) for k in ("to", "cc", "bcc", "replyTo"))
        subject, html, text = (_text(data.get(k), k) for k in ("subject", "html", "text"))
        sender = _text(data.get("from"), "from") or (target.config.get("smtp") or {}).get("from")
        extra = data.get("headers") or {}
        if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
            raise ValueError("headers: must be an object of strings")
    except ValueError as exc:
        return fail(str(exc))
    if not to and not cc and not bcc:
        return skip("no recipients")
    if subject is None:
        return fail("subject: required")
    if html is None and text is None:
        return fail("html or text: required")
    if not sender:
        return fail("from: required (in the email or as smtp.from of the connection)")
    headers = [*target.headers(rendered.render), *((str(k), v) for k, v in extra.items())]
    return EmailMessage(
        sender=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        subject=subject,
        html=html,
        text=text,
        headers=tuple(headers),
        message_id=rendered.idempotency_key,
    )


def _addresses(value: Any, name: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(v for v in value if v)
    raise ValueError(f"{name}: must be an address or a list of addresses")


def _text(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{name}: must be a string")


def webhook_from_rendered(target: Target, rendered: RenderedRequest) -> WebhookRequest | DeliveryResult:
    """The HTTP request for a WEBHOOK connection (a DeliveryResult when it cannot be sent)."""
    request = target.config.get("request") or {}
    url = str(request.get("connectionUrl") or "")
    url = rendered.render(url) if rendered.render else url
    if "${" in url or not _http_url(url):
        return fail("the rendered URL is not an absolute http(s) URL")
    body = rendered.body.encode("utf-8") if isinstance(rendered.body, str) else rendered.body
    if len(body) > MAX_BODY:
        return fail("the rendered body is larger than 1 MiB")
    headers = target.headers(rendered.render)
    names = {name.lower() for name, _ in headers}
    headers += [(k, v) for k, v in rendered.headers.items() if k.lower() not in names]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    if rendered.idempotency_key:
        headers.append(("Idempotency-Key", rendered.idempotency_key))
        headers.append(("X-Innkeeper-Delivery-Attempt", str(rendered.attempt)))
    for name, value in headers:
        if any(c in value for c in "\r\n\x00") or any(c in name for c in "\r\n\x00: "):
            return fail("a header contains a line break or an invalid name")
    connect, socket = target.timeouts()
    return WebhookRequest(
        method=str(request.get("requestType") or "POST"),
        url=url,
        body=body,
        headers=tuple(headers),
        auth=_auth(target),
        signing=_signing(target),
        connect_timeout=connect,
        read_timeout=socket,
    )


def _http_url(url: str) -> bool:
    if any(c.isspace() for c in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _auth(target: Target) -> BasicAuth | OAuth2ClientCredentials | None:
    auth = target.config.get("auth") or {}
    if auth.get("authType") == "BASIC":
        return BasicAuth(str(auth.get("username") or ""), target.secrets.get("auth.password", ""))
    if auth.get("authType") == "OAUTH2_CLIENT_CREDENTIALS":
        return OAuth2ClientCredentials(
            token_url=str(auth.get("tokenUrl")),
            client_id=str(auth.get("clientId")),
            client_secret=target.secrets.get("auth.clientSecret", ""),
            scope=auth.get("scope") or None,
        )
    return None


def _signing(target: Target) -> Signing | None:
    signing = target.config.get("signing")
    secret = target.secrets.get("signing.secret")
    if not signing or not secret:
        return None
    return Signing(secret=secret, header=str(signing.get("header") or "X-Innkeeper-Signature"))


# --- "test connection" ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What "test connection" found: the result and the protocol steps that succeeded."""

    ref: str
    kind: Literal["SMTP_EMAIL", "WEBHOOK"]
    result: DeliveryResult
    steps: tuple[str, ...]


async def check_connection(
    sessions: async_sessionmaker[AsyncSession],
    ref: str,
    *,
    outbound: Outbound,
    to: str | None = None,
    body: str | None = None,
) -> CheckReport:
    """SMTP: connect, EHLO, STARTTLS/TLS, AUTH, and mail a test message to ``to`` when given.
    WEBHOOK: send a small JSON body (or ``body``) and report the status code and latency.

    Uses the real transports whatever INNKEEPER_EMAIL_SENDER / INNKEEPER_WEBHOOK_SENDER say.
    Raises ConnectionNotFound / SecretsUnavailable; delivery problems are in the report.
    """
    async with sessions() as session:
        target = await load_target(session, ref, secrets=outbound.secrets)
    probe: Probe
    if target.kind == "SMTP_EMAIL":
        sender = outbound.smtp(target.smtp_config())
        message: EmailMessage | None = None
        if to:
            origin = (target.config.get("smtp") or {}).get("from")
            if not origin:
                return CheckReport(target.ref, target.kind, fail("smtp.from: required to send a test email"), ())
            message = EmailMessage(
                sender=origin,
                to=(to,),
                subject="Innkeeper test email",
                text=f"This is a test email from the Innkeeper connection {target.name!r}.\n",
                html=f"<p>This is a test email from the Innkeeper connection <b>{_html(target.name)}</b>.</p>",
            )
        probe = await sender.probe(message)
    else:
        payload = body or json.dumps(
            {"type": "innkeeper.connection.test", "connectionRef": target.ref, "sentAt": iso(outbound.clock.now())}
        )
        request = webhook_from_rendered(target, RenderedRequest(body=payload, render=_strip_variables))
        if isinstance(request, DeliveryResult):
            return CheckReport(target.ref, target.kind, request, ())
        probe = await outbound.http.probe(request)
    return CheckReport(target.ref, target.kind, probe.result, probe.steps)


def _strip_variables(value: str) -> str:
    # A test has no flow to fill ${…}: send each variable's name in its place.
    return re.sub(r"\$\{([^}]*)\}", r"\1", value)


def _html(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
