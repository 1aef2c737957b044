"""Portal users: argon2 passwords, throttled sign-in, sessions stored as hashes, roles, the bootstrap admin, the CLI,
and user management (who may change whom, the last Enterprise Admin)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.config import Settings
from innkeeper.core.db import in_transaction
from innkeeper.core.runtime import Runtime
from innkeeper.users import service as users
from innkeeper.users.errors import (
    InvalidUser,
    LoginFailed,
    LoginThrottled,
    UserChangeForbidden,
    UserExists,
    UserNotFound,
)
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


# --- user management -------------------------------------------------------------------


async def make(runtime: Runtime, clock: FrozenClock, email: str, role: str) -> str:
    async def create(session: AsyncSession) -> str:
        return (await users.create_user(session, email=email, password=PASSWORD, role=role, clock=clock)).ref

    ref: str = await run(runtime, create)
    return ref


def test_only_an_enterprise_admin_gives_or_manages_the_admin_role() -> None:
    assert users.assignable_roles("ENTERPRISE_ADMIN") == users.ROLES
    assert users.assignable_roles("USER_MANAGER") == ("USER_MANAGER", "MARKETER", "VIEWER")
    assert users.assignable_roles("MARKETER") == ()
    assert users.may_manage("ENTERPRISE_ADMIN", "ENTERPRISE_ADMIN")
    assert users.may_manage("USER_MANAGER", "MARKETER") and users.may_manage("USER_MANAGER", "USER_MANAGER")
    assert not users.may_manage("USER_MANAGER", "ENTERPRISE_ADMIN")
    assert not users.may_manage("VIEWER", "VIEWER")


async def test_role_changes_disabling_and_password_resets(runtime: Runtime, clock: FrozenClock) -> None:
    admin = await make(runtime, clock, "admin@example.com", "ENTERPRISE_ADMIN")
    ann = await make(runtime, clock, "ann@example.com", "VIEWER")

    async def sign_in(session: AsyncSession) -> tuple[User, str]:
        return await users.sign_in(session, email="ann@example.com", password=PASSWORD, clock=clock)

    _, token = await run(runtime, sign_in)

    async def promote(session: AsyncSession) -> User:
        return await users.change_role(session, ann, actor_ref=admin, role="MARKETER", clock=clock)

    assert (await run(runtime, promote)).role == "MARKETER"

    async def disable(session: AsyncSession) -> User:
        return await users.set_disabled(session, ann, actor_ref=admin, disabled=True, clock=clock)

    assert (await run(runtime, disable)).disabled_at == clock.now()
    async with runtime.sessions() as session:
        assert await users.session_user(session, token, now=clock.now()) is None
        assert (await session.execute(select(UserSession).where(UserSession.user_ref == ann))).first() is None
        assert [(u.email, u.disabled_at is not None) for u in await users.list_users(session)] == [
            ("admin@example.com", False),
            ("ann@example.com", True),
        ]
    with pytest.raises(LoginFailed):
        await run(runtime, sign_in)

    async def enable(session: AsyncSession) -> User:
        return await users.set_disabled(session, ann, actor_ref=admin, disabled=False, clock=clock)

    assert (await run(runtime, enable)).disabled_at is None
    _, token = await run(runtime, sign_in)

    async def reset(session: AsyncSession) -> User:
        return await users.reset_password(session, ann, actor_ref=admin, password="another fine password", clock=clock)

    await run(runtime, reset)
    async with runtime.sessions() as session:
        assert await users.session_user(session, token, now=clock.now()) is None  # signed out by the reset
    with pytest.raises(LoginFailed):
        await run(runtime, sign_in)

    async def missing(session: AsyncSession) -> User:
        return await users.change_role(session, "nobody", actor_ref=admin, role="VIEWER", clock=clock)

    with pytest.raises(UserNotFound):
        await run(runtime, missing)


async def test_a_user_manager_cannot_make_or_change_admins(runtime: Runtime, clock: FrozenClock) -> None:
    admin = await make(runtime, clock, "admin@example.com", "ENTERPRISE_ADMIN")
    manager = await make(runtime, clock, "um@example.com", "USER_MANAGER")
    viewer = await make(runtime, clock, "viewer@example.com", "VIEWER")
    attempts = [
        lambda s: users.add_user(
            s, actor_ref=manager, email="x@example.com", password=PASSWORD, role="ENTERPRISE_ADMIN", clock=clock
        ),
        lambda s: users.change_role(s, viewer, actor_ref=manager, role="ENTERPRISE_ADMIN", clock=clock),
        lambda s: users.change_role(s, manager, actor_ref=manager, role="ENTERPRISE_ADMIN", clock=clock),
        lambda s: users.change_role(s, admin, actor_ref=manager, role="VIEWER", clock=clock),
        lambda s: users.set_disabled(s, admin, actor_ref=manager, disabled=True, clock=clock),
        lambda s: users.reset_password(s, admin, actor_ref=manager, password="x" * 20, clock=clock),
        # A viewer manages nobody, whatever the page let through.
        lambda s: users.change_role(s, viewer, actor_ref=viewer, role="USER_MANAGER", clock=clock),
    ]
    for attempt in attempts:
        with pytest.raises(UserChangeForbidden):
            await run(runtime, attempt)

    async def allowed(session: AsyncSession) -> User:
        await users.change_role(session, viewer, actor_ref=manager, role="MARKETER", clock=clock)
        return await users.add_user(
            session, actor_ref=manager, email="new@example.com", password=PASSWORD, role="USER_MANAGER", clock=clock
        )

    assert (await run(runtime, allowed)).role == "USER_MANAGER"

    async def disabled_actor(session: AsyncSession) -> None:
        await users.set_disabled(session, manager, actor_ref=admin, disabled=True, clock=clock)
        await session.commit()
        await users.change_role(session, viewer, actor_ref=manager, role="VIEWER", clock=clock)

    with pytest.raises(UserChangeForbidden):
        await run(runtime, disabled_actor)


async def test_the_last_enabled_admin_stays_and_nobody_disables_themselves(
    runtime: Runtime, clock: FrozenClock
) -> None:
    admin = await make(runtime, clock, "admin@example.com", "ENTERPRISE_ADMIN")
    other = await make(runtime, clock, "other@example.com", "ENTERPRISE_ADMIN")

    def demote(ref: str, actor: str) -> Any:
        return lambda s: users.change_role(s, ref, actor_ref=actor, role="VIEWER", clock=clock)

    def disable(ref: str, actor: str) -> Any:
        return lambda s: users.set_disabled(s, ref, actor_ref=actor, disabled=True, clock=clock)

    with pytest.raises(InvalidUser, match="Bad Request") as raised:
        await run(runtime, disable(admin, admin))
    assert raised.value.developer_message == "You cannot disable your own account."
    await run(runtime, disable(other, admin))
    for attempt in (demote(admin, admin), disable(admin, admin)):
        with pytest.raises(InvalidUser):
            await run(runtime, attempt)

    async def enable(session: AsyncSession) -> User:
        return await users.set_disabled(session, other, actor_ref=admin, disabled=False, clock=clock)

    await run(runtime, enable)
    assert (await run(runtime, demote(admin, admin))).role == "VIEWER"
    with pytest.raises(UserChangeForbidden):  # no longer allowed to manage users at all
        await run(runtime, demote(other, admin))


async def test_two_admins_stepping_down_at_once_leave_one(runtime: Runtime, clock: FrozenClock) -> None:
    first = await make(runtime, clock, "first@example.com", "ENTERPRISE_ADMIN")
    second = await make(runtime, clock, "second@example.com", "ENTERPRISE_ADMIN")

    async def step_down(ref: str) -> User | InvalidUser:
        async def work(session: AsyncSession) -> User:
            return await users.change_role(session, ref, actor_ref=ref, role="VIEWER", clock=clock)

        try:
            return await in_transaction(runtime.sessions, work)
        except InvalidUser as exc:
            return exc

    outcomes = await asyncio.gather(step_down(first), step_down(second))
    assert sorted(type(o).__name__ for o in outcomes) == ["InvalidUser", "User"]
    async with runtime.sessions() as session:
        assert sorted(u.role for u in await users.list_users(session)) == ["ENTERPRISE_ADMIN", "VIEWER"]


async def test_a_step_down_holds_the_admin_rows_until_it_commits(
    runtime: Runtime, clock: FrozenClock, db_kind: str
) -> None:
    first = await make(runtime, clock, "first@example.com", "ENTERPRISE_ADMIN")
    second = await make(runtime, clock, "second@example.com", "ENTERPRISE_ADMIN")
    async with runtime.sessions() as session:
        await users.change_role(session, first, actor_ref=first, role="VIEWER", clock=clock)
        if db_kind == "postgres":
            # The other admin cannot step down in between: the count it would read is locked.
            async with runtime.sessions() as other:
                with pytest.raises(DBAPIError, match="lock"):
                    await other.execute(select(User).where(User.ref == second).with_for_update(nowait=True))
        # On SQLite every transaction begins IMMEDIATE on the one connection: nothing runs in between.
        await session.commit()

    async def second_steps_down(session: AsyncSession) -> User:
        return await users.change_role(session, second, actor_ref=second, role="VIEWER", clock=clock)

    with pytest.raises(InvalidUser):
        await run(runtime, second_steps_down)
