"""Stream API routes (spec cdp.md §2–3, §13): plain Starlette endpoints on the hot path."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from innkeeper.core.auth import same
from innkeeper.core.db import in_transaction
from innkeeper.core.errors import InnkeeperError
from innkeeper.core.runtime import Runtime
from innkeeper.guests import service as guests
from innkeeper.http.errors import status_of, stream_error
from innkeeper.http.jsonp import InvalidCallback, callback_name
from innkeeper.http.query import decode_json, parse_message, query_params
from innkeeper.http.responses import JS_TYPE, json_response, jsonp_response
from innkeeper.stream import service
from innkeeper.stream.errors import MessageTooLarge, UnparseableMessage
from innkeeper.stream.group_commit import GroupCommit
from innkeeper.tenant import service as tenant
from innkeeper.tenant.errors import InvalidClientKey

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
Work = Callable[[Runtime, dict[str, str]], Awaitable[tuple[int, dict[str, Any]]]]


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _ok(runtime: Runtime, **fields: Any) -> dict[str, Any]:
    return {"status": "OK", "version": "1.2", "client_key": runtime.client_key, **fields}


async def _respond(request: Request, work: Work, *, edge: bool) -> Response:
    runtime = _runtime(request)
    params = query_params(request.scope["query_string"])
    try:
        callback = callback_name(params)
    except InvalidCallback as exc:
        return json_response(stream_error(400, exc.message, client_key=None, code=exc.code), 400)
    try:
        if edge:
            await _check_context(request, runtime, params)
        status, body = await work(runtime, params)
    except InnkeeperError as exc:
        status = status_of(exc)
        shown_key = runtime.client_key if status != 401 else params.get("client_key", "")[:64]
        body = stream_error(status, exc.message, client_key=shown_key, code=exc.code)
    except Exception:
        log.exception("stream request failed: %s %s", request.method, request.url.path)
        status, body = 500, stream_error(500, "Internal error", client_key=runtime.client_key)
    if callback is not None:
        return jsonp_response(callback, body)
    return json_response(body, status)


def _check_key(runtime: Runtime, key: object) -> None:
    if not isinstance(key, str) or not same(key, runtime.client_key):
        raise InvalidClientKey("Invalid client key specified")


async def _check_context(request: Request, runtime: Runtime, params: dict[str, str]) -> None:
    context_id = params.get("sitecoreContextId") or request.headers.get("x-sitecore-contextid") or ""
    if not context_id:
        raise InvalidClientKey("Invalid client key specified")
    if not runtime.settings.production:
        return
    if context_id in runtime.settings.context_ids:
        return
    async with runtime.sessions() as session:
        allowed = (await tenant.get_tenant(session)).context_ids
    if context_id not in allowed:
        raise InvalidClientKey("Invalid client key specified")


# --- browsers ---------------------------------------------------------------------------


async def _create_browser(request: Request, runtime: Runtime) -> tuple[int, dict[str, Any]]:
    user_agent = request.headers.get("user-agent")

    async def work(session: AsyncSession) -> guests.BrowserRefs:
        return await guests.create_browser(session, user_agent=user_agent, clock=runtime.clock)

    refs = await in_transaction(runtime.sessions, work)
    return 201, _ok(runtime, ref=refs.ref, customer_ref=refs.guest_ref)


async def browser_create(request: Request) -> Response:
    """Create a browser ref and its anonymous guest (``GET /v1.2/browser/create.json``)."""

    async def work(runtime: Runtime, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        _check_key(runtime, params.get("client_key"))
        return await _create_browser(request, runtime)

    return await _respond(request, work, edge=False)


async def edge_browser_create(request: Request) -> Response:
    """Cloud SDK browser id (``GET /v1/events/v1.2/browser/create.json``)."""

    async def work(runtime: Runtime, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return await _create_browser(request, runtime)

    return await _respond(request, work, edge=True)


def _guest_href(request: Request, runtime: Runtime, guest_ref: str) -> str:
    base = runtime.settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/v2.1/guests/{guest_ref}"


async def _show_browser(request: Request, runtime: Runtime) -> tuple[int, dict[str, Any]]:
    browser_ref = request.path_params["browser_ref"]
    async with runtime.sessions() as session:
        browser = await guests.get_browser(session, browser_ref)
        guest = await guests.get_guest(session, browser.guest_ref)
    customer = {"ref": guest.ref, "href": _guest_href(request, runtime, guest.ref), "guestType": guest.guest_type}
    return 200, _ok(runtime, ref=browser.ref, customer=customer)


async def browser_show(request: Request) -> Response:
    """Browser → current guest (``GET /v1.2/browser/{ref}/show.json``); ``api_token`` is ignored."""

    async def work(runtime: Runtime, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        _check_key(runtime, params.get("client_key"))
        return await _show_browser(request, runtime)

    return await _respond(request, work, edge=False)


async def edge_browser_show(request: Request) -> Response:
    """Cloud SDK guest id (``GET /v1/events/v1.2/browser/{ref}/show.json``)."""

    async def work(runtime: Runtime, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return await _show_browser(request, runtime)

    return await _respond(request, work, edge=True)


# --- events -----------------------------------------------------------------------------


def _group_commit(request: Request, runtime: Runtime) -> GroupCommit:
    """The app's group-commit writer (one per app and process), made on first use."""
    writer: GroupCommit | None = getattr(request.app.state, "group_commit", None)
    if writer is None:
        writer = GroupCommit(runtime.sessions, runtime.clock)
        request.app.state.group_commit = writer
    return writer


async def _ingest(
    request: Request, runtime: Runtime, message: Any, raw: str, *, transport: service.Transport, site_id: str | None
) -> tuple[int, dict[str, Any]]:
    ctx = service.StreamContext(
        client_key=runtime.client_key,
        production=runtime.settings.production,
        transport=transport,
        default_pos=runtime.settings.point_of_sale,
        site_id=site_id,
        user_agent=request.headers.get("user-agent"),
    )

    accepted = await _group_commit(request, runtime).ingest(ctx, message, raw=raw)
    return 201, _ok(runtime, ref=accepted.browser_ref, customer_ref=accepted.guest_ref, event_ref=accepted.event_ref)


async def event_create(request: Request) -> Response:
    """Send one event by GET (``/v1.2/event/create.json?message=``), raw curl JSON tolerated."""

    async def work(runtime: Runtime, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        _check_key(runtime, params.get("client_key"))
        query = request.scope["query_string"]
        # Percent-encoding at most triples a message: anything longer is over the limit
        # without being worth parsing.
        if len(query) > 3 * MAX_MESSAGE_BYTES + 1024:
            raise MessageTooLarge("Message exceeds 64 KB")
        try:
            parsed = parse_message(query, params)
        except ValueError:
            raise UnparseableMessage("Unable to parse message") from None
        if parsed is None:
            raise UnparseableMessage("Unable to parse message")
        message, raw = parsed
        if len(raw.encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge("Message exceeds 64 KB")
        return await _ingest(request, runtime, message, raw, transport="stream-get", site_id=None)

    return await _respond(request, work, edge=False)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge("Message exceeds 64 KB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_MESSAGE_BYTES:
            raise MessageTooLarge("Message exceeds 64 KB")
    return bytes(body)


def _decode_body(body: bytes) -> tuple[Any, str]:
    try:
        return decode_json(body), body.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise UnparseableMessage("Unable to parse message") from None


async def events_post(request: Request) -> Response:
    """Send one event by POST (Engage SDK): ``client_key`` in the body or the query."""

    async def work(runtime: Runtime, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if "client_key" in params:
            _check_key(runtime, params["client_key"])
        message, raw = _decode_body(await _read_body(request))
        if "client_key" not in params:
            _check_key(runtime, message.get("client_key") if isinstance(message, dict) else None)
        return await _ingest(request, runtime, message, raw, transport="stream-post", site_id=None)

    return await _respond(request, work, edge=False)


async def edge_events_post(request: Request) -> Response:
    """Cloud SDK events (``POST /v1/events/v1.2/events?sitecoreContextId=&siteId=``)."""

    async def work(runtime: Runtime, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        message, raw = _decode_body(await _read_body(request))
        site_id = params.get("siteId") or None
        return await _ingest(request, runtime, message, raw, transport="edge", site_id=site_id)

    return await _respond(request, work, edge=True)


async def js_error_beacon(request: Request) -> Response:
    """Legacy library client-error beacon: accepted, noted, empty script."""
    log.info("legacy library reported a client-side error")
    return Response(b"", media_type=JS_TYPE, headers={"X-Content-Type-Options": "nosniff"})


async def unsupported(request: Request) -> Response:
    """Legacy routes we do not serve: a Stream 404 (JSONP-wrapped when asked)."""

    async def work(runtime: Runtime, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        return 404, stream_error(404, "Unsupported resource", client_key=runtime.client_key)

    return await _respond(request, work, edge=False)


def routes() -> list[Route]:
    """Every Stream and edge route, v1.3 aliases included."""
    out: list[Route] = []
    for version in ("v1.2", "v1.3"):
        out += [
            Route(f"/{version}/browser/create.json", browser_create, methods=["GET"]),
            Route(f"/{version}/browser/{{browser_ref}}/show.json", browser_show, methods=["GET"]),
            Route(f"/{version}/event/create.json", event_create, methods=["GET"]),
        ]
    out += [
        Route("/v1.2/events", events_post, methods=["POST"]),
        Route("/v1.2/boxever-log-js-error.js", js_error_beacon, methods=["GET"]),
        Route("/v1/events/v1.2/browser/create.json", edge_browser_create, methods=["GET"]),
        Route("/v1/events/v1.2/browser/{browser_ref}/show.json", edge_browser_show, methods=["GET"]),
        Route("/v1/events/v1.2/events", edge_events_post, methods=["POST"]),
        Route("/v1.2/{rest:path}", unsupported, methods=["GET", "POST"]),
        Route("/v1.3/{rest:path}", unsupported, methods=["GET", "POST"]),
    ]
    return out
