"""Outbound senders behind two Protocols: ``EmailSender`` (smtp, console, null) and ``WebhookSender``
(http, console, null). They never raise for delivery problems; they return a ``DeliveryResult``."""

from __future__ import annotations

from innkeeper.connections.senders._mime import InvalidEmail, build_mime, html_to_text
from innkeeper.connections.senders._types import (
    BasicAuth,
    DeliveryOutcome,
    DeliveryResult,
    EmailMessage,
    EmailSender,
    OAuth2ClientCredentials,
    Probe,
    Signing,
    SmtpConfig,
    SmtpSecurity,
    WebhookRequest,
    WebhookSender,
)
from innkeeper.connections.senders.console import ConsoleEmailSender, ConsoleWebhookSender
from innkeeper.connections.senders.http import HttpWebhookSender, TokenCache, signature
from innkeeper.connections.senders.null import NullEmailSender, NullWebhookSender
from innkeeper.connections.senders.smtp import SmtpEmailSender

__all__ = [
    "BasicAuth",
    "ConsoleEmailSender",
    "ConsoleWebhookSender",
    "DeliveryOutcome",
    "DeliveryResult",
    "EmailMessage",
    "EmailSender",
    "HttpWebhookSender",
    "InvalidEmail",
    "NullEmailSender",
    "NullWebhookSender",
    "OAuth2ClientCredentials",
    "Probe",
    "Signing",
    "SmtpConfig",
    "SmtpEmailSender",
    "SmtpSecurity",
    "TokenCache",
    "WebhookRequest",
    "WebhookSender",
    "build_mime",
    "html_to_text",
    "signature",
]
