"""Wire shapes of the tenant admin API (Sitecore-style camelCase aliases)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from innkeeper.core.clock import iso
from innkeeper.tenant.models import ApiToken, PointOfSale, Tenant


class PointOfSaleIn(BaseModel):
    """Point of sale fields (spec §5.1)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(default=None, max_length=100)
    market: str | None = Field(default=None, max_length=100)
    brand: str | None = Field(default=None, max_length=100)
    language: str | None = Field(default=None, max_length=8)
    currency_code: str | None = Field(default=None, alias="currencyCode", max_length=8)
    timeout_minutes: int = Field(default=20, alias="timeoutInMinutes", ge=1, le=1440)
    site_name: str | None = Field(default=None, alias="siteName", max_length=100)
    created_at: str | None = Field(default=None, alias="createdAt")
    modified_at: str | None = Field(default=None, alias="modifiedAt")

    def fields(self) -> dict[str, object]:
        """Column values."""
        return self.model_dump(exclude={"name", "created_at", "modified_at"})


class PointOfSaleOut(BaseModel):
    """A point of sale."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    name: str
    market: str | None = None
    brand: str | None = None
    language: str | None = None
    currency_code: str | None = Field(default=None, alias="currencyCode")
    timeout_minutes: int = Field(alias="timeoutInMinutes")
    site_name: str | None = Field(default=None, alias="siteName")
    created_at: str | None = Field(default=None, alias="createdAt")
    modified_at: str | None = Field(default=None, alias="modifiedAt")

    @classmethod
    def of(cls, pos: PointOfSale) -> PointOfSaleOut:
        """From a row."""
        return cls(
            name=pos.name,
            market=pos.market,
            brand=pos.brand,
            language=pos.language,
            currency_code=pos.currency_code,
            timeout_minutes=pos.timeout_minutes,
            site_name=pos.site_name,
            created_at=iso(pos.created_at),
            modified_at=iso(pos.modified_at),
        )


class PointOfSaleList(BaseModel):
    """All points of sale."""

    items: list[PointOfSaleOut]


class SettingsOut(BaseModel):
    """Tenant feature settings (spec §12.2)."""

    environment: Literal["development", "production"]
    debug: bool
    autoCreatePointOfSale: bool  # noqa: N815
    contextIds: list[str]  # noqa: N815

    @classmethod
    def of(cls, tenant: Tenant, environment: Literal["development", "production"]) -> SettingsOut:
        """From the tenant row."""
        return cls(
            environment=environment,
            debug=tenant.debug,
            autoCreatePointOfSale=tenant.auto_create_pos,
            contextIds=list(tenant.context_ids or []),
        )


class SettingsPatch(BaseModel):
    """A partial update of the settings."""

    model_config = ConfigDict(extra="forbid")

    debug: bool | None = None
    autoCreatePointOfSale: bool | None = None  # noqa: N815
    contextIds: list[str] | None = None  # noqa: N815


class IdentityRule(BaseModel):
    """One identity rule: a name and the identifier provider it trusts."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    provider: str = Field(min_length=1, max_length=100)


class IdentityRules(BaseModel):
    """The identity rules (≤ 5) and the email fallback switch."""

    model_config = ConfigDict(extra="forbid")

    rules: list[IdentityRule] = Field(max_length=5)
    emailFallback: bool = True  # noqa: N815


class TokenOut(BaseModel):
    """An API token's metadata (never its value)."""

    id: str
    label: str
    scope: Literal["admin", "rw", "ro"]
    createdAt: str | None  # noqa: N815
    lastUsedAt: str | None  # noqa: N815

    @classmethod
    def of(cls, row: ApiToken) -> TokenOut:
        """From a row."""
        return cls(
            id=row.id,
            label=row.label,
            scope=row.scope,
            createdAt=iso(row.created_at),
            lastUsedAt=iso(row.last_used_at),
        )


class ApiAccess(BaseModel):
    """The client key and the active tokens."""

    clientKey: str  # noqa: N815
    tokens: list[TokenOut]


class TokenIn(BaseModel):
    """A new API token."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=200)
    scope: Literal["admin", "rw", "ro"]


class TokenCreated(TokenOut):
    """A new token: its value is shown this once."""

    token: str
