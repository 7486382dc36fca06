"""The request pipeline and the error envelope of the /api/ dialect (CONTRACT §6)."""

import json
import string
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.apps import client_of, fresh_app
from tests.conftest import PASSWORD, World, unique_email

RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def assert_error(response: httpx.Response, status: int, fields: set[str] | None = None) -> None:
    """An error in the /api/ envelope, with a request id and the rate-limit headers."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"errors"}
    assert isinstance(body["errors"], dict)
    assert set(body["errors"]) == (fields or {"detail"})
    assert all(isinstance(reason, str) and reason for reason in body["errors"].values())
    assert response.headers["X-Request-Id"]
    for name in RATE_HEADERS:
        assert response.headers[name].isdigit(), name


# request ids


async def test_every_response_has_a_request_id(api: httpx.AsyncClient, world: World) -> None:
    responses = [
        await api.get("/healthz"),
        await api.get("/api/auth/me/", headers=world.admin.headers),
        await api.get("/api/auth/me/"),
        await api.get("/api/nowhere/"),
        await api.post("/api/auth/logout/", headers=world.user.headers),
    ]
    ids = [response.headers["X-Request-Id"] for response in responses]
    assert all(ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "value",
    ["abc-123", "x" * 200, string.punctuation, "a request id with spaces", "0"],
)
async def test_a_valid_client_request_id_is_kept(api: httpx.AsyncClient, value: str) -> None:
    for path in ("/healthz", "/api/nowhere/"):
        response = await api.get(path, headers={"X-Request-Id": value})
        assert response.headers["X-Request-Id"] == value


@pytest.mark.parametrize(
    "value",
    ["x" * 201, "tab\there", "bell\x07", "caf\xe9", "   ", ""],
)
async def test_an_invalid_client_request_id_is_replaced(api: httpx.AsyncClient, value: str) -> None:
    response = await api.get("/api/nowhere/", headers=[("X-Request-Id", value.encode("latin-1"))])
    replaced = response.headers["X-Request-Id"]
    assert replaced
    assert replaced != value
    assert len(replaced) <= 200
    assert replaced.isascii() and replaced.isprintable()


# the error envelope


async def test_unknown_route_is_404_in_the_envelope(api: httpx.AsyncClient, world: World) -> None:
    for path in ("/api/nowhere/", "/nowhere", "/api/auth/me/extra/"):
        response = await api.get(path, headers=world.admin.headers)
        assert_error(response, 404)
        assert response.json() == {"errors": {"detail": "Not found."}}


async def test_wrong_method_is_405_with_allow(api: httpx.AsyncClient, world: World) -> None:
    for method, path, allowed in (
        ("DELETE", "/api/auth/me/", {"GET"}),
        ("GET", "/api/auth/login/", {"POST"}),
        ("PUT", "/api/auth/tokens/", {"GET", "POST"}),
        ("GET", f"/api/users/{world.user.profile_id}/", {"PATCH"}),
    ):
        response = await api.request(method, path, headers=world.admin.headers)
        assert_error(response, 405)
        allow = {part.strip() for part in response.headers["Allow"].split(",")}
        assert allowed <= allow, (path, allow)
        assert method not in allow


async def test_missing_token_is_401_with_www_authenticate(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/users/")
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_forbidden_is_403(api: httpx.AsyncClient, world: World) -> None:
    response = await api.post(
        "/api/users/",
        json={"email": unique_email(), "password": PASSWORD, "role": "user"},
        headers=world.user.headers,
    )
    assert_error(response, 403)


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"email": "a@b.c",}', b"not json", b'{"email": "a@b.c"', b"\xff\xfe"],
)
async def test_malformed_json_is_400(api: httpx.AsyncClient, body: bytes) -> None:
    response = await api.post(
        "/api/auth/login/", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400)


async def test_a_body_that_is_not_an_object_is_400(api: httpx.AsyncClient, world: World) -> None:
    for body in ([], "text", 3, None):
        response = await api.post("/api/auth/tokens/", json=body, headers=world.admin.headers)
        assert response.status_code == 400, body
        assert response.json()["errors"]


async def test_unknown_body_field_is_400_naming_it(api: httpx.AsyncClient, world: World) -> None:
    response = await api.post(
        "/api/auth/login/",
        json={"email": world.admin.email, "password": PASSWORD, "remember_me": True},
    )
    assert_error(response, 400, {"remember_me"})
    patch = await api.patch(
        f"/api/users/{world.user.profile_id}/",
        json={"role": "user", "nickname": "x"},
        headers=world.admin.headers,
    )
    assert_error(patch, 400, {"nickname"})


async def test_field_errors_name_every_field(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/auth/register/", json={"org_name": "", "email": "x", "password": "short"}
    )
    assert_error(response, 400, {"org_name", "email", "password"})


async def test_unknown_query_parameter_is_400_naming_it(
    api: httpx.AsyncClient, world: World
) -> None:
    for path in ("/api/users/", "/api/auth/tokens/"):
        response = await api.get(f"{path}?colour=red&page=1", headers=world.admin.headers)
        assert_error(response, 400, {"colour"})
    response = await api.get("/api/auth/me/?page=1", headers=world.admin.headers)
    assert_error(response, 400, {"page"})
    for path, body in (
        ("/api/auth/login/", {"email": world.admin.email, "password": PASSWORD}),
        ("/api/auth/refresh/", {"refresh_token": world.admin.refresh_token}),
        ("/api/auth/tokens/", {"name": "x"}),
        ("/api/users/", {"email": unique_email(), "password": PASSWORD, "role": "user"}),
    ):
        response = await api.post(f"{path}?debug=1", json=body, headers=world.admin.headers)
        assert_error(response, 400, {"debug"})
    # Nothing was done: the refresh token is still good, no user was added.
    refreshed = await api.post(
        "/api/auth/refresh/", json={"refresh_token": world.admin.refresh_token}
    )
    assert refreshed.status_code == 200
    users = await api.get("/api/users/", headers=world.admin.headers)
    assert users.json()["count"] == 2


# body size


async def test_body_over_the_limit_is_413(database_url: str) -> None:
    async with client_of(fresh_app(database_url, body_max_bytes=200)) as client:
        small = {"email": unique_email(), "password": "wrong-password"}
        fits = await client.post("/api/auth/login/", json=small)
        assert fits.status_code == 401
        big = {**small, "password": "p" * 300}
        response = await client.post("/api/auth/login/", json=big)
        assert_error(response, 413)

        async def chunks() -> AsyncIterator[bytes]:
            data = json.dumps(big).encode()
            for start in range(0, len(data), 50):
                yield data[start : start + 50]

        streamed = await client.post(
            "/api/auth/login/", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in streamed.request.headers
        assert_error(streamed, 413)

        async def small_chunks() -> AsyncIterator[bytes]:
            data = json.dumps(small).encode()
            for start in range(0, len(data), 10):
                yield data[start : start + 10]

        streamed_fits = await client.post(
            "/api/auth/login/", content=small_chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed_fits.status_code == 401, streamed_fits.text


async def test_a_bad_content_length_is_refused(database_url: str) -> None:
    async with client_of(fresh_app(database_url, body_max_bytes=200)) as client:
        response = await client.post(
            "/api/auth/login/",
            content=b"{}",
            headers={"Content-Type": "application/json", "Content-Length": "abc"},
        )
        assert response.status_code in (400, 413)
        assert response.json()["errors"]


# 500


async def test_a_crash_is_a_500_without_a_stack_trace(database_url: str) -> None:
    app = fresh_app(database_url)

    @app.get("/api/boom/")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    async with client_of(app) as client:
        response = await client.get("/api/boom/", headers={"X-Request-Id": "req-boom-42"})
        assert_error(response, 500)
        assert response.headers["X-Request-Id"] == "req-boom-42"
        detail = response.json()["errors"]["detail"]
        assert "req-boom-42" in detail
        for leak in ("Traceback", "RuntimeError", "hunter2", "secret internals", ".py"):
            assert leak not in response.text

        generated = await client.get("/api/boom/")
        assert generated.status_code == 500
        assert generated.headers["X-Request-Id"] in generated.json()["errors"]["detail"]
        # The app carries on.
        assert (await client.get("/healthz")).status_code == 200


# OpenAPI and docs


async def test_openapi_document(api: httpx.AsyncClient) -> None:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1.")
    for path in (
        "/api/auth/register/",
        "/api/auth/login/",
        "/api/auth/refresh/",
        "/api/auth/logout/",
        "/api/auth/me/",
        "/api/auth/tokens/",
        "/api/auth/tokens/{token_id}/",
        "/api/users/",
        "/api/users/{profile_id}/",
        "/healthz",
        "/readyz",
    ):
        assert path in document["paths"], path
    assert set(document["paths"]["/api/users/"]) >= {"get", "post"}


async def test_docs_page(api: httpx.AsyncClient) -> None:
    response = await api.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text
    assert response.headers["X-Request-Id"]


async def test_rate_limit_storage_away_is_a_503_with_the_request_id(database_url: str) -> None:
    # Nothing listens on port 1: every use of the storage fails.
    app = fresh_app(database_url, redis_url="redis://127.0.0.1:1/0")
    async with client_of(app) as client:
        response = await client.get("/api/auth/me/", headers={"X-Request-Id": "req-no-redis"})
        assert response.status_code == 503
        assert response.headers["X-Request-Id"] == "req-no-redis"
        assert response.headers["Retry-After"] == "5"
        detail = response.json()["errors"]["detail"]
        assert "Redis" in detail and "req-no-redis" in detail
        assert "Traceback" not in response.text
        # The probes do not use the storage; /readyz names it.
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert set(ready.json()["errors"]) == {"redis"}


async def test_a_database_that_does_not_answer_is_503(tmp_path: Path) -> None:
    app = fresh_app(f"sqlite:///{tmp_path}/no/such/dir/crm.sqlite3")
    async with client_of(app) as client:
        assert (await client.get("/healthz")).status_code == 200
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert set(response.json()["errors"]) == {"database"}
        login = await client.post(
            "/api/auth/login/",
            json={"email": "a@example.com", "password": "x" * 8},
            headers={"X-Request-Id": "req-no-db"},
        )
        assert login.status_code == 503
        assert login.json() == {
            "errors": {
                "detail": "The database does not answer; try again shortly (request id req-no-db)."
            }
        }
