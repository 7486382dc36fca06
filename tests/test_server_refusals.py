"""What the HTTP server refuses before the app sees it (or before a route reads it) is
answered in the dialect's error envelope with an X-Request-Id, through a real `crm serve`."""

from collections.abc import Iterator

import pytest

from crm.middleware import SECURITY_HEADERS
from crm.server import MAX_HEADERS_BYTES, MAX_TARGET_BYTES
from tests.raw_http import RawResponse, raw_request
from tests.servers import crm_server


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[str]:
    with crm_server(database_url) as base_url:
        yield base_url


def get(target: bytes, *headers: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def assert_refused(response: RawResponse, path: bytes, status: int, reason: str) -> None:
    assert response.status == status, response
    assert response.headers["content-type"] == "application/json"
    request_id = response.headers["x-request-id"]
    assert request_id
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name.lower()] == value
    body = response.json()
    if path.startswith(b"/v2/"):
        [item] = body["errors"]
        assert reason in item["error"]["message"], body
        assert item["error"]["code"] != "error"  # a code named after the status
        assert body["meta"]["http_status"].startswith(f"{status} ")
        assert body["meta"]["logref"] == request_id
    else:
        assert list(body) == ["errors"] and list(body["errors"]) == ["detail"], body
        assert reason in body["errors"]["detail"], body


CASES = {
    "long-target": (
        lambda path: get(path + b"?search=" + b"a" * 100_000),
        414,
        f"longer than {MAX_TARGET_BYTES} bytes",
    ),
    "8-bit-path": (lambda path: get(path + b"\xff"), 400, "not valid HTTP"),
    "8-bit-query": (lambda path: get(path + b"?name=\xff"), 400, "not valid HTTP"),
    "percent-non-utf8-path": (
        lambda path: get(path + b"/%ff%fe"),
        400,
        "path is not valid UTF-8",
    ),
    "percent-non-utf8-query": (
        lambda path: get(path + b"?name=%ff"),
        400,
        "query string is not valid UTF-8",
    ),
    "nul-in-header": (lambda path: get(path, b"X-Note: a\x00b"), 400, "not valid HTTP"),
    "negative-content-length": (
        lambda path: get(path, b"Content-Length: -1", method=b"POST"),
        400,
        "Content-Length",
    ),
    "huge-headers": (
        lambda path: get(path, b"X-Note: " + b"a" * (MAX_HEADERS_BYTES + 1)),
        431,
        f"larger than {MAX_HEADERS_BYTES} bytes",
    ),
}


@pytest.mark.parametrize("path", [b"/api/leads/", b"/v2/lead_sources"], ids=["api", "v2"])
@pytest.mark.parametrize("case", list(CASES))
def test_refused_request_is_answered_in_the_envelope(server: str, path: bytes, case: str) -> None:
    build, status, reason = CASES[case]
    assert_refused(raw_request(server, build(path)), path, status, reason)


def test_refusal_keeps_the_clients_request_id(server: str) -> None:
    response = raw_request(
        server, get(b"/v2/lead_sources", b"X-Request-Id: probe-42", b"X-Note: a\x00b")
    )
    assert_refused(response, b"/v2/lead_sources", 400, "Invalid header value char")
    assert response.headers["x-request-id"] == "probe-42"
    assert response.json()["meta"]["logref"] == "probe-42"


def test_garbage_is_answered_in_the_api_envelope(server: str) -> None:
    response = raw_request(server, b"\x00\x01 not http\r\n\r\n")
    assert_refused(response, b"", 400, "not valid HTTP")


def test_a_target_at_the_bound_is_served(server: str) -> None:
    target = b"/api/leads/?search="
    target += b"a" * (MAX_TARGET_BYTES - len(target))
    response = raw_request(server, get(target))
    # Past the server: the app asks for a token.
    assert response.status == 401, response
    assert response.json() == {
        "errors": {"detail": "Authentication credentials were not provided or are invalid."}
    }
