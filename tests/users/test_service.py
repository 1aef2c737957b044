"""Portal users: argon2 passwords, throttled sign-in, sessions stored as hashes, roles, the bootstrap admin, the CLI."""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.config import Settings
from innkeeper.core.runtime import Runtime
from innkeeper.users import service as users
from innkeeper.users.errors import InvalidUser, LoginFailed, LoginThrottled, UserExists
from innkeeper.users.models import User, UserSession
from tests.support.clock import FrozenClock
from tests.support.live import innkeeper_bin

PASSWORD = "correct horse battery"


async def run(runtime: Runtime, work: Any) -> Any:
    async with runtime.sessions() as session:
        result = await work(session)
        await session.commit()
        return result


async def test_passwords_are_argon2_and_sign_in_returns_a_session(runtime: Runtime, clock: FrozenClock) -> None:
    async def create(session: AsyncSession) -> User:
        return await users.create_user(
            session, email="Ann@Example.com", password=PASSWORD, role="MARKETER", clock=clock
        )

    user = await run(runtime, create)
    assert user.email == "ann@example.com"
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash

    async def sign_in(session: AsyncSession) -> tuple[User, str]:
        return await users.sign_in(session, email="ann@example.com", password=PASSWORD, clock=clock)

    signed, token = await run(runtime, sign_in)
    assert signed.ref == user.ref and len(token) >= 40
    async with runtime.sessions() as session:
        [stored] = (await session.execute(select(UserSession))).scalars().all()
        assert stored.token_hash != token and token not in stored.token_hash  # only the hash is kept
        found = await users.session_user(session, token, now=clock.now())
        assert found is not None and found[0].ref == user.ref and found[1].csrf_token
        assert await users.session_user(session, "forged", now=clock.now()) is None
        assert await users.session_user(session, token, now=clock.now() + users.SESSION_LIFETIME) is None

    async def sign_out(session: AsyncSession) -> None:
        await users.sign_out(session, token)

    await run(runtime, sign_out)
    async with runtime.sessions() as session:
        assert await users.session_user(session, token, now=clock.now()) is None


async def test_wrong_passwords_are_throttled(runtime: Runtime, clock: FrozenClock) -> None:
    async def create(session: AsyncSession) -> User:
        return await users.create_user(session, email="bob@example.com", password=PASSWORD, role="VIEWER", clock=clock)

    await run(runtime, create)

    async def attempt(password: str) -> Any:
        async def work(session: AsyncSession) -> Any:
            try:
                return await users.sign_in(session, email="bob@example.com", password=password, clock=clock)
            except (LoginFailed, LoginThrottled) as exc:
                await session.commit()  # the failure count is kept, as the portal's transaction would
                return exc

        return await run(runtime, work)

    for _ in range(users.MAX_FAILURES):
        assert isinstance(await attempt("wrong password!!"), LoginFailed)
    locked = await attempt(PASSWORD)  # even the right password is refused while locked
    assert isinstance(locked, LoginThrottled) and 0 < locked.retry_after <= 15 * 60 + 1
    clock.advance(minutes=16)
    ok = await attempt(PASSWORD)
    assert isinstance(ok, tuple)
    # An unknown email fails the same way and is never throttled into revealing anything.
    assert isinstance(await run(runtime, lambda s: _unknown(s, clock)), LoginFailed)


async def _unknown(session: AsyncSession, clock: FrozenClock) -> Exception:
    try:
        await users.sign_in(session, email="nobody@example.com", password=PASSWORD, clock=clock)
    except LoginFailed as exc:
        return exc
    raise AssertionError("signed in an unknown user")


@pytest.mark.parametrize(
    ("email", "password", "role", "error"),
    [
        ("not-an-email", PASSWORD, "MARKETER", InvalidUser),
        ("a@b.c", "short", "MARKETER", InvalidUser),
        ("a@b.c", PASSWORD, "GOD", InvalidUser),
    ],
)
async def test_bad_users_are_refused(
    runtime: Runtime, clock: FrozenClock, email: str, password: str, role: str, error: type[Exception]
) -> None:
    async def create(session: AsyncSession) -> User:
        return await users.create_user(session, email=email, password=password, role=role, clock=clock)

    with pytest.raises(error):
        await run(runtime, create)


async def test_duplicate_email_conflicts(runtime: Runtime, clock: FrozenClock) -> None:
    async def create(session: AsyncSession) -> User:
        return await users.create_user(session, email="dup@example.com", password=PASSWORD, role="VIEWER", clock=clock)

    await run(runtime, create)
    with pytest.raises(UserExists):
        await run(runtime, create)


def test_permission_table() -> None:
    assert users.allowed("USER_MANAGER", "points_of_sale.write")
    assert users.allowed("ENTERPRISE_ADMIN", "users.write")
    assert not users.allowed("MARKETER", "points_of_sale.write")
    assert not users.allowed("VIEWER", "experiences.write")
    assert users.allowed("VIEWER", "guests.read")
    assert not users.allowed("VIEWER", "debug.read")
    assert not users.allowed("ENTERPRISE_ADMIN", "no.such.permission")


class TestBootstrapAdmin:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return replace(settings, admin_email="root@example.com", admin_password=PASSWORD)

    async def test_the_admin_from_the_environment_exists_once(self, runtime: Runtime, clock: FrozenClock) -> None:
        async with runtime.sessions() as session:
            rows = (await session.execute(select(User))).scalars().all()
        assert [(row.email, row.role) for row in rows] == [("root@example.com", "ENTERPRISE_ADMIN")]

        async def again(session: AsyncSession) -> bool:
            return await users.ensure_admin(session, email="root@example.com", password=PASSWORD, clock=clock)

        assert await run(runtime, again) is False


def test_cli_creates_a_user(tmp_path: Path, db_url: str) -> None:
    env = {**os.environ, "INNKEEPER_DATABASE_URL": db_url, "INNKEEPER_NEW_USER_PASSWORD": PASSWORD}
    env.pop("INNKEEPER_ADMIN_EMAIL", None)
    command = [str(innkeeper_bin()), "users", "create", "cli@example.com", "--role", "USER_MANAGER"]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "created (USER_MANAGER)" in done.stdout and PASSWORD not in done.stdout + done.stderr
    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert again.returncode != 0 and "exists" in again.stderr
