"""The guest context of flow execution, read as plain rows: the same values as from the ORM objects."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from innkeeper.core.runtime import Runtime
from innkeeper.guests import service as guests
from innkeeper.personalize.experiences.context import guest_context, session_dict, session_with_events
from innkeeper.personalize.experiences.execution import browser_guest, current_session
from innkeeper.sessions import service as sessions
from tests.conftest import API_TOKEN, CLIENT_KEY
from tests.factories.flow_calls import identified_browser
from tests.factories.stream import create_browser, event, post_event, product
from tests.support.clock import FrozenClock


async def _history(client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock) -> dict[str, Any]:
    """A guest with three sessions (a closed one with a cart, a closed one, an open one) and two extensions."""
    browser = await identified_browser(client, "ada@example.com", first_name="Ada")
    ref = browser["ref"]
    await post_event(client, event(ref, "VIEW", page="/shoes", utm_source="news", referrer="https://ref.example"))
    await post_event(client, event(ref, "ADD", page="/cart", product=product(), session_data={"tier": "gold"}))
    await post_event(client, event(ref, "FORCE_CLOSE"))
    clock.advance(days=2)
    await post_event(client, event(ref, "VIEW", page="/sale", ext={"pageVariantId": "b"}))
    clock.advance(hours=3)
    await post_event(client, event(ref, "VIEW", page="/"))
    async with runtime.sessions() as session:
        guest_ref = (await guests.get_browser(session, ref)).guest_ref
    for name, pairs in (("ext2", {"loyalty": "gold"}), ("ext", {"score": 3, "vip": True})):
        response = await client.post(
            f"/v2.1/guests/{guest_ref}/extensions", json={"name": name, **pairs}, auth=(CLIENT_KEY, API_TOKEN)
        )
        assert response.status_code == 201, response.text
    return {"browser": ref, "guest": guest_ref}


async def test_the_context_from_plain_rows_equals_the_one_from_orm_rows(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    known = await _history(client, runtime, clock)
    async with runtime.sessions() as session:
        found = await browser_guest(session, known["browser"])
        assert found is not None
        guest, browser_ref = found
        assert (guest.ref, browser_ref) == (known["guest"], known["browser"])
        context = await guest_context(session, guest, needs={"sessions", "event_data"})
        orm_sessions = await sessions.recent_for_guest(session, guest.ref, limit=50)
        expected = [await session_with_events(session, row.ref) for row in orm_sessions]
        identifiers = await guests.identifiers_of(session, guest.ref)
        extensions = await guests.extensions_of(session, guest.ref)

    assert [item["ref"] for item in context["sessions"]] == [row.ref for row in orm_sessions]
    assert len(context["sessions"]) == 3
    assert context["sessions"] == expected
    newest, _, oldest = context["sessions"]
    assert newest["status"] == "OPEN" and oldest["closeReason"] == "FORCE_CLOSE"
    assert oldest["cart"] and oldest["utm"] == {"utm_source": "news"} and oldest["sessionData"] == {"tier": "gold"}
    assert oldest["startedAt"].tzinfo is not None
    assert context["identifiers"] == [{"provider": row.provider, "id": row.value} for row in identifiers]
    assert context["dataExtensions"] == [
        {"name": row.name, "key": row.key, "values": dict(row.data)} for row in extensions
    ]
    assert [item["name"] for item in context["dataExtensions"]] == ["ext", "ext2"]
    assert context["dataExtensions"][0]["values"] == {"score": 3, "vip": True}


async def test_the_current_session_from_a_plain_row_equals_the_one_from_the_orm_row(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    known = await _history(client, runtime, clock)
    async with runtime.sessions() as session:
        # A context without sessions (the flow does not read them): the open session is read on its own.
        current = await current_session(session, known["browser"], {"sessions": []})
        orm_row = await sessions.latest_open(session, known["browser"])
        assert orm_row is not None
        assert current == session_dict(orm_row, [])
        # With the sessions in the context, it is the context's item (with its events).
        guest, _ = await _found(session, known["browser"])
        context = await guest_context(session, guest, needs={"sessions"})
        assert await current_session(session, known["browser"], context) == context["sessions"][0]
        assert context["sessions"][0]["ref"] == orm_row.ref


async def _found(session: AsyncSession, browser_id: str) -> tuple[Any, str]:
    found = await browser_guest(session, browser_id)
    assert found is not None
    return found


async def test_browser_guest_is_none_for_unknown_deleted_or_malformed_browsers(
    client: httpx.AsyncClient, runtime: Runtime, clock: FrozenClock
) -> None:
    anonymous = await create_browser(client)
    known = await identified_browser(client, "bo@example.com", first_name="Bo")
    async with runtime.sessions() as session:
        guest, browser_ref = await _found(session, anonymous["ref"].upper())
        assert browser_ref == anonymous["ref"] and guest.guest_type == "visitor"
        assert await browser_guest(session, "00000000-0000-4000-8000-000000000000") is None
        assert await browser_guest(session, "not-a-browser") is None
        doomed, _ = await _found(session, known["ref"])
        await guests.hide(session, doomed.ref, clock=clock)
        await session.commit()
    async with runtime.sessions() as session:
        assert await browser_guest(session, known["ref"]) is None
        assert await browser_guest(session, anonymous["ref"]) is not None
