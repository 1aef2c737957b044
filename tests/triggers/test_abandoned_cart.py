"""Abandoned-cart reminder (personalize.md §9.4) end to end: Stream events, FORCE_CLOSE, a TRIGGERED_V3 flow,
the worker steps, and a real SMTP server (aiosmtpd) receiving exactly one email."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from innkeeper.connections import service as connections
from innkeeper.core.runtime import Runtime
from innkeeper.triggers import tasks
from innkeeper.triggers.models import Delivery, TriggerJob
from tests.connections.servers import REFUSED, SmtpServer, free_port, smtp_server
from tests.factories import flows
from tests.factories.connections import smtp_document
from tests.factories.flows import AUTH
from tests.factories.stream import create_browser, event, post_event, product
from tests.support.clock import FrozenClock

REMINDER = """<#assign s = event.message>
{
  "to": "${guest.email?json_string}",
  "subject": "You left ${s.cart?size} item<#if s.cart?size != 1>s</#if> in your cart",
  "html": "<p>Hello ${(guest.firstName!"there")?json_string},</p><ul><#list s.cart as i>\
<li>${i.name?json_string} × ${i.quantity} — ${i.price?c}</li></#list></ul><p>Total: ${s.abandonedRevenue?c}</p>",
  "text": "<#list s.cart as i>${i.name?json_string} x ${i.quantity} at ${i.price?c}\\n</#list>"
}"""


def smtp_connection(port: int) -> dict[str, Any]:
    return smtp_document(port, name=f"Mailer {port}")


async def reminder_flow(
    client: httpx.AsyncClient, connection_ref: str, *, delay: int = 60, cooldown: float | None = None, **fields: Any
) -> dict[str, Any]:
    trigger: dict[str, Any] = {"type": "ABANDONED_CART", "delayMinutes": delay}
    if cooldown is not None:
        trigger["cooldownHours"] = cooldown
    variant = flows.variant("email", REMINDER)
    variant["destination"] = {"connectionRef": connection_ref}
    document = flows.experience(
        "Abandoned cart reminder",
        "{}",
        type="TRIGGERED_V3",
        channels=["EMAIL"],
        trigger=trigger,
        variants=[variant],
        **fields,
    )
    return await flows.live(client, document)


async def connection(client: httpx.AsyncClient, port: int) -> str:
    response = await client.post("/v2/connections", json=smtp_connection(port), auth=AUTH)
    assert response.status_code == 201, response.text
    ref: str = response.json()["ref"]
    return ref


async def abandon_cart(
    client: httpx.AsyncClient, email: str, *, name: str = "Trail runner", price: float = 59.5
) -> dict[str, Any]:
    browser = await create_browser(client)
    identity = [{"provider": "email", "id": email}]
    await post_event(client, event(browser["ref"], "IDENTITY", email=email, firstname="Jane", identifiers=identity))
    await post_event(client, event(browser["ref"], "ADD", product=product("SKU-1", price=price, quantity=2, name=name)))
    await post_event(client, event(browser["ref"], "FORCE_CLOSE"))
    return browser


async def work(runtime: Runtime, outbound: connections.Outbound) -> None:
    """One worker tick of the triggers: due jobs, then due deliveries."""
    await tasks.run_jobs_once(runtime)
    await tasks.deliver_once(runtime, outbound)


async def deliveries(runtime: Runtime) -> list[Delivery]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(Delivery))).scalars())


async def jobs(runtime: Runtime) -> list[TriggerJob]:
    async with runtime.sessions() as session:
        return list((await session.execute(select(TriggerJob))).scalars())


async def test_reminder_arrives_once_after_the_delay(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, smtp: SmtpServer, outbound: connections.Outbound
) -> None:
    ref = await connection(client, smtp.port)
    await reminder_flow(client, ref, delay=60)
    await abandon_cart(client, "jane@example.com")
    await work(runtime, outbound)
    assert smtp.messages == []  # not before the delay

    clock.advance(minutes=61)
    await work(runtime, outbound)
    await work(runtime, outbound)  # running again sends nothing more
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert mail.rcpt_tos == ["jane@example.com"]
    assert mail.message["Subject"] == "You left 1 item in your cart"
    html = mail.message.get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert "Trail runner × 2 — 59.5" in content and "Total: 119" in content
    text = mail.message.get_body(("plain",))
    assert text is not None and "Trail runner x 2 at 59.5" in text.get_content()
    sent = await deliveries(runtime)
    assert [(row.status, row.attempts) for row in sent] == [("SENT", 1)]
    assert [row.outcome for row in await jobs(runtime)] == ["variant"]


async def test_a_purchase_before_the_delay_cancels_the_reminder(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, smtp: SmtpServer, outbound: connections.Outbound
) -> None:
    ref = await connection(client, smtp.port)
    await reminder_flow(client, ref, delay=60)
    browser = await abandon_cart(client, "buyer@example.com")
    clock.advance(minutes=30)
    await post_event(client, event(browser["ref"], "ADD", product=product("SKU-1", price=59.5)))
    await post_event(client, event(browser["ref"], "CHECKOUT", reference_id="ORDER-1", status="PURCHASED"))
    clock.advance(minutes=31)
    await work(runtime, outbound)
    assert smtp.messages == []
    assert await deliveries(runtime) == []
    assert "cancelled_converted" in [row.outcome for row in await jobs(runtime)]


async def test_smtp_down_is_retried_with_backoff_and_delivered_once(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, outbound: connections.Outbound
) -> None:
    port = free_port()
    ref = await connection(client, port)
    await reminder_flow(client, ref, delay=0)
    await abandon_cart(client, "retry@example.com")
    await work(runtime, outbound)
    [row] = await deliveries(runtime)
    assert (row.status, row.attempts) == ("RETRYING", 1)
    assert (row.next_attempt_at - clock.now()).total_seconds() == 60
    await work(runtime, outbound)  # not due yet: nothing is attempted
    assert (await deliveries(runtime))[0].attempts == 1

    with smtp_server(port=port) as server:  # the server comes back on the port the connection names
        clock.advance(seconds=61)
        await work(runtime, outbound)
        await work(runtime, outbound)
    assert [message.rcpt_tos for message in server.messages] == [["retry@example.com"]]
    [row] = await deliveries(runtime)
    assert (row.status, row.attempts) == ("SENT", 2)


async def test_permanent_failure_is_a_dead_letter_and_can_be_resent(
    client: httpx.AsyncClient, runtime: Runtime, smtp: SmtpServer, outbound: connections.Outbound
) -> None:
    ref = await connection(client, smtp.port)
    await reminder_flow(client, ref, delay=0)
    await abandon_cart(client, REFUSED)
    await work(runtime, outbound)
    assert smtp.messages == []
    [row] = await deliveries(runtime)
    assert row.status == "FAILED" and row.attempts == 1 and row.last_error
    listed = (await client.get("/admin/v1/deliveries?status=FAILED", auth=AUTH)).json()
    assert [item["ref"] for item in listed["items"]] == [row.ref]
    assert listed["items"][0]["lastError"] == row.last_error
    resent = await client.post(f"/admin/v1/deliveries/{row.ref}/resend", auth=AUTH)
    assert resent.status_code == 200 and resent.json()["status"] == "PENDING"
    again = await client.post(f"/admin/v1/deliveries/{row.ref}/resend", auth=AUTH)
    assert again.status_code == 409


async def test_two_workers_at_once_never_double_send(
    client: httpx.AsyncClient, runtime: Runtime, smtp: SmtpServer, outbound: connections.Outbound
) -> None:
    ref = await connection(client, smtp.port)
    await reminder_flow(client, ref, delay=0)
    for index in range(4):
        await abandon_cart(client, f"guest{index}@example.com")
    await asyncio.gather(tasks.run_jobs_once(runtime), tasks.run_jobs_once(runtime))
    await asyncio.gather(*(tasks.deliver_once(runtime, outbound) for _ in range(3)))
    recipients = sorted(rcpt for message in smtp.messages for rcpt in message.rcpt_tos)
    assert recipients == [f"guest{index}@example.com" for index in range(4)]


async def test_opted_out_and_suppressed_guests_get_nothing_and_the_cooldown_holds(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, smtp: SmtpServer, outbound: connections.Outbound
) -> None:
    ref = await connection(client, smtp.port)
    await reminder_flow(client, ref, delay=0)
    opted = await abandon_cart(client, "optout@example.com")
    extension = {"name": "ext", "key": "default", "emailOptOut": True}
    created = await client.post(f"/v2.1/guests/{opted['customer_ref']}/extensions", json=extension, auth=AUTH)
    assert created.status_code == 201, created.text
    suppressed = await client.post("/admin/v1/email-suppressions", json={"email": "Bounced@Example.com"}, auth=AUTH)
    assert suppressed.status_code == 201
    await abandon_cart(client, "bounced@example.com")
    await work(runtime, outbound)
    assert smtp.messages == []
    assert sorted(row.outcome or "" for row in await jobs(runtime)) == ["opted_out", "suppressed"]

    # Cool-down: a second abandoned cart within 24 hours gets no second reminder.
    browser = await abandon_cart(client, "twice@example.com")
    await work(runtime, outbound)
    assert len(smtp.messages) == 1
    clock.advance(hours=2)
    await post_event(client, event(browser["ref"], "ADD", product=product("SKU-2", price=10.0)))
    await post_event(client, event(browser["ref"], "FORCE_CLOSE"))
    await work(runtime, outbound)
    assert len(smtp.messages) == 1
    assert "cooldown" in [row.outcome for row in await jobs(runtime)]
    clock.advance(hours=25)
    await post_event(client, event(browser["ref"], "ADD", product=product("SKU-3", price=10.0)))
    await post_event(client, event(browser["ref"], "FORCE_CLOSE"))
    await work(runtime, outbound)
    assert len(smtp.messages) == 2


async def test_anonymous_guests_and_browsed_sessions_do_not_trigger(
    client: httpx.AsyncClient, runtime: Runtime, smtp: SmtpServer, outbound: connections.Outbound
) -> None:
    ref = await connection(client, smtp.port)
    await reminder_flow(client, ref, delay=0)
    anonymous = await create_browser(client)
    await post_event(client, event(anonymous["ref"], "ADD", product=product("SKU-1")))
    await post_event(client, event(anonymous["ref"], "FORCE_CLOSE"))
    browsing = await create_browser(client)
    identity = [{"provider": "email", "id": "browse@example.com"}]
    await post_event(client, event(browsing["ref"], "IDENTITY", email="browse@example.com", identifiers=identity))
    await post_event(client, event(browsing["ref"], "FORCE_CLOSE"))
    await work(runtime, outbound)
    assert await jobs(runtime) == []
    assert smtp.messages == []


async def test_the_sweeper_closing_an_idle_session_triggers_the_reminder(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, smtp: SmtpServer, outbound: connections.Outbound
) -> None:
    from innkeeper.worker import sweep_once

    ref = await connection(client, smtp.port)
    await reminder_flow(client, ref, delay=0)
    browser = await create_browser(client)
    identity = [{"provider": "email", "id": "idle@example.com"}]
    await post_event(client, event(browser["ref"], "IDENTITY", email="idle@example.com", identifiers=identity))
    await post_event(client, event(browser["ref"], "ADD", product=product("SKU-1", price=12.0)))
    await work(runtime, outbound)
    assert smtp.messages == []  # the session is still open
    clock.advance(minutes=21)  # past the point of sale's 20-minute timeout
    assert await sweep_once(runtime) == 1
    await work(runtime, outbound)
    assert [message.rcpt_tos for message in smtp.messages] == [["idle@example.com"]]


async def test_suppressions_added_at_one_instant_page_through_each_once(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    emails = [f"s{i}@example.com" for i in (3, 0, 4, 1, 2)]
    for email in emails:  # the frozen clock: every row has the same created_at
        assert (await client.post("/admin/v1/email-suppressions", json={"email": email}, auth=AUTH)).status_code == 201
    clock.advance(seconds=1)
    assert (
        await client.post("/admin/v1/email-suppressions", json={"email": "z@example.com"}, auth=AUTH)
    ).status_code == 201
    pages: list[str] = []
    for offset in range(0, 6, 2):
        response = await client.get("/admin/v1/email-suppressions", params={"offset": offset, "limit": 2}, auth=AUTH)
        assert response.status_code == 200, response.text
        pages.extend(item["email"] for item in response.json()["items"])
    # Newest first; a tie on the instant is broken by the address, so no page repeats or skips a row.
    assert pages == ["z@example.com", *sorted(emails)]
