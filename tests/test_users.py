"""/api/users/: the org's profiles (CONTRACT §2)."""

import asyncio
from typing import Any

import httpx

from tests.conftest import PASSWORD, World, add_member, register, unique_email
from tests.members_support import bearer, invite


async def users_of(api: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.get("/api/users/", headers=headers)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def test_list_is_the_orgs_profiles_for_every_member(
    api: httpx.AsyncClient, world: World
) -> None:
    expected = sorted(
        [
            {"id": world.admin.profile_id, "email": world.admin.email, "role": "admin"},
            {"id": world.user.profile_id, "email": world.user.email, "role": "user"},
        ],
        key=lambda p: p["email"],
    )
    expected = [{**p, "name": None, "is_active": True, "status": "active"} for p in expected]
    for identity in (world.admin, world.user):
        response = await api.get("/api/users/", headers=identity.headers)
        assert response.status_code == 200
        assert response.json() == {
            "count": 2,
            "count_estimated": False,
            "next": None,
            "previous": None,
            "results": expected,
        }
    other = await api.get("/api/users/", headers=world.other.headers)
    assert other.json()["count"] == 1
    assert other.json()["results"] == [
        {
            "id": world.other.profile_id,
            "email": world.other.email,
            "name": None,
            "role": "admin",
            "is_active": True,
            "status": "active",
        }
    ]
    anon = await api.get("/api/users/", headers=world.anon.headers)
    assert anon.status_code == 401
    assert anon.headers["WWW-Authenticate"] == "Bearer"


async def test_list_pages(api: httpx.AsyncClient, world: World) -> None:
    await add_member(api, world.admin)
    first = await api.get("/api/users/?page_size=2", headers=world.admin.headers)
    body = first.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["previous"] is None
    assert body["next"] is not None
    second = await api.get(body["next"], headers=world.admin.headers)
    assert second.status_code == 200
    page2 = second.json()
    assert len(page2["results"]) == 1
    assert page2["next"] is None
    assert page2["previous"] is not None
    ids = {p["id"] for p in body["results"] + page2["results"]}
    assert len(ids) == 3
    for query, field in (
        ("page=0", "page"),
        ("page=x", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("role=admin", "role"),
    ):
        refused = await api.get(f"/api/users/?{query}", headers=world.admin.headers)
        assert refused.status_code == 400, query
        assert set(refused.json()["errors"]) == {field}


async def test_admin_adds_a_new_user(api: httpx.AsyncClient, world: World) -> None:
    email = unique_email("new")
    response = await api.post(
        "/api/users/",
        json={"email": email.upper(), "password": PASSWORD, "role": "user"},
        headers=world.admin.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "email", "name", "role", "is_active", "status"}
    assert body["status"] == "active"
    assert body["name"] is None
    assert body["email"] == email
    assert body["role"] == "user"
    assert body["is_active"] is True
    assert body in await users_of(api, world.admin.headers)
    login = await api.post("/api/auth/login/", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    assert login.json()["profile"] == {"id": body["id"], "role": "user"}
    assert login.json()["org"]["id"] == world.admin.org_id


async def test_only_an_admin_adds_users(api: httpx.AsyncClient, world: World) -> None:
    body = {"email": unique_email(), "password": PASSWORD, "role": "admin"}
    forbidden = await api.post("/api/users/", json=body, headers=world.user.headers)
    assert forbidden.status_code == 403
    assert set(forbidden.json()["errors"]) == {"detail"}
    anon = await api.post("/api/users/", json=body, headers=world.anon.headers)
    assert anon.status_code == 401
    assert len(await users_of(api, world.admin.headers)) == 2
    refused = await api.post(
        "/api/auth/login/", json={"email": body["email"], "password": PASSWORD}
    )
    assert refused.status_code == 401


async def test_add_validates_its_body(api: httpx.AsyncClient, world: World) -> None:
    for body, fields in (
        ({"email": unique_email(), "password": "1234567", "role": "user"}, {"password"}),
        ({"email": "nope", "password": PASSWORD, "role": "user"}, {"email"}),
        ({"email": unique_email(), "password": PASSWORD, "role": "owner"}, {"role"}),
        ({"email": unique_email(), "password": PASSWORD}, {"role"}),
        ({"email": unique_email(), "password": PASSWORD, "role": "user", "x": 1}, {"x"}),
    ):
        response = await api.post("/api/users/", json=body, headers=world.admin.headers)
        assert response.status_code == 400, body
        assert set(response.json()["errors"]) == fields
    assert len(await users_of(api, world.admin.headers)) == 2


async def test_an_existing_user_is_invited_and_joins_by_accepting(
    api: httpx.AsyncClient, world: World
) -> None:
    """The other org's admin is invited to the first org: no access until it accepts."""
    with_password = await api.post(
        "/api/users/",
        json={"email": world.other.email, "password": "another-password", "role": "user"},
        headers=world.admin.headers,
    )
    assert with_password.status_code == 400
    assert set(with_password.json()["errors"]) == {"password"}
    with_name = await api.post(
        "/api/users/",
        json={"email": world.other.email, "name": "Renamed", "role": "user"},
        headers=world.admin.headers,
    )
    assert with_name.status_code == 400
    assert set(with_name.json()["errors"]) == {"name"}
    assert len(await users_of(api, world.admin.headers)) == 2

    response = await api.post(
        "/api/users/",
        json={"email": world.other.email.upper(), "role": "user"},
        headers=world.admin.headers,
    )
    assert response.status_code == 201, response.text
    profile = response.json()
    assert profile == {
        "id": profile["id"],
        "email": world.other.email,
        "name": None,
        "role": "user",
        "is_active": False,
        "status": "invited",
    }
    assert profile["id"] != world.other.profile_id
    # Listed as invited, not yet a member: neither an assignee nor a login's choice.
    assert profile in await users_of(api, world.admin.headers)
    assigned = await api.post(
        "/api/leads/",
        json={"title": "For the invited", "assigned_to": profile["id"]},
        headers=world.admin.headers,
    )
    assert assigned.status_code == 400
    assert set(assigned.json()["errors"]) == {"assigned_to"}
    alone = await api.post(
        "/api/auth/login/", json={"email": world.other.email, "password": PASSWORD}
    )
    assert alone.status_code == 200, alone.text
    assert alone.json()["org"]["id"] == world.other.org_id
    not_yet = await api.post(
        "/api/auth/login/",
        json={"email": world.other.email, "password": PASSWORD, "org_id": world.admin.org_id},
    )
    assert not_yet.status_code == 400
    assert set(not_yet.json()["errors"]) == {"org_id"}
    again = await api.post(
        "/api/users/",
        json={"email": world.other.email, "role": "user"},
        headers=world.admin.headers,
    )
    assert again.status_code == 400
    assert set(again.json()["errors"]) == {"email"}

    # The invited user sees it with a token of its own org; nobody else does.
    invitations = await api.get("/api/auth/invitations/", headers=world.other.headers)
    assert invitations.status_code == 200
    assert invitations.json()["count"] == 1
    (invitation,) = invitations.json()["results"]
    assert invitation == {
        "id": profile["id"],
        "org": {"id": world.admin.org_id, "name": "Acme"},
        "role": "user",
        "status": "invited",
        "created_at": invitation["created_at"],
    }
    for identity in (world.admin, world.user):
        theirs = await api.get("/api/auth/invitations/", headers=identity.headers)
        assert theirs.json()["count"] == 0
        for answer in ("accept", "decline"):
            refused = await api.post(
                f"/api/auth/invitations/{profile['id']}/{answer}/", headers=identity.headers
            )
            assert refused.status_code == 404
    assert (await api.get("/api/auth/invitations/")).status_code == 401

    accepted = await api.post(
        f"/api/auth/invitations/{profile['id']}/accept/", headers=world.other.headers
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {**invitation, "status": "active"}
    twice = await api.post(
        f"/api/auth/invitations/{profile['id']}/accept/", headers=world.other.headers
    )
    assert twice.status_code == 404
    listed = {p["id"]: p for p in await users_of(api, world.admin.headers)}
    assert listed[profile["id"]] == {**profile, "is_active": True, "status": "active"}
    # The password is the user's own, as it was.
    refused = await api.post(
        "/api/auth/login/", json={"email": world.other.email, "password": "another-password"}
    )
    assert refused.status_code == 401
    for org_id, profile_id, role in (
        (world.admin.org_id, profile["id"], "user"),
        (world.other.org_id, world.other.profile_id, "admin"),
    ):
        login = await api.post(
            "/api/auth/login/",
            json={"email": world.other.email, "password": PASSWORD, "org_id": org_id},
        )
        assert login.status_code == 200, login.text
        session = login.json()
        assert session["org"]["id"] == org_id
        assert session["profile"] == {"id": profile_id, "role": role}
        assert session["user"]["id"] == world.other.user_id
        me = await api.get("/api/auth/me/", headers=bearer(session["access_token"]))
        assert me.json()["org"]["id"] == org_id
    # The tokens it had keep their own org.
    me = await api.get("/api/auth/me/", headers=world.other.headers)
    assert me.json()["org"]["id"] == world.other.org_id


async def test_a_declined_invitation_is_out_of_the_org(
    api: httpx.AsyncClient, world: World
) -> None:
    profile_id = await invite(api, world.admin, world.other.email, "admin")
    # An invited profile cannot be made active by an admin: only by its user's consent.
    forced = await api.patch(
        f"/api/users/{profile_id}/", json={"is_active": True}, headers=world.admin.headers
    )
    assert forced.status_code == 400
    assert set(forced.json()["errors"]) == {"is_active"}
    declined = await api.post(
        f"/api/auth/invitations/{profile_id}/decline/", headers=world.other.headers
    )
    assert declined.status_code == 204
    listed = {p["id"] for p in await users_of(api, world.admin.headers)}
    assert listed == {world.admin.profile_id, world.user.profile_id}
    assert (await api.get("/api/auth/invitations/", headers=world.other.headers)).json()[
        "count"
    ] == 0
    for answer in ("accept", "decline"):
        gone = await api.post(
            f"/api/auth/invitations/{profile_id}/{answer}/", headers=world.other.headers
        )
        assert gone.status_code == 404
    refused = await api.post(
        "/api/auth/login/",
        json={"email": world.other.email, "password": PASSWORD, "org_id": world.admin.org_id},
    )
    assert refused.status_code == 400
    # The org may invite again: the same profile, invited anew.
    again = await invite(api, world.admin, world.other.email)
    assert again == profile_id


async def test_already_a_member_is_400_naming_email(api: httpx.AsyncClient, world: World) -> None:
    for email in (world.user.email, world.admin.email.upper()):
        response = await api.post(
            "/api/users/",
            json={"email": email, "password": PASSWORD, "role": "admin"},
            headers=world.admin.headers,
        )
        assert response.status_code == 400
        assert set(response.json()["errors"]) == {"email"}
    assert len(await users_of(api, world.admin.headers)) == 2


async def test_admin_changes_role_and_is_active(api: httpx.AsyncClient, world: World) -> None:
    url = f"/api/users/{world.user.profile_id}/"
    promoted = await api.patch(url, json={"role": "admin"}, headers=world.admin.headers)
    assert promoted.status_code == 200
    assert promoted.json() == {
        "id": world.user.profile_id,
        "email": world.user.email,
        "name": None,
        "role": "admin",
        "is_active": True,
        "status": "active",
    }
    # The role counts at once, with the token it already had.
    me = await api.get("/api/auth/me/", headers=world.user.headers)
    assert me.json()["profile"]["role"] == "admin"

    deactivated = await api.patch(url, json={"is_active": False}, headers=world.admin.headers)
    assert deactivated.status_code == 200
    assert deactivated.json()["is_active"] is False
    assert deactivated.json()["status"] == "inactive"
    assert deactivated.json()["role"] == "admin"
    listed = {p["id"]: p for p in await users_of(api, world.admin.headers)}
    assert listed[world.user.profile_id]["is_active"] is False

    unchanged = await api.patch(url, json={}, headers=world.admin.headers)
    assert unchanged.status_code == 200
    assert unchanged.json() == deactivated.json()


async def test_a_deactivated_profiles_tokens_stop_at_once(
    api: httpx.AsyncClient, world: World
) -> None:
    personal = await api.post("/api/auth/tokens/", json={"name": "x"}, headers=world.user.headers)
    assert personal.status_code == 201
    url = f"/api/users/{world.user.profile_id}/"
    assert (await api.patch(url, json={"is_active": False}, headers=world.admin.headers)).is_success
    for headers in (world.user.headers, bearer(personal.json()["token"])):
        response = await api.get("/api/auth/me/", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    refreshed = await api.post(
        "/api/auth/refresh/", json={"refresh_token": world.user.refresh_token}
    )
    assert refreshed.status_code == 401


async def test_reactivation_does_not_bring_old_tokens_back(
    api: httpx.AsyncClient, world: World
) -> None:
    personal = await api.post("/api/auth/tokens/", json={"name": "x"}, headers=world.user.headers)
    assert personal.status_code == 201
    rotated = await api.post("/api/auth/refresh/", json={"refresh_token": world.user.refresh_token})
    assert rotated.status_code == 200
    old_access = [world.user.token, rotated.json()["access_token"], personal.json()["token"]]
    for token in old_access:
        assert (await api.get("/api/auth/me/", headers=bearer(token))).status_code == 200
    url = f"/api/users/{world.user.profile_id}/"
    for is_active in (False, True):
        patched = await api.patch(url, json={"is_active": is_active}, headers=world.admin.headers)
        assert patched.status_code == 200
        assert patched.json()["is_active"] is is_active
    # A new login is needed, and works.
    login = await api.post(
        "/api/auth/login/", json={"email": world.user.email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    for token in old_access:
        response = await api.get("/api/auth/me/", headers=bearer(token))
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    refreshed = await api.post(
        "/api/auth/refresh/", json={"refresh_token": rotated.json()["refresh_token"]}
    )
    assert refreshed.status_code == 401
    me = await api.get("/api/auth/me/", headers=bearer(login.json()["access_token"]))
    assert me.status_code == 200
    assert me.json()["profile"] == {"id": world.user.profile_id, "role": "user"}
    # The admin who did it, and another org, are untouched; the other org cannot do it.
    assert (await api.get("/api/auth/me/", headers=world.admin.headers)).status_code == 200
    theirs = await api.patch(url, json={"is_active": False}, headers=world.other.headers)
    assert theirs.status_code == 404


async def test_only_an_admin_changes_users(api: httpx.AsyncClient, world: World) -> None:
    url = f"/api/users/{world.admin.profile_id}/"
    forbidden = await api.patch(url, json={"role": "user"}, headers=world.user.headers)
    assert forbidden.status_code == 403
    own = await api.patch(
        f"/api/users/{world.user.profile_id}/", json={"role": "admin"}, headers=world.user.headers
    )
    assert own.status_code == 403
    anon = await api.patch(url, json={"role": "user"}, headers=world.anon.headers)
    assert anon.status_code == 401
    roles = {p["id"]: p["role"] for p in await users_of(api, world.admin.headers)}
    assert roles == {world.admin.profile_id: "admin", world.user.profile_id: "user"}


async def test_patch_validates_its_body(api: httpx.AsyncClient, world: World) -> None:
    url = f"/api/users/{world.user.profile_id}/"
    for body, field in (
        ({"role": "owner"}, "role"),
        ({"is_active": "maybe"}, "is_active"),
        ({"email": "x@example.com"}, "email"),
    ):
        response = await api.patch(url, json=body, headers=world.admin.headers)
        assert response.status_code == 400, body
        assert set(response.json()["errors"]) == {field}


async def test_the_org_keeps_an_active_admin(api: httpx.AsyncClient, world: World) -> None:
    url = f"/api/users/{world.admin.profile_id}/"
    for body in ({"role": "user"}, {"is_active": False}):
        response = await api.patch(url, json=body, headers=world.admin.headers)
        assert response.status_code == 400
        assert set(response.json()["errors"]) == {"detail"}
    listed = {p["id"]: p for p in await users_of(api, world.admin.headers)}
    assert listed[world.admin.profile_id]["role"] == "admin"
    assert listed[world.admin.profile_id]["is_active"] is True
    # With a second admin, the first may step down.
    second = await add_member(api, world.admin, "admin")
    stepped = await api.patch(url, json={"role": "user"}, headers=second.headers)
    assert stepped.status_code == 200
    assert stepped.json()["role"] == "user"


async def test_another_orgs_admin_sees_nothing_of_this_org(
    api: httpx.AsyncClient, world: World
) -> None:
    for profile_id in (world.user.profile_id, world.admin.profile_id):
        response = await api.patch(
            f"/api/users/{profile_id}/",
            json={"role": "admin", "is_active": False},
            headers=world.other.headers,
        )
        assert response.status_code == 404
        assert response.json() == {"errors": {"detail": "Not found."}}
    for missing in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        response = await api.patch(
            f"/api/users/{missing}/", json={"role": "user"}, headers=world.admin.headers
        )
        assert response.status_code == 404
    listed = await users_of(api, world.other.headers)
    assert [p["id"] for p in listed] == [world.other.profile_id]
    mine = {p["id"]: p for p in await users_of(api, world.admin.headers)}
    assert mine[world.user.profile_id] == {
        "id": world.user.profile_id,
        "email": world.user.email,
        "name": None,
        "role": "user",
        "is_active": True,
        "status": "active",
    }
    assert (await api.get("/api/auth/me/", headers=world.user.headers)).status_code == 200


async def test_adding_one_member_twice_at_once_is_one_201_and_one_400(
    api: httpx.AsyncClient, world: World
) -> None:
    async def add(email: str, existing: bool) -> httpx.Response:
        password = {} if existing else {"password": PASSWORD}
        return await api.post(
            "/api/users/",
            json={"email": email, "role": "user", **password},
            headers=world.admin.headers,
        )

    existing = [world.other.email] + [(await register(api, "Hooli")).email for _ in range(3)]
    for email in [*existing, unique_email("twice")]:
        known = email in existing
        responses = await asyncio.gather(add(email, known), add(email, known))
        assert sorted(r.status_code for r in responses) == [201, 400], [r.text for r in responses]
        refused = next(r for r in responses if r.status_code == 400)
        assert set(refused.json()["errors"]) == {"email"}
    assert len(await users_of(api, world.admin.headers)) == 7


def non_canonical(raw_id: str) -> list[str]:
    return [f"{{{raw_id}}}", raw_id.replace("-", ""), f"urn:uuid:{raw_id}"]


async def test_a_profile_id_only_in_its_canonical_form(
    api: httpx.AsyncClient, world: World
) -> None:
    for variant in non_canonical(world.user.profile_id):
        response = await api.patch(
            f"/api/users/{variant}/", json={"role": "admin"}, headers=world.admin.headers
        )
        assert response.status_code == 404, variant
        assert response.json() == {"errors": {"detail": "Not found."}}
    roles = {p["id"]: p["role"] for p in await users_of(api, world.admin.headers)}
    assert roles[world.user.profile_id] == "user"
    theirs = await api.patch(
        f"/api/users/{world.user.profile_id}/", json={"role": "admin"}, headers=world.other.headers
    )
    assert theirs.status_code == 404
