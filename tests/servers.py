"""Real `crm serve` processes on loopback, for tests that need a server over TCP."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

CRM = Path(sys.executable).with_name("crm")
STARTUP_SECONDS = 120  # a deadline against a hang; a loaded machine starts slowly
# The `crm serve` process behind each base URL that crm_server yields, while it runs, and
# the file its standard error goes to.
RUNNING: dict[str, "subprocess.Popen[bytes]"] = {}
LOGS: dict[str, IO[bytes]] = {}


def server_log(base_url: str) -> str:
    """What the server behind the base URL has written to its standard error so far. Read
    at an offset (pread): the server shares the file's position and goes on appending."""
    log = LOGS[base_url]
    return os.pread(log.fileno(), os.fstat(log.fileno()).st_size, 0).decode(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def crm_server(database_url: str, workers: int = 1, **settings: str) -> Iterator[str]:
    """Runs `crm serve --workers N` with CRM_DATABASE_URL and the given CRM_* settings
    (keyword names without the prefix); yields its base URL and stops it afterwards."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    env["CRM_DATABASE_URL"] = database_url
    env.update({f"CRM_{key.upper()}": value for key, value in settings.items()})
    with tempfile.TemporaryFile() as log:  # the server's standard error
        process = subprocess.Popen(
            [
                str(CRM),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: nobody reads a pipe while the server runs, and once its buffer
            # is full of log lines the server would block writing the next one.
            stderr=log,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"crm serve exited: {log.read().decode()}")
                try:
                    if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("crm serve did not start in time")
                time.sleep(0.05)  # polling for readiness, not waiting for a result
            RUNNING[base_url] = process
            LOGS[base_url] = log
            yield base_url
        finally:
            RUNNING.pop(base_url, None)
            LOGS.pop(base_url, None)
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def worker_pids(base_url: str) -> set[int]:
    """The worker processes of the `crm serve` behind `base_url`: its supervisor's children
    started by multiprocessing's spawn (not its resource tracker)."""
    supervisor = RUNNING[base_url].pid
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:  # gone meanwhile
                continue
            # "pid (name) state ppid ...": the name may hold spaces, never a ')'.
            parent = int(stat.rpartition(")")[2].split()[1])
            if parent == supervisor and b"spawn_main" in command:
                pids.add(int(entry.name))
    return pids


def worker_of(base_url: str, sock: socket.socket) -> int | None:
    """The worker process holding the server's end of the connection `sock` (Linux: the
    kernel's table of TCP sockets and each worker's open files)."""
    server_port = sock.getpeername()[1]
    client_port = sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            inode = fields[9]
    if inode is None:
        return None
    for pid in worker_pids(base_url):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:  # gone meanwhile
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:  # closed meanwhile
                continue
    return None
