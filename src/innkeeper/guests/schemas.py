"""Wire shapes of the Guest REST API v2.1 / v2 and guest data extensions (spec §7.1, §8)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from innkeeper.core.clock import iso
from innkeeper.guests.models import Guest, GuestExtension, GuestIdentifier

ApiVersion = Literal["v2", "v2.1"]
MAX_ITEMS = 100  # emails, phone numbers, street lines, identifiers per guest


def storable(value: str) -> str:
    """Refuse text the database cannot store (a pydantic validator)."""
    # PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded: refuse both everywhere.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid UTF-8") from None
    return value


Text8 = Annotated[str, Field(max_length=8), AfterValidator(storable)]
Text20 = Annotated[str, Field(max_length=20), AfterValidator(storable)]
Text40 = Annotated[str, Field(max_length=40), AfterValidator(storable)]
Text50 = Annotated[str, Field(max_length=50), AfterValidator(storable)]
Text100 = Annotated[str, Field(max_length=100), AfterValidator(storable)]
Text200 = Annotated[str, Field(max_length=200), AfterValidator(storable)]
Text320 = Annotated[str, Field(max_length=320), AfterValidator(storable)]
Name100 = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(storable)]
Name500 = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(storable)]
QueryText = Annotated[str, Field(max_length=500), AfterValidator(storable)]


class IdentifierIn(BaseModel):
    """``{provider, id, expiryDate?}`` of a guest body."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    provider: Name100
    id: Name500
    expiry_date: Text40 | None = Field(default=None, alias="expiryDate")


class GuestIn(BaseModel):
    """A guest body for create (POST), replace (PUT) and partial update (PATCH).

    Semantic rules (guestType enum, dates in the past, emails, country) are checked by the
    service so PATCH can tell "absent" from ``null``. The read-only fields of the representation
    are accepted and ignored, so a retrieved guest can be sent back as is.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    guest_type: Text20 | None = Field(default=None, alias="guestType")
    title: Text50 | None = None
    first_name: Text200 | None = Field(default=None, alias="firstName")
    last_name: Text200 | None = Field(default=None, alias="lastName")
    gender: Text20 | None = None
    date_of_birth: Text40 | None = Field(default=None, alias="dateOfBirth")
    email: Text320 | None = None
    emails: list[Text320] | None = Field(default=None, max_length=MAX_ITEMS)
    phone_numbers: list[Text50] | None = Field(default=None, alias="phoneNumbers", max_length=MAX_ITEMS)
    language: Text8 | None = None
    nationality: Text100 | None = None
    passport_number: Text100 | None = Field(default=None, alias="passportNumber")
    passport_expiry: Text40 | None = Field(default=None, alias="passportExpiry")
    street: list[Text200] | None = Field(default=None, max_length=MAX_ITEMS)
    city: Text200 | None = None
    state: Text200 | None = None
    post_code: Text40 | None = Field(default=None, alias="postCode")
    country: Text8 | None = None
    identifiers: list[IdentifierIn] | None = Field(default=None, max_length=MAX_ITEMS)
    # Read-only: accepted and ignored.
    href: str | None = None
    ref: str | None = None
    created_at: str | None = Field(default=None, alias="createdAt")
    modified_at: str | None = Field(default=None, alias="modifiedAt")
    first_seen: str | None = Field(default=None, alias="firstSeen")
    last_seen: str | None = Field(default=None, alias="lastSeen")
    extensions: list[dict[str, Any]] | None = None

    def changes(self, *, partial: bool) -> dict[str, Any]:
        """Writable fields by column name: all of them, or (partial) only those present."""
        return self.model_dump(exclude_unset=partial, exclude=READ_ONLY)


READ_ONLY = {"href", "ref", "created_at", "modified_at", "first_seen", "last_seen", "extensions"}


class Href(BaseModel):
    """A link to a resource."""

    href: str


class IdentifierOut(BaseModel):
    """An identifier of a guest."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    provider: str
    id: str
    expiry_date: str | None = Field(default=None, alias="expiryDate")


class ExtensionOut(BaseModel):
    """A guest data extension: fixed fields, then its key-value pairs (spec §8.7)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, serialize_by_alias=True)

    href: str
    ref: str
    name: str
    key: str
    created_at: str | None = Field(alias="createdAt")
    modified_at: str | None = Field(alias="modifiedAt")
    guest: Href

    @classmethod
    def of(cls, row: GuestExtension, *, base: str, version: ApiVersion = "v2.1") -> ExtensionOut:
        """From a row; ``base`` is the public base URL.

        v2.1 addresses an extension by name (``…/guests/{ref}/extensions/{name}``), legacy v2 by
        name and ref (``…/guests/{ref}/{name}/{extensionRef}``, spec §8.6).
        Pairs come out sorted by key: PostgreSQL's JSONB does not keep insertion order, and
        both dialects must answer byte for byte alike.
        """
        guest_href = f"{base}/{version}/guests/{row.guest_ref}"
        href = f"{guest_href}/extensions/{row.name}" if version == "v2.1" else f"{guest_href}/{row.name}/{row.ref}"
        return cls.model_validate(
            {
                **dict(sorted((row.data or {}).items())),
                "href": href,
                "ref": row.ref,
                "name": row.name,
                "key": row.key,
                "createdAt": iso(row.created_at),
                "modifiedAt": iso(row.modified_at),
                "guest": {"href": guest_href},
            }
        )


class GuestOrder(BaseModel):
    """An order as embedded in an expanded guest (``GET …/guests/{ref}?expand=true``)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    href: str
    ref: str
    reference_id: str = Field(alias="referenceId")
    status: str
    price: float
    currency_code: str | None = Field(default=None, alias="currencyCode")
    ordered_at: str | None = Field(default=None, alias="orderedAt")
    channel: str | None = None
    point_of_sale: str | None = Field(default=None, alias="pointOfSale")


class GuestOut(BaseModel):
    """A guest (spec §7.1); null fields and empty optional lists are left out.

    ``orders`` is only filled by an expanded retrieve, and only when the guest has orders.
    """

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    href: str
    ref: str
    created_at: str | None = Field(default=None, alias="createdAt")
    modified_at: str | None = Field(default=None, alias="modifiedAt")
    first_seen: str | None = Field(default=None, alias="firstSeen")
    last_seen: str | None = Field(default=None, alias="lastSeen")
    guest_type: str = Field(alias="guestType")
    title: str | None = None
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    gender: str | None = None
    date_of_birth: str | None = Field(default=None, alias="dateOfBirth")
    email: str | None = None
    emails: list[str] | None = None
    phone_numbers: list[str] | None = Field(default=None, alias="phoneNumbers")
    language: str | None = None
    nationality: str | None = None
    passport_number: str | None = Field(default=None, alias="passportNumber")
    passport_expiry: str | None = Field(default=None, alias="passportExpiry")
    street: list[str] | None = None
    city: str | None = None
    state: str | None = None
    post_code: str | None = Field(default=None, alias="postCode")
    country: str | None = None
    identifiers: list[IdentifierOut]
    extensions: list[ExtensionOut]
    orders: list[GuestOrder] | None = None

    @classmethod
    def of(
        cls,
        guest: Guest,
        identifiers: list[GuestIdentifier],
        extensions: list[GuestExtension],
        *,
        base: str,
        version: ApiVersion,
    ) -> GuestOut:
        """From the rows; hrefs use ``base`` and the API version the client called."""
        return cls(
            href=f"{base}/{version}/guests/{guest.ref}",
            ref=guest.ref,
            created_at=iso(guest.created_at),
            modified_at=iso(guest.modified_at),
            first_seen=iso(guest.first_seen),
            last_seen=iso(guest.last_seen),
            guest_type=guest.guest_type,
            title=guest.title,
            first_name=guest.first_name,
            last_name=guest.last_name,
            gender=guest.gender,
            date_of_birth=guest.date_of_birth,
            email=guest.email,
            emails=list(guest.emails) if guest.emails else None,
            phone_numbers=list(guest.phone_numbers) if guest.phone_numbers else None,
            language=guest.language,
            nationality=guest.nationality,
            passport_number=guest.passport_number,
            passport_expiry=guest.passport_expiry,
            street=list(guest.street) if guest.street else None,
            city=guest.city,
            state=guest.state,
            post_code=guest.post_code,
            country=guest.country,
            identifiers=[
                IdentifierOut(provider=i.provider, id=i.value, expiry_date=i.expiry_date) for i in identifiers
            ],
            extensions=[ExtensionOut.of(e, base=base) for e in extensions],
        )


class GuestCollection(BaseModel):
    """A page of guests: hrefs, or full guests with ``expand=true``."""

    href: str
    offset: int
    limit: int
    items: list[GuestOut | Href]


class ExtensionCollection(BaseModel):
    """A page of a guest's extensions: hrefs, or full extensions with ``expand=true``."""

    href: str
    offset: int
    limit: int
    items: list[ExtensionOut | Href]


class ExtensionBody(BaseModel):
    """POST body of a new extension: its name plus flat key-value pairs.

    ``key`` may be sent as ``"default"`` (v2 bodies carry it); the pairs are checked by the service.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    key: str | None = None

    def pairs(self) -> dict[str, Any]:
        """The key-value pairs (everything but ``name`` and ``key``)."""
        return dict(self.model_extra or {})


class ExtensionPairs(BaseModel):
    """PUT/PATCH body of an extension: flat key-value pairs (``name``/``key`` may repeat the path's)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    key: str | None = None

    def pairs(self) -> dict[str, Any]:
        """The key-value pairs (everything but ``name`` and ``key``)."""
        return dict(self.model_extra or {})


class DeletionScheduled(BaseModel):
    """Answer to DELETE of a guest (spec §8.5)."""

    href: str
    ref: str
    status: Literal["DELETION_SCHEDULED"] = "DELETION_SCHEDULED"


class ExtensionDeleted(BaseModel):
    """Answer to DELETE of a data extension (our choice: mirrors the guest DELETE body)."""

    href: str
    ref: str
    status: Literal["DELETED"] = "DELETED"
