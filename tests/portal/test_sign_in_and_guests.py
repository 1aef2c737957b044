"""Portal sign-in (CSRF, throttling, cookie flags), sign-out, and the Guests search with escaped output."""

from __future__ import annotations

import httpx

from innkeeper.core.runtime import Runtime
from innkeeper.users import service as users
from tests.factories.stream import create_browser, event, post_event
from tests.portal.conftest import CSRF, PASSWORD, make_user, sign_in
from tests.support.clock import FrozenClock


async def test_sign_in_sets_a_safe_cookie_and_shows_guests(
    portal: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    await make_user(runtime, clock, "ann@example.com", "MARKETER")
    assert (await portal.get("/portal/guests")).status_code == 303  # not signed in: to the sign-in form
    response = await sign_in(portal, "ann@example.com")
    assert response.status_code == 303 and response.headers["location"] == "/portal/dashboard"
    cookie = response.headers["set-cookie"]
    assert "ik_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/portal" in cookie
    page = await portal.get("/portal/guests")
    assert page.status_code == 200 and "Recent guests" in page.text and "ann@example.com (MARKETER)" in page.text
    assert page.headers["x-frame-options"] == "DENY" and "default-src 'self'" in page.headers["content-security-policy"]


async def test_a_form_post_without_its_csrf_token_fails(
    portal: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    await make_user(runtime, clock, "bob@example.com", "VIEWER")
    await portal.get("/portal/login")
    forged = await portal.post("/portal/login", data={"email": "bob@example.com", "password": PASSWORD})
    assert forged.status_code == 403 and "ik_session" not in forged.headers.get("set-cookie", "")
    wrong = await portal.post(
        "/portal/login", data={"email": "bob@example.com", "password": PASSWORD, "csrf": "guessed"}
    )
    assert wrong.status_code == 403
    assert (await sign_in(portal, "bob@example.com")).status_code == 303
    logout = await portal.post("/portal/logout", data={"csrf": "guessed"})
    assert logout.status_code == 403
    assert (await portal.get("/portal/guests")).status_code == 200  # still signed in
    page = await portal.get("/portal/guests")
    match = CSRF.search(page.text)
    assert match is not None
    out = await portal.post("/portal/logout", data={"csrf": match.group(1)})
    assert out.status_code == 303
    assert (await portal.get("/portal/guests")).status_code == 303


async def test_wrong_passwords_are_throttled(portal: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    await make_user(runtime, clock, "cat@example.com", "VIEWER")
    for _ in range(users.MAX_FAILURES):
        failed = await sign_in(portal, "cat@example.com", "not the password")
        assert failed.status_code == 401 and "Wrong email or password." in failed.text
    locked = await sign_in(portal, "cat@example.com")
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    clock.advance(minutes=16)
    assert (await sign_in(portal, "cat@example.com")).status_code == 303


async def test_search_by_browser_id_and_attacker_controlled_names_render_as_text(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    await make_user(runtime, clock, "dan@example.com", "VIEWER")
    browser = await create_browser(client)
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    identity = [{"provider": "email", "id": "x@example.com"}]
    await post_event(
        client, event(browser["ref"], "IDENTITY", email="x@example.com", firstname=payload, identifiers=identity)
    )
    await sign_in(portal, "dan@example.com")
    page = await portal.get("/portal/guests", params={"q": browser["ref"]})
    assert page.status_code == 200
    assert browser["customer_ref"] in page.text and "1 result for" in page.text
    assert "<script>alert(1)</script>" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    by_email = await portal.get("/portal/guests", params={"q": "X@Example.com"})
    assert browser["customer_ref"] in by_email.text
    query = await portal.get("/portal/guests", params={"q": '"><script>alert(3)</script>'})
    assert "<script>alert(3)</script>" not in query.text and "No guest found." in query.text
