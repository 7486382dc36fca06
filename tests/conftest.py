"""The test world: a fresh database per session (SQLite, or PostgreSQL when
CRM_TEST_DATABASE_URL is set), the app driven through HTTP, and per test two fresh orgs with
four identities: admin, user, the other org's admin, and anonymous."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from crm.app import create_app
from crm.auth import passwords
from crm.config import Settings
from crm.db import async_url
from crm.migrations import upgrade
from tests.openapi_check import hooks

TEST_DATABASE_URL = os.environ.get("CRM_TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL") or None
PASSWORD = "correct-horse-battery"


# Hypothesis sizes: "ci" (the default) keeps `make test` short and repeatable; `make fuzz` runs
# with --hypothesis-profile=fuzz. The tests share one org per test function, on purpose.
_HYPOTHESIS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("ci", max_examples=10, derandomize=True, database=None, **_HYPOTHESIS)
settings.register_profile("fuzz", max_examples=200, **_HYPOTHESIS)


def pytest_configure(config: pytest.Config) -> None:
    settings.load_profile(config.getoption("hypothesis_profile", None) or "ci")


def pytest_report_header(config: pytest.Config) -> list[str]:
    database = (
        f"PostgreSQL at {make_url(TEST_DATABASE_URL).render_as_string(hide_password=True)}"
        if TEST_DATABASE_URL
        else "SQLite (CRM_TEST_DATABASE_URL is not set: PostgreSQL is NOT tested in this run)"
    )
    redis = (
        f"Redis at {TEST_REDIS_URL}"
        if TEST_REDIS_URL
        else "in-process (CRM_TEST_REDIS_URL is not set: Redis-backed limits are NOT tested)"
    )
    return [f"crm database: {database}", f"crm rate-limit storage: {redis}"]


requires_redis = pytest.mark.skipif(TEST_REDIS_URL is None, reason="CRM_TEST_REDIS_URL is not set")


async def _admin(url: str, statement: str) -> None:
    engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(statement))
    await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database made for this session and migrated to head."""
    if TEST_DATABASE_URL is None:
        url = f"sqlite:///{tmp_path_factory.mktemp('db')}/crm-test.sqlite3"
        upgrade(url)
        yield url
        return
    base = make_url(TEST_DATABASE_URL)
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(TEST_DATABASE_URL, f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_admin(TEST_DATABASE_URL, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2id still, with the cheapest parameters: hashing is not what the tests test."""
    original = passwords._hasher
    passwords._hasher = PasswordHasher.from_parameters(CHEAPEST)
    yield
    passwords._hasher = original


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": TEST_REDIS_URL,
        # Present on every response, but high enough that no ordinary test reaches it.
        "rate_limit": "100000/10seconds",
        "auth_failure_limit": "100000/10seconds",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def app(database_url: str) -> FastAPI:
    return create_app(make_settings(database_url))


@contextmanager
def client_for(app: FastAPI) -> Iterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    yield httpx.AsyncClient(transport=transport, base_url="http://testserver", event_hooks=hooks())


@pytest.fixture(scope="session")
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    with client_for(app) as client:
        async with client:
            yield client


def unique_email(prefix: str = "person") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@dataclass
class Identity:
    """One caller: its token, profile and org ({} headers for anonymous)."""

    email: str = ""
    token: str = ""
    refresh_token: str = ""
    profile_id: str = ""
    org_id: str = ""
    user_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)


def identity_from_session(body: dict[str, Any]) -> Identity:
    return Identity(
        email=body["user"]["email"],
        token=body["access_token"],
        refresh_token=body["refresh_token"],
        profile_id=body["profile"]["id"],
        org_id=body["org"]["id"],
        user_id=body["user"]["id"],
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )


async def register(api: httpx.AsyncClient, org_name: str = "Acme") -> Identity:
    response = await api.post(
        "/api/auth/register/",
        json={"org_name": org_name, "email": unique_email("admin"), "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    return identity_from_session(response.json())


async def add_member(api: httpx.AsyncClient, admin: Identity, role: str = "user") -> Identity:
    email = unique_email(role)
    response = await api.post(
        "/api/users/",
        json={"email": email, "password": PASSWORD, "role": role},
        headers=admin.headers,
    )
    assert response.status_code == 201, response.text
    login = await api.post("/api/auth/login/", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return identity_from_session(login.json())


@dataclass
class World:
    admin: Identity
    user: Identity
    other: Identity  # the admin of another org
    anon: Identity


@pytest.fixture
async def world(api: httpx.AsyncClient) -> World:
    admin = await register(api, "Acme")
    user = await add_member(api, admin, "user")
    other = await register(api, "Globex")
    return World(admin=admin, user=user, other=other, anon=Identity())


TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK"})


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(app: FastAPI) -> Iterator[StatementCounter]:
    """Counts the SQL statements the app sends while the block runs."""
    counter = StatementCounter()
    engines = [engine.sync_engine for engine in app.state.db.engines]

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Transaction control (SQLite's explicit BEGIN) is no query.
        if statement.split(" ", 1)[0].upper() not in TRANSACTION_CONTROL:
            counter.statements.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield counter
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
