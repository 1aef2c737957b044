"""Flow execution through the real Sitecore SDKs against a live Innkeeper server.

Contract: spec/personalize.md §2 (flow execution API) and §3.1–3.2 (SDK call shapes).

1. Engage SDK 1.4.3 browser build in Chromium: ``engage.personalize()`` returns the rendered
   variant of a live flow (created and started through ``/v3/flowDefinitions``), ``{}`` for an
   unknown friendly id; after ``engage.identity()`` the same call renders the guest's first name
   and ``customer`` type, which proves the ``bid_<clientKey>`` cookie's browser id reached the
   server and resolved the guest. The request bodies are captured on the wire and compared with §3.1.
2. Cloud SDK 0.6.1 browser build in Chromium: ``personalize()`` through ``/v1/personalize`` with
   ``clientKey: ""`` and the context id in the query; nested params, UTM from the page URL,
   ``sc_cid`` browser id and ``sc_cid_personalize`` guest ref in the body (§3.2).
3. Cloud SDK 0.6.1 server entry in Node (``tests/sdk/cloudsdk-server.cjs``): ``CloudSDK(req, res)``
   sets the cookies, ``personalize(req, …)`` sends them from the incoming request's cookies.

Every assertion message carries the exchanges the SDK made, so a failure shows what was sent.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.test_sdk_compat import UUID_RE, ExchangeLog, node_dump
from tests.factories.flows import experience
from tests.support.live import LiveServer

pytestmark = pytest.mark.browser

# Engage flattens params with "_" (§2.3): {page: {name: "home"}} arrives as {"page_name": "home"}.
ENGAGE_TEMPLATE = (
    '{"name": "${guest.firstName!"visitor"}", "type": "${guest.guestType}", '
    '"page": "${request.params.page_name}", "tags": ${toJSON(request.params.tags)}, '
    '"browserId": "${request.browserId!""}", "pos": "${request.pointOfSale}"}'
)
# The Cloud SDK keeps params nested and adds params.utm from the page URL's utm_* parameters.
CLOUD_TEMPLATE = (
    '{"name": "${guest.firstName!"visitor"}", "type": "${guest.guestType}", '
    '"page": "${request.params.page.name}", "utm": "${request.params.utm.campaign}", '
    '"browserId": "${request.browserId!""}"}'
)


def start_flow(server: LiveServer, name: str, template: str, friendly_id: str) -> dict[str, Any]:
    """Create a flow through /v3/flowDefinitions on the live server and Start it (PUT status LIVE)."""
    with server.admin() as admin:
        created = admin.post("/v3/flowDefinitions", json=experience(name, template, friendlyId=friendly_id))
        assert created.status_code == 201, f"{created.status_code} {created.text}\n{server.log_tail()}"
        flow: dict[str, Any] = created.json()
        started = admin.put(f"/v3/flowDefinitions/{flow['ref']}", json={**flow, "status": "LIVE"})
        assert started.status_code == 200, f"{started.status_code} {started.text}\n{server.log_tail()}"
        live: dict[str, Any] = started.json()
    assert live["status"] == "LIVE" and live["friendlyId"] == friendly_id, live
    return live


def outcome_of(request: Any) -> str | None:
    """The X-Innkeeper-Flow-Outcome header of a captured Playwright request's response."""
    response = request.response()
    if response is None:
        return None
    value: str | None = response.headers.get("x-innkeeper-flow-outcome")
    return value


def guest_of(server: LiveServer, browser_id: str) -> str:
    with server.admin() as admin:
        response = admin.get(f"/admin/v1/browsers/{browser_id}")
    assert response.status_code == 200, response.text
    ref: str = response.json()["guestRef"]
    return ref


# --------------------------------------------------------------------------- 1. Engage


ENGAGE_SCRIPT = """
async ({ targetURL, clientKey, pointOfSale, friendlyId, email }) => {
  const out = { steps: [] };
  const step = async (name, fn) => {
    try { out[name] = await fn(); out.steps.push(name); }
    catch (e) { out.error = `${name}: ${e && e.message ? e.message : e}`; throw e; }
  };
  const input = (extra) => ({ channel: 'WEB', currency: 'EUR', friendlyId,
                              params: { page: { name: 'home' }, tags: ['a', 'b'] }, ...extra });
  try {
    let engage;
    await step('init', async () => {
      engage = await window.SitecoreEngage.init({
        clientKey, targetURL, pointOfSale, cookieExpiryDays: 365,
        forceServerCookieMode: false, webPersonalization: false,
      });
      return { version: engage.version };
    });
    await step('browserId', async () => engage.getBrowserId());
    out.cookie = document.cookie;
    await step('anonymous', () => engage.personalize(input({})));
    await step('unknown', () => engage.personalize(input({ friendlyId: 'no_such_flow_anywhere' })));
    await step('identity', () => engage.identity({
      channel: 'WEB', currency: 'EUR', email, firstName: 'Jane', lastName: 'Doe',
      identifiers: [{ provider: 'email', id: email }],
    }));
    await step('known', () => engage.personalize(input({})));
    await step('byEmail', () => engage.personalize({ channel: 'WEB', currency: 'EUR', friendlyId, email,
                                                     params: { page: { name: 'mail' }, tags: [] } }));
  } catch (e) { /* out.error already set */ }
  return out;
}
"""


def test_engage_personalize_in_the_browser(chromium_page: Any, site_server: str, live_server: LiveServer) -> None:
    friendly_id = "sdk_engage_hero"
    start_flow(live_server, "SDK Engage hero", ENGAGE_TEMPLATE, friendly_id)
    page = chromium_page
    log = ExchangeLog(page, live_server.base_url)
    email = f"jane.{uuid.uuid4().hex[:8]}@example.com"

    page.goto(f"{site_server}/pages/engage.html")
    out = page.evaluate(
        ENGAGE_SCRIPT,
        {
            "targetURL": live_server.base_url,
            "clientKey": live_server.client_key,
            "pointOfSale": live_server.pos,
            "friendlyId": friendly_id,
            "email": email,
        },
    )
    diag = f"SDK results: {json.dumps(out, indent=1)}\n{log.dump()}\n--- server log ---\n{live_server.log_tail()}"
    assert "error" not in out, f"Engage call failed: {out.get('error')}\n{diag}"
    assert out["init"]["version"] == "1.4.3", diag
    browser_id = out["browserId"]
    assert isinstance(browser_id, str) and UUID_RE.match(browser_id), diag
    assert f"bid_{live_server.client_key}={browser_id}" in out["cookie"], diag

    # personalize() resolves with response.json(): the variant's rendered JSON, or {} (§2.6).
    common = {"page": "home", "tags": ["a", "b"], "browserId": browser_id, "pos": live_server.pos}
    assert out["anonymous"] == {"name": "visitor", "type": "visitor", **common}, diag
    assert out["unknown"] == {}, diag
    # After IDENTITY the cookie's browser id resolves to the now-known guest.
    assert out["known"] == {"name": "Jane", "type": "customer", **common}, diag
    # By email: no browserId is sent; the guest is found by its email.
    by_email = {"name": "Jane", "type": "customer", "page": "mail", "tags": [], "browserId": "", "pos": live_server.pos}
    assert out["byEmail"] == by_email, diag

    posts = log.requests("POST", "/v2/callFlows")
    assert [r.url for r in posts] == [f"{live_server.base_url}/v2/callFlows"] * 4, diag
    assert [outcome_of(r) for r in posts] == ["variant", "not_found", "variant", "variant"], diag
    # The exact bodies §3.1 describes: clientKey and pointOfSale from init(), currencyCode <- currency,
    # language from <html lang="en">, params flattened with "_", browserId from bid_<clientKey>
    # unless an email/identifier is given; undefined fields dropped by JSON.stringify.
    base = {
        "channel": "WEB",
        "clientKey": live_server.client_key,
        "currencyCode": "EUR",
        "friendlyId": friendly_id,
        "language": "EN",
        "params": {"page_name": "home", "tags": ["a", "b"]},
        "pointOfSale": live_server.pos,
    }
    sent = [r.post_data_json for r in posts]
    assert sent[0] == {**base, "browserId": browser_id}, diag
    assert list(sent[0]) == [*base, "browserId"], f"key order of the Engage body: {diag}"
    assert sent[1] == {**base, "friendlyId": "no_such_flow_anywhere", "browserId": browser_id}, diag
    assert sent[2] == sent[0], diag
    assert sent[3] == {
        "channel": "WEB",
        "clientKey": live_server.client_key,
        "currencyCode": "EUR",
        "email": email,
        "friendlyId": friendly_id,
        "language": "EN",
        "params": {"page_name": "mail", "tags": []},
        "pointOfSale": live_server.pos,
    }, diag
    for req in posts:
        assert req.headers.get("content-type") == "application/json", diag
        assert req.headers.get("x-library-version") == "1.4.3", diag

    # The browser's guest is the one the IDENTITY made a customer, i.e. the one that was rendered.
    with live_server.admin() as admin:
        timeline = admin.get(f"/admin/v1/guests/{guest_of(live_server, browser_id)}/timeline").json()
    assert timeline["guest"]["email"] == email and timeline["guest"]["firstName"] == "Jane", diag


# --------------------------------------------------------------------------- 2. Cloud SDK


CLOUD_SCRIPT = """
async ({ edgeUrl, contextId, siteName, friendlyId, email }) => {
  const sdk = window.SitecoreCloudSDK;
  const out = { steps: [], versions: sdk.versions };
  const step = async (name, fn) => {
    try { out[name] = await fn(); out.steps.push(name); }
    catch (e) { out.error = `${name}: ${e && e.message ? e.message : e}`; throw e; }
  };
  const input = (extra) => ({ channel: 'WEB', currency: 'EUR', friendlyId,
                              params: { page: { name: 'home' } }, ...extra });
  try {
    await step('init', async () => {
      sdk.CloudSDK({ sitecoreEdgeContextId: contextId, siteName, sitecoreEdgeUrl: edgeUrl, enableBrowserCookie: true })
        .addEvents().addPersonalize({ enablePersonalizeCookie: true }).initialize();
      await sdk.coreReady();
      return true;
    });
    await step('browserId', async () => sdk.getBrowserId());
    await step('personalizeCookie', async () => {
      for (let i = 0; i < 50 && !document.cookie.includes('sc_cid_personalize='); i++)
        await new Promise(r => setTimeout(r, 100));
      return document.cookie;
    });
    await step('anonymous', () => sdk.personalize(input({})));
    await step('unknown', () => sdk.personalize(input({ friendlyId: 'no_such_flow_anywhere' })));
    await step('identity', () => sdk.identity({
      channel: 'WEB', currency: 'EUR', email, firstName: 'Cloud', lastName: 'User',
      identifiers: [{ provider: 'email', id: email }],
    }));
    await step('known', () => sdk.personalize(input({})));
  } catch (e) { /* out.error already set */ }
  return out;
}
"""


def _cookie(cookies: str, name: str) -> str | None:
    for part in cookies.split("; "):
        key, _, value = part.partition("=")
        if key == name:
            return value
    return None


def test_cloud_sdk_personalize_in_the_browser(chromium_page: Any, site_server: str, live_server: LiveServer) -> None:
    friendly_id = "sdk_cloud_hero"
    start_flow(live_server, "SDK Cloud hero", CLOUD_TEMPLATE, friendly_id)
    page = chromium_page
    log = ExchangeLog(page, live_server.base_url)
    email = f"cloud.{uuid.uuid4().hex[:8]}@example.com"
    context_id = f"ctx-{uuid.uuid4()}"
    site = "sdkstore"

    page.goto(f"{site_server}/pages/cloudsdk.html?utm_campaign=spring")
    out = page.evaluate(
        CLOUD_SCRIPT,
        {
            "edgeUrl": live_server.base_url,
            "contextId": context_id,
            "siteName": site,
            "friendlyId": friendly_id,
            "email": email,
        },
    )
    diag = f"SDK results: {json.dumps(out, indent=1)}\n{log.dump()}\n--- server log ---\n{live_server.log_tail()}"
    assert "error" not in out, f"Cloud SDK call failed: {out.get('error')}\n{diag}"
    assert out["versions"]["personalize"] == "0.6.1", diag
    browser_id = out["browserId"]
    assert isinstance(browser_id, str) and UUID_RE.match(browser_id), diag
    guest_ref = _cookie(out["personalizeCookie"], "sc_cid_personalize")
    assert guest_ref is not None and UUID_RE.match(guest_ref), f"no sc_cid_personalize cookie: {diag}"

    common = {"page": "home", "utm": "spring", "browserId": browser_id}
    assert out["anonymous"] == {"name": "visitor", "type": "visitor", **common}, diag
    assert out["unknown"] == {}, diag
    assert out["known"] == {"name": "Cloud", "type": "customer", **common}, diag

    posts = log.requests("POST", "/v1/personalize")
    assert len(posts) == 3, diag
    assert [outcome_of(r) for r in posts] == ["variant", "not_found", "variant"], diag
    # §3.2: clientKey and pointOfSale sent empty, the tenant comes from the context id in the
    # query; params nested, utm from the page URL; guestRef from sc_cid_personalize, browserId
    # from sc_cid.
    for req, sent_friendly_id in zip(posts, [friendly_id, "no_such_flow_anywhere", friendly_id], strict=True):
        url = httpx.URL(req.url)
        assert url.path == "/v1/personalize", diag
        assert dict(url.params) == {"sitecoreContextId": context_id, "siteId": site}, diag
        body = req.post_data_json
        assert body == {
            "channel": "WEB",
            "clientKey": "",
            "currencyCode": "EUR",
            "friendlyId": sent_friendly_id,
            "guestRef": guest_ref,
            "language": "EN",
            "params": {"page": {"name": "home"}, "utm": {"campaign": "spring"}},
            "pointOfSale": "",
            "browserId": browser_id,
        }, diag
        assert list(body) == [
            "channel",
            "clientKey",
            "currencyCode",
            "friendlyId",
            "guestRef",
            "language",
            "params",
            "pointOfSale",
            "browserId",
        ], f"key order of the Cloud SDK body: {diag}"
        assert req.headers.get("x-library-version") == "0.6.1", diag
        correlation = req.headers.get("x-sc-correlation-id")
        assert correlation, diag
        response = req.response()
        assert response is not None and response.headers.get("x-sc-correlation-id") == correlation, diag
    assert guest_of(live_server, browser_id) == guest_ref, diag


# --------------------------------------------------------------------------- 3. Cloud SDK (Node)


def test_cloud_sdk_personalize_on_a_node_server(node_bin: str, sdk_dir: Path, live_server: LiveServer) -> None:
    friendly_id = "sdk_cloud_server_hero"
    start_flow(live_server, "SDK Cloud server hero", CLOUD_TEMPLATE, friendly_id)
    context_id = f"ctx-{uuid.uuid4()}"
    payload = {
        "edgeUrl": live_server.base_url,
        "contextId": context_id,
        "siteName": "sdkstore",
        "friendlyId": friendly_id,
    }
    proc = subprocess.run(
        [node_bin, str(sdk_dir / "cloudsdk-server.cjs"), json.dumps(payload)],
        cwd=sdk_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"node driver crashed ({proc.returncode}):\n{proc.stderr}"
    out = json.loads(proc.stdout)
    calls: list[dict[str, Any]] = out.get("calls", [])
    diag = (
        f"driver output: {json.dumps({k: v for k, v in out.items() if k != 'calls'}, indent=1)}\n"
        f"{node_dump(calls)}\n--- server log ---\n{live_server.log_tail()}"
    )
    assert "error" not in out, diag
    first, second, unknown = out["steps"]
    for step in (first, second, unknown):
        assert step["status"] == 200 and "error" not in step["body"], diag
    browser_id = _cookie(out["cookie"], "sc_cid")
    guest_ref = _cookie(out["cookie"], "sc_cid_personalize")
    assert browser_id is not None and UUID_RE.match(browser_id), f"no sc_cid cookie set: {diag}"
    assert guest_ref is not None and guest_ref == guest_of(live_server, browser_id), diag

    common = {"name": "visitor", "type": "visitor", "page": "home", "utm": "spring"}
    # Visit 1 creates the browser (create.json) and personalizes for it; visit 2 sends its cookie back.
    assert first["body"]["personalize"] == {**common, "browserId": browser_id}, diag
    assert second["body"]["personalize"] == {**common, "browserId": browser_id}, diag
    assert len([c for c in calls if "/browser/create.json" in c["url"]]) == 1, diag
    assert unknown["body"]["personalize"] == {}, diag

    posts = [c for c in calls if c["method"] == "POST" and "/v1/personalize?" in c["url"]]
    assert len(posts) == 3, diag
    for call in posts:
        assert call["url"].startswith(f"{live_server.base_url}/v1/personalize?"), diag
        assert f"sitecoreContextId={context_id}" in call["url"] and "siteId=sdkstore" in call["url"], diag
        assert call["headers"].get("X-Library-Version") == "0.6.1", diag
        assert call["responseHeaders"].get("x-innkeeper-flow-outcome") is not None, diag
    sent = json.loads(posts[1]["body"])
    expected = {
        "channel": "WEB",
        "clientKey": "",
        "currencyCode": "EUR",
        "friendlyId": friendly_id,
        "guestRef": guest_ref,
        "params": {"page": {"name": "home"}, "utm": {"campaign": "spring"}},
        "pointOfSale": "",
        "browserId": browser_id,
    }
    # No "language": on a server there is no <html lang> to infer it from, and undefined is dropped.
    assert sent == expected, diag
    assert [c["responseHeaders"]["x-innkeeper-flow-outcome"] for c in posts] == ["variant", "variant", "not_found"], (
        diag
    )
