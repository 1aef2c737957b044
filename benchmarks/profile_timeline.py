"""Time (and profile) the guest timeline read in one process, on a database kept by ``reads.py --keep``.

    .venv/bin/python benchmarks/reads.py --db sqlite --keep          # prints the kept database's URL
    .venv/bin/python benchmarks/profile_timeline.py sqlite+aiosqlite:////tmp/innkeeper-bench-reads-…/bench.db
    .venv/bin/py-spy record -r 100 -f raw -o out.pyspy.txt -- .venv/bin/python benchmarks/profile_timeline.py URL

Runs what ``reads.py`` times for the timeline (``guests.get_guest``, ``guests.identifiers_of``,
``sessions.views.timeline``) for the benchmark's 5,000-event guest, ``--warm-up`` then ``--iterations`` times,
and prints the wall and CPU p50/p95 in milliseconds. Used for the interleaved A/B runs and the session 11 profiles
(``profiles/README.md``): run it with ``PYTHONPATH`` pointing at another checkout's ``src`` against a database that
checkout's ``reads.py`` seeded, alternating the two.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from sqlalchemy import text

from innkeeper.core.db import create_engine, session_factory
from innkeeper.guests import service as guests
from innkeeper.sessions import views

_BIG_GUEST = "SELECT guest_ref FROM sessions GROUP BY guest_ref ORDER BY count(*) DESC LIMIT 1"


async def main(url: str, iterations: int, warm_up: int) -> None:
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session:  # reads.py's 5,000-event guest: the one with the most sessions
        big_guest = (await session.execute(text(_BIG_GUEST))).scalar_one()

    async def one() -> None:
        async with sessions() as session:
            guest = await guests.get_guest(session, big_guest)
            await guests.identifiers_of(session, guest.ref)
            await views.timeline(session, guest.ref)

    try:
        for _ in range(warm_up):
            await one()
        walls, cpus = [], []
        for _ in range(iterations):
            wall, cpu = time.perf_counter(), time.process_time()
            await one()
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
    finally:
        await engine.dispose()
    walls.sort()
    cpus.sort()
    n = len(walls)
    print(f"wall p50 {walls[n // 2]:.1f} p95 {walls[n * 95 // 100]:.1f} ms; cpu p50 {cpus[n // 2]:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "url", help="the kept database (SQLAlchemy URL: sqlite+aiosqlite:///… or postgresql+asyncpg://…)"
    )
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--warm-up", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.iterations, args.warm_up))
