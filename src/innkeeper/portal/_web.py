"""What every portal page shares: templates, security headers, the signed-in user and CSRF.

A route declares what it needs with ``portal: Annotated[Portal, Depends(need("guests.read"))]``:
the dependency redirects anonymous visitors to the sign-in form, answers 403 when the user's
role lacks the permission, and, on every unsafe method, checks the session's CSRF token (form
field ``csrf`` or header ``X-CSRF-Token``) before the handler runs. ``need`` remembers the
permission on the callable, so tests can walk every route and check the permission table.
Jinja2 autoescapes everything: event data is attacker-controlled.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from innkeeper.core.runtime import Runtime
from innkeeper.http.auth import runtime_of
from innkeeper.users import service as users
from innkeeper.users.models import User, UserSession

SESSION_COOKIE = "ik_session"
LOGIN_CSRF_COOKIE = "ik_login_csrf"
STATIC_DIR = Path(__file__).parent / "static"
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# Every portal module adds its pages to this one router (flat, so tests can walk its routes).
router = APIRouter(prefix="/portal", include_in_schema=False)
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)


@dataclass(frozen=True, slots=True)
class Portal:
    """The signed-in user of a portal request."""

    user: User
    session: UserSession
    runtime: Runtime

    @property
    def csrf(self) -> str:
        return self.session.csrf_token

    def can(self, permission: str) -> bool:
        return users.allowed(self.user.role, permission)


class PortalInterrupt(Exception):
    """Stop a portal request with this response (sign-in redirect, 403 page, CSRF failure, a 404 page)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def interrupted(request: Request, exc: Exception) -> Response:
    """The app's exception handler for :class:`PortalInterrupt`."""
    assert isinstance(exc, PortalInterrupt)
    return exc.response


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or runtime_of(request).settings.production


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a template with the portal's security headers."""
    response = templates.TemplateResponse(request, name, context, status_code=status)
    protect(response)
    return response


def protect(response: Response) -> Response:
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def redirect(location: str) -> RedirectResponse:
    """303 See Other: the answer to a successful form post (post/redirect/get)."""
    return RedirectResponse(location, status_code=303)


def forbidden(request: Request, portal: Portal, message: str) -> PortalInterrupt:
    return PortalInterrupt(page(request, "forbidden.html", 403, portal=portal, message=message))


async def _csrf_sent(request: Request) -> str:
    header = request.headers.get("x-csrf-token")
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get("csrf")
        return value if isinstance(value, str) else ""
    return ""


def need(permission: str) -> Callable[[Request], Awaitable[Portal]]:
    """The dependency that signs in, authorizes and (on unsafe methods) checks CSRF."""
    return _need(permission)


@functools.cache
def _need(permission: str) -> Callable[[Request], Awaitable[Portal]]:
    if permission not in users.PERMISSIONS:
        raise ValueError(f"unknown portal permission {permission!r}")

    async def dependency(request: Request) -> Portal:
        runtime = runtime_of(request)
        async with runtime.sessions() as session:
            found = await users.session_user(session, request.cookies.get(SESSION_COOKIE), now=runtime.clock.now())
        if found is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise PortalInterrupt(redirect(f"/portal/login?next={quote(target, safe='')}"))
        portal = Portal(user=found[0], session=found[1], runtime=runtime)
        if request.method not in SAFE_METHODS and not hmac.compare_digest(
            portal.csrf.encode(), (await _csrf_sent(request)).encode()
        ):
            raise forbidden(request, portal, "The form expired or did not come from this portal; reload and try again.")
        if not portal.can(permission):
            raise forbidden(request, portal, "Your role does not allow this.")
        return portal

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def safe_next(target: str | None) -> str:
    """Only same-portal paths are followed after sign-in (no open redirect)."""
    if target and target.startswith("/portal/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/portal/dashboard"
