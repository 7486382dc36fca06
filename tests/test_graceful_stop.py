"""SIGTERM to `crm serve --workers 2`: a connection opened while the workers drain is
refused at once (never left hanging), and a request in flight is still answered."""

import signal
import socket
import time

import orjson
import pytest

from tests.raw_http import connect, read_response
from tests.servers import RUNNING, crm_server

# A connection is answered or refused well within this; one left hanging is not.
PROBE_SECONDS = 3
DRAIN_SECONDS = 15


def probe(base_url: str) -> str:
    """How a new connection fares: "served", "closed" (taken by a worker that was stopping
    and closed unanswered: a client retries) or "refused"; a hanging one fails the test."""
    try:
        with connect(base_url, timeout=PROBE_SECONDS) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            response = read_response(sock)
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        pytest.fail(f"a connection opened while draining hung for {PROBE_SECONDS} s")
    except ConnectionError:  # reset, or closed before an answer
        return "closed"
    assert response.status == 200, response
    return "served"


def test_sigterm_refuses_new_connections_and_answers_the_request_in_flight(
    database_url: str,
) -> None:
    with crm_server(database_url, workers=2) as base_url:
        process = RUNNING[base_url]
        body = orjson.dumps({"email": 1, "password": "x"})
        in_flight = connect(base_url)
        in_flight.sendall(
            b"POST /api/auth/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        # The 100 Continue comes once the app asks for the body: the request is in flight.
        assert read_response(in_flight).status == 100

        process.send_signal(signal.SIGTERM)
        # Served until the workers stop accepting, refused from then on; never hanging.
        deadline = time.monotonic() + DRAIN_SECONDS
        while probe(base_url) != "refused":
            assert time.monotonic() < deadline, "still accepting long after SIGTERM"

        in_flight.sendall(body)
        response = read_response(in_flight)
        in_flight.close()
        assert response.status == 400, response
        assert set(response.json()["errors"]) == {"email"}
        assert process.wait(timeout=DRAIN_SECONDS) == 0
        # And nothing listens any more.
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(
                ("127.0.0.1", int(base_url.rsplit(":", 1)[1])), timeout=PROBE_SECONDS
            ),
        ):
            pass
