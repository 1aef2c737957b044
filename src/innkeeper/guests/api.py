"""Guest routes: the Guest REST API v2.1 and legacy v2 (spec §8), data extensions (§8.7),
and the admin browser lookup (§12.3).

Guest handlers are shared by both versions (``_mount``); v2.1 adds PATCH and the extension
routes, v2 accepts POST on an existing guest as a full update and has no PATCH (405). Legacy v2
addresses data extensions as ``/v2/guests/{ref}/ext{Name}[/{extensionRef}]`` (§8.6).

An expanded retrieve embeds the guest's orders. Orders sit right of guests in the layer order,
so this module cannot call them: the app hands in an ``OrderSource`` (``provide_orders``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.convertors import Convertor, register_url_convertor

from innkeeper.core.clock import iso
from innkeeper.core.db import in_transaction
from innkeeper.guests import deletion, extensions, rest
from innkeeper.guests import service as guests
from innkeeper.guests.errors import InvalidExtension, InvalidGuest
from innkeeper.guests.repository import GuestQuery
from innkeeper.guests.schemas import (
    ApiVersion,
    DeletionScheduled,
    ExtensionBody,
    ExtensionCollection,
    ExtensionDeleted,
    ExtensionOut,
    ExtensionPairs,
    GuestCollection,
    GuestIn,
    GuestOrder,
    GuestOut,
    Href,
    QueryText,
)
from innkeeper.http.auth import require, runtime_of
from innkeeper.http.pagination import DEFAULT_LIMIT, MAX_LIMIT, base_url, collection, collection_href
from innkeeper.http.responses import JSON_TYPE
from innkeeper.http.schemas import error_responses
from innkeeper.tenant.models import ApiToken

router = APIRouter(prefix="/admin/v1", tags=["admin"], dependencies=[Depends(require("admin"))])


@router.get("/browsers/{browser_ref}")
async def browser_lookup(request: Request, browser_ref: str) -> dict[str, Any]:
    """A browser and the guest it belongs to now."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        browser = await guests.get_browser(session, browser_ref)
    return {
        "ref": browser.ref,
        "guestRef": browser.guest_ref,
        "createdAt": iso(browser.created_at),
        "userAgent": browser.user_agent,
        "lastSeen": iso(browser.last_seen),
    }


class SitecoreJSONResponse(JSONResponse):
    """JSON with Sitecore's content type (spec §1.5)."""

    media_type = JSON_TYPE


RO = require("ro")
RW = require("rw")
READ = [Depends(RO)]
WRITE = [Depends(RW)]
MAX_OFFSET = 2_147_483_647
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page (max 100)")]
Expand = Annotated[bool, Query(description="Full items instead of hrefs")]

rest_router = APIRouter(default_response_class=SitecoreJSONResponse)
_BODY_ERRORS = (400, 403, 404, 409, 413, 415)


@dataclass(frozen=True, slots=True)
class SearchParams:
    """The guest search query string (spec §8.2)."""

    query: GuestQuery
    wire: dict[str, str]
    offset: int
    limit: int
    expand: bool


def search_params(
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    expand: Expand = False,
    first_name: Annotated[QueryText | None, Query(alias="firstName")] = None,
    last_name: Annotated[QueryText | None, Query(alias="lastName")] = None,
    email: Annotated[QueryText | None, Query(description="Case-insensitive exact match")] = None,
    email_untouched: Annotated[QueryText | None, Query(alias="email.untouched", description="Exact match")] = None,
    phone_number: Annotated[QueryText | None, Query(alias="phoneNumber")] = None,
    provider: Annotated[QueryText | None, Query(alias="identifiers.provider")] = None,
    ident: Annotated[QueryText | None, Query(alias="identifiers.id")] = None,
    sort: Annotated[Literal["createdAt", "-createdAt"] | None, Query()] = None,
) -> SearchParams:
    """Parse and check the search parameters (provider and id only together)."""
    if bool(provider) != bool(ident):
        raise InvalidGuest(
            "The request is invalid.",
            developer_message="identifiers.provider, identifiers.id: must be given together",
        )
    given = {
        "firstName": first_name,
        "lastName": last_name,
        "email": email,
        "email.untouched": email_untouched,
        "phoneNumber": phone_number,
        "identifiers.provider": provider,
        "identifiers.id": ident,
        "sort": sort,
        "expand": "true" if expand else None,
    }
    query = GuestQuery(
        first_name=first_name or None,
        last_name=last_name or None,
        email=email or None,
        email_exact=email_untouched or None,
        phone=phone_number or None,
        identifier=(provider, ident) if provider and ident else None,
        newest_first=sort != "createdAt",
    )
    wire = {k: v for k, v in given.items() if v}
    return SearchParams(query=query, wire=wire, offset=offset, limit=limit, expand=expand)


def _render(view: rest.GuestView, base: str, version: ApiVersion) -> GuestOut:
    return GuestOut.of(view.guest, view.identifiers, view.extensions, base=base, version=version)


OrderSource = Callable[[AsyncSession, str, str], Awaitable[list[GuestOrder]]]
"""``(session, guest_ref, base_url)`` -> the guest's orders to embed, newest first."""


def provide_orders(app: FastAPI, source: OrderSource) -> None:
    """Let an expanded guest retrieve embed orders from ``source`` (create_app wires it)."""
    app.state.guest_orders = source


def _order_source(request: Request) -> OrderSource | None:
    source: OrderSource | None = getattr(request.app.state, "guest_orders", None)
    return source


def _mount(version: ApiVersion) -> None:
    """Register the guest routes both API versions share."""
    prefix = f"/{version}/guests"
    tags: list[str | Enum] = ["guests" if version == "v2.1" else "guests (legacy v2)"]

    @rest_router.get(
        prefix, dependencies=READ, tags=tags, responses=error_responses(400, 403), response_model_exclude_none=True
    )
    async def search_guests(
        request: Request, params: Annotated[SearchParams, Depends(search_params)]
    ) -> GuestCollection:
        """Search or list guests (newest first); ``expand=true`` returns full guests."""
        runtime = runtime_of(request)
        base = base_url(request, runtime)
        async with runtime.sessions() as session:
            found = await rest.search(
                session, params.query, offset=params.offset, limit=params.limit, expand=params.expand
            )
            items: list[GuestOut | Href] = [
                _render(f, base, version) if isinstance(f, rest.GuestView) else Href(href=f"{base}{prefix}/{f}")
                for f in found
            ]
        href = collection_href(request, runtime, offset=params.offset, limit=params.limit, **params.wire)
        body = collection(href, offset=params.offset, limit=params.limit, items=items)
        return GuestCollection.model_validate(body)

    @rest_router.post(
        prefix,
        status_code=201,
        dependencies=WRITE,
        tags=tags,
        responses=error_responses(400, 403, 409, 413, 415),
        response_model_exclude_none=True,
    )
    async def create_guest(request: Request, body: GuestIn) -> GuestOut:
        """Create a guest (no duplicate check; search first). ``guestType`` is required."""
        runtime = runtime_of(request)

        async def work(session: AsyncSession) -> GuestOut:
            view = await rest.create(session, body.changes(partial=False), clock=runtime.clock)
            return _render(view, base_url(request, runtime), version)

        return await in_transaction(runtime.sessions, work)

    @rest_router.get(
        f"{prefix}/{{guest_ref}}",
        dependencies=READ,
        tags=tags,
        responses=error_responses(403, 404),
        response_model_exclude_none=True,
    )
    async def retrieve_guest(request: Request, guest_ref: str, expand: Expand = False) -> GuestOut:
        """One guest with its identifiers and data extensions; ``expand=true`` also embeds its
        orders (newest first, at most 100; left out when there are none)."""
        runtime = runtime_of(request)
        base = base_url(request, runtime)
        source = _order_source(request) if expand else None
        async with runtime.sessions() as session:
            view = await rest.retrieve(session, guest_ref)
            guest = _render(view, base, version)
            if source is not None:
                guest.orders = await source(session, view.guest.ref, base) or None
        return guest

    async def replace_guest(request: Request, guest_ref: str, body: GuestIn) -> GuestOut:
        """Replace a guest: omitted optional fields are cleared, identifiers replaced as a set."""
        runtime = runtime_of(request)

        async def work(session: AsyncSession) -> GuestOut:
            view = await rest.replace(session, guest_ref, body.changes(partial=False), clock=runtime.clock)
            return _render(view, base_url(request, runtime), version)

        return await in_transaction(runtime.sessions, work)

    # Legacy v2 also takes POST on an existing guest as a full update (spec §8.6).
    for method in ("PUT", "POST") if version == "v2" else ("PUT",):
        rest_router.add_api_route(
            f"{prefix}/{{guest_ref}}",
            replace_guest,
            methods=[method],
            dependencies=WRITE,
            tags=tags,
            responses=error_responses(*_BODY_ERRORS),
            response_model_exclude_none=True,
        )

    @rest_router.delete(f"{prefix}/{{guest_ref}}", dependencies=WRITE, tags=tags, responses=error_responses(403, 404))
    async def delete_guest(
        request: Request, guest_ref: str, token: Annotated[ApiToken, Depends(RW)]
    ) -> DeletionScheduled:
        """Delete a guest: hidden at once, purged with its orders, sessions and events by the worker."""
        runtime = runtime_of(request)

        async def work(session: AsyncSession) -> str:
            guest = await rest.live_guest(session, guest_ref)
            await deletion.schedule(session, guest.ref, actor=token.id, clock=runtime.clock)
            return guest.ref

        ref = await in_transaction(runtime.sessions, work)
        return DeletionScheduled(href=f"{base_url(request, runtime)}{prefix}/{ref}", ref=ref)


_mount("v2.1")
_mount("v2")


@rest_router.patch(
    "/v2.1/guests/{guest_ref}",
    dependencies=WRITE,
    tags=["guests"],
    responses=error_responses(*_BODY_ERRORS),
    response_model_exclude_none=True,
)
async def patch_guest(request: Request, guest_ref: str, body: GuestIn) -> GuestOut:
    """Partially update a guest: only present keys change, ``null`` clears, arrays are replaced."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> GuestOut:
        view = await rest.patch(session, guest_ref, body.changes(partial=True), clock=runtime.clock)
        return _render(view, base_url(request, runtime), "v2.1")

    return await in_transaction(runtime.sessions, work)


# --- data extensions (spec §8.7) -------------------------------------------------------------

EXTENSIONS = "/v2.1/guests/{guest_ref}/extensions"
_EXT_TAGS: list[str | Enum] = ["guest data extensions"]


@rest_router.post(
    EXTENSIONS, status_code=201, dependencies=WRITE, tags=_EXT_TAGS, responses=error_responses(*_BODY_ERRORS)
)
async def create_extension(request: Request, guest_ref: str, body: ExtensionBody) -> ExtensionOut:
    """Add a data extension (``ext``, ``ext1`` … ``ext5``); an existing name is a 409."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> ExtensionOut:
        row = await extensions.create(session, guest_ref, body.name, body.pairs(), key=body.key, clock=runtime.clock)
        return ExtensionOut.of(row, base=base_url(request, runtime))

    return await in_transaction(runtime.sessions, work)


@rest_router.get(EXTENSIONS, dependencies=READ, tags=_EXT_TAGS, responses=error_responses(400, 403, 404))
async def list_extensions(
    request: Request, guest_ref: str, offset: Offset = 0, limit: Limit = DEFAULT_LIMIT, expand: Expand = False
) -> ExtensionCollection:
    """A guest's data extensions by name; ``expand=true`` returns them in full."""
    runtime = runtime_of(request)
    base = base_url(request, runtime)
    async with runtime.sessions() as session:
        rows = await extensions.page(session, guest_ref, offset=offset, limit=limit)
    full = [ExtensionOut.of(r, base=base) for r in rows]
    items: list[ExtensionOut | Href] = list(full) if expand else [Href(href=e.href) for e in full]
    href = collection_href(request, runtime, offset=offset, limit=limit, expand="true" if expand else None)
    return ExtensionCollection.model_validate(collection(href, offset=offset, limit=limit, items=items))


@rest_router.get(f"{EXTENSIONS}/{{name}}", dependencies=READ, tags=_EXT_TAGS, responses=error_responses(403, 404))
async def get_extension(request: Request, guest_ref: str, name: str) -> ExtensionOut:
    """One data extension."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        row = await extensions.get(session, guest_ref, name)
    return ExtensionOut.of(row, base=base_url(request, runtime))


@rest_router.put(f"{EXTENSIONS}/{{name}}", dependencies=WRITE, tags=_EXT_TAGS, responses=error_responses(*_BODY_ERRORS))
async def replace_extension(request: Request, guest_ref: str, name: str, body: ExtensionPairs) -> ExtensionOut:
    """Replace all key-value pairs of a data extension."""
    runtime = runtime_of(request)
    _same_name(body, name)

    async def work(session: AsyncSession) -> ExtensionOut:
        row = await extensions.replace(session, guest_ref, name, body.pairs(), key=body.key, clock=runtime.clock)
        return ExtensionOut.of(row, base=base_url(request, runtime))

    return await in_transaction(runtime.sessions, work)


@rest_router.patch(
    f"{EXTENSIONS}/{{name}}", dependencies=WRITE, tags=_EXT_TAGS, responses=error_responses(*_BODY_ERRORS)
)
async def merge_extension(request: Request, guest_ref: str, name: str, body: ExtensionPairs) -> ExtensionOut:
    """Merge key-value pairs into a data extension (given keys overwrite, others stay)."""
    runtime = runtime_of(request)
    _same_name(body, name)

    async def work(session: AsyncSession) -> ExtensionOut:
        row = await extensions.merge(session, guest_ref, name, body.pairs(), key=body.key, clock=runtime.clock)
        return ExtensionOut.of(row, base=base_url(request, runtime))

    return await in_transaction(runtime.sessions, work)


@rest_router.delete(f"{EXTENSIONS}/{{name}}", dependencies=WRITE, tags=_EXT_TAGS, responses=error_responses(403, 404))
async def delete_extension(request: Request, guest_ref: str, name: str) -> ExtensionDeleted:
    """Delete a data extension."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> ExtensionDeleted:
        row = await extensions.delete(session, guest_ref, name)
        return ExtensionDeleted(href=ExtensionOut.of(row, base=base_url(request, runtime)).href, ref=row.ref)

    return await in_transaction(runtime.sessions, work)


@rest_router.delete(
    f"{EXTENSIONS}/{{name}}/fields", dependencies=WRITE, tags=_EXT_TAGS, responses=error_responses(400, 403, 404)
)
async def delete_extension_fields(
    request: Request,
    guest_ref: str,
    name: str,
    fields: Annotated[QueryText | None, Query(alias="name", description="Keys to delete, separated by |")] = None,
) -> ExtensionOut:
    """Delete the listed keys (``name=a|b``); without ``name`` the extension is emptied but kept."""
    runtime = runtime_of(request)
    keys = None if fields is None else [k for k in fields.split("|") if k]
    if keys == []:
        raise InvalidExtension(
            "The request is invalid.", developer_message="name: list the keys to delete, separated by |"
        )

    async def work(session: AsyncSession) -> ExtensionOut:
        row = await extensions.delete_fields(session, guest_ref, name, keys, clock=runtime.clock)
        return ExtensionOut.of(row, base=base_url(request, runtime))

    return await in_transaction(runtime.sessions, work)


@rest_router.get(
    "/v2.1/guests/{guest_ref}/{name}", dependencies=READ, tags=_EXT_TAGS, responses=error_responses(403, 404)
)
async def get_extension_alias(request: Request, guest_ref: str, name: str) -> ExtensionOut:
    """One data extension at ``/v2.1/guests/{ref}/{name}`` (the docs' href form)."""
    return await get_extension(request, guest_ref, name)


def _same_name(body: ExtensionPairs, name: str) -> None:
    if body.name is not None and body.name != name:
        raise InvalidExtension(
            "The request is invalid.", developer_message="name: must match the extension in the path"
        )


# --- legacy v2 data extensions (spec §8.6) ---------------------------------------------------
#
# ``/v2/guests/{ref}/ext{Name}`` is the collection of the guest's extensions with that name (so at
# most one item): GET lists it, POST creates the extension (body ``{"key":"default", …pairs}``).
# ``/v2/guests/{ref}/ext{Name}/{extensionRef}`` is the extension: GET, PUT or POST (full update),
# DELETE. No PATCH (405). The ``extname`` path convertor only matches ``ext``, ``ext1`` … ``ext5``,
# so these routes cannot shadow any other ``/v2/guests/{ref}/…`` route.


class _ExtensionName(Convertor[str]):
    regex = "|".join(sorted(extensions.NAMES, key=len, reverse=True))

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("extname", _ExtensionName())

V2_EXTENSIONS = "/v2/guests/{guest_ref}/{name:extname}"
V2_EXTENSION = V2_EXTENSIONS + "/{extension_ref}"
_V2_EXT_TAGS: list[str | Enum] = ["guest data extensions (legacy v2)"]
ExtensionName = Annotated[str, Path(description="ext, ext1 … ext5", pattern=f"^({_ExtensionName.regex})$")]


@rest_router.get(V2_EXTENSIONS, dependencies=READ, tags=_V2_EXT_TAGS, responses=error_responses(400, 403, 404))
async def list_v2_extensions(
    request: Request,
    guest_ref: str,
    name: ExtensionName,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    expand: Expand = False,
) -> ExtensionCollection:
    """The guest's extension of that name as a collection (none or one item); ``expand=true``: in full."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        rows = await extensions.page(session, guest_ref, offset=offset, limit=limit, name=name)
    base = base_url(request, runtime)
    full = [ExtensionOut.of(r, base=base, version="v2") for r in rows]
    items: list[ExtensionOut | Href] = list(full) if expand else [Href(href=e.href) for e in full]
    href = collection_href(request, runtime, offset=offset, limit=limit, expand="true" if expand else None)
    return ExtensionCollection.model_validate(collection(href, offset=offset, limit=limit, items=items))


@rest_router.post(
    V2_EXTENSIONS, status_code=201, dependencies=WRITE, tags=_V2_EXT_TAGS, responses=error_responses(*_BODY_ERRORS)
)
async def create_v2_extension(
    request: Request, guest_ref: str, name: ExtensionName, body: ExtensionPairs
) -> ExtensionOut:
    """Create the extension named in the path (``"key":"default"``, the other keys are its data)."""
    runtime = runtime_of(request)
    _same_name(body, name)

    async def work(session: AsyncSession) -> ExtensionOut:
        row = await extensions.create(session, guest_ref, name, body.pairs(), key=body.key, clock=runtime.clock)
        return ExtensionOut.of(row, base=base_url(request, runtime), version="v2")

    return await in_transaction(runtime.sessions, work)


@rest_router.get(V2_EXTENSION, dependencies=READ, tags=_V2_EXT_TAGS, responses=error_responses(403, 404))
async def get_v2_extension(request: Request, guest_ref: str, name: ExtensionName, extension_ref: str) -> ExtensionOut:
    """One data extension, by name and ref."""
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        row = await extensions.get(session, guest_ref, name, ref=extension_ref)
    return ExtensionOut.of(row, base=base_url(request, runtime), version="v2")


async def replace_v2_extension(
    request: Request, guest_ref: str, name: ExtensionName, extension_ref: str, body: ExtensionPairs
) -> ExtensionOut:
    """Replace all key-value pairs of a data extension (PUT, or POST on its href)."""
    runtime = runtime_of(request)
    _same_name(body, name)

    async def work(session: AsyncSession) -> ExtensionOut:
        row = await extensions.replace(
            session, guest_ref, name, body.pairs(), key=body.key, clock=runtime.clock, ref=extension_ref
        )
        return ExtensionOut.of(row, base=base_url(request, runtime), version="v2")

    return await in_transaction(runtime.sessions, work)


for _method in ("PUT", "POST"):
    rest_router.add_api_route(
        V2_EXTENSION,
        replace_v2_extension,
        methods=[_method],
        dependencies=WRITE,
        tags=_V2_EXT_TAGS,
        responses=error_responses(*_BODY_ERRORS),
    )


@rest_router.delete(V2_EXTENSION, dependencies=WRITE, tags=_V2_EXT_TAGS, responses=error_responses(403, 404))
async def delete_v2_extension(
    request: Request, guest_ref: str, name: ExtensionName, extension_ref: str
) -> ExtensionDeleted:
    """Delete a data extension."""
    runtime = runtime_of(request)

    async def work(session: AsyncSession) -> ExtensionDeleted:
        row = await extensions.delete(session, guest_ref, name, ref=extension_ref)
        href = ExtensionOut.of(row, base=base_url(request, runtime), version="v2").href
        return ExtensionDeleted(href=href, ref=row.ref)

    return await in_transaction(runtime.sessions, work)
