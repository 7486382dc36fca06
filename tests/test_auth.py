"""/api/auth/: register, login, refresh, logout and me (CONTRACT §2)."""

import asyncio
import re
import statistics
import time
import uuid
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from crm.auth import passwords
from tests.apps import client_of, fresh_app
from tests.conftest import (
    PASSWORD,
    Identity,
    World,
    add_member,
    identity_from_session,
    register,
    unique_email,
)
from tests.members_support import invite_and_accept

TOKEN = re.compile(r"^[A-Za-z0-9]{64}$")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_session(body: dict[str, Any], email: str, org_name: str, role: str) -> None:
    """Exactly the session object of the contract."""
    assert set(body) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "user",
        "org",
        "profile",
    }
    assert TOKEN.match(body["access_token"])
    assert TOKEN.match(body["refresh_token"])
    assert body["access_token"] != body["refresh_token"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert set(body["user"]) == {"id", "email", "name"}
    assert body["user"]["email"] == email
    uuid.UUID(body["user"]["id"])
    assert set(body["org"]) == {"id", "name"}
    assert body["org"]["name"] == org_name
    uuid.UUID(body["org"]["id"])
    assert set(body["profile"]) == {"id", "role"}
    assert body["profile"]["role"] == role
    uuid.UUID(body["profile"]["id"])


def assert_401(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert set(response.json()["errors"]) == {"detail"}


async def login(api: httpx.AsyncClient, email: str, **extra: Any) -> httpx.Response:
    return await api.post("/api/auth/login/", json={"email": email, "password": PASSWORD, **extra})


# register


async def test_register_answers_a_session(api: httpx.AsyncClient) -> None:
    email = unique_email("founder")
    response = await api.post(
        "/api/auth/register/", json={"org_name": "Initech", "email": email, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert_session(body, email, "Initech", "admin")
    me = await api.get("/api/auth/me/", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == {
        "user": body["user"],
        "org": body["org"],
        "profile": body["profile"],
    }


async def test_register_taken_email_is_400(api: httpx.AsyncClient, world: World) -> None:
    for email in (world.admin.email, world.admin.email.upper()):
        response = await api.post(
            "/api/auth/register/", json={"org_name": "Again", "email": email, "password": PASSWORD}
        )
        assert response.status_code == 400, response.text
        assert set(response.json()["errors"]) == {"email"}


async def test_register_validates_its_body(api: httpx.AsyncClient) -> None:
    short = await api.post(
        "/api/auth/register/",
        json={"org_name": "Shorty", "email": unique_email(), "password": "1234567"},
    )
    assert short.status_code == 400
    assert set(short.json()["errors"]) == {"password"}
    missing = await api.post("/api/auth/register/", json={"email": unique_email()})
    assert missing.status_code == 400
    assert set(missing.json()["errors"]) == {"org_name", "password"}
    bad_email = await api.post(
        "/api/auth/register/",
        json={"org_name": "X", "email": "not-an-email", "password": PASSWORD},
    )
    assert bad_email.status_code == 400
    assert set(bad_email.json()["errors"]) == {"email"}


async def test_eight_characters_are_enough(api: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await api.post(
        "/api/auth/register/", json={"org_name": "Eight", "email": email, "password": "12345678"}
    )
    assert response.status_code == 201, response.text
    again = await api.post("/api/auth/login/", json={"email": email, "password": "12345678"})
    assert again.status_code == 200


async def test_register_is_403_when_signup_is_off(database_url: str) -> None:
    async with client_of(fresh_app(database_url, allow_signup=False)) as client:
        email = unique_email()
        response = await client.post(
            "/api/auth/register/", json={"org_name": "Closed", "email": email, "password": PASSWORD}
        )
        assert response.status_code == 403, response.text
        assert set(response.json()["errors"]) == {"detail"}
        # Nothing was created: the email cannot log in.
        refused = await login(client, email)
        assert refused.status_code == 401


# login


async def test_login_answers_a_session(api: httpx.AsyncClient, world: World) -> None:
    response = await login(api, world.admin.email)
    assert response.status_code == 200, response.text
    body = response.json()
    assert_session(body, world.admin.email, "Acme", "admin")
    assert body["profile"]["id"] == world.admin.profile_id
    assert body["org"]["id"] == world.admin.org_id
    assert body["user"]["id"] == world.admin.user_id
    assert body["access_token"] != world.admin.token
    user = await login(api, world.user.email.upper())
    assert user.status_code == 200
    assert user.json()["profile"] == {"id": world.user.profile_id, "role": "user"}


async def test_login_bad_password_and_unknown_email_look_the_same(
    api: httpx.AsyncClient, world: World
) -> None:
    wrong = await api.post(
        "/api/auth/login/", json={"email": world.admin.email, "password": "wrong-password"}
    )
    unknown = await api.post(
        "/api/auth/login/", json={"email": unique_email("nobody"), "password": "wrong-password"}
    )
    assert_401(wrong)
    assert_401(unknown)
    assert wrong.json() == unknown.json()


# Logins timed per kind: enough for a steady median on a busy machine, each member's under
# the 10 a minute per email.
TIMED_LOGINS = 16
MEMBERS = 2
TIMED_HASHER = PasswordHasher(time_cost=2, memory_cost=16 * 1024, parallelism=1)


async def test_an_unknown_email_takes_about_as_long_as_a_wrong_password(
    api: httpx.AsyncClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hasher far dearer than the rest of a login (production's is dearer still): with the
    # suite's cheapest one, a login that skipped the verification could not be told from one
    # that made it.
    monkeypatch.setattr(passwords, "_hasher", TIMED_HASHER)
    members = [await add_member(api, world.admin) for _ in range(MEMBERS)]
    times: dict[str, list[float]] = {"wrong password": [], "unknown email": []}
    answers = []
    for attempt in range(TIMED_LOGINS):
        kinds = {
            "wrong password": members[attempt % MEMBERS].email,
            "unknown email": unique_email("nobody"),
        }
        # Alternating which goes first, so that neither always meets a warmer machine.
        for kind in sorted(kinds, reverse=attempt % 2 == 1):
            began = time.perf_counter()
            response = await api.post(
                "/api/auth/login/", json={"email": kinds[kind], "password": "wrong-password"}
            )
            times[kind].append(time.perf_counter() - began)
            assert_401(response)
            answers.append(response.json())
    assert all(answer == answers[0] for answer in answers)
    wrong, unknown = (statistics.median(times[kind]) for kind in times)
    # Loose: a login that skipped the verification of an unknown email would be several
    # times faster.
    assert 1 / 3 < unknown / wrong < 3, (
        f"medians: wrong password {wrong:.4f} s, unknown {unknown:.4f} s"
    )


async def test_login_validates_its_body(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/auth/login/", json={"email": unique_email()})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"password"}
    bad_org = await login(api, unique_email(), org_id="nope")
    assert bad_org.status_code == 400
    assert set(bad_org.json()["errors"]) == {"org_id"}


async def test_login_needs_org_id_only_for_a_member_of_several_orgs(
    api: httpx.AsyncClient, world: World
) -> None:
    # The admin of the other org invites the user of the first, who accepts: now a member
    # of two orgs.
    added_id = await invite_and_accept(api, world.other, world.user, "admin")
    ambiguous = await login(api, world.user.email)
    assert ambiguous.status_code == 400
    assert set(ambiguous.json()["errors"]) == {"org_id"}

    first = await login(api, world.user.email, org_id=world.admin.org_id)
    assert first.status_code == 200
    assert first.json()["org"]["id"] == world.admin.org_id
    assert first.json()["profile"] == {"id": world.user.profile_id, "role": "user"}
    second = await login(api, world.user.email, org_id=world.other.org_id)
    assert second.status_code == 200
    assert second.json()["org"] == {"id": world.other.org_id, "name": "Globex"}
    assert second.json()["profile"] == {"id": added_id, "role": "admin"}
    assert first.json()["user"] == second.json()["user"]

    # A member of one org may still name it; an org it is not in is refused.
    alone = await login(api, world.admin.email, org_id=world.admin.org_id)
    assert alone.status_code == 200
    elsewhere = await login(api, world.admin.email, org_id=world.other.org_id)
    assert elsewhere.status_code == 400
    assert set(elsewhere.json()["errors"]) == {"org_id"}


async def test_login_to_a_deactivated_membership_is_403(
    api: httpx.AsyncClient, world: World
) -> None:
    patched = await api.patch(
        f"/api/users/{world.user.profile_id}/",
        json={"is_active": False},
        headers=world.admin.headers,
    )
    assert patched.status_code == 200
    response = await login(api, world.user.email)
    assert response.status_code == 403, response.text
    assert set(response.json()["errors"]) == {"detail"}
    # A wrong password still answers 401: the 403 tells nothing to a stranger.
    wrong = await api.post(
        "/api/auth/login/", json={"email": world.user.email, "password": "wrong-password"}
    )
    assert_401(wrong)


# refresh


async def test_refresh_gives_a_new_pair_once(api: httpx.AsyncClient, world: World) -> None:
    response = await api.post(
        "/api/auth/refresh/", json={"refresh_token": world.admin.refresh_token}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_session(body, world.admin.email, "Acme", "admin")
    assert body["profile"]["id"] == world.admin.profile_id
    assert body["access_token"] != world.admin.token
    assert body["refresh_token"] != world.admin.refresh_token
    new = await api.get("/api/auth/me/", headers=bearer(body["access_token"]))
    assert new.status_code == 200
    # The old access token lives on until it expires.
    old = await api.get("/api/auth/me/", headers=world.admin.headers)
    assert old.status_code == 200
    # The new refresh token works in its turn (and a used one is dead: see the replay test).
    chained = await api.post("/api/auth/refresh/", json={"refresh_token": body["refresh_token"]})
    assert chained.status_code == 200
    assert_401(await api.post("/api/auth/refresh/", json={"refresh_token": body["refresh_token"]}))


async def test_a_replayed_refresh_token_ends_its_whole_chain(
    api: httpx.AsyncClient, world: World
) -> None:
    """A used refresh token presented again was stolen (by whoever used it first, or by
    whoever replays it): every token descended from that login is revoked."""
    unrelated = identity_of(await login(api, world.admin.email))
    personal = await api.post("/api/auth/tokens/", json={"name": "x"}, headers=world.admin.headers)
    assert personal.status_code == 201
    second = identity_of(
        await api.post("/api/auth/refresh/", json={"refresh_token": world.admin.refresh_token})
    )
    third = identity_of(
        await api.post("/api/auth/refresh/", json={"refresh_token": second.refresh_token})
    )
    assert (await api.get("/api/auth/me/", headers=third.headers)).status_code == 200

    replay = await api.post("/api/auth/refresh/", json={"refresh_token": world.admin.refresh_token})
    assert_401(replay)
    assert replay.json() == {
        "errors": {"detail": "The refresh token is unknown, used, revoked or expired."}
    }
    for identity in (world.admin, second, third):
        assert_401(await api.get("/api/auth/me/", headers=identity.headers))
        refreshed = await api.post(
            "/api/auth/refresh/", json={"refresh_token": identity.refresh_token}
        )
        assert_401(refreshed)
    # Another login of the same user, its personal token and other members live on.
    assert (await api.get("/api/auth/me/", headers=unrelated.headers)).status_code == 200
    personal_headers = bearer(personal.json()["token"])
    assert (await api.get("/api/auth/me/", headers=personal_headers)).status_code == 200
    for identity in (world.user, world.other):
        assert (await api.get("/api/auth/me/", headers=identity.headers)).status_code == 200
    refreshed = await api.post(
        "/api/auth/refresh/", json={"refresh_token": unrelated.refresh_token}
    )
    assert refreshed.status_code == 200


async def test_two_uses_of_one_refresh_token_at_once_are_a_replay(
    api: httpx.AsyncClient, world: World
) -> None:
    responses = await asyncio.gather(
        *[
            api.post("/api/auth/refresh/", json={"refresh_token": world.admin.refresh_token})
            for _ in range(2)
        ]
    )
    assert sorted(r.status_code for r in responses) == [200, 401]
    winner = identity_of(next(r for r in responses if r.status_code == 200))
    assert_401(await api.get("/api/auth/me/", headers=winner.headers))
    assert_401(await api.post("/api/auth/refresh/", json={"refresh_token": winner.refresh_token}))
    assert (await api.get("/api/auth/me/", headers=world.other.headers)).status_code == 200


async def test_refresh_refuses_unknown_and_revoked_tokens(
    api: httpx.AsyncClient, world: World
) -> None:
    for unknown in ("x" * 64, "short", ""):
        assert_401(await api.post("/api/auth/refresh/", json={"refresh_token": unknown}))
    # An access token is not a refresh token.
    assert_401(await api.post("/api/auth/refresh/", json={"refresh_token": world.admin.token}))
    # Revoked by logout.
    assert (await api.post("/api/auth/logout/", headers=world.user.headers)).status_code == 204
    assert_401(
        await api.post("/api/auth/refresh/", json={"refresh_token": world.user.refresh_token})
    )
    missing = await api.post("/api/auth/refresh/", json={})
    assert missing.status_code == 400
    assert set(missing.json()["errors"]) == {"refresh_token"}


async def test_refresh_of_a_deactivated_profile_is_401(
    api: httpx.AsyncClient, world: World
) -> None:
    patched = await api.patch(
        f"/api/users/{world.user.profile_id}/",
        json={"is_active": False},
        headers=world.admin.headers,
    )
    assert patched.status_code == 200
    assert_401(
        await api.post("/api/auth/refresh/", json={"refresh_token": world.user.refresh_token})
    )


async def test_expired_tokens_are_refused(database_url: str) -> None:
    app = fresh_app(database_url, access_token_seconds=0, refresh_token_seconds=0)
    async with client_of(app) as client:
        identity = await register(client)
        assert_401(await client.get("/api/auth/me/", headers=identity.headers))
        refreshed = await client.post(
            "/api/auth/refresh/", json={"refresh_token": identity.refresh_token}
        )
        assert_401(refreshed)


async def test_a_refresh_token_is_not_a_bearer_token(api: httpx.AsyncClient, world: World) -> None:
    assert_401(await api.get("/api/auth/me/", headers=bearer(world.admin.refresh_token)))
    # ... and it still refreshes afterwards.
    response = await api.post(
        "/api/auth/refresh/", json={"refresh_token": world.admin.refresh_token}
    )
    assert response.status_code == 200


# logout


async def test_logout_ends_the_access_and_refresh_token(
    api: httpx.AsyncClient, world: World
) -> None:
    second = identity_of(await login(api, world.admin.email))
    response = await api.post("/api/auth/logout/", headers=world.admin.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert_401(await api.get("/api/auth/me/", headers=world.admin.headers))
    assert_401(
        await api.post("/api/auth/refresh/", json={"refresh_token": world.admin.refresh_token})
    )
    assert_401(await api.post("/api/auth/logout/", headers=world.admin.headers))
    # Another session of the same profile is untouched.
    assert (await api.get("/api/auth/me/", headers=second.headers)).status_code == 200
    refreshed = await api.post("/api/auth/refresh/", json={"refresh_token": second.refresh_token})
    assert refreshed.status_code == 200


async def test_logout_after_refresh_ends_the_new_pair(api: httpx.AsyncClient, world: World) -> None:
    refreshed = await api.post(
        "/api/auth/refresh/", json={"refresh_token": world.user.refresh_token}
    )
    new = identity_of(refreshed)
    assert (await api.post("/api/auth/logout/", headers=new.headers)).status_code == 204
    assert_401(await api.get("/api/auth/me/", headers=new.headers))
    assert_401(await api.post("/api/auth/refresh/", json={"refresh_token": new.refresh_token}))


async def test_logout_needs_a_token(api: httpx.AsyncClient) -> None:
    assert_401(await api.post("/api/auth/logout/"))
    assert_401(await api.post("/api/auth/logout/", headers=bearer("y" * 64)))


# me


async def test_me_for_every_identity(api: httpx.AsyncClient, world: World) -> None:
    for identity, org_name, role in (
        (world.admin, "Acme", "admin"),
        (world.user, "Acme", "user"),
        (world.other, "Globex", "admin"),
    ):
        response = await api.get("/api/auth/me/", headers=identity.headers)
        assert response.status_code == 200
        assert response.json() == {
            "user": {"id": identity.user_id, "email": identity.email, "name": None},
            "org": {"id": identity.org_id, "name": org_name},
            "profile": {"id": identity.profile_id, "role": role},
        }
    assert_401(await api.get("/api/auth/me/", headers=world.anon.headers))


async def test_bad_authorization_headers_are_401(api: httpx.AsyncClient, world: World) -> None:
    for value in (
        "Bearer",
        "Bearer ",
        f"Basic {world.admin.token}",
        f"Bearer {world.admin.token}x",
        f"Bearer {world.admin.token[:-1]}",
        f"Bearer {world.admin.token.lower()}",
    ):
        assert_401(await api.get("/api/auth/me/", headers={"Authorization": value}))


def identity_of(response: httpx.Response) -> Identity:
    assert response.status_code == 200, response.text
    return identity_from_session(response.json())


async def test_member_added_by_an_admin_can_log_in(api: httpx.AsyncClient, world: World) -> None:
    member = await add_member(api, world.admin, "admin")
    me = await api.get("/api/auth/me/", headers=member.headers)
    assert me.json()["profile"] == {"id": member.profile_id, "role": "admin"}
    assert me.json()["org"]["id"] == world.admin.org_id
