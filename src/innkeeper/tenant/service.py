"""Tenant rules: bootstrap, API-token authentication, points of sale, feature settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core import events
from innkeeper.core.auth import hash_token, new_api_token, new_client_key
from innkeeper.core.clock import Clock
from innkeeper.core.config import Settings
from innkeeper.core.ids import new_ref
from innkeeper.core.sqlite_fast import transaction_token
from innkeeper.tenant.errors import (
    InsufficientScope,
    InvalidCredentials,
    InvalidPointOfSale,
    InvalidSettings,
    PointOfSaleExists,
    PointOfSaleNotFound,
    TokenNotFound,
)
from innkeeper.tenant.models import ApiToken, PointOfSale, Tenant
from innkeeper.tenant.repository import TenantRepository

log = logging.getLogger(__name__)

Scope = Literal["admin", "rw", "ro"]
SCOPES: tuple[Scope, ...] = ("admin", "rw", "ro")
_RANK = {"ro": 0, "rw": 1, "admin": 2}
DEFAULT_TIMEOUT_MINUTES = 20


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """What `serve` prints on start: the tenant's keys (a new token only when generated)."""

    client_key: str
    api_token: str | None
    created: bool
    point_of_sale: str | None


async def bootstrap(session: AsyncSession, settings: Settings, *, clock: Clock) -> Bootstrap:
    """Make sure the tenant, the bootstrap token and the default point of sale exist."""
    repo = TenantRepository(session)
    now = clock.now()
    tenant = await repo.get_tenant()
    created = tenant is None
    generated_token: str | None = None
    if tenant is None:
        tenant = Tenant(
            id=1,
            client_key=settings.client_key or new_client_key(),
            debug=not settings.production,
            auto_create_pos=not settings.production,
            email_fallback=True,
            identity_rules=[],
            context_ids=list(settings.context_ids),
            created_at=now,
            modified_at=now,
        )
        repo.add(tenant)
        if settings.api_token is None:
            generated_token = new_api_token()
            repo.add(_token_row("bootstrap", "admin", generated_token, now))
    elif settings.client_key and settings.client_key != tenant.client_key:
        tenant.client_key = settings.client_key
        tenant.modified_at = now
    if settings.api_token is not None and await repo.token_by_hash(hash_token(settings.api_token)) is None:
        repo.add(_token_row("bootstrap (INNKEEPER_API_TOKEN)", "admin", settings.api_token, now))
    if settings.point_of_sale and await repo.pos_by_name(settings.point_of_sale) is None:
        repo.add(_new_pos(settings.point_of_sale, now))
    await session.flush()
    return Bootstrap(tenant.client_key, generated_token, created, settings.point_of_sale)


def _token_row(label: str, scope: Scope, token: str, now: Any) -> ApiToken:
    return ApiToken(id=new_ref(), label=label, scope=scope, token_hash=hash_token(token), created_at=now)


def _new_pos(name: str, now: Any, **fields: Any) -> PointOfSale:
    fields.setdefault("timeout_minutes", DEFAULT_TIMEOUT_MINUTES)
    return PointOfSale(name=name, created_at=now, modified_at=now, **fields)


async def get_tenant(session: AsyncSession) -> Tenant:
    """The deployment's tenant (bootstrap has run before any request)."""
    tenant = await TenantRepository(session).get_tenant()
    if tenant is None:
        raise RuntimeError("tenant not bootstrapped; run `innkeeper serve` or `innkeeper db upgrade`")
    return tenant


async def authenticate(session: AsyncSession, client_key: str, token: str, *, needs: Scope, clock: Clock) -> ApiToken:
    """Check Basic credentials (client key + API token) and the token's scope."""
    tenant = await get_tenant(session)
    if client_key != tenant.client_key:
        raise InvalidCredentials("Invalid credentials")
    row = await TenantRepository(session).token_by_hash(hash_token(token))
    if row is None or row.revoked_at is not None:
        raise InvalidCredentials("Invalid credentials")
    if _RANK[row.scope] < _RANK[needs]:
        raise InsufficientScope(
            "This API token does not have the required scope", developer_message=f"requires {needs}"
        )
    await TenantRepository(session).touch_token(row.id, clock.now())
    return row


async def create_token(session: AsyncSession, *, label: str, scope: Scope, clock: Clock) -> tuple[ApiToken, str]:
    """Create an API token; the clear value is returned once and never stored."""
    if scope not in SCOPES:
        raise InvalidSettings("Invalid scope", developer_message="scope: must be one of admin, rw, ro")
    value = new_api_token()
    row = _token_row(label, scope, value, clock.now())
    TenantRepository(session).add(row)
    await session.flush()
    return row, value


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    """Active (not revoked) API tokens."""
    return await TenantRepository(session).list_tokens()


async def revoke_token(session: AsyncSession, token_id: str, *, clock: Clock) -> None:
    """Revoke a token; it stops working at once."""
    row = await TenantRepository(session).get_token(token_id)
    if row is None or row.revoked_at is not None:
        raise TokenNotFound(
            "The specified resource does not exist.", developer_message=f"API token {token_id} was not found"
        )
    row.revoked_at = clock.now()


# --- points of sale -------------------------------------------------------------------

POS_FIELDS = ("market", "brand", "language", "currency_code", "timeout_minutes", "site_name")


def _validate_pos(name: str, fields: dict[str, Any]) -> None:
    problems = []
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        problems.append("name: must be a non-empty string of at most 100 characters")
    timeout = fields.get("timeout_minutes", DEFAULT_TIMEOUT_MINUTES)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 1440:
        problems.append("timeoutInMinutes: must be an integer between 1 and 1440")
    for key in ("market", "brand", "language", "currency_code", "site_name"):
        value = fields.get(key)
        limit = 8 if key in ("language", "currency_code") else 100  # the columns' widths
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            problems.append(f"{key}: must be a string of at most {limit} characters")
    if problems:
        raise InvalidPointOfSale("Invalid point of sale", developer_message="; ".join(problems))


_POS_READ_IN_TRANSACTION = "innkeeper.tenant.points_of_sale_read"
_POS_SETTINGS_IN_TRANSACTION = "innkeeper.tenant.pos_settings_read"


def _memo_of_transaction(session: AsyncSession, key: str) -> dict[str, Any] | None:
    """What was read under ``key`` in the session's current transaction, SQLAlchemy's or a lean one (None
    outside a transaction)."""
    transaction = transaction_token(session)
    if transaction is None:
        return None
    memo: tuple[object, dict[str, Any]] | None = session.info.get(key)
    if memo is None or memo[0] is not transaction:
        memo = (transaction, {})
        session.info[key] = memo
    return memo[1]


async def resolve_pos(session: AsyncSession, name: str, *, auto_create: bool, clock: Clock) -> PointOfSale | None:
    """The named point of sale; auto-created with defaults when allowed, else None.

    A point of sale read once in a transaction is not read again in it: the Stream API's group commit
    applies dozens of events in one transaction, nearly all of the same point of sale. The memo lives
    only as long as that transaction (a new one reads again, so an edited timeout is seen at once).
    """
    repo = TenantRepository(session)
    memo = _memo_of_transaction(session, _POS_READ_IN_TRANSACTION)
    pos = memo.get(name) if memo is not None else None
    if pos is None:
        pos = await repo.pos_by_name(name)
        memo = _memo_of_transaction(session, _POS_READ_IN_TRANSACTION)
        if pos is not None and memo is not None:
            memo[name] = pos
    if pos is None and auto_create and 0 < len(name) <= 100:
        pos = _new_pos(name, clock.now())
        repo.add(pos)
        await session.flush()
    return pos


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """What identity resolution needs of the tenant."""

    identity_rules: list[dict[str, Any]]
    email_fallback: bool


async def identity_settings(session: AsyncSession) -> IdentitySettings:
    """The tenant's identity rules and email fallback, read as a plain row (the batched ingest path)."""
    row = await TenantRepository(session).identity_settings()
    if row is None:
        raise RuntimeError("tenant not bootstrapped; run `innkeeper serve` or `innkeeper db upgrade`")
    return IdentitySettings(*row)


@dataclass(frozen=True, slots=True)
class PosSettings:
    """What sessionization needs of a point of sale."""

    name: str
    timeout_minutes: int
    language: str | None
    currency_code: str | None


async def pos_settings(session: AsyncSession, name: str) -> PosSettings | None:
    """The named point of sale's settings, None if there is none (never created here: the batched ingest
    path leaves an unknown point of sale to :func:`resolve_pos`). Read once per transaction, like
    :func:`resolve_pos`, and as a plain row rather than an ORM object."""
    memo = _memo_of_transaction(session, _POS_SETTINGS_IN_TRANSACTION)
    found: PosSettings | None = memo.get(name) if memo is not None else None
    if found is None:
        row = await TenantRepository(session).pos_settings(name)
        if row is None:
            return None
        found = PosSettings(*row)
        memo = _memo_of_transaction(session, _POS_SETTINGS_IN_TRANSACTION)  # the read began the transaction
        if memo is not None:
            memo[name] = found
    return found


async def pos_for_site(session: AsyncSession, site: str) -> PointOfSale | None:
    """The point of sale whose name or siteName equals the Cloud SDK ``siteId``."""
    return await TenantRepository(session).pos_by_site(site)


async def list_points_of_sale(session: AsyncSession) -> list[PointOfSale]:
    """All points of sale by name."""
    return await TenantRepository(session).list_pos()


async def get_point_of_sale(session: AsyncSession, name: str) -> PointOfSale:
    """One point of sale by name."""
    pos = await TenantRepository(session).pos_by_name(name)
    if pos is None:
        raise PointOfSaleNotFound(
            "The specified resource does not exist.", developer_message="Point of sale was not found"
        )
    return pos


async def create_point_of_sale(
    session: AsyncSession, name: str, *, fields: dict[str, Any], clock: Clock
) -> PointOfSale:
    """Create a point of sale."""
    _validate_pos(name, fields)
    repo = TenantRepository(session)
    if await repo.pos_by_name(name) is not None:
        raise PointOfSaleExists("Point of sale already exists", developer_message="name: already in use")
    pos = _new_pos(name, clock.now(), **{k: v for k, v in fields.items() if k in POS_FIELDS})
    repo.add(pos)
    await session.flush()
    return pos


async def update_point_of_sale(
    session: AsyncSession, name: str, *, fields: dict[str, Any], clock: Clock
) -> PointOfSale:
    """Replace a point of sale's fields (the name stays)."""
    pos = await get_point_of_sale(session, name)
    _validate_pos(name, fields)
    old_timeout = pos.timeout_minutes
    for key in POS_FIELDS:
        value = fields.get(key)
        setattr(pos, key, DEFAULT_TIMEOUT_MINUTES if key == "timeout_minutes" and value is None else value)
    pos.modified_at = clock.now()
    await session.flush()
    if pos.timeout_minutes != old_timeout:
        await events.publish(session, events.PointOfSaleRetimed(pos.name, pos.timeout_minutes))
    return pos


async def delete_point_of_sale(session: AsyncSession, name: str) -> None:
    """Delete a point of sale (its sessions keep their name)."""
    if await TenantRepository(session).delete_pos(name) == 0:
        raise PointOfSaleNotFound(
            "The specified resource does not exist.", developer_message="Point of sale was not found"
        )


# --- feature settings -----------------------------------------------------------------

SETTING_KEYS = ("debug", "autoCreatePointOfSale", "contextIds")


async def update_settings(session: AsyncSession, changes: dict[str, Any], *, clock: Clock) -> Tenant:
    """Apply a PATCH of the tenant feature settings."""
    tenant = await get_tenant(session)
    problems = []
    for key, value in changes.items():
        if key in ("debug", "autoCreatePointOfSale"):
            if not isinstance(value, bool):
                problems.append(f"{key}: must be a boolean")
        elif key == "contextIds":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                problems.append("contextIds: must be a list of non-empty strings")
        elif key == "environment":
            problems.append("environment: is read-only")
        else:
            problems.append(f"{key}: unknown setting")
    if problems:
        raise InvalidSettings("Invalid settings", developer_message="; ".join(problems))
    if "debug" in changes:
        tenant.debug = changes["debug"]
    if "autoCreatePointOfSale" in changes:
        tenant.auto_create_pos = changes["autoCreatePointOfSale"]
    if "contextIds" in changes:
        tenant.context_ids = list(changes["contextIds"])
    tenant.modified_at = clock.now()
    await session.flush()
    return tenant


async def update_identity_rules(
    session: AsyncSession, *, rules: list[dict[str, str]], email_fallback: bool, clock: Clock
) -> Tenant:
    """Replace the identity rules (at most 5 providers)."""
    if len(rules) > 5:
        raise InvalidSettings("Invalid identity rules", developer_message="rules: at most 5 rules")
    tenant = await get_tenant(session)
    tenant.identity_rules = [dict(rule) for rule in rules]
    tenant.email_fallback = email_fallback
    tenant.modified_at = clock.now()
    await session.flush()
    return tenant
