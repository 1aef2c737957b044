"""JSON columns are written and read by msgspec (core.db.json_text / json_value), on every dialect."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.db import json_text, json_value
from innkeeper.core.runtime import Runtime

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(_json)
def test_what_is_written_reads_back_equal(value: Any) -> None:
    assert json_value(json_text(value)) == value


def test_rows_written_by_json_dumps_still_read() -> None:
    # Earlier releases stored json.dumps text: spaces after separators, NaN for a float NaN, big numbers.
    assert json_value('{"a": [1, 2.5], "b": "x"}') == {"a": [1, 2.5], "b": "x"}
    assert math.isnan(json_value('{"v": NaN}')["v"])
    assert json_value("[1e400]") == [math.inf]
    assert json_value(b'{"k": 123456789012345678901234567890}') == {"k": 123456789012345678901234567890}


def test_a_value_json_cannot_hold_is_refused() -> None:
    with pytest.raises(TypeError):
        json_text({(1, 2): "tuple keys"})
    with pytest.raises(TypeError):
        json_text({"x": object()})


async def test_a_session_json_column_round_trips_through_the_database(runtime: Runtime, db: AsyncSession) -> None:
    from innkeeper.tenant import service as tenant

    settings = await tenant.get_tenant(db)
    rules = [{"name": "Email é ✓", "provider": "email", "nested": {"n": [1, 2.5, None, True]}}]
    settings.identity_rules = rules
    await db.flush()
    await db.commit()
    async with runtime.sessions() as other:
        stored = (await other.execute(text("SELECT identity_rules FROM tenant"))).scalar_one()
        # Read through the engine's deserializer (JSONB on PostgreSQL, text on SQLite): the same value.
        fresh = await tenant.get_tenant(other)
        assert fresh.identity_rules == rules
        if isinstance(stored, str):  # SQLite keeps the text msgspec wrote: compact
            assert stored == json_text(rules)


def test_sqlite_date_times_are_parsed_in_one_call_and_other_forms_as_before() -> None:
    from datetime import UTC, datetime

    from sqlalchemy.dialects import sqlite

    from innkeeper.core.db import UTCDateTime

    utc = UTCDateTime()._cached_result_processor(sqlite.dialect(), None)
    assert utc is not None
    # The form SQLAlchemy writes (always microseconds): the one-call path.
    assert utc("2026-03-01 12:00:00.000001") == datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC)
    # Anything else (a row written by hand, without microseconds): SQLAlchemy's parse, then UTC.
    assert utc("2026-03-01 12:00:00") == datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert utc(None) is None
