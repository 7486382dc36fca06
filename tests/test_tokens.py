"""Personal tokens: /api/auth/tokens/ (CONTRACT §2)."""

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import PASSWORD, World

TOKEN = re.compile(r"^[A-Za-z0-9]{64}$")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create(
    api: httpx.AsyncClient, headers: dict[str, str], name: str = "integration", **extra: Any
) -> dict[str, Any]:
    response = await api.post("/api/auth/tokens/", json={"name": name, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_create_shows_the_secret_once(api: httpx.AsyncClient, world: World) -> None:
    body = await create(api, world.admin.headers, "my integration")
    assert set(body) == {"id", "name", "scopes", "token", "created_at", "expires_at"}
    assert body["scopes"] == ["read", "write"]
    assert TOKEN.match(body["token"])
    assert len(body["token"]) == 64
    assert body["name"] == "my integration"
    assert body["expires_at"] is None
    assert parse_time(body["created_at"]).tzinfo is not None

    me = await api.get("/api/auth/me/", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json()["profile"]["id"] == world.admin.profile_id

    listed = await api.get("/api/auth/tokens/", headers=world.admin.headers)
    assert listed.status_code == 200
    page = listed.json()
    assert set(page) == {"count", "count_estimated", "next", "previous", "results"}
    assert page["count"] == 1
    assert page["next"] is None and page["previous"] is None
    (item,) = page["results"]
    assert item == {k: v for k, v in body.items() if k != "token"}
    assert body["token"] not in listed.text


async def test_tokens_are_distinct_and_listed_newest_first(
    api: httpx.AsyncClient, world: World
) -> None:
    first = await create(api, world.user.headers, "first")
    second = await create(api, world.user.headers, "second")
    assert first["token"] != second["token"]
    listed = (await api.get("/api/auth/tokens/", headers=world.user.headers)).json()
    assert [t["name"] for t in listed["results"]] == ["second", "first"]
    paged = await api.get("/api/auth/tokens/?page_size=1", headers=world.user.headers)
    assert paged.json()["count"] == 2
    assert [t["name"] for t in paged.json()["results"]] == ["second"]
    assert paged.json()["next"] is not None
    # A personal token works for the list too, and the list is the profile's, not the token's.
    by_token = await api.get("/api/auth/tokens/", headers=bearer(first["token"]))
    assert by_token.json()["count"] == 2


async def test_expires_at(api: httpx.AsyncClient, world: World) -> None:
    future = datetime.now(UTC) + timedelta(days=30)
    body = await create(api, world.admin.headers, expires_at=future.isoformat())
    assert abs(parse_time(body["expires_at"]) - future) < timedelta(seconds=1)
    assert (await api.get("/api/auth/me/", headers=bearer(body["token"]))).status_code == 200
    listed = (await api.get("/api/auth/tokens/", headers=world.admin.headers)).json()
    assert abs(parse_time(listed["results"][0]["expires_at"]) - future) < timedelta(seconds=1)

    # Another time zone: the same moment, shown in UTC here and in the list.
    paris = (future + timedelta(days=1)).astimezone(timezone(timedelta(hours=2)))
    zoned = await create(api, world.admin.headers, "zoned", expires_at=paris.isoformat())
    assert zoned["expires_at"].endswith("Z")
    assert abs(parse_time(zoned["expires_at"]) - paris) < timedelta(seconds=1)
    listed = (await api.get("/api/auth/tokens/", headers=world.admin.headers)).json()
    assert listed["results"][0]["expires_at"] == zoned["expires_at"]

    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    for value in (past, "2030-01-01T00:00:00", "not a time"):
        response = await api.post(
            "/api/auth/tokens/",
            json={"name": "x", "expires_at": value},
            headers=world.admin.headers,
        )
        assert response.status_code == 400, value
        assert set(response.json()["errors"]) == {"expires_at"}
    listed = (await api.get("/api/auth/tokens/", headers=world.admin.headers)).json()
    assert listed["count"] == 2


async def test_create_validates_its_body(api: httpx.AsyncClient, world: World) -> None:
    for body, field in (({}, "name"), ({"name": ""}, "name"), ({"name": "x", "scope": 1}, "scope")):
        response = await api.post("/api/auth/tokens/", json=body, headers=world.admin.headers)
        assert response.status_code == 400
        assert set(response.json()["errors"]) == {field}


async def test_tokens_need_authentication(api: httpx.AsyncClient, world: World) -> None:
    for response in (
        await api.get("/api/auth/tokens/", headers=world.anon.headers),
        await api.post("/api/auth/tokens/", json={"name": "x"}, headers=world.anon.headers),
        await api.delete(
            "/api/auth/tokens/00000000-0000-0000-0000-000000000000/", headers=world.anon.headers
        ),
    ):
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_delete_ends_the_token_at_once(api: httpx.AsyncClient, world: World) -> None:
    body = await create(api, world.user.headers)
    keep = await create(api, world.user.headers, "keep")
    response = await api.delete(f"/api/auth/tokens/{body['id']}/", headers=world.user.headers)
    assert response.status_code == 204
    assert response.content == b""
    me = await api.get("/api/auth/me/", headers=bearer(body["token"]))
    assert me.status_code == 401
    assert (await api.get("/api/auth/me/", headers=bearer(keep["token"]))).status_code == 200
    listed = (await api.get("/api/auth/tokens/", headers=world.user.headers)).json()
    assert [t["id"] for t in listed["results"]] == [keep["id"]]
    again = await api.delete(f"/api/auth/tokens/{body['id']}/", headers=world.user.headers)
    assert again.status_code == 404


async def test_only_the_callers_own_tokens(api: httpx.AsyncClient, world: World) -> None:
    """Another profile of the org, even its admin, and another org's admin get 404, exactly
    as for an id that never existed."""
    body = await create(api, world.user.headers)
    for identity in (world.admin, world.other):
        listed = (await api.get("/api/auth/tokens/", headers=identity.headers)).json()
        assert listed["count"] == 0
        response = await api.delete(f"/api/auth/tokens/{body['id']}/", headers=identity.headers)
        assert response.status_code == 404
        assert response.json() == {"errors": {"detail": "Not found."}}
    for missing in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = await api.delete(f"/api/auth/tokens/{missing}/", headers=world.user.headers)
        assert response.status_code == 404
    assert (await api.get("/api/auth/me/", headers=bearer(body["token"]))).status_code == 200


async def test_a_token_id_only_in_its_canonical_form(api: httpx.AsyncClient, world: World) -> None:
    body = await create(api, world.user.headers)
    token_id = body["id"]
    for variant in (f"{{{token_id}}}", token_id.replace("-", ""), f"urn:uuid:{token_id}"):
        response = await api.delete(f"/api/auth/tokens/{variant}/", headers=world.user.headers)
        assert response.status_code == 404, variant
        assert response.json() == {"errors": {"detail": "Not found."}}
    assert (await api.get("/api/auth/me/", headers=bearer(body["token"]))).status_code == 200
    listed = (await api.get("/api/auth/tokens/", headers=world.user.headers)).json()
    assert [t["id"] for t in listed["results"]] == [token_id]
    theirs = await api.delete(f"/api/auth/tokens/{token_id}/", headers=world.other.headers)
    assert theirs.status_code == 404


async def test_logout_with_a_personal_token_revokes_it(
    api: httpx.AsyncClient, world: World
) -> None:
    body = await create(api, world.admin.headers)
    response = await api.post("/api/auth/logout/", headers=bearer(body["token"]))
    assert response.status_code == 204
    assert (await api.get("/api/auth/me/", headers=bearer(body["token"]))).status_code == 401
    # The session the admin logged in with is another matter.
    assert (await api.get("/api/auth/me/", headers=world.admin.headers)).status_code == 200


async def test_a_deactivated_profiles_personal_token_stops_working(
    api: httpx.AsyncClient, world: World
) -> None:
    body = await create(api, world.user.headers)
    patched = await api.patch(
        f"/api/users/{world.user.profile_id}/",
        json={"is_active": False},
        headers=world.admin.headers,
    )
    assert patched.status_code == 200
    assert (await api.get("/api/auth/me/", headers=bearer(body["token"]))).status_code == 401
    reactivated = await api.patch(
        f"/api/users/{world.user.profile_id}/",
        json={"is_active": True},
        headers=world.admin.headers,
    )
    assert reactivated.status_code == 200
    # Deactivation revoked it: re-activation does not bring it back.
    assert (await api.get("/api/auth/me/", headers=bearer(body["token"]))).status_code == 401


async def test_only_hashes_are_stored(app: FastAPI, api: httpx.AsyncClient, world: World) -> None:
    """Tokens as SHA-256 hashes, passwords as argon2id: no secret is in the database."""
    body = await create(api, world.admin.headers)
    secrets = {body["token"], world.admin.token, world.admin.refresh_token}
    async with app.state.db.sessionmaker() as session:
        hashes = set(await session.scalars(text("SELECT token_hash FROM tokens")))
        password_hash = await session.scalar(
            text("SELECT password_hash FROM users WHERE email = :email"),
            {"email": world.admin.email},
        )
    assert {hashlib.sha256(secret.encode()).hexdigest() for secret in secrets} <= hashes
    assert not secrets & hashes
    assert password_hash.startswith("$argon2id$")
    assert PASSWORD not in password_hash


# A token created with a personal token: bound to it.


async def test_a_token_created_with_a_personal_token_expires_no_later(
    api: httpx.AsyncClient, world: World
) -> None:
    june = datetime.now(UTC) + timedelta(days=30)
    parent = await create(api, world.user.headers, "june", expires_at=june.isoformat())
    child = await create(api, bearer(parent["token"]), "child")
    assert child["expires_at"] == parent["expires_at"]
    sooner = (june - timedelta(days=1)).isoformat()
    earlier = await create(api, bearer(parent["token"]), "sooner", expires_at=sooner)
    assert parse_time(earlier["expires_at"]) < parse_time(parent["expires_at"])
    later = await api.post(
        "/api/auth/tokens/",
        json={"name": "later", "expires_at": (june + timedelta(days=1)).isoformat()},
        headers=bearer(parent["token"]),
    )
    assert later.status_code == 400
    assert set(later.json()["errors"]) == {"expires_at"}
    # Grandchildren too; with an access token, a personal token still never expires.
    grandchild = await create(api, bearer(child["token"]), "grandchild")
    assert grandchild["expires_at"] == parent["expires_at"]
    unbound = await create(api, world.user.headers, "unbound")
    assert unbound["expires_at"] is None
    listed = (await api.get("/api/auth/tokens/", headers=world.user.headers)).json()
    assert listed["count"] == 5


async def test_a_token_created_with_a_personal_token_stops_with_it(
    api: httpx.AsyncClient, world: World
) -> None:
    for ending in ("revoke", "logout"):
        parent = await create(api, world.user.headers, f"parent {ending}")
        child = await create(api, bearer(parent["token"]), "child")
        grandchild = await create(api, bearer(child["token"]), "grandchild")
        sibling = await create(api, world.user.headers, "sibling")
        tokens = [parent, child, grandchild, sibling]
        for token in tokens:
            me = await api.get("/api/auth/me/", headers=bearer(token["token"]))
            assert me.status_code == 200
        if ending == "revoke":
            response = await api.delete(
                f"/api/auth/tokens/{parent['id']}/", headers=world.user.headers
            )
        else:
            response = await api.post("/api/auth/logout/", headers=bearer(parent["token"]))
        assert response.status_code == 204
        for token in (parent, child, grandchild):
            me = await api.get("/api/auth/me/", headers=bearer(token["token"]))
            assert me.status_code == 401, (ending, token["name"])
        for token in (sibling,):
            assert (await api.get("/api/auth/me/", headers=bearer(token["token"]))).is_success
        assert (await api.get("/api/auth/me/", headers=world.user.headers)).status_code == 200
    # Revoking a child leaves its parent working.
    parent = await create(api, world.user.headers, "parent")
    child = await create(api, bearer(parent["token"]), "child")
    revoked = await api.delete(f"/api/auth/tokens/{child['id']}/", headers=bearer(parent["token"]))
    assert revoked.status_code == 204
    assert (await api.get("/api/auth/me/", headers=bearer(parent["token"]))).status_code == 200
    # Another org's admin revokes nothing of it.
    theirs = await api.delete(f"/api/auth/tokens/{parent['id']}/", headers=world.other.headers)
    assert theirs.status_code == 404
    assert (await api.get("/api/auth/me/", headers=bearer(parent["token"]))).status_code == 200


# Scopes


async def test_a_read_only_token_reads_and_writes_nothing(
    api: httpx.AsyncClient, world: World
) -> None:
    lead = await api.post("/api/leads/", json={"title": "Read me"}, headers=world.user.headers)
    assert lead.status_code == 201
    reader = await create(api, world.user.headers, "reader", scopes=["read"])
    assert reader["scopes"] == ["read"]
    full = await create(api, world.user.headers, "full", scopes=["write", "read"])
    assert full["scopes"] == ["read", "write"]
    headers = bearer(reader["token"])
    for path in (
        "/api/leads/",
        f"/api/leads/{lead.json()['id']}/",
        "/api/auth/me/",
        "/v2/lead_sources",
    ):
        assert (await api.get(path, headers=headers)).status_code == 200, path
    assert (await api.head("/api/leads/", headers=headers)).status_code == 200
    for method, path, body in (
        ("POST", "/api/leads/", {"title": "Written"}),
        ("PATCH", f"/api/leads/{lead.json()['id']}/", {"title": "Changed"}),
        ("DELETE", f"/api/leads/{lead.json()['id']}/", None),
        ("POST", "/api/auth/tokens/", {"name": "escalated"}),
        ("POST", "/api/auth/logout/", None),
    ):
        refused = await api.request(method, path, json=body, headers=headers)
        assert refused.status_code == 403, (method, path)
        assert set(refused.json()) == {"errors"}
        assert set(refused.json()["errors"]) == {"detail"}
    v2 = await api.post("/v2/lead_sources", json={"data": {"name": "x"}}, headers=headers)
    assert v2.status_code == 403
    assert set(v2.json()) == {"errors", "meta"}
    assert v2.json()["meta"]["http_status"].startswith("403")
    # Nothing was written: the lead kept its title, no token was made.
    read = await api.get(f"/api/leads/{lead.json()['id']}/", headers=world.user.headers)
    assert read.json()["title"] == "Read me"
    listed = (await api.get("/api/auth/tokens/", headers=world.user.headers)).json()
    assert {t["name"]: t["scopes"] for t in listed["results"]} == {
        "reader": ["read"],
        "full": ["read", "write"],
    }
    # The full token writes; another org sees nothing of the lead.
    assert (
        await api.post("/api/leads/", json={"title": "W"}, headers=bearer(full["token"]))
    ).status_code == 201
    other = await api.get(f"/api/leads/{lead.json()['id']}/", headers=world.other.headers)
    assert other.status_code == 404


async def test_scopes_are_validated(api: httpx.AsyncClient, world: World) -> None:
    both = await create(api, world.admin.headers, scopes=["read", "write"])
    assert both["scopes"] == ["read", "write"]
    for scopes in (["admin"], ["write"], [], "read", ["read", "read", "write"], None):
        response = await api.post(
            "/api/auth/tokens/", json={"name": "x", "scopes": scopes}, headers=world.admin.headers
        )
        assert response.status_code == 400, scopes
        assert set(response.json()["errors"]) <= {"scopes", "scopes.0"}, response.json()
    listed = (await api.get("/api/auth/tokens/", headers=world.admin.headers)).json()
    assert listed["count"] == 1
