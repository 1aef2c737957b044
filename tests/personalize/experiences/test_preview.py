"""Preview for guest: the variant a guest would get (or a chosen one) rendered from the latest revision,
with nothing recorded — no TRACKING event, no execution row, no sticky assignment."""

from __future__ import annotations

import httpx
import pytest

from innkeeper.core.runtime import Runtime
from innkeeper.personalize.experiences.errors import FlowNotFound
from innkeeper.personalize.experiences.execution import Options
from innkeeper.personalize.experiences.preview import PreviewResult, preview, revision_history
from innkeeper.personalize.experiences.service import get_flow
from tests.conftest import CLIENT_KEY, POINT_OF_SALE
from tests.factories import flows
from tests.factories.flow_calls import identified_browser, stored
from tests.factories.stream import create_browser
from tests.support.clock import FrozenClock

HELLO = '{"hello": "${guest.firstName!"visitor"}", "variant": "${variant.name}", "pos": "${request.pointOfSale}"}'
OPTIONS = Options(default_pos=POINT_OF_SALE)


async def run(
    runtime: Runtime, clock: FrozenClock, flow_ref: str, who: str, variant_ref: str | None = None
) -> PreviewResult:
    async with runtime.sessions() as session:
        result = await preview(
            session, flow_ref, who, variant_ref=variant_ref, client_key=CLIENT_KEY, clock=clock, options=OPTIONS
        )
        assert not session.in_transaction()  # rolled back: nothing can be committed afterwards
        return result


async def test_a_draft_renders_for_the_guest_by_browser_email_or_ref_and_nothing_is_stored(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    flow = await flows.create(client, flows.experience("Greeting", HELLO))
    browser = await identified_browser(client, "jane@example.com", "Jane")
    before = await stored(runtime)
    for who in (browser["ref"], f"bid:{browser['ref']}", "Jane@Example.com", browser["customer_ref"]):
        result = await run(runtime, clock, flow["ref"], who)
        assert result.outcome == "rendered", who
        assert result.body == '{"hello": "Jane", "variant": "Default", "pos": "myretailsite/ireland"}'
        assert result.guest_ref == browser["customer_ref"] and result.variant_ref == "default"
        assert result.audience_passed is True and result.chosen_by == "the traffic split (not stored)"
    assert (await run(runtime, clock, flow["ref"], browser["ref"])).browser_ref == browser["ref"]
    assert await stored(runtime) == before


async def test_unknown_guests_and_flows(client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    flow = await flows.create(client, flows.experience("Greeting", HELLO))
    for who in ("nobody@example.com", "a38b230c-11eb-4cf9-8d5d-274e9f344925", "not an id", "", "bid:zzz"):
        assert (await run(runtime, clock, flow["ref"], who)).outcome == "no_guest", who
    with pytest.raises(FlowNotFound):
        await run(runtime, clock, "no_such_flow", "x@example.com")


async def test_the_previewed_variant_is_the_one_a_call_then_assigns(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    templates = {"a": '{"v": "a"}', "b": '{"v": "b"}', "c": '{"v": "c"}'}
    flow = await flows.live(
        client, flows.experiment("Hero", templates, control="a", splits={"a": 34, "b": 33, "c": 33})
    )
    browser = await identified_browser(client, "kim@example.com", "Kim")
    first = await run(runtime, clock, flow["ref"], browser["ref"])
    assert first.outcome == "rendered" and first.chosen_by == "the traffic split (not stored)"
    assert (await stored(runtime))[2] == 0

    answer = await client.post("/v2/callFlows", json=flows.call_body(flow["friendlyId"], browserId=browser["ref"]))
    assert answer.headers["x-innkeeper-variant-ref"] == first.variant_ref
    sticky = await run(runtime, clock, flow["ref"], browser["ref"])
    assert sticky.variant_ref == first.variant_ref and sticky.chosen_by == "the guest's stored assignment"

    other = next(ref for ref in templates if ref != first.variant_ref)
    forced = await run(runtime, clock, flow["ref"], browser["ref"], variant_ref=other)
    assert forced.body == f'{{"v": "{other}"}}' and forced.chosen_by == "chosen in the form"
    assert forced.is_control == (other == "a")
    assert (await run(runtime, clock, flow["ref"], browser["ref"], variant_ref="nope")).outcome == "no_variant"


async def test_hold_out_audience_and_variant_conditions_are_reported(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    held_out = await flows.create(client, flows.experience("Nobody", HELLO, traffic={"allocation": 0}))
    guest = await identified_browser(client, "lee@example.com", "Lee")
    result = await run(runtime, clock, held_out["ref"], guest["ref"])
    assert result.outcome == "not_allocated" and result.body is None
    assert (await run(runtime, clock, held_out["ref"], guest["ref"], variant_ref="default")).outcome == "rendered"

    audience = {"conditions": [{"template": "guest_type", "params": {"is": "is", "type": "customer"}}]}
    variant = flows.variant("default", HELLO, rules=['guest.firstName === "Nobody"'])
    document = flows.experience("Customers", HELLO, audience=audience, variants=[variant])
    targeted = await flows.create(client, document)
    anonymous = await create_browser(client)
    visitor = await run(runtime, clock, targeted["ref"], anonymous["ref"])
    assert visitor.outcome == "rendered" and visitor.audience_passed is False and visitor.rules_passed is False
    assert visitor.body is not None and '"hello": "visitor"' in visitor.body
    customer = await run(runtime, clock, targeted["ref"], guest["ref"])
    assert customer.audience_passed is True and customer.rules_passed is False


async def test_template_and_compile_errors(client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> None:
    browser = await identified_browser(client, "max@example.com", "Max")
    strict = await flows.create(client, flows.experience("Strict", '{\n  "x": "${guest.nickname}"\n}'))
    result = await run(runtime, clock, strict["ref"], browser["ref"])
    assert result.outcome == "template_error" and result.error is not None
    assert "line 2, column" in result.error and result.body is None

    broken = await flows.create(client, flows.experience("Broken", "${guest.firstName"))
    invalid = await run(runtime, clock, broken["ref"], browser["ref"])
    assert invalid.outcome == "invalid"
    assert invalid.problems and invalid.problems[0].startswith("variants[0].template: line 1, column")


async def test_revision_history_is_newest_first(client: httpx.AsyncClient, runtime: Runtime) -> None:
    flow = await flows.create(client, flows.experience("History", HELLO))
    await flows.set_status(client, flow, "DRAFT", name="History 2")
    await flows.set_status(client, {**flow, "name": "History 2"}, "LIVE")
    async with runtime.sessions() as session:
        history = await revision_history(session, await get_flow(session, flow["ref"]))
    assert [(item.revision, item.name, item.published_at is not None) for item in history] == [
        (2, "History 2", True),
        (1, "History", False),
    ]
