"""Run every issue-8 benchmark scenario, print one table of measured values against the targets, write it as JSON.

    .venv/bin/python benchmarks/run.py                       # everything, full size (make bench)
    .venv/bin/python benchmarks/run.py --quick               # tiny sizes: checks the harness only (make bench-quick)
    .venv/bin/python benchmarks/run.py --only ingest durability-sqlite
    .venv/bin/python benchmarks/run.py --list

Each scenario is one script run as a subprocess (`python benchmarks/<script> <args> [--quick]`, output streamed
and kept in `benchmarks/results/logs/<scenario>.log`); its last `BENCH_RESULT {json}` line (see `_results.py`)
gives the rows of the table: scenario | metric | measured | target | baseline | ratio | pass/miss.

The table and the machine it ran on (date, git commit, cores, Python, load average) are written to
`benchmarks/results/latest.json` (`latest-quick.json` with `--quick`; `--json PATH` to choose).

A scenario whose script does not exist yet is listed as "not run: script missing". The exit status is 1 only if a
scenario crashed: it exited non-zero (the server answered wrongly, an acknowledged event was lost, the harness
broke), printed no BENCH_RESULT line, or ran past `--timeout`. Missed targets show as MISS in the table and do
not change the exit status, in `--quick` mode (where the numbers mean nothing) or not.

PostgreSQL scenarios get a database of their own, derived from INNKEEPER_BENCH_DATABASE_URL (default
postgresql://postgres@127.0.0.1:5432/innkeeper_bench): `<name>_<scenario>`, e.g. `innkeeper_bench_ingest_postgres`,
wiped before and dropped after. When PostgreSQL is unreachable they are "not run" (a crash under
INNKEEPER_NO_SKIP=1, as in CI).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import _machine
from _results import PREFIX, Result, parse, to_dict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/innkeeper_bench"


@dataclass(frozen=True)
class Scenario:
    """One line of issue 8's targets: a script and its arguments."""

    id: str
    script: str
    args: tuple[str, ...]
    measures: str
    postgres: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "ingest-sqlite",
        "ingest.py",
        ("--db", "sqlite"),
        "POST /v1.2/events, 1 serve process on SQLite vs the bare endpoint: max events/s ≥ 0.5× bare; "
        "p99 ≤ 25 ms at half the max",
    ),
    Scenario(
        "ingest-postgres",
        "ingest.py",
        ("--db", "postgres", "--servers", "2"),
        "the same with 2 serve processes on PostgreSQL (and 2 bare processes)",
        postgres=True,
    ),
    Scenario(
        "durability-sqlite",
        "durability.py",
        ("--db", "sqlite"),
        "kill -9 under full ingest load, restart, ×5: every 2xx stored exactly once, sessions/carts consistent",
    ),
    Scenario(
        "durability-postgres",
        "durability.py",
        ("--db", "postgres", "--servers", "2"),
        "the same on PostgreSQL with 2 serve processes (both killed)",
        postgres=True,
    ),
    Scenario(
        "callflows-sqlite",
        "callflows.py",
        ("--db", "sqlite"),
        "POST /v2/callFlows, 20 live flows, guests with 50 sessions, SQLite: ≥ 0.5× bare; p99 ≤ 15 ms at half the max",
    ),
    Scenario(
        "callflows-postgres",
        "callflows.py",
        ("--db", "postgres"),
        "the same on PostgreSQL",
        postgres=True,
    ),
    Scenario(
        "batch-sqlite",
        "batch.py",
        ("--db", "sqlite"),
        "the ~50 MB gzipped batch file imported by one worker in ≤ 60 s, worker peak RSS ≤ 300 MB",
    ),
    Scenario(
        "batch-postgres",
        "batch.py",
        ("--db", "postgres"),
        "the same on PostgreSQL",
        postgres=True,
    ),
    Scenario(
        "sweeper-sqlite",
        "sweeper.py",
        ("--db", "sqlite"),
        "100,000 expired sessions closed (outcomes and outbox rows written) in ≤ 10 s",
    ),
    Scenario(
        "sweeper-postgres",
        "sweeper.py",
        ("--db", "postgres"),
        "the same on PostgreSQL",
        postgres=True,
    ),
    Scenario(
        "reads-sqlite",
        "reads.py",
        ("--db", "sqlite"),
        "guest timeline with 5,000 events among 1,000,000: p95 ≤ 20 ms; guest lookup by browser id / email p95 ≤ 5 ms",
    ),
    Scenario(
        "reads-postgres",
        "reads.py",
        ("--db", "postgres"),
        "the same on PostgreSQL",
        postgres=True,
    ),
    Scenario(
        "portal-timeline-sqlite",
        "portal_timeline.py",
        ("--db", "sqlite"),
        "portal timeline page of a guest with 5,000 events < 300 ms",
    ),
    Scenario(
        "portal-timeline-postgres",
        "portal_timeline.py",
        ("--db", "postgres"),
        "the same on PostgreSQL",
        postgres=True,
    ),
)

Status = Literal["ok", "failed", "crashed", "timeout", "missing", "skipped"]
CRASHES: tuple[Status, ...] = ("failed", "crashed", "timeout")


@dataclass
class Outcome:
    """What running one scenario gave."""

    scenario: Scenario
    status: Status
    detail: str = ""
    exit_code: int | None = None
    seconds: float = 0.0
    command: list[str] = field(default_factory=list)
    log: Path | None = None
    results: list[Result] = field(default_factory=list)

    @property
    def crashed(self) -> bool:
        return self.status in CRASHES


# --- running ----------------------------------------------------------------------------------------------------


def pg_url_for(scenario: Scenario, base: str) -> str:
    """The scenario's own PostgreSQL database: the base URL's database name + `_<scenario id>`."""
    head, _, name = base.rpartition("/")
    name, _, query = name.partition("?")
    suffix = scenario.id.replace("-", "_")
    return f"{head}/{name or 'innkeeper_bench'}_{suffix}" + (f"?{query}" if query else "")


def pg_reachable(url: str, timeout: float = 2.0) -> bool:
    """Whether something listens at the URL's host and port (the scripts report anything finer)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=timeout):
            return True
    except OSError:
        return False


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Stop the scenario and the servers it started (its own process group)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


def run_scenario(scenario: Scenario, *, quick: bool, timeout: float, pg_base: str, echo: bool = True) -> Outcome:
    """Run one scenario script, stream its output, collect its BENCH_RESULT rows."""
    script = HERE / scenario.script
    if not script.exists():
        return Outcome(scenario, "missing", "not run: script missing")
    command = [sys.executable, str(script), *scenario.args, *(["--quick"] if quick else [])]
    outcome = Outcome(scenario, "ok", command=command)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if scenario.postgres:
        url = pg_url_for(scenario, pg_base)
        if not pg_reachable(url):
            status: Status = "crashed" if os.environ.get("INNKEEPER_NO_SKIP") == "1" else "skipped"
            return Outcome(scenario, status, f"not run: PostgreSQL unreachable at {url}", command=command)
        env["INNKEEPER_BENCH_DATABASE_URL"] = url
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    outcome.log = logs / f"{scenario.id}{'-quick' if quick else ''}.log"
    print(f"\n=== {scenario.id}: {' '.join([Path(command[0]).name, *command[1:]])}", flush=True)
    started = time.monotonic()
    timed_out = threading.Event()
    lines: list[str] = []
    with (
        outcome.log.open("w") as log,
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # its servers are in its process group: a timeout stops them all
        ) as proc,
    ):

        def expire() -> None:
            timed_out.set()
            _kill_group(proc)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                lines.append(line)
                if echo and not line.startswith(PREFIX):
                    print(f"  │ {line.rstrip()}", flush=True)
            proc.wait()
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            timer.cancel()
    outcome.seconds = time.monotonic() - started
    outcome.exit_code = proc.returncode
    try:
        outcome.results, _ = parse("".join(lines))
    except (ValueError, KeyError, TypeError) as exc:
        outcome.status, outcome.detail = "crashed", f"unreadable BENCH_RESULT line: {exc}"
        return outcome
    if timed_out.is_set():
        outcome.status, outcome.detail = "timeout", f"stopped after {timeout:.0f}s (--timeout)"
    elif proc.returncode != 0:
        outcome.status, outcome.detail = "failed", f"exit status {proc.returncode} (see {_rel(outcome.log)})"
    elif not outcome.results:
        outcome.status, outcome.detail = "crashed", f"no BENCH_RESULT line (see {_rel(outcome.log)})"
    return outcome


# --- the table -------------------------------------------------------------------------------------------------


def fmt_number(value: float | None) -> str:
    """Compact, readable numbers: 14,995 · 812 · 25.3 · 4.21 · 0.054."""
    if value is None:
        return "—"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def fmt_target(result: Result) -> str:
    if result.target is None or result.comparison is None:
        return "—"
    sign = "≥" if result.comparison == ">=" else "≤"
    if result.target_on == "ratio":
        return f"{sign} {result.target:g}× baseline"
    return f"{sign} {result.target:g} {result.unit}".rstrip()


def verdict(result: Result) -> str:
    if result.passed is None:
        return "info" if result.target is None else "—"
    return "pass" if result.passed else "MISS"


def table_rows(outcomes: list[Outcome]) -> list[list[str]]:
    """One row per result; a scenario without results gets one row saying why."""
    rows: list[list[str]] = []
    for outcome in outcomes:
        sid = outcome.scenario.id
        for result in outcome.results:
            rows.append(
                [
                    result.scenario if result.scenario == sid else f"{sid} ({result.scenario})",
                    result.metric,
                    f"{fmt_number(result.value)} {result.unit}".rstrip(),
                    fmt_target(result),
                    f"{fmt_number(result.baseline)} {result.unit}".rstrip() if result.baseline is not None else "—",
                    fmt_number(result.ratio) if result.ratio is not None else "—",
                    verdict(result),
                ]
            )
        if outcome.status != "ok":
            why = outcome.detail or outcome.status
            if outcome.status in CRASHES:
                why = f"CRASHED: {why}"
            rows.append([sid, "—", "—", "—", "—", "—", why])
    return rows


HEADER = ["scenario", "metric", "measured", "target", "baseline", "ratio", "pass/miss"]


def render_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [HEADER, *rows]) for i in range(len(HEADER))]
    right = {2, 4, 5}

    def line(cells: list[str]) -> str:
        out = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return " | ".join(out).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(HEADER), rule, *(line(row) for row in rows)])


def notes(outcomes: list[Outcome]) -> list[str]:
    return [f"{r.scenario} / {r.metric}: {r.note}" for o in outcomes for r in o.results if r.note]


# --- the JSON file -----------------------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in load] if load else None,
    }


def report(outcomes: list[Outcome], *, quick: bool, started: datetime, start_machine: dict[str, Any]) -> dict[str, Any]:
    status = _git("status", "--porcelain")
    return {
        "date": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "git": {"commit": _git("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None},
        "machine": {**start_machine, "load_average_at_end": machine()["load_average"]},
        "crashed": [o.scenario.id for o in outcomes if o.crashed],
        "scenarios": [
            {
                "id": o.scenario.id,
                "measures": o.scenario.measures,
                "status": o.status,
                "detail": o.detail,
                "exit_code": o.exit_code,
                "seconds": round(o.seconds, 1),
                "command": [Path(o.command[0]).name, *o.command[1:]] if o.command else None,
                "log": _rel(o.log) if o.log else None,
                "results": [to_dict(r) for r in o.results],
            }
            for o in outcomes
        ],
        "table": [dict(zip(HEADER, row, strict=True)) for row in table_rows(outcomes)],
    }


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# --- main -----------------------------------------------------------------------------------------------------------


def select(only: list[str] | None) -> list[Scenario]:
    """The scenarios named (exact ids, or prefixes like `ingest` for ingest-sqlite and ingest-postgres)."""
    if not only:
        return list(SCENARIOS)
    picked: list[Scenario] = []
    for name in only:
        matches = [s for s in SCENARIOS if s.id == name] or [s for s in SCENARIOS if s.id.startswith(name)]
        if not matches:
            known = ", ".join(s.id for s in SCENARIOS)
            raise SystemExit(f"run.py: no scenario {name!r} (known: {known})")
        picked += [s for s in matches if s not in picked]
    return picked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the issue-8 benchmarks and print one table.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness works, not the numbers")
    parser.add_argument("--only", nargs="+", metavar="SCENARIO", help="scenario ids or prefixes (see --list)")
    parser.add_argument("--json", type=Path, help="where to write the results (default results/latest[-quick].json)")
    parser.add_argument("--timeout", type=float, help="seconds per scenario before it is stopped (3600; --quick 600)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            there = "" if (HERE / s.script).exists() else "   [script missing]"
            print(f"{s.id:<20} {s.script} {' '.join(s.args)}{there}\n{'':<20} {s.measures}")
        return 0
    scenarios = select(args.only)
    timeout = args.timeout or (600.0 if args.quick else 3600.0)
    pg_base = os.environ.get("INNKEEPER_BENCH_DATABASE_URL") or DEFAULT_PG
    started = datetime.now(UTC)
    start_machine = machine()
    print(
        f"Innkeeper benchmarks{' (--quick: harness check, the numbers mean nothing)' if args.quick else ''} — "
        f"{started.isoformat(timespec='seconds')}, {start_machine['cores']} cores, Python {start_machine['python']}, "
        f"load average {start_machine['load_average']}"
    )
    # The machine's speed at what the absolute targets depend on (see _machine.py), written with the results.
    start_machine["probe"] = _machine.probe(seconds=1.0 if args.quick else 10.0)
    print(f"  {_machine.describe(start_machine['probe'])}", flush=True)
    outcomes: list[Outcome] = []
    for scenario in scenarios:
        outcome = run_scenario(scenario, quick=args.quick, timeout=timeout, pg_base=pg_base)
        if outcome.status in ("missing", "skipped"):
            print(f"\n=== {scenario.id}: {outcome.detail}", flush=True)
        elif outcome.status != "ok":
            print(f"=== {scenario.id}: {outcome.status.upper()}: {outcome.detail}", flush=True)
        outcomes.append(outcome)

    print()
    print(render_table(table_rows(outcomes)))
    lines = notes(outcomes)
    if lines:
        print()
        for note in lines:
            print(f"  {note}")
    data = report(outcomes, quick=args.quick, started=started, start_machine=start_machine)
    out = args.json or RESULTS / ("latest-quick.json" if args.quick else "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    crashed = [o.scenario.id for o in outcomes if o.crashed]
    print()
    print(f"written to {_rel(out)}; git {data['git']['commit']}{' (dirty)' if data['git']['dirty'] else ''}")
    if crashed:
        print(f"CRASHED: {', '.join(crashed)} (exit status 1)")
        return 1
    if args.quick:
        print("harness OK (--quick: targets are not checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
