"""In-process domain events: per-event and batch subscribers, ``publish`` and ``publish_many``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from innkeeper.core import events


@dataclass(frozen=True)
class Ping:
    n: int


@dataclass(frozen=True)
class Pong:
    n: int


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """A clean subscriber registry (the real one is module-global), and what the handlers saw."""
    monkeypatch.setattr(events, "_handlers", defaultdict(list))
    monkeypatch.setattr(events, "_batch_handlers", defaultdict(list))
    seen: list[tuple[str, Any]] = []

    @events.subscribe(Ping)
    async def one(_session: Any, event: Ping) -> None:
        seen.append(("one", event.n))

    @events.subscribe_many(Ping)
    async def many(_session: Any, batch: Sequence[Ping]) -> None:
        seen.append(("many", [event.n for event in batch]))

    return seen


async def test_publish_hands_batch_subscribers_a_list_of_one(calls: list[tuple[str, Any]]) -> None:
    await events.publish(None, Ping(1))  # type: ignore[arg-type]

    assert calls == [("one", 1), ("many", [1])]


async def test_publish_many_runs_each_event_handler_per_event_and_each_batch_handler_once(
    calls: list[tuple[str, Any]],
) -> None:
    await events.publish_many(None, [Ping(1), Ping(2), Ping(3)])  # type: ignore[arg-type]

    assert calls == [("one", 1), ("one", 2), ("one", 3), ("many", [1, 2, 3])]


async def test_publish_many_of_nothing_calls_nobody(calls: list[tuple[str, Any]]) -> None:
    await events.publish_many(None, [])  # type: ignore[arg-type]

    assert calls == []


async def test_publish_many_takes_one_type_at_a_time(calls: list[tuple[str, Any]]) -> None:
    with pytest.raises(TypeError):
        await events.publish_many(None, [Ping(1), Pong(2)])  # type: ignore[arg-type]
    assert calls == []


async def test_subscribing_twice_registers_once(calls: list[tuple[str, Any]]) -> None:
    handler = events._batch_handlers[Ping][0]
    events.subscribe_many(Ping)(handler)

    await events.publish_many(None, [Ping(7)])  # type: ignore[arg-type]

    assert calls == [("one", 7), ("many", [7])]
