"""Portal users: create, sign in (argon2, throttled), sessions, the role permission table (issue 7), and
user management: roles, disabling, password resets, with the rules that keep an Enterprise Admin around."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.clock import Clock, as_utc
from innkeeper.core.ids import new_ref
from innkeeper.users.errors import (
    InvalidUser,
    LoginFailed,
    LoginThrottled,
    UserChangeForbidden,
    UserExists,
    UserNotFound,
)
from innkeeper.users.models import User, UserSession
from innkeeper.users.repository import UserRepository

Role = Literal["ENTERPRISE_ADMIN", "USER_MANAGER", "MARKETER", "VIEWER"]
ROLES: tuple[Role, ...] = ("ENTERPRISE_ADMIN", "USER_MANAGER", "MARKETER", "VIEWER")
ADMIN: Role = "ENTERPRISE_ADMIN"
# What each role may do in the portal (Sitecore: points of sale and users need User Manager or Admin).
PERMISSIONS: dict[str, frozenset[Role]] = {
    "guests.read": frozenset(ROLES),
    "debug.read": frozenset(("ENTERPRISE_ADMIN", "USER_MANAGER", "MARKETER")),
    "experiences.read": frozenset(ROLES),
    "experiences.write": frozenset(("ENTERPRISE_ADMIN", "MARKETER")),
    "reports.read": frozenset(ROLES),
    "batches.read": frozenset(("ENTERPRISE_ADMIN", "USER_MANAGER", "MARKETER")),
    "settings.read": frozenset(("ENTERPRISE_ADMIN", "USER_MANAGER")),
    "points_of_sale.write": frozenset(("ENTERPRISE_ADMIN", "USER_MANAGER")),
    "api_access.write": frozenset(("ENTERPRISE_ADMIN",)),
    "features.write": frozenset(("ENTERPRISE_ADMIN",)),
    "identity.write": frozenset(("ENTERPRISE_ADMIN",)),
    "users.write": frozenset(("ENTERPRISE_ADMIN", "USER_MANAGER")),
}
MIN_PASSWORD = 12
MAX_NAME = 200
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def allowed(role: str, permission: str) -> bool:
    """May a user with this role do this? Unknown permissions are denied."""
    return role in PERMISSIONS.get(permission, frozenset())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _normal_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value):
        raise InvalidUser("Bad Request", developer_message="email: not an email address")
    return value


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidUser("Bad Request", developer_message=f"password: at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InvalidUser("Bad Request", developer_message="password: at most 1024 characters")


def _normal_name(name: str | None) -> str | None:
    value = (name or "").strip()
    if len(value) > MAX_NAME:
        raise InvalidUser("Bad Request", developer_message=f"name: at most {MAX_NAME} characters")
    return value or None


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidUser("Bad Request", developer_message=f"role: one of {', '.join(ROLES)}")


async def by_email(session: AsyncSession, email: str) -> User | None:
    return await UserRepository(session).by_email(email.strip().lower())


async def create_user(
    session: AsyncSession, *, email: str, password: str, role: str, clock: Clock, name: str | None = None
) -> User:
    _check_role(role)
    address = _normal_email(email)
    display_name = _normal_name(name)
    _check_password(password)
    if await by_email(session, address) is not None:
        raise UserExists("Conflict", developer_message="a user with this email exists")
    now = clock.now()
    user = User(
        ref=new_ref(),
        email=address,
        name=display_name,
        role=role,
        password_hash=_hasher.hash(password),
        failed_logins=0,
        created_at=now,
        modified_at=now,
    )
    UserRepository(session).add(user)
    await session.flush()
    return user


async def ensure_admin(session: AsyncSession, *, email: str | None, password: str | None, clock: Clock) -> bool:
    """Bootstrap: create the Enterprise Admin from INNKEEPER_ADMIN_EMAIL / _PASSWORD once; True if created."""
    if not email or not password or await by_email(session, email) is not None:
        return False
    await create_user(session, email=email, password=password, role="ENTERPRISE_ADMIN", clock=clock)
    return True


async def sign_in(session: AsyncSession, *, email: str, password: str, clock: Clock) -> tuple[User, str]:
    """Check the password; returns the user and a new session cookie value (only its hash is stored).

    Five wrong passwords in a row lock the account for 15 minutes (``LoginThrottled``). The error
    for an unknown email and for a wrong password is the same, and takes the same time.
    """
    now = clock.now()
    user = await by_email(session, email)
    if user is not None and user.locked_until is not None and as_utc(user.locked_until) > now:
        wait = int((as_utc(user.locked_until) - now).total_seconds()) + 1
        raise LoginThrottled("Too many failed sign-ins; try again later", retry_after=wait)
    try:
        _hasher.verify(user.password_hash if user is not None else _DUMMY_HASH, password)
        ok = user is not None and user.disabled_at is None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None:
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= MAX_FAILURES:
                user.locked_until, user.failed_logins = now + LOCKOUT, 0
        raise LoginFailed("Wrong email or password")
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    token = secrets.token_urlsafe(32)
    UserRepository(session).add(
        UserSession(
            token_hash=_digest(token),
            user_ref=user.ref,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    await session.flush()
    return user, token


async def session_user(session: AsyncSession, token: str | None, *, now: datetime) -> tuple[User, UserSession] | None:
    """The signed-in user behind a session cookie, or None (unknown, expired, or the user was disabled)."""
    if not token:
        return None
    repo = UserRepository(session)
    row = await repo.user_session(_digest(token))
    if row is None or as_utc(row.expires_at) <= now:
        return None
    user = await repo.get(row.user_ref)
    if user is None or user.disabled_at is not None:
        return None
    return user, row


async def sign_out(session: AsyncSession, token: str | None) -> None:
    if not token:
        return
    repo = UserRepository(session)
    row = await repo.user_session(_digest(token))
    if row is not None:
        await repo.remove(row)


# --- user management (Settings -> Users) -----------------------------------------------


def assignable_roles(actor_role: str) -> tuple[Role, ...]:
    """The roles a user with ``actor_role`` may give: only an Enterprise Admin makes admins."""
    if not allowed(actor_role, "users.write"):
        return ()
    return ROLES if actor_role == ADMIN else tuple(role for role in ROLES if role != ADMIN)


def may_manage(actor_role: str, target_role: str) -> bool:
    """May a user with ``actor_role`` change (role, status, password) a user with ``target_role``?"""
    return allowed(actor_role, "users.write") and (target_role != ADMIN or actor_role == ADMIN)


async def list_users(session: AsyncSession) -> list[User]:
    """Every user, by email."""
    return await UserRepository(session).all()


async def get_user(session: AsyncSession, ref: str) -> User:
    """One user by ref."""
    user = await UserRepository(session).get(ref)
    if user is None:
        raise UserNotFound("Not Found", developer_message="no such user")
    return user


async def _actor(session: AsyncSession, ref: str) -> User:
    """The acting user, read again in this unit of work (a role may have changed since sign-in)."""
    actor = await UserRepository(session).get(ref)
    if actor is None or actor.disabled_at is not None or not allowed(actor.role, "users.write"):
        raise UserChangeForbidden("Forbidden", developer_message="Your role does not allow managing users.")
    return actor


def _only_admins_manage_admins() -> UserChangeForbidden:
    return UserChangeForbidden(
        "Forbidden", developer_message="Only an Enterprise Admin can create, promote or change an Enterprise Admin."
    )


async def _keep_an_admin(session: AsyncSession, leaving: User) -> None:
    """Refuse to demote or disable the last enabled Enterprise Admin: nobody could manage admins again."""
    others = [ref for ref in await UserRepository(session).enabled_refs(ADMIN, lock=True) if ref != leaving.ref]
    if not others:
        raise InvalidUser(
            "Bad Request", developer_message="The last enabled Enterprise Admin cannot be demoted or disabled."
        )


async def add_user(
    session: AsyncSession,
    *,
    actor_ref: str,
    email: str,
    password: str,
    role: str,
    clock: Clock,
    name: str | None = None,
) -> User:
    """Create a user on behalf of ``actor_ref`` (a User Manager cannot create an Enterprise Admin)."""
    _check_role(role)
    actor = await _actor(session, actor_ref)
    if role not in assignable_roles(actor.role):
        raise _only_admins_manage_admins()
    return await create_user(session, email=email, password=password, role=role, clock=clock, name=name)


async def _managed(session: AsyncSession, ref: str, actor_ref: str) -> tuple[User, User]:
    """(the acting user, the user ``ref``), when the actor may manage that user; else forbidden."""
    actor = await _actor(session, actor_ref)
    user = await get_user(session, ref)
    if not may_manage(actor.role, user.role):
        raise _only_admins_manage_admins()
    return actor, user


async def change_role(session: AsyncSession, ref: str, *, actor_ref: str, role: str, clock: Clock) -> User:
    """Give a user another role; the change applies to their next request."""
    _check_role(role)
    actor, user = await _managed(session, ref, actor_ref)
    if role not in assignable_roles(actor.role):
        raise _only_admins_manage_admins()
    if user.role == role:
        return user
    if user.role == ADMIN and user.disabled_at is None:
        await _keep_an_admin(session, user)
    user.role, user.modified_at = role, clock.now()
    await session.flush()
    return user


async def set_disabled(session: AsyncSession, ref: str, *, actor_ref: str, disabled: bool, clock: Clock) -> User:
    """Disable a user (they are signed out everywhere and cannot sign in) or enable them again."""
    actor, user = await _managed(session, ref, actor_ref)
    if disabled == (user.disabled_at is not None):
        return user
    now = clock.now()
    if disabled:
        if user.ref == actor.ref:
            raise InvalidUser("Bad Request", developer_message="You cannot disable your own account.")
        if user.role == ADMIN:
            await _keep_an_admin(session, user)
        await UserRepository(session).remove_sessions(user.ref)
    user.disabled_at, user.modified_at = (now if disabled else None), now
    await session.flush()
    return user


async def reset_password(session: AsyncSession, ref: str, *, actor_ref: str, password: str, clock: Clock) -> User:
    """Set a new password and lift any sign-in lock; another user's sessions end."""
    actor, user = await _managed(session, ref, actor_ref)
    _check_password(password)
    user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until, user.modified_at = 0, None, clock.now()
    if user.ref != actor.ref:
        await UserRepository(session).remove_sessions(user.ref)
    await session.flush()
    return user
