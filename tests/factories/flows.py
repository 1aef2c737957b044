"""Builders for flow definitions, created and started through /v3/flowDefinitions as an integrator would."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import API_TOKEN, CLIENT_KEY, POINT_OF_SALE

AUTH = (CLIENT_KEY, API_TOKEN)


def variant(ref: str, template: str, *, control: bool = False, rules: list[str] | None = None) -> dict[str, Any]:
    """A variant with a template and optional JavaScript conditions (Sitecore's conditionsTask shape)."""
    tasks: list[dict[str, Any]] = []
    if rules:
        tasks.append(
            {
                "implementation": "conditionsTask",
                "input": {
                    "inputType": "conditionsTaskInput",
                    "rules": [{"id": f"c-{i}", "ruleData": {"expression": rule}} for i, rule in enumerate(rules)],
                },
            }
        )
    tasks.append(
        {
            "implementation": "templateRenderTask",
            "input": {"inputType": "templateRenderTaskInput", "type": "application/json", "template": template},
        }
    )
    return {"ref": ref, "name": ref.replace("-", " ").title(), "isControl": control, "tasks": tasks}


def experience(name: str, template: str, **fields: Any) -> dict[str, Any]:
    """An interactive experience with one variant."""
    document: dict[str, Any] = {
        "name": name,
        "type": "INTERACTIVE_API_FLOW",
        "subtype": "EXPERIENCE",
        "status": "DRAFT",
        "channels": ["WEB"],
        "schedule": {"type": "simpleSchedule", "startDate": "2025-01-01T00:00:00.000Z"},
        "variants": [variant("default", template)],
    }
    document.update(fields)
    return document


def experiment(
    name: str, templates: dict[str, str], *, control: str, splits: dict[str, int], **fields: Any
) -> dict[str, Any]:
    """An A/B/n experiment: one variant per template, ``control`` is the control's ref."""
    document: dict[str, Any] = {
        "name": name,
        "type": "INTERACTIVE_API_FLOW",
        "subtype": "EXPERIMENT",
        "status": "DRAFT",
        "channels": ["WEB"],
        "schedule": {"type": "simpleSchedule", "startDate": "2025-01-01T00:00:00.000Z"},
        "variants": [variant(ref, template, control=ref == control) for ref, template in templates.items()],
        "traffic": {
            "type": "simpleTraffic",
            "weightingAlgorithm": "USER_DEFINED",
            "allocation": fields.pop("allocation", 100),
            "splits": [{"ref": ref, "split": split} for ref, split in splits.items()],
        },
        "goals": {
            "primary": {
                "name": "Checkout conversion",
                "type": "CONVERSION_RATE",
                "goalCalculation": {"type": "BINARY", "calculation": "INCREASE", "target": "SESSIONS"},
            },
            "secondary": [],
        },
    }
    document.update(fields)
    return document


async def create(client: httpx.AsyncClient, document: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v3/flowDefinitions", json=document, auth=AUTH)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def set_status(client: httpx.AsyncClient, flow: dict[str, Any], status: str, **changes: Any) -> dict[str, Any]:
    document = {**flow, **changes, "status": status}
    response = await client.put(f"/v3/flowDefinitions/{flow['ref']}", json=document, auth=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def live(client: httpx.AsyncClient, document: dict[str, Any]) -> dict[str, Any]:
    """Create and Start a flow."""
    flow = await create(client, document)
    started = await set_status(client, flow, "LIVE")
    assert started["status"] == "LIVE", started
    return started


def call_body(friendly_id: str, **identity: Any) -> dict[str, Any]:
    """A /v2/callFlows body as the Engage SDK sends it."""
    return {
        "clientKey": CLIENT_KEY,
        "channel": "WEB",
        "language": "EN",
        "currencyCode": "EUR",
        "pointOfSale": POINT_OF_SALE,
        "friendlyId": friendly_id,
        **identity,
    }
