"""Scale-out soak: two `crm serve` processes (two workers each) on one PostgreSQL and one
Redis, driven by concurrent clients that create, update, convert, upload and delete leads
for a bounded time; midway one server is SIGKILLed (its supervisor and its workers, as a
host that dies) and its clients go on against the other. At the end the database itself is
read and checked against what the clients were told:

- every acknowledged write is there exactly once (a created lead, an update's title, a
  delete, a convert's account, contact and opportunity, an upload's rows);
- nothing unacknowledged is half-done: a create is there once or not at all, an update
  left the old title or the new one, a convert made all of its records or none, an upload
  all of its rows or none; a request the killed server never took did nothing.

    make soak           # .venv/bin/python bench/soak.py   (SOAK_SECONDS=60, SOAK_CLIENTS=16)

PostgreSQL and Redis are a throwaway pair started by scripts/services on free ports (never
the shared ones). The figures go into bench/RESULTS.md, replacing the previous ones. Exits 1
when a check fails or a server that was not killed answered a 5xx.
"""

import asyncio
import datetime
import os
import platform
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import RUNNING, crm_server, free_port  # noqa: E402

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "16"))
ORGS = 4
UPLOAD_ROWS = 20
REQUEST_SECONDS = 30
PASSWORD = "soak-password-1"
RESULTS = ROOT / "bench" / "RESULTS.md"
BEGIN, END = "<!-- soak -->", "<!-- /soak -->"
# The mix of operations, by weight.
MIX = {"create": 35, "update": 25, "delete": 10, "convert": 12, "upload": 8, "read": 10}


@dataclass
class Lead:
    """What a client was told about one of its leads, and so what the database must hold."""

    email: str
    title: str
    id: str | None = None  # None: the create was not acknowledged
    created: bool | None = True  # None: unknown (the create was not acknowledged)
    titles: set[str] = field(default_factory=set)  # the acceptable final titles
    updated: bool | None = False  # True: an update was acknowledged; None: one was not
    deleted: bool | None = False  # None: a delete was not acknowledged
    convert: tuple[str, str] | None = None  # account and opportunity names asked for
    converted: bool | None = False  # None: a convert was not acknowledged
    frozen: bool = False  # an unacknowledged write: no further writes to it


@dataclass
class Upload:
    prefix: str
    acknowledged: bool | None  # None: not acknowledged; False: never sent
    ids: set[str] = field(default_factory=set)


@dataclass
class Soak:
    servers: list[str]
    killed: set[str] = field(default_factory=set)
    requests: Counter[str] = field(default_factory=Counter)
    answers: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    leads: list[Lead] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: dict[str, list[float]] = field(default_factory=dict)  # answer times, by op


class NotSent(Exception):
    """The server refused the connection: the request did nothing."""


class Unknown(Exception):
    """The request may or may not have been done (connection lost, or a 5xx)."""


async def call(
    soak: Soak, clients: dict[str, httpx.AsyncClient], prefer: int, op: str, **request: Any
) -> httpx.Response:
    """One request to the client's server, or the other once its own was killed."""
    alive = [url for url in soak.servers if url not in soak.killed]
    url = soak.servers[prefer] if soak.servers[prefer] in alive else alive[0]
    name = "A" if url == soak.servers[0] else "B"
    soak.requests[op] += 1
    began = time.monotonic()
    try:
        response = await clients[url].request(**request)
    except httpx.ConnectError:
        soak.errors[f"{name}: connection refused"] += 1
        raise NotSent() from None
    except httpx.TransportError as error:
        soak.errors[f"{name}: {type(error).__name__}"] += 1
        raise Unknown() from None
    soak.seconds.setdefault(op, []).append(time.monotonic() - began)
    soak.answers[f"{name} {response.status_code}"] += 1
    if response.status_code >= 500:
        soak.errors[f"{name}: HTTP {response.status_code}"] += 1
        if url not in soak.killed:
            soak.failures.append(f"{op} on {name} answered {response.status_code}: {response.text}")
        raise Unknown()
    return response


async def client_loop(soak: Soak, token: str, prefer: int, deadline: float, seed: int) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=2)
    clients = {
        url: httpx.AsyncClient(
            base_url=url, headers=headers, timeout=REQUEST_SECONDS, limits=limits
        )
        for url in soak.servers
    }
    mine: list[Lead] = []
    try:
        while time.monotonic() < deadline:
            op = rng.choices(list(MIX), weights=list(MIX.values()))[0]
            writable = [lead for lead in mine if lead.id and not lead.frozen and not lead.deleted]
            open_leads = [lead for lead in writable if not lead.converted]
            if op not in ("create", "upload") and not open_leads:
                op = "create"
            with suppress(NotSent, Unknown):
                await operate(soak, clients, prefer, op, rng, mine, open_leads)
    finally:
        for client in clients.values():
            await client.aclose()


def expect(soak: Soak, response: httpx.Response, status: int, op: str) -> bool:
    if response.status_code == status:
        return True
    soak.errors[f"unexpected {response.status_code}"] += 1
    soak.failures.append(f"{op} answered {response.status_code}: {response.text[:300]}")
    return False


async def operate(
    soak: Soak,
    clients: dict[str, httpx.AsyncClient],
    prefer: int,
    op: str,
    rng: random.Random,
    mine: list[Lead],
    open_leads: list[Lead],
) -> None:
    marker = uuid.uuid4().hex[:12]
    if op == "create":
        lead = Lead(email=f"c-{marker}@soak.test", title=f"Lead {marker}")
        lead.titles = {lead.title}
        body = {"title": lead.title, "email": lead.email, "first_name": "Soak"}
        try:
            response = await call(
                soak, clients, prefer, op, method="POST", url="/api/leads/", json=body
            )
        except NotSent:
            lead.created = False
            soak.leads.append(lead)
            raise
        except Unknown:
            lead.created = None
            lead.frozen = True
            soak.leads.append(lead)
            raise
        soak.leads.append(lead)
        if expect(soak, response, 201, op):
            lead.id = response.json()["id"]
            mine.append(lead)
        else:
            lead.created = False
        return
    if op == "upload":
        await upload(soak, clients, prefer, marker)
        return
    lead = rng.choice(open_leads)
    path = f"/api/leads/{lead.id}/"
    title = f"Updated {marker}"
    if op == "read":
        response = await call(soak, clients, prefer, op, method="GET", url=path)
        if expect(soak, response, 200, op) and response.json()["title"] not in lead.titles:
            soak.failures.append(f"read {lead.id}: title {response.json()['title']!r}")
        return
    try:
        if op == "update":
            response = await call(
                soak, clients, prefer, op, method="PATCH", url=path, json={"title": title}
            )
            if expect(soak, response, 200, op):
                lead.titles = {title}
                lead.updated = True
        elif op == "delete":
            response = await call(soak, clients, prefer, op, method="DELETE", url=path)
            if expect(soak, response, 204, op):
                lead.deleted = True
        elif op == "convert":
            lead.convert = (f"Account {marker}", f"Deal {marker}")
            body = {
                "account_name": lead.convert[0],
                "create_opportunity": True,
                "opportunity_name": lead.convert[1],
                "amount": 1000,
            }
            response = await call(
                soak, clients, prefer, op, method="POST", url=f"{path}convert/", json=body
            )
            if expect(soak, response, 200, op):
                lead.converted = True
            else:
                lead.convert = None
    except Unknown:
        # Not acknowledged: either outcome is allowed, and the lead is left alone from now.
        if op == "update":
            lead.titles.add(title)
            lead.updated = None
        elif op == "delete":
            lead.deleted = None
        elif op == "convert":
            lead.converted = None
        lead.frozen = True
        raise
    except NotSent:
        if op == "convert":
            lead.convert = None
        raise


async def upload(
    soak: Soak, clients: dict[str, httpx.AsyncClient], prefer: int, marker: str
) -> None:
    prefix = f"u-{marker}-"
    rows = "".join(f"Row {i} {marker},{prefix}{i}@soak.test\n" for i in range(UPLOAD_ROWS))
    record = Upload(prefix=prefix, acknowledged=None)
    soak.uploads.append(record)
    try:
        response = await call(
            soak,
            clients,
            prefer,
            "upload",
            method="POST",
            url="/api/leads/upload/",
            files={"file": (f"{marker}.csv", f"Title,Email\n{rows}".encode(), "text/csv")},
        )
    except NotSent:
        record.acknowledged = False
        raise
    if expect(soak, response, 200, "upload"):
        answer = response.json()
        record.ids = {entry["id"] for entry in answer["created"]}
        record.acknowledged = True
        if len(record.ids) != UPLOAD_ROWS or answer["errors"]:
            soak.failures.append(f"upload {prefix}: answered {answer}")
    else:
        record.acknowledged = False


def descendants(pid: int) -> list[int]:
    """The process's children, theirs, and so on (from /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def kill_server(soak: Soak, url: str) -> int:
    """SIGKILL the server's supervisor and its workers at once, as a host that dies."""
    supervisor = RUNNING[url].pid
    pids = [supervisor, *descendants(supervisor)]
    soak.killed.add(url)  # from now on its clients go to the other server
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


async def register_orgs(url: str) -> list[tuple[str, str]]:
    """(org id, admin token) of each org."""
    orgs = []
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_SECONDS) as client:
        for n in range(ORGS):
            response = await client.post(
                "/api/auth/register/",
                json={
                    "org_name": f"Soak {n}",
                    "email": f"admin-{uuid.uuid4().hex[:8]}@soak.test",
                    "password": PASSWORD,
                },
            )
            response.raise_for_status()
            body = response.json()
            orgs.append((body["org"]["id"], body["access_token"]))
    return orgs


async def drive(soak: Soak) -> dict[str, Any]:
    orgs = await register_orgs(soak.servers[0])
    began = time.monotonic()
    deadline = began + SECONDS
    tasks = [
        asyncio.create_task(
            client_loop(soak, orgs[n % ORGS][1], prefer=n % 2, deadline=deadline, seed=n)
        )
        for n in range(CLIENTS)
    ]
    await asyncio.sleep(SECONDS / 2)  # the soak's own schedule: the kill comes midway
    killed_at = time.monotonic() - began
    processes = kill_server(soak, soak.servers[0])
    await asyncio.gather(*tasks)
    return {
        "orgs": [org for org, _ in orgs],
        "killed_at": killed_at,
        "killed_processes": processes,
        "elapsed": time.monotonic() - began,
    }


async def verify(soak: Soak, database_url: str, orgs: list[str]) -> Counter[str]:
    """Checks the database against the ledger; returns what was verified, by kind."""
    verified: Counter[str] = Counter()
    connection = await asyncpg.connect(database_url)
    try:
        leads = await connection.fetch(
            "SELECT org_id::text, id::text, email, title, status, deleted_at,"
            " converted_account_id::text AS account, converted_contact_id::text AS contact,"
            " converted_opportunity_id::text AS opportunity FROM leads"
            " WHERE email LIKE '%@soak.test'"
        )
        accounts = await connection.fetch(
            "SELECT id::text, name FROM accounts WHERE name LIKE 'Account %'"
        )
        opportunities = await connection.fetch(
            "SELECT id::text, name, account_id::text AS account FROM opportunities"
            " WHERE name LIKE 'Deal %'"
        )
        contacts = await connection.fetch(
            "SELECT id::text, email, account_id::text AS account FROM contacts"
            " WHERE email LIKE '%@soak.test'"
        )
        links = {
            (row["opportunity_id"], row["contact_id"])
            for row in await connection.fetch(
                "SELECT opportunity_id::text, contact_id::text FROM opportunity_contacts"
            )
        }
    finally:
        await connection.close()

    by_email: dict[str, list[Any]] = {}
    for row in leads:
        by_email.setdefault(row["email"], []).append(row)
        if row["org_id"] not in orgs:
            soak.failures.append(f"lead {row['id']} in an org the soak did not make")
    accounts_by_name = Counter(row["name"] for row in accounts)
    account_ids = {row["name"]: row["id"] for row in accounts}
    opportunities_by_name = {row["name"]: row for row in opportunities}
    opportunity_count = Counter(row["name"] for row in opportunities)
    contacts_by_email: dict[str, list[Any]] = {}
    for row in contacts:
        contacts_by_email.setdefault(row["email"], []).append(row)

    def fail(lead: Lead, why: str) -> None:
        soak.failures.append(f"lead {lead.email}: {why}")

    for lead in soak.leads:
        rows = by_email.get(lead.email, [])
        if lead.created is False:
            if rows:
                fail(lead, "a create that was refused or never sent left a lead")
            else:
                verified["refused or unsent create: nothing done"] += 1
            continue
        if lead.created is None:
            if len(rows) > 1:
                fail(lead, f"an unacknowledged create made {len(rows)} leads")
            elif rows and rows[0]["title"] != lead.title:
                fail(lead, "an unacknowledged create left another title")
            else:
                verified["unacknowledged create: once or not at all"] += 1
            continue
        if len(rows) != 1 or rows[0]["id"] != lead.id:
            fail(lead, f"an acknowledged create is there {len(rows)} times")
            continue
        row = rows[0]
        verified["acknowledged create: exactly once"] += 1
        if row["title"] not in lead.titles:
            fail(lead, f"title {row['title']!r}, expected one of {sorted(lead.titles)}")
        elif lead.updated is True:
            verified["acknowledged update: the last one's title"] += 1
        elif lead.updated is None:
            verified["unacknowledged update: the old title or the new"] += 1
        if lead.deleted is True and row["deleted_at"] is None:
            fail(lead, "an acknowledged delete did not happen")
        elif lead.deleted is False and row["deleted_at"] is not None:
            fail(lead, "deleted without a delete being asked")
        elif lead.deleted is True:
            verified["acknowledged delete: deleted"] += 1
        elif lead.deleted is None:
            verified["unacknowledged delete: deleted or not"] += 1
        if lead.convert is None:
            if row["status"] == "converted":
                fail(lead, "converted without a convert being asked")
            continue
        account_name, opportunity_name = lead.convert
        made = (
            accounts_by_name[account_name],
            opportunity_count[opportunity_name],
            len(contacts_by_email.get(lead.email, [])),
        )
        done = row["status"] == "converted"
        if done and made == (1, 1, 1):
            opportunity = opportunities_by_name[opportunity_name]
            [contact] = contacts_by_email[lead.email]
            linked = (
                row["account"] == account_ids[account_name]
                and row["opportunity"] == opportunity["id"]
                and row["contact"] == contact["id"]
                and opportunity["account"] == account_ids[account_name]
                and contact["account"] == account_ids[account_name]
                and (opportunity["id"], contact["id"]) in links
            )
            if not linked:
                fail(lead, "a convert's records are not linked to each other")
            elif lead.converted:
                verified["acknowledged convert: account, contact, deal once each, linked"] += 1
            else:
                verified["unacknowledged convert: all of it, linked"] += 1
        elif not done and made == (0, 0, 0) and lead.converted is None:
            verified["unacknowledged convert: none of it"] += 1
        else:
            fail(lead, f"a convert half-done: converted={done}, (accounts, deals, contacts)={made}")

    known = {lead.email for lead in soak.leads}
    prefixes = tuple(record.prefix for record in soak.uploads)
    for email in by_email:
        if email not in known and not email.startswith(prefixes):
            soak.failures.append(f"a lead {email} that no client asked for")

    for record in soak.uploads:
        rows = [
            row
            for email, found in by_email.items()
            if email.startswith(record.prefix)
            for row in found
        ]
        if record.acknowledged:
            if len(rows) != UPLOAD_ROWS or {row["id"] for row in rows} != record.ids:
                soak.failures.append(f"upload {record.prefix}: {len(rows)} rows, not as answered")
            else:
                verified["acknowledged upload: every row once"] += 1
        elif record.acknowledged is None and len(rows) in (0, UPLOAD_ROWS):
            verified["unacknowledged upload: all rows or none"] += 1
        elif record.acknowledged is False and not rows:
            verified["refused or unsent upload: nothing done"] += 1
        else:
            soak.failures.append(f"upload {record.prefix}: {len(rows)} of {UPLOAD_ROWS} rows")
    return verified


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = found.group(1).strip() if found else cpu
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        found = re.search(r"MemTotal:\s*(\d+) kB", meminfo.read_text())
        memory = f", {int(found.group(1)) / 1024**2:.0f} GiB memory" if found else ""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (
        f"`nproc` {os.cpu_count()} ({cpu}, {platform.machine()}){memory}, load average"
        f" {load:.1f} at the end (other work shared the machine)"
    )


def write_results(soak: Soak, run: dict[str, Any], verified: Counter[str], pg: str) -> None:
    unacknowledged = sum(
        count for kind, count in soak.errors.items() if not kind.startswith("unexpected")
    )
    lines = [
        BEGIN,
        "## Scale-out soak: two servers on one PostgreSQL and Redis, one SIGKILLed midway",
        "",
        "Reproduce:",
        "",
        "```",
        f"SOAK_SECONDS={SECONDS:g} SOAK_CLIENTS={CLIENTS} make soak",
        "```",
        "",
        f"Two `crm serve --workers 2` (A and B) on one throwaway PostgreSQL ({pg}) and Redis"
        f" (`scripts/services` on free ports); {CLIENTS} concurrent clients in {ORGS} orgs, half"
        f" on A and half on B, each creating, updating, deleting, converting (account, contact"
        f" and opportunity) and uploading ({UPLOAD_ROWS}-row CSVs) its own leads for"
        f" {SECONDS:g} s. At {run['killed_at']:.1f} s A's supervisor and workers"
        f" ({run['killed_processes']} processes) were SIGKILLed; its clients went on against B."
        " Then the database was read and checked against what every client had been answered;"
        " `verified` counts records (for updates, leads whose title must be their last"
        " acknowledged update's, or either title after one that was not acknowledged).",
        "",
        f"Machine, {datetime.date.today().isoformat()}: {machine()}.",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| requests | {sum(soak.requests.values())} in {run['elapsed']:.1f} s |",
        *(f"| requests: {op} | {count} |" for op, count in sorted(soak.requests.items())),
        *(f"| answers: {kind} | {count} |" for kind, count in sorted(soak.answers.items())),
        *(f"| errors: {kind} | {count} |" for kind, count in sorted(soak.errors.items())),
        *(
            f"| answer time: {op} | median {statistics.median(times):.3f} s,"
            f" max {max(times):.3f} s |"
            for op, times in sorted(soak.seconds.items())
        ),
        f"| requests not acknowledged | {unacknowledged} |",
        *(f"| verified: {kind} | {count} |" for kind, count in sorted(verified.items())),
        f"| writes checked in all | {sum(verified.values())} |",
        "| lost or duplicated writes, half-done converts or uploads, 5xx from B"
        f" | {len(soak.failures)} |",
        "",
        END,
    ]
    section = "\n".join(lines)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def services(action: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "services"), action],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def main() -> int:
    env = {
        **os.environ,
        "CRM_SERVICES_DIR": tempfile.mkdtemp(prefix="crm-soak-"),
        "CRM_PG_PORT": str(free_port()),
        "CRM_REDIS_PORT": str(free_port()),
    }
    urls = dict(line.split("=", 1) for line in services("start", env).split())
    database_url, redis_url = urls["CRM_TEST_DATABASE_URL"], urls["CRM_TEST_REDIS_URL"]
    try:
        with ExitStack() as stack:
            settings = {"redis_url": redis_url, "rate_limit": "1000000/10seconds"}
            servers = [
                stack.enter_context(crm_server(database_url, workers=2, **settings))
                for _ in range(2)
            ]
            soak = Soak(servers=servers)
            run = asyncio.run(drive(soak))
            pg = asyncio.run(server_version(database_url))
        verified = asyncio.run(verify(soak, database_url, run["orgs"]))
    finally:
        services("stop", env)
    write_results(soak, run, verified, pg)
    print(f"requests {sum(soak.requests.values())}: {dict(soak.requests)}")
    print(f"answers: {dict(soak.answers)}")
    print(f"errors: {dict(soak.errors)}")
    print(f"verified: {dict(verified)}")
    for op, times in sorted(soak.seconds.items()):
        print(f"{op}: median {statistics.median(times):.3f} s, max {max(times):.3f} s")
    for failure in soak.failures:
        print(f"FAILED: {failure}")
    print(f"{len(soak.failures)} failures; figures in {RESULTS.relative_to(ROOT)}")
    print("command:", shlex.join([sys.executable, *sys.argv]))
    return 1 if soak.failures else 0


async def server_version(database_url: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        return f"PostgreSQL {await connection.fetchval('SHOW server_version')}"
    finally:
        await connection.close()


if __name__ == "__main__":
    raise SystemExit(main())
