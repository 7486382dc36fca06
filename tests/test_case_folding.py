"""Case-insensitive means for every letter, not only ASCII, on both databases."""

import httpx

from tests.conftest import World


async def test_source_names_fold_every_letter(api: httpx.AsyncClient, world: World) -> None:
    first = await api.post(
        "/v2/lead_sources", json={"data": {"name": "Über"}}, headers=world.admin.headers
    )
    assert first.status_code == 200
    duplicate = await api.post(
        "/v2/lead_sources", json={"data": {"name": "über"}}, headers=world.admin.headers
    )
    assert duplicate.status_code == 422
    assert duplicate.json()["errors"][0]["error"]["field"] == "name"
    lead = await api.post(
        "/api/leads/", json={"title": "Fair", "source": "ÜBER"}, headers=world.admin.headers
    )
    assert lead.status_code == 201
    assert lead.json()["source"] == "Über"
    # Another org has no such source.
    theirs = await api.post(
        "/api/leads/", json={"title": "Fair", "source": "Über"}, headers=world.other.headers
    )
    assert theirs.status_code == 400
    assert "source" in theirs.json()["errors"]


async def test_lead_email_and_search_fold_every_letter(
    api: httpx.AsyncClient, world: World
) -> None:
    created = await api.post(
        "/api/leads/",
        json={"title": "ÉCOLE normale", "email": "Ünï@example.com"},
        headers=world.admin.headers,
    )
    assert created.status_code == 201
    duplicate = await api.post(
        "/api/leads/",
        json={"title": "Other", "email": "ünï@EXAMPLE.com"},
        headers=world.admin.headers,
    )
    assert duplicate.status_code == 400
    assert "email" in duplicate.json()["errors"]
    found = await api.get("/api/leads/", params={"search": "école"}, headers=world.admin.headers)
    assert [lead["id"] for lead in found.json()["results"]] == [created.json()["id"]]
    elsewhere = await api.get(
        "/api/leads/", params={"search": "école"}, headers=world.other.headers
    )
    assert elsewhere.json()["count"] == 0
