"""The guest context keeps each closed session it built (closed sessions never change) and reads the rest per call.

Every test compares against the context built with no kept sessions at all (``cached_sessions=0``), on both
stores: what a call sees must not depend on what the process kept.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, update

from innkeeper.core.runtime import Runtime
from innkeeper.guests import service as guests
from innkeeper.personalize.experiences.context import ClosedSessions, closed_sessions, guest_context
from innkeeper.sessions.models import Event, Session
from tests.conftest import POINT_OF_SALE
from tests.factories.flow_calls import identified_browser
from tests.factories.stream import create_browser, event, post_event, product
from tests.support.clock import FrozenClock

EMAIL = "kept@example.com"


async def _guest_ref(runtime: Runtime, browser_ref: str) -> str:
    async with runtime.sessions() as db:
        return (await guests.get_browser(db, browser_ref)).guest_ref


async def _contexts(runtime: Runtime, guest_ref: str, *, event_data: bool = False) -> tuple[Any, Any, int]:
    """(the context with kept sessions, the context read afresh, how many sessions the process keeps)."""
    needs = {"sessions", "event_data"} if event_data else {"sessions"}
    async with runtime.sessions() as db:
        guest = await guests.find_live_guest(db, ref=guest_ref)
        assert guest is not None
        kept = await guest_context(db, guest, needs=needs)
        fresh = await guest_context(db, guest, needs=needs, cached_sessions=0)
        cache = closed_sessions(db, 10)
        assert cache is not None
        return kept, fresh, len(cache)


def _shape(context: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    return [(item["status"], item["pointOfSale"], [e["type"] for e in item["events"]]) for item in context["sessions"]]


async def test_a_guests_life_reads_the_same_with_and_without_kept_sessions(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    browser = (await identified_browser(client, EMAIL))["ref"]
    guest_ref = await _guest_ref(runtime, browser)
    clock.advance(seconds=1)
    await post_event(client, event(browser, "VIEW", page="/one"))

    kept, fresh, size = await _contexts(runtime, guest_ref)
    assert kept == fresh and _shape(kept) == [("OPEN", POINT_OF_SALE, ["IDENTITY", "VIEW"])] and size == 0

    clock.advance(seconds=1)
    await post_event(client, event(browser, "ADD", product=product()))
    clock.advance(seconds=1)
    await post_event(client, event(browser, "FORCE_CLOSE"))
    kept, fresh, size = await _contexts(runtime, guest_ref)
    assert kept == fresh and size == 1  # the closed session is kept from now on
    assert _shape(kept) == [("CLOSED", POINT_OF_SALE, ["IDENTITY", "VIEW", "ADD", "FORCE_CLOSE"])]
    assert kept["sessions"][0]["cartType"] == "ABANDONED" and kept["sessions"][0]["abandonedRevenue"] == 100.0

    # A new session and each of its events show at once; the kept one is reused.
    clock.advance(hours=1)
    await post_event(client, event(browser, "VIEW", page="/two"))
    kept, fresh, size = await _contexts(runtime, guest_ref)
    assert kept == fresh and size == 1
    assert [item["status"] for item in kept["sessions"]] == ["OPEN", "CLOSED"]
    clock.advance(seconds=1)
    await post_event(client, event(browser, "VIEW", page="/three"))
    kept, fresh, _ = await _contexts(runtime, guest_ref)
    assert kept == fresh and [e["page"] for e in kept["sessions"][0]["events"]] == ["/two", "/three"]

    # An anonymous browser's closed session joins the guest when that browser identifies (a merge).
    other = (await create_browser(client))["ref"]
    await post_event(client, event(other, "VIEW", page="/anon"))
    await post_event(client, event(other, "FORCE_CLOSE"))
    async with runtime.sessions() as db:
        guest = await guests.find_live_guest(db, ref=await _guest_ref(runtime, other))
        assert guest is not None
        await guest_context(db, guest, needs={"sessions"})  # kept under the anonymous guest
    clock.advance(hours=1)
    identity = [{"provider": "email", "id": EMAIL}]
    await post_event(client, event(other, "IDENTITY", email=EMAIL, identifiers=identity))
    assert await _guest_ref(runtime, other) == guest_ref
    kept, fresh, size = await _contexts(runtime, guest_ref)
    assert kept == fresh and size == 2
    pages = sorted(e["page"] for item in kept["sessions"] for e in item["events"] if e["type"] == "VIEW")
    assert pages == ["/anon", "/one", "/three", "/two"]

    # Messages are kept apart from the lean events (a flow that reads event data gets its own build).
    kept, fresh, size = await _contexts(runtime, guest_ref, event_data=True)
    assert kept == fresh and size == 4
    closed = [item for item in kept["sessions"] if item["status"] == "CLOSED"]
    assert closed and all(e["arbitraryData"] for item in closed for e in item["events"] if e["type"] == "VIEW")


async def test_a_kept_session_is_not_read_again_but_open_ones_and_the_list_are(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    browser = (await identified_browser(client, EMAIL))["ref"]
    guest_ref = await _guest_ref(runtime, browser)
    await post_event(client, event(browser, "FORCE_CLOSE"))
    clock.advance(hours=1)
    await post_event(client, event(browser, "VIEW", page="/open"))
    kept, _, _ = await _contexts(runtime, guest_ref)
    closed_ref, open_ref = kept["sessions"][1]["ref"], kept["sessions"][0]["ref"]

    # Written behind Innkeeper's back (nothing of ours changes a closed session): the kept build shows it has
    # not been read again, while the open session is.
    async with runtime.sessions() as db:
        await db.execute(update(Session).where(Session.ref.in_([closed_ref, open_ref])).values(referrer="changed"))
        await db.commit()
    kept, fresh, _ = await _contexts(runtime, guest_ref)
    assert [item["referrer"] for item in kept["sessions"]] == ["changed", None]
    assert [item["referrer"] for item in fresh["sessions"]] == ["changed", "changed"]

    # The list of sessions is read on every call: a session gone is gone, kept or not.
    async with runtime.sessions() as db:
        await db.execute(delete(Event).where(Event.session_ref == closed_ref))
        await db.execute(delete(Session).where(Session.ref == closed_ref))
        await db.commit()
    kept, fresh, _ = await _contexts(runtime, guest_ref)
    assert kept == fresh and [item["ref"] for item in kept["sessions"]] == [open_ref]


async def test_each_call_gets_its_own_session_dicts(client: httpx.AsyncClient, runtime: Runtime) -> None:
    browser = (await identified_browser(client, EMAIL))["ref"]
    guest_ref = await _guest_ref(runtime, browser)
    await post_event(client, event(browser, "FORCE_CLOSE"))
    first, _, _ = await _contexts(runtime, guest_ref)
    first["sessions"][0]["status"] = "MINE"
    first["sessions"][0]["events"] = []
    again, fresh, _ = await _contexts(runtime, guest_ref)
    assert again == fresh and again["sessions"][0]["status"] == "CLOSED" and len(again["sessions"][0]["events"]) == 2
    assert again["sessions"][0]["interactions"] is again["sessions"][0]["events"]


def test_kept_sessions_are_bytes_out_of_the_collectors_way_and_only_if_they_come_back_exactly() -> None:
    cache = ClosedSessions(10)
    at = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    events = [{"ref": "e", "createdAt": at, "date": at, "arbitraryData": {"page": "/", "n": [1, 2.5, None]}}]
    built = {"ref": "s", "startedAt": at, "value": 0.30000000000000004, "events": events, "interactions": events}
    cache.put(("s", False), built)
    got = cache.get(("s", False))
    assert got == built and got is not built and got["interactions"] is got["events"]
    assert got["startedAt"].tzinfo is not None and got["startedAt"].utcoffset() == timedelta(0)
    assert got["events"][0]["arbitraryData"] is not events[0]["arbitraryData"]  # each caller gets its own copy
    assert not any(gc.is_tracked(blob) for blob in cache._items.values())
    cache.put(("tuple", False), {"ref": "t", "pair": (1, 2)})  # would come back as a list
    cache.put(("nan", False), {"ref": "n", "value": float("nan")})  # never equal to itself
    cache.put(("object", False), {"ref": "o", "value": object()})  # msgpack cannot carry it
    assert len(cache) == 1 and cache.get(("tuple", False)) is None and cache.get(("object", False)) is None


def test_the_kept_sessions_are_bounded_least_recently_used_first_out() -> None:
    cache = ClosedSessions(2)
    for name in ("a", "b"):
        cache.put((name, False), {"ref": name})
    assert cache.get(("a", False)) == {"ref": "a"}  # now the most recently used
    cache.put(("c", False), {"ref": "c"})
    assert len(cache) == 2 and cache.get(("b", False)) is None
    assert cache.get(("a", False)) == {"ref": "a"} and cache.get(("c", False)) == {"ref": "c"}
    assert cache.get(("a", True)) is None


async def test_no_sessions_are_kept_when_the_setting_is_zero(runtime: Runtime) -> None:
    async with runtime.sessions() as db:
        assert closed_sessions(db, 0) is None
        assert closed_sessions(db, 5) is closed_sessions(db, 5)
