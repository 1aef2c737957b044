"""Sweeper benchmark: close 100,000 expired sessions (outcomes + outbox rows) — target ≤ 10 s.

    .venv/bin/python benchmarks/sweeper.py [--db sqlite|postgres] [--sessions 100000] [--flows] [--quick]

1. Creates a fresh database (SQLite temp file, or the PostgreSQL database `innkeeper_bench_sweeper`,
   dropped and re-created; override with INNKEEPER_BENCH_DATABASE_URL) and migrates it with
   `innkeeper db upgrade`.
2. Bulk-seeds (executemany on SQLite, COPY on PostgreSQL, in the order the rows were created; not
   timed) N OPEN sessions that all expired an hour or more ago, each with its own guest and browser
   and 1–5 events:
   ~50% browsed only, ~30% with a cart left behind (→ ABANDONED with the cart's revenue; some of
   them with confirmed lines but no checkout), ~20% that checked out (→ CONVERTED). A third of the
   guests are identified customers (that decides ABANDONED_CART triggers).
   With `--flows`, two LIVE triggered flows (SESSION_CLOSED and ABANDONED_CART) are added, so every
   close also schedules trigger jobs through the SessionClosed domain event.
3. Times the real sweeper in-process: `innkeeper.worker.sweep_once(runtime)` — the exact call the
   worker makes every tick — until no session is open.
4. Verifies every session: CLOSED / TIMEOUT, `ended_at` = last activity, the expected cart type and
   abandoned revenue, exactly one `session.closed` outbox row each with the same outcome and, with
   `--flows`, the expected trigger jobs. Any mismatch fails the run (exit status 1).
5. Prints the elapsed seconds against the 10 s target, writes `benchmarks/results/sweeper-<db>.json`
   and a final `BENCH_RESULT {json}` line.

`--quick` seeds 2,000 sessions: it checks the harness still works, not the number.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _bulk import analyze, browser_row, bulk_insert, event_row, guest_row, ref_maker, session_row
from _common import POINT_OF_SALE as POS
from _common import database_url, fresh_database, now_iso, write_results
from _results import Result, emit

from innkeeper.core.clock import SystemClock
from innkeeper.core.config import Settings
from innkeeper.core.db import create_engine, session_factory
from innkeeper.core.runtime import Runtime

TARGET_SECONDS = 10.0
PRODUCTS = [
    ("SHOES_8475GHT", "Trail runner GT", 129.99),
    ("SHOES_1120ABC", "Road racer 2", 99.5),
    ("TSHIRT_0042", "Tech tee", 25.0),
    ("JACKET_7781", "Rain shell", 180.0),
    ("SOCKS_3PACK", "Running socks (3 pack)", 14.95),
]
PAGES = ["home", "shoes", "trail", "sale", "cart", "men", "women"]


def _cart(rng: random.Random, *, confirmed: bool) -> list[dict[str, Any]]:
    lines = []
    for item, name, price in rng.sample(PRODUCTS, rng.randint(1, 3)):
        lines.append(
            {
                "itemId": item,
                "productId": item.split("_")[0],
                "name": name,
                "type": "FOOTWEAR",
                "referenceId": None,
                "orderedAt": None,
                "quantity": rng.randint(1, 3),
                "price": price,
                "currency": "EUR",
                "originalPrice": price,
                "originalCurrencyCode": "EUR",
                "confirmed": confirmed and rng.random() < 0.7,
            }
        )
    return lines


class Seed:
    """The generated rows, and what the sweep must turn each session into."""

    def __init__(self, count: int, *, now: datetime, seed: int = 42) -> None:
        self.count = count
        self.now = now
        self.rng = random.Random(seed)
        self.guests: list[dict[str, Any]] = []
        self.browsers: list[dict[str, Any]] = []
        self.sessions: list[dict[str, Any]] = []
        self.expected: dict[str, tuple[str, float | None, datetime, str]] = {}
        self.customers: set[str] = set()
        self.events = 0
        self._build()

    def _build(self) -> None:
        rng = self.rng
        new_uuid = ref_maker(43)
        for i in range(self.count):
            guest_ref, browser_ref, ref = new_uuid(), new_uuid(), new_uuid()
            last = self.now - timedelta(hours=1, seconds=rng.randrange(6 * 3600))
            started = last - timedelta(seconds=rng.randrange(1, 1800))
            customer = rng.random() < 1 / 3
            email = f"guest{i}@example.com" if customer else None
            self.guests.append(guest_row(guest_ref, started, last_seen=last, email=email))
            if customer:
                self.customers.add(guest_ref)
            self.browsers.append(browser_row(browser_ref, guest_ref, started, last))
            roll = rng.random()
            cart: list[dict[str, Any]] = []
            converted, order_ref, value = False, None, None
            views, adds, confirms, checkouts = rng.randint(1, 3), 0, 0, 0
            if roll < 0.5:
                outcome, revenue = "BROWSED", None
            elif roll < 0.8:
                cart = _cart(rng, confirmed=rng.random() < 0.3)
                adds, confirms = len(cart), int(any(line["confirmed"] for line in cart))
                outcome = "ABANDONED"
                revenue = round(sum(float(line["quantity"]) * float(line["price"]) for line in cart), 2)
            else:
                bought = _cart(rng, confirmed=True)
                adds, checkouts = len(bought), 1
                converted, order_ref = True, new_uuid()
                value = round(sum(line["quantity"] * line["price"] for line in bought), 2)
                outcome, revenue = "CONVERTED", None
            self.events += min(views + adds + confirms + checkouts, 5)
            self.sessions.append(
                session_row(
                    ref,
                    guest_ref,
                    browser_ref,
                    started,
                    last,
                    status="OPEN",
                    close_reason=None,
                    ended_at=None,
                    last_page=rng.choice(PAGES),
                    num_events=min(views + adds + confirms + checkouts, 5),
                    num_views=views,
                    num_adds=adds,
                    num_confirms=confirms,
                    num_checkouts=checkouts,
                    cart=cart,
                    converted=converted,
                    cart_type=None,
                    value=value,
                    order_ref=order_ref,
                )
            )
            self.expected[ref] = (outcome, revenue, last, guest_ref)
        # Rows are stored in the order they were created (as sessions open in production), so a
        # batch of sessions expiring together sits together on disk, as it does in a real database.
        for rows in (self.guests, self.browsers, self.sessions):
            rows.sort(key=lambda row: row["created_at"])

    def event_rows(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(7)
        new_uuid = ref_maker(8)
        for row in self.sessions:
            n = row["num_events"]
            types = ["VIEW"] * row["num_views"] + ["ADD"] * row["num_adds"]
            types += ["CONFIRM"] * row["num_confirms"] + ["CHECKOUT"] * row["num_checkouts"]
            for k, kind in enumerate(types[:n]):
                at = row["started_at"] + (row["last_activity_at"] - row["started_at"]) * (k / max(1, n - 1))
                page = rng.choice(PAGES)
                raw = json.dumps({"type": kind, "channel": "WEB", "pos": POS, "page": page})
                yield event_row(new_uuid(), kind, row["guest_ref"], row["browser_ref"], row["ref"], page, at, raw)


def flow_rows(now: datetime) -> list[dict[str, Any]]:
    """Two LIVE triggered flows: every closed session, and identified abandoned carts."""
    rows = []
    for kind in ("SESSION_CLOSED", "ABANDONED_CART"):
        document = {"name": f"bench {kind}", "type": "TRIGGERED_V3", "trigger": {"type": kind, "delayMinutes": 60}}
        rows.append(
            {
                "ref": str(uuid.uuid4()),
                "friendly_id": f"bench_{kind.lower()}",
                "name": f"bench {kind}",
                "type": "TRIGGERED_V3",
                "subtype": "EMAIL",
                "status": "LIVE",
                "archived": False,
                "revision": 1,
                "published_revision": 1,
                "started": True,
                "starts_at": None,
                "ends_at": None,
                "document": document,
                "created_at": now,
                "modified_at": now,
            }
        )
    return rows


async def seed(url: str, data: Seed, *, flows: bool) -> dict[str, float]:
    engine = create_engine(url)
    timings: dict[str, float] = {}
    try:
        for table, rows in (
            ("guests", data.guests),
            ("browsers", data.browsers),
            ("sessions", data.sessions),
            ("events", data.event_rows()),
        ):
            t0 = time.perf_counter()
            n = await bulk_insert(engine, table, rows)
            timings[table] = time.perf_counter() - t0
            print(f"    {table:<9} {n:>9,} rows in {timings[table]:.1f}s", flush=True)
        if flows:
            await bulk_insert(engine, "flows", flow_rows(data.now))
        await analyze(engine, ("guests", "browsers", "sessions", "events", "flows"))
    finally:
        await engine.dispose()
    return timings


async def sweep(url: str) -> tuple[float, int, int]:
    """Run the worker's sweep until nothing is open; returns (seconds, sessions closed, sweep_once calls)."""
    from innkeeper.worker import sweep_once

    settings = Settings(database_url=url, environment="development")
    engine = create_engine(settings.async_database_url)
    runtime = Runtime(settings=settings, engine=engine, sessions=session_factory(engine), clock=SystemClock())
    try:
        # Warm the connection pool (and the worker's imports) outside the timing.
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        t0 = time.perf_counter()
        closed = calls = 0
        while True:
            calls += 1
            n = await sweep_once(runtime)
            closed += n
            if n == 0:
                break
        return time.perf_counter() - t0, closed, calls
    finally:
        await engine.dispose()


async def verify(url: str, data: Seed, *, flows: bool) -> list[str]:
    """Every session closed once with the right outcome, one outbox row each (and trigger jobs)."""
    problems: list[str] = []
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT ref, status, close_reason, cart_type, abandoned_revenue, ended_at, last_activity_at "
                        "FROM sessions"
                    )
                )
            ).all()
            seen = 0
            for ref, status, reason, cart_type, revenue, ended, last in rows:
                want = data.expected.get(ref)
                if want is None:
                    continue
                seen += 1
                outcome, want_revenue, _, _ = want
                if status != "CLOSED" or reason != "TIMEOUT":
                    problems.append(f"session {ref}: {status}/{reason}, want CLOSED/TIMEOUT")
                if cart_type != outcome or (revenue is None) != (want_revenue is None):
                    problems.append(f"session {ref}: {cart_type} {revenue}, want {outcome} {want_revenue}")
                elif revenue is not None and want_revenue is not None and abs(revenue - want_revenue) > 0.001:
                    problems.append(f"session {ref}: revenue {revenue}, want {want_revenue}")
                if ended != last:
                    problems.append(f"session {ref}: ended_at {ended} != last activity {last}")
            if seen != data.count:
                problems.append(f"{seen} sessions found, {data.count} seeded")
            outbox = (
                await conn.execute(
                    sa.text("SELECT idempotency_key, payload, guest_ref FROM outbox WHERE topic = 'session.closed'")
                )
            ).all()
            keys: dict[str, int] = {}
            for key, payload, guest_ref in outbox:
                message = payload if isinstance(payload, dict) else json.loads(payload)
                ref = str(message.get("sessionRef"))
                keys[ref] = keys.get(ref, 0) + 1
                want = data.expected.get(ref)
                if want is None:
                    problems.append(f"outbox row for an unknown session {ref}")
                    continue
                outcome, want_revenue, last, want_guest = want
                if key != f"session.closed:{ref}" or guest_ref != want_guest or message.get("guestRef") != want_guest:
                    problems.append(f"outbox row of {ref}: key {key} / guest {guest_ref}")
                if message.get("cartType") != outcome or message.get("closeReason") != "TIMEOUT":
                    problems.append(f"outbox row of {ref}: {message.get('cartType')}, want {outcome}")
                if message.get("abandonedRevenue") != want_revenue:
                    problems.append(f"outbox row of {ref}: revenue {message.get('abandonedRevenue')} != {want_revenue}")
                if message.get("pointOfSale") != POS or message.get("endedAt") is None:
                    problems.append(f"outbox row of {ref}: payload {message}")
            missing = [ref for ref in data.expected if keys.get(ref) != 1]
            if missing:
                problems.append(f"{len(missing)} sessions without exactly one session.closed outbox row")
            if flows:
                jobs = (
                    await conn.execute(
                        sa.text(
                            "SELECT trigger_type, count(*), count(DISTINCT entity_ref) FROM trigger_jobs GROUP BY 1"
                        )
                    )
                ).all()
                got = {kind: (n, distinct) for kind, n, distinct in jobs}
                abandoned = sum(
                    1
                    for outcome, _, _, guest in data.expected.values()
                    if outcome == "ABANDONED" and guest in data.customers
                )
                want_jobs = {"SESSION_CLOSED": (data.count, data.count), "ABANDONED_CART": (abandoned, abandoned)}
                if got != want_jobs:
                    problems.append(f"trigger jobs {got}, want {want_jobs}")
    finally:
        await engine.dispose()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description="Innkeeper sweeper benchmark (close N expired sessions).")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sessions", type=int, default=100_000, help="expired sessions to close (default 100000)")
    parser.add_argument("--flows", action="store_true", help="add two LIVE triggered flows (trigger jobs per close)")
    parser.add_argument("--quick", action="store_true", help="2,000 sessions: checks the harness, not the target")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir / PostgreSQL database afterwards")
    args = parser.parse_args()
    count = 2_000 if args.quick else args.sessions

    workdir = Path(tempfile.mkdtemp(prefix="innkeeper-bench-sweeper-"))
    mix: dict[str, int] = {}
    url = database_url(args.db, workdir, "innkeeper_bench_sweeper")
    print(f"Innkeeper sweeper benchmark — {now_iso()}")
    print(f"  database:    {args.db} ({url})")
    print(f"  machine:     {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"  scenario:    {count:,} expired OPEN sessions; LIVE triggered flows: {'2' if args.flows else 'none'}")
    with fresh_database(args.db, url, workdir, keep=args.keep, migrated=True):
        t0 = time.perf_counter()
        data = Seed(count, now=datetime.now(UTC))
        print(f"  generated rows in {time.perf_counter() - t0:.1f}s; seeding (not timed)…", flush=True)
        asyncio.run(seed(url, data, flows=args.flows))
        for outcome, *_ in data.expected.values():
            mix[outcome] = mix.get(outcome, 0) + 1
        print(f"  mix: {mix}, {data.events:,} events, {len(data.customers):,} identified guests")
        print("  → sweeping (innkeeper.worker.sweep_once until nothing is open)…", flush=True)
        seconds, closed, calls = asyncio.run(sweep(url))
        print(f"  closed {closed:,} sessions in {seconds:.2f}s ({closed / seconds:,.0f}/s, {calls} sweep_once calls)")
        problems = asyncio.run(verify(url, data, flows=args.flows))

    if closed != count:
        problems.insert(0, f"closed {closed}, seeded {count}")
    print()
    print(f"  sweeper: {count:,} sessions closed in {seconds:.2f} s — target ≤ {TARGET_SECONDS:g} s: ", end="")
    print("PASS" if seconds <= TARGET_SECONDS else f"MISSED by {seconds - TARGET_SECONDS:.2f} s", end="")
    print("" if not args.quick else " (--quick: harness check only)")
    if problems:
        print("!" * 78)
        for problem in problems[:20]:
            print(f"!!  {problem}")
        print(f"!!  SWEEPER BENCHMARK FAILED VERIFICATION ({len(problems)} problems)")
        print("!" * 78)
    else:
        print("  verified: every session CLOSED/TIMEOUT with the expected cart type and revenue, one outbox row each")

    payload = {
        "benchmark": "sweeper",
        "at": now_iso(),
        "db": args.db,
        "sessions": count,
        "flows": 2 if args.flows else 0,
        "seconds": round(seconds, 3),
        "per_second": round(closed / seconds, 1) if seconds else None,
        "sweep_once_calls": calls,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "problems": problems[:50],
    }
    write_results(f"sweeper-{args.db}{'-quick' if args.quick else ''}.json", payload)
    note = (
        f"{count:,} sessions ({mix.get('BROWSED', 0):,} browsed, {mix.get('ABANDONED', 0):,} abandoned, "
        f"{mix.get('CONVERTED', 0):,} converted), {'2' if args.flows else 'no'} LIVE triggered flows; "
        f"worker's sweep_once in-process, {closed / seconds:,.0f} sessions/s; verified: "
        + ("OK" if not problems else f"{len(problems)} problems")
    )
    result = Result(
        f"sweeper-{args.db}",
        f"close {count:,} expired sessions" + (" (2 triggered flows)" if args.flows else ""),
        round(seconds, 3),
        "s",
        target=TARGET_SECONDS,
        comparison="<=",
        note=note,
    )
    emit([result], quick=args.quick)
    if problems:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
