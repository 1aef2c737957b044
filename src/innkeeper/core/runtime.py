"""What every entry point hands down: settings, the unit-of-work factory, the clock."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from innkeeper.core.clock import Clock
from innkeeper.core.config import Settings


@dataclass(slots=True)
class Runtime:
    """Process-wide dependencies, built once in create_app / the CLI / the worker."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    client_key: str = ""


# Allocations between the collector's young passes in a server (CPython's default: 700). A request leaves a few
# dozen objects in reference cycles (ORM state, tasks, exceptions); at 700 a young pass ran every few requests,
# and every tenth of the tenth a full one, which walks every object the process keeps (~10-25 ms in a callFlows
# server, the p99 of its calls at half load). Cyclic garbage is still collected, only in larger passes.
SERVER_GC_THRESHOLD = 10_000


def freeze_long_lived_objects() -> None:
    """Take every object alive now out of the garbage collector's full passes, and make its passes rarer.

    Call it once a server has started: what exists then (modules, routes, templates, caches) lives as
    long as the process, and scanning it again in each full collection stalls a large request (a
    5,000-event timeline) by tens to hundreds of milliseconds.
    """
    gc.collect()
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(max(threshold[0], SERVER_GC_THRESHOLD), *threshold[1:])
