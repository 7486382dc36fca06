"""PostgreSQL or Redis going away under a real `crm serve`: a clear 503 with the request id
(never a 500, never a hang), /readyz naming what is away, and by itself back to 200 once it
returns. The test brings its own throwaway PostgreSQL cluster and Redis (scripts/services
on free ports), whatever database the suite runs on: the shared ones are never touched."""

import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, unique_email
from tests.servers import crm_server, free_port

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "services"
# A request is answered within the app's bounds on waiting (5 s to connect); past this it
# hangs.
REQUEST_SECONDS = 20
# Back to 200 well within this once the service is up again.
RECOVERY_SECONDS = 60


@dataclass
class Services:
    env: dict[str, str]
    database_url: str
    redis_url: str

    def run(self, action: str) -> str:
        result = subprocess.run(
            ["bash", str(SCRIPT), action],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,  # start may install PostgreSQL and Redis on a fresh machine
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    # In /tmp itself: the cluster's owner (postgres, when run as root) must reach it.
    directory = tempfile.mkdtemp(prefix="crm-faults-")
    env = {
        **os.environ,
        "CRM_SERVICES_DIR": directory,
        "CRM_PG_PORT": str(free_port()),
        "CRM_REDIS_PORT": str(free_port()),
    }
    services = Services(env, "", "")
    urls = dict(line.split("=", 1) for line in services.run("start").split())
    services.database_url = urls["CRM_TEST_DATABASE_URL"]
    services.redis_url = urls["CRM_TEST_REDIS_URL"]
    try:
        yield services
    finally:
        services.run("stop")


@dataclass
class Caller:
    client: httpx.Client
    headers: dict[str, str]


@pytest.fixture(scope="module")
def server(services: Services) -> Iterator[str]:
    with crm_server(
        services.database_url, redis_url=services.redis_url, rate_limit="100000/10seconds"
    ) as base_url:
        yield base_url


def caller(base_url: str, client: httpx.Client) -> Caller:
    response = client.post(
        f"{base_url}/api/auth/register/",
        json={"org_name": "Faults", "email": unique_email("faults"), "password": PASSWORD},
    )
    assert response.status_code == 201, response.text
    return Caller(client, {"Authorization": f"Bearer {response.json()['access_token']}"})


def assert_unavailable(response: httpx.Response, request_id: str, service: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["X-Request-Id"] == request_id
    assert response.headers["Retry-After"].isdigit()
    assert response.json() == {
        "errors": {
            "detail": f"{service} does not answer; try again shortly (request id {request_id})."
        }
    }


def until_ok(call: Callable[[], httpx.Response]) -> httpx.Response:
    """`call` repeated until it answers 2xx, within RECOVERY_SECONDS; what it answers
    meanwhile is a 503, never anything else."""
    deadline = time.monotonic() + RECOVERY_SECONDS
    while True:
        response = call()
        if response.is_success:
            return response
        assert response.status_code == 503, response.text
        assert time.monotonic() < deadline, f"still {response.status_code}: {response.text}"
        time.sleep(0.1)  # polling a recovery, not waiting for a result


def check_away_and_back(
    services: Services, base_url: str, service: str, name: str, key: str
) -> None:
    with httpx.Client(base_url=base_url, timeout=REQUEST_SECONDS) as client:
        acme, globex = caller(base_url, client), caller(base_url, client)
        before = client.post("/api/leads/", json={"title": "Before"}, headers=acme.headers)
        assert before.status_code == 201

        services.run(f"stop-{service}")
        try:
            request_id = f"req-{service}-{uuid.uuid4().hex[:8]}"
            listed = client.get("/api/leads/", headers={**acme.headers, "X-Request-Id": request_id})
            assert_unavailable(listed, request_id, name)
            login = client.post(
                "/api/auth/login/",
                json={"email": "nobody@example.com", "password": PASSWORD},
                headers={"X-Request-Id": request_id + "-login"},
            )
            assert_unavailable(login, request_id + "-login", name)
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert set(ready.json()["errors"]) == {key}
            assert client.get("/healthz").status_code == 200  # the process is up
        finally:
            services.run(f"start-{service}")

        # Back by itself: no restart of the server.
        assert until_ok(lambda: client.get("/readyz")).json() == {"status": "ok"}
        after = until_ok(
            lambda: client.post("/api/leads/", json={"title": "After"}, headers=acme.headers)
        )
        listed = client.get("/api/leads/", headers=acme.headers)
        assert listed.status_code == 200
        ids = {lead["id"] for lead in listed.json()["results"]}
        assert {before.json()["id"], after.json()["id"]} <= ids
        other = client.get(f"/api/leads/{after.json()['id']}/", headers=globex.headers)
        assert other.status_code == 404


def test_postgresql_away_is_503_and_recovers(services: Services, server: str) -> None:
    check_away_and_back(services, server, "postgres", "The database", "database")


def test_redis_away_is_503_and_recovers(services: Services, server: str) -> None:
    check_away_and_back(services, server, "redis", "Redis, which keeps the rate limits,", "redis")
