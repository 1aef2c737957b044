"""Null senders: accept and drop everything (tests, dry runs)."""

from __future__ import annotations

from collections import deque

from innkeeper.connections.senders._types import DeliveryResult, EmailMessage, WebhookRequest, sent


class NullEmailSender:
    """Drops every email, reporting success; keeps the last 100 in ``sent`` for inspection."""

    def __init__(self) -> None:
        self.sent: deque[EmailMessage] = deque(maxlen=100)

    async def send(self, message: EmailMessage) -> DeliveryResult:
        """Record and drop the message."""
        self.sent.append(message)
        return sent("dropped by the null sender")


class NullWebhookSender:
    """Drops every request, reporting success; keeps the last 100 in ``sent`` for inspection."""

    def __init__(self) -> None:
        self.sent: deque[WebhookRequest] = deque(maxlen=100)

    async def send(self, request: WebhookRequest) -> DeliveryResult:
        """Record and drop the request."""
        self.sent.append(request)
        return sent("dropped by the null sender")
