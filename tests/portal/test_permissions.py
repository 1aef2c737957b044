"""Every portal route checks sign-in, the role permission table and (on posts) CSRF.

The routes are discovered from the router, so a page added later is covered without
editing this file: each route must declare its permission with ``need(...)``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from innkeeper.core.runtime import Runtime
from innkeeper.portal.routes import router
from innkeeper.users import service as users
from tests.portal.conftest import csrf_of, make_user, sign_in
from tests.support.clock import FrozenClock

PUBLIC = {("GET", "/portal"), ("GET", "/portal/login"), ("POST", "/portal/login"), ("GET", "/portal/static/{name}")}


def guarded_routes() -> list[tuple[str, str, str]]:
    """(method, path, permission) of every portal route but the public ones."""
    found = []
    for route in router.routes:
        assert isinstance(route, APIRoute)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if (method, route.path) in PUBLIC:
                continue
            permissions = [
                getattr(dep.call, "permission", None)
                for dep in route.dependant.dependencies
                if getattr(dep.call, "permission", None)
            ]
            assert len(permissions) == 1, f"{method} {route.path} must declare exactly one need(permission)"
            found.append((method, route.path, str(permissions[0])))
    return sorted(found, key=lambda item: item[1] == "/portal/logout")  # signing out last keeps the clients signed in


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x-unknown", path)


@pytest.fixture
async def clients(
    app: FastAPI, runtime: Runtime, clock: FrozenClock
) -> AsyncIterator[dict[str, tuple[httpx.AsyncClient, str]]]:
    """One signed-in client (and its CSRF token) per role."""
    transport = httpx.ASGITransport(app=app)
    opened: dict[str, tuple[httpx.AsyncClient, str]] = {}
    try:
        for role in users.ROLES:
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
            await make_user(runtime, clock, f"{role.lower()}@example.com", role)
            assert (await sign_in(client, f"{role.lower()}@example.com")).status_code == 303
            opened[role] = (client, csrf_of((await client.get("/portal/guests")).text))
        yield opened
    finally:
        for client, _ in opened.values():
            await client.aclose()


def test_every_route_declares_a_known_permission() -> None:
    routes = guarded_routes()
    assert ("GET", "/portal/guests", "guests.read") in routes
    for method, path, permission in routes:
        assert permission in users.PERMISSIONS, f"{method} {path}: unknown permission {permission}"


async def test_anonymous_visitors_are_sent_to_sign_in(portal: httpx.AsyncClient) -> None:
    for method, path, _ in guarded_routes():
        response = await portal.request(method, concrete(path), data={"csrf": "x"} if method != "GET" else None)
        assert response.status_code == 303, f"{method} {path}"
        assert response.headers["location"].startswith("/portal/login?next="), f"{method} {path}"


async def test_each_role_reaches_only_what_its_permissions_allow(
    clients: dict[str, tuple[httpx.AsyncClient, str]],
) -> None:
    for method, path, permission in guarded_routes():
        for role, (client, csrf) in clients.items():
            data = {"csrf": csrf} if method != "GET" else None
            response = await client.request(method, concrete(path), data=data)
            if users.allowed(role, permission):
                assert response.status_code != 403, f"{role} should reach {method} {path} ({permission})"
            else:
                assert response.status_code == 403, f"{role} must not reach {method} {path} ({permission})"
                assert "Your role does not allow this." in response.text


async def test_posts_without_the_sessions_csrf_token_fail(clients: dict[str, tuple[httpx.AsyncClient, str]]) -> None:
    client, _ = clients["ENTERPRISE_ADMIN"]
    posts = [(m, p) for m, p, _ in guarded_routes() if m != "GET"]
    assert ("POST", "/portal/logout") in posts
    for method, path in posts:
        for data in (None, {"csrf": ""}, {"csrf": "forged"}):
            response = await client.request(method, concrete(path), data=data)
            assert response.status_code == 403, f"{method} {path} with {data}"
            assert "did not come from this portal" in response.text
    assert (await client.get("/portal/guests")).status_code == 200  # still signed in: nothing was done


async def test_the_menu_shows_each_role_only_its_pages(clients: dict[str, tuple[httpx.AsyncClient, str]]) -> None:
    menu = {
        "/portal/dashboard": "reports.read",
        "/portal/experiences": "experiences.read",
        "/portal/batches": "batches.read",
        "/portal/settings": "settings.read",
    }
    for role, (client, _) in clients.items():
        html = (await client.get("/portal/guests")).text
        nav = html[html.index("<nav") : html.index("</nav>")]
        for href, permission in menu.items():
            assert (f'href="{href}"' in nav) == users.allowed(role, permission), f"{role}: {href}"
