"""Order REST API v2.1 (spec §9): orders, items, contact, consumers and data extensions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import in_transaction
from innkeeper.http.auth import require, runtime_of
from innkeeper.http.pagination import DEFAULT_LIMIT, MAX_LIMIT, base_url, collection, collection_href
from innkeeper.http.schemas import error_responses
from innkeeper.orders import service
from innkeeper.orders.schemas import (
    ConsumerCollection,
    ConsumerIn,
    ConsumerOut,
    ContactIn,
    ContactOut,
    Deleted,
    ExtensionCollection,
    ExtensionOut,
    Href,
    OrderCollection,
    OrderIn,
    OrderItemCollection,
    OrderItemIn,
    OrderItemOut,
    OrderItemPatch,
    OrderOut,
    OrderPatch,
    consumer_href,
    extension_href,
    item_href,
    order_href,
)

router = APIRouter(prefix="/v2.1", tags=["orders"])

READ = [Depends(require("ro"))]
WRITE = [Depends(require("rw"))]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (max 100)")]
Expand = Annotated[bool, Query(description="Full items instead of links")]
GET_ERRORS = error_responses(400, 403, 404)
WRITE_ERRORS = error_responses(400, 403, 404, 409, 413, 415)


def _base(request: Request) -> str:
    return base_url(request, runtime_of(request))


def _last_segment(href: str) -> str:
    return href.rstrip("/").rsplit("/", 1)[-1].lower()


# --- orders -------------------------------------------------------------------------------------


@router.post("/orders", status_code=201, dependencies=WRITE, responses=WRITE_ERRORS, response_model_exclude_none=True)
async def create_order(request: Request, body: OrderIn) -> OrderOut:
    """Create an order; ``referenceId`` must be unique (409 otherwise)."""
    runtime = runtime_of(request)
    fields = body.model_dump()

    async def work(session: AsyncSession) -> OrderOut:
        return OrderOut.of(await service.create_order(session, fields, clock=runtime.clock), _base(request))

    return await in_transaction(runtime.sessions, work)


@router.get("/orders", dependencies=READ, responses=GET_ERRORS, response_model_exclude_none=True)
async def list_orders(
    request: Request,
    referenceId: Annotated[str | None, Query(max_length=200)] = None,  # noqa: N803
    guestRef: Annotated[str | None, Query(max_length=64, description="Only this guest's orders")] = None,  # noqa: N803
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    expand: Expand = False,
) -> OrderCollection:
    """Orders, newest first; ``referenceId`` finds one order by your order id, ``guestRef`` a guest's orders."""
    runtime = runtime_of(request)
    base = _base(request)
    async with runtime.sessions() as session:
        rows = await service.list_orders(
            session, reference_id=referenceId, guest_ref=guestRef, offset=offset, limit=limit
        )
    items: list[Any] = [OrderOut.of(r, base) if expand else Href(href=order_href(base, r.ref)) for r in rows]
    href = collection_href(request, runtime, offset=offset, limit=limit, referenceId=referenceId, guestRef=guestRef)
    return OrderCollection.model_validate(collection(href, offset=offset, limit=limit, items=items))


@router.get("/orders/{order_ref}", dependencies=READ, responses=GET_ERRORS, response_model_exclude_none=True)
async def get_order(request: Request, order_ref: str) -> OrderOut:
    """One order."""
    async with runtime_of(request).sessions() as session:
        return OrderOut.of(await service.get_order(session, order_ref), _base(request))


@router.put("/orders/{order_ref}", dependencies=WRITE, responses=WRITE_ERRORS, response_model_exclude_none=True)
async def replace_order(request: Request, order_ref: str, body: OrderIn) -> OrderOut:
    """Replace an order: required fields as on create, omitted optional fields are cleared."""
    runtime = runtime_of(request)
    changes = body.model_dump()

    async def work(session: AsyncSession) -> OrderOut:
        order = await service.update_order(session, order_ref, changes, replace=True, clock=runtime.clock)
        return OrderOut.of(order, _base(request))

    return await in_transaction(runtime.sessions, work)


@router.patch("/orders/{order_ref}", dependencies=WRITE, responses=WRITE_ERRORS, response_model_exclude_none=True)
async def patch_order(request: Request, order_ref: str, body: OrderPatch) -> OrderOut:
    """Change only the given fields; ``null`` clears an optional field."""
    runtime = runtime_of(request)
    changes = body.model_dump(exclude_unset=True)

    async def work(session: AsyncSession) -> OrderOut:
        order = await service.update_order(session, order_ref, changes, replace=False, clock=runtime.clock)
        return OrderOut.of(order, _base(request))

    return await in_transaction(runtime.sessions, work)


@router.delete("/orders/{order_ref}", dependencies=WRITE, responses=error_responses(403, 404))
async def delete_order(request: Request, order_ref: str) -> Deleted:
    """Delete an order with its items, contact, consumers and data extensions."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> Deleted:
        order = await service.delete_order(session, order_ref)
        return Deleted(href=order_href(_base(request), order.ref), ref=order.ref)

    return await in_transaction(runtime.sessions, work)


# --- order items --------------------------------------------------------------------------------


@router.post(
    "/orders/{order_ref}/orderItems",
    status_code=201,
    dependencies=WRITE,
    responses=WRITE_ERRORS,
    response_model_exclude_none=True,
)
async def create_order_item(request: Request, order_ref: str, body: OrderItemIn) -> OrderItemOut:
    """Add an item to an order."""
    runtime = runtime_of(request)
    fields = body.model_dump()

    async def work(session: AsyncSession) -> OrderItemOut:
        item = await service.add_item(session, order_ref, fields, clock=runtime.clock)
        return OrderItemOut.of(item, _base(request))

    return await in_transaction(runtime.sessions, work)


@router.get("/orders/{order_ref}/orderItems", dependencies=READ, responses=GET_ERRORS, response_model_exclude_none=True)
async def list_order_items(
    request: Request, order_ref: str, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT, expand: Expand = False
) -> OrderItemCollection:
    """The order's items."""
    runtime = runtime_of(request)
    base = _base(request)
    async with runtime.sessions() as session:
        rows = await service.list_items(session, order_ref, offset=offset, limit=limit)
    items: list[Any] = [OrderItemOut.of(r, base) if expand else Href(href=item_href(base, r.ref)) for r in rows]
    href = collection_href(request, runtime, offset=offset, limit=limit)
    return OrderItemCollection.model_validate(collection(href, offset=offset, limit=limit, items=items))


@router.get("/orderItems/{item_ref}", dependencies=READ, responses=GET_ERRORS, response_model_exclude_none=True)
async def get_order_item(request: Request, item_ref: str) -> OrderItemOut:
    """One order item."""
    async with runtime_of(request).sessions() as session:
        return OrderItemOut.of(await service.get_item(session, item_ref), _base(request))


@router.put("/orderItems/{item_ref}", dependencies=WRITE, responses=WRITE_ERRORS, response_model_exclude_none=True)
async def replace_order_item(request: Request, item_ref: str, body: OrderItemIn) -> OrderItemOut:
    """Replace an order item: required fields as on create, omitted optional fields are cleared."""
    runtime = runtime_of(request)
    changes = body.model_dump()

    async def work(session: AsyncSession) -> OrderItemOut:
        item = await service.update_item(session, item_ref, changes, replace=True, clock=runtime.clock)
        return OrderItemOut.of(item, _base(request))

    return await in_transaction(runtime.sessions, work)


@router.patch("/orderItems/{item_ref}", dependencies=WRITE, responses=WRITE_ERRORS, response_model_exclude_none=True)
async def patch_order_item(request: Request, item_ref: str, body: OrderItemPatch) -> OrderItemOut:
    """Change only the given fields of an order item."""
    runtime = runtime_of(request)
    changes = body.model_dump(exclude_unset=True)

    async def work(session: AsyncSession) -> OrderItemOut:
        item = await service.update_item(session, item_ref, changes, replace=False, clock=runtime.clock)
        return OrderItemOut.of(item, _base(request))

    return await in_transaction(runtime.sessions, work)


@router.delete("/orderItems/{item_ref}", dependencies=WRITE, responses=error_responses(403, 404))
async def delete_order_item(request: Request, item_ref: str) -> Deleted:
    """Delete an order item and its data extension."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> Deleted:
        item = await service.delete_item(session, item_ref)
        return Deleted(href=item_href(_base(request), item.ref), ref=item.ref)

    return await in_transaction(runtime.sessions, work)


# --- contact ------------------------------------------------------------------------------------


async def _write_contact(request: Request, order_ref: str, person: dict[str, Any], mode: service.ContactMode) -> Any:
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> ContactOut:
        contact = await service.set_contact(session, order_ref, person, mode=mode, clock=runtime.clock)
        return ContactOut.of(contact, _base(request))

    return await in_transaction(runtime.sessions, work)


@router.post(
    "/orders/{order_ref}/contact",
    status_code=201,
    dependencies=WRITE,
    responses=WRITE_ERRORS,
    response_model_exclude_none=True,
)
async def create_contact(request: Request, order_ref: str, body: ContactIn) -> ContactOut:
    """Set the order's contact; its identifiers (or email) resolve or create the guest the order links to."""
    result: ContactOut = await _write_contact(request, order_ref, body.model_dump(exclude_unset=True), "create")
    return result


@router.get("/orders/{order_ref}/contact", dependencies=READ, responses=GET_ERRORS, response_model_exclude_none=True)
async def get_contact(request: Request, order_ref: str) -> ContactOut:
    """The order's contact, with ``guest.href`` when it is linked to a guest."""
    async with runtime_of(request).sessions() as session:
        return ContactOut.of(await service.get_contact(session, order_ref), _base(request))


@router.put("/orders/{order_ref}/contact", dependencies=WRITE, responses=WRITE_ERRORS, response_model_exclude_none=True)
async def replace_contact(request: Request, order_ref: str, body: ContactIn) -> ContactOut:
    """Replace the contact's fields (omitted ones are cleared) and re-resolve its guest."""
    result: ContactOut = await _write_contact(request, order_ref, body.model_dump(exclude_unset=True), "replace")
    return result


@router.patch(
    "/orders/{order_ref}/contact", dependencies=WRITE, responses=WRITE_ERRORS, response_model_exclude_none=True
)
async def patch_contact(request: Request, order_ref: str, body: ContactIn) -> ContactOut:
    """Change only the given contact fields (``null`` clears one) and re-resolve its guest."""
    result: ContactOut = await _write_contact(request, order_ref, body.model_dump(exclude_unset=True), "patch")
    return result


@router.delete("/orders/{order_ref}/contact", dependencies=WRITE, responses=error_responses(403, 404))
async def delete_contact(request: Request, order_ref: str) -> Deleted:
    """Delete the order's contact; the order is then linked to no guest."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> Deleted:
        contact = await service.delete_contact(session, order_ref, clock=runtime.clock)
        return Deleted(href=f"{order_href(_base(request), contact.order_ref)}/contact", ref=contact.ref)

    return await in_transaction(runtime.sessions, work)


# --- consumers ----------------------------------------------------------------------------------


def _consumer_input(body: ConsumerIn) -> tuple[dict[str, Any], list[str] | None, bool]:
    """Person fields, the consumed item refs (from their hrefs) and whether ``orderItems`` was sent."""
    person = body.model_dump(exclude_unset=True, exclude={"orderItems"})
    refs = None if body.orderItems is None else [_last_segment(link.href) for link in body.orderItems]
    return person, refs, "orderItems" in body.model_fields_set


@router.post(
    "/orders/{order_ref}/consumers",
    status_code=201,
    dependencies=WRITE,
    responses=WRITE_ERRORS,
    response_model_exclude_none=True,
)
async def create_consumer(request: Request, order_ref: str, body: ConsumerIn) -> ConsumerOut:
    """Add a consumer of some of the order's items (``orderItems: [{href}]``)."""
    runtime = runtime_of(request)
    person, refs, _ = _consumer_input(body)

    async def work(session: AsyncSession) -> ConsumerOut:
        consumer = await service.add_consumer(session, order_ref, person, item_refs=refs, clock=runtime.clock)
        return ConsumerOut.of_consumer(consumer, _base(request))

    return await in_transaction(runtime.sessions, work)


@router.get("/orders/{order_ref}/consumers", dependencies=READ, responses=GET_ERRORS, response_model_exclude_none=True)
async def list_consumers(
    request: Request, order_ref: str, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT, expand: Expand = False
) -> ConsumerCollection:
    """The order's consumers."""
    runtime = runtime_of(request)
    base = _base(request)
    async with runtime.sessions() as session:
        rows = await service.list_consumers(session, order_ref, offset=offset, limit=limit)
    items: list[Any] = [
        ConsumerOut.of_consumer(r, base) if expand else Href(href=consumer_href(base, r.ref)) for r in rows
    ]
    href = collection_href(request, runtime, offset=offset, limit=limit)
    return ConsumerCollection.model_validate(collection(href, offset=offset, limit=limit, items=items))


@router.get("/consumers/{consumer_ref}", dependencies=READ, responses=GET_ERRORS, response_model_exclude_none=True)
async def get_consumer(request: Request, consumer_ref: str) -> ConsumerOut:
    """One consumer."""
    async with runtime_of(request).sessions() as session:
        return ConsumerOut.of_consumer(await service.get_consumer(session, consumer_ref), _base(request))


async def _update_consumer(request: Request, consumer_ref: str, body: ConsumerIn, *, replace: bool) -> ConsumerOut:
    runtime = runtime_of(request)
    person, refs, given = _consumer_input(body)

    async def work(session: AsyncSession) -> ConsumerOut:
        consumer = await service.update_consumer(
            session, consumer_ref, person, item_refs=refs, items_given=given, replace=replace, clock=runtime.clock
        )
        return ConsumerOut.of_consumer(consumer, _base(request))

    return await in_transaction(runtime.sessions, work)


@router.put("/consumers/{consumer_ref}", dependencies=WRITE, responses=WRITE_ERRORS, response_model_exclude_none=True)
async def replace_consumer(request: Request, consumer_ref: str, body: ConsumerIn) -> ConsumerOut:
    """Replace a consumer's fields and items."""
    return await _update_consumer(request, consumer_ref, body, replace=True)


@router.patch("/consumers/{consumer_ref}", dependencies=WRITE, responses=WRITE_ERRORS, response_model_exclude_none=True)
async def patch_consumer(request: Request, consumer_ref: str, body: ConsumerIn) -> ConsumerOut:
    """Change only the given consumer fields (``orderItems``, when given, is replaced)."""
    return await _update_consumer(request, consumer_ref, body, replace=False)


@router.delete("/consumers/{consumer_ref}", dependencies=WRITE, responses=error_responses(403, 404))
async def delete_consumer(request: Request, consumer_ref: str) -> Deleted:
    """Delete a consumer."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> Deleted:
        consumer = await service.delete_consumer(session, consumer_ref)
        return Deleted(href=consumer_href(_base(request), consumer.ref), ref=consumer.ref)

    return await in_transaction(runtime.sessions, work)


# --- data extensions (orders and order items) ---------------------------------------------------

ExtensionBody = Annotated[
    dict[str, Any],
    Body(
        description="Key-value pairs (≤ 100, alphanumeric keys, primitive values); `name` `ext` optional",
        examples=[{"name": "ext", "loyaltyTier": "silver", "rewardBalance": 0}],
    ),
]


def _extension_routes(owner_type: service.OwnerType, prefix: str) -> None:
    """Register the data-extension routes of one owner type under ``prefix``."""
    owner = "order" if owner_type == "order" else "order item"
    tag = f" of an {owner}"

    async def write(
        request: Request, owner_ref: str, name: str | None, body: dict[str, Any], action: str
    ) -> ExtensionOut:
        runtime = runtime_of(request)

        async def work(session: AsyncSession) -> ExtensionOut:
            if action == "create":
                row = await service.create_extension(
                    session, owner_type, owner_ref, body, name=name, clock=runtime.clock
                )
            else:
                assert name is not None
                row = await service.update_extension(
                    session, owner_type, owner_ref, name, body, replace=action == "replace", clock=runtime.clock
                )
            return ExtensionOut.of(row, _base(request))

        return await in_transaction(runtime.sessions, work)

    async def create_extension(request: Request, owner_ref: str, body: ExtensionBody) -> ExtensionOut:
        return await write(request, owner_ref, None, body, "create")

    async def create_named_extension(request: Request, owner_ref: str, name: str, body: ExtensionBody) -> ExtensionOut:
        return await write(request, owner_ref, name, body, "create")

    async def replace_extension(request: Request, owner_ref: str, name: str, body: ExtensionBody) -> ExtensionOut:
        return await write(request, owner_ref, name, body, "replace")

    async def patch_extension(request: Request, owner_ref: str, name: str, body: ExtensionBody) -> ExtensionOut:
        return await write(request, owner_ref, name, body, "patch")

    async def list_extensions(
        request: Request, owner_ref: str, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT, expand: Expand = False
    ) -> ExtensionCollection:
        runtime = runtime_of(request)
        base = _base(request)
        async with runtime.sessions() as session:
            rows = await service.list_extensions(session, owner_type, owner_ref)
        page = rows[offset : offset + limit]
        items: list[Any] = [ExtensionOut.of(r, base) if expand else Href(href=extension_href(base, r)) for r in page]
        href = collection_href(request, runtime, offset=offset, limit=limit)
        return ExtensionCollection.model_validate(collection(href, offset=offset, limit=limit, items=items))

    async def get_extension(request: Request, owner_ref: str, name: str) -> ExtensionOut:
        async with runtime_of(request).sessions() as session:
            row = await service.get_extension(session, owner_type, owner_ref, name)
            return ExtensionOut.of(row, _base(request))

    async def delete_extension(request: Request, owner_ref: str, name: str) -> Deleted:
        runtime = runtime_of(request)

        async def work(session: AsyncSession) -> Deleted:
            row = await service.delete_extension(session, owner_type, owner_ref, name)
            return Deleted(href=extension_href(_base(request), row), ref=row.ref)

        return await in_transaction(runtime.sessions, work)

    async def delete_extension_fields(
        request: Request,
        owner_ref: str,
        extension_name: str,
        fields: Annotated[
            str | None, Query(alias="name", max_length=10_000, description="Keys to delete, separated by |")
        ] = None,
    ) -> ExtensionOut:
        runtime = runtime_of(request)
        keys = None if fields is None else [k for k in fields.split("|") if k]

        async def work(session: AsyncSession) -> ExtensionOut:
            row = await service.delete_extension_fields(
                session, owner_type, owner_ref, extension_name, keys, clock=runtime.clock
            )
            return ExtensionOut.of(row, _base(request))

        return await in_transaction(runtime.sessions, work)

    collection_path = f"{prefix}/{{owner_ref}}/extensions"
    one = f"{collection_path}/{{name}}"
    routes: list[tuple[str, str, Any, str]] = [
        ("POST", collection_path, create_extension, f"Create the data extension{tag} (`name` in the body)."),
        ("GET", collection_path, list_extensions, f"The data extensions{tag}."),
        ("POST", one, create_named_extension, f"Create the data extension{tag}; `name` must be `ext`."),
        ("GET", one, get_extension, f"One data extension{tag}."),
        ("PUT", one, replace_extension, f"Replace all key-value pairs of the data extension{tag}."),
        ("PATCH", one, patch_extension, f"Merge key-value pairs into the data extension{tag}."),
        ("DELETE", one, delete_extension, f"Delete the data extension{tag}."),
        (
            "DELETE",
            f"{collection_path}/{{extension_name}}/fields",
            delete_extension_fields,
            f"Delete keys (`?name=a|b`) of the data extension{tag}; without `name` empty it.",
        ),
    ]
    for method, path, endpoint, doc in routes:
        reading = method == "GET"
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            status_code=201 if method == "POST" else 200,
            dependencies=READ if reading else WRITE,
            responses=GET_ERRORS if reading else WRITE_ERRORS,
            description=doc,
            summary=doc.split(";")[0].split(" (")[0].rstrip("."),
            name=f"{endpoint.__name__}_{owner_type}",
            response_model_exclude_none=True,
        )


_extension_routes("order", "/orders")
_extension_routes("orderItem", "/orderItems")
