"""HMAC-signed, expiring URLs for a batch's upload and error log (our stand-in for S3 presigning)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

Purpose = Literal["upload", "log"]


def signature(secret: str, ref: str, purpose: Purpose, expires: int) -> str:
    """The hex HMAC-SHA256 of ``purpose:ref:expires`` under the batch's own secret."""
    message = f"{purpose}:{ref}:{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def valid(secret: str, ref: str, purpose: Purpose, expires: int, given: str) -> bool:
    """Whether ``given`` is the signature of this URL (constant-time)."""
    return hmac.compare_digest(signature(secret, ref, purpose, expires), given.lower())
