"""What a worker process keeps between requests is never stale in another: against
`crm serve --workers 2`, each request sent to the worker chosen (found through the kernel's
table of connections)."""

import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.conftest import World
from tests.raw_http import RawResponse, connect, read_response
from tests.servers import crm_server, worker_of, worker_pids

WORKERS_SECONDS = 60  # a deadline for finding each worker; a loaded machine starts slowly


def send(sock: socket.socket, method: str, path: str, token: str, body: Any = None) -> RawResponse:
    data = orjson.dumps(body) if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    return read_response(sock)


def to_worker(base_url: str, pid: int) -> socket.socket:
    """A connection that the worker `pid` serves: new ones until the kernel hands one to it."""
    deadline = time.monotonic() + WORKERS_SECONDS
    while time.monotonic() < deadline:
        sock = connect(base_url)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock).status == 200  # accepted: a worker holds it now
        if worker_of(base_url, sock) == pid:
            return sock
        sock.close()
    raise AssertionError(f"no connection reached worker {pid}")


def call(base_url: str, pid: int, method: str, path: str, token: str, body: Any = None) -> Any:
    with to_worker(base_url, pid) as sock:
        return send(sock, method, path, token, body)


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[tuple[str, int, int]]:
    """One `crm serve --workers 2` for the module: its URL and its two workers."""
    with crm_server(database_url, workers=2, rate_limit="off") as base_url:
        deadline = time.monotonic() + WORKERS_SECONDS
        while len(pids := sorted(worker_pids(base_url))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the second worker to start, not waiting for a result
        assert len(pids) == 2, pids
        yield base_url, pids[0], pids[1]


def test_a_revoked_token_is_refused_at_once_by_the_other_worker(
    server: tuple[str, int, int], world: World
) -> None:
    base_url, first, second = server
    token = world.admin.token
    created = call(base_url, first, "POST", "/api/leads/", token, {"title": "Kept"})
    assert created.status == 201, created.body
    url = f"/api/leads/{created.json()['id']}/"
    # Both workers have answered this token.
    assert call(base_url, second, "GET", url, token).status == 200
    assert call(base_url, first, "GET", url, token).status == 200
    assert call(base_url, second, "GET", url, world.other.token).status == 404

    assert call(base_url, first, "POST", "/api/auth/logout/", token).status == 204
    refused = call(base_url, second, "GET", url, token)
    assert refused.status == 401, refused.body
    assert call(base_url, first, "GET", url, token).status == 401


def test_a_changed_definition_is_read_at_once_by_the_other_worker(
    server: tuple[str, int, int], world: World
) -> None:
    base_url, first, second = server
    token = world.admin.token
    field = call(
        base_url,
        first,
        "POST",
        "/api/custom-fields/",
        token,
        {
            "entity": "lead",
            "key": "stage",
            "label": "Stage",
            "type": "dropdown",
            "options": ["cold", "warm"],
        },
    )
    assert field.status == 201, field.body
    field_url = f"/api/custom-fields/{field.json()['id']}/"

    def create(stage: str) -> RawResponse:
        body = {"title": f"Lead {stage}", "custom_fields": {"stage": stage}}
        response: RawResponse = call(base_url, second, "POST", "/api/leads/", token, body)
        return response

    def definitions(lead_url: str) -> list[dict[str, Any]]:
        response = call(base_url, second, "GET", lead_url, token)
        assert response.status == 200, response.body
        found: list[dict[str, Any]] = response.json()["custom_field_definitions"]
        return found

    # The second worker reads the definitions and keeps them.
    lead = create("warm")
    assert lead.status == 201, lead.body
    lead_url = f"/api/leads/{lead.json()['id']}/"
    assert [d["label"] for d in definitions(lead_url)] == ["Stage"]
    assert set(create("hot").json()["errors"]) == {"custom_fields.stage"}

    changed = call(
        base_url,
        first,
        "PATCH",
        field_url,
        token,
        {"label": "Temperature", "options": ["cold", "warm", "hot"]},
    )
    assert changed.status == 200, changed.body
    assert create("hot").status == 201
    assert [(d["label"], d["options"]) for d in definitions(lead_url)] == [
        ("Temperature", ["cold", "warm", "hot"])
    ]

    assert call(base_url, first, "DELETE", field_url, token).status == 204
    refused = create("warm")
    assert refused.status == 400
    assert refused.json()["errors"] == {"custom_fields.stage": "Unknown custom field."}
    assert definitions(lead_url) == []
    assert call(base_url, second, "GET", lead_url, world.other.token).status == 404
