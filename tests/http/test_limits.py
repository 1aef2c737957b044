"""The REST edge refuses NUL characters (PostgreSQL cannot store them) with a 400, on every dialect."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import API_TOKEN, CLIENT_KEY

ADMIN = (CLIENT_KEY, API_TOKEN)


@pytest.mark.parametrize(
    "body",
    [
        '{"rules":[{"name":"Email","provider":"em\\u0000ail"}],"emailFallback":true}',
        '{"rules":[{"name":"Email","provider":"email","\\u0000":"x"}],"emailFallback":true}',
    ],
)
async def test_nul_in_a_json_body_is_a_400(client: httpx.AsyncClient, body: str) -> None:
    response = await client.put(
        "/admin/v1/identity-rules", content=body, headers={"Content-Type": "application/json"}, auth=ADMIN
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 400 and "NUL" in response.json()["developerMessage"]


async def test_escaped_backslash_u0000_text_is_not_a_nul(client: httpx.AsyncClient) -> None:
    body = '{"rules":[{"name":"literally \\\\u0000","provider":"email"}],"emailFallback":true}'
    response = await client.put(
        "/admin/v1/identity-rules", content=body, headers={"Content-Type": "application/json"}, auth=ADMIN
    )
    assert response.status_code == 200, response.text
    assert response.json()["rules"][0]["name"] == "literally \\u0000"


@pytest.mark.parametrize("url", ["/admin/v1/points-of-sale/a%00b", "/admin/v1/guests/x/events?from=%00"])
async def test_nul_in_the_url_is_a_400(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url, auth=ADMIN)
    assert response.status_code == 400, response.text
    assert "NUL" in response.json()["developerMessage"]
