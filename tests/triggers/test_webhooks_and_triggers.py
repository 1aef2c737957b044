"""Triggered flows through a WEBHOOK connection (signed JSON to a real local receiver, 500s retried), the other
trigger types, and the publish-time checks of triggered flows."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from innkeeper.connections import service as connections
from innkeeper.core.runtime import Runtime
from innkeeper.triggers import tasks
from innkeeper.triggers.models import Delivery, TriggerJob
from tests.connections.servers import Receiver, http_receiver
from tests.factories import flows
from tests.factories.flows import AUTH
from tests.factories.stream import create_browser, event, post_event, product
from tests.support.clock import FrozenClock

SECRET = "whsec-test-5d1f"
BODY = '{"guest": "${guest.ref}", "trigger": "${event.type}", "entity": "${entity.ref}"}'


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as server:
        yield server


async def webhook(client: httpx.AsyncClient, url: str) -> str:
    document = {
        "name": f"Hook {url}",
        "kind": "WEBHOOK",
        "request": {"requestType": "POST", "connectionUrl": url},
        "signing": {"secret": SECRET},
    }
    response = await client.post("/v2/connections", json=document, auth=AUTH)
    assert response.status_code == 201, response.text
    ref: str = response.json()["ref"]
    return ref


async def triggered_flow(client: httpx.AsyncClient, connection_ref: str, trigger: dict[str, Any]) -> dict[str, Any]:
    variant = flows.variant("hook", BODY)
    variant["destination"] = {"connectionRef": connection_ref}
    document = flows.experience(
        f"On {trigger['type']}", "{}", type="TRIGGERED_V3", trigger=trigger, variants=[variant], channels=["WEB"]
    )
    return await flows.live(client, document)


async def work(runtime: Runtime, outbound: connections.Outbound) -> None:
    await tasks.run_jobs_once(runtime)
    await tasks.deliver_once(runtime, outbound)


def verify(header: str, body: bytes) -> None:
    """The documented scheme: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)


async def test_signed_json_reaches_the_receiver(
    client: httpx.AsyncClient, runtime: Runtime, receiver: Receiver, outbound: connections.Outbound
) -> None:
    ref = await webhook(client, receiver.url("/hooks/session"))
    await triggered_flow(client, ref, {"type": "SESSION_CLOSED"})
    browser = await create_browser(client)
    await post_event(client, event(browser["ref"], "VIEW"))
    await post_event(client, event(browser["ref"], "FORCE_CLOSE"))
    await work(runtime, outbound)
    [hit] = receiver.on("/hooks/session")
    body = json.loads(hit.body)
    assert body["guest"] == browser["customer_ref"] and body["trigger"] == "SESSION_CLOSED"
    verify(hit.headers["x-innkeeper-signature"], hit.body)
    async with runtime.sessions() as session:
        [row] = (await session.execute(select(Delivery))).scalars().all()
    assert hit.headers["idempotency-key"] == row.ref
    assert row.status == "SENT" and row.response_status == 200


async def test_a_500_is_retried(
    client: httpx.AsyncClient,
    runtime: Runtime,
    clock: FrozenClock,
    receiver: Receiver,
    outbound: connections.Outbound,
) -> None:
    ref = await webhook(client, receiver.url("/status/500"))
    await triggered_flow(client, ref, {"type": "SESSION_CLOSED"})
    browser = await create_browser(client)
    await post_event(client, event(browser["ref"], "FORCE_CLOSE"))
    await work(runtime, outbound)
    clock.advance(seconds=61)
    await work(runtime, outbound)
    hits = receiver.on("/status/500")
    assert len(hits) == 2
    assert [hit.headers["x-innkeeper-delivery-attempt"] for hit in hits] == ["1", "2"]
    async with runtime.sessions() as session:
        [row] = (await session.execute(select(Delivery))).scalars().all()
    assert (row.status, row.attempts, row.response_status) == ("RETRYING", 2, 500)
    assert (row.next_attempt_at - clock.now()).total_seconds() == 300  # 1 min, then 5 min


@pytest.mark.parametrize("kind", ["ORDER_CREATED", "GUEST_CREATED", "CUSTOM_EVENT"])
async def test_other_triggers_fire_once_per_cause(
    client: httpx.AsyncClient, runtime: Runtime, receiver: Receiver, outbound: connections.Outbound, kind: str
) -> None:
    ref = await webhook(client, receiver.url(f"/hooks/{kind}"))
    trigger: dict[str, Any] = {"type": kind}
    if kind == "CUSTOM_EVENT":
        trigger["eventTypes"] = ["WISHLIST"]
    await triggered_flow(client, ref, trigger)
    browser = await create_browser(client)
    identity = [{"provider": "email", "id": "t@example.com"}]
    await post_event(client, event(browser["ref"], "IDENTITY", email="t@example.com", identifiers=identity))
    await post_event(client, event(browser["ref"], "ADD", product=product("SKU-9")))
    await post_event(client, event(browser["ref"], "CHECKOUT", reference_id="ORD-9", status="PURCHASED"))
    await post_event(client, event(browser["ref"], "WISHLIST"))
    await post_event(client, event(browser["ref"], "VIEW"))
    await work(runtime, outbound)
    await work(runtime, outbound)
    hits = receiver.on(f"/hooks/{kind}")
    assert len(hits) == 1
    assert json.loads(hits[0].body)["trigger"] == kind
    async with runtime.sessions() as session:
        assert len((await session.execute(select(TriggerJob))).scalars().all()) == 1


async def test_trigger_logic_filters(
    client: httpx.AsyncClient, runtime: Runtime, receiver: Receiver, outbound: connections.Outbound
) -> None:
    ref = await webhook(client, receiver.url("/hooks/big"))
    logic = "(function () { return event.message.abandonedRevenue >= 100; })();"
    await triggered_flow(client, ref, {"type": "ABANDONED_CART", "logic": logic})
    for email, price in (("small@example.com", 10.0), ("big@example.com", 150.0)):
        browser = await create_browser(client)
        identity = [{"provider": "email", "id": email}]
        await post_event(client, event(browser["ref"], "IDENTITY", email=email, identifiers=identity))
        await post_event(client, event(browser["ref"], "ADD", product=product("SKU", price=price)))
        await post_event(client, event(browser["ref"], "FORCE_CLOSE"))
    await work(runtime, outbound)
    assert len(receiver.on("/hooks/big")) == 1
    async with runtime.sessions() as session:
        outcomes = sorted(job.outcome or "" for job in (await session.execute(select(TriggerJob))).scalars())
    assert outcomes == ["logic_false", "variant"]


async def test_start_checks_the_trigger_and_the_destination(client: httpx.AsyncClient) -> None:
    variant = flows.variant("hook", BODY)
    document = flows.experience("No trigger", "{}", type="TRIGGERED_V3", variants=[variant])
    created = await flows.create(client, document)
    response = await client.put(f"/v3/flowDefinitions/{created['ref']}", json={**created, "status": "LIVE"}, auth=AUTH)
    assert response.status_code == 400
    message = response.json()["developerMessage"]
    assert "trigger:" in message and "destination" in message

    variant["destination"] = {"connectionRef": "4f1c2a9e-0000-4000-8000-000000000000"}
    document = flows.experience(
        "Unknown connection", "{}", type="TRIGGERED_V3", variants=[variant], trigger={"type": "BOGUS"}
    )
    created = await flows.create(client, document)
    response = await client.put(f"/v3/flowDefinitions/{created['ref']}", json={**created, "status": "LIVE"}, auth=AUTH)
    message = response.json()["developerMessage"]
    assert "trigger.type" in message and "no connection" in message
