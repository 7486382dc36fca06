"""Members, names and passwords (CONTRACT §2, "Members, passwords and tokens"): a user's
name, a password change, login to one of several orgs, the removal of a member and the
hand-over of its records."""

from typing import Any

import httpx

from tests.conftest import PASSWORD, Identity, World, add_member, register, unique_email
from tests.entities_support import ENTITIES, Entity, create, listed_ids, profile_ref, read
from tests.members_support import bearer, invite_and_accept


async def users_by_id(api: httpx.AsyncClient, who: Identity) -> dict[str, dict[str, Any]]:
    response = await api.get("/api/users/", headers=who.headers)
    assert response.status_code == 200, response.text
    return {p["id"]: p for p in response.json()["results"]}


async def login(api: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return await api.post("/api/auth/login/", json={"email": email, "password": password, **extra})


# names


async def test_a_name_at_register_and_when_added_shown_wherever_a_member_is(
    api: httpx.AsyncClient, world: World
) -> None:
    registered = await api.post(
        "/api/auth/register/",
        json={
            "org_name": "Named",
            "email": unique_email("ada"),
            "password": PASSWORD,
            "name": "Ada Lovelace",
        },
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["user"]["name"] == "Ada Lovelace"
    ada = Identity(
        email=registered.json()["user"]["email"],
        profile_id=registered.json()["profile"]["id"],
        headers=bearer(registered.json()["access_token"]),
    )
    email = unique_email("grace")
    added = await api.post(
        "/api/users/",
        json={"email": email, "password": PASSWORD, "role": "user", "name": "Grace Hopper"},
        headers=ada.headers,
    )
    assert added.status_code == 201, added.text
    assert added.json()["name"] == "Grace Hopper"
    grace_session = (await login(api, email)).json()
    assert grace_session["user"]["name"] == "Grace Hopper"
    grace = Identity(
        email=email,
        profile_id=grace_session["profile"]["id"],
        headers=bearer(grace_session["access_token"]),
    )
    me = await api.get("/api/auth/me/", headers=grace.headers)
    assert me.json()["user"] == {
        "id": grace_session["user"]["id"],
        "email": email,
        "name": "Grace Hopper",
    }
    listed = await users_by_id(api, grace)
    assert listed[ada.profile_id]["name"] == "Ada Lovelace"
    assert listed[grace.profile_id]["name"] == "Grace Hopper"
    lead = await create(api, ada, ENTITIES[0], assigned_to=grace.profile_id)
    assert lead["created_by"] == profile_ref(ada, "Ada Lovelace")
    assert lead["assigned_to"] == profile_ref(grace, "Grace Hopper")

    # The user changes its own name; every read shows it at once.
    renamed = await api.patch(
        "/api/auth/me/", json={"name": "Rear Admiral Hopper"}, headers=grace.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["user"]["name"] == "Rear Admiral Hopper"
    assert (await api.get("/api/auth/me/", headers=grace.headers)).json()["user"][
        "name"
    ] == "Rear Admiral Hopper"
    again = await read(api, ada, ENTITIES[0], lead["id"])
    assert again["assigned_to"] == profile_ref(grace, "Rear Admiral Hopper")
    listed_lead = next(
        r for r in (await api.get("/api/leads/", headers=ada.headers)).json()["results"]
    )
    assert listed_lead["assigned_to"]["name"] == "Rear Admiral Hopper"
    cleared = await api.patch("/api/auth/me/", json={"name": None}, headers=grace.headers)
    assert cleared.json()["user"]["name"] is None
    # Another org sees neither the member nor the record.
    assert grace.profile_id not in await users_by_id(api, world.other)
    assert lead["id"] not in await listed_ids(api, world.other, ENTITIES[0])


async def test_a_name_is_validated(api: httpx.AsyncClient, world: World) -> None:
    long = "x" * 256
    for response in (
        await api.patch("/api/auth/me/", json={"name": long}, headers=world.user.headers),
        await api.patch("/api/auth/me/", json={"name": 7}, headers=world.user.headers),
        await api.patch("/api/auth/me/", json={}, headers=world.user.headers),
        await api.post(
            "/api/users/",
            json={"email": unique_email(), "password": PASSWORD, "role": "user", "name": long},
            headers=world.admin.headers,
        ),
        await api.post(
            "/api/auth/register/",
            json={"org_name": "X", "email": unique_email(), "password": PASSWORD, "name": long},
        ),
    ):
        assert response.status_code == 400, response.text
        assert set(response.json()["errors"]) == {"name"}
    me = await api.get("/api/auth/me/", headers=world.user.headers)
    assert me.json()["user"]["name"] is None
    assert (await api.patch("/api/auth/me/", json={"name": "x"})).status_code == 401


async def test_a_name_is_trimmed_and_a_blank_one_refused(
    api: httpx.AsyncClient, world: World
) -> None:
    """A user's name, as an org's: blanks around it dropped, blanks alone refused (400
    naming `name`, nothing written); null clears it."""
    blank = "This field may not be blank."
    email = unique_email()
    for response in (
        await api.patch("/api/auth/me/", json={"name": "   "}, headers=world.user.headers),
        await api.post(
            "/api/users/",
            json={"email": email, "password": PASSWORD, "role": "user", "name": " \t"},
            headers=world.admin.headers,
        ),
        await api.post(
            "/api/auth/register/",
            json={"org_name": "X", "email": email, "password": PASSWORD, "name": "  "},
        ),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["errors"] == {"name": blank}, response.text
    assert email not in {p["email"] for p in (await users_by_id(api, world.admin)).values()}
    assert (await login(api, email)).status_code == 401

    me = {"name": "  Ann Lee "}
    named = await api.patch("/api/auth/me/", json=me, headers=world.user.headers)
    assert named.status_code == 200, named.text
    assert named.json()["user"]["name"] == "Ann Lee"
    assert (await users_by_id(api, world.admin))[world.user.profile_id]["name"] == "Ann Lee"
    added = await api.post(
        "/api/users/",
        json={"email": email, "password": PASSWORD, "role": "user", "name": " Bo "},
        headers=world.admin.headers,
    )
    assert added.status_code == 201, added.text
    assert added.json()["name"] == "Bo"
    assert added.json()["id"] not in await users_by_id(api, world.other)
    cleared = await api.patch("/api/auth/me/", json={"name": None}, headers=world.user.headers)
    assert cleared.json()["user"]["name"] is None


# passwords


async def test_a_password_change_stops_every_other_token_of_the_user(
    api: httpx.AsyncClient, world: World
) -> None:
    # The user has a second session, a personal token, and a membership of another org.
    second = (await login(api, world.user.email)).json()
    personal = await api.post("/api/auth/tokens/", json={"name": "ci"}, headers=world.user.headers)
    elsewhere_id = await invite_and_accept(api, world.other, world.user)
    elsewhere = (await login(api, world.user.email, org_id=world.other.org_id)).json()
    assert elsewhere["profile"]["id"] == elsewhere_id
    others = [second["access_token"], personal.json()["token"], elsewhere["access_token"]]

    changed = await api.post(
        "/api/auth/password/",
        json={"current_password": PASSWORD, "new_password": "a-new-long-password"},
        headers=world.user.headers,
    )
    assert changed.status_code == 204, changed.text
    for token in others:
        assert (await api.get("/api/auth/me/", headers=bearer(token))).status_code == 401
    for refresh in (second["refresh_token"], elsewhere["refresh_token"]):
        refused = await api.post("/api/auth/refresh/", json={"refresh_token": refresh})
        assert refused.status_code == 401
    # The token used keeps working; the old password does not; the new one does.
    assert (await api.get("/api/auth/me/", headers=world.user.headers)).status_code == 200
    assert (await login(api, world.user.email, org_id=world.admin.org_id)).status_code == 401
    renewed = await login(api, world.user.email, "a-new-long-password", org_id=world.admin.org_id)
    assert renewed.status_code == 200
    # Nobody else's tokens changed.
    for who in (world.admin, world.other):
        assert (await api.get("/api/auth/me/", headers=who.headers)).status_code == 200


async def test_a_password_change_needs_the_current_password(
    api: httpx.AsyncClient, world: World
) -> None:
    personal = await api.post("/api/auth/tokens/", json={"name": "ci"}, headers=world.user.headers)
    for body, field in (
        (
            {"current_password": "wrong-password", "new_password": "a-new-long-password"},
            "current_password",
        ),
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"new_password": "a-new-long-password"}, "current_password"),
        ({"current_password": PASSWORD}, "new_password"),
    ):
        response = await api.post("/api/auth/password/", json=body, headers=world.user.headers)
        assert response.status_code == 400, body
        assert set(response.json()["errors"]) == {field}
    anon = await api.post(
        "/api/auth/password/",
        json={"current_password": PASSWORD, "new_password": "a-new-long-password"},
    )
    assert anon.status_code == 401
    # Nothing changed.
    assert (await login(api, world.user.email)).status_code == 200
    assert (
        await api.get("/api/auth/me/", headers=bearer(personal.json()["token"]))
    ).status_code == 200


# login to one of several orgs


async def test_login_of_a_member_of_several_orgs_names_them_once_the_password_is_verified(
    api: httpx.AsyncClient, world: World
) -> None:
    await invite_and_accept(api, world.other, world.user)
    ambiguous = await login(api, world.user.email)
    assert ambiguous.status_code == 400
    body = ambiguous.json()
    assert set(body) == {"errors", "orgs"}
    assert set(body["errors"]) == {"org_id"}
    assert sorted(body["orgs"], key=lambda o: o["name"]) == [
        {"id": world.admin.org_id, "name": "Acme"},
        {"id": world.other.org_id, "name": "Globex"},
    ]
    # Before the password is verified, nothing is told.
    wrong = await login(api, world.user.email, "wrong-password")
    assert wrong.status_code == 401
    assert "orgs" not in wrong.json()
    assert wrong.json() == (await login(api, unique_email("nobody"), "wrong-password")).json()
    chosen = await login(api, world.user.email, org_id=body["orgs"][1]["id"])
    assert chosen.status_code == 200
    assert chosen.json()["org"] == body["orgs"][1]

    # A deactivated membership is no choice: the one active membership is the login's.
    deactivated = await api.patch(
        f"/api/users/{world.user.profile_id}/",
        json={"is_active": False},
        headers=world.admin.headers,
    )
    assert deactivated.status_code == 200
    alone = await login(api, world.user.email)
    assert alone.status_code == 200, alone.text
    assert alone.json()["org"]["id"] == world.other.org_id


# removing a member


async def test_removing_a_member_ends_its_membership_and_keeps_its_records(
    api: httpx.AsyncClient, world: World
) -> None:
    leaver = await add_member(api, world.admin)
    personal = await api.post("/api/auth/tokens/", json={"name": "ci"}, headers=leaver.headers)
    created = {}
    for entity in ENTITIES:
        created[entity.name] = await create(api, leaver, entity, assigned_to=leaver.profile_id)
    url = f"/api/users/{leaver.profile_id}/"
    for who, status in ((world.user, 403), (world.other, 404), (world.anon, 401)):
        assert (await api.delete(url, headers=who.headers)).status_code == status
    assert (await api.get("/api/auth/me/", headers=leaver.headers)).status_code == 200

    removed = await api.delete(url, headers=world.admin.headers)
    assert removed.status_code == 204, removed.text
    for token in (leaver.token, personal.json()["token"]):
        assert (await api.get("/api/auth/me/", headers=bearer(token))).status_code == 401
    refused = await api.post("/api/auth/refresh/", json={"refresh_token": leaver.refresh_token})
    assert refused.status_code == 401
    assert (await login(api, leaver.email)).status_code == 401
    assert leaver.profile_id not in await users_by_id(api, world.admin)
    assert (await api.delete(url, headers=world.admin.headers)).status_code == 404
    patched = await api.patch(url, json={"is_active": True}, headers=world.admin.headers)
    assert patched.status_code == 404
    # Its records keep it as creator and assignee, shown as no longer active.
    for entity in ENTITIES:
        record = await read(api, world.admin, entity, created[entity.name]["id"])
        assert record["created_by"] == profile_ref(leaver, is_active=False)
        assert record["assigned_to"] == profile_ref(leaver, is_active=False)
        listed = (await api.get(entity.url, headers=world.admin.headers)).json()["results"]
        mine = next(r for r in listed if r["id"] == record["id"])
        assert mine["assigned_to"]["is_active"] is False
        assert record["id"] not in await listed_ids(api, world.other, entity)
    # Nor can new records be assigned to it.
    assigned = await api.post(
        "/api/leads/",
        json={"title": "x", "assigned_to": leaver.profile_id},
        headers=world.admin.headers,
    )
    assert assigned.status_code == 400
    assert set(assigned.json()["errors"]) == {"assigned_to"}


async def test_the_last_active_admin_cannot_be_removed(
    api: httpx.AsyncClient, world: World
) -> None:
    url = f"/api/users/{world.admin.profile_id}/"
    refused = await api.delete(url, headers=world.admin.headers)
    assert refused.status_code == 400
    assert set(refused.json()["errors"]) == {"detail"}
    assert world.admin.profile_id in await users_by_id(api, world.admin)
    assert (await api.get("/api/auth/me/", headers=world.admin.headers)).status_code == 200
    second = await add_member(api, world.admin, "admin")
    assert (await api.delete(url, headers=second.headers)).status_code == 204
    assert (await api.get("/api/auth/me/", headers=world.admin.headers)).status_code == 401
    last = await api.delete(f"/api/users/{second.profile_id}/", headers=second.headers)
    assert last.status_code == 400


# handing a member's records to another


async def records_assigned(
    api: httpx.AsyncClient, who: Identity, entity: Entity, profile_id: str
) -> set[str]:
    return set(await listed_ids(api, who, entity, {"assigned_to": profile_id}))


async def test_reassign_moves_every_live_record_of_every_entity(
    api: httpx.AsyncClient, world: World
) -> None:
    leaver = await add_member(api, world.admin)
    moving: dict[str, set[str]] = {}
    for entity in ENTITIES:
        records = [
            await create(api, world.admin, entity, assigned_to=leaver.profile_id) for _ in range(2)
        ]
        moving[entity.name] = {r["id"] for r in records}
    # A deleted record stays as it is; so do those of other members and of another org.
    deleted = await create(api, world.admin, ENTITIES[0], assigned_to=leaver.profile_id)
    assert (
        await api.delete(ENTITIES[0].detail(deleted["id"]), headers=world.admin.headers)
    ).status_code == 204
    kept = await create(api, world.admin, ENTITIES[0], assigned_to=world.admin.profile_id)
    theirs = await create(api, world.other, ENTITIES[0], assigned_to=world.other.profile_id)
    assert (
        await api.delete(f"/api/users/{leaver.profile_id}/", headers=world.admin.headers)
    ).status_code == 204

    url = f"/api/users/{leaver.profile_id}/reassign/"
    moved = await api.post(url, json={"to": world.user.profile_id}, headers=world.admin.headers)
    assert moved.status_code == 200, moved.text
    assert moved.json() == {entity.name: 2 for entity in ENTITIES}
    for entity in ENTITIES:
        assert (
            await records_assigned(api, world.user, entity, world.user.profile_id)
            >= moving[entity.name]
        )
        assert not await records_assigned(api, world.admin, entity, leaver.profile_id)
        record = await read(api, world.user, entity, next(iter(moving[entity.name])))
        assert record["assigned_to"] == profile_ref(world.user)
        assert record["created_by"] == profile_ref(world.admin)
    restored = await api.post(
        ENTITIES[0].detail(deleted["id"]) + "restore/", headers=world.admin.headers
    )
    assert restored.status_code == 200, restored.text
    assert restored.json()["assigned_to"] == profile_ref(leaver, is_active=False)
    assert (await read(api, world.admin, ENTITIES[0], kept["id"]))["assigned_to"] == profile_ref(
        world.admin
    )
    assert (await read(api, world.other, ENTITIES[0], theirs["id"]))["assigned_to"] == profile_ref(
        world.other
    )
    # Only the restored lead, live again, is left to move.
    again = await api.post(url, json={"to": world.user.profile_id}, headers=world.admin.headers)
    assert again.json() == {**{entity.name: 0 for entity in ENTITIES}, "leads": 1}


async def test_reassign_needs_an_admin_and_an_active_member_of_the_org(
    api: httpx.AsyncClient, world: World
) -> None:
    lead = await create(api, world.admin, ENTITIES[0], assigned_to=world.user.profile_id)
    url = f"/api/users/{world.user.profile_id}/reassign/"
    body = {"to": world.admin.profile_id}
    assert (await api.post(url, json=body, headers=world.user.headers)).status_code == 403
    assert (await api.post(url, json=body, headers=world.anon.headers)).status_code == 401
    # Another org's admin knows no such member, nor may it move records to its own.
    assert (
        await api.post(url, json={"to": world.other.profile_id}, headers=world.other.headers)
    ).status_code == 404
    invited = await invite_and_accept(api, world.admin, world.other)
    deactivated = await add_member(api, world.admin)
    assert (
        await api.patch(
            f"/api/users/{deactivated.profile_id}/",
            json={"is_active": False},
            headers=world.admin.headers,
        )
    ).status_code == 200
    pending = await register(api, "Pending")
    invitation = await api.post(
        "/api/users/", json={"email": pending.email, "role": "user"}, headers=world.admin.headers
    )
    for to in (
        world.other.profile_id,  # a profile of another org
        deactivated.profile_id,
        invitation.json()["id"],
        world.user.profile_id,  # itself
        "00000000-0000-4000-8000-000000000000",
        "nope",
        None,
    ):
        refused = await api.post(url, json={"to": to}, headers=world.admin.headers)
        assert refused.status_code == 400, to
        assert set(refused.json()["errors"]) == {"to"}
    for bad in ({}, {"to": world.admin.profile_id, "x": 1}):
        assert (await api.post(url, json=bad, headers=world.admin.headers)).status_code == 400
    missing = await api.post(
        "/api/users/00000000-0000-4000-8000-000000000000/reassign/",
        json=body,
        headers=world.admin.headers,
    )
    assert missing.status_code == 404
    kept = await read(api, world.admin, ENTITIES[0], lead["id"])
    assert kept["assigned_to"] == profile_ref(world.user)
    # A member who joined by invitation takes them.
    moved = await api.post(url, json={"to": invited}, headers=world.admin.headers)
    assert moved.status_code == 200
    assert moved.json()["leads"] == 1
    assigned = (await read(api, world.admin, ENTITIES[0], lead["id"]))["assigned_to"]
    assert assigned["id"] == invited
