"""Wire shapes of ``/v2/connections`` (Sitecore's Connection resource, spec personalize.md §9.1)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from innkeeper.connections.models import Connection
from innkeeper.connections.senders import InvalidEmail
from innkeeper.connections.senders._mime import parse_address
from innkeeper.core.clock import iso

AuthType = Literal["NONE", "BASIC", "OAUTH2_CLIENT_CREDENTIALS"]
Kind = Literal["SMTP_EMAIL", "WEBHOOK"]
Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


def _single_line(value: str) -> str:
    if any(c in value for c in "\r\n\x00"):
        raise ValueError("line breaks and NUL are not allowed")
    return value


def _http_url(value: str) -> str:
    _single_line(value)
    if any(c.isspace() for c in value):
        raise ValueError("URLs cannot contain whitespace")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


def _email(value: str) -> str:
    try:
        parse_address(value, field="address")
    except InvalidEmail:
        raise ValueError("must be an email address (a@example.com or Name <a@example.com>)") from None
    return value


Line = Annotated[str, AfterValidator(_single_line)]
Url = Annotated[str, Field(max_length=2048), AfterValidator(_http_url)]
Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]
Secret = Annotated[str, Field(max_length=4096, description='Write-only; reads back as "********" (send it to keep).')]
HeaderName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
Hostname = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._:\[\]-]+$")]
Mapping = dict[str, Any]
MODEL = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)


class Auth(BaseModel):
    """How a WEBHOOK authenticates: none, HTTP Basic or OAuth 2.0 client credentials."""

    model_config = MODEL

    auth_type: AuthType = Field(default="NONE", alias="authType")
    username: Annotated[Line, Field(max_length=200)] | None = None
    password: Secret | None = None
    token_url: Url | None = Field(default=None, alias="tokenUrl")
    client_id: Annotated[Line, Field(max_length=200)] | None = Field(default=None, alias="clientId")
    client_secret: Secret | None = Field(default=None, alias="clientSecret")
    scope: Annotated[Line, Field(max_length=1000)] | None = None


class RequestSpec(BaseModel):
    """The HTTP request of a WEBHOOK: method, URL (may hold ``${…}`` variables) and body template."""

    model_config = MODEL

    request_type: Method = Field(default="POST", alias="requestType")
    connection_url: Url | None = Field(default=None, alias="connectionUrl")
    request_body: str | None = Field(default=None, alias="requestBody", max_length=65_536)


class Header(BaseModel):
    """A custom header; ``secret`` (default: true when the name looks like a credential) encrypts the value."""

    model_config = MODEL

    name: HeaderName
    value: Annotated[Line, Field(max_length=4096)] | None = None
    secret: bool | None = None


class Smtp(BaseModel):
    """The SMTP server of an SMTP_EMAIL connection."""

    model_config = MODEL

    host: Hostname
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["NONE", "STARTTLS", "TLS"] = "STARTTLS"
    username: Annotated[Line, Field(max_length=320)] | None = None
    password: Secret | None = None
    from_: Email | None = Field(default=None, alias="from")


class SigningSpec(BaseModel):
    """HMAC-SHA256 signing of WEBHOOK bodies: ``<header>: t=<unix>,v1=<hex>`` (docs/connections.md)."""

    model_config = MODEL

    secret: Secret | None = None
    header: HeaderName = "X-Innkeeper-Signature"


class ConnectionIn(BaseModel):
    """A connection as created or replaced; read-only fields (ref, href, modifiedAt, …) are ignored."""

    model_config = MODEL

    name: Annotated[Line, Field(min_length=1, max_length=200)]
    description: str | None = Field(default=None, max_length=2000)
    icon: Annotated[Line, Field(max_length=100)] | None = None
    system_type: Literal["DESTINATION"] = Field(default="DESTINATION", alias="systemType")
    kind: Kind
    auth: Auth = Field(default_factory=Auth)
    request: RequestSpec | None = None
    custom_headers: list[Header] = Field(default_factory=list, alias="customHeaders", max_length=50)
    url_parameters: list[Mapping] = Field(default_factory=list, alias="urlParameters", max_length=50)
    input_mappings: list[Mapping] = Field(default_factory=list, alias="inputMappings", max_length=50)
    output_mappings: list[Mapping] = Field(default_factory=list, alias="outputMappings", max_length=50)
    connection_timeout: int = Field(default=2000, alias="connectionTimeout", ge=1, le=60_000, description="ms")
    socket_timeout: int = Field(default=10_000, alias="socketTimeout", ge=1, le=300_000, description="ms")
    smtp: Smtp | None = None
    signing: SigningSpec | None = None
    archived: bool = False
    revision: int | None = Field(default=None, ge=1, description="On update: the revision you read (409 if stale)")
    # Read-only fields a client may send back unchanged from a GET.
    href: str | None = None
    ref: str | None = None
    created_at: str | None = Field(default=None, alias="createdAt")
    modified_by_ref: str | None = Field(default=None, alias="modifiedByRef")
    modified_at: str | None = Field(default=None, alias="modifiedAt")

    def document(self) -> dict[str, Any]:
        """The resource fields (camelCase, as stored), without the read-only ones."""
        return self.model_dump(by_alias=True, exclude={"href", "ref", "created_at", "modified_by_ref", "modified_at"})


class ConnectionOut(BaseModel):
    """A connection; secrets read ``"********"`` when set."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    href: str
    ref: str
    name: str
    description: str | None = None
    icon: str | None = None
    system_type: str = Field(alias="systemType")
    kind: Kind
    auth: Auth
    request: RequestSpec | None = None
    custom_headers: list[Header] = Field(alias="customHeaders")
    url_parameters: list[Mapping] = Field(alias="urlParameters")
    input_mappings: list[Mapping] = Field(alias="inputMappings")
    output_mappings: list[Mapping] = Field(alias="outputMappings")
    connection_timeout: int = Field(alias="connectionTimeout")
    socket_timeout: int = Field(alias="socketTimeout")
    smtp: Smtp | None = None
    signing: SigningSpec | None = None
    revision: int
    archived: bool
    created_at: str | None = Field(alias="createdAt")
    modified_by_ref: str | None = Field(alias="modifiedByRef")
    modified_at: str | None = Field(alias="modifiedAt")

    @classmethod
    def of(cls, row: Connection, config: dict[str, Any], base: str) -> ConnectionOut:
        """From a row and its masked config."""
        return cls.model_validate(
            {
                **config,
                "href": connection_href(base, row.ref),
                "ref": row.ref,
                "name": row.name,
                "description": row.description,
                "icon": row.icon,
                "systemType": row.system_type,
                "kind": row.kind,
                "revision": row.revision,
                "archived": row.archived,
                "createdAt": iso(row.created_at),
                "modifiedByRef": row.modified_by_ref,
                "modifiedAt": iso(row.modified_at),
            }
        )


class ConnectionCollection(BaseModel):
    """A page of connections."""

    href: str
    offset: int
    limit: int
    items: list[ConnectionOut]
    total: int


class ConnectionTestIn(BaseModel):
    """Options of "test connection": an address for an SMTP test email, a body for a WEBHOOK test."""

    model_config = MODEL

    to: Email | None = Field(default=None, description="SMTP_EMAIL: also send a test email to this address")
    body: str | None = Field(default=None, max_length=65_536, description="WEBHOOK: send this body instead")


class ConnectionTestOut(BaseModel):
    """What "test connection" found (always 200: failures of the destination are data)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    ref: str
    kind: Kind
    success: bool
    outcome: Literal["sent", "retryable", "permanent", "skipped"]
    status_code: int | None = Field(alias="statusCode")
    latency_ms: float = Field(alias="latencyMs")
    message: str | None
    steps: list[str]


def connection_href(base: str, ref: str) -> str:
    """The connection's URL."""
    return f"{base}/v2/connections/{ref}"
