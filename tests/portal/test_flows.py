"""Experiences and experiments in the portal: lists, Details (friendly id + copy), the create/edit form,
Start / Pause / Complete, how-to-call, Preview for guest (writes nothing) and escaping."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

import innkeeper.portal.flows  # noqa: F401  (registers the pages even before routes.py lists them)
from innkeeper.core.runtime import Runtime
from tests.conftest import CLIENT_KEY
from tests.factories import flows
from tests.factories.flow_calls import identified_browser, stored
from tests.portal.conftest import SignInAs

HELLO = '{"hello": "${guest.firstName!"visitor"}"}'
DATA_COPY = re.compile(r'data-copy="([^"]*)"')
PRE = re.compile(r'<pre id="preview-output">(.*?)</pre>', re.DOTALL)


def experience_form(csrf: str, name: str, template: str, **extra: Any) -> dict[str, Any]:
    """What a marketer submits for a one-variant full stack experience."""
    form: dict[str, Any] = {
        "csrf": csrf,
        "kind": "experience",
        "name": name,
        "friendly_id": "",
        "type": "INTERACTIVE_API_FLOW",
        "channels": ["WEB"],
        "pos_mode": "ALL",
        "pos_values": "",
        "start_date": "",
        "end_date": "",
        "allocation": "100",
        "audience": "",
        "variant_count": "2",
        "v0_ref": "",
        "v0_name": "Default",
        "v0_template": template,
        "v0_condition": "",
        "v1_ref": "",
        "v1_name": "",
        "v1_template": "",
        "v1_condition": "",
    }
    form.update(extra)
    return form


def created_ref(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/portal/flows/([0-9a-f-]{36})\?done=created", response.headers["location"])
    assert match is not None, response.headers["location"]
    return match.group(1)


async def test_lists_show_flows_by_type_with_statuses_search_and_filter(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    await flows.live(client, flows.experience("Home banner", HELLO))
    await flows.create(
        client,
        flows.experience("Cart reminder", "{}", type="TRIGGERED_V3", trigger={"type": "ABANDONED_CART"}),
    )
    await flows.create(
        client, flows.experiment("Hero test", {"a": "{}", "b": "{}"}, control="a", splits={"a": 50, "b": 50})
    )
    await signed_in_as("MARKETER")

    listed = await portal.get("/portal/experiences")
    assert listed.status_code == 200
    text = listed.text
    assert "Home banner" in text and "home_page" not in text and "<code>home_banner</code>" in text
    assert "Full stack (API)" in text and "Triggered" in text and "Cart reminder" in text
    assert '<span class="badge LIVE">LIVE</span>' in text and '<span class="badge DRAFT">DRAFT</span>' in text
    assert "Hero test" not in text
    assert 'href="/portal/flows/new?kind=experience"' in text

    experiments = (await portal.get("/portal/experiments")).text
    assert "Hero test" in experiments and "Home banner" not in experiments
    assert 'href="/portal/flows/new?kind=experiment"' in experiments

    searched = (await portal.get("/portal/experiences", params={"q": "BANN"})).text
    assert "Home banner" in searched and "Cart reminder" not in searched
    by_id = (await portal.get("/portal/experiences", params={"q": "cart_rem"})).text
    assert "Cart reminder" in by_id and "Home banner" not in by_id
    drafts = (await portal.get("/portal/experiences", params={"status": "DRAFT"})).text
    assert "Cart reminder" in drafts and "Home banner" not in drafts
    triggered = (await portal.get("/portal/experiences", params={"type": "TRIGGERED_V3"})).text
    assert "Cart reminder" in triggered and "Home banner" not in triggered


async def test_create_start_call_pause_and_complete_an_experience(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("MARKETER")
    form = await portal.get("/portal/flows/new", params={"kind": "experience"})
    assert form.status_code == 200 and 'name="v0_template"' in form.text and "/portal/static/flows.js" in form.text
    script = await portal.get("/portal/static/flows.js")
    assert script.status_code == 200 and "data-goto" in script.text

    ref = created_ref(await portal.post("/portal/flows/new", data=experience_form(csrf, "Welcome banner", HELLO)))
    assert "Welcome banner" in (await portal.get("/portal/experiences")).text

    details = await portal.get(f"/portal/flows/{ref}", params={"done": "created"})
    assert details.status_code == 200
    assert '<code id="friendly-id">welcome_banner</code>' in details.text
    assert "welcome_banner" in DATA_COPY.findall(details.text)
    assert '<button type="button" data-copy="welcome_banner">Copy</button>' in details.text
    assert "Created as a draft." in details.text
    snippet = html.unescape(details.text)
    assert "/v2/callFlows" in snippet and CLIENT_KEY in snippet and '"friendlyId": "welcome_banner"' in snippet
    assert '"browserId": "<browser id>"' in snippet
    assert ">Start</button>" in details.text and ">Pause</button>" not in details.text

    started = await portal.post(f"/portal/flows/{ref}/status", data={"csrf": csrf, "action": "start"})
    assert started.status_code == 303 and started.headers["location"] == f"/portal/flows/{ref}?done=started"
    live = (await portal.get(started.headers["location"])).text
    assert 'id="flow-status">LIVE<' in live and ">Pause</button>" in live and ">Start</button>" not in live

    browser = await identified_browser(client, "jane@example.com", "Jane")
    answer = await client.post("/v2/callFlows", json=flows.call_body("welcome_banner", browserId=browser["ref"]))
    assert answer.status_code == 200 and answer.text == '{"hello": "Jane"}'

    paused = await portal.post(f"/portal/flows/{ref}/status", data={"csrf": csrf, "action": "pause"})
    assert paused.status_code == 303
    assert 'id="flow-status">PAUSED<' in (await portal.get(f"/portal/flows/{ref}")).text
    answer = await client.post("/v2/callFlows", json=flows.call_body("welcome_banner", browserId=browser["ref"]))
    assert answer.text == "{}" and answer.headers["x-innkeeper-flow-outcome"] == "not_live"

    completed = await portal.post(f"/portal/flows/{ref}/status", data={"csrf": csrf, "action": "complete"})
    assert completed.status_code == 303
    done = (await portal.get(f"/portal/flows/{ref}")).text
    assert 'id="flow-status">COMPLETED<' in done and 'name="action"' not in done
    again = await portal.post(f"/portal/flows/{ref}/status", data={"csrf": csrf, "action": "start"})
    assert again.status_code == 409 and "Cannot change status from COMPLETED to LIVE" in again.text
    unknown = await portal.post(f"/portal/flows/{ref}/status", data={"csrf": csrf, "action": "launch"})
    assert unknown.status_code == 400


async def test_a_bad_template_is_refused_with_its_line_and_column_and_the_input_is_kept(
    portal: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("MARKETER")
    broken = '{\n  "hello": "${guest.firstName"\n}'
    response = await portal.post("/portal/flows/new", data=experience_form(csrf, "Broken banner", broken))
    assert response.status_code == 400
    assert re.search(r"variants\[0\]\.template: line 2, column \d+", response.text), response.text
    assert 'data-goto="v0_template" data-line="2"' in response.text
    assert 'value="Broken banner"' in response.text
    assert f'data-editor="ftl">\n{broken}</textarea>' in html.unescape(response.text)  # kept in its textarea
    assert "Broken banner" not in (await portal.get("/portal/experiences")).text

    missing = await portal.post("/portal/flows/new", data={"csrf": csrf})
    assert missing.status_code == 400 and "name: is required" in missing.text


async def test_starting_a_flow_that_does_not_compile_shows_the_problems(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    flow = await flows.create(client, flows.experience("Imported", "${guest.firstName"))
    csrf = await signed_in_as("MARKETER")
    response = await portal.post(f"/portal/flows/{flow['ref']}/status", data={"csrf": csrf, "action": "start"})
    assert response.status_code == 400
    assert "Start failed" in response.text and re.search(r"variants\[0\]\.template: line 1, column \d+", response.text)
    assert 'id="flow-status">DRAFT<' in response.text


async def test_an_experiment_is_created_with_control_splits_and_goal_then_edited(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("ENTERPRISE_ADMIN")
    blank = await portal.get("/portal/flows/new", params={"kind": "experiment"})
    assert 'name="control"' in blank.text and 'name="goal_type"' in blank.text
    data = experience_form(
        csrf,
        "Hero test",
        '{"hero": "control"}',
        kind="experiment",
        control="0",
        v0_name="Control",
        v0_split="30",
        v1_name="Big hero",
        v1_template='{"hero": "big"}',
        v1_split="60",
        variant_count="2",
        goal_name="Checkout",
        goal_type="CONVERSION_RATE",
        goal_target="SESSIONS",
    )
    wrong = await portal.post("/portal/flows/new", data=data)
    assert wrong.status_code == 400 and "traffic:" in wrong.text and 'value="Big hero"' in wrong.text

    ref = created_ref(await portal.post("/portal/flows/new", data={**data, "v1_split": "70"}))
    details = (await portal.get(f"/portal/flows/{ref}")).text
    assert "30 %" in details and "70 %" in details and "control</span>" in details and "Checkout" in details
    stored = (await client.get(f"/v3/flowDefinitions/{ref}", auth=flows.AUTH)).json()
    assert stored["subtype"] == "EXPERIMENT" and stored["goals"]["primary"]["type"] == "CONVERSION_RATE"
    assert [variant["isControl"] for variant in stored["variants"]] == [True, False]

    # Fields the form does not show survive an edit; the edit makes revision 2.
    stored["tags"] = ["homepage"]
    await flows.set_status(client, stored, "DRAFT")
    edit = await portal.get(f"/portal/flows/{ref}/edit")
    assert edit.status_code == 200 and 'value="Big hero"' in edit.text
    variant_refs = [variant["ref"] for variant in stored["variants"]]
    changed = {
        **data,
        "name": "Hero test v2",
        "v0_ref": variant_refs[0],
        "v1_ref": variant_refs[1],
        "v1_split": "70",
        "v1_template": '{"hero": "bigger"}',
    }
    saved = await portal.post(f"/portal/flows/{ref}/edit", data=changed)
    assert saved.status_code == 303 and saved.headers["location"] == f"/portal/flows/{ref}?done=saved"
    after = (await client.get(f"/v3/flowDefinitions/{ref}", auth=flows.AUTH)).json()
    assert after["name"] == "Hero test v2" and after["tags"] == ["homepage"]
    assert [variant["ref"] for variant in after["variants"]] == variant_refs
    assert after["revision"] == 3  # 1 created, 2 the API's tags, 3 the portal edit
    history = (await portal.get(f"/portal/flows/{ref}")).text
    assert "Revision history" in history and "Hero test v2" in history


async def test_editing_a_live_flow_is_refused_until_it_is_paused(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    flow = await flows.live(client, flows.experience("Live banner", HELLO))
    csrf = await signed_in_as("MARKETER")
    form = await portal.get(f"/portal/flows/{flow['ref']}/edit")
    assert form.status_code == 200 and "pause it before saving" in form.text
    data = experience_form(csrf, "Live banner", '{"changed": true}', v0_ref="default")
    refused = await portal.post(f"/portal/flows/{flow['ref']}/edit", data=data)
    assert refused.status_code == 409 and "pause it first" in refused.text
    assert 'value="Live banner"' in refused.text

    await portal.post(f"/portal/flows/{flow['ref']}/status", data={"csrf": csrf, "action": "pause"})
    saved = await portal.post(f"/portal/flows/{flow['ref']}/edit", data=data)
    assert saved.status_code == 303


async def test_a_viewer_sees_flows_but_cannot_create_change_or_preview(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    flow = await flows.create(client, flows.experience("Viewer banner", HELLO))
    csrf = await signed_in_as("VIEWER")
    listed = await portal.get("/portal/experiences")
    assert listed.status_code == 200 and "Viewer banner" in listed.text and "/portal/flows/new" not in listed.text
    details = await portal.get(f"/portal/flows/{flow['ref']}")
    assert details.status_code == 200 and '<code id="friendly-id">viewer_banner</code>' in details.text
    assert 'name="action"' not in details.text and "Preview for guest" not in details.text
    assert (await portal.get("/portal/flows/new")).status_code == 403
    created = await portal.post("/portal/flows/new", data=experience_form(csrf, "Nope", "{}"))
    assert created.status_code == 403
    start = await portal.post(f"/portal/flows/{flow['ref']}/status", data={"csrf": csrf, "action": "start"})
    assert start.status_code == 403
    previewed = await portal.post(f"/portal/flows/{flow['ref']}/preview", data={"csrf": csrf, "guest": "x@y.z"})
    assert previewed.status_code == 403
    assert (await portal.get("/portal/experiences")).text.count("Nope") == 0
    assert (await portal.get("/portal/flows/no-such-flow")).status_code == 404


async def test_preview_renders_for_a_guest_and_records_nothing(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, runtime: Runtime, signed_in_as: SignInAs
) -> None:
    flow = await flows.live(client, flows.experience("Greeting", HELLO))
    browser = await identified_browser(client, "jane@example.com", "Jane")
    csrf = await signed_in_as("MARKETER")
    before = await stored(runtime)

    for who in (browser["ref"], f"bid:{browser['ref']}", "JANE@example.com", browser["customer_ref"]):
        response = await portal.post(f"/portal/flows/{flow['ref']}/preview", data={"csrf": csrf, "guest": who})
        assert response.status_code == 200, who
        output = PRE.search(response.text)
        assert output is not None, response.text
        assert html.unescape(output.group(1)) == '{"hello": "Jane"}'
        assert browser["customer_ref"] in response.text and "Variant <strong>Default</strong>" in response.text
    forced = await portal.post(
        f"/portal/flows/{flow['ref']}/preview", data={"csrf": csrf, "guest": browser["ref"], "variant": "default"}
    )
    assert "chosen in the form" in forced.text
    nobody = await portal.post(f"/portal/flows/{flow['ref']}/preview", data={"csrf": csrf, "guest": "who@nowhere.test"})
    assert nobody.status_code == 200 and "No guest found" in nobody.text
    empty = await portal.post(f"/portal/flows/{flow['ref']}/preview", data={"csrf": csrf, "guest": " "})
    assert empty.status_code == 400
    assert await stored(runtime) == before

    # The same guest through the API does record an exposure: the counters do see writes.
    await client.post("/v2/callFlows", json=flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    after = await stored(runtime)
    assert after[0] == before[0] + 1 and after[1] == before[1] + 1 and after[2] == before[2] + 1


async def test_preview_shows_a_render_error_with_its_line_and_column(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    flow = await flows.create(client, flows.experience("Strict", '{\n  "name": "${guest.nickname}"\n}'))
    browser = await identified_browser(client, "kim@example.com", "Kim")
    csrf = await signed_in_as("MARKETER")
    response = await portal.post(f"/portal/flows/{flow['ref']}/preview", data={"csrf": csrf, "guest": browser["ref"]})
    assert response.status_code == 200
    assert "Template error" in response.text and "line 2, column" in response.text


async def test_script_payloads_in_names_templates_and_guest_data_render_as_text(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("MARKETER")
    name = "<script>alert(1)</script>"
    template = '{"x": "<script>alert(2)</script>${guest.firstName}"}'
    ref = created_ref(await portal.post("/portal/flows/new", data=experience_form(csrf, name, template)))
    browser = await identified_browser(client, "eve@example.com", "<img src=x onerror=alert(3)>")
    pages = [
        (await portal.get("/portal/experiences")).text,
        (await portal.get(f"/portal/flows/{ref}")).text,
        (await portal.get(f"/portal/flows/{ref}/edit")).text,
        (await portal.post(f"/portal/flows/{ref}/preview", data={"csrf": csrf, "guest": browser["ref"]})).text,
    ]
    for text in pages:
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(" in text
    assert "&lt;img src=x onerror=alert(3)&gt;" in pages[3]
    assert 'data-copy="script_alert_1_script"' in pages[1]


async def test_a_triggered_experience_keeps_its_trigger_and_destination(
    portal: httpx.AsyncClient, client: httpx.AsyncClient, signed_in_as: SignInAs
) -> None:
    csrf = await signed_in_as("MARKETER")
    data = experience_form(
        csrf,
        "Cart reminder",
        '{"to": "${guest.email}"}',
        type="TRIGGERED_V3",
        trigger_type="ABANDONED_CART",
        trigger_delay="30",
        v0_connection="no-such-connection",
    )
    ref = created_ref(await portal.post("/portal/flows/new", data=data))
    stored = (await client.get(f"/v3/flowDefinitions/{ref}", auth=flows.AUTH)).json()
    assert stored["type"] == "TRIGGERED_V3"
    assert stored["trigger"] == {"type": "ABANDONED_CART", "delayMinutes": 30.0}
    assert stored["variants"][0]["destination"] == {"connectionRef": "no-such-connection"}
    details = (await portal.get(f"/portal/flows/{ref}")).text
    assert "Triggered experience" in details and "not called with <code>/v2/callFlows</code>" in details
    started = await portal.post(f"/portal/flows/{ref}/status", data={"csrf": csrf, "action": "start"})
    assert started.status_code == 400 and "no connection no-such-connection" in started.text
    web = await portal.post("/portal/flows/new", data={**data, "type": "INTERACTIVE_WEB_FLOW"})
    assert web.status_code == 400 and "type: choose Full stack (API) or Triggered" in web.text
