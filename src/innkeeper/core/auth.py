"""Credential primitives: key generation and hashing. No HTTP here."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_client_key() -> str:
    """A 32-character public client key, like Sitecore's."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(32))


def new_api_token() -> str:
    """A high-entropy secret API token."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 digest of a token.

    Tokens are 256-bit random values, so a fast digest is enough: there is nothing to
    brute-force, unlike a human password.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
