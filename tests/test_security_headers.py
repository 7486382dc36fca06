"""Security headers on every answer, and CORS: off unless CRM_CORS_ORIGINS lists origins."""

import re

import httpx
import pytest
from pydantic import ValidationError

from crm.config import Settings
from crm.middleware import SECURITY_HEADERS
from tests.apps import client_of, fresh_app
from tests.conftest import PASSWORD, World

SITE = "https://app.example.com"
ELSEWHERE = "https://evil.example.net"


def assert_secured(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url, name)


async def test_every_kind_of_answer_carries_the_security_headers(
    api: httpx.AsyncClient, world: World
) -> None:
    login = await api.post(
        "/api/auth/login/", json={"email": world.user.email, "password": PASSWORD}
    )
    assert login.status_code == 200 and login.json()["access_token"]
    lead = await api.post("/api/leads/", json={"title": "Hardened"}, headers=world.admin.headers)
    assert lead.status_code == 201
    lead_url = f"/api/leads/{lead.json()['id']}/"
    responses = [
        login,  # carries tokens
        await api.post("/api/auth/refresh/", json={"refresh_token": login.json()["refresh_token"]}),
        await api.post("/api/auth/tokens/", json={"name": "ci"}, headers=world.admin.headers),
        lead,
        await api.get(lead_url, headers=world.admin.headers),
        await api.get(lead_url, headers=world.other.headers),  # 404: not in that org
        await api.head(lead_url, headers=world.admin.headers),
        await api.get("/api/leads/", headers=world.admin.headers),
        await api.get("/v2/lead_sources", headers=world.admin.headers),
        await api.get("/api/auth/me/"),  # 401
        await api.delete("/api/auth/me/", headers=world.admin.headers),  # 405
        await api.post("/api/leads/", content=b"{", headers=world.admin.headers),  # 415
        await api.get("/healthz"),
        await api.get("/readyz"),
        await api.get("/openapi.json"),
        await api.get("/docs"),
    ]
    assert [r.status_code for r in responses] == [
        *(200, 200, 201, 201, 200, 404, 200, 200, 200),
        *(401, 405, 415, 200, 200, 200, 200),
    ]
    for response in responses:
        assert_secured(response)


async def test_a_crash_and_a_refusal_carry_them_too(database_url: str) -> None:
    app = fresh_app(database_url, rate_limit="1/minute")

    @app.get("/api/boom/")
    async def boom() -> None:
        raise RuntimeError("boom")

    async with client_of(app) as client:
        crash = await client.get("/api/boom/")
        limited = await client.get("/api/boom/")
    assert (crash.status_code, limited.status_code) == (500, 429)
    assert_secured(crash)
    assert_secured(limited)


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_cors_is_off_by_default(api: httpx.AsyncClient, world: World) -> None:
    answer = await api.options("/api/leads/", headers=preflight(SITE))
    assert answer.status_code == 405
    assert "access-control-allow-origin" not in answer.headers
    simple = await api.get("/api/leads/", headers={**world.admin.headers, "Origin": SITE})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


async def test_cors_answers_only_the_listed_origins(database_url: str, world: World) -> None:
    app = fresh_app(database_url, cors_origins=f"{SITE},http://localhost:3000")
    async with client_of(app) as client:
        allowed = await client.options("/api/leads/", headers=preflight(SITE))
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == SITE
        assert "POST" in allowed.headers["access-control-allow-methods"]
        allowed_headers = allowed.headers["access-control-allow-headers"].lower()
        assert {"authorization", "content-type"} <= set(allowed_headers.replace(" ", "").split(","))
        assert "access-control-allow-credentials" not in allowed.headers  # bearer tokens only
        assert allowed.headers["X-Request-Id"]
        assert_secured(allowed)

        refused = await client.options("/api/leads/", headers=preflight(ELSEWHERE))
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers

        # The answer itself: the page may read it and the headers it needs, the other not.
        read = await client.get("/api/leads/", headers={**world.admin.headers, "Origin": SITE})
        assert read.status_code == 200
        assert read.headers["access-control-allow-origin"] == SITE
        exposed = read.headers["access-control-expose-headers"]
        assert "X-Request-Id" in exposed and "Retry-After" in exposed
        other = await client.get(
            "/api/leads/", headers={**world.admin.headers, "Origin": ELSEWHERE}
        )
        assert other.status_code == 200
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("https://app.example.com/", "more than an origin"),
        ("app.example.com", "not an http:// or https:// origin"),
        ("ftp://files.example.com", "not an http:// or https:// origin"),
        ("https://app.example.com:99999", "bad port"),
        ("*,https://app.example.com", "* alone"),
    ],
)
def test_cors_origins_are_validated(value: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)):
        Settings(_env_file=None, cors_origins=value)  # type: ignore[call-arg]


def test_cors_origins_are_read_as_browsers_send_them() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, cors_origins=" HTTPS://App.Example.com , http://localhost:3000"
    )
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")
    assert Settings(_env_file=None, cors_origins="*").cors_origins == ("*",)  # type: ignore[call-arg]
    assert Settings(_env_file=None).cors_origins == ()  # type: ignore[call-arg]
