"""SMTP delivery with aiosmtplib: STARTTLS / implicit TLS, AUTH, timeouts, classified failures."""

from __future__ import annotations

import re
import ssl
import time
from email.message import EmailMessage as MimeMessage

import aiosmtplib

from innkeeper.connections.senders._mime import InvalidEmail, build_mime, envelope_address
from innkeeper.connections.senders._types import (
    DeliveryResult,
    EmailMessage,
    Probe,
    SmtpConfig,
    fail,
    retry,
    sent,
    skip,
)
from innkeeper.core.clock import Clock

MAX_RECIPIENTS = 50
_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


class _Steps:
    """The protocol steps that succeeded, for the "test connection" report."""

    def __init__(self) -> None:
        self.done: list[str] = []

    def add(self, step: str) -> None:
        self.done.append(step)


class SmtpEmailSender:
    """Sends through one SMTP server (an SMTP_EMAIL connection's settings)."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        clock: Clock,
        tls_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        # Tests pass a context trusting their own certificate; production uses the system CAs.
        self.tls_context = tls_context
        self.local_hostname = local_hostname

    async def send(self, message: EmailMessage) -> DeliveryResult:
        """Deliver one message; every failure is reported, never raised."""
        started = time.perf_counter()
        result = await self._run(message, _Steps())
        return _timed(result, started)

    async def probe(self, message: EmailMessage | None = None) -> Probe:
        """Test the connection: connect, EHLO, STARTTLS/TLS, AUTH, and send ``message`` when given."""
        started = time.perf_counter()
        steps = _Steps()
        result = await self._run(message, steps)
        return Probe(_timed(result, started), tuple(steps.done))

    async def _run(self, message: EmailMessage | None, steps: _Steps) -> DeliveryResult:
        try:
            prepared = self._prepare(message) if message is not None else None
        except InvalidEmail as exc:
            return fail(str(exc))
        if prepared is not None and not prepared[2]:
            return skip("no recipients")
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.security == "TLS",
            start_tls=False,
            timeout=config.timeout,
            tls_context=self.tls_context,
            local_hostname=self.local_hostname,
        )
        try:
            await client.connect(timeout=config.connect_timeout)
            steps.add("connect" if config.security != "TLS" else "connect+TLS")
            await client.ehlo()
            steps.add("EHLO")
            if config.security == "STARTTLS":
                await client.starttls()
                steps.add("STARTTLS")
            if config.username:
                await client.login(config.username, config.password or "")
                steps.add("AUTH")
            if prepared is None:
                return sent("connection verified")
            mime, envelope_from, recipients = prepared
            refused, _ = await client.send_message(mime, sender=envelope_from, recipients=recipients)
            steps.add("send")
            if refused:
                # Some recipients were accepted: a retry would mail them twice.
                return sent(f"accepted, {len(refused)} of {len(recipients)} recipients refused")
            return sent("accepted")
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return _refused(exc)
        except aiosmtplib.SMTPResponseException as exc:
            return _by_code(exc.code, _what(exc), exc.message)
        except aiosmtplib.SMTPNotSupported:
            return fail("the server does not support the configured security or authentication")
        except ssl.SSLCertVerificationError:
            return fail("TLS certificate verification failed")
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return retry("timed out")
        except ssl.SSLError:
            return fail("TLS handshake failed")
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, OSError):
            return retry("connection failed")
        except aiosmtplib.SMTPException:
            return retry("SMTP error")
        finally:
            if client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()

    def _prepare(self, message: EmailMessage) -> tuple[MimeMessage, str, list[str]]:
        recipients = [envelope_address(a) for a in (*message.to, *message.cc, *message.bcc)]
        if len(recipients) > MAX_RECIPIENTS:
            raise InvalidEmail(f"at most {MAX_RECIPIENTS} recipients")
        mime = build_mime(message, now=self.clock.now())
        return mime, envelope_address(message.sender), recipients


def _timed(result: DeliveryResult, started: float) -> DeliveryResult:
    return DeliveryResult(
        result.outcome,
        result.reason,
        result.status_code,
        result.retry_after,
        round((time.perf_counter() - started) * 1000, 1),
        result.response_excerpt,
    )


def _what(exc: aiosmtplib.SMTPResponseException) -> str:
    kinds: dict[type[Exception], str] = {
        aiosmtplib.SMTPAuthenticationError: "authentication refused",
        aiosmtplib.SMTPSenderRefused: "sender refused",
        aiosmtplib.SMTPRecipientRefused: "recipient refused",
        aiosmtplib.SMTPDataError: "message refused",
        aiosmtplib.SMTPHeloError: "EHLO refused",
        aiosmtplib.SMTPConnectResponseError: "connection refused by the server",
    }
    for cls, label in kinds.items():
        if isinstance(exc, cls):
            return label
    return "command refused"


def _by_code(code: int, what: str, server_message: str) -> DeliveryResult:
    # The server's text may quote addresses: only the (enhanced) status code goes in the reason.
    enhanced = _ENHANCED.search(server_message or "")
    reason = f"SMTP {code} {enhanced.group(1) + ' ' if enhanced else ''}{what}"
    if 400 <= code < 500:
        return retry(reason, status_code=code)
    if code < 0:  # aiosmtplib uses -1 for "no reply" (disconnect mid-command)
        return retry(f"{what}: no reply", status_code=None)
    return fail(reason, status_code=code)


def _refused(exc: aiosmtplib.SMTPRecipientsRefused) -> DeliveryResult:
    if not exc.recipients:
        return fail("all recipients refused")
    # A temporary refusal for any recipient makes the whole message retryable: nothing was sent.
    temporary = [r for r in exc.recipients if 400 <= r.code < 500]
    chosen = temporary[0] if temporary else exc.recipients[0]
    return _by_code(chosen.code, "recipient refused", chosen.message)
