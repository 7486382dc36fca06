"""Where a CSV upload's time goes: the import benchmark's lead file uploaded once in process
(httpx.ASGITransport, no server), under pyinstrument's sampling profiler.

    .venv/bin/python bench/import_profile.py [ROWS] [DATABASE_URL]

ROWS defaults to 20,000; DATABASE_URL to a fresh SQLite file (a PostgreSQL database given
here must exist and is migrated; its leads accumulate from run to run).
"""

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from pyinstrument import Profiler

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.import_bench import make_csv  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

from crm.app import create_app  # noqa: E402
from crm.migrations import upgrade  # noqa: E402


async def profile(url: str, data: bytes) -> None:
    settings = make_settings(url, rate_limit="off", upload_max_bytes=1 << 30, redis_url=None)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=600) as client:
        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        register = {"org_name": "Bench", "email": email, "password": "bench-pass-123"}
        session = (await client.post("/api/auth/register/", json=register)).json()
        headers = {"Authorization": f"Bearer {session['access_token']}"}
        for key, kind in (("industry", "text"), ("bant_score", "number")):
            body = {"entity": "lead", "key": key, "label": key, "type": kind}
            await client.post("/api/custom-fields/", json=body, headers=headers)
        profiler = Profiler(async_mode="enabled")
        started = time.perf_counter()
        profiler.start()
        response = await client.post(
            "/api/leads/upload/", files={"file": ("leads.csv", data)}, headers=headers
        )
        profiler.stop()
        seconds = time.perf_counter() - started
        counts = {name: len(entries) for name, entries in response.json().items()}
        print(f"{response.status_code} in {seconds:.1f} s: {counts}")
        print(profiler.output_text(color=False))
    await app.state.db.dispose()


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        url = sys.argv[2] if len(sys.argv) > 2 else f"sqlite:///{tmp}/profile.sqlite3"
        upgrade(url)
        path = Path(tmp) / "leads.csv"
        make_csv(path, rows)
        asyncio.run(profile(url, path.read_bytes()))


if __name__ == "__main__":
    main()
