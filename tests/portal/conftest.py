"""Portal test helpers: a cookie-keeping client, users of each role, sign-in and CSRF scraping."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from innkeeper.core.runtime import Runtime
from innkeeper.users import service as users
from tests.factories.mail import outbound, smtp  # noqa: F401  (fixtures of the dashboard tests)
from tests.support.clock import FrozenClock

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of a rendered portal page."""
    match = CSRF.search(html)
    assert match is not None, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
async def portal(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client: keeps cookies, does not follow redirects."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def make_user(runtime: Runtime, clock: FrozenClock, email: str, role: str) -> None:
    async with runtime.sessions() as session:
        await users.create_user(session, email=email, password=PASSWORD, role=role, clock=clock)
        await session.commit()


async def sign_in(portal: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    form = await portal.get("/portal/login")
    return await portal.post("/portal/login", data={"email": email, "password": password, "csrf": csrf_of(form.text)})


SignInAs = Callable[[str], Awaitable[str]]


@pytest.fixture
def signed_in_as(portal: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> SignInAs:
    """Create a user with this role, sign the ``portal`` client in, and return its CSRF token."""

    async def sign_in_as(role: str) -> str:
        email = f"{role.lower()}@example.com"
        await make_user(runtime, clock, email, role)
        response = await sign_in(portal, email)
        assert response.status_code == 303, response.text
        return csrf_of((await portal.get("/portal/guests")).text)

    return sign_in_as
