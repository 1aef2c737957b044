"""Wire shapes of the Order REST API v2.1 (spec §9): Sitecore camelCase aliases, strict input."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from innkeeper.core import numbers
from innkeeper.core.clock import iso
from innkeeper.core.timeparse import parse_iso
from innkeeper.orders.models import (
    ItemStatus,
    Order,
    OrderConsumer,
    OrderContact,
    OrderExtension,
    OrderItem,
    OrderStatus,
)

Channel = Literal[
    "WEB",
    "MOBILE_WEB",
    "MOBILE_APP",
    "CALL_CENTER",
    "AIRPORT_KIOSK",
    "BRANCH",
    "KIOSK",
    "OFFLINE",
    "GDS",
    "OTA",
    "OTHER",
]


def _iso(value: Any) -> datetime:
    parsed = parse_iso(value) if isinstance(value, str) and len(value) <= 64 else None
    if parsed is None:
        raise ValueError("must be an ISO 8601 date or date-time")
    return parsed


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


def _iso_text(value: str) -> str:
    if len(value) > 40 or parse_iso(value) is None:
        raise ValueError("must be an ISO 8601 date or date-time")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso)]
IsoText = Annotated[str, AfterValidator(_iso_text)]
Amount = Annotated[float, Field(ge=-numbers.MAX_AMOUNT, le=numbers.MAX_AMOUNT, allow_inf_nan=False)]
Quantity = Annotated[int, Field(ge=0, le=numbers.MAX_QUANTITY)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
ItemType = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Z0-9_]+$")]


class _Input(BaseModel):
    """Strict JSON input: unknown fields, wrong types and NUL characters are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if _has_nul(data):
            raise ValueError("strings must not contain NUL characters")
        return data


class Href(BaseModel):
    """A link to another resource."""

    href: str


def order_href(base: str, ref: str) -> str:
    """Canonical URI of an order."""
    return f"{base}/v2.1/orders/{ref}"


def item_href(base: str, ref: str) -> str:
    """Canonical URI of an order item."""
    return f"{base}/v2.1/orderItems/{ref}"


def consumer_href(base: str, ref: str) -> str:
    """Canonical URI of an order consumer."""
    return f"{base}/v2.1/consumers/{ref}"


def extension_href(base: str, row: OrderExtension) -> str:
    """Canonical URI of an order or order-item data extension."""
    owner = order_href(base, row.owner_ref) if row.owner_type == "order" else item_href(base, row.owner_ref)
    return f"{owner}/extensions/{row.name}"


def guest_link(base: str, guest_ref: str | None) -> Href | None:
    """The ``guest: {href}`` link, when there is a guest."""
    return None if guest_ref is None else Href(href=f"{base}/v2.1/guests/{guest_ref}")


class Deleted(BaseModel):
    """The body of a successful DELETE."""

    href: str
    ref: str
    status: Literal["DELETED"] = "DELETED"


# -- orders ---------------------------------------------------------------------------------------


class OrderIn(_Input):
    """An order on create and PUT: the required fields of spec §9.1 must be present."""

    reference_id: str = Field(alias="referenceId", min_length=1, max_length=200)
    ordered_at: IsoDateTime = Field(alias="orderedAt")
    currency_code: Currency = Field(alias="currencyCode")
    price: Amount
    status: OrderStatus | None = None
    channel: Channel | None = None
    point_of_sale: str | None = Field(default=None, alias="pointOfSale", max_length=100)
    payment_type: str | None = Field(default=None, alias="paymentType", max_length=50)
    card_type: str | None = Field(default=None, alias="cardType", max_length=50)


class OrderPatch(_Input):
    """A partial update: only present keys change; ``null`` clears an optional field."""

    reference_id: str | None = Field(default=None, alias="referenceId", min_length=1, max_length=200)
    ordered_at: IsoDateTime | None = Field(default=None, alias="orderedAt")
    currency_code: Currency | None = Field(default=None, alias="currencyCode")
    price: Amount | None = None
    status: OrderStatus | None = None
    channel: Channel | None = None
    point_of_sale: str | None = Field(default=None, alias="pointOfSale", max_length=100)
    payment_type: str | None = Field(default=None, alias="paymentType", max_length=50)
    card_type: str | None = Field(default=None, alias="cardType", max_length=50)


class OrderOut(BaseModel):
    """An order (spec §9.1)."""

    href: str
    ref: str
    referenceId: str  # noqa: N815
    orderedAt: str | None = None  # noqa: N815
    currencyCode: str | None = None  # noqa: N815
    price: float
    status: str
    channel: str | None = None
    pointOfSale: str | None = None  # noqa: N815
    paymentType: str | None = None  # noqa: N815
    cardType: str | None = None  # noqa: N815
    createdAt: str | None = None  # noqa: N815
    modifiedAt: str | None = None  # noqa: N815
    contact: Href
    orderItems: Href  # noqa: N815
    guest: Href | None = None

    @classmethod
    def of(cls, order: Order, base: str) -> OrderOut:
        """From a row."""
        href = order_href(base, order.ref)
        return cls(
            href=href,
            ref=order.ref,
            referenceId=order.reference_id,
            orderedAt=iso(order.ordered_at),
            currencyCode=order.currency_code,
            price=order.price,
            status=order.status,
            channel=order.channel,
            pointOfSale=order.point_of_sale,
            paymentType=order.payment_type,
            cardType=order.card_type,
            createdAt=iso(order.created_at),
            modifiedAt=iso(order.modified_at),
            contact=Href(href=f"{href}/contact"),
            orderItems=Href(href=f"{href}/orderItems"),
            guest=guest_link(base, order.guest_ref),
        )


class OrderCollection(BaseModel):
    """A page of orders: links, or full orders with ``expand=true``."""

    href: str
    offset: int
    limit: int
    items: list[OrderOut | Href]


# -- order items ----------------------------------------------------------------------------------


class OrderItemIn(_Input):
    """An order item on create and PUT (spec §9.2)."""

    type: ItemType
    reference_id: str | None = Field(default=None, alias="referenceId", max_length=200)
    product_id: str = Field(alias="productId", min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=2000)
    vendor: str | None = Field(default=None, max_length=200)
    ordered_at: IsoDateTime | None = Field(default=None, alias="orderedAt")
    quantity: Quantity | None = None
    price: Amount
    currency_code: Currency = Field(alias="currencyCode")
    original_price: Amount | None = Field(default=None, alias="originalPrice")
    original_currency_code: Currency | None = Field(default=None, alias="originalCurrencyCode")
    status: ItemStatus


class OrderItemPatch(_Input):
    """A partial update of an order item."""

    type: ItemType | None = None
    reference_id: str | None = Field(default=None, alias="referenceId", max_length=200)
    product_id: str | None = Field(default=None, alias="productId", min_length=1, max_length=200)
    name: str | None = Field(default=None, min_length=1, max_length=128)
    description: str | None = Field(default=None, max_length=2000)
    vendor: str | None = Field(default=None, max_length=200)
    ordered_at: IsoDateTime | None = Field(default=None, alias="orderedAt")
    quantity: Quantity | None = None
    price: Amount | None = None
    currency_code: Currency | None = Field(default=None, alias="currencyCode")
    original_price: Amount | None = Field(default=None, alias="originalPrice")
    original_currency_code: Currency | None = Field(default=None, alias="originalCurrencyCode")
    status: ItemStatus | None = None


class OrderItemOut(BaseModel):
    """An order item (spec §9.2)."""

    href: str
    ref: str
    type: str | None = None
    referenceId: str | None = None  # noqa: N815
    productId: str | None = None  # noqa: N815
    name: str | None = None
    description: str | None = None
    vendor: str | None = None
    orderedAt: str | None = None  # noqa: N815
    quantity: int
    price: float
    currencyCode: str | None = None  # noqa: N815
    originalPrice: float | None = None  # noqa: N815
    originalCurrencyCode: str | None = None  # noqa: N815
    status: str | None = None
    createdAt: str | None = None  # noqa: N815
    modifiedAt: str | None = None  # noqa: N815
    order: Href

    @classmethod
    def of(cls, item: OrderItem, base: str) -> OrderItemOut:
        """From a row."""
        return cls(
            href=item_href(base, item.ref),
            ref=item.ref,
            type=item.type,
            referenceId=item.reference_id,
            productId=item.product_id,
            name=item.name,
            description=item.description,
            vendor=item.vendor,
            orderedAt=iso(item.ordered_at),
            quantity=item.quantity,
            price=item.price,
            currencyCode=item.currency_code,
            originalPrice=item.original_price,
            originalCurrencyCode=item.original_currency_code,
            status=item.status,
            createdAt=iso(item.created_at),
            modifiedAt=iso(item.modified_at),
            order=Href(href=order_href(base, item.order_ref)),
        )


class OrderItemCollection(BaseModel):
    """A page of an order's items."""

    href: str
    offset: int
    limit: int
    items: list[OrderItemOut | Href]


# -- contact and consumers ------------------------------------------------------------------------


class IdentifierIn(_Input):
    """One identifier of a person: ``{provider, id, expiryDate?}``."""

    provider: str = Field(min_length=1, max_length=100)
    id: str = Field(min_length=1, max_length=500)
    expiryDate: IsoText | None = None  # noqa: N815


class PersonIn(_Input):
    """Guest-like person fields of an order contact or consumer (spec §7.1 names)."""

    title: str | None = Field(default=None, max_length=50)
    firstName: str | None = Field(default=None, max_length=200)  # noqa: N815
    lastName: str | None = Field(default=None, max_length=200)  # noqa: N815
    gender: Literal["male", "female", "unknown"] | None = None
    dateOfBirth: IsoText | None = None  # noqa: N815
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
    phoneNumbers: list[Annotated[str, Field(min_length=1, max_length=50)]] | None = Field(  # noqa: N815
        default=None, max_length=20
    )
    language: str | None = Field(default=None, max_length=8)
    nationality: str | None = Field(default=None, max_length=100)
    passportNumber: str | None = Field(default=None, max_length=100)  # noqa: N815
    passportExpiry: IsoText | None = None  # noqa: N815
    street: list[Annotated[str, Field(max_length=200)]] | None = Field(default=None, max_length=10)
    city: str | None = Field(default=None, max_length=200)
    state: str | None = Field(default=None, max_length=200)
    postCode: str | None = Field(default=None, max_length=40)  # noqa: N815
    country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")
    identifiers: list[IdentifierIn] | None = Field(default=None, max_length=20)


class ContactIn(PersonIn):
    """The order's primary contact."""


class ConsumerIn(PersonIn):
    """Someone who consumes items of the order, with links to those items."""

    orderItems: list[Href] | None = Field(default=None, max_length=500)  # noqa: N815


class IdentifierOut(BaseModel):
    """An identifier as stored."""

    provider: str
    id: str
    expiryDate: str | None = None  # noqa: N815


class ContactOut(BaseModel):
    """An order contact; ``guest`` links the guest it resolved to."""

    href: str
    ref: str
    title: str | None = None
    firstName: str | None = None  # noqa: N815
    lastName: str | None = None  # noqa: N815
    gender: str | None = None
    dateOfBirth: str | None = None  # noqa: N815
    email: str | None = None
    phoneNumbers: list[str] | None = None  # noqa: N815
    language: str | None = None
    nationality: str | None = None
    passportNumber: str | None = None  # noqa: N815
    passportExpiry: str | None = None  # noqa: N815
    street: list[str] | None = None
    city: str | None = None
    state: str | None = None
    postCode: str | None = None  # noqa: N815
    country: str | None = None
    identifiers: list[IdentifierOut] | None = None
    createdAt: str | None = None  # noqa: N815
    modifiedAt: str | None = None  # noqa: N815
    order: Href
    guest: Href | None = None

    @classmethod
    def of(cls, contact: OrderContact, base: str) -> ContactOut:
        """From a row."""
        return cls.model_validate(
            {
                **_person(contact.data),
                "href": f"{order_href(base, contact.order_ref)}/contact",
                "ref": contact.ref,
                "createdAt": iso(contact.created_at),
                "modifiedAt": iso(contact.modified_at),
                "order": Href(href=order_href(base, contact.order_ref)),
                "guest": guest_link(base, contact.guest_ref),
            }
        )


def _person(data: dict[str, Any] | None) -> dict[str, Any]:
    """Stored person fields known to the representation (anything else is dropped)."""
    known = PersonIn.model_fields.keys()
    return {k: v for k, v in (data or {}).items() if k in known}


class ConsumerOut(ContactOut):
    """An order consumer and the items it consumes."""

    orderItems: list[Href]  # noqa: N815

    @classmethod
    def of_consumer(cls, consumer: OrderConsumer, base: str) -> ConsumerOut:
        """From a row."""
        return cls.model_validate(
            {
                **_person(consumer.data),
                "href": consumer_href(base, consumer.ref),
                "ref": consumer.ref,
                "createdAt": iso(consumer.created_at),
                "modifiedAt": iso(consumer.modified_at),
                "order": Href(href=order_href(base, consumer.order_ref)),
                "guest": guest_link(base, consumer.guest_ref),
                "orderItems": [Href(href=item_href(base, ref)) for ref in consumer.order_item_refs or []],
            }
        )


class ConsumerCollection(BaseModel):
    """An order's consumers."""

    href: str
    offset: int
    limit: int
    items: list[ConsumerOut | Href]


# -- data extensions ------------------------------------------------------------------------------


class ExtensionOut(BaseModel):
    """An order or order-item data extension: metadata, then the key-value pairs."""

    model_config = ConfigDict(extra="allow")

    href: str
    ref: str
    name: str
    key: str
    createdAt: str | None = None  # noqa: N815
    modifiedAt: str | None = None  # noqa: N815
    order: Href | None = None
    orderItem: Href | None = None  # noqa: N815

    @classmethod
    def of(cls, row: OrderExtension, base: str) -> ExtensionOut:
        """From a row: metadata first, then the pairs in key order."""
        owner = (
            {"order": Href(href=order_href(base, row.owner_ref))}
            if row.owner_type == "order"
            else {"orderItem": Href(href=item_href(base, row.owner_ref))}
        )
        return cls.model_validate(
            {
                "href": extension_href(base, row),
                "ref": row.ref,
                "name": row.name,
                "key": row.key,
                "createdAt": iso(row.created_at),
                "modifiedAt": iso(row.modified_at),
                **owner,
                # Sorted: PostgreSQL's JSONB does not keep insertion order, so neither do we.
                **dict(sorted((row.data or {}).items())),
            }
        )


class ExtensionCollection(BaseModel):
    """The data extensions of an order or order item."""

    href: str
    offset: int
    limit: int
    items: list[ExtensionOut | Href]
