"""The guest profile, its timeline and the debug event viewer in the portal (spec cdp.md §5.5, §12.1).

Every event goes through the public Stream API; attacker-controlled text (pages, product names,
names, extension values, the raw JSON) must come back as escaped text on every page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from innkeeper.portal.guests import pretty_json
from tests.conftest import CLIENT_KEY, POINT_OF_SALE
from tests.factories.stream import create_browser, event, post_event, product
from tests.portal.conftest import SignInAs

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
PAYLOAD = SCRIPT + IMG
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
DEBUG_CONTROL = 'class="debug-icon" aria-label="Debug event'


@dataclass(frozen=True)
class Seeded:
    guest: str
    browser: str
    add_event: str
    failed_event: str
    order_reference: str


async def seed(client: httpx.AsyncClient, admin_auth: tuple[str, str], clock: Any) -> Seeded:
    """A guest with an abandoned WEB cart, a converted MOBILE_APP order, a failed event and an extension."""
    browser = (await create_browser(client))["ref"]
    # A visitor may not send ORDER_CHECKOUT: accepted (201), stored as FAILED, in no session.
    failed = await post_event(client, event(browser, "ORDER_CHECKOUT", page=f"pay{SCRIPT}", order={"price": 1}))
    clock.advance(minutes=1)
    await post_event(client, event(browser, "VIEW", page=f"home{PAYLOAD}", ext={"campaign": IMG}))
    clock.advance(minutes=1)
    added = await post_event(
        client,
        event(
            browser,
            "ADD",
            page="cart",
            product=product("SKU_XSS", price=49.5, quantity=2, name=f"Trail shoe {PAYLOAD}"),
        ),
    )
    clock.advance(minutes=1)
    await post_event(client, event(browser, "ADD", page="cart", product="none"))  # stored with a warning
    clock.advance(minutes=1)
    identity = [{"provider": "email", "id": "eve@example.com"}]
    identified = await post_event(
        client,
        event(
            browser,
            "IDENTITY",
            email="eve@example.com",
            firstname=f"Eve{SCRIPT}",
            lastname="Smith",
            identifiers=identity,
        ),
    )
    order = {
        "referenceId": "ORD-PORTAL-1",
        "orderedAt": "2025-08-23T16:17:16.000Z",
        "status": "PURCHASED",
        "currencyCode": "EUR",
        "price": 300,
        "orderItems": [
            {"type": "HOTEL", "referenceId": "ORD-PORTAL-1-1", "price": 300, "name": f"Room {IMG}", "quantity": 1}
        ],
    }
    clock.advance(minutes=1)
    await post_event(client, event(browser, "ORDER_CHECKOUT", channel="MOBILE_APP", page="app", order=order))
    clock.advance(minutes=2)
    await post_event(client, event(browser, "FORCE_CLOSE"))
    guest = identified["customer_ref"]
    ext = await client.post(
        f"/v2.1/guests/{guest}/extensions", json={"name": "ext", "key": "default", "note": PAYLOAD}, auth=admin_auth
    )
    assert ext.status_code == 201, ext.text
    return Seeded(guest, browser, added["event_ref"], failed["event_ref"], "ORD-PORTAL-1")


async def set_debug(client: httpx.AsyncClient, admin_auth: tuple[str, str], on: bool) -> None:
    response = await client.patch("/admin/v1/settings", json={"debug": on}, auth=admin_auth)
    assert response.status_code == 200, response.text


def assert_no_markup(html: str) -> None:
    """No attacker payload reached the page as markup."""
    assert SCRIPT not in html and "<img src=x" not in html, "unescaped payload on the page"


def sessions_of(html: str) -> list[str]:
    """The visit sections of a timeline page."""
    return re.findall(r'<section class="visit">.*?</section>', html, flags=re.S)


@pytest.fixture
async def seeded(client: httpx.AsyncClient, admin_auth: tuple[str, str], clock: Any) -> Seeded:
    return await seed(client, admin_auth, clock)


@pytest.fixture
async def debug_marketer(
    seeded: Seeded, client: httpx.AsyncClient, admin_auth: tuple[str, str], signed_in_as: SignInAs
) -> None:
    """Once the guest is seeded: debug on (Settings → Features) and the portal signed in as a MARKETER."""
    await set_debug(client, admin_auth, True)
    await signed_in_as("MARKETER")


async def test_search_links_each_guest_and_names_anonymous_visitors(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs, seeded: Seeded
) -> None:
    anonymous = await create_browser(client)
    await signed_in_as("VIEWER")
    found = await portal.get("/portal/guests", params={"q": anonymous["ref"]})
    assert found.status_code == 200
    assert f'<a href="/portal/guests/{anonymous["customer_ref"]}">Anonymous Visitor</a>' in found.text
    named = await portal.get("/portal/guests", params={"q": seeded.browser})
    assert f'<a href="/portal/guests/{seeded.guest}">Eve&lt;script&gt;' in named.text
    assert_no_markup(named.text)


async def test_profile_shows_details_identifiers_browsers_extensions_and_orders(
    portal: httpx.AsyncClient, signed_in_as: SignInAs, seeded: Seeded
) -> None:
    await signed_in_as("VIEWER")
    response = await portal.get(f"/portal/guests/{seeded.guest}")
    assert response.status_code == 200
    html = response.text
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert seeded.guest in html and "customer" in html and "eve@example.com" in html
    assert f"Eve{ESCAPED_SCRIPT} Smith" in html
    assert seeded.browser in html
    assert "<td>email</td><td>eve@example.com</td>" in html
    assert "<td>note</td><td>" + ESCAPED_SCRIPT in html  # the extension value, as text
    assert "ORD-PORTAL-1" in html and "PURCHASED" in html and "300.00" in html and "Room &lt;img src=x" in html
    assert 'href="/portal/guests/' + seeded.guest + '/timeline"' in html
    assert 'href="/portal/static/guests.css"' in html
    assert "Event viewer" not in html  # a VIEWER never gets the debug tab
    assert_no_markup(html)


async def test_unknown_guest_is_an_html_404(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    await signed_in_as("MARKETER")
    for path in ("", "/timeline", "/events", "/events/00000000-0000-4000-8000-000000000000"):
        for ref in ("00000000-0000-4000-8000-000000000000", "not-a-ref", IMG):
            response = await portal.get(f"/portal/guests/{ref}{path}")
            assert response.status_code == 404, (ref, path)
            assert response.headers["content-type"].startswith("text/html")
            assert "Guest not found" in response.text
            assert_no_markup(response.text)


async def test_timeline_shows_sessions_carts_and_events(
    portal: httpx.AsyncClient, signed_in_as: SignInAs, seeded: Seeded
) -> None:
    await signed_in_as("MARKETER")
    response = await portal.get(f"/portal/guests/{seeded.guest}/timeline")
    assert response.status_code == 200
    html = response.text
    assert_no_markup(html)
    visits = sessions_of(html)
    assert len(visits) == 2
    web = next(v for v in visits if "ABANDONED" in v)
    assert f"WEB · {POINT_OF_SALE}" in web and "FORCE_CLOSE" in web
    # The cart line and the abandoned revenue (2 × 49.50).
    assert "Trail shoe " + ESCAPED_SCRIPT + "&lt;img src=x onerror=alert(2)&gt;" in web
    assert "<code>SKU_XSS</code>" in web and "49.50" in web
    assert "Abandoned revenue: <strong>99.00</strong> EUR" in web
    # Its events, oldest first: VIEW with the payload page, ADD, ADD without a product, IDENTITY, FORCE_CLOSE.
    types = re.findall(r"<td class=\"type\">(VIEW|ADD|IDENTITY|FORCE_CLOSE|ORDER_CHECKOUT)", web)
    assert types == ["VIEW", "ADD", "ADD", "IDENTITY", "FORCE_CLOSE"]
    assert "home" + ESCAPED_SCRIPT in web
    mobile = next(v for v in visits if "CONVERTED" in v)
    assert "MOBILE_APP" in mobile and "ORDER_CHECKOUT" in mobile and "300.00" in mobile
    # The failed ORDER_CHECKOUT is in no session: not on the timeline.
    assert seeded.failed_event not in html


async def test_timeline_filters(portal: httpx.AsyncClient, signed_in_as: SignInAs, seeded: Seeded) -> None:
    await signed_in_as("VIEWER")
    path = f"/portal/guests/{seeded.guest}/timeline"

    abandoned = sessions_of((await portal.get(path, params={"outcome": "abandoned"})).text)
    assert len(abandoned) == 1 and "Trail shoe" in abandoned[0] and "99.00" in abandoned[0]

    converted = (await portal.get(path, params={"outcome": "converted"})).text
    assert len(sessions_of(converted)) == 1 and "Trail shoe" not in converted and "MOBILE_APP" in converted
    assert '<option value="converted" selected>' in converted

    browsed = (await portal.get(path, params={"outcome": "browsed"})).text
    assert sessions_of(browsed) == [] and "No session matches." in browsed

    mobile = sessions_of((await portal.get(path, params={"channel": "MOBILE_APP"})).text)
    assert len(mobile) == 1 and "Trail shoe" not in mobile[0]
    web = sessions_of((await portal.get(path, params={"channel": "WEB", "outcome": "abandoned"})).text)
    assert len(web) == 1 and "Trail shoe" in web[0]

    today = "2026-01-15"  # the frozen clock's day
    assert len(sessions_of((await portal.get(path, params={"from": today, "to": today})).text)) == 2
    assert sessions_of((await portal.get(path, params={"from": "2026-01-16"})).text) == []
    assert sessions_of((await portal.get(path, params={"to": "2026-01-14"})).text) == []
    assert len(sessions_of((await portal.get(path, params={"from": "2026-01-15T08:00:00Z"})).text)) == 2
    assert len(sessions_of((await portal.get(path, params={"from": "0001-01-01", "to": "9999-12-31"})).text)) == 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday"}, "From: &#39;yesterday&#39; is not a date"),
        ({"to": "2026-13-45"}, "To: &#39;2026-13-45&#39; is not a date"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "From must not be after To."),
        ({"outcome": "lost"}, "Outcome: choose one of browsed, converted, abandoned."),
        ({"channel": "W" * 41}, "Channel: at most 40 characters."),
        ({"from": SCRIPT}, "From: &#39;" + ESCAPED_SCRIPT),
        ({"from": "0001-01-01T00:00:00+01:00"}, "From: &#39;0001-01-01T00:00:00+01:00&#39; is not a date"),
    ],
)
async def test_bad_timeline_filters_are_a_400_page(
    portal: httpx.AsyncClient, signed_in_as: SignInAs, seeded: Seeded, params: dict[str, str], message: str
) -> None:
    await signed_in_as("VIEWER")
    response = await portal.get(f"/portal/guests/{seeded.guest}/timeline", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text and 'role="alert"' in response.text
    assert sessions_of(response.text) == []
    assert_no_markup(response.text)


def debug_sources(html: str) -> dict[str, list[str]]:
    """The cogs of a page: event type → the ``data-src`` of each of its cogs, in page order."""
    found: dict[str, list[str]] = {}
    for src, type_ in re.findall(
        r'<details class="debug" data-src="([^"]+)"><summary class="debug-icon" aria-label="Debug event ([A-Z_]+)">',
        html,
    ):
        found.setdefault(type_, []).append(src)
    return found


def kv_values(html: str) -> dict[str, str]:
    """The key/value lines of the ``pre.kv`` of an event's debug details."""
    details = html[html.index('<pre class="kv">') :]
    details = details[: details.index("</pre>")].split(">", 1)[1]
    return dict(re.findall(r"^([A-Z][A-Za-z ]+?) {2,}(.*)$", details, flags=re.M))


@pytest.mark.usefixtures("debug_marketer")
async def test_debug_on_shows_a_cog_per_event_that_loads_its_record_and_raw_json(
    portal: httpx.AsyncClient, seeded: Seeded
) -> None:
    html = (await portal.get(f"/portal/guests/{seeded.guest}/timeline")).text
    assert_no_markup(html)
    assert f'href="/portal/guests/{seeded.guest}/events"' in html  # the Event viewer tab
    assert html.count(DEBUG_CONTROL) == 6  # VIEW, ADD, ADD, IDENTITY, FORCE_CLOSE + ORDER_CHECKOUT
    # The cogs are empty: neither the record nor the raw JSON is on the timeline, only a link to them.
    assert '<pre class="raw">' not in html and '<pre class="kv">' not in html and "&#34;type&#34;" not in html
    sources = debug_sources(html)
    assert sorted(sources) == ["ADD", "FORCE_CLOSE", "IDENTITY", "ORDER_CHECKOUT", "VIEW"]
    add_path = f"/portal/guests/{seeded.guest}/events/{seeded.add_event}"
    assert sources["ADD"][0] == add_path + "?fragment=1"
    assert f'<div class="debug-body"><a href="{add_path}">Open this event' + "'s details</a></div>" in html

    # The fragment the cog fetches: just the record and the raw JSON, as escaped text.
    fragment = await portal.get(add_path, params={"fragment": "1"})
    assert fragment.status_code == 200 and fragment.headers["content-type"].startswith("text/html")
    assert fragment.headers["content-security-policy"].startswith("default-src 'self'")
    assert fragment.headers["cache-control"] == "no-store" and fragment.headers["x-frame-options"] == "DENY"
    body = fragment.text
    assert body.startswith('<pre class="kv">') and "<html" not in body and "Sign out" not in body
    assert_no_markup(body)
    values = kv_values(body)
    assert values["Processing status"] == "SUCCESS" and values["Ref"] == seeded.add_event
    assert values["Browser Ref"] == seeded.browser and values["Point of Sale"] == POINT_OF_SALE
    assert values["Channel"] == "WEB" and values["Client Key"] == CLIENT_KEY and values["Transport"] == "stream-post"
    assert values["Created At"] == values["Modified At"] == "2026-01-15T09:02:00.000Z"
    assert re.fullmatch(r"[0-9a-f-]{36}", values["Session Ref"])
    # The raw JSON, pretty-printed, with the payload escaped.
    raw = body[body.index('<pre class="raw">') :]
    assert "&#34;type&#34;: &#34;ADD&#34;" in raw
    assert "&#34;name&#34;: &#34;Trail shoe " + ESCAPED_SCRIPT in raw
    assert "\n  &#34;product&#34;: {\n    &#34;type&#34;: &#34;BET&#34;," in raw
    # The ADD without a product: its warning.
    no_product = (await portal.get(sources["ADD"][1])).text
    assert "Warning            product: ADD needs a product object; no cart line" in no_product

    # Every cog of the timeline loads.
    for src in (src for found in sources.values() for src in found):
        assert (await portal.get(src)).status_code == 200, src

    # Without ?fragment: a page of its own, with the guest's header and a way back.
    full = await portal.get(add_path)
    assert full.status_code == 200 and "<html" in full.text
    assert_no_markup(full.text)
    assert f'href="/portal/guests/{seeded.guest}/timeline"' in full.text and "Back to the timeline" in full.text
    assert "Eve" + ESCAPED_SCRIPT in full.text  # the guest header
    assert kv_values(full.text)["Ref"] == seeded.add_event
    assert "&#34;name&#34;: &#34;Trail shoe " + ESCAPED_SCRIPT in full.text


@pytest.mark.usefixtures("debug_marketer")
async def test_event_details_of_an_unknown_or_other_guests_event_are_a_404(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, seeded: Seeded
) -> None:
    other = await create_browser(client)
    other_event = (await post_event(client, event(other["ref"], "VIEW", page="elsewhere")))["event_ref"]
    own = await portal.get(f"/portal/guests/{other['customer_ref']}/events/{other_event}", params={"fragment": "1"})
    assert own.status_code == 200 and kv_values(own.text)["Ref"] == other_event
    for event_ref in (other_event, "00000000-0000-4000-8000-000000000000", "x-unknown", IMG, "a" * 300):
        for params in ({}, {"fragment": "1"}):
            response = await portal.get(f"/portal/guests/{seeded.guest}/events/{event_ref}", params=params)
            assert response.status_code == 404, (event_ref, params)
            assert response.headers["content-type"].startswith("text/html")
            assert "This guest has no event with the ref" in response.text and "<html" in response.text
            assert '<pre class="raw">' not in response.text and "elsewhere" not in response.text
            assert_no_markup(response.text)
    # An unknown guest: the guest's 404.
    unknown = await portal.get(f"/portal/guests/00000000-0000-4000-8000-000000000000/events/{seeded.add_event}")
    assert unknown.status_code == 404 and "Guest not found" in unknown.text


async def test_debug_off_or_viewer_role_shows_no_debug_control(
    portal: httpx.AsyncClient,
    client: httpx.AsyncClient,
    admin_auth: tuple[str, str],
    signed_in_as: SignInAs,
    seeded: Seeded,
) -> None:
    await set_debug(client, admin_auth, False)
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    timeline = (await portal.get(f"/portal/guests/{seeded.guest}/timeline")).text
    assert "Trail shoe" in timeline  # the timeline itself is there
    assert "debug-icon" not in timeline and "data-src" not in timeline and '<pre class="raw">' not in timeline
    assert "Event viewer" not in timeline
    viewer = await portal.get(f"/portal/guests/{seeded.guest}/events", params={"status": "failed"})
    assert viewer.status_code == 200 and "available while the Debug feature is on" in viewer.text
    assert seeded.failed_event not in viewer.text and '<pre class="raw">' not in viewer.text
    # The event's details refuse too: a 404 that says why, without the record or the raw JSON.
    for params in ({}, {"fragment": "1"}):
        details = await portal.get(f"/portal/guests/{seeded.guest}/events/{seeded.add_event}", params=params)
        assert details.status_code == 404 and "available while the Debug feature is on" in details.text
        assert '<pre class="raw">' not in details.text and '<pre class="kv">' not in details.text
        assert "Trail shoe" not in details.text

    # A VIEWER never sees raw JSON, even with debug on.
    await set_debug(client, admin_auth, True)
    await portal.post("/portal/logout", headers={"X-CSRF-Token": csrf})
    await signed_in_as("VIEWER")
    timeline = (await portal.get(f"/portal/guests/{seeded.guest}/timeline")).text
    assert "Trail shoe" in timeline
    assert "debug-icon" not in timeline and "data-src" not in timeline and '<pre class="raw">' not in timeline
    assert (await portal.get(f"/portal/guests/{seeded.guest}/events")).status_code == 403
    for params in ({}, {"fragment": "1"}):
        details = await portal.get(f"/portal/guests/{seeded.guest}/events/{seeded.add_event}", params=params)
        assert details.status_code == 403 and "Trail shoe" not in details.text


@pytest.mark.usefixtures("debug_marketer")
async def test_event_viewer_lists_failed_events_with_their_reason(portal: httpx.AsyncClient, seeded: Seeded) -> None:
    path = f"/portal/guests/{seeded.guest}/events"

    everything = (await portal.get(path)).text
    assert_no_markup(everything)
    assert everything.count(DEBUG_CONTROL) == 7  # the 6 processed events and the failed one
    created = re.findall(r'aria-label="Debug event ([A-Z_]+)"', everything)
    newest_first = ["FORCE_CLOSE", "ORDER_CHECKOUT", "IDENTITY", "ADD", "ADD", "VIEW", "ORDER_CHECKOUT"]
    assert created == newest_first
    assert '<pre class="raw">' not in everything  # each cog loads its details

    failed = (await portal.get(path, params={"status": "failed"})).text
    assert failed.count(DEBUG_CONTROL) == 1 and seeded.failed_event in failed
    assert "Guest is not identified" in failed and '<span class="badge FAILED">FAILED</span>' in failed
    assert_no_markup(failed)
    (src,) = debug_sources(failed)["ORDER_CHECKOUT"]
    assert src == f"{path}/{seeded.failed_event}?fragment=1"
    details = (await portal.get(src)).text
    assert "Processing status  FAILED\nFailure reason     Guest is not identified\n" in details
    assert "Session Ref        none\n" in details
    assert "&#34;page&#34;: &#34;pay" + ESCAPED_SCRIPT in details  # its raw JSON, escaped
    assert_no_markup(details)

    success = (await portal.get(path, params={"status": "success"})).text
    assert success.count(DEBUG_CONTROL) == 6 and seeded.failed_event not in success
    assert (await portal.get(path, params={"from": "2026-01-16"})).text.count(DEBUG_CONTROL) == 0

    bad = await portal.get(path, params={"status": "broken"})
    assert bad.status_code == 400 and "Status: choose one of success, failed." in bad.text
    bad_date = await portal.get(path, params={"to": "31/12/2025"})
    assert bad_date.status_code == 400 and "To: &#39;31/12/2025&#39; is not a date" in bad_date.text


def test_raw_json_is_only_reindented() -> None:
    raw = '{"page":"a\\u003cb\\/c","price":1.50,"n":[1E+2,-0],"e":{}}'
    assert pretty_json(raw) == (
        '{\n  "page": "a\\u003cb\\/c",\n  "price": 1.50,\n  "n": [\n    1E+2,\n    -0\n  ],\n  "e": {}\n}'
    )
    assert pretty_json("not json {") == "not json {"
    assert pretty_json('{"a":1} trailing') == '{"a":1} trailing'
