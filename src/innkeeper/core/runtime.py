"""What every entry point hands down: settings, the unit-of-work factory, the clock."""

from __future__ import annotations

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
