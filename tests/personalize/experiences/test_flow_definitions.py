"""/v3/flowDefinitions: create, read, list, edit, the status lifecycle and publish-time compilation."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import CLIENT_KEY
from tests.factories import flows
from tests.factories.flows import AUTH
from tests.support.clock import FrozenClock


async def test_create_generates_friendly_id_and_serves_the_document(client: httpx.AsyncClient) -> None:
    document = flows.experience("Product Recommender", '{"x": 1}', tags=["home"])
    document.pop("friendlyId", None)
    created = await flows.create(client, document)
    assert created["friendlyId"] == "product_recommender"
    assert created["status"] == "DRAFT"
    assert created["revision"] == 1
    assert created["archived"] is False
    assert created["clientKey"] == CLIENT_KEY
    assert created["businessProcess"] == "interactive_v1"
    assert created["href"] == f"http://testserver/v3/flowDefinitions/{created['ref']}"
    assert created["variants"] == document["variants"]
    assert created["tags"] == ["home"]

    again = await flows.create(client, flows.experience("Product Recommender", "{}"))
    assert again["friendlyId"] == "product_recommender_2"

    for key in (created["ref"], "product_recommender"):
        response = await client.get(f"/v3/flowDefinitions/{key}", auth=AUTH)
        assert response.status_code == 200
        assert response.json() == created


async def test_list_is_paged_newest_first(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    refs = []
    for index in range(3):
        refs.append((await flows.create(client, flows.experience(f"Flow {index}", "{}")))["ref"])
        clock.advance(seconds=1)
    response = await client.get("/v3/flowDefinitions?limit=2", auth=AUTH)
    body = response.json()
    assert [item["ref"] for item in body["items"]] == refs[::-1][:2]
    assert body["total"] == 3
    assert body["limit"] == 2 and body["offset"] == 0


async def test_validation_lists_every_problem(client: httpx.AsyncClient) -> None:
    bad: dict[str, Any] = {
        "name": "",
        "friendlyId": "Bad Id!",
        "type": "NOPE",
        "subtype": "EXPERIENCE",
        "status": "LIVE",
        "channels": ["FAX"],
        "schedule": {"startDate": "yesterday"},
    }
    response = await client.post("/v3/flowDefinitions", json=bad, auth=AUTH)
    assert response.status_code == 400
    message = response.json()["developerMessage"]
    for fragment in ("name:", "friendlyId:", "type:", "status:", "channels[0]:", "schedule.startDate:"):
        assert fragment in message


async def test_auth_is_required_and_scoped(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v3/flowDefinitions")).status_code == 401
    assert (await client.get("/v3/flowDefinitions", auth=(CLIENT_KEY, "wrong"))).status_code == 401
    created = await client.post("/admin/v1/api-tokens", json={"label": "ro", "scope": "ro"}, auth=AUTH)
    read_only = (CLIENT_KEY, created.json()["token"])
    assert (await client.get("/v3/flowDefinitions", auth=read_only)).status_code == 200
    response = await client.post("/v3/flowDefinitions", json=flows.experience("X", "{}"), auth=read_only)
    assert response.status_code == 403


async def test_duplicate_friendly_id_conflicts(client: httpx.AsyncClient) -> None:
    await flows.create(client, flows.experience("A", "{}", friendlyId="same_id"))
    response = await client.post(
        "/v3/flowDefinitions", json=flows.experience("B", "{}", friendlyId="same_id"), auth=AUTH
    )
    assert response.status_code == 409


async def test_lifecycle_start_pause_edit_restart_complete(client: httpx.AsyncClient) -> None:
    flow = await flows.create(client, flows.experience("Banner", '{"v": 1}'))
    live = await flows.set_status(client, flow, "LIVE")
    assert live["status"] == "LIVE"

    # A live flow cannot be edited, only paused or completed.
    edited = {**live, "variants": [flows.variant("default", '{"v": 2}')]}
    response = await client.put(f"/v3/flowDefinitions/{flow['ref']}", json=edited, auth=AUTH)
    assert response.status_code == 409
    assert "pause it first" in response.json()["developerMessage"]

    paused = await flows.set_status(client, live, "PAUSED")
    assert paused["status"] == "PAUSED"
    edited = await flows.set_status(client, paused, "PAUSED", variants=[flows.variant("default", '{"v": 2}')])
    assert edited["revision"] == 2
    restarted = await flows.set_status(client, edited, "LIVE")
    assert restarted["status"] == "LIVE"

    # friendlyId is immutable after the first Start.
    paused = await flows.set_status(client, restarted, "PAUSED")
    response = await client.put(
        f"/v3/flowDefinitions/{flow['ref']}", json={**paused, "friendlyId": "other_id"}, auth=AUTH
    )
    assert response.status_code == 400

    completed = await flows.set_status(client, paused, "COMPLETED")
    assert completed["status"] == "COMPLETED"
    response = await client.put(f"/v3/flowDefinitions/{flow['ref']}", json={**completed, "status": "LIVE"}, auth=AUTH)
    assert response.status_code == 409


async def test_production_is_a_synonym_of_live(client: httpx.AsyncClient) -> None:
    flow = await flows.create(client, flows.experience("Synonym", "{}"))
    assert (await flows.set_status(client, flow, "PRODUCTION"))["status"] == "LIVE"


async def test_start_compiles_and_a_broken_template_keeps_draft(client: httpx.AsyncClient) -> None:
    flow = await flows.create(client, flows.experience("Broken", '{"a": ${guest.firstName'))
    response = await client.put(f"/v3/flowDefinitions/{flow['ref']}", json={**flow, "status": "LIVE"}, auth=AUTH)
    assert response.status_code == 400
    assert "variants[0].template" in response.json()["developerMessage"]
    again = await client.get(f"/v3/flowDefinitions/{flow['ref']}", auth=AUTH)
    assert again.json()["status"] == "DRAFT"


async def test_experiment_needs_one_control_and_valid_splits(client: httpx.AsyncClient) -> None:
    document = flows.experiment("Test", {"a": "{}", "b": "{}"}, control="a", splits={"a": 60, "b": 30})
    flow = await flows.create(client, document)
    response = await client.put(f"/v3/flowDefinitions/{flow['ref']}", json={**flow, "status": "LIVE"}, auth=AUTH)
    assert response.status_code == 400
    assert "traffic" in response.json()["developerMessage"]

    no_control = flows.experiment("Test 2", {"a": "{}", "b": "{}"}, control="zzz", splits={"a": 50, "b": 50})
    flow = await flows.create(client, no_control)
    response = await client.put(f"/v3/flowDefinitions/{flow['ref']}", json={**flow, "status": "LIVE"}, auth=AUTH)
    assert response.status_code == 400
    assert "control" in response.json()["developerMessage"]

    sample = flows.experiment("Test 3", {"a": "{}", "b": "{}"}, control="a", splits={"a": 50, "b": 50})
    created = await flows.create(client, sample)
    assert created["sampleSizeConfig"] == {
        "baseValue": 0.02,
        "minimumDetectableDifference": 0.2,
        "confidenceLevel": 0.95,
    }


async def test_future_start_date_schedules_and_the_worker_flips_it(
    client: httpx.AsyncClient, clock: FrozenClock, runtime: Any
) -> None:
    from innkeeper.worker import schedule_once

    window = {"type": "simpleSchedule", "startDate": _iso(clock.now(), hours=1), "endDate": _iso(clock.now(), hours=2)}
    document = flows.experience("Later", "{}", schedule=window)
    flow = await flows.create(client, document)
    scheduled = await flows.set_status(client, flow, "LIVE")
    assert scheduled["status"] == "SCHEDULED"
    assert await schedule_once(runtime) == 0
    clock.advance(minutes=61)
    assert await schedule_once(runtime) == 1
    assert (await client.get(f"/v3/flowDefinitions/{flow['ref']}", auth=AUTH)).json()["status"] == "LIVE"
    clock.advance(minutes=60)
    assert await schedule_once(runtime) == 1
    assert (await client.get(f"/v3/flowDefinitions/{flow['ref']}", auth=AUTH)).json()["status"] == "COMPLETED"


async def test_archive_hides_from_list_but_not_when_live(client: httpx.AsyncClient) -> None:
    flow = await flows.live(client, flows.experience("Arch", "{}"))
    response = await client.put(f"/v3/flowDefinitions/{flow['ref']}", json={**flow, "archived": True}, auth=AUTH)
    assert response.status_code == 409
    completed = await flows.set_status(client, flow, "COMPLETED")
    archived = await flows.set_status(client, completed, "COMPLETED", archived=True)
    assert archived["archived"] is True
    listed = (await client.get("/v3/flowDefinitions", auth=AUTH)).json()
    assert flow["ref"] not in [item["ref"] for item in listed["items"]]
    listed = (await client.get("/v3/flowDefinitions?archived=true", auth=AUTH)).json()
    assert flow["ref"] in [item["ref"] for item in listed["items"]]


def _iso(now: Any, *, hours: int) -> str:
    from datetime import datetime, timedelta

    moved: datetime = now + timedelta(hours=hours)
    return moved.strftime("%Y-%m-%dT%H:%M:%S.000Z")
