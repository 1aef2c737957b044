"""What personalization tests share: a guest known by browser and email, and what flow calls have stored."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from innkeeper.core.runtime import Runtime
from innkeeper.personalize.experiences.models import FlowAssignment, FlowExecution
from innkeeper.sessions.models import Event, Session
from tests.factories.stream import create_browser, event, post_event


async def identified_browser(client: httpx.AsyncClient, email: str, first_name: str = "Jane") -> dict[str, Any]:
    """A new browser whose guest is identified by ``email`` (an IDENTITY event with its first name)."""
    browser = await create_browser(client)
    identity = [{"provider": "email", "id": email}]
    await post_event(client, event(browser["ref"], "IDENTITY", email=email, firstname=first_name, identifiers=identity))
    return browser


async def stored(runtime: Runtime) -> tuple[int, int, int, int]:
    """TRACKING events, flow executions, assignments and sessions stored so far."""
    async with runtime.sessions() as session:
        tracking = await session.scalar(select(func.count()).select_from(Event).where(Event.type == "TRACKING"))
        executions = await session.scalar(select(func.count()).select_from(FlowExecution))
        assignments = await session.scalar(select(func.count()).select_from(FlowAssignment))
        sessions = await session.scalar(select(func.count()).select_from(Session))
    return int(tracking or 0), int(executions or 0), int(assignments or 0), int(sessions or 0)
