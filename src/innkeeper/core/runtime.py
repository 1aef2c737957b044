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


def freeze_long_lived_objects() -> None:
    """Take every object alive now out of the garbage collector's full passes.

    Call it once a server has started: what exists then (modules, routes, templates, caches) lives as
    long as the process, and scanning it again in each full collection stalls a large request (a
    5,000-event timeline) by tens to hundreds of milliseconds.
    """
    gc.collect()
    gc.freeze()
