"""What the app gives PostgreSQL: SQLAlchemy's statements and the fast reads that go straight to asyncpg."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import event as sa_event

from innkeeper.core import sqlite_fast
from innkeeper.core.runtime import Runtime


@contextlib.contextmanager
def postgres_statements(runtime: Runtime, callback: Callable[[str, Sequence[Any]], None]) -> Iterator[None]:
    """``callback(statement, parameters)`` for every statement run meanwhile: through SQLAlchemy (its
    ``before_cursor_execute`` event) or straight on asyncpg (``core.sqlite_fast``'s reads, past that event)."""

    def through_sqlalchemy(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        callback(statement, list(params.values()) if isinstance(params, dict) else list(params or ()))

    fetch = sqlite_fast._asyncpg_fetch

    async def straight(found: Any, sql: str, values: Sequence[Any]) -> Any:
        callback(sql, list(values))
        return await fetch(found, sql, values)

    sa_event.listen(runtime.engine.sync_engine, "before_cursor_execute", through_sqlalchemy)
    sqlite_fast._asyncpg_fetch = straight
    try:
        yield
    finally:
        sqlite_fast._asyncpg_fetch = fetch
        sa_event.remove(runtime.engine.sync_engine, "before_cursor_execute", through_sqlalchemy)
