"""Secrets at rest: the generated key file, INNKEEPER_SECRET_KEY, rotation, a lost key."""

from __future__ import annotations

import stat
import threading
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.connections import service
from innkeeper.connections.errors import SecretsUnavailable
from innkeeper.connections.secrets import MASK, SecretBox, load_or_create_key
from innkeeper.connections.service import Outbound, RenderedRequest, deliver
from innkeeper.core.db import in_transaction
from innkeeper.core.runtime import Runtime
from tests.connections.test_api import create
from tests.factories.connections import smtp_document
from tests.support.clock import FrozenClock


def test_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(load_or_create_key(path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]
    box = SecretBox(None, key_file=path)
    token = box.seal({"smtp.password": "hunter2"})
    assert token is not None and "hunter2" not in token
    assert SecretBox(None, key_file=path).open(token) == {"smtp.password": "hunter2"}


def test_configured_keys_rotate(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox(old, key_file=tmp_path / "unused").seal({"a": "1"})
    rotated = SecretBox(f"{new},{old}", key_file=tmp_path / "unused")
    assert rotated.open(token) == {"a": "1"}
    assert SecretBox(new, key_file=tmp_path / "unused").open(rotated.seal({"a": "1"})) == {"a": "1"}
    assert not (tmp_path / "unused").exists()
    with pytest.raises(SecretsUnavailable):
        SecretBox(new, key_file=tmp_path / "unused").open(token)
    with pytest.raises(ValueError, match="INNKEEPER_SECRET_KEY"):
        SecretBox("not-a-key", key_file=tmp_path / "unused").seal({"a": "1"})


async def test_a_changed_key_fails_delivery_and_masked_updates(
    client: httpx.AsyncClient, admin_auth: tuple[str, str], runtime: Runtime
) -> None:
    created = await create(client, admin_auth, smtp_document())
    other = replace(runtime.settings, secret_key=Fernet.generate_key().decode())
    outbound = Outbound.from_settings(other, clock=FrozenClock())
    result = await deliver(runtime.sessions, created["ref"], RenderedRequest(body="{}"), outbound=outbound)
    assert result.permanent and "decrypted" in (result.reason or "")
    assert created["smtp"]["password"] == MASK

    async def keep_masked(session: AsyncSession) -> object:
        return await service.update_connection(
            session,
            created["ref"],
            {**smtp_document(), "smtp": {**created["smtp"]}},
            secrets=outbound.secrets,
            actor_ref=None,
            clock=FrozenClock(),
        )

    with pytest.raises(SecretsUnavailable):
        await in_transaction(runtime.sessions, keep_masked)
