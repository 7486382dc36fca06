"""A CSV upload timed in process (httpx.ASGITransport, no server): the import benchmark's lead
file uploaded once into a fresh org, with its wall time, the process's CPU time (every
thread: aiosqlite's too) and a digest of the answer (rows, messages; not the new ids), so
that two versions of the code can be compared back to back on the same file.

    .venv/bin/python bench/import_timing.py [ROWS] [DATABASE_URL] [--runs N]

ROWS defaults to 20,000; DATABASE_URL to a fresh SQLite file (a PostgreSQL database given
here must exist and is migrated; its leads accumulate from run to run).
"""

import argparse
import asyncio
import gc
import hashlib
import json
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


async def timed(url: str, data: bytes, runs: int) -> None:
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
            cpu, started = time.process_time(), time.perf_counter()
            response = await client.post(
                "/api/leads/upload/", files={"file": ("leads.csv", data)}, headers=headers
            )
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            answer = response.json()
            counts = "/".join(str(len(answer[name])) for name in ("created", "updated", "errors"))
            rows = sum(len(entries) for entries in answer.values())
            rate = rows / seconds
            print(
                f"{response.status_code} {counts} in {seconds:.2f} s ({rate:,.0f} rows/s),"
                f" CPU {cpu:.2f} s, answer {digest(answer)}",
                flush=True,
            )
    await app.state.db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", type=int, nargs="?", default=20_000)
    parser.add_argument("url", nargs="?")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/timing.sqlite3"
        upgrade(url)
        path = Path(tmp) / "leads.csv"
        make_csv(path, args.rows)
        asyncio.run(timed(url, path.read_bytes(), args.runs))


if __name__ == "__main__":
    main()
