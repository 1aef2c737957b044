"""Connection documents as the /v2/connections API takes them."""

from __future__ import annotations

from typing import Any

from tests.connections.servers import SMTP_PASSWORD, SMTP_USER


def smtp_document(port: int = 2525, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "Mailer",
        "description": "Transactional email",
        "kind": "SMTP_EMAIL",
        "smtp": {
            "host": "127.0.0.1",
            "port": port,
            "security": "NONE",
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "from": "Shop <shop@example.com>",
        },
    }
    doc.update(overrides)
    return doc


def webhook_document(url: str = "https://esp.example/v1/send?list=${listId}", **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "ESP",
        "kind": "WEBHOOK",
        "auth": {"authType": "BASIC", "username": "hook-user", "password": "hook-pass"},
        "request": {"requestType": "POST", "connectionUrl": url, "requestBody": '{"email": "${email}"}'},
        "customHeaders": [{"name": "X-Api-Key", "value": "api-key-plaintext"}, {"name": "X-Team", "value": "crm"}],
        "signing": {"secret": "signing-secret-plaintext"},
        "connectionTimeout": 1000,
        "socketTimeout": 5000,
    }
    doc.update(overrides)
    return doc
