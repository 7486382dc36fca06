"""The HTTP server: uvicorn with httptools, bounded and answering what it refuses in the
API's error envelope; a multiprocess supervisor that stops accepting as soon as it is told to
stop; and, on SIGTERM, every request already sent to it answered before it exits."""

import asyncio
import fcntl
import functools
import logging
import os
import sys
import tempfile
import termios
from collections.abc import Iterator
from contextlib import contextmanager
from socket import socket
from typing import Any

import httptools
import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.supervisors import multiprocess
from uvicorn.supervisors.multiprocess import Multiprocess

from crm.errors import DETAIL, error_body
from crm.metrics import MULTIPROC_DIR
from crm.middleware import SECURITY_HEADERS, pick_request_id
from crm.responses import JSONResponse

logger = logging.getLogger("crm")

# Far above any real request of this API (a list URL with every filter, a bearer token),
# low enough that nobody makes the server hold or parse megabytes of request head.
MAX_TARGET_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 32 * 1024
# On SIGTERM, how long the requests in flight have to be answered before the process exits
# anyway (gunicorn's graceful timeout).
GRACEFUL_SECONDS = 30


class Refused(Exception):
    """Raised from a parser callback: the request is answered `status` and closed."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


class Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with bounds on the request target and headers, and its
    plain-text 400 for what the parser refuses replaced by the dialect's error envelope
    with an X-Request-Id (what the parser lets through, the app's Pipeline checks)."""

    headers_bytes = 0
    # Set by shutdown() on a connection whose request has begun to arrive: it is answered,
    # then closed.
    draining = False
    head_begun = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.headers_bytes = 0
        self.head_begun = True

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.head_begun = False
        if self.draining and self.cycle is not None:
            self.cycle.keep_alive = False

    def shutdown(self) -> None:
        # uvicorn closes at once a connection with no request being answered, even one whose
        # request is half parsed or unread in the socket: closed with unread data, the
        # client's connection is reset, unanswered. Those are answered first.
        idle = self.cycle is None or self.cycle.response_complete
        if idle and (self.head_begun or self.unread_bytes() > 0):
            self.draining = True
            return
        super().shutdown()

    def unread_bytes(self) -> int:
        """What the client has sent that the kernel holds and the protocol has not read."""
        sock = self.transport.get_extra_info("socket")
        try:
            pending = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (AttributeError, OSError):  # no socket any more
            return 0
        return int.from_bytes(pending, sys.byteorder)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_TARGET_BYTES:
            raise Refused(414, f"The request target is longer than {MAX_TARGET_BYTES} bytes.")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers_bytes += len(name) + len(value)
        if self.headers_bytes > MAX_HEADERS_BYTES:
            raise Refused(431, f"The request headers are larger than {MAX_HEADERS_BYTES} bytes.")
        super().on_header(name, value)

    def data_received(self, data: bytes) -> None:
        # uvicorn's own, but for the answer to a request the parser refuses.
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as error:
            self.refuse(error, data)

    def refuse(self, error: httptools.HttpParserError, data: bytes) -> None:
        # A callback's own exception is the context of the parser's error.
        cause = error.__context__ if isinstance(error, httptools.HttpParserCallbackError) else error
        if isinstance(cause, Refused):
            status, reason = cause.status, cause.reason
        elif isinstance(cause, httptools.HttpParserError):
            status, reason = 400, f"The request is not valid HTTP: {cause}."
        else:
            status, reason = 400, "The request is not valid HTTP."
        # What was read of the request: enough for the dialect and the client's id. The
        # parser hands the target over only once it is whole; a refused one is still in the
        # request line, "METHOD /target HTTP/1.1".
        url: bytes = getattr(self, "url", b"")
        if not url:
            request_line = data.partition(b"\r\n")[0].split(b" ")
            url = request_line[1] if len(request_line) > 1 else b""
        path = url.partition(b"?")[0].decode("latin-1")
        request_id = pick_request_id(dict(self.headers or ()).get(b"x-request-id"))
        logger.warning("refused request %s: %d %s", request_id, status, reason)
        body = JSONResponse(error_body(path, status, {DETAIL: reason}, request_id)).body
        head = [STATUS_LINE[status]]
        for name, value in [
            *self.server_state.default_headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode()),
            *((name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()),
            (b"connection", b"close"),
        ]:
            head.append(name + b": " + value + b"\r\n")
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()


class Server(uvicorn.Server):
    """uvicorn's server, but on shutdown it first takes the connections waiting in the
    listening socket's queue: closed, the socket would reset them, though their clients have
    sent their requests. They are answered like the others in flight."""

    async def shutdown(self, sockets: list[socket] | None = None) -> None:
        waiting = [conn for server in self.servers for conn in accept_waiting(server.sockets)]
        # Then close every copy of the listening socket at once, with nothing awaited in
        # between, so that no connection can queue behind them unseen.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        loop = asyncio.get_running_loop()
        protocol = functools.partial(  # uvicorn's own protocol factory
            self.config.http_protocol_class,  # type: ignore[call-arg]
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        for conn in waiting:
            await loop.connect_accepted_socket(protocol, conn)
        await super().shutdown(sockets)


def accept_waiting(listeners: Any) -> list[socket]:
    """Every connection the kernel has queued on these listening sockets, accepted."""
    accepted = []
    for listener in listeners:
        with socket(fileno=os.dup(listener.fileno())) as sock:
            sock.setblocking(False)
            while True:
                try:
                    conn, _address = sock.accept()
                except (BlockingIOError, InterruptedError):
                    break
                conn.setblocking(False)
                accepted.append(conn)
    return accepted


UVICORN_PROCESS = multiprocess.Process


class WorkerProcess(UVICORN_PROCESS):
    """A worker of the supervisor, running our Server."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = Server(config=self.config)
        return self._server


class Supervisor(Multiprocess):
    """uvicorn's supervisor of several workers, but closing its own copy of the listening
    socket as soon as it stops: while any process holds it the kernel keeps accepting
    connections into the backlog, and once the workers stop accepting, nobody would answer
    them until the last in-flight request is done. Closed, they are refused at once, while
    the workers finish what they took."""

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()

    def run(self) -> None:
        # uvicorn makes each worker by its module's name `Process`: ours, while this runs.
        multiprocess.Process = WorkerProcess  # type: ignore[misc]
        try:
            super().run()
        finally:
            multiprocess.Process = UVICORN_PROCESS  # type: ignore[misc]

    # A worker that is gone (died, replaced, or retired by SIGHUP or SIGTTOU) no longer
    # counts in the pool gauges, which sum the live workers' figures; its request counts stay.

    def keep_subprocess_alive(self) -> None:
        with self.retiring():
            super().keep_subprocess_alive()

    def handle_signals(self) -> None:
        with self.retiring():
            super().handle_signals()

    @contextmanager
    def retiring(self) -> Iterator[None]:
        before = {process.pid for process in self.processes}
        yield
        directory = os.environ.get(MULTIPROC_DIR)
        if directory:
            for pid in before - {process.pid for process in self.processes}:
                if pid is not None:
                    mark_process_dead(pid, directory)


@contextmanager
def metrics_directory(metrics: bool) -> Iterator[None]:
    """With metrics on, a directory of the workers' figures for the lifetime of the server
    (prometheus-client's multiprocess mode), unless PROMETHEUS_MULTIPROC_DIR names one."""
    if not metrics or os.environ.get(MULTIPROC_DIR):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="crm-metrics-") as directory:
        os.environ[MULTIPROC_DIR] = directory  # the workers, started after this, inherit it
        try:
            yield
        finally:
            del os.environ[MULTIPROC_DIR]


def serve(host: str, port: int, workers: int, *, metrics: bool = False) -> None:
    config = uvicorn.Config(
        "crm.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=Protocol,
        access_log=False,
        proxy_headers=False,
        # uvicorn kills a worker that has not answered its supervisor in 5 s, which a
        # worker still importing on a busy machine may not; 30 s, as gunicorn's timeout.
        timeout_worker_healthcheck=30,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    try:
        if workers > 1:
            sockets: list[socket] = [config.bind_socket()]
            with metrics_directory(metrics):
                Supervisor(config, sockets=sockets).run()
            return
        server = Server(config)
        server.run()
    except KeyboardInterrupt:  # as uvicorn.run: Ctrl-C is a way to stop
        return
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
