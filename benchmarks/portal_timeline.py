"""Portal timeline benchmark: a guest with 5,000 events opens its Timeline in under 300 ms (debug on).

    .venv/bin/python benchmarks/portal_timeline.py [--db sqlite|postgres] [--requests 30] [--quick]

1. Creates a fresh database (an SQLite temp file, or the PostgreSQL database `innkeeper_bench_portal`,
   dropped and re-created; override the URL with INNKEEPER_BENCH_DATABASE_URL) and migrates it with
   `innkeeper db upgrade`.
2. Builds the real app in this process (`create_app`, its lifespan bootstraps the tenant; development
   mode, so the tenant's debug flag is on) and seeds, not timed:
   - background traffic so the tables are not tiny: `--background` guests (default 2,000) with 5 closed
     sessions of 10 events each (100,000 events), inserted directly with Core `insert()` executemany;
   - **the guest**: `--sessions` (default 100) sessions × `--events` (default 50) events, through
     Innkeeper's own ingest service (`stream.service.ingest`, the code behind `POST /v1.2/events`) with a
     clock that replays them in the past: an IDENTITY first, then per session mostly VIEWs, ~10 ADDs with
     full products (cart lines), a CHECKOUT in 30% of the sessions (converted) — the others are
     abandoned when the 30-minute POS timeout closes them. One transaction per session.
3. Creates a MARKETER with the users service and signs in through `/portal/login` (CSRF form + cookie),
   with an httpx client on `httpx.ASGITransport` (in-process: no network, no uvicorn).
4. Checks the page once (200, every session and every event's debug control present), then times
   `--requests` GETs of `/portal/guests/{ref}/timeline` after 3 untimed warm-ups. The time is taken on
   the server side of the ASGI call (first byte in → last body byte out), so the client's parsing of a
   large page is not counted. The debug cogs are empty on the page (each loads its event's record and raw
   JSON when it opens); also timed (informative): one cog's body (`/portal/guests/{ref}/events/{event}
   ?fragment=1`, what `static/portal.js` fetches), the same page with debug off, the profile, and the event
   viewer (the 500 newest events).
5. Prints p50/p95/max ms against the 300 ms target, writes `benchmarks/results/portal-timeline-<db>.json`
   and a final `BENCH_RESULT {json}` line.

`--quick` (10 sessions, 200 background guests, 10 requests) checks the harness, not the target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from _bulk import (
    SeedClock,
    analyze,
    bench_settings,
    browser_row,
    chunks,
    event_row,
    guest_row,
    ingest_history,
    session_row,
    stream_context,
)
from _common import (
    CLIENT_KEY,
    PRODUCTS,
    USER_AGENT,
    database_url,
    fresh_database,
    now_iso,
    percentile,
    product,
    quick_defaults,
    write_results,
)
from _common import POINT_OF_SALE as POS
from _results import Result, emit

EMAIL = "marketer@bench.example"
PASSWORD = "bench password 0123"  # noqa: S105
TARGET_MS = 300.0
WARMUP = 3
PAGES = ["/", "/shoes", "/shoes/trail", "/running-shoes", "/sale", "/men", "/women", "/kids", "/search", "/cart"]


# --- seeding: background rows (direct inserts) --------------------------------------------------------


def background_rows(guests: int, *, now: datetime, seed: int = 3) -> dict[str, list[dict[str, Any]]]:
    """Guests with 5 closed sessions of 10 events each, as table rows."""
    rng = random.Random(seed)
    out: dict[str, list[dict[str, Any]]] = {"guests": [], "browsers": [], "sessions": [], "events": []}
    for i in range(guests):
        guest, browser = str(uuid.uuid4()), str(uuid.uuid4())
        first = now - timedelta(days=rng.uniform(30, 200))
        out["guests"].append(guest_row(guest, first))
        out["browsers"].append(browser_row(browser, guest, first, first))
        for s in range(5):
            ref = str(uuid.uuid4())
            started = first + timedelta(days=s * 3, minutes=rng.uniform(0, 600))
            last = started + timedelta(minutes=9)
            out["sessions"].append(
                session_row(
                    ref, guest, browser, started, last, first_page="/", last_page="/", num_events=10, num_views=10
                )
            )
            for k in range(10):
                at = started + timedelta(minutes=k)
                page = rng.choice(PAGES)
                raw = json.dumps({"type": "VIEW", "channel": "WEB", "pos": POS, "page": page, "browser_id": browser})
                event = event_row(
                    str(uuid.uuid4()), "VIEW", guest, browser, ref, page, at, raw, transport="stream-post"
                )
                out["events"].append(event)
        if i % 1000 == 999:
            rng.seed(seed + i)
    return out


async def insert_background(engine: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
    from innkeeper.migrations.models import Base

    async with engine.begin() as conn:
        for table_name in ("guests", "browsers", "sessions", "events"):
            table = Base.metadata.tables[table_name]
            for chunk in chunks(rows[table_name]):
                await conn.execute(sa.insert(table), chunk)


# --- seeding: the guest, through the ingest service ---------------------------------------------------


def guest_sessions(browser: str, sessions: int, per_session: int, *, end: datetime) -> list[list[tuple[datetime, Any]]]:
    """Per session, (time, Engage-SDK message) pairs: ~10 ADDs, a CHECKOUT in 30% of them, VIEWs for the rest."""
    rng = random.Random(11)
    common = {"browser_id": browser, "channel": "WEB", "client_key": CLIENT_KEY, "currency": "EUR", "language": "EN"}
    common["pos"] = POS
    out: list[list[tuple[datetime, Any]]] = []
    start = end - timedelta(days=sessions)
    for s in range(sessions):
        at = start + timedelta(days=s, minutes=rng.uniform(0, 240))
        messages: list[dict[str, Any]] = []
        if s == 0:
            email = "timeline.guest@bench.example"
            messages.append(
                {
                    **common,
                    "type": "IDENTITY",
                    "email": email,
                    "firstname": "Tim",
                    "lastname": "Eline",
                    "identifiers": [{"provider": "email", "id": email}],
                }
            )
        checkout = rng.random() < 0.3
        adds = min(10, per_session - len(messages) - (1 if checkout else 0))
        views = per_session - len(messages) - adds - (1 if checkout else 0)
        kinds = ["VIEW"] * views + ["ADD"] * adds
        rng.shuffle(kinds)
        for kind in kinds:
            page = rng.choice(PAGES)
            if kind == "VIEW":
                messages.append({**common, "type": "VIEW", "page": page, "ext": {"pageVariantId": "_default"}})
                continue
            group, item, name, price = rng.choice(PRODUCTS)
            line = product(
                group,
                item,
                name,
                price,
                ordered_at=at,
                quantity=rng.randint(1, 3),
                reference_id=f"{item}-{rng.randint(1, 9)}",
            )
            messages.append({**common, "type": "ADD", "page": "/cart", "product": line})
        if checkout:
            messages.append({**common, "type": "CHECKOUT", "reference_id": f"ORD-{s:04d}", "status": "PURCHASED"})
        timed = []
        for message in messages:
            timed.append((at, message))
            at += timedelta(seconds=rng.uniform(5, 30))
        out.append(timed)
    return out


async def seed_guest(runtime: Any, sessions: int, per_session: int) -> tuple[str, int]:
    """The benchmark's guest, through the ingest service; returns (guest ref, events stored)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from innkeeper.core.db import in_transaction
    from innkeeper.guests import service as guest_service

    ctx = stream_context()
    end = datetime.now(UTC) - timedelta(hours=2)
    clock = SeedClock(end - timedelta(days=sessions + 1))

    async def new_browser(session: AsyncSession) -> guest_service.BrowserRefs:
        return await guest_service.create_browser(session, user_agent=USER_AGENT, clock=clock)

    browser = await in_transaction(runtime.sessions, new_browser)
    stored = 0
    guest_ref = browser.guest_ref
    for history in guest_sessions(browser.ref, sessions, per_session, end=end):

        async def work(session: AsyncSession, history: list[tuple[datetime, Any]] = history) -> str:
            return await ingest_history(session, ctx, clock, history)

        guest_ref = await in_transaction(runtime.sessions, work)
        stored += len(history)
    return guest_ref, stored


# --- timing -----------------------------------------------------------------------------------------


class ServerTimer:
    """ASGI wrapper: how long the app took from the call to the last byte of the response body.

    ``last_ms`` is elapsed time; ``last_cpu_ms`` the CPU this process used meanwhile (every thread,
    so aiosqlite's too): on a busy machine the second is the steadier figure.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last_ms = 0.0
        self.last_cpu_ms = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        t0, c0 = time.perf_counter(), time.process_time()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.last_ms = (time.perf_counter() - t0) * 1000
                self.last_cpu_ms = (time.process_time() - c0) * 1000

        await self.app(scope, receive, timed_send)


async def time_gets(
    client: httpx.AsyncClient, timer: ServerTimer, path: str, n: int, check: Callable[[httpx.Response], None]
) -> dict[str, Any]:
    for _ in range(WARMUP):
        check(await client.get(path))
    server: list[float] = []
    cpu: list[float] = []
    wall: list[float] = []
    size = 0
    for _ in range(n):
        t0 = time.perf_counter()
        response = await client.get(path)
        wall.append((time.perf_counter() - t0) * 1000)
        check(response)
        server.append(timer.last_ms)
        cpu.append(timer.last_cpu_ms)
        size = len(response.content)
    for samples in (server, cpu, wall):
        samples.sort()
    return {
        "requests": n,
        "p50_ms": round(percentile(server, 50), 2),
        "p95_ms": round(percentile(server, 95), 2),
        "max_ms": round(max(server), 2),
        "mean_ms": round(sum(server) / n, 2),
        "cpu_p50_ms": round(percentile(cpu, 50), 2),
        "cpu_p95_ms": round(percentile(cpu, 95), 2),
        "client_p50_ms": round(percentile(wall, 50), 2),
        "bytes": size,
    }


async def sign_in(client: httpx.AsyncClient) -> None:
    form = await client.get("/portal/login")
    match = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert match is not None, "no CSRF token on the sign-in form"
    response = await client.post("/portal/login", data={"email": EMAIL, "password": PASSWORD, "csrf": match.group(1)})
    if response.status_code != 303:
        raise SystemExit(f"sign-in failed: {response.status_code} {response.text[:300]}")


async def set_debug(runtime: Any, on: bool) -> None:
    from innkeeper.core.db import in_transaction
    from innkeeper.tenant import service as tenant

    async def work(session: Any) -> None:
        await tenant.update_settings(session, {"debug": on}, clock=runtime.clock)

    await in_transaction(runtime.sessions, work)


async def run(url: str, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from innkeeper.app import create_app
    from innkeeper.core.runtime import freeze_long_lived_objects
    from innkeeper.users import service as users

    app = create_app(bench_settings(url, data_dir=str(workdir / "data"), log_level="warning"))
    runtime = app.state.runtime
    info: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        t0 = time.perf_counter()
        rows = background_rows(args.background, now=datetime.now(UTC))
        await insert_background(runtime.engine, rows)
        info["background_events"] = len(rows["events"])
        info["background_seconds"] = round(time.perf_counter() - t0, 1)
        print(
            f"  background: {args.background:,} guests, {len(rows['events']):,} events in {info['background_seconds']}s"
        )
        del rows

        t0 = time.perf_counter()
        guest, events = await seed_guest(runtime, args.sessions, args.events)
        info.update(guest=guest, guest_events=events, guest_seconds=round(time.perf_counter() - t0, 1))
        print(f"  the guest:  {args.sessions} sessions × {args.events} events = {events:,} events through ingest")
        print(f"              in {info['guest_seconds']}s (ref {guest})")
        await analyze(runtime.engine, ("guests", "browsers", "sessions", "events", "orders"))

        async with runtime.sessions() as session:
            await users.create_user(session, email=EMAIL, password=PASSWORD, role="MARKETER", clock=runtime.clock)
            await session.commit()

        # As `innkeeper serve` does once it has started (the seeding above is the bench's own garbage).
        freeze_long_lived_objects()
        timer = ServerTimer(app)
        transport = httpx.ASGITransport(app=timer)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
            await sign_in(client)
            timeline = f"/portal/guests/{guest}/timeline"
            shown = min(args.sessions, 100)

            def full_timeline(response: httpx.Response) -> None:
                if response.status_code != 200:
                    raise SystemExit(f"timeline answered {response.status_code}: {response.text[:300]}")
                sessions = response.text.count('<section class="visit">')
                controls = response.text.count('class="debug-icon" aria-label="Debug event')
                if sessions != shown or controls != events:
                    raise SystemExit(
                        f"timeline shows {sessions} sessions / {controls} debug controls, expected {shown} / {events}"
                    )
                if '<pre class="raw">' in response.text:
                    raise SystemExit("the timeline inlines raw JSON: the cogs should load it on demand")

            def event_fragment(response: httpx.Response) -> None:
                if response.status_code != 200 or not response.text.startswith('<pre class="kv">'):
                    raise SystemExit(f"event fragment answered {response.status_code}: {response.text[:300]}")
                if '<pre class="raw">' not in response.text:
                    raise SystemExit("event fragment without its raw JSON")

            def plain_timeline(response: httpx.Response) -> None:
                if response.status_code != 200 or response.text.count('<section class="visit">') != shown:
                    raise SystemExit(f"timeline (debug off) answered {response.status_code}")
                if 'aria-label="Debug event' in response.text:
                    raise SystemExit("debug controls shown with debug off")

            def ok(response: httpx.Response) -> None:
                if response.status_code != 200:
                    raise SystemExit(f"{response.request.url.path} answered {response.status_code}")

            n = args.requests
            print(f"  → timing {n} GETs per page after {WARMUP} warm-ups (server-side ms)…", flush=True)
            results = {"timeline_debug": await time_gets(client, timer, timeline, n, full_timeline)}
            cog = re.search(r'<details class="debug" data-src="([^"]+)"', (await client.get(timeline)).text)
            if cog is None:
                raise SystemExit("no debug cog with a data-src on the timeline")
            fragment = cog.group(1).replace("&amp;", "&")
            results["event_fragment"] = await time_gets(client, timer, fragment, n, event_fragment)
            results["event_viewer"] = await time_gets(client, timer, f"/portal/guests/{guest}/events", n, ok)
            results["profile"] = await time_gets(client, timer, f"/portal/guests/{guest}", n, ok)
            await set_debug(runtime, False)
            results["timeline_plain"] = await time_gets(client, timer, timeline, n, plain_timeline)
    info["pages"] = results
    return info


def main() -> int:
    parser = argparse.ArgumentParser(description="Innkeeper portal timeline benchmark (a guest with 5,000 events).")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sessions", type=int, help="sessions of the guest (default 100; --quick 10)")
    parser.add_argument("--events", type=int, default=50, help="events per session (default 50)")
    parser.add_argument("--background", type=int, help="other guests, 50 events each (default 2000; --quick 200)")
    parser.add_argument("--requests", type=int, help="timed GETs per page (default 30; --quick 10)")
    parser.add_argument("--quick", action="store_true", help="a small seed: checks the harness, not the target")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir / PostgreSQL database afterwards")
    args = parser.parse_args()
    quick_defaults(args, sessions=(100, 10), background=(2000, 200), requests=(30, 10))

    workdir = Path(tempfile.mkdtemp(prefix="innkeeper-bench-portal-"))
    url = database_url(args.db, workdir, "innkeeper_bench_portal")
    print(f"Innkeeper portal timeline benchmark — {now_iso()}")
    print(f"  database:    {args.db} ({url})")
    print(f"  machine:     {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"  scenario:    one guest, {args.sessions} sessions × {args.events} events, debug on; in-process ASGI")
    with fresh_database(args.db, url, workdir, keep=args.keep, migrated=True):
        info = asyncio.run(run(url, workdir, args))

    pages = info["pages"]
    print()
    print(f"  {'page':<16} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'CPU p50':>8} {'CPU p95':>8} {'KB':>8}")
    for name, row in pages.items():
        times = f"{row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} {row['max_ms']:>8.1f}"
        print(f"  {name:<16} {times} {row['cpu_p50_ms']:>8.1f} {row['cpu_p95_ms']:>8.1f} {row['bytes'] / 1024:>8.0f}")
    debug = pages["timeline_debug"]
    verdict = "PASS" if debug["p95_ms"] <= TARGET_MS else "MISSED"
    print()
    print(f"  timeline with debug ({info['guest_events']:,} events): p95 {debug['p95_ms']:.1f} ms", end="")
    print(f" (CPU {debug['cpu_p95_ms']:.1f} ms) — target ≤ {TARGET_MS:g} ms: {verdict}")
    if args.quick:
        print("  (--quick: harness check only)")

    payload = {
        "benchmark": "portal-timeline",
        "at": now_iso(),
        "db": args.db,
        "quick": args.quick,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sessions": args.sessions,
        "events_per_session": args.events,
        **{k: v for k, v in info.items() if k != "pages"},
        "pages": pages,
        "target_ms": TARGET_MS,
    }
    write_results(f"portal-timeline-{args.db}{'-quick' if args.quick else ''}.json", payload)
    emit_result(f"portal-timeline-{args.db}", pages, quick=args.quick)
    return 0


def emit_result(scenario: str, pages: dict[str, dict[str, Any]], *, quick: bool) -> None:
    """The closing ``BENCH_RESULT {json}`` line."""
    debug = pages["timeline_debug"]
    emit(
        [
            Result(scenario, "timeline p95 (debug on)", debug["p95_ms"], "ms", target=TARGET_MS, comparison="<="),
            Result(scenario, "timeline p50 (debug on)", debug["p50_ms"], "ms"),
            Result(scenario, "timeline CPU p95 (debug on)", debug["cpu_p95_ms"], "ms"),
            Result(scenario, "timeline KB (debug on)", round(debug["bytes"] / 1024), "KB"),
            Result(scenario, "event fragment p95 (one cog)", pages["event_fragment"]["p95_ms"], "ms"),
            Result(scenario, "timeline p95 (debug off)", pages["timeline_plain"]["p95_ms"], "ms"),
            Result(scenario, "event viewer p95", pages["event_viewer"]["p95_ms"], "ms"),
            Result(scenario, "profile p95", pages["profile"]["p95_ms"], "ms"),
        ],
        quick=quick,
    )


if __name__ == "__main__":
    sys.exit(main())
