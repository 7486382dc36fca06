"""/metrics (CRM_METRICS=true): Prometheus text with requests by route template and status,
their latency and the database pool; 404 when off, never rate-limited, never a tenant's data;
with several workers a scrape answers for the whole server."""

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crm.db import Database
from crm.metrics import MULTIPROC_DIR
from tests.apps import client_of, fresh_app
from tests.conftest import World, count_statements, register
from tests.servers import crm_server

LEAD_ROUTE = "/api/leads/{record_id}/"
STARTUP_SECONDS = 120  # both workers of a loaded machine up


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests(scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], **labels: str) -> float:
    return scrape.get(("crm_http_requests_total", frozenset(labels.items())), 0)


async def test_requests_by_route_template_and_status_without_tenant_data(
    database_url: str,
) -> None:
    app = fresh_app(database_url, metrics=True, rate_limit="10/minute")
    async with client_of(app) as client:
        admin = await register(client, "Metered")
        other = await register(client, "Elsewhere")
        created = await client.post(
            "/api/leads/",
            json={"title": "Private deal", "email": "jane@metered.test"},
            headers=admin.headers,
        )
        assert created.status_code == 201
        lead = created.json()["id"]
        for _ in range(3):
            read = await client.get(f"/api/leads/{lead}/", headers=admin.headers)
            assert read.status_code == 200
        theirs = await client.get(f"/api/leads/{lead}/", headers=other.headers)
        assert theirs.status_code == 404  # another org cannot see it
        missing = await client.get(f"/api/leads/{lead}/nothing-{admin.org_id}/")
        assert missing.status_code == 404

        # Far more scrapes than the limit allows a client: none counts against it.
        with count_statements(app) as counter:
            scrapes = [await client.get("/metrics") for _ in range(15)]
        assert counter.count == 0  # a scrape asks the database nothing
    assert {response.status_code for response in scrapes} == {200}
    assert all("RateLimit-Limit" not in response.headers for response in scrapes)
    assert scrapes[0].headers["content-type"].startswith("text/plain")

    scrape = samples(scrapes[-1].text)
    assert requests(scrape, method="GET", route=LEAD_ROUTE, status="200") == 3
    assert requests(scrape, method="GET", route=LEAD_ROUTE, status="404") == 1
    assert requests(scrape, method="POST", route="/api/leads/", status="201") == 1
    assert requests(scrape, method="GET", route="none", status="404") == 1
    assert requests(scrape, method="GET", route="/metrics", status="200") == 14
    latency = (
        "crm_http_request_duration_seconds_count",
        frozenset({"method": "GET", "route": LEAD_ROUTE, "status": "200"}.items()),
    )
    assert scrape[latency] == 3
    sizes = [engine.pool.size() for engine in app.state.db.engines]
    assert scrape[("crm_db_pool_size", frozenset())] == sum(sizes)
    # Between requests no connection is in use, and the pool holds those it opened.
    assert scrape[("crm_db_pool_checked_out", frozenset())] == 0
    assert scrape[("crm_db_pool_idle", frozenset())] >= 1
    assert scrape[("crm_db_pool_overflow", frozenset())] == 0

    text = scrapes[-1].text
    for secret in (lead, admin.org_id, other.org_id, admin.email, "jane@metered.test", admin.token):
        assert secret not in text
    assert "Metered" not in text and "Private deal" not in text and "nothing-" not in text


async def test_off_by_default(api: httpx.AsyncClient, world: World) -> None:
    for headers in ({}, world.admin.headers):
        response = await api.get("/metrics", headers=headers)
        assert response.status_code == 404
        assert response.json()["errors"]["detail"]


def test_a_scrape_answers_for_every_worker(database_url: str) -> None:
    with crm_server(database_url, workers=2, metrics="true") as base_url:

        def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
            # A connection of its own each time, so that either worker may answer.
            response = httpx.get(f"{base_url}/metrics", headers={"Connection": "close"})
            assert response.status_code == 200
            return samples(response.text)

        # Each worker reports its pool as it starts: both are up when the sizes add up.
        both = 2 * sum(engine.pool.size() for engine in Database(database_url).engines)
        deadline = time.monotonic() + STARTUP_SECONDS
        while (size := scrape()[("crm_db_pool_size", frozenset())]) < both:
            assert time.monotonic() < deadline, f"one worker's pool only: {size}"
            time.sleep(0.1)  # polling for the second worker, not waiting for a result
        assert size == both

        for _ in range(20):
            response = httpx.get(f"{base_url}/readyz", headers={"Connection": "close"})
            assert response.status_code == 200
        counts = {requests(scrape(), method="GET", route="/readyz", status="200") for _ in range(6)}
    assert counts == {20}


async def test_a_scrape_answers_while_a_worker_is_creating_its_file(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that is starting has created its file but not sized it yet: the scrape
    still answers (with the figures of the others; here, in one process, there are none)."""
    monkeypatch.setenv(MULTIPROC_DIR, str(tmp_path))
    (tmp_path / "counter_999999.db").touch()
    app = fresh_app(database_url, metrics=True)
    async with client_of(app) as client:
        admin = await register(client, "Starting")
        assert (await client.get("/api/leads/", headers=admin.headers)).status_code == 200
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert samples(response.text) == {}
