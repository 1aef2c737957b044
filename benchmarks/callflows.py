"""callFlows benchmark: `POST /v2/callFlows` on a real `innkeeper serve` vs a bare Starlette app.

    .venv/bin/python benchmarks/callflows.py [--db sqlite|postgres] [--duration 20] [--concurrency 16] [--quick]

Scenario: 20 live flows with conditions and FTL-lite templates, guests with 50 sessions each.

1. Starts `innkeeper serve --no-workers` (one uvicorn process) on a fresh database (an SQLite temp file, or a
   fresh PostgreSQL database `innkeeper_bench_callflows`, created here and dropped afterwards; the URL may be
   overridden with INNKEEPER_BENCH_DATABASE_URL).
2. Seeds it (not timed):
   - guests, in this process through Innkeeper's own service layer (`guests.service.create_browser` +
     `stream.service.ingest`, the code `POST /v1.2/events` runs) with an injected clock that walks through the
     past: each guest is identified (IDENTITY with email + first name) and gets `--sessions` sessions spread
     over the last 40–160 days, closed by the POS inactivity timeout, each with 1–3 VIEWs, sometimes an ADD
     and sometimes a CHECKOUT (so orders exist). One transaction per guest.
   - 20 flows through the HTTP API of the running server (`POST /v3/flowDefinitions` then `PUT` with
     `"status": "LIVE"`): 10 experiences and 10 experiments (50/50 control/variant), with flow-wide audiences
     (declarative built-ins and custom JavaScript reading `guest.sessions`), one variant-level
     `conditionsTask`, and templates reading `guest.firstName`, `guest.sessions` (`<#list>` counts),
     `guest.orders`, `request.params` and `toJSON`.
3. Checks every flow once per sampled guest (not timed): each answer must be 200 with a JSON body and an
   expected outcome (variant, control, not_in_audience).
4. Drives `POST /v2/callFlows` with Engage-SDK-shaped bodies (random seeded browserId × random flow, random
   `params`) over N keep-alive connections: a warm-up (not counted), then `--duration` seconds measured.
5. Does the same against `benchmarks/bare.py`'s `POST /v2/callFlows` (parses the same body with msgspec and
   answers a same-shaped small JSON body with the outcome headers), same generator, concurrency, duration.
6. Then, for Innkeeper only, an open-loop phase at half of its measured maximum (`--fixed-rate-share`): calls due
   on a fixed schedule, latency counted from each one's due time (issue 8: p99 ≤ 15 ms at half of the maximum).
7. Prints req/s, p50/p90/p99 latency, errors, the `X-Innkeeper-Flow-Outcome` distribution per target and the
   ratio innkeeper/bare; writes it all to `benchmarks/results/callflows-<db>.json` and ends with the
   `BENCH_RESULT` line `benchmarks/run.py` reads (see `_results.py`).

Any non-200 answer, transport error or unexpected outcome (`error`, `not_found`, …) fails the run (exit 1).

`--quick` (3 s measured, 1 s warm-up, 20 guests × 10 sessions unless given) only checks the harness.
The load generator is `wrk` with a Lua script when it is on PATH, else the raw asyncio HTTP/1.1 client in this
process (the same choice, and the same helpers, as `benchmarks/ingest.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _results
from _bulk import SeedClock, ingest_history, stream_context
from _common import (
    API_TOKEN,
    CLIENT_KEY,
    POINT_OF_SALE,
    PRODUCTS,
    RESULTS,
    USER_AGENT,
    count_rows,
    database_url,
    fresh_database,
    new_loop,
    now_iso,
    product,
    quick_defaults,
    write_results,
)
from ingest import (
    BARE,
    DEFAULT_CONCURRENCY,
    JSON_TYPE,
    ORIGIN,
    SERVE,
    Connection,
    CPUWatch,
    ProfilingWatch,
    Result,
    Server,
    bench_results,
    build_request,
    open_loop_load,
    python_load,
    start_servers,
    wrk_load,
)

PATH = "/v2/callFlows"
GUESTS = 200
SESSIONS = 50
BODIES = 4096
CALL_HEADERS = {
    "Content-Type": "application/json",
    "X-Library-Version": "1.4.3",
    "User-Agent": USER_AGENT,
    "Origin": ORIGIN,
    "Accept": "*/*",
}
EXPECTED_OUTCOMES = ("variant", "control", "not_in_audience")
KNOWN_OUTCOMES = (*EXPECTED_OUTCOMES, "not_allocated", "not_eligible", "not_live", "not_found", "error")


# --- seeding: guests with sessions, through the service layer ---------------------------------------------

FIRST_NAMES = [
    "Ann",
    "Brian",
    "Ciara",
    "Declan",
    "Eimear",
    "Fionn",
    "Grainne",
    "Hugh",
    "Isolde",
    "Jack",
    "Kate",
    "Liam",
]
PAGES = ["/", "/shoes", "/shoes/trail", "/running-shoes", "/sale", "/men", "/women", "/kids", "/search", "/cart"]
SITE_PRODUCTS = PRODUCTS[:5]  # no soft flask on this site


def guest_history(
    index: int, browser_id: str, sessions: int, *, end: datetime
) -> list[tuple[datetime, dict[str, Any]]]:
    """(time, Engage-SDK message) pairs for one guest: IDENTITY, then ``sessions`` sessions over 40–160 days."""
    rng = random.Random(index * 7919 + 17)
    span = timedelta(days=rng.uniform(40, 160))
    start = end - span
    step = span / sessions
    common = {
        "browser_id": browser_id,
        "channel": "WEB",
        "client_key": CLIENT_KEY,
        "currency": "EUR",
        "language": "EN",
        "pos": POINT_OF_SALE,
    }
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    email = f"guest{index:05d}@bench.example"
    out: list[tuple[datetime, dict[str, Any]]] = []
    for s in range(sessions):
        # Sessions are ≥ step apart (≥ 19 h for 50 over 40 days): the 30-minute POS timeout closes each one.
        at = start + step * s + timedelta(minutes=rng.uniform(0, 120))
        if s == 0:
            identity = {
                **common,
                "type": "IDENTITY",
                "email": email,
                "firstname": first,
                "lastname": f"Bench{index:05d}",
                "identifiers": [{"provider": "email", "id": email}],
            }
            out.append((at, identity))
            at += timedelta(seconds=20)
        for _ in range(rng.randint(1, 3)):
            page = rng.choice(PAGES)
            out.append((at, {**common, "type": "VIEW", "page": page, "ext": {"pageVariantId": "_default"}}))
            at += timedelta(seconds=rng.uniform(10, 120))
        if rng.random() < 0.3:
            kind, item, name, price = rng.choice(SITE_PRODUCTS)
            line = product(kind, item, name, price, ordered_at=at, quantity=rng.randint(1, 2), reference_id=f"{item}-1")
            out.append((at, {**common, "type": "ADD", "page": "/cart", "product": line}))
            at += timedelta(seconds=rng.uniform(10, 60))
            if rng.random() < 0.4:
                order = f"ORD-{index:05d}-{s:03d}"
                out.append((at, {**common, "type": "CHECKOUT", "reference_id": order, "status": "PURCHASED"}))
    return out


async def seed_guests(database_url: str, guests: int, sessions: int, *, concurrency: int) -> tuple[list[str], int]:
    """Create ``guests`` identified guests with their histories; returns (browser refs, events stored)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from innkeeper.core.db import create_engine, in_transaction, session_factory
    from innkeeper.guests import service as guest_service

    engine = create_engine(database_url)
    factory = session_factory(engine)
    ctx = stream_context()
    end = datetime.now(UTC) - timedelta(hours=2)
    refs: list[str] = [""] * guests
    stored = 0
    pending = collections.deque(range(guests))

    async def one(index: int) -> int:
        async def work(session: AsyncSession) -> tuple[str, int]:
            clock = SeedClock(end)
            history: list[tuple[datetime, dict[str, Any]]] = []
            clock.at = end - timedelta(days=161)
            browser = await guest_service.create_browser(session, user_agent=USER_AGENT, clock=clock)
            history = guest_history(index, browser.ref, sessions, end=end)
            await ingest_history(session, ctx, clock, history)
            return browser.ref, len(history)

        ref, count = await in_transaction(factory, work)
        refs[index] = ref
        return count

    async def worker() -> None:
        nonlocal stored
        while pending:
            count = await one(pending.popleft())
            stored += count  # not `stored += await …`: that reads `stored` before awaiting

    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await engine.dispose()
    return refs, stored


# --- the 20 flows -----------------------------------------------------------------------------------------

T_GREETING = '{"greeting": "Hello ${guest.firstName!"visitor"}", "page": "${request.params.page!"/"}"}'
T_COUNTS = (
    "<#assign views = 0><#assign adds = 0>"
    "<#list guest.sessions as s><#list s.events as e>"
    '<#if e.type == "VIEW"><#assign views = views + 1><#elseif e.type == "ADD"><#assign adds = adds + 1></#if>'
    "</#list></#list>"
    '{"firstName": ${toJSON(guest.firstName)}, "sessions": ${guest.sessions?size}, "views": ${views}, '
    '"adds": ${adds}}'
)
T_RECENT = (
    '{"hi": ${toJSON(guest.firstName)}, "recent": [<#list guest.sessions as s><#if s?index == 5><#break></#if>'
    '<#if s?index gt 0>, </#if>{"day": "${s.startedAt?string("yyyy-MM-dd")}", "events": ${s.events?size}}'
    "</#list>]}"
)
T_PARAMS = (
    '{"params": ${toJSON(request.params)}, "pos": "${request.pointOfSale}", "hi": "${guest.firstName!"visitor"}", '
    '"filter": ${toJSON(filter!{})}}'
)
T_CART = (
    "<#if guest.sessions?has_content && guest.sessions[0].cart?has_content>"
    '{"lastCart": ${toJSON(guest.sessions[0].cart)}}<#else>{"lastCart": []}</#if>'
)
T_ORDERS = (
    "<#assign total = 0><#list guest.orders as o><#assign total = total + o.price></#list>"
    '{"name": ${toJSON(guest.firstName)}, "orders": ${guest.orders?size}, "total": ${total?c}}'
)
T_OFFER = '{"offer": "FREE_SHIPPING", "for": ${toJSON(guest.firstName)}, "page": ${toJSON(request.params.page!"/")}}'

JS_ACTIVE = "guest.sessions.length >= 20"
JS_ADDS = (
    "(function () { var adds = 0; guest.sessions.forEach(function (s) {"
    " s.events.forEach(function (e) { if (e.type === 'ADD') { adds++; } }); });"
    " return adds >= 3 ? {segment: 'adder', adds: adds} : false; })();"
)
JS_RECENT_VIEWS = (
    "(function () { var cutoff = Date.now() - 30 * 86400000, n = 0;"
    " guest.sessions.forEach(function (s) { if (new Date(s.startedAt).getTime() >= cutoff) {"
    " s.events.forEach(function (e) { if (e.type === 'VIEW') { n++; } }); } });"
    " return n >= 10 ? {views30: n} : false; })();"
)
JS_PAGE = "request.params.page !== '/search'"


def _builtin(template: str, **params: Any) -> dict[str, Any]:
    return {"template": template, "params": params}


def _script(name: str, source: str) -> dict[str, Any]:
    return {"name": name, "script": source}


AUDIENCES: dict[str, dict[str, Any] | None] = {
    "none": None,
    "customer": {"conditions": [_builtin("guest_type", type="customer")]},
    "regular": {"conditions": [_builtin("number_of_sessions", op=">=", n=10, days=30)]},
    "buyer": {"conditions": [_builtin("orders_count", op=">=", n=1)]},
    "js-active": {"conditions": [_script("active", JS_ACTIVE)]},
    "js-adds": {"conditions": [_script("adds", JS_ADDS)]},
    "js-recent": {"conditions": [_script("recent_views", JS_RECENT_VIEWS)]},
    "mixed": {
        "combinator": "AND",
        "conditions": [
            _builtin("channel", values=["WEB"]),
            _builtin("request_param", path="page", op="not equals", value="/cart"),
            _script("not_search", JS_PAGE),
        ],
    },
    "or": {
        "combinator": "OR",
        "conditions": [
            _builtin("has_abandoned_cart", days=60),
            _builtin("days_since_last_visit", op="<=", n=3),
        ],
    },
}

# (friendly id, subtype, audience, template); experiments get a control variant rendering "{}" and 50/50 splits.
FLOWS: list[tuple[str, str, str, str]] = [
    ("bench_greeting", "EXPERIENCE", "none", T_GREETING),
    ("bench_counts", "EXPERIENCE", "customer", T_COUNTS),
    ("bench_recent", "EXPERIENCE", "regular", T_RECENT),
    ("bench_params", "EXPERIENCE", "mixed", T_PARAMS),
    ("bench_cart", "EXPERIENCE", "js-adds", T_CART),
    ("bench_orders", "EXPERIENCE", "buyer", T_ORDERS),
    ("bench_active", "EXPERIENCE", "js-active", T_COUNTS),
    ("bench_views30", "EXPERIENCE", "js-recent", T_PARAMS),
    ("bench_comeback", "EXPERIENCE", "or", T_OFFER),
    ("bench_rules", "EXPERIENCE", "none", T_PARAMS),  # a variant-level conditionsTask, see build_flow
    ("bench_ab_greeting", "EXPERIMENT", "none", T_GREETING),
    ("bench_ab_counts", "EXPERIMENT", "customer", T_COUNTS),
    ("bench_ab_recent", "EXPERIMENT", "js-active", T_RECENT),
    ("bench_ab_params", "EXPERIMENT", "mixed", T_PARAMS),
    ("bench_ab_cart", "EXPERIMENT", "regular", T_CART),
    ("bench_ab_orders", "EXPERIMENT", "buyer", T_ORDERS),
    ("bench_ab_offer", "EXPERIMENT", "js-adds", T_OFFER),
    ("bench_ab_views30", "EXPERIMENT", "js-recent", T_COUNTS),
    ("bench_ab_comeback", "EXPERIMENT", "or", T_RECENT),
    ("bench_ab_plain", "EXPERIMENT", "none", T_OFFER),
]


def _variant(ref: str, template: str, *, control: bool = False, rules: list[str] | None = None) -> dict[str, Any]:
    tasks: list[dict[str, Any]] = []
    if rules:
        tasks.append(
            {
                "implementation": "conditionsTask",
                "input": {
                    "inputType": "conditionsTaskInput",
                    "rules": [{"id": f"c-{i}", "ruleData": {"expression": rule}} for i, rule in enumerate(rules)],
                },
            }
        )
    tasks.append(
        {
            "implementation": "templateRenderTask",
            "input": {"inputType": "templateRenderTaskInput", "type": "application/json", "template": template},
        }
    )
    return {"ref": ref, "name": ref.title(), "isControl": control, "tasks": tasks}


def build_flow(friendly_id: str, subtype: str, audience: str, template: str) -> dict[str, Any]:
    """A DRAFT flow definition document as `POST /v3/flowDefinitions` takes it (spec §1.5)."""
    document: dict[str, Any] = {
        "name": friendly_id.replace("_", " ").title(),
        "friendlyId": friendly_id,
        "type": "INTERACTIVE_API_FLOW",
        "subtype": subtype,
        "status": "DRAFT",
        "channels": ["WEB"],
        "schedule": {"type": "simpleSchedule", "startDate": "2025-01-01T00:00:00.000Z"},
    }
    if AUDIENCES[audience] is not None:
        document["audience"] = AUDIENCES[audience]
    if subtype == "EXPERIENCE":
        rules = [JS_ADDS] if friendly_id == "bench_rules" else None
        document["variants"] = [_variant("default", template, rules=rules)]
        return document
    document["variants"] = [_variant("control", "{}", control=True), _variant("variant_b", template)]
    document["traffic"] = {
        "type": "simpleTraffic",
        "weightingAlgorithm": "USER_DEFINED",
        "allocation": 100,
        "splits": [{"ref": "control", "split": 50}, {"ref": "variant_b", "split": 50}],
    }
    document["goals"] = {
        "primary": {
            "name": "Checkout conversion",
            "type": "CONVERSION_RATE",
            "goalCalculation": {"type": "BINARY", "calculation": "INCREASE", "target": "SESSIONS"},
        },
        "secondary": [],
    }
    return document


async def create_flows(port: int) -> list[str]:
    """Create and start the 20 flows through `/v3/flowDefinitions`; returns their friendly ids."""
    import httpx

    auth = (CLIENT_KEY, API_TOKEN)
    out: list[str] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for spec in FLOWS:
            created = await client.post("/v3/flowDefinitions", json=build_flow(*spec), auth=auth)
            if created.status_code != 201:
                raise SystemExit(f"creating {spec[0]} answered {created.status_code}: {created.text[:500]}")
            flow = created.json()
            started = await client.put(f"/v3/flowDefinitions/{flow['ref']}", json={**flow, "status": "LIVE"}, auth=auth)
            if started.status_code != 200 or started.json().get("status") != "LIVE":
                raise SystemExit(f"starting {spec[0]} answered {started.status_code}: {started.text[:500]}")
            out.append(str(flow["friendlyId"]))
    return out


# --- request bodies -----------------------------------------------------------------------------------------


def call_bodies(browsers: list[str], flows: list[str], count: int, *, seed: int = 1) -> list[bytes]:
    """Compact `/v2/callFlows` bodies as the Engage SDK sends them: random browser × random flow, flat params."""
    rng = random.Random(seed)
    out: list[bytes] = []
    for _ in range(count):
        params: dict[str, Any] = {"page": rng.choice(PAGES)}
        if rng.random() < 0.5:
            params["category"] = rng.choice(["shoes", "apparel", "accessories"])
        if rng.random() < 0.2:
            params["utm_campaign"] = "spring"
        body = {
            "clientKey": CLIENT_KEY,
            "channel": "WEB",
            "language": "EN",
            "currencyCode": "EUR",
            "pointOfSale": POINT_OF_SALE,
            "browserId": rng.choice(browsers),
            "friendlyId": rng.choice(flows),
            "params": params,
        }
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def _outcome(head: bytes) -> str:
    lower = head.lower()
    at = lower.find(b"\r\nx-innkeeper-flow-outcome:")
    if at < 0:
        return "(none)"
    end = lower.index(b"\r\n", at + 2)
    return lower[at + 27 : end].strip().decode("latin-1")


async def check_flows(port: int, browsers: list[str], flows: list[str], name: str) -> collections.Counter[str]:
    """Untimed: every flow for a few guests; each answer must be 200, JSON, with an expected outcome."""
    conn = Connection("127.0.0.1", port)
    seen: collections.Counter[str] = collections.Counter()
    problems: list[str] = []
    try:
        for flow in flows:
            for browser in browsers[:5]:
                body = call_bodies([browser], [flow], 1)[0]
                raw = build_request("POST", PATH, f"127.0.0.1:{port}", CALL_HEADERS, body)
                status, head, reply = await conn.send(raw)
                outcome = _outcome(head)
                seen[outcome] += 1
                if status != 200 or outcome not in EXPECTED_OUTCOMES:
                    problems.append(f"{flow}: {status} outcome {outcome} {reply[:200]!r}")
                elif f"content-type: {JSON_TYPE}".lower().encode() not in head.lower():
                    problems.append(f"{flow}: content type is not {JSON_TYPE}")
                else:
                    try:
                        parsed = json.loads(reply)
                    except ValueError:
                        parsed = None
                    if not isinstance(parsed, dict):
                        problems.append(f"{flow}: the body is not a JSON object: {reply[:200]!r}")
    finally:
        await conn.close()
    if problems:
        raise SystemExit(f"{name}: unexpected callFlows answers:\n  " + "\n  ".join(problems[:10]))
    return seen


async def sample_outputs(port: int, browser: str, flows: list[str]) -> dict[str, tuple[str, str]]:
    """One answer per flow for one guest (printed so a reader sees what the templates render)."""
    conn = Connection("127.0.0.1", port)
    out: dict[str, tuple[str, str]] = {}
    try:
        for flow in flows:
            raw = build_request(
                "POST", PATH, f"127.0.0.1:{port}", CALL_HEADERS, call_bodies([browser], [flow], 1, seed=3)[0]
            )
            _status, head, reply = await conn.send(raw)
            out[flow] = (_outcome(head), reply.decode("utf-8", "replace"))
    finally:
        await conn.close()
    return out


# --- load ---------------------------------------------------------------------------------------------------


@dataclass
class Load:
    """One target's measurement: ingest's Result plus the outcome distribution."""

    result: Result
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    warmup_outcomes: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def unexpected(self) -> int:
        """Answers (measured or warm-up) whose outcome is not one this scenario may produce."""
        both = self.outcomes + self.warmup_outcomes
        return sum(n for outcome, n in both.items() if outcome not in EXPECTED_OUTCOMES)

    def seen(self, head: bytes, counted: bool) -> None:
        """One answer 200 of the asyncio clients: count its outcome."""
        (self.outcomes if counted else self.warmup_outcomes)[_outcome(head)] += 1

    def seen_wrk(self, stats: dict[str, Any], measured: bool) -> None:
        """The outcome counts the wrk script reported."""
        counts = collections.Counter({k if k != "none" else "(none)": int(v) for k, v in stats["outcomes"].items()})
        if measured:
            self.outcomes = +counts  # drop zeros
        else:
            self.warmup_outcomes = +counts


WRK_SCRIPT = r"""
-- Generated by benchmarks/callflows.py: random pre-built callFlows bodies, exact-200 check, outcome counts.
local threads = {}
local ctr = 0
local OUTCOMES = {"variant", "control", "not_in_audience", "not_allocated", "not_eligible", "not_live",
                  "not_found", "error", "none"}

function setup(thread)
  ctr = ctr + 1
  thread:set("id", ctr)
  table.insert(threads, thread)
end

function init(args)
  requests = {}
  local headers = {}
  for line in io.lines(args[1]) do
    local k, v = line:match("^([^:]+): (.*)$")
    headers[k] = v
  end
  for body in io.lines(args[2]) do
    table.insert(requests, wrk.format("POST", "/v2/callFlows", headers, body))
  end
  math.randomseed(id * 7919 + os.time())
  ok, bad, sample = 0, 0, ""
  for _, name in ipairs(OUTCOMES) do _G["o_" .. name] = 0 end
end

function request()
  return requests[math.random(#requests)]
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    local outcome = "none"
    for k, v in pairs(headers) do
      if string.lower(k) == "x-innkeeper-flow-outcome" then outcome = v end
    end
    local key = "o_" .. outcome
    if _G[key] == nil then key = "o_none" end
    _G[key] = _G[key] + 1
  else
    bad = bad + 1
    if #sample < 600 then sample = sample .. status .. " " .. string.sub(body or "", 1, 200) .. "\n" end
  end
end

function done(summary, latency, requests)
  local ok_total, bad_total, samples, outcomes = 0, 0, "", ""
  local counts = {}
  for _, t in ipairs(threads) do
    ok_total = ok_total + t:get("ok")
    bad_total = bad_total + t:get("bad")
    samples = samples .. t:get("sample")
    for _, name in ipairs(OUTCOMES) do counts[name] = (counts[name] or 0) + t:get("o_" .. name) end
  end
  for _, name in ipairs(OUTCOMES) do outcomes = outcomes .. string.format('"%s":%d,', name, counts[name]) end
  outcomes = string.sub(outcomes, 1, -2)
  local e = summary.errors
  samples = samples:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", "\\n")
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"ok":%d,"bad":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"samples":"%s",' ..
    '"outcomes":{%s}}\n',
    summary.requests, summary.duration, ok_total, bad_total, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, samples, outcomes))
end
"""


# --- main -----------------------------------------------------------------------------------------------------


def _run(coro_factory: Callable[[], Any]) -> Any:
    loop = new_loop()
    try:
        return loop.run_until_complete(coro_factory())
    finally:
        loop.close()


def run_target(
    name: str, server: Server, bodies: list[bytes], workdir: Path, args: argparse.Namespace, client: str
) -> Load:
    """Warm-up + measured load against one started server."""
    assert server.proc is not None
    watch = CPUWatch(server.proc.pid)
    if args.profile and name == "innkeeper":
        watch = ProfilingWatch(server.proc.pid, args.duration, RESULTS / f"callflows-{args.db}-innkeeper.pyspy.txt")
    load = Load(Result(target=name, client=""))
    if client == "wrk":
        load.result = wrk_load(
            name,
            server.port,
            workdir,
            concurrency=args.concurrency,
            warmup=args.warmup,
            duration=args.duration,
            watch=watch,
            script="callflows.lua",
            on_stats=load.seen_wrk,
        )
    else:
        load.result = _run(
            lambda: python_load(
                name,
                [server.port],
                bodies,
                concurrency=args.concurrency,
                warmup=args.warmup,
                duration=args.duration,
                watch=watch,
                path=PATH,
                headers=CALL_HEADERS,
                ok_status=200,
                on_answer=load.seen,
            )
        )
    if isinstance(watch, ProfilingWatch):
        watch.report()
    return load


def run_fixed_rate(name: str, server: Server, bodies: list[bytes], rate: float, args: argparse.Namespace) -> Load:
    """The open-loop phase: calls due at a fixed ``rate``, latency from each one's due time (see ingest.py)."""
    assert server.proc is not None
    watch = CPUWatch(server.proc.pid)
    load = Load(Result(target=name, client=""))
    load.result = _run(
        lambda: open_loop_load(
            name,
            [server.port],
            PATH,
            CALL_HEADERS,
            bodies,
            rate=rate,
            warmup=args.fixed_warmup,
            duration=args.fixed_duration,
            connections=args.concurrency,
            ok_status=200,
            watch=watch,
            on_answer=load.seen,
        )
    )
    return load


def print_table(loads: list[Load], ratio: float | None) -> None:
    """The results table, the outcome distribution and the ratio."""
    head = (
        f"{'target':<14} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}"
        f"   {'CPU (cores): server':>19} {'generator':>9} {'other':>6}"
    )
    print()
    print(head)
    print("-" * len(head))
    for load in loads:
        r = load.result
        print(
            f"{r.target:<14} {r.rate:>9.0f} {r.p50_ms:>8.2f} {r.p90_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.1f} "
            f"{r.errors + r.warmup_errors:>7}   {r.server_cpu:>19.2f} {r.generator_cpu:>9.2f} {r.other_cpu:>6.2f}"
        )
    print()
    for load in loads:
        if load.result.offered_rate is not None:
            print(
                f"  {load.result.target}: open loop, {load.result.offered_rate:.0f} req/s offered; latency counted "
                "from each call's due time (no coordinated omission)"
            )
    for load in loads:
        total = sum(load.outcomes.values()) or 1
        shares = ", ".join(f"{o} {100 * n / total:.1f}%" for o, n in load.outcomes.most_common())
        print(f"  {load.result.target} outcomes (measured window): {shares}")
    print()
    if ratio is not None:
        print(f"ratio innkeeper/bare = {ratio:.3f}" + (f"   (bare is {1 / ratio:.0f}x faster)" if ratio else ""))
        print()


def main() -> int:
    """Parse the options, run the scenario on one database, print and store the results."""
    parser = argparse.ArgumentParser(
        description="Innkeeper callFlows benchmark (POST /v2/callFlows vs bare Starlette)."
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--duration", type=float, help="measured seconds per target (default 20; --quick 3)")
    parser.add_argument("--warmup", type=float, help="unmeasured warm-up seconds per target (default 2; --quick 1)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"keep-alive connections (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--guests", type=int, help=f"identified guests seeded (default {GUESTS}; --quick 20)")
    parser.add_argument("--sessions", type=int, help=f"sessions per guest (default {SESSIONS}; --quick 10)")
    parser.add_argument("--quick", action="store_true", help="3 s measured on a small seed: checks the harness only")
    parser.add_argument(
        "--fixed-rate-share",
        type=float,
        default=0.5,
        help="after the maximum, an open-loop phase at this share of it, for innkeeper (default 0.5; 0 = skip)",
    )
    parser.add_argument(
        "--fixed-duration", type=float, help="measured seconds of the open-loop phase (default --duration)"
    )
    parser.add_argument("--fixed-warmup", type=float, default=1.0, help="open-loop lead-in seconds (default 1)")
    parser.add_argument("--scenario", help="scenario id in the BENCH_RESULT line (default callflows-<db>)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto", help="load generator")
    parser.add_argument("--only", choices=["innkeeper", "bare"], help="run one target only (no ratio)")
    parser.add_argument("--profile", action="store_true", help="sample the innkeeper server with py-spy (if installed)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir / PostgreSQL database afterwards")
    args = parser.parse_args()
    quick_defaults(args, duration=(20.0, 3.0), warmup=(2.0, 1.0), guests=(GUESTS, 20), sessions=(SESSIONS, 10))
    args.fixed_duration = args.fixed_duration if args.fixed_duration is not None else args.duration

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    elif client == "wrk" and not shutil.which("wrk"):
        parser.error("--client wrk: wrk is not on PATH")

    workdir = Path(tempfile.mkdtemp(prefix="innkeeper-bench-callflows-"))
    url = database_url(args.db, workdir, "innkeeper_bench_callflows")

    print(f"Innkeeper callFlows benchmark — {now_iso()}")
    print(f"  database:    {args.db} ({url})")
    print(
        f"  generator:   {client}; concurrency {args.concurrency} keep-alive connections; "
        f"warm-up {args.warmup:g}s + {args.duration:g}s measured per target" + ("  [--quick]" if args.quick else "")
    )
    print(f"  scenario:    {len(FLOWS)} live flows, {args.guests} identified guests × {args.sessions} sessions")
    print(f"  machine:     {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"  workdir:     {workdir}")

    targets = ["innkeeper", "bare"] if args.only is None else [args.only]
    loads: list[Load] = []
    fixed: Load | None = None
    seed_info: dict[str, Any] = {}
    executions: int | None = None
    with fresh_database(args.db, url, workdir, keep=args.keep):
        print("  starting innkeeper serve (migrations run on start)…")
        [innkeeper] = start_servers("innkeeper", SERVE, 1, url, workdir)
        port = innkeeper.port
        try:
            t0 = time.monotonic()
            seed_concurrency = 1 if args.db == "sqlite" else 4
            browsers, events = _run(lambda: seed_guests(url, args.guests, args.sessions, concurrency=seed_concurrency))
            seed_s = time.monotonic() - t0
            print(f"  seeded {len(browsers)} guests, {events} events in {seed_s:.1f}s (service layer, not timed)")
            t0 = time.monotonic()
            flows = _run(lambda: create_flows(port))
            print(f"  created and started {len(flows)} flows in {time.monotonic() - t0:.1f}s (HTTP API, not timed)")
            seed_info = {"guests": len(browsers), "sessions_per_guest": args.sessions, "events": events}
            seed_info["seconds"] = round(seed_s, 1)
            bodies = call_bodies(browsers, flows, BODIES)
            (workdir / "bodies.jsonl").write_bytes(b"\n".join(bodies) + b"\n")
            (workdir / "headers.txt").write_text("".join(f"{k}: {v}\n" for k, v in CALL_HEADERS.items()))
            (workdir / "callflows.lua").write_text(WRK_SCRIPT)
            print(f"  {len(bodies)} distinct bodies, mean {sum(map(len, bodies)) / len(bodies):.0f} bytes")
            checked = _run(lambda: check_flows(port, browsers, flows, "innkeeper"))
            print(f"  checked {sum(checked.values())} calls (every flow × 5 guests): {dict(checked)}")
            for flow, (outcome, text) in _run(lambda: sample_outputs(port, browsers[0], flows)).items():
                print(f"    {flow:<20} {outcome:<16} {text[:110]}")
            if "innkeeper" in targets:
                before = count_rows(url, "flow_executions") or 0
                print(f"  → innkeeper: {args.warmup:g}s warm-up, {args.duration:g}s measured…", flush=True)
                loads.append(run_target("innkeeper", innkeeper, bodies, workdir, args, client))
                top = loads[-1].result.rate
                if args.fixed_rate_share > 0 and args.fixed_duration > 0 and top > 0:
                    rate = top * args.fixed_rate_share
                    print(
                        f"  → innkeeper: open loop at {rate:.0f} req/s ({100 * args.fixed_rate_share:g}% of the "
                        f"maximum), {args.fixed_warmup:g}s warm-up, {args.fixed_duration:g}s measured…",
                        flush=True,
                    )
                    fixed = run_fixed_rate(f"innkeeper@{100 * args.fixed_rate_share:g}%", innkeeper, bodies, rate, args)
        finally:
            innkeeper.stop()
        if "innkeeper" in targets:
            after = count_rows(url, "flow_executions")
            executions = after - before if after is not None else None
        if "bare" in targets:
            [bare] = start_servers("bare", BARE, 1, url, workdir)
            try:
                _run(lambda: check_flows(bare.port, browsers, flows[:1], "bare"))
                print(f"  → bare:      {args.warmup:g}s warm-up, {args.duration:g}s measured…", flush=True)
                loads.append(run_target("bare", bare, bodies, workdir, args, client))
            finally:
                bare.stop()

    by_name = {load.result.target: load.result for load in loads}
    ratio = by_name["innkeeper"].rate / by_name["bare"].rate if len(by_name) == 2 and by_name["bare"].rate else None
    print_table(loads + ([fixed] if fixed is not None else []), ratio)
    for load in loads:
        r = load.result
        print(f"  {r.target}: generator {r.client} used {r.generator_cpu * 100:.0f}% of a core", end="")
        if r.target == "innkeeper" and executions is not None:
            answered = r.answered_201 + (fixed.result.answered_201 if fixed is not None else 0)
            print(f"; {answered} answered 200, {executions} flow_executions rows stored", end="")
            slack = 0 if r.client.startswith("python") else 2 * args.concurrency
            if not answered <= executions <= answered + slack:
                print("  <-- MISMATCH: a 200 must mean a stored execution", end="")
        print()

    suffix = "-quick" if args.quick else ""
    name = f"callflows-{args.db}{suffix}" + (f"-{args.only}" if args.only else "")

    def summary(load: Load) -> dict[str, Any]:
        return {
            "requests_per_s": round(load.result.rate, 1),
            "requests": load.result.requests,
            "seconds": round(load.result.seconds, 3),
            "p50_ms": round(load.result.p50_ms, 3),
            "p90_ms": round(load.result.p90_ms, 3),
            "p99_ms": round(load.result.p99_ms, 3),
            "max_ms": round(load.result.max_ms, 3),
            "errors": load.result.errors,
            "warmup_errors": load.result.warmup_errors,
            "error_samples": load.result.error_samples,
            "outcomes": dict(load.outcomes.most_common()),
            "warmup_outcomes": dict(load.warmup_outcomes.most_common()),
            "server_cpu": round(load.result.server_cpu, 3),
            "machine_cpu": round(load.result.machine_cpu, 3),
            "generator_cpu": round(load.result.generator_cpu, 3),
            "other_cpu": round(load.result.other_cpu, 3),
            "answered_200": load.result.answered_201,
            "offered_rate": round(load.result.offered_rate, 1) if load.result.offered_rate is not None else None,
            "client": load.result.client,
        }

    payload = {
        "benchmark": "callflows",
        "at": now_iso(),
        "db": args.db,
        "quick": args.quick,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "generator": client,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "flows": [{"friendlyId": f, "subtype": s, "audience": a} for f, s, a, _ in FLOWS],
        "seed": seed_info,
        "targets": {load.result.target: summary(load) for load in loads},
        "fixed_rate": summary(fixed) if fixed is not None else None,
        "fixed_rate_share": args.fixed_rate_share,
        "flow_executions_stored": executions,
        "ratio_innkeeper_over_bare": round(ratio, 4) if ratio is not None else None,
    }
    write_results(f"{name}.json", payload)

    _results.emit(
        bench_results(
            args.scenario or f"callflows-{args.db}",
            by_name,
            fixed.result if fixed is not None else None,
            ratio,
            share=args.fixed_rate_share,
            target_ratio=0.5,
            target_p99_ms=15.0,
            unit="req/s",
            servers=1,
        ),
        quick=args.quick,
    )
    everything = loads + ([fixed] if fixed is not None else [])
    failed = [load for load in everything if load.result.errors or load.result.warmup_errors or load.unexpected]
    if failed:
        print()
        print("!" * 78)
        for load in failed:
            r = load.result
            print(
                f"!!  {r.target}: {r.errors} NON-200 RESPONSES / TRANSPORT ERRORS in the measured window, "
                f"{r.warmup_errors} in warm-up, {load.unexpected} unexpected outcomes"
            )
            for sample in r.error_samples[:5]:
                print(f"!!    e.g. {sample[:200]}")
        print(f"!!  BENCHMARK FAILED: every call must be answered 200 with an outcome in {EXPECTED_OUTCOMES}")
        print("!" * 78)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
