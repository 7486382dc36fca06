"""Writes at the same moment: each gets a number of its own, and uniqueness holds."""

import asyncio

import httpx

from tests.conftest import PASSWORD, World, unique_email


async def test_concurrent_source_creates_get_distinct_ids(
    api: httpx.AsyncClient, world: World
) -> None:
    responses = await asyncio.gather(
        *[
            api.post(
                "/v2/lead_sources",
                json={"data": {"name": f"Fair {i}"}},
                headers=world.admin.headers,
            )
            for i in range(8)
        ]
    )
    assert [r.status_code for r in responses] == [200] * 8
    ids = {r.json()["data"]["id"] for r in responses}
    assert len(ids) == 8
    listed = await api.get(
        "/v2/lead_sources", params={"per_page": 100}, headers=world.other.headers
    )
    assert not ids & {item["data"]["id"] for item in listed.json()["items"]}


async def test_concurrent_lead_creates_keep_email_unique(
    api: httpx.AsyncClient, world: World
) -> None:
    responses = await asyncio.gather(
        *[
            api.post(
                "/api/leads/",
                json={"title": f"Lead {i}", "email": f"same-{i % 2}@example.com"},
                headers=world.admin.headers,
            )
            for i in range(8)
        ]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 201] + [400] * 6
    for response in responses:
        if response.status_code == 400:
            assert "email" in response.json()["errors"]
    mine = await api.get("/api/leads/", headers=world.admin.headers)
    assert mine.json()["count"] == 2
    theirs = await api.get("/api/leads/", headers=world.other.headers)
    assert theirs.json()["count"] == 0


async def test_concurrent_registrations_get_distinct_user_numbers(api: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *[
            api.post(
                "/api/auth/register/",
                json={"org_name": f"Org {i}", "email": unique_email(), "password": PASSWORD},
            )
            for i in range(6)
        ]
    )
    assert [r.status_code for r in responses] == [201] * 6
    creators = set()
    for response in responses:
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        sources = await api.get("/v2/lead_sources", headers=headers)
        items = sources.json()["items"]
        assert len(items) == 8  # each org got exactly its own defaults
        creators |= {item["data"]["creator_id"] for item in items}
    assert len(creators) == 6
