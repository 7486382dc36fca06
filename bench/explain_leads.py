"""EXPLAIN the lead list's `search` and `cf_<key>` filters on 100,000 leads (PostgreSQL).

    .venv/bin/python bench/explain_leads.py postgresql://crm@127.0.0.1:55432/crm_bench

Drops and recreates the named database (it must be named *bench*), migrates it, registers
one org with an admin, defines the filterable text custom field `industry`, loads 100,000
leads with multi-row inserts, then runs VACUUM (ANALYZE) (only ANALYZE with --analyze-only).

It then runs the app's own list code (`crm.records.query.list_records`) for
`GET /api/leads/?search=acme` and `GET /api/leads/?cf_industry=saas`, captures the page and
count statements exactly as they go to asyncpg (SQL with $n parameters, and their values),
and prints `EXPLAIN (ANALYZE, BUFFERS)` of each with those parameters: once as planned for
the first executions of a prepared statement (plan_cache_mode = auto, a custom plan), once
as a cached prepared statement may be planned later (force_generic_plan).

Exits 1 if any plan reads leads with a Seq Scan.
"""

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from crm.auth.models import TokenKind
from crm.auth.tokens import Principal
from crm.config import Settings
from crm.customfields.models import CustomField, FieldType
from crm.db import create_engine
from crm.leads.models import Lead
from crm.leads.spec import LEADS
from crm.migrations import upgrade
from crm.orgs.service import register
from crm.records.query import list_records

LEADS_COUNT = 100_000
BATCH = 5_000
QUERIES = ("search=acme", "cf_industry=saas")

INDUSTRIES = (
    "saas fintech retail healthcare logistics energy education media manufacturing insurance"
    " telecom gaming travel agritech biotech legal real_estate security automotive nonprofit"
)
FIRST = "Ada Ben Chloé Dmitri Eva Farid Grace Hiro Ines Jonas Kemal Lena Mateo Nora Omar Priya"
LAST = "Smith Okafor Müller Tanaka Rossi Nowak Silva Dubois Khan Larsen García Ivanova Chen Haddad"
# 100 company stems x 8 suffixes: "acme" appears in about 1% of leads.
STEMS = tuple(
    f"{a}{b}"
    for a in ("Nor", "Vel", "Tri", "Blue", "Quan", "Hex", "Sol", "Gran", "Ori", "Pax")
    for b in ("tech", "ware", "ly", "bridge", "point", "stone", "wave", "field", "core", "labs")
)
STEMS = ("Acme", *STEMS[1:])
SUFFIXES = ("Inc", "GmbH", "Ltd", "SA", "BV", "AB", "LLC", "Group")
PRODUCTS = ("renewal", "pilot", "expansion", "upgrade", "onboarding", "audit", "migration")


def lead_rows(org_id: uuid.UUID, profile_id: uuid.UUID) -> list[dict[str, Any]]:
    rng = random.Random(42)
    industries, firsts, lasts = INDUSTRIES.split(), FIRST.split(), LAST.split()
    start = datetime(2024, 11, 23, tzinfo=UTC)
    rows = []
    for i in range(LEADS_COUNT):
        first, last = rng.choice(firsts), rng.choice(lasts)
        stem = rng.choice(STEMS)
        company = f"{stem} {rng.choice(SUFFIXES)}"
        created = start + timedelta(seconds=i * 600 + rng.randrange(600))
        rows.append(
            {
                "org_id": org_id,
                "id": uuid.uuid4(),
                "title": f"{company} {rng.choice(PRODUCTS)} #{i}",
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}.{i}@{stem}.example".lower(),
                "phone": f"+1 555 {rng.randrange(10**7):07d}",
                "company_name": company,
                "status": "new",
                "created_by_id": profile_id,
                "assigned_to_id": profile_id,
                "tags": [],
                "custom_fields": {
                    "industry": rng.choice(industries),
                    "bant_score": rng.randrange(101),
                },
                "created_at": created,
                "updated_at": created,
            }
        )
    return rows


async def recreate_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(
        parsed.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    await admin.dispose()


async def load(engine: Any, analyze_only: bool) -> Principal:
    async with engine.begin() as conn:
        session = AsyncSession(bind=conn)
        org, user, profile = await register(
            session, "Bench Org", "admin@bench.example", "pw-123456"
        )
        session.add(
            CustomField(
                org_id=org.id,
                entity="lead",
                key="industry",
                label="Industry",
                type=FieldType.text,
                filterable=True,
            )
        )
        await session.flush()
        rows = lead_rows(org.id, profile.id)
        began = time.perf_counter()
        for n in range(0, len(rows), BATCH):  # executemany: multi-row INSERTs, no ORM objects
            await conn.execute(insert(Lead), rows[n : n + BATCH])
        loaded = time.perf_counter() - began
    # VACUUM, as autovacuum soon would: until then new GIN entries wait in the index's
    # pending list, which a plain ANALYZE leaves alone and every index scan reads, so the
    # planner may prefer a Seq Scan (see bench/RESULTS.md).
    command = "ANALYZE leads" if analyze_only else "VACUUM (ANALYZE) leads"
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        began = time.perf_counter()
        await conn.execute(text(command))
        analyzed = time.perf_counter() - began
        count = await conn.scalar(text("SELECT count(*) FROM leads"))
    print(f"loaded {count} leads in {loaded:.1f} s (multi-row INSERTs); {command} {analyzed:.1f} s")
    return Principal(
        token_id=uuid.uuid4(),
        token_kind=TokenKind.access,
        session_id=None,
        org_id=org.id,
        org_name=org.name,
        profile_id=profile.id,
        role=profile.role,
        user_id=user.id,
        user_number=user.number,
        email=user.email,
    )


def request(query: str) -> Request:
    scope = {"type": "http", "method": "GET", "path": "/api/leads/", "headers": []}
    return Request({**scope, "query_string": query.encode()})


async def explain(engine: Any, principal: Principal, query: str) -> bool:
    """Run the app's list for `query`, then EXPLAIN what it sent. True if no Seq Scan."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM leads" in statement and not statement.startswith("EXPLAIN"):
            sent.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    async with engine.connect() as conn, AsyncSession(bind=conn) as session:
        limit = Settings.model_fields["exact_count_limit"].default
        count = (await list_records(session, LEADS, principal, request(query), limit)).count
    event.remove(engine.sync_engine, "before_cursor_execute", capture)

    ok = True
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        for statement, params in sent:
            kind = "count" if statement.startswith("SELECT count(*)") else "page"
            print(f"=== GET /api/leads/?{query} — {kind} query ({count} matching leads)")
            print(statement, "\n-- parameters:", list(params))
            for mode in ("auto", "force_generic_plan"):
                await raw.execute(f"SET plan_cache_mode = {mode}")
                plan = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *params)
                lines = [row[0] for row in plan]
                print(f"--- plan_cache_mode = {mode}")
                print("\n".join(lines), "\n")
                ok = ok and not any("Seq Scan on leads" in line for line in lines)
    return ok


async def main(url: str, analyze_only: bool) -> int:
    engine = create_engine(url)
    principal = await load(engine, analyze_only)
    results = [await explain(engine, principal, query) for query in QUERIES]
    await engine.dispose()
    if not all(results):
        print("FAIL: a plan reads leads with a Seq Scan")
        return 1
    print("OK: no plan reads leads with a Seq Scan")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("CRM_DATABASE_URL", ""))
    parser.add_argument(
        "--analyze-only", action="store_true", help="ANALYZE after the load, not VACUUM (ANALYZE)"
    )
    args = parser.parse_args()
    parsed = make_url(args.url) if args.url else None
    if (
        parsed is None
        or parsed.get_backend_name() != "postgresql"
        or "bench" not in str(parsed.database)
    ):
        parser.error("give a postgresql:// URL of a database named *bench* (it is recreated)")
    asyncio.run(recreate_database(args.url))
    upgrade(args.url)
    sys.exit(asyncio.run(main(args.url, args.analyze_only)))
