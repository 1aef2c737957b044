"""How fast this machine is at what the targets depend on, measured before the scenarios run.

    .venv/bin/python benchmarks/_machine.py [--seconds 10] [--dir /tmp]

Absolute targets (milliseconds, seconds) depend on the machine as much as on Innkeeper, and the machines these
benchmarks run on differ (session 11's was three times slower than session 10's). Two probes make runs comparable:

- **CPU**: the seconds a pure-Python loop of 10 M additions takes (best of three).
- **Durable writes**: 8 KiB appended to a file and ``fdatasync``ed, over and over, for a few seconds, in the
  directory the scenarios keep their SQLite files in (PostgreSQL's WAL is usually on the same disk). Every event
  Innkeeper acknowledges waits for such a sync (SQLite ``synchronous=FULL``, PostgreSQL ``fsync=on``), so a disk
  that stalls now and then for 100-200 ms puts those stalls into every p99 measured at a steady rate: the
  requests that arrive during a stall wait for it. The probe reports the latency percentiles, the longest sync
  and the stalls over 30 ms per minute.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import percentile

STALL_MS = 30.0


def cpu_loop_seconds(n: int = 10_000_000, *, repeat: int = 3) -> float:
    """The best of ``repeat`` timings of a pure-Python loop of ``n`` additions."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        total = 0
        for i in range(n):
            total += i
        best = min(best, time.perf_counter() - start)
    return best


def sync_latencies(seconds: float, directory: Path, *, block: int = 8192) -> list[float]:
    """Milliseconds of each ``fdatasync`` after appending ``block`` bytes, for ``seconds``."""
    fd, name = tempfile.mkstemp(prefix="innkeeper-sync-probe-", dir=directory)
    data = os.urandom(block)
    latencies: list[float] = []
    try:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            os.write(fd, data)
            start = time.perf_counter()
            os.fdatasync(fd)
            latencies.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
        os.unlink(name)
    return latencies


def sync_profile(latencies: list[float], seconds: float) -> dict[str, Any]:
    """The summary written with the results: percentiles, the longest sync, stalls over STALL_MS per minute."""
    ordered = sorted(latencies)
    stalls = sum(1 for ms in latencies if ms > STALL_MS)
    return {
        "syncs": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 3),
        "p99_ms": round(percentile(ordered, 99), 3),
        "max_ms": round(ordered[-1], 1) if ordered else None,
        "stalls_over_30ms_per_minute": round(stalls * 60 / seconds, 1) if seconds > 0 else None,
    }


def probe(*, seconds: float, directory: Path | None = None, additions: int = 10_000_000) -> dict[str, Any]:
    """Both probes: ``{"cpu_loop_10m_s": …, "fdatasync": {…}}`` (the loop's time scaled to 10 M additions)."""
    where = directory or Path(tempfile.gettempdir())
    return {
        "cpu_loop_10m_s": round(cpu_loop_seconds(additions) * 10_000_000 / additions, 3),
        "fdatasync": {"dir": str(where), **sync_profile(sync_latencies(seconds, where), seconds)},
    }


def describe(facts: dict[str, Any]) -> str:
    """One line for the run's header."""
    sync = facts["fdatasync"]
    return (
        f"CPU: 10 M additions in {facts['cpu_loop_10m_s']:.2f} s; fdatasync of 8 KiB in {sync['dir']}: "
        f"p50 {sync['p50_ms']:.2f} ms, p99 {sync['p99_ms']:.2f} ms, max {sync['max_ms']:.0f} ms, "
        f"{sync['stalls_over_30ms_per_minute']:.0f} stalls over 30 ms a minute"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the sync probe runs (default 10)")
    parser.add_argument("--dir", type=Path, help="where the probe's file goes (default: the temp directory)")
    args = parser.parse_args(argv)
    print(describe(probe(seconds=args.seconds, directory=args.dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
