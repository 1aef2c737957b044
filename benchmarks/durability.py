"""Durability benchmark: `kill -9` a real `innkeeper serve` under full ingest load, restart it, check the data.

    .venv/bin/python benchmarks/durability.py [--db sqlite|postgres] [--rounds 5] [--servers N] [--quick]

Issue 8: "under full load, kill -9 the server; after restart every event that got a 2xx answer is stored
exactly once (compare refs), and sessions/carts are consistent. Repeat 5 times; zero losses."

1. Starts `innkeeper serve --no-workers` (like `benchmarks/ingest.py`, whose helpers it imports) on a fresh
   database: an SQLite temp file, or the PostgreSQL database `innkeeper_bench_durability` (dropped and created;
   INNKEEPER_BENCH_DATABASE_URL overrides the URL). `--servers N` starts N processes, all killed together.
2. Creates `--browsers` browsers (not timed) and gives each of the `--concurrency` connections its own share of
   them, so the events of one browser are sent one after the other and their order is known.
3. Each round, on the same database: every connection sends Engage-SDK-shaped events (ingest's VIEW/ADD/IDENTITY
   mix) back to back. Every event carries a unique marker in `ext.bench_marker` (browser number and that
   browser's sequence number). An answer `201` with the Stream shape makes the event *acknowledged* (its
   `event_ref` is kept); a broken connection leaves it *in doubt*. After a random 3–8 s (0.5–1.5 s with
   `--quick`) every server process gets SIGKILL, with requests in flight.
4. Restarts the server(s) on the same database (migrations and WAL recovery on start) and reads the database
   directly (SQLAlchemy) to check, for every event sent so far:
   - **lost**: an acknowledged event whose marker is not stored, or stored under another ref than the
     `event_ref` it was acknowledged with;
   - **duplicated**: a marker stored more than once (acknowledged or in doubt: an unacknowledged event may or
     may not be stored, but never twice);
   - stored events that were never sent, answered with an error, or not processed (`processing_status`);
   - **sessions and carts**: for every session, `num_events` / `num_views` / `num_adds` equal its stored events
     (all types / VIEW / ADD), every stored event belongs to a session of its browser, and the cart equals the
     cart rebuilt from the session's stored ADD events in send order (last ADD of an item wins);
   - **identity**: the guest of every browser with a stored IDENTITY owns that browser's email identifier.
5. Prints one line per round and a summary, ends with the `BENCH_RESULT` line for `benchmarks/run.py`, and exits
   1 if anything was lost, duplicated or inconsistent, or the server answered an error before the kill.

`kill -9` kills the process, not the machine: the OS still writes what the process handed it. SQLite runs with
`synchronous=FULL`, so an acknowledged event would also survive power loss; that is not what this checks.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import _results
from _common import database_url, fresh_database, new_loop, now_iso, quick_defaults
from ingest import (
    DEFAULT_CONCURRENCY,
    EVENT_HEADERS,
    IDENTITY_SHARE,
    SERVE,
    Connection,
    HTTPError,
    Server,
    build_request,
    create_browsers,
    event_message,
    start_servers,
)

MARKER = "bench_marker"
BROWSERS = 2000

State = Literal["acked", "doubt", "rejected"]


# --- what was sent ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Sent:
    """One event sent, and what the answer said about it."""

    marker: str
    browser: str
    seq: int
    type: str
    round: int
    state: State = "doubt"
    event_ref: str | None = None


def marker_of(browser_index: int, seq: int) -> str:
    return f"{browser_index}.{seq}"


def seq_of(marker: str) -> int:
    return int(marker.rsplit(".", 1)[1])


def email_of(browser: str) -> str:
    """The email ingest.event_message puts in a browser's IDENTITY events."""
    return f"b-{browser}@bench.example"


# --- what is stored -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class StoredEvent:
    ref: str
    type: str
    browser_ref: str
    session_ref: str | None
    status: str
    marker: str | None
    item: str | None = None  # ADD: product.item_id
    quantity: int | None = None  # ADD: product.quantity


@dataclass(slots=True)
class StoredSession:
    ref: str
    browser_ref: str | None
    num_events: int
    num_views: int
    num_adds: int
    cart: list[dict[str, Any]]


def stored_event(ref: str, type_: str, browser_ref: str, session_ref: str | None, status: str, raw: str) -> StoredEvent:
    """A stored event row, with the marker and ADD line read back from the exact JSON that was sent."""
    try:
        message = json.loads(raw)
    except ValueError:
        message = {}
    ext = message.get("ext") if isinstance(message, dict) else None
    marker = ext.get(MARKER) if isinstance(ext, dict) else None
    event = StoredEvent(ref, type_, browser_ref, session_ref, status, marker if isinstance(marker, str) else None)
    product = message.get("product") if isinstance(message, dict) else None
    if type_ == "ADD" and isinstance(product, dict):
        event.item = str(product.get("item_id"))
        event.quantity = int(product.get("quantity") or 0)
    return event


# --- the check ------------------------------------------------------------------------------------------------


@dataclass
class Check:
    """What the stored data says about everything sent so far (each list holds examples' descriptions)."""

    acknowledged: int = 0
    in_doubt: int = 0
    in_doubt_stored: int = 0
    rejected: int = 0
    stored: int = 0
    sessions: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    stored_rejected: list[str] = field(default_factory=list)
    not_processed: list[str] = field(default_factory=list)
    inconsistent_sessions: list[str] = field(default_factory=list)
    identity: list[str] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return (
            len(self.lost)
            + len(self.duplicated)
            + len(self.unknown)
            + len(self.stored_rejected)
            + len(self.not_processed)
            + len(self.inconsistent_sessions)
            + len(self.identity)
        )

    def summary(self) -> str:
        return (
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, inconsistent sessions "
            f"{len(self.inconsistent_sessions)}/{self.sessions}, unknown {len(self.unknown)}, stored despite an "
            f"error {len(self.stored_rejected)}, not processed {len(self.not_processed)}, identity "
            f"{len(self.identity)}"
        )

    def examples(self, limit: int = 5) -> list[str]:
        out: list[str] = []
        for name in (
            "lost",
            "duplicated",
            "unknown",
            "stored_rejected",
            "not_processed",
            "inconsistent_sessions",
            "identity",
        ):
            out += [f"{name}: {item}" for item in getattr(self, name)[:limit]]
        return out


def expected_cart(adds: list[StoredEvent]) -> list[tuple[str, int]]:
    """The cart the session's ADD events build, in send order: an item's last ADD replaces its line, at the end."""
    cart: list[tuple[str, int]] = []
    for event in sorted(adds, key=lambda e: seq_of(e.marker or "0.0")):
        if event.item is None or event.quantity is None:
            continue
        cart = [line for line in cart if line[0] != event.item]
        if event.quantity > 0:
            cart.append((event.item, event.quantity))
    return cart


def verify(
    sent: dict[str, Sent],
    events: list[StoredEvent],
    sessions: list[StoredSession],
    identities: dict[str, set[str]],
) -> Check:
    """Compare what was acknowledged with what is stored; ``identities`` maps a browser to its guest's emails."""
    check = Check(stored=len(events), sessions=len(sessions))
    by_marker: dict[str, list[StoredEvent]] = collections.defaultdict(list)
    for event in events:
        if event.marker is None or event.marker not in sent:
            check.unknown.append(f"event {event.ref} ({event.type}, marker {event.marker})")
            continue
        by_marker[event.marker].append(event)
        if event.status != "SUCCESS":
            check.not_processed.append(f"event {event.ref} marker {event.marker}: {event.status}")
    for marker, item in sent.items():
        stored = by_marker.get(marker, [])
        if len(stored) > 1:
            check.duplicated.append(f"marker {marker} ({item.state}) stored {len(stored)}x: {[e.ref for e in stored]}")
        if item.state == "acked":
            check.acknowledged += 1
            if not stored:
                check.lost.append(f"marker {marker} ({item.type}, round {item.round}) acknowledged as {item.event_ref}")
            elif item.event_ref not in {e.ref for e in stored}:
                refs = [e.ref for e in stored]
                check.lost.append(f"marker {marker} acknowledged as {item.event_ref} but stored as {refs}")
        elif item.state == "doubt":
            check.in_doubt += 1
            check.in_doubt_stored += bool(stored)
        else:
            check.rejected += 1
            if stored:
                check.stored_rejected.append(f"marker {marker} answered an error but stored as {stored[0].ref}")

    ours = [e for e in events if e.marker in sent]
    in_session: dict[str, list[StoredEvent]] = collections.defaultdict(list)
    for event in ours:
        if event.session_ref is None:
            check.inconsistent_sessions.append(f"event {event.ref} (marker {event.marker}) has no session")
        else:
            in_session[event.session_ref].append(event)
    for row in sessions:
        mine = in_session.pop(row.ref, [])
        problems: list[str] = []
        counts = collections.Counter(e.type for e in mine)
        for label, have, want in (
            ("num_events", row.num_events, len(mine)),
            ("num_views", row.num_views, counts["VIEW"]),
            ("num_adds", row.num_adds, counts["ADD"]),
        ):
            if have != want:
                problems.append(f"{label} {have} but {want} stored")
        if any(e.browser_ref != row.browser_ref for e in mine):
            problems.append("events of another browser")
        cart = [(str(line.get("itemId")), int(line.get("quantity") or 0)) for line in row.cart]
        want_cart = expected_cart([e for e in mine if e.type == "ADD"])
        if cart != want_cart:
            problems.append(f"cart {cart} but its ADDs make {want_cart}")
        if problems:
            check.inconsistent_sessions.append(f"session {row.ref}: " + "; ".join(problems))
    for ref, orphans in in_session.items():
        check.inconsistent_sessions.append(f"{len(orphans)} events point at a missing session {ref}")

    identified = {e.browser_ref for e in ours if e.type == "IDENTITY" and e.status == "SUCCESS"}
    for browser in sorted(identified):
        if email_of(browser) not in identities.get(browser, set()):
            check.identity.append(f"browser {browser}: its guest lacks the email identifier {email_of(browser)}")
    return check


async def read_database(database_url: str) -> tuple[list[StoredEvent], list[StoredSession], dict[str, set[str]]]:
    """Every event, session and browser email identifier, straight from the database."""
    from sqlalchemy import text

    from innkeeper.core.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT ref, type, browser_ref, session_ref, processing_status, raw FROM events")
            )
            events = [stored_event(*row) for row in rows]
            rows = await conn.execute(
                text("SELECT ref, browser_ref, num_events, num_views, num_adds, cart FROM sessions")
            )
            sessions = [
                StoredSession(ref, browser, n, views, adds, json.loads(cart) if isinstance(cart, str) else cart or [])
                for ref, browser, n, views, adds, cart in rows
            ]
            rows = await conn.execute(
                text(
                    "SELECT b.ref, gi.value FROM browsers b JOIN guest_identifiers gi ON gi.guest_ref = b.guest_ref "
                    "WHERE gi.provider = 'email'"
                )
            )
            identities: dict[str, set[str]] = collections.defaultdict(set)
            for browser, value in rows:
                identities[browser].add(value)
    finally:
        await engine.dispose()
    return events, sessions, identities


# --- the load and the kill ------------------------------------------------------------------------------------


@dataclass
class Round:
    number: int
    load_seconds: float = 0.0
    acked: int = 0
    in_doubt: int = 0
    in_flight_at_kill: int = 0
    errors_before_kill: list[str] = field(default_factory=list)
    restart_seconds: float = 0.0
    check: Check | None = None

    @property
    def rate(self) -> float:
        return self.acked / self.load_seconds if self.load_seconds else 0.0


async def load_and_kill(
    round_: Round,
    servers: list[Server],
    browsers: list[str],
    owned: list[list[int]],
    seqs: list[int],
    sent: dict[str, Sent],
    *,
    kill_after: float,
    identity_share: float,
    rng: random.Random,
) -> None:
    """Every connection sends its browsers' events back to back until every server is SIGKILLed."""
    killed = asyncio.Event()
    busy = [False] * len(owned)

    async def worker(w: int) -> None:
        port = servers[w % len(servers)].port
        conn = Connection("127.0.0.1", port)
        own_rng = random.Random(rng.random())
        try:
            while not killed.is_set():
                b = own_rng.choice(owned[w])
                seq = seqs[b]
                seqs[b] += 1
                message = event_message(own_rng, browsers[b], identity_share=identity_share)
                marker = marker_of(b, seq)
                message["ext"][MARKER] = marker
                item = Sent(marker, browsers[b], seq, str(message["type"]), round_.number)
                sent[marker] = item
                body = json.dumps(message, separators=(",", ":")).encode()
                raw = build_request("POST", "/v1.2/events", f"127.0.0.1:{port}", EVENT_HEADERS, body)
                busy[w] = True
                try:
                    status, _head, reply = await conn.send(raw)
                except HTTPError as exc:
                    item.state = "doubt"
                    round_.in_doubt += 1
                    if killed.is_set():
                        return  # the server is gone: this browser's next event waits for the next round
                    round_.errors_before_kill.append(f"transport error before the kill: {exc}")
                    await asyncio.sleep(0.05)
                    continue
                finally:
                    busy[w] = False
                if status == 201:
                    try:
                        ref = json.loads(reply)["event_ref"]
                    except (ValueError, KeyError, TypeError):
                        ref = None
                    item.state, item.event_ref = "acked", ref if isinstance(ref, str) else None
                    round_.acked += 1
                    if item.event_ref is None:
                        round_.errors_before_kill.append(f"201 without an event_ref: {reply[:200]!r}")
                else:
                    item.state = "rejected"
                    if not killed.is_set():
                        round_.errors_before_kill.append(f"{status} {reply[:200].decode('utf-8', 'replace')}")
        finally:
            await conn.close()

    async def killer() -> None:
        t0 = time.monotonic()
        await asyncio.sleep(kill_after)
        killed.set()
        round_.in_flight_at_kill = sum(busy)
        for server in servers:
            if server.proc is not None:
                os.kill(server.proc.pid, signal.SIGKILL)
        round_.load_seconds = time.monotonic() - t0
        for server in servers:
            if server.proc is not None:
                await asyncio.to_thread(server.proc.wait)

    await asyncio.gather(killer(), *(worker(w) for w in range(len(owned))))


# --- main ---------------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> tuple[list[Round], Check | None, int]:
    """All rounds on one database; returns the rounds, the final check and how many acknowledged events."""
    workdir = Path(tempfile.mkdtemp(prefix="innkeeper-bench-durability-"))
    url = database_url(args.db, workdir, "innkeeper_bench_durability")
    print(f"Innkeeper durability benchmark — {now_iso()}")
    print(f"  database:    {args.db} ({url})")
    print(
        f"  load:        {args.concurrency} keep-alive connections over {args.browsers} browsers, "
        f"{100 * args.identity_share:g}% IDENTITY then 70% VIEW / 30% ADD; SIGKILL after "
        f"{args.min_load:g}–{args.max_load:g}s; {args.rounds} rounds, {args.servers} serve process(es)"
        + ("  [--quick]" if args.quick else "")
    )
    print(f"  machine:     {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"  workdir:     {workdir}")
    rng = random.Random(args.seed)
    rounds: list[Round] = []
    sent: dict[str, Sent] = {}
    final: Check | None = None
    servers: list[Server] = []
    with fresh_database(args.db, url, workdir, keep=args.keep):
        loop = new_loop()
        try:
            print("  starting innkeeper serve (migrations run on start)…", flush=True)
            servers = start_servers("innkeeper", SERVE, args.servers, url, workdir)
            t0 = time.monotonic()
            browsers = loop.run_until_complete(create_browsers(servers[0].port, args.browsers, args.concurrency))
            print(f"  created {len(browsers)} browsers in {time.monotonic() - t0:.1f}s (not timed)", flush=True)
            owned = [list(range(w, len(browsers), args.concurrency)) for w in range(args.concurrency)]
            owned = [share for share in owned if share]
            seqs = [0] * len(browsers)
            for number in range(1, args.rounds + 1):
                round_ = Round(number)
                kill_after = rng.uniform(args.min_load, args.max_load)
                loop.run_until_complete(
                    load_and_kill(
                        round_,
                        servers,
                        browsers,
                        owned,
                        seqs,
                        sent,
                        kill_after=kill_after,
                        identity_share=args.identity_share,
                        rng=rng,
                    )
                )
                t1 = time.monotonic()
                servers = start_servers(f"innkeeper-r{number}", SERVE, args.servers, url, workdir, parallel=True)
                round_.restart_seconds = time.monotonic() - t1
                events, sessions, identities = loop.run_until_complete(read_database(url))
                round_.check = final = verify(sent, events, sessions, identities)
                rounds.append(round_)
                check = round_.check
                print(
                    f"  round {number}: SIGKILL after {round_.load_seconds:.1f}s at {round_.rate:.0f} events/s with "
                    f"{round_.in_flight_at_kill} requests in flight; {round_.acked} acknowledged, "
                    f"{round_.in_doubt} in doubt; restart {round_.restart_seconds:.1f}s; all rounds so far: "
                    f"{check.acknowledged} acknowledged, {check.in_doubt_stored}/{check.in_doubt} in doubt stored, "
                    f"{check.summary()}",
                    flush=True,
                )
                for line in round_.errors_before_kill[:5]:
                    print(f"    ! {line[:200]}")
                for line in check.examples():
                    print(f"    ! {line[:300]}")
        finally:
            for server in servers:
                server.stop()
            loop.close()
    return rounds, final, len(sent)


def results(scenario: str, rounds: list[Round], final: Check | None) -> list[_results.Result]:
    """The BENCH_RESULT rows: losses, duplicates and inconsistencies over all rounds (targets 0), kills under load."""
    if final is None:
        return []
    per_round = "; ".join(
        f"r{r.number}: {r.acked} acked, {r.in_flight_at_kill} in flight at kill after {r.load_seconds:.1f}s, "
        f"restart {r.restart_seconds:.1f}s"
        for r in rounds
    )
    killed_busy = sum(1 for r in rounds if r.in_flight_at_kill > 0)
    errors = sum(len(r.errors_before_kill) for r in rounds)
    other = len(final.unknown) + len(final.stored_rejected) + len(final.not_processed) + len(final.identity)
    return [
        _results.Result(scenario, "lost acknowledged events", len(final.lost), "events", target=0, comparison="<="),
        _results.Result(scenario, "duplicated events", len(final.duplicated), "events", target=0, comparison="<="),
        _results.Result(
            scenario,
            "inconsistent sessions/carts",
            len(final.inconsistent_sessions),
            "sessions",
            target=0,
            comparison="<=",
            note=f"{final.sessions} sessions checked",
        ),
        _results.Result(
            scenario,
            "other anomalies",
            other + errors,
            "count",
            target=0,
            comparison="<=",
            note="unknown/unprocessed/error-but-stored events, identity mismatches, errors before the kill",
        ),
        _results.Result(
            scenario,
            "kills with requests in flight",
            killed_busy,
            "rounds",
            target=len(rounds),
            comparison=">=",
            note=per_round,
        ),
        _results.Result(
            scenario,
            "acknowledged events checked",
            final.acknowledged,
            "events",
            note=f"{final.in_doubt_stored} of {final.in_doubt} in-doubt events stored (allowed either way)",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Innkeeper durability benchmark (kill -9 under ingest load, then check every acknowledged event)."
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, help="kill/restart rounds on the same database (default 5; --quick 2)")
    parser.add_argument("--servers", type=int, default=1, help="innkeeper serve processes, all killed (default 1)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"keep-alive connections (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--browsers", type=int, help=f"browsers (default {BROWSERS}; --quick 100)")
    parser.add_argument("--identity-share", type=float, default=IDENTITY_SHARE, help="share of IDENTITY events")
    parser.add_argument(
        "--min-load", type=float, help="shortest load before the kill, seconds (default 3; --quick 0.5)"
    )
    parser.add_argument("--max-load", type=float, help="longest load before the kill, seconds (default 8; --quick 1.5)")
    parser.add_argument("--seed", type=int, help="random seed (kill moments, event mix); default: random")
    parser.add_argument("--quick", action="store_true", help="2 short rounds on 100 browsers: checks the harness")
    parser.add_argument("--scenario", help="scenario id in the BENCH_RESULT line (default durability-<db>)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir / PostgreSQL database afterwards")
    args = parser.parse_args()
    quick_defaults(args, rounds=(5, 2), browsers=(BROWSERS, 100), min_load=(3.0, 0.5), max_load=(8.0, 1.5))
    args.seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    if args.rounds < 1 or args.servers < 1 or args.max_load < args.min_load:
        parser.error("--rounds and --servers must be ≥ 1, --max-load ≥ --min-load")

    rounds, final, sent = run(args)
    scenario = args.scenario or f"durability-{args.db}"
    print()
    if final is None:
        print("  no round completed")
        return 1
    print(
        f"  {len(rounds)} rounds (seed {args.seed}): {sent} events sent, {final.acknowledged} acknowledged, "
        f"{final.in_doubt} in doubt ({final.in_doubt_stored} stored), {final.stored} stored; {final.summary()}"
    )
    _results.emit(results(scenario, rounds, final), quick=args.quick)
    errors = [line for r in rounds for line in r.errors_before_kill]
    if final.problems or errors:
        print()
        print("!" * 78)
        print(f"!!  DURABILITY FAILED: {final.summary()}; {len(errors)} errors before the kill")
        for line in (final.examples() + errors)[:10]:
            print(f"!!    {line[:300]}")
        print("!" * 78)
        return 1
    print("  every acknowledged event is stored exactly once; sessions and carts match their events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
