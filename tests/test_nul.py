"""A NUL character, which PostgreSQL text cannot hold, is refused everywhere with an error
naming the field, and nothing is written."""

import httpx

from tests.conftest import PASSWORD, World, unique_email


async def test_auth_and_users_refuse_nul(api: httpx.AsyncClient, world: World) -> None:
    login = await api.post(
        "/api/auth/login/", json={"email": "a\u0000@x.com", "password": PASSWORD}
    )
    assert login.status_code == 400
    assert "email" in login.json()["errors"]
    register = await api.post(
        "/api/auth/register/",
        json={"org_name": "o\u0000", "email": unique_email(), "password": PASSWORD},
    )
    assert register.status_code == 400
    assert "org_name" in register.json()["errors"]
    token = await api.post(
        "/api/auth/tokens/", json={"name": "t\u0000"}, headers=world.admin.headers
    )
    assert token.status_code == 400
    assert "name" in token.json()["errors"]
    listed = await api.get("/api/auth/tokens/", headers=world.admin.headers)
    assert listed.json()["count"] == 0
    member = await api.post(
        "/api/users/",
        json={"email": "b\u0000@x.com", "password": PASSWORD, "role": "user"},
        headers=world.admin.headers,
    )
    assert member.status_code == 400
    assert "email" in member.json()["errors"]
    users = await api.get("/api/users/", headers=world.admin.headers)
    assert users.json()["count"] == 2
    theirs = await api.get("/api/users/", headers=world.other.headers)
    assert theirs.json()["count"] == 1


async def test_v2_refuses_nul(api: httpx.AsyncClient, world: World) -> None:
    created = await api.post(
        "/v2/lead_sources", json={"data": {"name": "a\u0000b"}}, headers=world.admin.headers
    )
    assert created.status_code == 422
    assert created.json()["errors"][0]["error"]["field"] == "name"
    listed = await api.get(
        "/v2/lead_sources", params={"name": "a\u0000"}, headers=world.admin.headers
    )
    assert listed.status_code == 400
    assert listed.json()["errors"][0]["error"]["field"] == "name"
    sources = await api.get("/v2/lead_sources", headers=world.admin.headers)
    assert len(sources.json()["items"]) == 8
    theirs = await api.get("/v2/lead_sources", headers=world.other.headers)
    assert len(theirs.json()["items"]) == 8
