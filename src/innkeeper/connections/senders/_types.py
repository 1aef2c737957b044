"""What senders take and return, and the two sender Protocols."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

DeliveryOutcome = Literal["sent", "retryable", "permanent", "skipped"]
SmtpSecurity = Literal["NONE", "STARTTLS", "TLS"]
EXCERPT_LIMIT = 4096
RETRY_AFTER_CAP = 3600.0


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """How one delivery attempt ended.

    ``reason`` never contains personal data (no addresses, no bodies): it is safe to log and to
    show in operational data. ``response_excerpt`` (first 4 KiB of an HTTP answer) may contain
    anything the receiver wrote: store it, don't log it.
    """

    outcome: DeliveryOutcome
    reason: str | None = None
    status_code: int | None = None
    retry_after: float | None = None
    latency_ms: float = 0.0
    response_excerpt: str | None = None

    @property
    def ok(self) -> bool:
        """The receiver accepted the message."""
        return self.outcome == "sent"

    @property
    def retryable(self) -> bool:
        """A later attempt may succeed (network error, timeout, 408/425/429/5xx, SMTP 4xx)."""
        return self.outcome == "retryable"

    @property
    def permanent(self) -> bool:
        """Retrying cannot help (other 4xx, SMTP 5xx, invalid recipient, bad configuration)."""
        return self.outcome == "permanent"


def sent(reason: str | None = None, *, status_code: int | None = None, excerpt: str | None = None) -> DeliveryResult:
    """A successful delivery."""
    return DeliveryResult("sent", reason, status_code, response_excerpt=excerpt)


def retry(
    reason: str, *, status_code: int | None = None, retry_after: float | None = None, excerpt: str | None = None
) -> DeliveryResult:
    """A failure a later attempt may fix."""
    if retry_after is not None:
        retry_after = min(max(retry_after, 0.0), RETRY_AFTER_CAP)
    return DeliveryResult("retryable", reason, status_code, retry_after, response_excerpt=excerpt)


def fail(reason: str, *, status_code: int | None = None, excerpt: str | None = None) -> DeliveryResult:
    """A failure retrying cannot fix."""
    return DeliveryResult("permanent", reason, status_code, response_excerpt=excerpt)


def skip(reason: str) -> DeliveryResult:
    """Nothing to send (e.g. an email without recipients)."""
    return DeliveryResult("skipped", reason)


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """A rendered email: addresses as ``addr@example.com`` or ``Name <addr@example.com>``."""

    sender: str
    to: tuple[str, ...]
    subject: str
    html: str | None = None
    text: str | None = None
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how an SMTP_EMAIL connection sends (timeouts in seconds)."""

    host: str
    port: int
    security: SmtpSecurity = "STARTTLS"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    connect_timeout: float = 2.0
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """HTTP Basic credentials."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class OAuth2ClientCredentials:
    """OAuth 2.0 client-credentials grant (client authenticated with HTTP Basic at the token URL)."""

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class Signing:
    """HMAC-SHA256 signature of the body, sent as ``<header>: t=<unix>,v1=<hex>``."""

    secret: str = field(repr=False)
    header: str = "X-Innkeeper-Signature"


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A rendered HTTP request (timeouts in seconds)."""

    method: str
    url: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    auth: BasicAuth | OAuth2ClientCredentials | None = None
    signing: Signing | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 10.0


class EmailSender(Protocol):
    """Sends one email; never raises for delivery problems, it reports them."""

    async def send(self, message: EmailMessage) -> DeliveryResult:
        """Deliver the message and say how it went."""
        ...


class WebhookSender(Protocol):
    """Sends one HTTP request; never raises for delivery problems, it reports them."""

    async def send(self, request: WebhookRequest) -> DeliveryResult:
        """Deliver the request and say how it went."""
        ...


@dataclass(frozen=True, slots=True)
class Probe:
    """The outcome of a "test connection": the delivery result and the steps that succeeded."""

    result: DeliveryResult
    steps: tuple[str, ...] = ()
