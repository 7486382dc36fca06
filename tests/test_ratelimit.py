"""Rate limits (CONTRACT §6): per token, per client address without one, per email on login
and register; shared by every process through Redis. Every test uses its own tokens, emails
and client address, so that keys never collide, not even with an earlier run's in Redis."""

import secrets
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest
from limits import parse

from crm.config import Settings
from tests.apps import client_of, fresh_address, fresh_app
from tests.conftest import (
    PASSWORD,
    TEST_REDIS_URL,
    World,
    register,
    requires_redis,
    unique_email,
)
from tests.openapi_check import hooks
from tests.servers import crm_server

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
NEVER_LIMITED = ("/healthz", "/readyz", "/openapi.json", "/docs")


def assert_429(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {"errors": {"detail": response.json()["errors"]["detail"]}}
    assert response.json()["errors"]["detail"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response.headers["X-Request-Id"]


async def test_the_fourth_request_with_one_token_is_429(database_url: str) -> None:
    async with client_of(fresh_app(database_url, rate_limit="3/minute")) as client:
        # Registering counts against the client address, not the token it answers.
        identity = await register(client)
        remaining = []
        for _ in range(3):
            response = await client.get("/api/auth/me/", headers=identity.headers)
            assert response.status_code == 200
            assert response.headers["RateLimit-Limit"] == "3"
            assert 0 <= int(response.headers["RateLimit-Reset"]) <= 60
            remaining.append(int(response.headers["RateLimit-Remaining"]))
        assert remaining == [2, 1, 0]
        limited = await client.get("/api/auth/me/", headers=identity.headers)
        assert_429(limited)
        assert limited.headers["RateLimit-Limit"] == "3"
        assert limited.headers["RateLimit-Remaining"] == "0"
        # Any path, and another method, with that token: still limited.
        assert_429(await client.get("/api/users/", headers=identity.headers))
        assert_429(await client.post("/api/auth/logout/", headers=identity.headers))
        # The limit is the token's: the same caller with a fresh token goes on.
        login = await client.post(
            "/api/auth/login/", json={"email": identity.email, "password": PASSWORD}
        )
        assert login.status_code == 200
        fresh = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert (await client.get("/api/auth/me/", headers=fresh)).status_code == 200
        # The old token was never logged out: the 429s did not reach the app.
        assert_429(await client.get("/api/auth/me/", headers=identity.headers))


async def test_without_a_token_the_limit_is_per_client_address(database_url: str) -> None:
    app = fresh_app(database_url, rate_limit="3/minute")
    first, second = fresh_address(), fresh_address()
    async with client_of(app, first) as client:
        for expected in ("2", "1", "0"):
            response = await client.get("/api/auth/me/")
            assert response.status_code == 401
            assert response.headers["RateLimit-Remaining"] == expected
        assert_429(await client.get("/api/auth/me/"))
        assert_429(
            await client.post(
                "/api/auth/login/", json={"email": unique_email(), "password": PASSWORD}
            )
        )
    async with client_of(app, second) as other_client:
        response = await other_client.get("/api/auth/me/")
        assert response.status_code == 401
        assert response.headers["RateLimit-Remaining"] == "2"


async def test_made_up_tokens_count_against_the_client_address(database_url: str) -> None:
    app = fresh_app(database_url, rate_limit="3/minute")
    async with client_of(app) as client:
        for _ in range(3):
            made_up = {"Authorization": f"Bearer {secrets.token_hex(32)}"}
            response = await client.get("/api/auth/me/", headers=made_up)
            assert response.status_code == 401
        made_up = {"Authorization": f"Bearer {secrets.token_hex(32)}"}
        response = await client.get("/api/auth/me/", headers=made_up)
        assert_429(response)
        assert response.headers["RateLimit-Remaining"] == "0"
        # The address is spent for requests without a token too.
        assert_429(await client.get("/api/auth/me/"))
    async with client_of(app) as elsewhere:
        made_up = {"Authorization": f"Bearer {secrets.token_hex(32)}"}
        assert (await elsewhere.get("/api/auth/me/", headers=made_up)).status_code == 401


# Both places counters live: the process's memory, and the Redis every test run shares.
each_storage = pytest.mark.parametrize(
    "redis_url",
    [None, pytest.param(TEST_REDIS_URL, marks=requires_redis)],
    ids=["in process", "in Redis"],
)


@each_storage
async def test_failed_authentications_have_a_limit_of_their_own(
    database_url: str, redis_url: str | None
) -> None:
    """A request limit raised for busy integrations leaves guessing tokens limited: made-up
    tokens count per client address against CRM_AUTH_FAILURE_LIMIT, in both dialects, and
    a valid token from that address goes on with its own count."""
    default = Settings.model_fields["auth_failure_limit"].default
    failures = parse(default).amount
    app = fresh_app(
        database_url, redis_url=redis_url, rate_limit="1000/minute", auth_failure_limit=default
    )
    address = fresh_address()
    async with client_of(app, address) as client:
        identity = await register(client)
        answers = []
        for index in range(120):
            path = "/api/leads/" if index % 2 else "/v2/lead_sources"
            made_up = {"Authorization": f"Bearer {secrets.token_hex(32)}"}
            answers.append((path, await client.get(path, headers=made_up)))
        statuses = [response.status_code for _, response in answers]
        assert statuses == [401] * failures + [429] * (120 - failures), statuses
        # What a failure costs is in the headers of each 401: the budget of failures left.
        assert [int(r.headers["RateLimit-Remaining"]) for _, r in answers[:failures]] == list(
            range(failures - 1, -1, -1)
        )
        for _, response in answers:
            assert response.headers["RateLimit-Limit"] == str(failures)
            assert 0 <= int(response.headers["RateLimit-Reset"]) <= 60
        for path, response in answers[failures : failures + 2]:
            assert response.headers["RateLimit-Remaining"] == "0"
            if path.startswith("/v2/"):  # the Base envelope
                assert int(response.headers["Retry-After"]) >= 1
                error = response.json()["errors"][0]["error"]
                assert error["code"] == "rate_limit_exceeded"
                assert response.json()["meta"]["http_status"] == "429 Too Many Requests"
            else:
                assert_429(response)
        # Someone else's failures from this address leave a valid token alone.
        for _ in range(3):
            mine = await client.get("/api/leads/", headers=identity.headers)
            assert mine.status_code == 200, mine.text
            assert mine.headers["RateLimit-Limit"] == "1000"
            mine = await client.get("/v2/lead_sources", headers=identity.headers)
            assert mine.status_code == 200, mine.text
    # Another address has a budget of its own.
    async with client_of(app) as elsewhere:
        made_up = {"Authorization": f"Bearer {secrets.token_hex(32)}"}
        response = await elsewhere.get("/api/leads/", headers=made_up)
        assert response.status_code == 401
        assert response.headers["RateLimit-Remaining"] == str(failures - 1)


async def test_off_never_limits(database_url: str) -> None:
    async with client_of(fresh_app(database_url, rate_limit="off")) as client:
        identity = await register(client)
        for _ in range(15):
            response = await client.get("/api/auth/me/", headers=identity.headers)
            assert response.status_code == 200
            assert "RateLimit-Limit" not in response.headers
            assert response.headers["X-Request-Id"]
        for _ in range(15):
            assert (await client.get("/api/auth/me/")).status_code == 401


async def test_probes_and_docs_are_never_limited(database_url: str) -> None:
    async with client_of(fresh_app(database_url, rate_limit="1/minute")) as client:
        for _ in range(3):
            for path in NEVER_LIMITED:
                response = await client.get(path)
                assert response.status_code == 200, path
        # The address is still fresh for everything else.
        first = await client.get("/api/auth/me/")
        assert first.status_code == 401
        assert first.headers["RateLimit-Remaining"] == "0"
        assert_429(await client.get("/api/auth/me/"))
        for path in NEVER_LIMITED:
            assert (await client.get(path)).status_code == 200, path


async def test_every_answer_carries_the_rate_limit_headers(
    api: httpx.AsyncClient, world: World
) -> None:
    responses = [
        await api.get("/api/auth/me/", headers=world.admin.headers),
        await api.get("/api/auth/me/"),
        await api.get("/api/nowhere/"),
        await api.delete("/api/auth/me/", headers=world.admin.headers),
        await api.post(
            "/api/auth/login/", content=b"{", headers={"Content-Type": "application/json"}
        ),
        await api.patch(
            f"/api/users/{world.admin.profile_id}/", json={}, headers=world.user.headers
        ),
    ]
    assert [r.status_code for r in responses] == [200, 401, 404, 405, 400, 403]
    for response in responses:
        assert response.headers["RateLimit-Limit"] == "100000"
        assert int(response.headers["RateLimit-Remaining"]) < 100000
        assert 0 <= int(response.headers["RateLimit-Reset"]) <= 10


async def test_login_is_limited_per_email_even_with_limits_off(database_url: str) -> None:
    async with client_of(fresh_app(database_url, rate_limit="off")) as client:
        identity = await register(client)
        wrong = {"email": identity.email, "password": "wrong-password"}
        for _ in range(9):  # the registration was the first of ten
            assert (await client.post("/api/auth/login/", json=wrong)).status_code == 401
        limited = await client.post("/api/auth/login/", json=wrong)
        assert_429(limited)
        # The right password does not help; the email's case does not either.
        right = {"email": identity.email.upper(), "password": PASSWORD}
        assert_429(await client.post("/api/auth/login/", json=right))
        # Another email is not affected, and the tokens already issued still work.
        other = await client.post(
            "/api/auth/login/", json={"email": unique_email(), "password": PASSWORD}
        )
        assert other.status_code == 401
        assert (await client.get("/api/auth/me/", headers=identity.headers)).status_code == 200


async def test_the_eleventh_login_attempt_is_429(api: httpx.AsyncClient) -> None:
    email = unique_email("guess")
    for _ in range(10):
        response = await api.post(
            "/api/auth/login/", json={"email": email, "password": "wrong-password"}
        )
        assert response.status_code == 401
    assert_429(
        await api.post("/api/auth/login/", json={"email": email, "password": "wrong-password"})
    )


async def test_register_is_limited_per_email(api: httpx.AsyncClient) -> None:
    email = unique_email("spam")
    body = {"org_name": "Spam", "email": email, "password": PASSWORD}
    assert (await api.post("/api/auth/register/", json=body)).status_code == 201
    for _ in range(9):
        assert (await api.post("/api/auth/register/", json=body)).status_code == 400
    assert_429(await api.post("/api/auth/register/", json=body))


@requires_redis
async def test_two_servers_share_one_limit(database_url: str, api: httpx.AsyncClient) -> None:
    """Two `crm serve` processes on one database and one Redis: the sixth request with one
    token is refused, whichever server gets it."""
    assert TEST_REDIS_URL is not None
    # Registered in process, so that no request counts against the loopback address.
    identity = await register(api)
    with ExitStack() as stack:
        managers = [
            crm_server(database_url, redis_url=TEST_REDIS_URL, rate_limit="5/minute")
            for _ in range(2)
        ]
        # Both start at once (and both migrate first, which must be safe).
        with ThreadPoolExecutor(2) as pool:
            starts = [pool.submit(manager.__enter__) for manager in managers]
            servers = [start.result() for start in starts]
        for manager in managers:
            stack.push(manager)
        assert servers[0] != servers[1]
        async with httpx.AsyncClient(
            headers=identity.headers, timeout=10, event_hooks=hooks()
        ) as client:
            statuses = []
            remaining = []
            for index in range(6):
                response = await client.get(f"{servers[index % 2]}/api/auth/me/")
                statuses.append(response.status_code)
                remaining.append(response.headers["RateLimit-Remaining"])
            assert statuses == [200] * 5 + [429], statuses
            assert remaining == ["4", "3", "2", "1", "0", "0"]
            assert response.json()["errors"]["detail"]
            assert int(response.headers["Retry-After"]) >= 1
