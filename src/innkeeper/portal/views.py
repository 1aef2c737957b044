"""Portal pages: sign-in (CSRF double-submit, throttled), sign-out, guests search.

Every page but the sign-in form needs a signed-in user whose role has the page's permission;
every form carries a CSRF token; Jinja2 autoescapes everything (event data is attacker-controlled).
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import in_transaction
from innkeeper.guests import service as guests
from innkeeper.http.auth import runtime_of
from innkeeper.users import service as users
from innkeeper.users.errors import LoginFailed, LoginThrottled
from innkeeper.users.models import User, UserSession

SESSION_COOKIE = "ik_session"
LOGIN_CSRF_COOKIE = "ik_login_csrf"
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)
router = APIRouter(prefix="/portal", include_in_schema=False)


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or runtime_of(request).settings.production


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "default-src 'self'; style-src 'self' 'unsafe-inline'"
    response.headers["Cache-Control"] = "no-store"
    return response


async def _signed_in(request: Request, permission: str) -> tuple[User, UserSession] | Response:
    runtime = runtime_of(request)
    async with runtime.sessions() as session:
        found = await users.session_user(session, request.cookies.get(SESSION_COOKIE), now=runtime.clock.now())
    if found is None:
        return RedirectResponse("/portal/login", status_code=303)
    if not users.allowed(found[0].role, permission):
        return _page(request, "base.html", 403, user=found[0], csrf=found[1].csrf_token)
    return found


@router.get("")
async def home() -> Response:
    return RedirectResponse("/portal/guests", status_code=303)


@router.get("/login")
async def login_form(request: Request) -> Response:
    token = secrets.token_urlsafe(32)
    response = _page(request, "login.html", csrf=token, email="", error=None)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/portal"
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf):
        return _page(request, "login.html", 403, csrf=expected, email=email, error="The form expired; try again.")
    runtime = runtime_of(request)
    outcome: dict[str, Any] = {}

    async def work(session: AsyncSession) -> None:
        try:
            _, outcome["token"] = await users.sign_in(session, email=email, password=password, clock=runtime.clock)
        except (LoginFailed, LoginThrottled) as exc:
            outcome["error"] = exc  # the failure count commits with this transaction

    await in_transaction(runtime.sessions, work)
    error = outcome.get("error")
    if isinstance(error, LoginThrottled):
        response = _page(request, "login.html", 429, csrf=csrf, email=email, error=error.message)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    if error is not None:
        return _page(request, "login.html", 401, csrf=csrf, email=email, error="Wrong email or password.")
    redirect = RedirectResponse("/portal/guests", status_code=303)
    redirect.set_cookie(
        SESSION_COOKIE,
        outcome["token"],
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/portal",
        max_age=int(users.SESSION_LIFETIME.total_seconds()),
    )
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path="/portal")
    return redirect


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    found = await _signed_in(request, "guests.read")
    if isinstance(found, Response):
        return found
    if not hmac.compare_digest(found[1].csrf_token, csrf):
        return _page(request, "base.html", 403, user=found[0], csrf=found[1].csrf_token)
    runtime = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE)

    async def work(session: AsyncSession) -> None:
        await users.sign_out(session, token)

    await in_transaction(runtime.sessions, work)
    response = RedirectResponse("/portal/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/portal")
    return response


@router.get("/guests")
async def guest_search(request: Request, q: Annotated[str, Query(max_length=320)] = "") -> Response:
    found = await _signed_in(request, "guests.read")
    if isinstance(found, Response):
        return found
    user, user_session = found
    async with runtime_of(request).sessions() as session:
        rows = await guests.find_guests(session, q)
    return _page(request, "guests.html", user=user, csrf=user_session.csrf_token, q=q, guests=rows)
