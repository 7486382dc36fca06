"""Logs: one line per request with request id, org, method, route template, status and
duration, readable or JSON (CRM_LOG_FORMAT), never a secret; a start-up line."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from crm import logs
from tests.apps import client_of, fresh_app
from tests.conftest import PASSWORD, make_settings, unique_email


@pytest.fixture
def captured(database_url: str) -> Iterator[io.StringIO]:
    """What the `crm` loggers write while the test runs; the usual handler afterwards."""
    stream = io.StringIO()
    yield stream
    logs.configure(make_settings(database_url))


async def test_json_lines_name_the_route_template_and_hide_secrets(
    database_url: str, captured: io.StringIO
) -> None:
    app = fresh_app(database_url, log_format="json")
    async with client_of(app) as client:
        # The suite's check of answers against the document makes its own app (and so its
        # own handler) at the first answer: that comes before the handler under test.
        assert (await client.get("/healthz")).status_code == 200
        logs.configure(app.state.settings, captured)
        email = unique_email()
        session = await client.post(
            "/api/auth/register/",
            json={"org_name": "Logged", "email": email, "password": PASSWORD},
        )
        token = session.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "trace-me-1"}
        lead = await client.post("/api/leads/", json={"title": "Secret deal"}, headers=headers)
        read = await client.get(f"/api/leads/{lead.json()['id']}/", headers=headers)
        missing = await client.get("/nowhere", headers={"Authorization": f"Bearer {token}"})
    assert (lead.status_code, read.status_code, missing.status_code) == (201, 200, 404)

    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    requests = [line for line in lines if line["logger"] == "crm.requests"]
    assert [(r["method"], r["route"], r["status"]) for r in requests] == [
        ("POST", "/api/auth/register/", 201),
        ("POST", "/api/leads/", 201),
        ("GET", "/api/leads/{record_id}/", 200),
        ("GET", None, 404),
    ]
    org_id = session.json()["org"]["id"]
    assert [r["org_id"] for r in requests] == [None, org_id, org_id, None]
    assert requests[2]["request_id"] == read.headers["X-Request-Id"] == "trace-me-1"
    assert all(
        isinstance(r["duration_ms"], float | int) and r["duration_ms"] >= 0 for r in requests
    )
    for secret in (token, PASSWORD, "Secret deal", session.json()["refresh_token"]):
        assert secret not in text


async def test_readable_lines_and_the_start_up_line(
    database_url: str, captured: io.StringIO
) -> None:
    app = fresh_app(database_url, log_level="info")
    async with client_of(app) as client:
        assert (await client.get("/healthz")).status_code == 200  # as above
        logs.configure(app.state.settings, captured)
        async with app.router.lifespan_context(app):
            response = await client.get("/healthz")
    assert response.status_code == 200
    first, *rest = captured.getvalue().splitlines()
    assert "crm " in first and f"database {app.state.db.dialect}" in first
    assert "rate limits in" in first and "@" not in first  # no URL, so no password
    assert any(
        "GET /healthz 200 " in line and response.headers["X-Request-Id"] in line for line in rest
    )


def test_the_level_keeps_request_lines_out(database_url: str, captured: io.StringIO) -> None:
    settings = make_settings(database_url, log_level="WARNING")
    logs.configure(settings, captured)
    logs.log_request("id", None, "GET", "/healthz", 200, 1.0)
    logging.getLogger("crm").warning("kept")
    assert captured.getvalue().strip().endswith("kept")
    assert "/healthz" not in captured.getvalue()
