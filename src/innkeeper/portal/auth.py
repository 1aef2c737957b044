"""Sign-in (double-submit CSRF cookie, throttled) and sign-out."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import in_transaction
from innkeeper.http.auth import runtime_of
from innkeeper.portal._web import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Portal, need, page, redirect, router, safe_next
from innkeeper.portal._web import secure_cookies as _secure
from innkeeper.users import service as users
from innkeeper.users.errors import LoginFailed, LoginThrottled


@router.get("/login")
async def login_form(request: Request, next: Annotated[str, Query(max_length=2000)] = "") -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", csrf=token, email="", error=None, next=safe_next(next))
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
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    target = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        return page(
            request, "login.html", 403, csrf=expected, email=email, error="The form expired; try again.", next=target
        )
    runtime = runtime_of(request)
    outcome: dict[str, Any] = {}

    async def work(session: AsyncSession) -> None:
        try:
            _, outcome["token"] = await users.sign_in(session, email=email, password=password, clock=runtime.clock)
        except (LoginFailed, LoginThrottled) as exc:
            outcome["error"] = exc  # the failure count commits with this transaction

    await in_transaction(runtime.sessions, work)
    error = outcome.get("error")
    response: Response
    if isinstance(error, LoginThrottled):
        response = page(request, "login.html", 429, csrf=csrf, email=email, error=error.message, next=target)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    if error is not None:
        return page(request, "login.html", 401, csrf=csrf, email=email, error="Wrong email or password.", next=target)
    response = redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        outcome["token"],
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/portal",
        max_age=int(users.SESSION_LIFETIME.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/portal")
    return response


@router.post("/logout")
async def logout(request: Request, portal: Annotated[Portal, Depends(need("guests.read"))]) -> Response:
    token = request.cookies.get(SESSION_COOKIE)

    async def work(session: AsyncSession) -> None:
        await users.sign_out(session, token)

    await in_transaction(portal.runtime.sessions, work)
    response = redirect("/portal/login")
    response.delete_cookie(SESSION_COOKIE, path="/portal")
    return response
