"""The portal in real Chromium against a live `innkeeper serve`: the user's notes, click by click.

The walk: send events over plain HTTP (the notes' curl and Postman calls), sign in, search the
browser id on Guests, open the anonymous visitor, the Timeline tab with the ADD event and the
abandoned revenue, Debug on under Features and the orange cog's raw JSON; then a point of sale
with a 5-minute timeout, an API token (used at once over Basic auth), an experience created,
started and its friendly ID copied with the Copy button, then called over /v2/callFlows.

Screenshots of each main page go to ``test-output/screenshots/<db>/`` (CI keeps the folder).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.live import LiveServer
from tests.support.live import live_server as start_live_server

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "a long admin password"
PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    env = {"INNKEEPER_ADMIN_EMAIL": ADMIN_EMAIL, "INNKEEPER_ADMIN_PASSWORD": ADMIN_PASSWORD}
    with start_live_server(db_url, tmp_path, extra_env=env) as live:
        yield live


@pytest.fixture
def shots(db_kind: str) -> Path:
    folder = REPO_ROOT / "test-output" / "screenshots" / db_kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(chromium: Any, server: LiveServer) -> Iterator[Any]:
    """A Chromium tab allowed to use the clipboard on the live server; any JS dialog fails the test."""
    context = chromium.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    dialogs: list[str] = []

    def refuse(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", refuse)
    try:
        yield tab
    finally:
        context.close()
    assert dialogs == [], f"a script ran in the portal: {dialogs}"


def send_get_event(server: LiveServer, message: dict[str, Any]) -> None:
    """The notes' curl: GET /v1.2/event/create.json?client_key=…&message={…}."""
    url = (
        f"{server.base_url}/v1.2/event/create.json?client_key={server.client_key}&message={quote(json.dumps(message))}"
    )
    response = httpx.get(url, timeout=10)
    assert response.status_code == 201 and response.json()["status"] == "OK", response.text


def send_post_event(server: LiveServer, message: dict[str, Any]) -> None:
    response = httpx.post(
        f"{server.base_url}/v1.2/events", json={"client_key": server.client_key, **message}, timeout=10
    )
    assert response.status_code == 201, response.text


def new_browser(server: LiveServer) -> str:
    response = httpx.get(f"{server.base_url}/v1.2/browser/create.json?client_key={server.client_key}&message={{}}")
    assert response.status_code == 201, response.text
    return str(response.json()["ref"])


def abandoned_cart(server: LiveServer, *, product_name: str, page_name: str, ext: dict[str, Any]) -> str:
    """VIEW (GET), ADD (POST) then FORCE_CLOSE: an abandoned cart worth 2 × 45.50."""
    browser_id = new_browser(server)
    base = {"channel": "WEB", "language": "EN", "currency": "GBP", "pos": server.pos, "browser_id": browser_id}
    send_get_event(server, {**base, "type": "VIEW", "page": page_name, "ext": ext})
    product = {
        "type": "HAT",
        "item_id": "HAT_01",
        "name": product_name,
        "orderedAt": "2026-11-27T10:00:00.000Z",
        "quantity": 2,
        "price": 45.5,
        "productId": "HAT",
        "currency": "GBP",
        "referenceId": "HAT_01_REF",
    }
    send_post_event(server, {**base, "type": "ADD", "page": page_name, "product": product, "ext": ext})
    send_post_event(server, {**base, "type": "FORCE_CLOSE", "page": page_name})
    return browser_id


def sign_in(page: Any) -> None:
    page.goto("/portal/login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/portal/dashboard")


def open_guest_timeline(page: Any, browser_id: str) -> None:
    page.get_by_role("link", name="Guests", exact=True).click()
    page.get_by_role("searchbox").fill(browser_id)
    page.get_by_role("button", name="Search").click()
    page.get_by_text("1 result for").wait_for()
    page.get_by_role("link", name="Anonymous Visitor").click()
    page.get_by_role("link", name="Timeline").click()
    page.wait_for_url("**/timeline")


def set_debug(page: Any, on: bool) -> None:
    page.goto("/portal/settings")
    page.get_by_role("link", name="Features").click()
    box = page.get_by_label("Debug")
    if box.is_checked() != on:
        box.click()
    page.get_by_role("button", name="Save features").click()
    page.wait_for_url("**/portal/settings/features*")
    assert page.get_by_label("Debug").is_checked() == on


def test_the_notes_walk_in_chromium(page: Any, server: LiveServer, shots: Path) -> None:
    browser_id = abandoned_cart(server, product_name="Tweed flat cap", page_name="home page", ext={"shelf": "hats"})

    sign_in(page)
    page.screenshot(path=shots / "dashboard.png", full_page=True)

    # Debug off first: the Timeline has no cog.
    set_debug(page, False)
    open_guest_timeline(page, browser_id)
    assert page.locator("summary.debug-icon").count() == 0
    timeline = page.locator("main")
    assert "ADD" in timeline.inner_text() and "Tweed flat cap" in timeline.inner_text()
    revenue = page.locator("p.revenue", has_text="Abandoned revenue")
    assert "91.00" in revenue.inner_text()
    page.screenshot(path=shots / "timeline.png", full_page=True)

    # Features → Debug on → the orange cog shows the exact JSON that was sent.
    set_debug(page, True)
    page.screenshot(path=shots / "features.png", full_page=True)
    open_guest_timeline(page, browser_id)
    cog = page.get_by_label("Debug event ADD")
    cog.click()
    # The cog's body is fetched when it first opens (static/portal.js), not part of the timeline page.
    raw = cog.locator("xpath=..").locator("pre.raw")
    raw.wait_for(state="visible")
    assert cog.locator("xpath=..").get_attribute("data-loaded") == "true"
    sent = json.loads(raw.inner_text())
    assert sent["type"] == "ADD" and sent["browser_id"] == browser_id
    assert sent["product"]["name"] == "Tweed flat cap" and sent["client_key"] == server.client_key
    page.screenshot(path=shots / "timeline-debug.png", full_page=True)
    page.get_by_role("link", name="Profile").click()
    page.screenshot(path=shots / "guest-profile.png", full_page=True)

    # Settings → API access: the client key, and an API token shown once.
    page.get_by_role("link", name="Settings").click()
    page.wait_for_url("**/portal/settings/api-access")
    assert page.locator("#client-key").inner_text() == server.client_key
    page.get_by_label("Label").fill("walk token")
    page.get_by_label("Scope").select_option("admin")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text()
    assert len(token) >= 20
    page.screenshot(path=shots / "api-access.png", full_page=True)
    answer = httpx.get(f"{server.base_url}/admin/v1/api-access", auth=(server.client_key, token), timeout=10)
    assert answer.status_code == 200 and "walk token" in answer.text
    page.reload()
    assert token not in page.content()

    # Points of sale: create one with a 5-minute session timeout.
    page.get_by_role("link", name="Create or edit points of sale").click()
    page.get_by_label("Name", exact=True).fill("walk.example/uk")
    page.get_by_label("Market").fill("United Kingdom")
    page.get_by_label("Language").fill("EN")
    page.get_by_label("Currency").fill("GBP")
    page.get_by_label("Timeout (minutes)").fill("5")
    page.get_by_role("button", name="Create point of sale").click()
    page.get_by_role("cell", name="walk.example/uk").wait_for()
    page.screenshot(path=shots / "points-of-sale.png", full_page=True)
    with server.admin() as admin:
        stored = admin.get("/admin/v1/points-of-sale/walk.example%2Fuk")
    assert stored.status_code == 200 and stored.json()["timeoutInMinutes"] == 5

    # Experiences: create, start, copy the friendly ID, call it.
    page.get_by_role("link", name="Experiences", exact=True).click()
    page.get_by_role("link", name=re.compile("Create")).first.click()
    page.get_by_label("Name", exact=True).first.fill("Walk banner")
    template = page.locator("#v0_template")
    template.fill('{"greeting": "Hello ${guest.firstName!"visitor"}", "offer": "HATS10"}')
    page.get_by_role("button", name=re.compile("^Create")).click()
    page.wait_for_url(re.compile(r"/portal/flows/[0-9a-f-]{36}"))
    page.get_by_role("button", name="Start").click()
    page.get_by_text("LIVE").first.wait_for()
    friendly_id = page.locator("#friendly-id").inner_text()
    page.locator(f'button[data-copy="{friendly_id}"]').click()
    page.locator('button[data-copied="true"]').first.wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == friendly_id
    page.screenshot(path=shots / "experience-details.png", full_page=True)

    call = httpx.post(
        f"{server.base_url}/v2/callFlows",
        json={
            "clientKey": server.client_key,
            "channel": "WEB",
            "language": "EN",
            "currencyCode": "GBP",
            "pointOfSale": server.pos,
            "browserId": browser_id,
            "friendlyId": friendly_id,
        },
        timeout=10,
    )
    assert call.status_code == 200, call.text
    assert call.json() == {"greeting": "Hello visitor", "offer": "HATS10"}

    for name, path in (
        ("experiences", "/portal/experiences"),
        ("experiments", "/portal/experiments"),
        ("batches", "/portal/batches"),
        ("users", "/portal/settings/users"),
        ("identity-rules", "/portal/settings/identity-rules"),
    ):
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        page.screenshot(path=shots / f"{name}.png", full_page=True)


def test_attacker_controlled_event_data_renders_as_text_everywhere(page: Any, server: LiveServer, shots: Path) -> None:
    browser_id = abandoned_cart(
        server, product_name=PAYLOAD, page_name=f"page {PAYLOAD}", ext={"note": PAYLOAD, "x": "<b>bold</b>"}
    )
    sign_in(page)
    set_debug(page, True)
    open_guest_timeline(page, browser_id)
    text = page.locator("main").inner_text()
    assert PAYLOAD in text  # shown literally, as text
    assert page.locator("main img").count() == 0 and page.locator("main b").count() == 0
    page.get_by_label("Debug event ADD").click()
    raw = json.loads(page.get_by_label("Debug event ADD").locator("xpath=..").locator("pre.raw").inner_text())
    assert raw["product"]["name"] == PAYLOAD and raw["ext"]["note"] == PAYLOAD
    page.screenshot(path=shots / "xss-timeline.png", full_page=True)
    guest_url = page.url.removesuffix("/timeline")
    for path in (guest_url, guest_url + "/events", "/portal/guests?q=" + quote(PAYLOAD), "/portal/dashboard"):
        page.goto(path)
        assert page.locator("main img").count() == 0, path
    # the `page` fixture fails the test if any alert() ran
