"""CSV import benchmark: a 100,000-row lead file uploaded over HTTP to a real `crm serve`, on
SQLite and on PostgreSQL, against PostgreSQL's own COPY of the same rows.

    make bench-import        # .venv/bin/python bench/import_bench.py

The file: unique emails but for 10 % of rows repeating an earlier row's email (updates),
1 % invalid (a malformed email or a non-numeric custom field), two custom fields (text and
number) and tags. Each database gets one org with an admin; the upload is timed from the
first byte sent to the answer, and the server's peak resident memory (VmHWM) is read from
/proc before it stops. On PostgreSQL the rows the upload wrote are then copied out and
COPYed back into a fresh table with the leads table's columns and indexes (LIKE … INCLUDING
ALL), which is the rate the database itself reaches on this machine.

PostgreSQL: CRM_TEST_DATABASE_URL's server when set (a database `crm_import_bench` is made
there), otherwise a throwaway cluster started by scripts/services on other ports. The figures
are written into bench/RESULTS.md, replacing the previous ones.
"""

import asyncio
import csv
import datetime
import io
import os
import platform
import random
import re
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import crm_server  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
REPEATS = 0.10
INVALID = 0.01
INDUSTRIES = ["saas", "retail", "energy", "health", "finance", "media", "logistics"]
TAGS = ["hot", "vip", "cold", "partner", "trade-fair", "newsletter"]
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- import-bench -->", "<!-- /import-bench -->"


def make_csv(path: Path, rows: int = ROWS, seed: int = 9) -> dict[str, int]:
    rng = random.Random(seed)
    emails: list[str] = []
    counts = {"rows": rows, "repeats": 0, "invalid": 0}
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(
            [
                "Title",
                "First Name",
                "Last Name",
                "Email",
                "Company Name",
                "Phone",
                "Tags",
                "cf_industry",
                "cf_bant_score",
            ]
        )
        for n in range(rows):
            if emails and rng.random() < REPEATS:
                email = rng.choice(emails)
                counts["repeats"] += 1
            else:
                email = f"lead{n}@example{n % 97}.com"
                emails.append(email)
            score: str = str(rng.randint(0, 100))
            if rng.random() < INVALID:
                counts["invalid"] += 1
                if rng.random() < 0.5:
                    email = f"not-an-email-{n}"
                else:
                    score = "lots"
            tags = "; ".join(rng.sample(TAGS, rng.randint(0, 3)))
            writer.writerow(
                [
                    f"Lead {n}",
                    f"First{n % 500}",
                    f"Last{n % 800}",
                    email,
                    f"Company {n % 3000}",
                    f"+1 555 {n:07d}",
                    tags,
                    rng.choice(INDUSTRIES),
                    score,
                ]
            )
    return counts


def peak_rss_mib(pid: int) -> float:
    """The peak resident memory of a process and its children (uvicorn's workers), MiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    for each in pids:
        status = Path(f"/proc/{each}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        total += int(match.group(1)) if match else 0
    return total / 1024


def server_pid(port: int) -> int:
    """The `crm serve` listening on the port (tests.servers does not hand out its process)."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if f"--port {port}" in line and "crm serve" in line:
            return int(line.split()[0])
    raise RuntimeError("crm serve process not found")


def upload(base_url: str, path: Path) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, timeout=600) as client:
        session = client.post(
            "/api/auth/register/",
            json={"org_name": "Bench", "email": "bench@example.com", "password": "bench-pass-123"},
        )
        session.raise_for_status()
        headers = {"Authorization": f"Bearer {session.json()['access_token']}"}
        for key, kind in (("industry", "text"), ("bant_score", "number")):
            body = {"entity": "lead", "key": key, "label": key, "type": kind}
            client.post("/api/custom-fields/", json=body, headers=headers).raise_for_status()
        with path.open("rb") as file:
            started = time.perf_counter()
            response = client.post(
                "/api/leads/upload/", files={"file": ("leads.csv", file)}, headers=headers
            )
            seconds = time.perf_counter() - started
        response.raise_for_status()
        answer = response.json()
        port = int(base_url.rsplit(":", 1)[1])
        return {
            "seconds": seconds,
            "created": len(answer["created"]),
            "updated": len(answer["updated"]),
            "errors": len(answer["errors"]),
            "rss": peak_rss_mib(server_pid(port)),
            "org": session.json()["org"]["id"],
        }


def run_server(database_url: str, path: Path) -> dict[str, Any]:
    with crm_server(database_url, rate_limit="off", upload_max_bytes=str(1 << 30)) as base_url:
        return upload(base_url, path)


async def copy_baseline(url: str, org_id: str) -> dict[str, float]:
    """COPY of the rows the upload wrote into a fresh table like leads (its indexes too)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS leads_copy")
        await conn.execute("CREATE TABLE leads_copy (LIKE leads INCLUDING ALL)")
        org = uuid.UUID(org_id)
        # The columns a COPY writes: not the generated ones, which the table computes.
        columns = [
            row["column_name"]
            for row in await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'leads'"
                " AND is_generated = 'NEVER' ORDER BY ordinal_position"
            )
        ]
        data = io.BytesIO()
        listed = ", ".join(f'"{column}"' for column in columns)
        await conn.copy_from_query(
            f"SELECT {listed} FROM leads WHERE org_id = $1", org, output=data, format="binary"
        )
        rows = await conn.fetchval("SELECT count(*) FROM leads WHERE org_id = $1", org)
        data.seek(0)
        started = time.perf_counter()
        await conn.copy_to_table("leads_copy", source=data, columns=columns, format="binary")
        seconds = time.perf_counter() - started
        await conn.execute("DROP TABLE leads_copy")
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()
    return {"rows": rows, "seconds": seconds, "version": version}


async def recreate(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


SERVICES = ["bash", str(ROOT / "scripts" / "services")]


def postgresql() -> tuple[str, dict[str, str] | None]:
    """A PostgreSQL server URL, and the environment of scripts/services when this script
    started a cluster of its own (its own directory and ports, never the shared one)."""
    if os.environ.get("CRM_TEST_DATABASE_URL"):
        return os.environ["CRM_TEST_DATABASE_URL"], None
    env = {
        **os.environ,
        "CRM_SERVICES_DIR": "/tmp/crm-bench-services",
        "CRM_PG_PORT": "55532",
        "CRM_REDIS_PORT": "56479",
    }
    out = subprocess.run(
        [*SERVICES, "start"], env=env, capture_output=True, text=True, check=True
    ).stdout
    url = re.search(r"CRM_TEST_DATABASE_URL=(\S+)", out)
    assert url is not None, out
    return url.group(1), env


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1]
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {int(memory) / 1024 / 1024:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def write_results(figures: dict[str, Any], counts: dict[str, int], command: str) -> None:
    sqlite, pg, copy = figures["sqlite"], figures["postgresql"], figures["copy"]
    rate = {name: ROWS / figures[name]["seconds"] for name in ("sqlite", "postgresql")}
    copy_rate = copy["rows"] / copy["seconds"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    lines = [
        BEGIN,
        "## CSV import: 100,000 leads over HTTP (SQLite and PostgreSQL)",
        "",
        f"Reproduce: `{command}` (written by it, {datetime.date.today().isoformat()}).",
        "",
        f"Machine: {machine()}; PostgreSQL {copy['version']}"
        + (" (the scripts/services cluster: fsync, synchronous_commit and full_page_writes off)."),
        "",
        f"File: {ROWS:,} rows, {counts['repeats']:,} repeating an earlier row's email, "
        f"{counts['invalid']:,} invalid (malformed email or non-numeric `cf_bant_score`), tags, "
        "two custom fields; one `POST /api/leads/upload/` to `crm serve` (one worker), timed "
        "from the request to the answer.",
        "",
        "| run | created / updated / errors | time | rows/s | server peak RSS | target |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| SQLite | {sqlite['created']:,} / {sqlite['updated']:,} / {sqlite['errors']:,} | "
        f"{sqlite['seconds']:.1f} s | {rate['sqlite']:,.0f} | {sqlite['rss']:.0f} MiB | "
        f"≥ 20,000 rows/s: {verdict(rate['sqlite'] >= 20_000)}; < 300 MB: "
        f"{verdict(sqlite['rss'] * 1.048576 < 300)} |",
        f"| PostgreSQL | {pg['created']:,} / {pg['updated']:,} / {pg['errors']:,} | "
        f"{pg['seconds']:.1f} s | {rate['postgresql']:,.0f} | {pg['rss']:.0f} MiB | "
        f"≥ half of COPY: {verdict(rate['postgresql'] >= copy_rate / 2)}; < 300 MB: "
        f"{verdict(pg['rss'] * 1.048576 < 300)} |",
        f"| PostgreSQL `COPY` (baseline) | {copy['rows']:,} rows | {copy['seconds']:.1f} s | "
        f"{copy_rate:,.0f} | | |",
        "",
        "The COPY baseline loads the rows the upload wrote (binary COPY, copied out of `leads`) "
        "into `CREATE TABLE leads_copy (LIKE leads INCLUDING ALL)`: the same columns and "
        "indexes (the trigram search index, the GIN indexes over tags and custom fields, the "
        "unique email index), without the foreign keys.",
        "",
        END,
    ]
    write_section(lines)


def write_section(lines: list[str]) -> None:
    """Replace the section of bench/RESULTS.md between lines[0] and lines[-1] (its begin and
    end markers) with `lines`, or add it at the end; other sections stay as they are."""
    begin, end = lines[0], lines[-1]
    text = RESULTS.read_text(encoding="utf-8")
    block = "\n".join(lines)
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")


def main() -> None:
    command = "make bench-import" if ROWS == 100_000 else f"BENCH_ROWS={ROWS} make bench-import"
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        counts = make_csv(path)
        print(f"file: {path.stat().st_size / 1e6:.1f} MB, {counts}", flush=True)
        figures["sqlite"] = run_server(f"sqlite:///{tmp}/bench.sqlite3", path)
        print("sqlite:", figures["sqlite"], flush=True)
        server, services = postgresql()
        try:
            url = asyncio.run(recreate(server, "crm_import_bench"))
            figures["postgresql"] = run_server(url, path)
            print("postgresql:", figures["postgresql"], flush=True)
            figures["copy"] = asyncio.run(copy_baseline(url, figures["postgresql"]["org"]))
            print("copy:", figures["copy"], flush=True)
        finally:
            if services is not None:
                subprocess.run([*SERVICES, "stop"], env=services, check=False)
    write_results(figures, counts, command)
    print(f"written to {RESULTS.relative_to(ROOT)}; command: {shlex.join(sys.argv)}")


if __name__ == "__main__":
    main()
