"""A CSV upload timed in process (httpx.ASGITransport, no server): the import benchmark's lead
file uploaded once into a fresh org, with its wall time, the process's CPU time (every
thread: aiosqlite's too) and a digest of the answer (rows, messages; not the new ids), so
that two versions of the code can be compared back to back on the same file. The CPU time
is the process's and the event loop thread's alone: the rest is aiosqlite's thread.

    .venv/bin/python bench/import_timing.py [ROWS] [DATABASE_URL] [--runs N]

ROWS defaults to 20,000; DATABASE_URL to a fresh SQLite file (a PostgreSQL database given
here must exist and is migrated; its leads accumulate from run to run). Instructions:

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \
        .venv/bin/python bench/import_timing.py 5000 --callgrind
    callgrind_annotate /tmp/cg.out | head
"""

import argparse
import asyncio
import gc
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.import_bench import make_csv  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

from crm.app import create_app  # noqa: E402
from crm.migrations import upgrade  # noqa: E402


def digest(answer: dict[str, Any]) -> str:
    """The answer without its ids: which rows were created, updated or refused, and why."""
    shape = {
        "created": [entry["row"] for entry in answer["created"]],
        "updated": [entry["row"] for entry in answer["updated"]],
        "errors": answer["errors"],
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]


def instrument(on: bool) -> None:
    """Callgrind's counting on or off (under valgrind --tool=callgrind --instr-atstart=no)."""
    switch = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
    subprocess.run(switch, check=True, capture_output=True)


async def timed(url: str, data: bytes, runs: int, callgrind: bool) -> None:
    settings = make_settings(url, rate_limit="off", upload_max_bytes=1 << 30, redis_url=None)
    app = create_app(settings)
    gc.freeze()  # as crm serve does at start
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=600) as client:
        for _ in range(runs):
            email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
            register = {"org_name": "Bench", "email": email, "password": "bench-pass-123"}
            session = (await client.post("/api/auth/register/", json=register)).json()
            headers = {"Authorization": f"Bearer {session['access_token']}"}
            for key, kind in (("industry", "text"), ("bant_score", "number")):
                body = {"entity": "lead", "key": key, "label": key, "type": kind}
                await client.post("/api/custom-fields/", json=body, headers=headers)
            if callgrind:
                instrument(True)
            cpu, main, started = time.process_time(), time.thread_time(), time.perf_counter()
            response = await client.post(
                "/api/leads/upload/", files={"file": ("leads.csv", data)}, headers=headers
            )
            if callgrind:
                instrument(False)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            main = time.thread_time() - main
            answer = response.json()
            counts = "/".join(str(len(answer[name])) for name in ("created", "updated", "errors"))
            rows = sum(len(entries) for entries in answer.values())
            rate = rows / seconds
            print(
                f"{response.status_code} {counts} in {seconds:.2f} s ({rate:,.0f} rows/s),"
                f" CPU {cpu:.2f} s ({main:.2f} s in the event loop's thread),"
                f" answer {digest(answer)}",
                flush=True,
            )
    await app.state.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", type=int, nargs="?", default=20_000)
    parser.add_argument("url", nargs="?")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions during the upload only: run under"
        " valgrind --tool=callgrind --instr-atstart=no",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/timing.sqlite3"
        upgrade(url)
        path = Path(tmp) / "leads.csv"
        make_csv(path, args.rows)
        asyncio.run(timed(url, path.read_bytes(), args.runs, args.callgrind))


if __name__ == "__main__":
    main()
