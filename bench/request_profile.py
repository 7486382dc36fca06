"""Where a request's time goes: the hot endpoints called in process, straight through the
ASGI interface (no HTTP client, no server), timed and profiled with pyinstrument.

    .venv/bin/python bench/request_profile.py [DATABASE_URL] [--profile CASE] [-n N]

DATABASE_URL defaults to a fresh SQLite file (a PostgreSQL database given here must exist;
it is migrated, and its leads accumulate from run to run). One org with an admin, the
custom fields `industry` (text, filterable) and `bant_score` (number), 2,000 leads uploaded
through the API. Prints, per case, the mean time of a request over N (500) after a warm-up,
its ratio to /healthz and its SQL statements; `--profile CASE` (detail, page3, filtered,
create, patch, healthz) prints pyinstrument's tree of N requests of that case.
"""

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pyinstrument import Profiler
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.import_bench import make_csv  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

from crm.app import create_app  # noqa: E402
from crm.migrations import upgrade  # noqa: E402

LEADS = 2_000
ROUNDS = 5


class Call:
    """One request through the app's ASGI interface."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(
        self, method: str, path: str, token: str | None = None, body: Any = None, query: str = ""
    ) -> tuple[int, Any]:
        raw = orjson.dumps(body) if body is not None else b""
        headers = [(b"host", b"bench")]
        if token:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        if raw:
            headers.append((b"content-type", b"application/json"))
            headers.append((b"content-length", b"%d" % len(raw)))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("bench", 80),
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # the client never disconnects
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        data = b"".join(chunks)
        return status, orjson.loads(data) if data else None


async def seed(call: Call, tmp: Path) -> tuple[str, str]:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    register = {"org_name": "Bench", "email": email, "password": "bench-pass-123"}
    status, session = await call("POST", "/api/auth/register/", body=register)
    assert status == 201, session
    token = session["access_token"]
    for key, kind in (("industry", "text"), ("bant_score", "number")):
        body = {"entity": "lead", "key": key, "label": key, "type": kind, "filterable": True}
        status, answer = await call("POST", "/api/custom-fields/", token, body)
        assert status == 201, answer
    csv = tmp / "leads.csv"
    make_csv(csv, LEADS)
    boundary = "benchboundary"
    data = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="l.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + csv.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    scope_headers = [
        (b"host", b"bench"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        (b"content-length", str(len(data)).encode()),
    ]
    await upload(call.app, scope_headers, data)
    status, page = await call("GET", "/api/leads/", token, query="page_size=1")
    # Past CRM_EXACT_COUNT_LIMIT the count is the planner's estimate, whatever it is.
    assert status == 200 and (page["count"] >= LEADS * 0.8 or page["count_estimated"]), page
    return token, page["results"][0]["id"]


async def upload(app: Any, headers: list[tuple[bytes, bytes]], data: bytes) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/leads/upload/",
        "raw_path": b"/api/leads/upload/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("bench", 80),
    }
    messages = [{"type": "http.request", "body": data, "more_body": False}]
    status = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()
        return {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    assert status == [200], status


def cases(call: Call, token: str, lead_id: str) -> dict[str, Callable[[], Any]]:
    counter = iter(range(10**9))

    def create() -> Any:
        n = next(counter)
        body = {
            "title": f"Bench {n}",
            "email": f"b{uuid.uuid4().hex[:12]}@bench.example",
            "tags": ["hot"],
            "custom_fields": {"industry": "saas", "bant_score": n % 100},
        }
        return call("POST", "/api/leads/", token, body)

    def patch() -> Any:
        body = {"title": f"Patched {next(counter)}", "custom_fields": {"bant_score": 5}}
        return call("PATCH", f"/api/leads/{lead_id}/", token, body)

    return {
        "healthz": lambda: call("GET", "/healthz"),
        "detail": lambda: call("GET", f"/api/leads/{lead_id}/", token),
        "page3": lambda: call("GET", "/api/leads/", token, query="page=3"),
        "filtered": lambda: call("GET", "/api/leads/", token, query="status=new&cf_industry=saas"),
        "create": create,
        "patch": patch,
    }


async def run(url: str, profile: str | None, n: int, py_spy: bool) -> None:
    app = create_app(make_settings(url, rate_limit="off", redis_url=None, log_level="WARNING"))
    call = Call(app)
    statements: list[str] = []
    for engine in app.state.db.engines:
        event.listen(
            engine.sync_engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_: statements.append(statement),
        )
    with tempfile.TemporaryDirectory() as tmp:
        token, lead_id = await seed(call, Path(tmp))
    table = cases(call, token, lead_id)
    counts: dict[str, int] = {}
    for name, request in table.items():
        for _ in range(50):  # warm-up: caches, prepared statements, the pool
            status, body = await request()
            assert status in (200, 201), (name, status, body)
        statements.clear()
        await request()
        counts[name] = len(statements)
    if profile:
        # Under py-spy (`py-spy record -- python bench/request_profile.py --profile detail
        # --py-spy`), only the loop; otherwise pyinstrument's tree of it.
        profiler = None if py_spy else Profiler(async_mode="enabled", interval=0.0005)
        if profiler:
            profiler.start()
        print("profiling", profile, file=sys.stderr, flush=True)
        for _ in range(n):
            await table[profile]()
        if profiler:
            profiler.stop()
            print(profiler.output_text(color=False, show_all=False))
    # CPU time of the process (the machine may be loaded: wall time is noise), the cases
    # interleaved in rounds, the best round of each.
    best: dict[str, float] = dict.fromkeys(table, float("inf"))
    walls: dict[str, float] = dict.fromkeys(table, float("inf"))
    for _ in range(ROUNDS if not profile else 0):
        for name, request in table.items():
            began, wall = time.process_time(), time.perf_counter()
            for _ in range(n // ROUNDS):
                await request()
            best[name] = min(best[name], (time.process_time() - began) / (n // ROUNDS))
            walls[name] = min(walls[name], (time.perf_counter() - wall) / (n // ROUNDS))
    for name in table:
        print(
            f"{name:9} CPU {best[name] * 1000:6.3f} ms ({best[name] / best['healthz']:5.1f} x"
            f" healthz), wall {walls[name] * 1000:6.3f} ms, {counts[name]} statements"
        )
    await app.state.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url", nargs="?")
    parser.add_argument("--profile")
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--py-spy", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/profile.sqlite3"
        upgrade(url)
        asyncio.run(run(url, args.profile, args.n, args.py_spy))


if __name__ == "__main__":
    main()
