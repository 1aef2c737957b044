"""Compatibility tests: the real Sitecore SDKs from npm against a live Innkeeper server.

Contract: spec/cdp.md §1–3 and §13 (SDK compatibility checklist).

1. Engage SDK 1.4.3 browser build in Chromium (page on another origin than the server):
   init → pageView → identity → event("ADD") → getBrowserId → getGuestId.
2. Cloud SDK 0.6.1 (core + events + personalize) in Chromium with ``sitecoreEdgeUrl`` =
   the server: init → pageView → identity → custom event → getBrowserId → getGuestId.
3. Engage SDK 1.4.3 server entry (``initServer``, ``forceServerCookieMode``) in Node.

Each test then checks through the admin API that all its events landed in ONE session of
the guest and that the guest became a ``customer`` carrying the identity that was sent.

Every assertion message carries the HTTP exchanges the SDK made (request, status, body),
so a failure shows exactly what the SDK sent and what came back.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError

# The `live_server` fixture yields tests/browser/conftest.py's LiveServer.
LiveServer = Any

pytestmark = pytest.mark.browser

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

PRODUCT: dict[str, Any] = {
    "type": "FOOTWEAR",
    "item_id": "SHOES_8475GHT",
    "name": "Blue shoes",
    "orderedAt": "2025-01-01T10:00",
    "quantity": 2,
    "price": 50.5,
    "productId": "SHOES",
    "currency": "EUR",
    "referenceId": "REF-1",
}


# --------------------------------------------------------------------------- helpers


class ExchangeLog:
    """Everything a Playwright page did against the live server, for failure messages."""

    def __init__(self, page: Any, server_origin: str) -> None:
        self.origin = server_origin
        self.exchanges: list[Any] = []  # playwright Request objects
        self.failed: list[str] = []
        self.console: list[str] = []
        page.on("request", self._on_request)
        page.on("requestfailed", self._on_failed)
        page.on("console", lambda m: self.console.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"[pageerror] {e}"))

    def _on_request(self, request: Any) -> None:
        if request.url.startswith(self.origin):
            self.exchanges.append(request)

    def _on_failed(self, request: Any) -> None:
        if request.url.startswith(self.origin):
            self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def requests(self, method: str, path_part: str) -> list[Any]:
        return [r for r in self.exchanges if r.method == method and path_part in r.url]

    def dump(self) -> str:
        lines = ["--- SDK ⇄ server exchanges ---"]
        for req in self.exchanges:
            lines.append(f"> {req.method} {req.url}")
            for name in ("content-type", "x-library-version", "x-client-software-id"):
                value = req.headers.get(name)
                if value:
                    lines.append(f">   {name}: {value}")
            if req.post_data:
                lines.append(f">   body: {req.post_data}")
            try:
                resp = req.response()
            except PlaywrightError as exc:  # diagnostics only
                lines.append(f"<   (no response: {exc})")
                continue
            if resp is None:
                lines.append("<   (no response)")
                continue
            try:
                body = resp.text()
            except PlaywrightError as exc:  # diagnostics only
                body = f"<unreadable: {exc}>"
            acao = resp.headers.get("access-control-allow-origin")
            lines.append(f"<   {resp.status} (access-control-allow-origin: {acao}) {body[:1500]}")
        if self.failed:
            lines.append("--- failed requests (CORS / network) ---")
            lines.extend(self.failed)
        if self.console:
            lines.append("--- browser console ---")
            lines.extend(self.console[-30:])
        return "\n".join(lines)


def node_dump(calls: list[dict[str, Any]]) -> str:
    lines = ["--- SDK ⇄ server exchanges (node fetch) ---"]
    for c in calls:
        lines.append(f"> {c.get('method')} {c.get('url')}")
        for name, value in (c.get("headers") or {}).items():
            lines.append(f">   {name}: {value}")
        if c.get("body"):
            lines.append(f">   body: {c['body']}")
        if "error" in c:
            lines.append(f"<   fetch error: {c['error']}")
        else:
            lines.append(f"<   {c.get('status')} {str(c.get('responseText'))[:1500]}")
    return "\n".join(lines)


def admin_get(server: LiveServer, path: str, diag: str) -> dict[str, Any]:
    with server.admin() as client:
        resp = client.get(path)
    assert resp.status_code == 200, (
        f"GET {path} -> {resp.status_code} {resp.text[:1000]}\n{diag}\n--- server log ---\n" + server.log_tail()
    )
    data: dict[str, Any] = resp.json()
    return data


def assert_event_response(
    name: str, resp: Any, server: LiveServer, browser_id: str, diag: str, *, guest_id: str | None
) -> None:
    """Fields the SDKs read / type on an event response (spec §3.4)."""
    assert isinstance(resp, dict), (
        f"{name}: the SDK resolved with {resp!r} — it returns null when the response is not "
        f"JSON or the fetch failed (e.g. CORS)\n{diag}"
    )
    assert resp.get("status") == "OK", f"{name}: status != OK: {resp}\n{diag}"
    assert resp.get("version") == "1.2", f"{name}: version != '1.2': {resp}\n{diag}"
    assert resp.get("client_key") == server.client_key, f"{name}: client_key: {resp}\n{diag}"
    assert resp.get("ref") == browser_id, f"{name}: ref must be the browser ref: {resp}\n{diag}"
    assert isinstance(resp.get("event_ref"), str) and UUID_RE.match(resp["event_ref"]), (
        f"{name}: event_ref missing: {resp}\n{diag}"
    )
    if guest_id is not None:
        assert resp.get("customer_ref") == guest_id, (
            f"{name}: customer_ref must be the browser's guest {guest_id}: {resp}\n{diag}"
        )


def assert_one_session(
    server: LiveServer,
    *,
    guest_id: str,
    browser_id: str,
    event_refs: dict[str, str],
    email: str | None,
    identifiers: list[tuple[str, str]],
    expect_cart_item: str | None,
    diag: str,
) -> dict[str, Any]:
    """Admin checks: browser → guest link, guest is a customer, ONE session holds everything."""
    browser = admin_get(server, f"/admin/v1/browsers/{browser_id}", diag)
    assert browser.get("ref") == browser_id, f"admin browser: {browser}"
    assert browser.get("guestRef") == guest_id, (
        f"admin browser {browser_id} is linked to {browser.get('guestRef')}, SDK guest id is "
        f"{guest_id}: {browser}\n{diag}"
    )

    timeline = admin_get(server, f"/admin/v1/guests/{guest_id}/timeline", diag)
    pretty = json.dumps(timeline, indent=1)[:6000]
    guest = timeline.get("guest") or {}
    assert guest.get("ref") == guest_id, f"timeline guest ref: {pretty}"
    assert guest.get("guestType") == "customer", f"guest should be a customer after IDENTITY: {pretty}\n{diag}"
    if email is not None:
        assert guest.get("email") == email, f"guest email not applied: {pretty}\n{diag}"
    have = {(i.get("provider"), i.get("id")) for i in guest.get("identifiers") or []}
    for ident in identifiers:
        assert ident in have, f"identifier {ident} not on the guest: {pretty}\n{diag}"

    items = timeline.get("items") or []
    wanted = set(event_refs.values())
    holding = [s for s in items if wanted & {e.get("ref") for e in s.get("events") or []}]
    assert len(holding) == 1, (
        f"expected all events {event_refs} in ONE session, found them in {len(holding)} "
        f"session(s) (timeline has {len(items)}): {pretty}\n{diag}"
    )
    assert len(items) == 1, f"the guest should have exactly one session: {pretty}"
    session = holding[0]
    session_events = session.get("events") or []
    by_ref = {e.get("ref"): e for e in session_events}
    missing = {name: ref for name, ref in event_refs.items() if ref not in by_ref}
    assert not missing, f"events {missing} are not in session {session.get('ref')}: {pretty}\n{diag}"
    for name, ref in event_refs.items():
        assert by_ref[ref].get("processingStatus") == "SUCCESS", (
            f"{name} event {ref} not processed successfully: {by_ref[ref]}\n{diag}"
        )

    assert session.get("guestRef") == guest_id, f"session guestRef: {pretty}"
    assert session.get("browserRef") == browser_id, f"session browserRef: {pretty}"
    assert session.get("channel") == "WEB", f"session channel: {pretty}"
    assert session.get("pointOfSale") == server.pos, f"session pointOfSale: {pretty}"
    assert session.get("status") == "OPEN", f"session should still be open: {pretty}"
    types = [e.get("type") for e in session_events]
    assert session.get("numEvents") == len(session_events), f"numEvents: {pretty}"
    assert session.get("numViews") == types.count("VIEW"), f"numViews: {pretty}"
    assert session.get("numAdds") == types.count("ADD"), f"numAdds: {pretty}"
    if expect_cart_item is not None:
        cart = {line.get("itemId"): line for line in session.get("cart") or []}
        assert expect_cart_item in cart, f"ADD did not put {expect_cart_item} in the cart: {pretty}"
        assert cart[expect_cart_item].get("quantity") == PRODUCT["quantity"], f"cart: {pretty}"
        assert cart[expect_cart_item].get("price") == PRODUCT["price"], f"cart: {pretty}"
    created = [e.get("createdAt") for e in session_events]
    assert created == sorted(created, reverse=True) or created == sorted(created), (
        f"session events not in time order: {created}"
    )
    return timeline


# --------------------------------------------------------------------------- 1. Engage


ENGAGE_SCRIPT = """
async ({ targetURL, clientKey, pointOfSale, email, product }) => {
  const out = { steps: [] };
  const step = async (name, fn) => {
    try { out[name] = await fn(); out.steps.push(name); }
    catch (e) { out.error = `${name}: ${e && e.message ? e.message : e}`; throw e; }
  };
  try {
    let engage;
    await step('init', async () => {
      engage = await window.SitecoreEngage.init({
        clientKey, targetURL, pointOfSale,
        cookieExpiryDays: 365, forceServerCookieMode: false,
        includeUTMParameters: true, webPersonalization: false,
      });
      return { version: engage.version };
    });
    out.cookie = document.cookie;
    await step('browserIdAfterInit', async () => engage.getBrowserId());
    await step('view', () => engage.pageView({ channel: 'WEB', currency: 'EUR' }, { customKey: 'customValue' }));
    await step('identity', () => engage.identity({
      channel: 'WEB', currency: 'EUR', email, firstName: 'Jane', lastName: 'Doe', title: 'Ms',
      identifiers: [
        { provider: 'email', id: email },
        { provider: 'BXLP', id: 'bxlp-' + email, expiryDate: '2030-01-01T00:00' },
      ],
    }));
    await step('add', () => engage.event('ADD',
      { channel: 'WEB', currency: 'EUR', language: 'EN', page: 'product', product },
      { campaign: { name: 'summer' } }));
    await step('browserId', async () => engage.getBrowserId());
    await step('windowBrowserId', async () => window.Engage.getBrowserId());
    await step('guestId', () => engage.getGuestId());
  } catch (e) { /* out.error already set */ }
  return out;
}
"""


ENGAGE_RELOAD_SCRIPT = """
async ({ targetURL, clientKey, pointOfSale }) => {
  const out = {};
  try {
    const engage = await window.SitecoreEngage.init({ clientKey, targetURL, pointOfSale });
    out.browserId = engage.getBrowserId();
    out.view = await engage.pageView({ channel: 'WEB', currency: 'EUR', page: 'second page' });
    out.guestId = await engage.getGuestId();
  } catch (e) { out.error = String(e && e.message ? e.message : e); }
  return out;
}
"""


def test_engage_browser_sdk(chromium_page: Any, site_server: str, live_server: LiveServer) -> None:
    page = chromium_page
    log = ExchangeLog(page, live_server.base_url)
    email = f"jane.{uuid.uuid4().hex[:8]}@example.com"

    page.goto(f"{site_server}/pages/engage.html?utm_source=newsletter&utm_medium=email")
    assert page.evaluate("typeof window.SitecoreEngage?.init") == "function", log.dump()

    out = page.evaluate(
        ENGAGE_SCRIPT,
        {
            "targetURL": live_server.base_url,
            "clientKey": live_server.client_key,
            "pointOfSale": live_server.pos,
            "email": email,
            "product": PRODUCT,
        },
    )
    diag = f"SDK results: {json.dumps(out, indent=1)}\n{log.dump()}"
    assert "error" not in out, f"Engage call failed: {out.get('error')}\n{diag}"
    assert out["init"]["version"] == "1.4.3"

    # init(): GET /v1.2/browser/create.json?client_key=K&message={} → reads `ref`, writes bid_K.
    browser_id = out["browserIdAfterInit"]
    assert isinstance(browser_id, str) and UUID_RE.match(browser_id), (
        f"no browser id after init (the SDK reads `ref` from browser/create.json): {diag}"
    )
    assert f"bid_{live_server.client_key}={browser_id}" in out["cookie"], diag
    assert out["browserId"] == browser_id and out["windowBrowserId"] == browser_id, diag
    creates = log.requests("GET", "/v1.2/browser/create.json")
    assert len(creates) == 1, f"expected one browser create: {diag}"

    # getGuestId(): GET /v1.2/browser/{bid}/show.json → reads customer.ref.
    guest_id = out["guestId"]
    assert isinstance(guest_id, str) and UUID_RE.match(guest_id), diag

    for name in ("view", "identity", "add"):
        assert_event_response(name, out[name], live_server, browser_id, diag, guest_id=guest_id)
    posts = log.requests("POST", "/v1.2/events")
    assert len(posts) == 3, f"expected 3 event POSTs: {diag}"
    sent_view = posts[0].post_data_json
    assert sent_view["type"] == "VIEW" and sent_view["utm_source"] == "newsletter", diag

    # Next page load: init() finds bid_<key> and creates no new browser; same guest.
    page.goto(f"{site_server}/pages/engage.html")
    again = page.evaluate(
        ENGAGE_RELOAD_SCRIPT,
        {
            "targetURL": live_server.base_url,
            "clientKey": live_server.client_key,
            "pointOfSale": live_server.pos,
        },
    )
    diag = f"SDK results: {json.dumps([out, again], indent=1)}\n{log.dump()}"
    assert "error" not in again, f"Engage call failed after reload: {again.get('error')}\n{diag}"
    assert again["browserId"] == browser_id, diag
    assert len(log.requests("GET", "/v1.2/browser/create.json")) == 1, diag
    assert again["guestId"] == guest_id, diag
    assert_event_response("view2", again["view"], live_server, browser_id, diag, guest_id=guest_id)

    assert_one_session(
        live_server,
        guest_id=guest_id,
        browser_id=browser_id,
        event_refs={
            **{k: out[k]["event_ref"] for k in ("view", "identity", "add")},
            "view2": again["view"]["event_ref"],
        },
        email=email,
        identifiers=[("email", email), ("BXLP", f"bxlp-{email}")],
        expect_cart_item=PRODUCT["item_id"],
        diag=diag,
    )


# --------------------------------------------------------------------------- 2. Cloud SDK


CLOUDSDK_SCRIPT = """
async ({ edgeUrl, contextId, siteName, email }) => {
  const sdk = window.SitecoreCloudSDK;
  const out = { steps: [], versions: sdk.versions };
  const step = async (name, fn) => {
    try { out[name] = await fn(); out.steps.push(name); }
    catch (e) { out.error = `${name}: ${e && e.message ? e.message : e}`; throw e; }
  };
  try {
    await step('init', async () => {
      sdk.CloudSDK({
        sitecoreEdgeContextId: contextId, siteName, sitecoreEdgeUrl: edgeUrl,
        enableBrowserCookie: true,
      }).addEvents().addPersonalize({ enablePersonalizeCookie: true }).initialize();
      await sdk.coreReady();
      return true;
    });
    await step('browserIdAfterInit', async () => sdk.getBrowserId());
    await step('view', () => sdk.pageView({
      channel: 'WEB', currency: 'EUR', extensionData: { customKey: 'customValue' },
    }));
    await step('identity', () => sdk.identity({
      channel: 'WEB', currency: 'EUR', email, firstName: 'Cloud', lastName: 'User',
      identifiers: [{ provider: 'email', id: email }],
    }));
    await step('custom', () => sdk.event({
      type: 'ADD_TO_WISHLIST', channel: 'WEB', currency: 'EUR', page: 'wishlist',
      extensionData: { sku: 'SKU-1', details: { color: 'blue' } },
    }));
    await step('browserId', async () => sdk.getBrowserId());
    await step('guestId', () => sdk.getGuestId());
    // The personalize package writes sc_cid_personalize from create.json's customer_ref.
    await step('personalizeWait', async () => {
      for (let i = 0; i < 50 && !document.cookie.includes('sc_cid_personalize='); i++)
        await new Promise(r => setTimeout(r, 100));
      return true;
    });
    out.cookie = document.cookie;
  } catch (e) { /* out.error already set */ }
  return out;
}
"""


def _cookie(cookie_str: str, name: str) -> str | None:
    for part in cookie_str.split("; "):
        key, _, value = part.partition("=")
        if key == name:
            return value
    return None


def test_cloud_sdk_browser(chromium_page: Any, site_server: str, live_server: LiveServer) -> None:
    page = chromium_page
    log = ExchangeLog(page, live_server.base_url)
    email = f"cloud.{uuid.uuid4().hex[:8]}@example.com"
    context_id = f"ctx-{uuid.uuid4()}"

    page.goto(f"{site_server}/pages/cloudsdk.html?utm_campaign=spring")
    assert page.evaluate("typeof window.SitecoreCloudSDK?.CloudSDK") == "function", log.dump()

    out = page.evaluate(
        CLOUDSDK_SCRIPT,
        {
            "edgeUrl": live_server.base_url,
            "contextId": context_id,
            "siteName": live_server.pos,
            "email": email,
        },
    )
    diag = f"SDK results: {json.dumps(out, indent=1)}\n{log.dump()}"
    assert "error" not in out, f"Cloud SDK call failed: {out.get('error')}\n{diag}"
    assert out["versions"] == {"core": "0.6.1", "events": "0.6.1", "personalize": "0.6.1"}

    # init: GET /v1/events/v1.2/browser/create.json?sitecoreContextId=…&client_key= → ref.
    browser_id = out["browserIdAfterInit"]
    assert isinstance(browser_id, str) and UUID_RE.match(browser_id), diag
    assert out["browserId"] == browser_id, diag
    creates = log.requests("GET", "/v1/events/v1.2/browser/create.json")
    assert len(creates) == 1 and f"sitecoreContextId={context_id}" in creates[0].url, diag

    # getGuestId: GET /v1/events/v1.2/browser/{bid}/show.json → customer.ref.
    guest_id = out["guestId"]
    assert isinstance(guest_id, str) and UUID_RE.match(guest_id), diag
    assert _cookie(out["cookie"], "sc_cid") == browser_id, diag
    assert _cookie(out["cookie"], "sc_cid_personalize") == guest_id, (
        f"sc_cid_personalize (create.json customer_ref) != show.json customer.ref: {diag}"
    )

    for name in ("view", "identity", "custom"):
        assert_event_response(name, out[name], live_server, browser_id, diag, guest_id=guest_id)
    posts = log.requests("POST", "/v1/events/v1.2/events")
    assert len(posts) == 3, diag
    for req in posts:
        assert f"sitecoreContextId={context_id}" in req.url and "siteId=" in req.url, diag
        assert req.post_data_json["pos"] == "" and req.post_data_json["client_key"] == "", diag

    timeline = assert_one_session(
        live_server,
        guest_id=guest_id,
        browser_id=browser_id,
        event_refs={k: out[k]["event_ref"] for k in ("view", "identity", "custom")},
        email=email,
        identifiers=[("email", email)],
        expect_cart_item=None,
        diag=diag,
    )
    custom = [e for e in timeline["items"][0]["events"] if e.get("ref") == out["custom"]["event_ref"]]
    assert custom and custom[0].get("type") == "ADD_TO_WISHLIST", timeline


# --------------------------------------------------------------------------- 3. Engage (Node)


def test_engage_server_sdk_node(node_bin: str, sdk_dir: Path, live_server: LiveServer, tmp_path: Path) -> None:
    email = f"nora.{uuid.uuid4().hex[:8]}@example.com"
    identifier = f"crm-{uuid.uuid4().hex[:12]}"
    payload = {
        "targetURL": live_server.base_url,
        "clientKey": live_server.client_key,
        "pointOfSale": live_server.pos,
        "email": email,
        "identifierId": identifier,
    }
    proc = subprocess.run(
        [node_bin, str(sdk_dir / "engage-server.mjs"), json.dumps(payload)],
        cwd=sdk_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"node driver crashed ({proc.returncode}):\n{proc.stderr}"
    out = json.loads(proc.stdout)
    calls = out.get("calls", [])
    diag = f"driver output: {json.dumps({k: v for k, v in out.items() if k != 'calls'}, indent=1)}\n{node_dump(calls)}"
    assert "error" not in out, diag
    assert out["version"] == "1.4.3"
    step1, step2 = out["steps"]
    assert "error" not in step1["body"] and "error" not in step2["body"], diag

    # handleCookie: GET /v1.2/browser/create.json once, then the cookie is reused.
    creates = [c for c in calls if "/v1.2/browser/create.json" in c["url"]]
    assert len(creates) == 1, f"expected exactly one browser create: {diag}"
    browser_id = out["browserId"]
    assert out["cookieName"] == f"bid_{live_server.client_key}", diag
    assert isinstance(browser_id, str) and UUID_RE.match(browser_id), diag
    assert step1["setCookie"] and step1["setCookie"].startswith(f"bid_{live_server.client_key}={browser_id};"), diag
    assert step2["setCookie"].startswith(f"bid_{live_server.client_key}={browser_id};"), diag

    # The guest id as the browser SDK's getGuestId() reads it (customer.ref).
    assert out["show"]["status"] == 200, diag
    guest_id = out["show"]["body"]["customer"]["ref"]
    assert isinstance(guest_id, str) and UUID_RE.match(guest_id), diag

    responses = {
        "view1": step1["body"]["view"],
        "identity": step1["body"]["identity"],
        "add": step1["body"]["add"],
        "view2": step2["body"]["view"],
    }
    for name, resp in responses.items():
        assert_event_response(name, resp, live_server, browser_id, diag, guest_id=guest_id)

    posts = [c for c in calls if c["method"] == "POST" and c["url"].endswith("/v1.2/events")]
    assert len(posts) == 4, diag
    first_view = json.loads(posts[0]["body"])
    assert first_view["utm_source"] == "newsletter" and first_view["client_key"] == live_server.client_key, diag

    assert_one_session(
        live_server,
        guest_id=guest_id,
        browser_id=browser_id,
        event_refs={k: v["event_ref"] for k, v in responses.items()},
        email=email,
        identifiers=[("CRM_ID", identifier)],
        expect_cart_item=PRODUCT["item_id"],
        diag=diag,
    )
