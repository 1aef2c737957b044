"""Deliveries of triggered flows with real processes: a real `innkeeper serve --no-workers`, real `innkeeper worker`
processes and an aiosmtpd server in the test process. A worker SIGKILLed in the middle of an SMTP transaction: after
a restart the message arrives exactly once; two workers at once never double-send.

The last test is in-process: a send that outlives the delivery lease must not be sent a second time by another
worker (it fails today; see its reason).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from innkeeper.connections import service as connections
from innkeeper.connections.senders import DeliveryResult, WebhookRequest
from innkeeper.connections.senders._types import sent
from innkeeper.core.config import Settings
from innkeeper.core.runtime import Runtime
from innkeeper.triggers import tasks
from tests.factories import flows
from tests.factories.flows import AUTH
from tests.factories.stream import create_browser, event, post_event
from tests.support.clock import FrozenClock
from tests.support.live import LiveServer, free_port, innkeeper_bin, live_server

# The delivery lease is 2 minutes of wall-clock time; the kill test shortens it with this setting.
LEASE_SETTING = "INNKEEPER_DELIVERY_LEASE_SECONDS"
SHORT_LEASE_S = 2.0
DEADLINE_S = 60.0
SWEEP_S = "0.2"

REMINDER = """{
  "to": "${guest.email?json_string}",
  "subject": "You left ${event.message.cart?size} item(s) in your cart",
  "text": "<#list event.message.cart as i>${i.name?json_string} x ${i.quantity}\\n</#list>"
}"""


# --- an SMTP server that can hold the first message ------------------------------------------------


@dataclass
class Mail:
    """A message whose SMTP transaction completed (the server answered 250 to the DATA)."""

    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class HoldingHandler:
    """Accepts every message; with ``hold_first`` the first DATA waits until ``release`` is set.

    While it waits the sending worker is stuck mid-delivery. When the client goes away, aiosmtpd cancels the
    handler: that message is never completed and never recorded.
    """

    hold_first: bool = False
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    completed: list[Mail] = field(default_factory=list)
    data_commands: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.data_commands += 1
            hold = self.hold_first and not self.held.is_set()
            if hold:
                self.held.set()
        if hold:
            await asyncio.to_thread(self.release.wait, DEADLINE_S)
            return "451 4.3.0 transaction aborted"  # only reached if the client is still there
        parsed = message_from_bytes(envelope.original_content or b"", policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.completed.append(Mail(list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def mails(self) -> list[Mail]:
        with self.lock:
            return list(self.completed)


@contextmanager
def smtp_server(*, hold_first: bool = False) -> Iterator[tuple[int, HoldingHandler]]:
    """aiosmtpd on a free port, no authentication."""
    handler = HoldingHandler(hold_first=hold_first)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        handler.release.set()
        controller.stop()


# --- real processes ----------------------------------------------------------------------------------


def base_env(tmp_path: Path, **more: str) -> dict[str, str]:
    """Settings shared by the server and its workers (one data dir: one secret key)."""
    return {
        "INNKEEPER_DATA_DIR": str(tmp_path / "data"),
        "INNKEEPER_SWEEP_INTERVAL_SECONDS": SWEEP_S,
        "INNKEEPER_LOG_LEVEL": "info",
        **more,
    }


@contextmanager
def workers(db_url: str, tmp_path: Path, env: dict[str, str]) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start `innkeeper worker` processes on demand; all of them are stopped when the block ends."""
    started: list[subprocess.Popen[bytes]] = []
    worker_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INNKEEPER_")},
        **env,
        "INNKEEPER_DATABASE_URL": db_url,
    }

    def start(name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"worker-{name}.log").open("ab") as log:
            proc = subprocess.Popen([innkeeper_bin(), "worker"], env=worker_env, stdout=log, stderr=subprocess.STDOUT)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
        for proc in started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def logs(tmp_path: Path, server: LiveServer) -> str:
    """The server's and the workers' output, for failure messages."""
    parts = [f"--- serve ---\n{server.log_tail()}"]
    for path in sorted(tmp_path.glob("worker-*.log")):
        parts.append(f"--- {path.name} ---\n{path.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


# --- setup through HTTP only --------------------------------------------------------------------------


def reminder_flow(admin: httpx.Client, smtp_port: int) -> str:
    """An SMTP_EMAIL connection (no auth) and a LIVE abandoned-cart flow sending through it, without delay."""
    connection = {
        "name": f"Mailer {smtp_port}",
        "kind": "SMTP_EMAIL",
        "socketTimeout": 60_000,  # the held message must not time out before the worker is killed
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "NONE", "from": "Shop <shop@example.com>"},
    }
    created = admin.post("/v2/connections", json=connection)
    assert created.status_code == 201, created.text
    connection_ref: str = created.json()["ref"]
    variant = flows.variant("email", REMINDER)
    variant["destination"] = {"connectionRef": connection_ref}
    document = flows.experience(
        "Abandoned cart reminder",
        "{}",
        type="TRIGGERED_V3",
        channels=["EMAIL"],
        trigger={"type": "ABANDONED_CART", "delayMinutes": 0},
        variants=[variant],
    )
    flow = admin.post("/v3/flowDefinitions", json=document)
    assert flow.status_code == 201, flow.text
    started = admin.put(f"/v3/flowDefinitions/{flow.json()['ref']}", json={**flow.json(), "status": "LIVE"})
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "LIVE", started.json()
    return connection_ref


def abandon_cart(server: LiveServer, email: str) -> None:
    """Browser, IDENTITY with the email, ADD, FORCE_CLOSE (honoured in development mode) over the Stream API."""
    with httpx.Client(base_url=server.base_url, timeout=10.0) as stream:
        created = stream.get(f"/v1.2/browser/create.json?client_key={server.client_key}&message={{}}")
        assert created.status_code == 201, created.text
        browser = created.json()["ref"]
        item = {"type": "SHOES", "item_id": "SKU-1", "name": "Trail runner", "quantity": 2, "price": 59.5}
        item |= {"productId": "TRAIL", "currency": "EUR", "referenceId": "SKU-1-1"}
        messages: list[dict[str, Any]] = [
            {"type": "IDENTITY", "email": email, "identifiers": [{"provider": "email", "id": email}]},
            {"type": "ADD", "product": item},
            {"type": "FORCE_CLOSE"},
        ]
        for message in messages:
            body = {"channel": "WEB", "language": "EN", "currency": "EUR", "page": "cart", "pos": server.pos}
            body |= {"client_key": server.client_key, "browser_id": browser, **message}
            response = stream.post("/v1.2/events", json=body)
            assert response.status_code == 201, response.text


def deliveries(admin: httpx.Client) -> list[dict[str, Any]]:
    response = admin.get("/admin/v1/deliveries", params={"limit": 100})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def wait_for(check: Callable[[], bool], what: str, failure: Callable[[], str], timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout}s\n{failure()}")
        time.sleep(0.1)


# --- the tests -------------------------------------------------------------------------------------------


def test_worker_killed_mid_delivery_delivers_exactly_once_after_restart(db_url: str, tmp_path: Path) -> None:
    env = base_env(tmp_path, **{LEASE_SETTING: str(SHORT_LEASE_S)})
    with (
        smtp_server(hold_first=True) as (port, smtp),
        live_server(db_url, tmp_path, extra_env=env, extra_args=("--no-workers",)) as server,
        server.admin() as admin,
        workers(db_url, tmp_path, env) as start,
    ):
        reminder_flow(admin, port)
        abandon_cart(server, "jane@example.com")
        first = start("first")
        wait_for(lambda: smtp.held.wait(0.1), "the worker reaching DATA", lambda: logs(tmp_path, server))
        [held] = deliveries(admin)
        assert (held["status"], held["attempts"], held["recipient"]) == ("SENDING", 1, "jane@example.com")

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        smtp.release.set()
        assert smtp.mails() == []  # the aborted transaction completed nothing

        start("second")
        wait_for(
            lambda: deliveries(admin)[0]["status"] == "SENT",
            "the delivery SENT after the restart",
            lambda: f"{deliveries(admin)}\n{logs(tmp_path, server)}",
        )
        time.sleep(10 * float(SWEEP_S))  # a few more ticks: nothing is sent again
        [row] = deliveries(admin)
        mails = smtp.mails()

    assert (row["status"], row["attempts"], row["lastError"]) == ("SENT", 2, None)
    assert smtp.data_commands == 2  # the aborted attempt, then the one that completed
    assert [mail.rcpt_tos for mail in mails] == [["jane@example.com"]]
    assert mails[0].message["Message-ID"] == f"<{row['ref']}@example.com>"
    assert mails[0].message["Subject"] == "You left 1 item(s) in your cart"


def test_two_workers_at_once_send_each_reminder_once(db_url: str, tmp_path: Path) -> None:
    env = base_env(tmp_path)  # the real lease: sends here take milliseconds
    guests = [f"guest{n}@example.com" for n in range(5)]
    with (
        smtp_server() as (port, smtp),
        live_server(db_url, tmp_path, extra_env=env, extra_args=("--no-workers",)) as server,
        server.admin() as admin,
        workers(db_url, tmp_path, env) as start,
    ):
        reminder_flow(admin, port)
        start("a")
        start("b")
        for email in guests:
            abandon_cart(server, email)
        wait_for(
            lambda: [row["status"] for row in deliveries(admin)] == ["SENT"] * len(guests),
            "every delivery SENT",
            lambda: f"{deliveries(admin)}\n{logs(tmp_path, server)}",
        )
        time.sleep(10 * float(SWEEP_S))
        rows = deliveries(admin)
        mails = smtp.mails()

    assert sorted(rcpt for mail in mails for rcpt in mail.rcpt_tos) == guests
    assert sorted(str(mail.message["Message-ID"]) for mail in mails) == sorted(
        f"<{row['ref']}@example.com>" for row in rows
    )
    assert sorted((row["recipient"], row["status"], row["attempts"]) for row in rows) == [
        (email, "SENT", 1) for email in guests
    ]


# --- in-process: a send longer than the lease ------------------------------------------------------------


@dataclass
class Receiver:
    """A webhook receiver whose first answer takes ``first_delay`` seconds of real time."""

    first_delay: float = 0.0
    keys: list[str] = field(default_factory=list)

    async def send(self, request: WebhookRequest) -> DeliveryResult:
        self.keys.append(dict(request.headers)["Idempotency-Key"])
        if len(self.keys) == 1 and self.first_delay:
            await asyncio.sleep(self.first_delay)
        return sent(status_code=200)


class TestSendLongerThanTheLease:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        from dataclasses import replace

        return replace(settings, delivery_lease_seconds=SHORT_LEASE_S)

    async def _three_deliveries(self, client: httpx.AsyncClient, runtime: Runtime) -> None:
        hook = {
            "name": "Hook",
            "kind": "WEBHOOK",
            "request": {"requestType": "POST", "connectionUrl": "http://hook.test/"},
            "socketTimeout": 300_000,
        }
        created = await client.post("/v2/connections", json=hook, auth=AUTH)
        assert created.status_code == 201, created.text
        variant = flows.variant("hook", '{"guest": "${guest.ref}"}')
        variant["destination"] = {"connectionRef": created.json()["ref"]}
        document = flows.experience(
            "On close", "{}", type="TRIGGERED_V3", trigger={"type": "SESSION_CLOSED"}, variants=[variant]
        )
        await flows.live(client, document)
        for _ in range(3):
            browser = await create_browser(client)
            await post_event(client, event(browser["ref"], "FORCE_CLOSE"))
        await tasks.run_jobs_once(runtime)

    async def test_a_send_is_cut_off_before_its_lease_ends_and_nothing_is_sent_twice(
        self, client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock, settings: Settings
    ) -> None:
        await self._three_deliveries(client, runtime)
        slow, fast = Receiver(first_delay=SHORT_LEASE_S * 2), Receiver()
        first_worker = connections.Outbound.from_settings(settings, clock=clock)
        other_worker = connections.Outbound.from_settings(settings, clock=clock)
        first_worker._webhook = slow
        other_worker._webhook = fast
        await asyncio.gather(tasks.deliver_once(runtime, first_worker), tasks.deliver_once(runtime, other_worker))
        everything = slow.keys + fast.keys
        assert len(everything) == len(set(everything)) == 3  # every delivery attempted once, by one worker
        rows = (await client.get("/admin/v1/deliveries", auth=AUTH)).json()["items"]
        states = sorted((row["status"], row["attempts"]) for row in rows)
        assert states == [("RETRYING", 1), ("SENT", 1), ("SENT", 1)]
        [cut] = [row for row in rows if row["status"] == "RETRYING"]
        assert cut["ref"] == slow.keys[0] and "lease" in cut["lastError"]

    async def test_a_late_result_of_a_lost_lease_is_ignored(
        self, client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
    ) -> None:
        from datetime import timedelta

        from innkeeper.triggers import service

        await self._three_deliveries(client, runtime)
        async with runtime.sessions() as session:
            [mine] = await service.lease_deliveries(session, clock=clock, lease=timedelta(seconds=2), limit=1)
            await session.commit()
            ref, attempt = mine.ref, mine.attempts
        clock.advance(seconds=3)  # the lease ran out; another worker takes the row
        async with runtime.sessions() as session:
            theirs = await service.lease_deliveries(session, clock=clock, lease=timedelta(seconds=2), limit=3)
            await session.commit()
            assert ref in [row.ref for row in theirs]
        async with runtime.sessions() as session:
            row = await service.record_attempt(
                session,
                ref,
                attempt=attempt,
                outcome="sent",
                reason=None,
                status_code=200,
                excerpt=None,
                retry_after=None,
                clock=clock,
            )
            await session.commit()
            assert row is not None and (row.status, row.attempts) == ("SENDING", 2)
