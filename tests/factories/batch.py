"""Builders for batch files and records (spec cdp.md §10.7–10.8)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import uuid
from typing import Any


def record(schema: str, value: dict[str, Any], *, mode: str = "upsert", ref: str | None = None) -> dict[str, Any]:
    """One import line as a dict."""
    return {"ref": ref or str(uuid.uuid4()), "schema": schema, "mode": mode, "value": value}


def guest_record(n: int, *, ref: str | None = None, guest_ref: str | None = None, **value: Any) -> dict[str, Any]:
    """A customer with a CRM identifier and an email (``guest_ref``: its ``value.ref``)."""
    body: dict[str, Any] = {
        **({"ref": guest_ref} if guest_ref else {}),
        "guestType": "customer",
        "firstName": f"Guest{n}",
        "email": f"guest{n}@example.com",
        "identifiers": [{"provider": "CRM", "id": f"CRM-{n}"}],
        **value,
    }
    return record("guest", body, ref=ref)


def order_record(n: int, *, guest: int, mode: str = "insert", ref: str | None = None) -> dict[str, Any]:
    """An order of the guest with CRM id ``CRM-{guest}`` and one item."""
    return record(
        "order",
        {
            "referenceId": f"ORDER-{n}",
            "channel": "WEB",
            "pointOfSale": "spinbet.com",
            "status": "PURCHASED",
            "orderedAt": "2025-03-07T16:15:11.000Z",
            "currencyCode": "EUR",
            "price": 100,
            "paymentType": "Card",
            "cardType": "Visa",
            "contact": {"identifiers": [{"provider": "CRM", "id": f"CRM-{guest}"}]},
            "orderItems": [
                {
                    "type": "90_EXACT",
                    "productId": "CORRECT_SCORE",
                    "name": "Exact score after 90 minutes",
                    "orderedAt": "2025-03-07T16:15:11.000Z",
                    "quantity": 1,
                    "price": 100.0,
                    "currencyCode": "EUR",
                    "referenceId": f"ORDER-{n}-1",
                    "status": "PURCHASED",
                }
            ],
        },
        mode=mode,
        ref=ref,
    )


def ndjson(lines: list[dict[str, Any] | str]) -> bytes:
    """NDJSON bytes; strings are written as they are (broken lines)."""
    return "".join((x if isinstance(x, str) else json.dumps(x, separators=(",", ":"))) + "\n" for x in lines).encode()


def gz(data: bytes) -> bytes:
    """Gzip bytes (fixed mtime: the same input gives the same checksum)."""
    return gzip.compress(data, mtime=0)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
