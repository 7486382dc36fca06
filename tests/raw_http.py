"""Raw HTTP/1.1 over a socket, for requests that no client library would send."""

import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

TIMEOUT_SECONDS = 10


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def connect(base_url: str, timeout: float = TIMEOUT_SECONDS) -> socket.socket:
    parts = urlsplit(base_url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def read_response(sock: socket.socket) -> RawResponse:
    """One response (an interim 100 Continue too) read from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return RawResponse(int(status_line.split(" ")[1]), headers, body[:length])


def raw_request(base_url: str, request: bytes) -> RawResponse:
    """Sends `request` as it is on a new connection and reads the answer."""
    with connect(base_url) as sock:
        sock.sendall(request)
        return read_response(sock)
