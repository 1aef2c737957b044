"""Settings pages: API access, points of sale, features, identity rules and users (issue 7, spec §12)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from innkeeper.core.runtime import Runtime
from innkeeper.users import service as users
from innkeeper.users.models import User, UserSession
from innkeeper.worker import sweep_once
from tests.conftest import CLIENT_KEY, POINT_OF_SALE
from tests.factories.sessions import ADMIN, browser_sessions, send
from tests.factories.stream import create_browser
from tests.portal.conftest import PASSWORD, SignInAs, make_user, sign_in
from tests.support.clock import FrozenClock

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
NEW_TOKEN = re.compile(r'<code id="new-token">([^<]+)</code>')
POS = "acme/new york"
POS_PAGE = "/portal/settings/points-of-sale/acme%2Fnew%20york"


@pytest.fixture
async def other(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser, for the user being managed."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        yield browser


async def admin_get(client: httpx.AsyncClient, path: str, *, expect: int = 200) -> Any:
    response = await client.get(path, auth=ADMIN)
    assert response.status_code == expect, response.text
    return response.json()


async def user_ref(runtime: Runtime, email: str) -> str:
    async with runtime.sessions() as session:
        user = await users.by_email(session, email)
    assert user is not None
    return user.ref


def pos_form(csrf: str, **fields: str) -> dict[str, str]:
    form = {
        "csrf": csrf,
        "name": POS,
        "market": "Kept Market",
        "brand": "Acme",
        "language": "EN",
        "currency_code": "eur",
        "timeout_minutes": "5",
        "site_name": "",
    }
    return form | fields


# --- API access -------------------------------------------------------------------------


async def test_settings_opens_on_api_access_with_the_client_key(
    portal: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    await signed_in_as("ENTERPRISE_ADMIN")
    home = await portal.get("/portal/settings")
    assert home.status_code == 303 and home.headers["location"] == "/portal/settings/api-access"
    page = await portal.get("/portal/settings/api-access")
    assert page.status_code == 200
    assert f'<code id="client-key">{CLIENT_KEY}</code>' in page.text and f'data-copy="{CLIENT_KEY}"' in page.text
    assert 'aria-current="page">API access' in page.text.replace("\n", "")
    for tab in ("points-of-sale", "features", "identity-rules", "users"):
        assert f'href="/portal/settings/{tab}"' in page.text
    assert "bootstrap (INNKEEPER_API_TOKEN)" in page.text and "Create an API token" in page.text


async def test_a_new_token_is_shown_once_works_and_stops_when_revoked(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    created = await portal.post(
        "/portal/settings/api-access/tokens", data={"csrf": csrf, "label": "CI deploy", "scope": "admin"}
    )
    assert created.status_code == 200  # a page, not a redirect: the value exists only in this answer
    match = NEW_TOKEN.search(created.text)
    assert match is not None and "will not be shown again" in created.text
    token = match.group(1)
    assert f'data-copy="{token}"' in created.text

    again = await portal.get("/portal/settings/api-access")
    assert "CI deploy" in again.text and token not in again.text and NEW_TOKEN.search(again.text) is None

    access = await client.get("/admin/v1/api-access", auth=(CLIENT_KEY, token))
    assert access.status_code == 200
    [mine] = [t for t in access.json()["tokens"] if t["label"] == "CI deploy"]
    assert mine["scope"] == "admin" and mine["lastUsedAt"] is not None

    revoked = await portal.post(f"/portal/settings/api-access/tokens/{mine['id']}/revoke", data={"csrf": csrf})
    assert (
        revoked.status_code == 303 and revoked.headers["location"] == "/portal/settings/api-access?done=token-revoked"
    )
    listed = await portal.get(revoked.headers["location"])
    assert "The API token was revoked" in listed.text and "CI deploy" not in listed.text
    assert (await client.get("/admin/v1/api-access", auth=(CLIENT_KEY, token))).status_code == 401
    twice = await portal.post(f"/portal/settings/api-access/tokens/{mine['id']}/revoke", data={"csrf": csrf})
    assert twice.status_code == 404


async def test_a_read_only_token_from_the_portal_cannot_use_the_admin_api(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    created = await portal.post("/portal/settings/api-access/tokens", data={"csrf": csrf, "label": "BI", "scope": "ro"})
    match = NEW_TOKEN.search(created.text)
    assert match is not None
    assert (await client.get("/admin/v1/api-access", auth=(CLIENT_KEY, match.group(1)))).status_code == 403


@pytest.mark.parametrize(
    ("label", "scope", "message"),
    [("", "rw", "Label"), ("x" * 201, "rw", "Label"), ("ok", "root", "Scope"), ("ok", "", "Scope")],
)
async def test_bad_token_forms_are_refused_and_create_nothing(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs, label: str, scope: str, message: str
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    before = await admin_get(client, "/admin/v1/api-access")
    response = await portal.post(
        "/portal/settings/api-access/tokens", data={"csrf": csrf, "label": label, "scope": scope}
    )
    assert response.status_code == 400 and f'class="error" role="alert">{message}' in response.text
    assert NEW_TOKEN.search(response.text) is None
    assert await admin_get(client, "/admin/v1/api-access") == before


async def test_token_labels_render_as_text(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    created = await portal.post("/portal/settings/api-access/tokens", data={"csrf": csrf, "label": XSS, "scope": "rw"})
    assert created.status_code == 200 and XSS not in created.text and ESCAPED in created.text
    listed = await portal.get("/portal/settings/api-access")
    assert XSS not in listed.text and ESCAPED in listed.text


async def test_a_user_manager_sees_api_access_but_cannot_create_tokens(
    portal: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("USER_MANAGER")
    page = await portal.get("/portal/settings/api-access")
    assert page.status_code == 200 and CLIENT_KEY in page.text
    assert "Create an API token" not in page.text and "Revoke" not in page.text
    refused = await portal.post("/portal/settings/api-access/tokens", data={"csrf": csrf, "label": "x", "scope": "ro"})
    assert refused.status_code == 403


async def test_settings_posts_without_the_csrf_token_change_nothing(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    await signed_in_as("ENTERPRISE_ADMIN")
    before = await admin_get(client, "/admin/v1/api-access")
    forged = await portal.post("/portal/settings/api-access/tokens", data={"label": "forged", "scope": "admin"})
    assert forged.status_code == 403 and "did not come from this portal" in forged.text
    assert NEW_TOKEN.search(forged.text) is None
    header = await portal.post("/portal/settings/features", headers={"X-CSRF-Token": "guessed"}, data={"debug": "on"})
    assert header.status_code == 403
    assert await admin_get(client, "/admin/v1/api-access") == before
    assert (await admin_get(client, "/admin/v1/settings"))["autoCreatePointOfSale"] is True


async def test_notices_come_only_from_fixed_codes(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    await signed_in_as("ENTERPRISE_ADMIN")
    page = await portal.get("/portal/settings/features", params={"done": XSS})
    assert page.status_code == 200 and 'class="notice"' not in page.text and XSS not in page.text
    saved = await portal.get("/portal/settings/features", params={"done": "features-saved"})
    assert "Features saved." in saved.text


# --- points of sale ---------------------------------------------------------------------


async def test_a_point_of_sale_made_in_the_portal_times_sessions_out_after_its_minutes(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    created = await portal.post("/portal/settings/points-of-sale", data=pos_form(csrf))
    assert created.status_code == 303
    assert created.headers["location"] == "/portal/settings/points-of-sale?done=pos-created"
    listed = await portal.get(created.headers["location"])
    assert "Point of sale created." in listed.text and f'href="{POS_PAGE}"' in listed.text
    assert f">{POINT_OF_SALE}</a>" in listed.text

    stored = await admin_get(client, "/admin/v1/points-of-sale/" + quote(POS, safe=""))
    assert (stored["timeoutInMinutes"], stored["market"], stored["language"], stored["currencyCode"]) == (
        5,
        "Kept Market",
        "EN",
        "EUR",
    )
    assert stored["siteName"] is None

    browser = await create_browser(client)
    await send(client, browser["ref"], pos=POS)
    clock.advance(minutes=6)
    assert await sweep_once(runtime) == 1
    [closed] = await browser_sessions(runtime, browser["ref"])
    assert (closed.point_of_sale, closed.status, closed.close_reason) == (POS, "CLOSED", "TIMEOUT")


async def test_a_point_of_sale_is_searched_edited_and_deleted(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("USER_MANAGER")  # Sitecore: User Manager or Admin manage points of sale
    assert (await portal.post("/portal/settings/points-of-sale", data=pos_form(csrf))).status_code == 303

    found = await portal.get("/portal/settings/points-of-sale", params={"q": "NEW YORK"})
    assert f'href="{POS_PAGE}"' in found.text and "myretailsite%2Fireland" not in found.text
    none = await portal.get("/portal/settings/points-of-sale", params={"q": "nowhere"})
    assert "No point of sale matches." in none.text

    form = await portal.get(POS_PAGE)
    assert form.status_code == 200 and 'value="Kept Market"' in form.text and 'value="5"' in form.text
    assert (await portal.get("/portal/settings/points-of-sale/acme/new%20york")).status_code == 200  # a raw slash too
    saved = await portal.post(POS_PAGE, data=pos_form(csrf, market="France", timeout_minutes="30", site_name="acme"))
    assert saved.status_code == 303 and saved.headers["location"] == POS_PAGE + "?done=pos-saved"
    assert "Point of sale saved." in (await portal.get(saved.headers["location"])).text
    stored = await admin_get(client, "/admin/v1/points-of-sale/" + quote(POS, safe=""))
    assert (stored["name"], stored["market"], stored["timeoutInMinutes"], stored["siteName"]) == (
        POS,
        "France",
        30,
        "acme",
    )

    deleted = await portal.post(POS_PAGE, data={"csrf": csrf, "action": "delete"})
    assert deleted.status_code == 303 and deleted.headers["location"].endswith("?done=pos-deleted")
    await admin_get(client, "/admin/v1/points-of-sale/" + quote(POS, safe=""), expect=404)
    assert (await portal.get(POS_PAGE)).status_code == 404
    assert (await portal.post(POS_PAGE, data={"csrf": csrf, "action": "delete"})).status_code == 404
    assert (await portal.post(POS_PAGE, data=pos_form(csrf))).status_code == 404


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "Name:"),
        ({"name": "   "}, "Name:"),
        ({"name": "n" * 101}, "Name:"),
        ({"name": ".."}, "Name:"),
        ({"timeout_minutes": "0"}, "Timeout:"),
        ({"timeout_minutes": "1441"}, "Timeout:"),
        ({"timeout_minutes": "99999999999999999999"}, "Timeout:"),
        ({"timeout_minutes": "five"}, "Timeout:"),
        ({"timeout_minutes": "1_0"}, "Timeout:"),
        ({"timeout_minutes": ""}, "Timeout:"),
        ({"language": "english please"}, "Language:"),
        ({"language": "e"}, "Language:"),
        ({"currency_code": "EURO"}, "Currency:"),
        ({"brand": "b" * 101}, "Brand:"),
    ],
)
async def test_a_bad_point_of_sale_is_refused_with_its_input_kept(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs, fields: dict[str, str], message: str
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    response = await portal.post("/portal/settings/points-of-sale", data=pos_form(csrf, **fields))
    assert response.status_code == 400 and message in response.text
    assert 'value="Kept Market"' in response.text  # the form comes back as typed
    assert [p["name"] for p in (await admin_get(client, "/admin/v1/points-of-sale"))["items"]] == [POINT_OF_SALE]


async def test_a_bad_edit_or_a_taken_name_changes_nothing(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    assert (await portal.post("/portal/settings/points-of-sale", data=pos_form(csrf))).status_code == 303
    taken = await portal.post("/portal/settings/points-of-sale", data=pos_form(csrf, market="Other"))
    assert taken.status_code == 409 and "already exists" in taken.text and 'value="Other"' in taken.text
    bad = await portal.post(POS_PAGE, data=pos_form(csrf, market="Changed", timeout_minutes="0"))
    assert bad.status_code == 400 and "Timeout:" in bad.text and 'value="Changed"' in bad.text
    stored = await admin_get(client, "/admin/v1/points-of-sale/" + quote(POS, safe=""))
    assert (stored["market"], stored["timeoutInMinutes"]) == ("Kept Market", 5)


async def test_point_of_sale_names_render_as_text(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    created = await portal.post("/portal/settings/points-of-sale", data=pos_form(csrf, name=XSS, market=XSS))
    assert created.status_code == 303
    listed = await portal.get("/portal/settings/points-of-sale")
    assert XSS not in listed.text and ESCAPED in listed.text
    edit = await portal.get("/portal/settings/points-of-sale/" + quote(XSS, safe=""))
    assert edit.status_code == 200 and XSS not in edit.text and ESCAPED in edit.text
    refused = await portal.post("/portal/settings/points-of-sale", data=pos_form(csrf, name=XSS, language=XSS))
    assert refused.status_code == 400 and XSS not in refused.text


async def test_a_marketer_cannot_open_settings(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    await signed_in_as("MARKETER")
    assert (await portal.get("/portal/settings/points-of-sale")).status_code == 403
    assert (await portal.get("/portal/settings")).status_code == 403


# --- features and identity rules --------------------------------------------------------


async def test_the_debug_switch_reaches_the_tenant_settings(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    page = await portal.get("/portal/settings/features")
    assert page.status_code == 200 and "<strong>development</strong>" in page.text
    off = await portal.post("/portal/settings/features", data={"csrf": csrf, "auto_create_pos": "on"})
    assert off.status_code == 303 and off.headers["location"] == "/portal/settings/features?done=features-saved"
    settings = await admin_get(client, "/admin/v1/settings")
    assert (settings["debug"], settings["autoCreatePointOfSale"], settings["environment"]) == (
        False,
        True,
        "development",
    )
    on = await portal.post("/portal/settings/features", data={"csrf": csrf, "debug": "on"})
    assert on.status_code == 303
    settings = await admin_get(client, "/admin/v1/settings")
    assert (settings["debug"], settings["autoCreatePointOfSale"]) == (True, False)
    shown = await portal.get("/portal/settings/features")
    assert 'name="debug" value="on" checked' in shown.text and 'name="auto_create_pos" value="on">' in shown.text


async def test_a_user_manager_sees_features_read_only(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    csrf = await signed_in_as("USER_MANAGER")
    page = await portal.get("/portal/settings/features")
    assert page.status_code == 200 and "disabled" in page.text and "Save features" not in page.text
    assert (await portal.post("/portal/settings/features", data={"csrf": csrf, "debug": "on"})).status_code == 403


def rules_form(csrf: str, rules: list[tuple[str, str]], *, fallback: bool = True) -> dict[str, Any]:
    form: dict[str, Any] = {"csrf": csrf, "rule_name": [n for n, _ in rules], "rule_provider": [p for _, p in rules]}
    return form | ({"email_fallback": "on"} if fallback else {})


async def test_identity_rules_are_saved_and_a_sixth_is_refused(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    rules = [("Email", "email"), ("", ""), ("Loyalty card", "LOYALTY")]
    saved = await portal.post("/portal/settings/identity-rules", data=rules_form(csrf, rules, fallback=False))
    assert saved.status_code == 303 and saved.headers["location"].endswith("?done=rules-saved")
    expected = {
        "rules": [{"name": "Email", "provider": "email"}, {"name": "Loyalty card", "provider": "LOYALTY"}],
        "emailFallback": False,
    }
    assert await admin_get(client, "/admin/v1/identity-rules") == expected
    page = await portal.get("/portal/settings/identity-rules")
    assert "Loyalty card" in page.text and page.text.count('name="rule_name"') == 5

    six = [(f"Rule {n}", f"P{n}") for n in range(6)]
    refused = await portal.post("/portal/settings/identity-rules", data=rules_form(csrf, six))
    assert refused.status_code == 400 and "At most 5 identity rules." in refused.text and 'value="P5"' in refused.text
    half = await portal.post("/portal/settings/identity-rules", data=rules_form(csrf, [("No provider", "")]))
    assert half.status_code == 400 and "Rule 1:" in half.text
    assert await admin_get(client, "/admin/v1/identity-rules") == expected

    escaped = await portal.post("/portal/settings/identity-rules", data=rules_form(csrf, [(XSS, "email")]))
    assert escaped.status_code == 303
    shown = await portal.get("/portal/settings/identity-rules")
    assert XSS not in shown.text and ESCAPED in shown.text


async def test_only_an_admin_edits_identity_rules(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    csrf = await signed_in_as("USER_MANAGER")
    page = await portal.get("/portal/settings/identity-rules")
    assert page.status_code == 200 and "Save identity rules" not in page.text
    assert (await portal.post("/portal/settings/identity-rules", data={"csrf": csrf})).status_code == 403


# --- users ------------------------------------------------------------------------------


async def test_an_admin_creates_a_user_changes_the_role_and_disables_them(
    portal: httpx.AsyncClient, other: httpx.AsyncClient, runtime: Runtime, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    form = {"csrf": csrf, "email": "New@Example.com", "name": XSS, "role": "MARKETER", "password": PASSWORD}
    created = await portal.post("/portal/settings/users", data=form)
    assert created.status_code == 303 and created.headers["location"] == "/portal/settings/users?done=user-created"
    listed = await portal.get(created.headers["location"])
    assert "User created." in listed.text and "new@example.com" in listed.text
    assert XSS not in listed.text and ESCAPED in listed.text
    ref = await user_ref(runtime, "new@example.com")

    assert (await sign_in(other, "new@example.com")).status_code == 303
    assert (await other.get("/portal/settings/users")).status_code == 403  # a marketer
    promoted = await portal.post(f"/portal/settings/users/{ref}/role", data={"csrf": csrf, "role": "USER_MANAGER"})
    assert promoted.status_code == 303 and promoted.headers["location"].endswith("?done=role-changed")
    assert (await other.get("/portal/settings/users")).status_code == 200  # the same session, the new role

    disabled = await portal.post(f"/portal/settings/users/{ref}/disable", data={"csrf": csrf})
    assert disabled.status_code == 303
    assert "disabled" in (await portal.get("/portal/settings/users")).text
    assert (await other.get("/portal/guests")).status_code == 303  # signed out
    async with runtime.sessions() as session:
        assert (await session.execute(select(UserSession).where(UserSession.user_ref == ref))).first() is None
    assert (await sign_in(other, "new@example.com")).status_code == 401

    assert (await portal.post(f"/portal/settings/users/{ref}/enable", data={"csrf": csrf})).status_code == 303
    assert (await sign_in(other, "new@example.com")).status_code == 303

    short = await portal.post(f"/portal/settings/users/{ref}/password", data={"csrf": csrf, "password": "short"})
    assert short.status_code == 400 and "at least 12 characters" in short.text
    reset = await portal.post(
        f"/portal/settings/users/{ref}/password", data={"csrf": csrf, "password": "a brand new password"}
    )
    assert reset.status_code == 303 and reset.headers["location"].endswith("?done=password-reset")
    assert (await other.get("/portal/guests")).status_code == 303  # another user's reset signs them out
    assert (await sign_in(other, "new@example.com")).status_code == 401
    assert (await sign_in(other, "new@example.com", "a brand new password")).status_code == 303


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"email": "not-an-email"}, 400, "email: not an email address"),
        ({"password": "eleven char"}, 400, "password: at least 12 characters"),
        ({"role": "GOD"}, 400, "role: one of"),
        ({"role": ""}, 400, "role: one of"),
        ({"name": "n" * 201}, 400, "name: at most 200 characters"),
        ({"email": "enterprise_admin@example.com"}, 409, "A user with this email exists."),
    ],
)
async def test_a_bad_user_is_refused_with_its_input_kept(
    portal: httpx.AsyncClient,
    runtime: Runtime,
    signed_in_as: SignInAs,
    fields: dict[str, str],
    status: int,
    message: str,
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    form = {"csrf": csrf, "email": "kept@example.com", "name": "Kept Name", "role": "VIEWER", "password": PASSWORD}
    response = await portal.post("/portal/settings/users", data=form | fields)
    assert response.status_code == status and message in response.text
    assert f'value="{(form | fields)["email"]}"' in response.text and PASSWORD not in response.text
    async with runtime.sessions() as session:
        assert len((await session.execute(select(User))).scalars().all()) == 1


async def test_a_user_manager_cannot_make_or_change_an_enterprise_admin(
    portal: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, signed_in_as: SignInAs
) -> None:
    await make_user(runtime, clock, "boss@example.com", "ENTERPRISE_ADMIN")
    await make_user(runtime, clock, "mark@example.com", "MARKETER")
    csrf = await signed_in_as("USER_MANAGER")
    boss, mark = await user_ref(runtime, "boss@example.com"), await user_ref(runtime, "mark@example.com")
    page = await portal.get("/portal/settings/users")
    assert "Only an Enterprise Admin can change this user." in page.text
    assert '<option value="ENTERPRISE_ADMIN"' not in page.text

    attempts = [
        ("/portal/settings/users", {"email": "x@example.com", "role": "ENTERPRISE_ADMIN", "password": PASSWORD}),
        (f"/portal/settings/users/{mark}/role", {"role": "ENTERPRISE_ADMIN"}),
        (f"/portal/settings/users/{boss}/role", {"role": "VIEWER"}),
        (f"/portal/settings/users/{boss}/disable", {}),
        (f"/portal/settings/users/{boss}/password", {"password": "taken over password"}),
    ]
    for path, data in attempts:
        response = await portal.post(path, data={"csrf": csrf, **data})
        assert response.status_code == 403, path
        assert "Only an Enterprise Admin can create, promote or change an Enterprise Admin." in response.text
    async with runtime.sessions() as session:
        assert await users.by_email(session, "x@example.com") is None
        stored = {u.email: (u.role, u.disabled_at) for u in await users.list_users(session)}
    assert stored["boss@example.com"] == ("ENTERPRISE_ADMIN", None) and stored["mark@example.com"][0] == "MARKETER"

    # Everyone else is theirs to manage.
    assert (
        await portal.post(f"/portal/settings/users/{mark}/role", data={"csrf": csrf, "role": "VIEWER"})
    ).status_code == 303
    assert (await portal.post(f"/portal/settings/users/{mark}/disable", data={"csrf": csrf})).status_code == 303
    made = {"csrf": csrf, "email": "y@example.com", "role": "USER_MANAGER", "password": PASSWORD}
    assert (await portal.post("/portal/settings/users", data=made)).status_code == 303


async def test_nobody_disables_themselves_or_the_last_enterprise_admin(
    portal: httpx.AsyncClient, runtime: Runtime, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    me = await user_ref(runtime, "enterprise_admin@example.com")
    myself = await portal.post(f"/portal/settings/users/{me}/disable", data={"csrf": csrf})
    assert myself.status_code == 400 and "You cannot disable your own account." in myself.text
    last = await portal.post(f"/portal/settings/users/{me}/role", data={"csrf": csrf, "role": "MARKETER"})
    assert last.status_code == 400 and "The last enabled Enterprise Admin" in last.text

    second = {"csrf": csrf, "email": "two@example.com", "role": "ENTERPRISE_ADMIN", "password": PASSWORD}
    assert (await portal.post("/portal/settings/users", data=second)).status_code == 303
    two = await user_ref(runtime, "two@example.com")
    assert (await portal.post(f"/portal/settings/users/{two}/disable", data={"csrf": csrf})).status_code == 303
    still = await portal.post(f"/portal/settings/users/{me}/role", data={"csrf": csrf, "role": "MARKETER"})
    assert still.status_code == 400, "a disabled admin does not count"
    assert (await portal.post(f"/portal/settings/users/{two}/enable", data={"csrf": csrf})).status_code == 303
    stepped_down = await portal.post(f"/portal/settings/users/{me}/role", data={"csrf": csrf, "role": "MARKETER"})
    assert stepped_down.status_code == 303
    assert (await portal.get("/portal/settings/users")).status_code == 403  # now a marketer


async def test_unknown_users_are_not_found(portal: httpx.AsyncClient, signed_in_as: SignInAs) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    for action, data in (
        ("role", {"role": "VIEWER"}),
        ("disable", {}),
        ("enable", {}),
        ("password", {"password": PASSWORD}),
    ):
        response = await portal.post(f"/portal/settings/users/nobody/{action}", data={"csrf": csrf, **data})
        assert response.status_code == 404 and "No user has this id." in response.text
