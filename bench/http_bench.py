"""HTTP benchmark of the hot endpoints: `crm serve --workers 2` (rate limits off) under wrk,
case by case beside a bare ASGI app over the same PostgreSQL tables (bench/baseline.py), and
the same cases against the embedded SQLite default.

    make bench                                            # every case, writes bench/RESULTS.md
    .venv/bin/python bench/http_bench.py --case detail --duration 5 --db postgresql

On loopback only. PostgreSQL is a throwaway cluster started by scripts/services (its own
directory and ports: CRM_SERVICES_DIR, CRM_PG_PORT and CRM_REDIS_PORT override them), or the
server of --database-url (a database `crm_http_bench` is made there). Each database is
seeded through the API's own CSV upload: two orgs, each with an admin and a member, the
lead custom fields `industry` (text, filterable) and `bant_score` (number), 200 accounts,
2,000 contacts, 1,000 opportunities and --leads leads (tags, custom fields, assignments;
20 % of them at a "Globex" company). wrk runs with 2 threads and 32 connections, as the
admin of the first org, each case against ours and then the baseline, all cases once per
round (two rounds on PostgreSQL, one on SQLite, which has no baseline); before the runs the
two apps' answers are compared case by case. Only --write replaces the section of
bench/RESULTS.md (the other sections stay).
"""

import argparse
import asyncio
import csv
import datetime
import json
import math
import os
import random
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.import_bench import machine, recreate, write_section  # noqa: E402
from tests.servers import RUNNING, crm_server, free_port  # noqa: E402

WRK = ROOT / "bench" / "wrk"
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- http-bench -->", "<!-- /http-bench -->"
SERVICES = ["bash", str(ROOT / "scripts" / "services")]
PASSWORD = "bench-pass-123"
INDUSTRIES = ["saas", "retail", "energy", "health", "finance", "media", "logistics"]
STATUSES = ["new", "assigned", "in_process", "qualified", "recycled", "closed"]
TAGS = ["hot", "vip", "cold", "partner", "trade-fair", "newsletter"]
# Every fifth lead works at Globex: `search=globex` matches 20 % of the leads.
COMPANIES = ["Globex", "Initech", "Umbrella", "Hooli", "Stark"]
STAGES = ["prospecting", "qualification", "proposal", "negotiation", "closed_won"]
ACCOUNTS, CONTACTS, OPPORTUNITIES = 200, 2000, 1000


@dataclass(frozen=True)
class Case:
    name: str
    shown: str  # the request, as the table shows it
    script: str  # bench/wrk/<script>.lua
    path: str = ""  # for get.lua: the path and query
    kind: str = "list"  # list, filtered (filters and search), write: which target applies


CASES = [
    Case("list", "`GET /api/leads/?page=3`", "get", "/api/leads/?page=3"),
    Case("detail", "`GET /api/leads/<id>/`", "detail", kind="detail"),
    Case(
        "filter",
        "`GET /api/leads/?status=new&cf_industry=saas`",
        "get",
        "/api/leads/?status=new&cf_industry=saas",
        kind="filtered",
    ),
    Case(
        "search",
        "`GET /api/leads/?search=globex` (20 % match)",
        "get",
        "/api/leads/?search=globex",
        kind="filtered",
    ),
    Case(
        "ordering",
        "`GET /api/leads/?ordering=title&page=200`",
        "get",
        "/api/leads/?ordering=title&page=200",
    ),
    Case("create", "`POST /api/leads/`", "create", kind="write"),
    Case("patch", "`PATCH /api/leads/<id>/`", "patch", kind="write"),
    Case("contacts", "`GET /api/contacts/?page=2`", "get", "/api/contacts/?page=2"),
    Case("opportunities", "`GET /api/opportunities/?page=2`", "get", "/api/opportunities/?page=2"),
]
BY_NAME = {case.name: case for case in CASES}
MAKE_BENCH = ["--write"]  # what `make bench` passes

# The targets of the issue: ratios to the baseline, a rate for writes, p99 and failures.
RATIO_TARGET = {"list": 0.5, "detail": 0.5, "filtered": 0.4}
WRITE_TARGET = 1000.0
P99_TARGET_MS = 100.0


# --- Data --------------------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: Iterator[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def seed_files(folder: Path, leads: int, members: list[str], seed: int) -> dict[str, Path]:
    """The CSV files of one org: accounts, contacts at them, opportunities with contacts, and
    leads; records assigned in turn to each member and to nobody."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    assignees = [*members, ""]

    def tags() -> str:
        return "; ".join(rng.sample(TAGS, rng.randint(0, 3)))

    accounts = write_csv(
        folder / "accounts.csv",
        ["Name", "Industry", "Email", "Assigned To"],
        (
            [f"Account {n}", rng.choice(INDUSTRIES), f"info@account{n}.com", assignees[n % 3]]
            for n in range(ACCOUNTS)
        ),
    )
    contacts = write_csv(
        folder / "contacts.csv",
        ["First Name", "Last Name", "Email", "Phone", "Title", "Account", "Tags", "Assigned To"],
        (
            [
                f"First{n % 300}",
                f"Last{n % 700}",
                f"contact{n}@account{n % ACCOUNTS}.com",
                f"+1 555 {n:07d}",
                rng.choice(["CEO", "CTO", "Buyer", "Engineer", ""]),
                f"Account {n % ACCOUNTS}",
                tags(),
                assignees[n % 3],
            ]
            for n in range(CONTACTS)
        ),
    )
    opportunities = write_csv(
        folder / "opportunities.csv",
        [
            "Name",
            "Account",
            "Contacts",
            "Amount",
            "Stage",
            "Probability",
            "Close Date",
            "Tags",
            "Assigned To",
        ],
        (
            [
                f"Deal {n}",
                f"Account {n % ACCOUNTS}",
                "; ".join(
                    f"contact{c}@account{c % ACCOUNTS}.com"
                    for c in rng.sample(range(CONTACTS), rng.randint(0, 2))
                ),
                f"{rng.randint(1, 2_000_000) / 100:.2f}",
                rng.choice(STAGES),
                rng.randint(0, 100),
                (datetime.date(2027, 1, 1) + datetime.timedelta(days=n % 365)).isoformat(),
                tags(),
                assignees[n % 3],
            ]
            for n in range(OPPORTUNITIES)
        ),
    )
    leads_csv = write_csv(
        folder / "leads.csv",
        [
            "Title",
            "First Name",
            "Last Name",
            "Email",
            "Company Name",
            "Phone",
            "Status",
            "Tags",
            "Assigned To",
            "cf_industry",
            "cf_bant_score",
        ],
        (
            [
                f"Lead {rng.randint(0, 10**6)}",
                f"First{n % 500}",
                f"Last{n % 800}",
                f"lead{n}@example{n % 97}.com",
                f"{COMPANIES[n % len(COMPANIES)]} {n % 600}",
                f"+1 555 {n:07d}",
                rng.choice(STATUSES),
                tags(),
                assignees[n % 3],
                rng.choice(INDUSTRIES),
                rng.randint(0, 100),
            ]
            for n in range(leads)
        ),
    )
    return {
        "accounts": accounts,
        "contacts": contacts,
        "opportunities": opportunities,
        "leads": leads_csv,
    }


@dataclass
class Org:
    id: str
    admin: str  # the admin's profile id
    member: str  # the member's profile id
    token: str  # the admin's personal token
    lead_ids: list[str] = field(default_factory=list)


def seed_org(client: httpx.Client, name: str, folder: Path, leads: int, seed: int) -> Org:
    admin_email = f"admin@{name.lower()}.example.com"
    member_email = f"member@{name.lower()}.example.com"
    session = client.post(
        "/api/auth/register/",
        json={"org_name": name, "email": admin_email, "password": PASSWORD},
    )
    session.raise_for_status()
    auth = {"Authorization": f"Bearer {session.json()['access_token']}"}
    member = client.post(
        "/api/users/",
        json={"email": member_email, "password": PASSWORD, "role": "user"},
        headers=auth,
    )
    member.raise_for_status()
    for key, kind in (("industry", "text"), ("bant_score", "number")):
        body = {"entity": "lead", "key": key, "label": key, "type": kind, "filterable": True}
        client.post("/api/custom-fields/", json=body, headers=auth).raise_for_status()
    token = client.post("/api/auth/tokens/", json={"name": "bench"}, headers=auth)
    token.raise_for_status()
    org = Org(
        id=session.json()["org"]["id"],
        admin=session.json()["profile"]["id"],
        member=member.json()["id"],
        token=token.json()["token"],
    )
    for entity, path in seed_files(folder, leads, [admin_email, member_email], seed).items():
        with path.open("rb") as file:
            response = client.post(
                f"/api/{entity}/upload/", files={"file": (path.name, file)}, headers=auth
            )
        response.raise_for_status()
        answer = response.json()
        if answer["errors"]:
            raise RuntimeError(f"{name} {entity}: {answer['errors'][:3]}")
        if entity == "leads":
            org.lead_ids = [entry["id"] for entry in answer["created"]]
    return org


def seed(base_url: str, folder: Path, leads: int) -> Org:
    """Two orgs; the first is the one benchmarked, the second only shares its tables."""
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=600) as client:
        first = seed_org(client, "Bench", folder / "bench", leads, seed=1)
        seed_org(client, "Other", folder / "other", leads, seed=2)
    print(f"  seeded 2 orgs of {leads:,} leads each in {time.perf_counter() - started:.0f} s")
    return first


async def analyze(url: str) -> None:
    """VACUUM (ANALYZE) after the bulk load, as autovacuum soon would: plans of both apps
    rest on the same statistics from the first request on."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


async def server_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


# --- Servers -----------------------------------------------------------------------------


@contextmanager
def services() -> Iterator[tuple[str, str]]:
    """A throwaway PostgreSQL and Redis from scripts/services; yields their URLs."""
    env = {
        **os.environ,
        "CRM_SERVICES_DIR": os.environ.get("CRM_SERVICES_DIR", "/tmp/crm-http-bench-services"),
        "CRM_PG_PORT": os.environ.get("CRM_PG_PORT", "55542"),
        "CRM_REDIS_PORT": os.environ.get("CRM_REDIS_PORT", "56489"),
    }
    out = subprocess.run(
        [*SERVICES, "start"], env=env, capture_output=True, text=True, check=True
    ).stdout
    database = re.search(r"CRM_TEST_DATABASE_URL=(\S+)", out)
    redis = re.search(r"CRM_TEST_REDIS_URL=(\S+)", out)
    assert database is not None and redis is not None, out
    try:
        yield database.group(1), redis.group(1)
    finally:
        subprocess.run([*SERVICES, "stop"], env=env, check=False, capture_output=True)


@contextmanager
def baseline_server(database_url: str, org: Org) -> Iterator[str]:
    """bench/baseline.py under uvicorn with crm serve's options (2 workers, uvloop,
    httptools, no access log, no proxy headers)."""
    port = free_port()
    env = {
        **os.environ,
        "BENCH_DATABASE_URL": database_url,
        "BENCH_ORG_ID": org.id,
        "BENCH_PROFILE_ID": org.admin,
    }
    command = [
        *(sys.executable, "-m", "uvicorn", "bench.baseline:app"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "2"),
        *("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-proxy-headers"),
        *("--timeout-worker-healthcheck", "30", "--log-level", "warning"),
    ]
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
        BASELINES[base_url] = process.pid
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"baseline exited: {log.read().decode()}")
                try:
                    if httpx.get(f"{base_url}/api/leads/", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the baseline did not start in time")
                time.sleep(0.05)  # polling for readiness
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- The same answers --------------------------------------------------------------------


def check_answers(targets: dict[str, str], org: Org, cases: list[Case]) -> list[str]:
    """Each case asked once of each app (ours, and the baseline when there is one): the
    cases that do not answer 2xx, or not the same JSON in both (absolute links compared
    without the host; for a write, without what differs between two records)."""
    problems = []
    headers = {"Authorization": f"Bearer {org.token}"}
    lead = org.lead_ids[-1]
    volatile = {"id", "title", "email", "created_at", "updated_at"}
    with httpx.Client(headers=headers, timeout=60) as client:
        for case in cases:
            answers = []
            for n, base in enumerate(targets.values()):
                if case.name == "detail":
                    response = client.get(f"{base}/api/leads/{lead}/")
                elif case.name == "patch":
                    body = {"status": "qualified", "custom_fields": {"bant_score": 7}}
                    response = client.patch(f"{base}/api/leads/{lead}/", json=body)
                elif case.name == "create":
                    body = {
                        "title": f"Check {n}",
                        "email": f"check-{n}-{secrets.token_hex(4)}@example.com",
                        "status": "new",
                        "assigned_to": org.member,
                        "tags": ["hot"],
                        "custom_fields": {"industry": "saas", "bant_score": 5},
                    }
                    response = client.post(f"{base}/api/leads/", json=body)
                else:
                    response = client.get(f"{base}{case.path}")
                try:
                    answer: Any = json.loads(response.text.replace(base, "<base>"))
                except ValueError:
                    answer = response.text
                if case.name in ("create", "patch") and isinstance(answer, dict):
                    answer = {k: v for k, v in answer.items() if k not in volatile}
                answers.append((response.status_code, answer))
            if any(answer != answers[0] for answer in answers) or any(
                status >= 300 for status, _ in answers
            ):
                problems.append(case.name)
                print(f"  {case.name}: not 2xx, or not the same answer:")
                for name, answer in zip(targets, answers, strict=True):
                    print(f"    {name}: {answer}")
    return problems


# --- wrk ---------------------------------------------------------------------------------


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0:  # as scripts/services installs what it needs
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("http_bench: wrk is missing; install it (as root: apt-get install wrk)")
    return found


# --- CPU per request ---------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The baseline's supervisor pid by base URL (tests.servers.RUNNING keeps ours).
BASELINES: dict[str, int] = {}


def process_tree(root: int) -> list[int]:
    """`root` and its descendants: a server's supervisor and its workers."""
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            with suppress(OSError):  # the process ended meanwhile
                pending.extend(int(child) for child in children.read_text().split())
    return found


def database_backends(database: str) -> list[int]:
    """The PostgreSQL backends of the clients of `database` (their titles name it; not the
    autovacuum workers, whose work follows the writes of earlier runs)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            client = title.startswith(b"postgres: ") and b"autovacuum" not in title
            if client and f" {database} ".encode() in title:
                pids.append(int(entry.name))
    return pids


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """The CPU time (user and system) each process has used so far."""
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    return used


@dataclass
class CpuMeter:
    """What the server's processes and the database's backends spend during a run."""

    server_pid: int
    database: str | None  # PostgreSQL's database, or None (SQLite: inside the server)

    def read(self) -> tuple[dict[int, float], dict[int, float]]:
        backends = database_backends(self.database) if self.database else []
        return cpu_seconds(process_tree(self.server_pid)), cpu_seconds(backends)

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


@dataclass
class Run:
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    server_cpu_ms: float  # CPU time per request of the server's processes
    database_cpu_ms: float  # and of PostgreSQL's backends (NaN on SQLite)


def run_wrk(
    args: argparse.Namespace,
    case: Case,
    base_url: str,
    org: Org,
    ids_file: Path,
    seconds: int,
    meter: CpuMeter,
) -> Run:
    script = WRK / f"{case.script}.lua"
    url = base_url + case.path if case.path else base_url
    extra = {
        "get": [],
        "detail": [str(ids_file)],
        "patch": [str(ids_file)],
        "create": [secrets.token_hex(4), org.member],
    }[case.script]
    command = [
        wrk_binary(),
        *(f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency"),
        *("--timeout", "10s", "-s", str(script), url, "--", org.token, *extra),
    ]
    server_before, database_before = meter.read()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    server_after, database_after = meter.read()
    if args.verbose:
        print(out)
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    figures = json.loads(line.removeprefix("BENCH "))
    answered = figures["requests"] > 0  # else wrk's percentiles are 0: no answer came
    per_request = 1000 / max(figures["requests"], 1)
    return Run(
        rate=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000 if answered else math.inf,
        p99_ms=figures["p99_us"] / 1000 if answered else math.inf,
        non_2xx=figures["non_2xx"],
        socket_errors=sum(figures[kind] for kind in ("connect", "read", "write", "timeout")),
        server_cpu_ms=CpuMeter.spent(server_before, server_after) * per_request,
        database_cpu_ms=(
            CpuMeter.spent(database_before, database_after) * per_request
            if meter.database
            else math.nan
        ),
    )


def shown_run(run: Run) -> str:
    return (
        f"{run.rate:8.0f} req/s  p50 {run.p50_ms:7.1f} ms  p99 {run.p99_ms:7.1f} ms"
        f"  non-2xx {run.non_2xx}  socket errors {run.socket_errors}"
        f"  CPU/request {cpu_cell(run)}"
    )


def cpu_cell(run: "Run | Summary") -> str:
    """CPU time per request: the server's processes + the database's backends (none for
    SQLite, which works inside the server)."""
    if not math.isfinite(run.database_cpu_ms):
        return f"{run.server_cpu_ms:.2f} ms"
    return f"{run.server_cpu_ms:.2f} + {run.database_cpu_ms:.2f} ms"


def bench_database(
    args: argparse.Namespace, label: str, url: str, redis_url: str | None, folder: Path
) -> dict[str, Any]:
    """Seeds the database, then runs every case against ours (and the baseline, on
    PostgreSQL), round by round; the runs of each case per target."""
    cases = [BY_NAME[name] for name in args.case]
    with_baseline = label == "PostgreSQL" and not args.no_baseline
    rounds = args.sqlite_rounds if label == "SQLite" else args.rounds
    settings = {"rate_limit": "off", **({"redis_url": redis_url} if redis_url else {})}
    runs: dict[str, dict[str, list[Run]]] = {
        case.name: {"ours": [], "baseline": []} for case in cases
    }
    result: dict[str, Any] = {"runs": runs, "rounds": rounds, "baseline": with_baseline}
    with ExitStack() as stack:
        ours = stack.enter_context(crm_server(url, workers=2, **settings))
        org = seed(ours, folder, args.leads)
        if label == "PostgreSQL":
            asyncio.run(analyze(url))
            result["version"] = asyncio.run(server_version(url))
        ids_file = folder / f"lead-ids-{label}.txt"
        ids = org.lead_ids[:]
        random.Random(3).shuffle(ids)
        ids_file.write_text("\n".join(ids) + "\n")
        targets = {"ours": ours}
        if with_baseline:
            targets["baseline"] = stack.enter_context(baseline_server(url, org))
        database = make_url(url).database if label == "PostgreSQL" else None
        meters = {
            name: CpuMeter(
                RUNNING[base_url].pid if name == "ours" else BASELINES[base_url], database
            )
            for name, base_url in targets.items()
        }
        result["problems"] = check_answers(targets, org, cases)
        warm_up = 1
        for number in range(1, rounds + 1):
            for case in cases:
                for name, base_url in targets.items():
                    if number == 1 and warm_up:  # statements prepared, caches filled
                        run_wrk(args, case, base_url, org, ids_file, warm_up, meters[name])
                    run = run_wrk(args, case, base_url, org, ids_file, args.duration, meters[name])
                    runs[case.name][name].append(run)
                    print(
                        f"  {label} round {number} {case.name:13} {name:8} {shown_run(run)}",
                        flush=True,
                    )
    return result


# --- Results -----------------------------------------------------------------------------


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


@dataclass
class Summary:
    rate: float  # mean over the rounds
    p50_ms: float  # mean over the rounds
    p99_ms: float  # the worst round's
    non_2xx: int  # summed over the rounds
    socket_errors: int
    server_cpu_ms: float  # means over the rounds
    database_cpu_ms: float

    @classmethod
    def of(cls, runs: list[Run]) -> "Summary":
        return cls(
            rate=mean([run.rate for run in runs]),
            p50_ms=mean([run.p50_ms for run in runs]),
            p99_ms=max(run.p99_ms for run in runs),
            non_2xx=sum(run.non_2xx for run in runs),
            socket_errors=sum(run.socket_errors for run in runs),
            server_cpu_ms=mean([run.server_cpu_ms for run in runs]),
            database_cpu_ms=mean([run.database_cpu_ms for run in runs]),
        )


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def cells(case: Case, summary: Summary) -> list[str]:
    """req/s, p50, p99 and non-2xx, each with its target's verdict where it has one."""
    rate = f"{summary.rate:,.0f}"
    if case.kind == "write":
        rate += f" ({verdict(summary.rate >= WRITE_TARGET)})"
    failures = f"{summary.non_2xx:,}"
    if summary.socket_errors:
        failures += f" (+{summary.socket_errors:,} socket errors)"
    failures += f" ({verdict(summary.non_2xx + summary.socket_errors == 0)})"
    return [
        rate,
        milliseconds(summary.p50_ms),
        f"{milliseconds(summary.p99_ms)} ({verdict(summary.p99_ms < P99_TARGET_MS)})",
        failures,
    ]


def milliseconds(value: float) -> str:
    return f"{value:.1f} ms" if math.isfinite(value) else "no answer"


def table(figures: dict[str, Any]) -> list[str]:
    runs = figures["runs"]
    with_baseline = figures["baseline"]
    head = ["case", "request", "req/s", "p50", "p99", "non-2xx", "CPU/request"]
    if with_baseline:
        head += [
            "baseline req/s",
            "baseline p50",
            "baseline p99",
            "baseline CPU/request",
            "ours / baseline",
            "per round",
        ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, by_target in runs.items():
        case = BY_NAME[name]
        ours = Summary.of(by_target["ours"])
        row = [name, case.shown, *cells(case, ours), cpu_cell(ours)]
        if with_baseline:
            base = Summary.of(by_target["baseline"])
            ratio = ours.rate / base.rate if base.rate else math.nan
            shown_ratio = f"{ratio:.2f}"
            if case.kind in RATIO_TARGET:
                target = RATIO_TARGET[case.kind]
                shown_ratio += f" ({verdict(ratio >= target)} ≥ {target})"
            rounds = " / ".join(
                f"{a.rate / b.rate:.2f}" if b.rate else "-"
                for a, b in zip(by_target["ours"], by_target["baseline"], strict=True)
            )
            row += [
                f"{base.rate:,.0f}",
                milliseconds(base.p50_ms),
                milliseconds(base.p99_ms),
                cpu_cell(base),
                shown_ratio,
                rounds,
            ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def write_results(
    figures: dict[str, dict[str, Any]], args: argparse.Namespace, loads: tuple[float, float]
) -> None:
    given = sys.argv[1:]
    script = [".venv/bin/python", "bench/http_bench.py"]
    command = "make bench" if given == MAKE_BENCH else shlex.join([*script, *given])
    lines = [
        BEGIN,
        "## HTTP: hot endpoints under wrk, beside a bare ASGI app (PostgreSQL) and on SQLite",
        "",
        f"Reproduce: `{command}` (written by it, "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC).",
        "",
        f"Machine: {machine()}; load average {loads[0]:.1f} before the run, {loads[1]:.1f}"
        " after it.",
        "",
        *(
            [
                "**The machine was busy** (a load average above its CPU count): these"
                " figures are noisy, and only the ratios of one run say much. Rerun on a quiet"
                " machine for figures to compare.",
                "",
            ]
            if max(loads) > (os.cpu_count() or 1)
            else []
        ),
        f"Setup: `crm serve --workers 2` with `CRM_RATE_LIMIT=off`; wrk {args.threads} threads,"
        f" {args.connections} connections, {args.duration:g} s per run (after a short warm-up),"
        " on loopback, as the admin of the first of two orgs, each seeded through"
        f" `POST /api/<entity>/upload/` with {args.leads:,} leads (tags, assignments,"
        " `cf_industry` and `cf_bant_score`), 200 accounts, 2,000 contacts and 1,000"
        " opportunities. Each figure: req/s and p50 the mean of the rounds, p99 the worst"
        " round's, non-2xx the sum. `detail` and `patch` take another lead each request;"
        " `create` makes a new lead each request (`bench/wrk/*.lua`); non-2xx is what wrk"
        " counts (a status of 400 or more); each case is asked once before the runs, which"
        " must answer 2xx. CPU/request: the CPU time (user and system, from /proc) that the"
        " server's processes + PostgreSQL's backends of its database spent over a run, per"
        " request answered, the mean of the rounds (on SQLite the database works inside the"
        " server); what a request costs, whatever the machine's other load.",
        "",
    ]
    if "PostgreSQL" in figures:
        pg = figures["PostgreSQL"]
        lines += [
            f"### PostgreSQL {pg.get('version', '')} ({pg['rounds']} rounds, interleaved with"
            " the baseline case by case)",
            "",
            "The baseline, `bench/baseline.py`: a bare ASGI app (asyncpg + orjson, no framework,"
            " no auth, no validation) under uvicorn with the same options (2 workers, uvloop,"
            " httptools, no access log), answering each case with the same JSON in one"
            " statement (the list's count in the same statement as its page)."
            + (
                f" Its answers differ from ours, or one is not 2xx, for:"
                f" {', '.join(pg['problems'])}."
                if pg["problems"]
                else " Its answers were checked equal to ours, case by case, before the runs."
            ),
            "",
            *table(pg),
            "",
        ]
    if "SQLite" in figures:
        lite = figures["SQLite"]
        lines += [
            f"### SQLite, the embedded default ({lite['rounds']} round"
            f"{'s' if lite['rounds'] > 1 else ''}; no baseline)",
            "",
            *(
                [f"Not 2xx when checked before the runs: {', '.join(lite['problems'])}.", ""]
                if lite["problems"]
                else []
            ),
            *table(lite),
            "",
        ]
    lines += [
        "Targets: ours / baseline ≥ 0.5 for list and detail, ≥ 0.4 for the filtered and searched"
        f" lists; create and PATCH ≥ {WRITE_TARGET:,.0f}/s; p99 < {P99_TARGET_MS:.0f} ms; zero"
        " non-2xx.",
        "",
        END,
    ]
    write_section(lines)
    print(f"written to {RESULTS.relative_to(ROOT)}")


def options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--case",
        action="append",
        choices=list(BY_NAME),
        help="a case to run (repeatable; default: every case)",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--sqlite-rounds", type=int, default=1, help="rounds on SQLite, which has no baseline"
    )
    parser.add_argument(
        "--db", action="append", choices=("postgresql", "sqlite"), help="default: both"
    )
    parser.add_argument("--leads", type=int, default=10_000, help="leads per org")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-baseline", action="store_true", help="ours only")
    parser.add_argument(
        "--database-url", help="a PostgreSQL server to use instead of a throwaway cluster"
    )
    parser.add_argument("--write", action="store_true", help="replace the bench/RESULTS.md section")
    parser.add_argument("--verbose", action="store_true", help="print wrk's own output")
    return parser


def main() -> None:
    args = options().parse_args()
    args.case = args.case or list(BY_NAME)
    databases = args.db or ["postgresql", "sqlite"]
    wrk_binary()
    load_before = load_average()
    started = time.perf_counter()
    figures: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "postgresql" in databases:
            with ExitStack() as stack:
                if args.database_url:
                    server, redis_url = args.database_url, None
                else:
                    server, redis_url = stack.enter_context(services())
                url = asyncio.run(recreate(server, "crm_http_bench"))
                print("PostgreSQL:", flush=True)
                figures["PostgreSQL"] = bench_database(
                    args, "PostgreSQL", url, redis_url, folder / "postgresql"
                )
        if "sqlite" in databases:
            print("SQLite:", flush=True)
            figures["SQLite"] = bench_database(
                args, "SQLite", f"sqlite:///{tmp}/bench.sqlite3", None, folder / "sqlite"
            )
    print(f"done in {time.perf_counter() - started:.0f} s")
    for label, result in figures.items():
        print(f"\n{label}:\n" + "\n".join(table(result)))
    if args.write:
        write_results(figures, args, (load_before, load_average()))


if __name__ == "__main__":
    main()
