"""Secrets at rest: Fernet encryption with a key from INNKEEPER_SECRET_KEY or a generated key file.

When ``INNKEEPER_SECRET_KEY`` is unset, the first encryption creates ``<data dir>/secret.key``
(mode 0600) and later processes read it, so ``innkeeper serve`` works with no configuration.
The setting may hold several comma-separated keys: the first encrypts, all decrypt (rotation).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from innkeeper.connections.errors import SecretsUnavailable
from innkeeper.core.config import Settings

log = logging.getLogger(__name__)

MASK = "********"
KEY_FILE = "secret.key"


class SecretBox:
    """Encrypts and decrypts a connection's secrets (a flat ``name -> value`` mapping)."""

    def __init__(self, keys: str | None, *, key_file: Path) -> None:
        self._keys = keys
        self._key_file = key_file
        self._fernet: MultiFernet | None = None

    def _cipher(self) -> MultiFernet:
        # Loaded lazily: reading connections, or rejecting invalid input, never needs the key.
        if self._fernet is None:
            self._fernet = _multi_fernet(self._keys, self._key_file)
        return self._fernet

    def seal(self, values: dict[str, str]) -> str | None:
        """Encrypt the secrets into one token (None when there is nothing to keep)."""
        if not values:
            return None
        plain = json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
        return self._cipher().encrypt(plain).decode("ascii")

    def open(self, token: str | None) -> dict[str, str]:
        """Decrypt a token written by :meth:`seal`."""
        if not token:
            return {}
        try:
            plain = self._cipher().decrypt(token.encode("ascii"))
        except (InvalidToken, ValueError):
            raise SecretsUnavailable(
                "Stored secrets cannot be decrypted with the configured key",
                developer_message="INNKEEPER_SECRET_KEY (or the secret.key file) changed; send the secrets again",
            ) from None
        values = json.loads(plain)
        return {str(k): str(v) for k, v in values.items()}


def secret_box(settings: Settings) -> SecretBox:
    """The process's secret box for these settings (one per key / data dir)."""
    return _box(settings.secret_key, str(Path(settings.data_dir).resolve()))


@functools.lru_cache(maxsize=16)
def _box(keys: str | None, data_dir: str) -> SecretBox:
    return SecretBox(keys, key_file=Path(data_dir) / KEY_FILE)


def _multi_fernet(keys: str | None, key_file: Path) -> MultiFernet:
    if keys:
        parts = [part.strip() for part in keys.split(",") if part.strip()]
        try:
            return MultiFernet([Fernet(part) for part in parts])
        except ValueError:
            raise ValueError(
                "INNKEEPER_SECRET_KEY must be one or more comma-separated Fernet keys "
                "(32 url-safe base64-encoded bytes, e.g. from Fernet.generate_key())"
            ) from None
    return MultiFernet([Fernet(load_or_create_key(key_file))])


def load_or_create_key(path: Path) -> bytes:
    """Read the key file, creating it (mode 0600) when missing; safe when processes race."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, Fernet.generate_key() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # link() fails when another process created the file first: theirs wins.
            os.link(temp, path)
            log.info("generated a secret key for connection secrets in %s", path)
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o); chmod 600 it", path, mode)
    key = path.read_bytes().strip()
    try:
        Fernet(key)
    except ValueError:
        raise ValueError(f"{path} does not hold a valid Fernet key") from None
    return key
