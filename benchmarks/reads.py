"""Reads benchmark: a guest timeline with 5,000 events among 1,000,000, and guest lookups.

    .venv/bin/python benchmarks/reads.py [--db sqlite|postgres] [--events 1000000] [--iterations 200] [--quick]

Targets (issue 8): timeline p95 ≤ 20 ms; guest lookup by browser id or by email p95 ≤ 5 ms.

1. Creates a fresh database (SQLite temp file, or the PostgreSQL database `innkeeper_bench_reads`,
   dropped and re-created; override with INNKEEPER_BENCH_DATABASE_URL), migrated with
   `innkeeper db upgrade`.
2. Bulk-seeds (not timed; executemany on SQLite, COPY on PostgreSQL, then VACUUM and CHECKPOINT so
   that no autovacuum or checkpoint of the load runs during the measurement) `--events` events: one
   guest per 20 events, each with a browser (60% identified, with an email), sessions of ~10 events
   spread over 30 days and stored in the order they happened, plus ONE guest with 100 sessions × 50
   events = 5,000 events spread over the same 30 days (so its rows are scattered among all others,
   as in a real database).
3. Measures in-process, each call in its own unit of work (`runtime.sessions()`), as the HTTP routes
   do, `--iterations` times after a short warm-up, with the objects alive before the first call frozen
   out of the garbage collector's full passes as `innkeeper serve` does once started (else a full pass
   over the seeding plan, which no server holds, costs 50–250 ms every few timelines):
   - timeline: what `GET /admin/v1/guests/{ref}/timeline` runs — `guests.get_guest`,
     `guests.identifiers_of`, `sessions.views.timeline` — for the 5,000-event guest (checked:
     100 sessions, 5,000 events);
   - browser lookup: what `GET /v1.2/browser/{ref}/show.json` runs — `guests.get_browser` +
     `guests.get_guest` — for a random browser;
   - email lookup: what `GET /v2.1/guests?email=…` runs — `guests.rest.search` with a case-insensitive
     email (half of them upper-cased) — for a random identified guest (checked: exactly that guest);
     and, informative, the same with `expand=true` (identifiers and extensions loaded too).
   Then, for information, the same three through the real app over HTTP in-process
   (httpx ASGITransport: routing, auth, JSON encoding; no sockets), fewer iterations.
4. Prints p50/p95/p99 per read (and, informative, the p50/p95 of this thread's CPU time per call:
   the wall time less waiting for PostgreSQL or for a core other processes hold — on SQLite the
   read's own cost), writes `benchmarks/results/reads-<db>.json` and a final
   `BENCH_RESULT {json}` line. Missed targets are reported, not an error; a wrong answer is (exit 1).

`--quick` seeds 30,000 events (the 5,000-event guest included) and runs 30 iterations: it checks the
harness, not the numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _bulk import (
    analyze,
    bench_settings,
    browser_row,
    bulk_insert,
    bulk_insert_tuples,
    db_time,
    guest_row,
    ref_maker,
    session_row,
)
from _common import API_TOKEN, CLIENT_KEY, database_url, fresh_database, new_loop, now_iso, percentile, write_results
from _common import POINT_OF_SALE as POS
from _common import USER_AGENT as UA
from _results import Result, emit

from innkeeper.core.clock import SystemClock
from innkeeper.core.db import create_engine, session_factory
from innkeeper.core.runtime import freeze_long_lived_objects
from innkeeper.sessions.models import timeline_line

TIMELINE_TARGET_MS = 20.0
LOOKUP_TARGET_MS = 5.0
BIG_SESSIONS, BIG_EVENTS_PER_SESSION = 100, 50
EVENTS_PER_GUEST = 20
DAYS = 30
PAGES = ["home", "shoes", "running-shoes", "trail", "cart", "sale", "men", "women", "kids", "search"]


@dataclass(slots=True)
class Plan:
    """What gets seeded: compact tuples, turned into rows lazily (1M event dicts would not fit)."""

    guests: list[tuple[str, str | None, datetime]]  # ref, email, created
    browsers: list[tuple[str, str]]  # ref, guest_ref
    sessions: list[tuple[str, str, str, datetime, int]]  # ref, guest_ref, browser_ref, start, events
    big_guest: str
    events: int


def plan(total_events: int, *, seed: int = 3) -> Plan:
    rng = random.Random(seed)
    new_uuid = ref_maker(seed)
    start = datetime.now(UTC) - timedelta(days=DAYS)
    span = DAYS * 86400
    other = max(0, total_events - BIG_SESSIONS * BIG_EVENTS_PER_SESSION)
    n_guests = max(100, other // EVENTS_PER_GUEST)
    guests: list[tuple[str, str | None, datetime]] = []
    browsers: list[tuple[str, str]] = []
    for i in range(n_guests):
        ref = new_uuid()
        email = f"guest.{i}.{ref[:6]}@example.com" if rng.random() < 0.6 else None
        guests.append((ref, email, start + timedelta(seconds=rng.randrange(span))))
        browsers.append((new_uuid(), ref))
    big = new_uuid()
    big_browser = new_uuid()
    guests.append((big, "big.guest@example.com", start))
    browsers.append((big_browser, big))
    sessions: list[tuple[str, str, str, datetime, int]] = []
    left = other
    while left > 0:
        n = min(left, rng.randint(2, 18))
        g = rng.randrange(n_guests)
        sessions.append((new_uuid(), guests[g][0], browsers[g][0], start + timedelta(seconds=rng.randrange(span)), n))
        left -= n
    for _ in range(BIG_SESSIONS):
        moment = start + timedelta(seconds=rng.randrange(span))
        sessions.append((new_uuid(), big, big_browser, moment, BIG_EVENTS_PER_SESSION))
    sessions.sort(key=lambda s: s[3])
    return Plan(guests, browsers, sessions, big, total_events)


def guest_rows(p: Plan) -> Iterator[dict[str, Any]]:
    for ref, email, created in p.guests:
        yield guest_row(
            ref, created, email=email, first_name="Bench" if email else None, last_name=ref[:8] if email else None
        )


def browser_rows(p: Plan) -> Iterator[dict[str, Any]]:
    created = {ref: at for ref, _, at in p.guests}
    for ref, guest_ref in p.browsers:
        yield browser_row(ref, guest_ref, created[guest_ref], None, user_agent=UA)


def _gap(k: int) -> timedelta:
    return timedelta(seconds=20 * k)


def session_rows(p: Plan) -> Iterator[dict[str, Any]]:
    for ref, guest_ref, browser_ref, start, n in p.sessions:
        yield session_row(
            ref,
            guest_ref,
            browser_ref,
            start,
            start + _gap(n - 1),
            last_page="cart",
            num_events=n,
            num_views=n,
            user_agent=UA,
            device={"type": "desktop", "os": "Linux", "browser": "Chrome"},
        )


EVENT_COLUMNS = [
    "ref",
    "type",
    "browser_ref",
    "guest_ref",
    "session_ref",
    "channel",
    "point_of_sale",
    "language",
    "currency",
    "page",
    "client_key",
    "created_at",
    "modified_at",
    "processing_status",
    "failure_reason",
    "warnings",
    "transport",
    "user_agent",
    "client_requested_at",
    "raw",
    "line",
]
RAW = (
    '{{"type":"{kind}","channel":"WEB","language":"EN","currency":"EUR","page":"{page}","pos":"' + POS + '",'
    '"browser_id":"{browser}","client_key":"' + CLIENT_KEY + '","ext":{{"pageVariantId":"_default"}}}}'
)


def event_rows(p: Plan, *, sqlite: bool) -> Iterator[tuple[Any, ...]]:
    """Event rows in driver form (tuples in EVENT_COLUMNS order): a million of them must be cheap to make."""
    rng = random.Random(11)
    choice, rand, new_uuid = rng.choice, rng.random, ref_maker(12)
    for session_ref, guest_ref, browser_ref, start, n in p.sessions:
        for k in range(n):
            when = start + _gap(k)
            at = db_time(when, sqlite=sqlite)
            page = choice(PAGES)
            kind = "VIEW" if rand() < 0.8 else "ADD"
            raw = RAW.format(kind=kind, page=page, browser=browser_ref)
            ref = new_uuid()
            yield (
                ref,
                kind,
                browser_ref,
                guest_ref,
                session_ref,
                "WEB",
                POS,
                "EN",
                "EUR",
                page,
                CLIENT_KEY,
                at,
                at,
                "SUCCESS",
                None,
                "[]",
                "HTTP",
                UA,
                None,
                raw,
                timeline_line(ref, kind, when, page, "SUCCESS", None),
            )


async def seed(url: str, p: Plan) -> dict[str, float]:
    engine = create_engine(url)
    timings: dict[str, float] = {}
    try:
        for table, rows in (
            ("guests", guest_rows(p)),
            ("browsers", browser_rows(p)),
            ("sessions", session_rows(p)),
        ):
            t0 = time.perf_counter()
            n = await bulk_insert(engine, table, rows)
            timings[table] = time.perf_counter() - t0
            print(f"    {table:<9} {n:>10,} rows in {timings[table]:.1f}s", flush=True)
        t0 = time.perf_counter()
        sqlite = engine.dialect.name == "sqlite"
        n = await bulk_insert_tuples(engine, "events", EVENT_COLUMNS, event_rows(p, sqlite=sqlite))
        timings["events"] = time.perf_counter() - t0
        print(f"    {'events':<9} {n:>10,} rows in {timings['events']:.1f}s", flush=True)
        t0 = time.perf_counter()
        tables = ("guests", "browsers", "sessions", "events", "guest_identifiers", "guest_extensions")
        await analyze(engine, tables, sqlite=True)
        timings["analyze"] = time.perf_counter() - t0
        if engine.dialect.name == "postgresql":
            # A database that has been running, not one a bulk load just left: the COPY's pages vacuumed (hint
            # bits, visibility map) and written out, else the reads set hint bits and a spread checkpoint of
            # ~1 GB (and autovacuum, where it is on) runs during the measurement.
            t0 = time.perf_counter()
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql(f"VACUUM {', '.join(tables)}")
                await conn.exec_driver_sql("CHECKPOINT")
            timings["vacuum"] = time.perf_counter() - t0
            print(f"    vacuumed and checkpointed in {timings['vacuum']:.1f}s", flush=True)
    finally:
        await engine.dispose()
    return timings


@dataclass(slots=True)
class Timing:
    name: str
    samples: list[float]
    # This thread's CPU time per call: the wall time less waiting (for PostgreSQL, and for the CPU when other
    # processes compete for the 2 cores). On SQLite, where a read is all in-process, it is what the read costs.
    cpu: list[float]

    def pct(self, q: float) -> float:
        return percentile(sorted(self.samples), q)

    def cpu_pct(self, q: float) -> float:
        return percentile(sorted(self.cpu), q)


async def _time(name: str, iterations: int, warmup: int, call: Callable[[int], Awaitable[None]]) -> Timing:
    for i in range(warmup):
        await call(-1 - i)
    samples, cpu = [], []
    for i in range(iterations):
        c0, t0 = time.thread_time(), time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    return Timing(name, samples, cpu)


async def measure_service(url: str, p: Plan, iterations: int) -> tuple[list[Timing], list[str]]:
    """The three reads through the service functions the routes call, one unit of work each."""
    from innkeeper.guests import rest
    from innkeeper.guests import service as guests
    from innkeeper.guests.repository import GuestQuery
    from innkeeper.http.pagination import DEFAULT_LIMIT
    from innkeeper.sessions import views

    problems: list[str] = []
    engine = create_engine(url)
    sessions = session_factory(engine)
    rng = random.Random(5)
    browsers = [ref for ref, _ in p.browsers]
    owner = dict(p.browsers)
    identified = [(ref, email) for ref, email, _ in p.guests if email]
    # As `innkeeper serve` does once it has started: what lives now (here, also the seeding plan of up to
    # a million events, which a server would not hold) leaves the collector's full passes.
    freeze_long_lived_objects()
    try:
        timelines: list[list[dict[str, Any]]] = []

        async def timeline(_: int) -> None:
            async with sessions() as session:
                guest = await guests.get_guest(session, p.big_guest)
                await guests.identifiers_of(session, guest.ref)
                timelines.append(await views.timeline(session, guest.ref))

        async def by_browser(_: int) -> None:
            ref = rng.choice(browsers)
            async with sessions() as session:
                browser = await guests.get_browser(session, ref)
                guest = await guests.get_guest(session, browser.guest_ref)
            if guest.ref != owner[ref]:
                problems.append(f"browser {ref}: guest {guest.ref}, want {owner[ref]}")

        async def email_lookup(expand: bool) -> None:
            ref, email = rng.choice(identified)
            asked = email.upper() if rng.random() < 0.5 else email  # the search is case-insensitive
            async with sessions() as session:
                found = await rest.search(
                    session, GuestQuery(email=asked), offset=0, limit=DEFAULT_LIMIT, expand=expand
                )
            refs = [view.guest.ref if isinstance(view, rest.GuestView) else view for view in found]
            if refs != [ref]:
                problems.append(f"email {email}: {refs}, want [{ref}]")

        async def by_email(_: int) -> None:
            await email_lookup(False)

        async def by_email_expanded(_: int) -> None:
            await email_lookup(True)

        results = [await _time("timeline (5,000 events)", iterations, 10, timeline)]
        # Checked after the timing: each session's events are the JSON array the REST route sends as it is
        # (views.timeline), decoded here to count them.
        for items in timelines:
            count = sum(len(views.timeline_events(item["events"])) for item in items)
            if len(items) != BIG_SESSIONS or count != BIG_SESSIONS * BIG_EVENTS_PER_SESSION:
                problems.append(f"timeline: {len(items)} sessions, {count} events")
        timelines.clear()
        results += [
            await _time("guest by browser id", iterations, 20, by_browser),
            await _time("guest by email", iterations, 20, by_email),
            await _time("guest by email, expanded", iterations, 20, by_email_expanded),
        ]
    finally:
        await engine.dispose()
    return results, problems


async def measure_http(url: str, p: Plan, iterations: int) -> tuple[list[Timing], list[str]]:
    """The same reads through the real app (routing, auth, JSON) over in-process HTTP."""
    import httpx

    from innkeeper.app import create_app

    problems: list[str] = []
    app = create_app(bench_settings(url), clock=SystemClock())
    rng = random.Random(6)
    browsers = [ref for ref, _ in p.browsers]
    identified = [(ref, email) for ref, email, _ in p.guests if email]
    auth = (CLIENT_KEY, API_TOKEN)
    async with app.router.lifespan_context(app):
        freeze_long_lived_objects()  # as `innkeeper serve` does once it has started
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            answers: list[tuple[str, httpx.Response]] = []

            async def get(name: str, path: str, **kw: Any) -> None:
                # Only the request is timed: the answers are checked (and parsed) afterwards.
                answers.append((name, await client.get(path, **kw)))

            async def timeline(_: int) -> None:
                await get("timeline", f"/admin/v1/guests/{p.big_guest}/timeline", auth=auth)

            async def by_browser(_: int) -> None:
                ref = rng.choice(browsers)
                await get("browser", f"/v1.2/browser/{ref}/show.json", params={"client_key": CLIENT_KEY})

            async def by_email(_: int) -> None:
                email = rng.choice(identified)[1]
                await get("email", "/v2.1/guests", params={"email": email}, auth=auth)

            async def by_email_expanded(_: int) -> None:
                email = rng.choice(identified)[1]
                await get("email", "/v2.1/guests", params={"email": email, "expand": "true"}, auth=auth)

            results = [
                await _time("timeline (5,000 events)", iterations, 5, timeline),
                await _time("guest by browser id", iterations, 10, by_browser),
                await _time("guest by email", iterations, 10, by_email),
                await _time("guest by email, expanded", iterations, 10, by_email_expanded),
            ]
            for name, response in answers:
                if response.status_code != 200:
                    problems.append(f"HTTP {name}: {response.status_code} {response.text[:200]}")
                elif name == "timeline":
                    count = sum(len(item["events"]) for item in response.json()["items"])
                    if count != BIG_SESSIONS * BIG_EVENTS_PER_SESSION:
                        problems.append(f"HTTP timeline: {count} events")
    return results, problems


def main() -> int:
    parser = argparse.ArgumentParser(description="Innkeeper reads benchmark (timeline, guest lookups).")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=1_000_000, help="events stored in all (default 1000000)")
    parser.add_argument("--iterations", type=int, default=200, help="timed calls per read (default 200)")
    parser.add_argument("--no-http", action="store_true", help="skip the informative in-process HTTP timings")
    parser.add_argument("--quick", action="store_true", help="30,000 events, 30 iterations: checks the harness only")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir / PostgreSQL database afterwards")
    args = parser.parse_args()
    total = 30_000 if args.quick else args.events
    iterations = 30 if args.quick else args.iterations

    workdir = Path(tempfile.mkdtemp(prefix="innkeeper-bench-reads-"))
    url = database_url(args.db, workdir, "innkeeper_bench_reads")
    print(f"Innkeeper reads benchmark — {now_iso()}")
    print(f"  database:    {args.db} ({url})")
    print(f"  machine:     {os.cpu_count()} cores, Python {platform.python_version()}")
    with fresh_database(args.db, url, workdir, keep=args.keep, migrated=True):
        loop = new_loop()
        try:
            t0 = time.perf_counter()
            p = plan(total)
            print(
                f"  scenario:    {total:,} events, {len(p.guests):,} guests, {len(p.sessions):,} sessions; "
                f"guest {p.big_guest} has {BIG_SESSIONS} sessions × {BIG_EVENTS_PER_SESSION} events "
                f"(planned in {time.perf_counter() - t0:.1f}s)"
            )
            t0 = time.perf_counter()
            print("  seeding (not timed)…", flush=True)
            loop.run_until_complete(seed(url, p))
            seeded = time.perf_counter() - t0
            print(f"  seeded in {seeded:.0f}s")
            print(f"  → in-process service calls, {iterations} iterations each…", flush=True)
            service, problems = loop.run_until_complete(measure_service(url, p, iterations))
            http: list[Timing] = []
            if not args.no_http:
                print(f"  → in-process HTTP (ASGI), {max(20, iterations // 4)} iterations each…", flush=True)
                http, more = loop.run_until_complete(measure_http(url, p, max(20, iterations // 4)))
                problems += more
        finally:
            loop.close()

    targets: list[float | None] = [TIMELINE_TARGET_MS, LOOKUP_TARGET_MS, LOOKUP_TARGET_MS, None]
    print()
    print(
        f"  {'read':<36} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'cpu p50':>8} {'cpu p95':>8}"
        "   target p95"
    )
    for label, rows in (("service", service), ("http", http)):
        for timing, target in zip(rows, targets, strict=False):
            line = f"  {label + ': ' + timing.name:<36} {timing.pct(50):>8.2f} {timing.pct(95):>8.2f} "
            line += f"{timing.pct(99):>8.2f} {max(timing.samples):>8.2f} "
            line += f"{timing.cpu_pct(50):>8.2f} {timing.cpu_pct(95):>8.2f}   "
            if label == "service" and target is not None:
                verdict = "PASS" if timing.pct(95) <= target else f"MISSED by {timing.pct(95) - target:.2f} ms"
                line += f"≤ {target:g} ms: {verdict}"
            else:
                line += "(informative)"
            print(line)
    if problems:
        print("!" * 78)
        for problem in problems[:20]:
            print(f"!!  {problem}")
        print(f"!!  READS BENCHMARK GOT WRONG ANSWERS ({len(problems)})")
        print("!" * 78)

    payload = {
        "benchmark": "reads",
        "at": now_iso(),
        "db": args.db,
        "events": total,
        "guests": len(p.guests),
        "sessions": len(p.sessions),
        "iterations": iterations,
        "seed_seconds": round(seeded, 1),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "service": {
            t.name: {
                **{q: round(t.pct(v), 3) for q, v in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99))},
                **{q: round(t.cpu_pct(v), 3) for q, v in (("cpu_p50_ms", 50), ("cpu_p95_ms", 95))},
            }
            for t in service
        },
        "http": {
            t.name: {q: round(t.pct(v), 3) for q, v in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99))} for t in http
        },
        "problems": problems[:50],
    }
    write_results(f"reads-{args.db}{'-quick' if args.quick else ''}.json", payload)

    scenario = f"reads-{args.db}"
    results = [
        Result(
            scenario,
            f"{timing.name} p95",
            round(timing.pct(95), 3),
            "ms",
            target=target,
            comparison="<=" if target is not None else None,
            note=f"in-process service calls (one unit of work each), {iterations} iterations, {total:,} events stored, "
            f"p50 {timing.pct(50):.2f} ms" + ("" if target is not None else "; informative"),
        )
        for timing, target in zip(service, targets, strict=True)
    ]
    results += [
        Result(scenario, f"HTTP {timing.name} p95", round(timing.pct(95), 3), "ms", note="in-process ASGI, informative")
        for timing in http
    ]
    emit(results, quick=args.quick)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
