"""Lead lists of one org with 1,000,000 leads (PostgreSQL), through the app's own list code.

    .venv/bin/python bench/scale_bench.py postgresql://crm@127.0.0.1:55432/crm_scale_bench

Drops and recreates the named database (it must be named *bench*), migrates it, registers
two orgs, and loads 1,000,000 leads into the first and 10,000 into the second with one
`INSERT … SELECT … FROM generate_series` each (the table's secondary indexes dropped for
the load and built again after it, as `CREATE INDEX` builds them in one sorted pass), then
runs VACUUM (ANALYZE). With --reuse it keeps a database loaded before and only migrates it.

Then, on a single connection, it runs `crm.records.query.list_records` (what
`GET /api/leads/?<query>` runs, as the first org's admin) `--runs` times for each query
shape, and prints p50 and p95 of each in milliseconds, of the whole call and of its
statements' round trips alone: `search` for 4-letter fragments from every lead to none,
ordering on each orderable field with a deep page, in both directions, by `page` and by
`cursor`. With --explain it prints `EXPLAIN (ANALYZE, BUFFERS)` of every
statement of the shapes whose p95 is over their target.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from starlette.requests import Request

from crm.auth.models import TokenKind
from crm.auth.tokens import Principal
from crm.config import Settings
from crm.db import create_engine
from crm.leads.models import Lead
from crm.leads.spec import LEADS
from crm.migrations import upgrade
from crm.orgs.models import Role
from crm.orgs.service import register
from crm.records import query as list_query

ROWS = 1_000_000
OTHER_ROWS = 10_000
COUNT_LIMIT = Settings.model_fields["exact_count_limit"].default
SEARCH_TARGET_MS = 50.0
ORDERING_TARGET_MS = 100.0

# A pseudo-random but repeatable number in [0, m) for row i: a multiplicative hash.
HASH = "((i::bigint * {prime}) % {m})"
FIRST = "Ada Ben Chloé Dmitri Eva Farid Grace Hiro Ines Jonas Kemal Lena Mateo Nora Omar Priya"
LAST = "Smith Okafor Müller Tanaka Rossi Nowak Silva Dubois Khan Larsen García Ivanova Chen Haddad"
STEMS = (
    "Norcore Veltech Triware Bluely Quanbridge Hexpoint Solstone Granwave Orifield Paxlabs"
    " Nortech Velware Trily Bluebridge Quanpoint Hexstone Solwave Granfield Oricore Paxtech"
)
PRODUCTS = "renewal pilot expansion upgrade onboarding audit migration"
STATUSES = "new assigned in_process qualified recycled closed converted"


def sql_array(words: str) -> str:
    return "ARRAY[" + ", ".join(f"'{word}'" for word in words.split()) + "]"


def pick(words: str, prime: int) -> str:
    count = len(words.split())
    return f"({sql_array(words)})[1 + {HASH.format(prime=prime, m=count)}]"


# Company: Globex for 20% of leads ("glob"), Acme for 1% ("acme"), none for 5%, else one of
# 20 stems. Last name Quokka for 0.01% ("quok"). Every email ends in .example ("exam").
COMPANY = (
    "CASE WHEN i % 5 = 0 THEN 'Globex' WHEN i % 100 = 1 THEN 'Acme'"
    f" WHEN i % 20 = 3 THEN NULL ELSE {pick(STEMS, 7919)} END"
)
INSERT = f"""
INSERT INTO leads (org_id, id, title, first_name, last_name, email, phone, company_name,
                   status, created_by_id, assigned_to_id, tags, custom_fields,
                   created_at, updated_at)
SELECT :org_id, gen_random_uuid(),
       coalesce(company, 'Individual') || ' ' || {pick(PRODUCTS, 104729)} || ' #' || i,
       CASE WHEN i % 33 = 0 THEN NULL ELSE first END, last,
       lower(coalesce(first, 'x') || '.' || last || '.' || i || '@'
             || coalesce(company, 'home') || '.example'),
       '+1 555 ' || lpad({HASH.format(prime=2654435761, m=10_000_000)}::text, 7, '0'),
       company, {pick(STATUSES, 15485863)}, :profile_id, :profile_id, '[]'::jsonb,
       jsonb_build_object('bant_score', {HASH.format(prime=31, m=101)}),
       made, made + make_interval(secs => {HASH.format(prime=1299709, m=30 * 86400)})
FROM generate_series(1, :rows) AS i,
     LATERAL (SELECT {COMPANY} AS company, {pick(FIRST, 6151)} AS first,
                     CASE WHEN i % 10000 = 7 THEN 'Quokka' ELSE {pick(LAST, 3571)} END AS last,
                     timestamptz '2024-01-01' + make_interval(secs => i * 30) AS made) AS row
"""


@dataclass(frozen=True)
class Shape:
    name: str
    query: str
    target_ms: float


def shapes(deep_cursors: dict[str, str]) -> list[Shape]:
    found = [Shape("default list, page 1", "", ORDERING_TARGET_MS)]
    for fragment, share in (
        ("exam", "every lead"),
        ("glob", "20%"),
        ("acme", "1%"),
        ("quok", "0.01%"),
        ("zqxj", "none"),
    ):
        found.append(Shape(f"search={fragment} ({share})", f"search={fragment}", SEARCH_TARGET_MS))
    for name in (*LEADS.ordering, *list_query.ALWAYS_ORDERABLE):
        for term in (name, f"-{name}"):
            found.append(
                Shape(f"ordering={term}&page=200", f"ordering={term}&page=200", ORDERING_TARGET_MS)
            )
            if term in deep_cursors:
                query = f"ordering={term}&cursor={deep_cursors[term]}"
                found.append(Shape(f"ordering={term}, cursor at 90%", query, ORDERING_TARGET_MS))
    found.append(Shape("ordering=title&page=4000", "ordering=title&page=4000", ORDERING_TARGET_MS))
    return found


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


async def load(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        session = AsyncSession(bind=conn)
        orgs = []
        for name in ("Scale Org", "Other Org"):
            org, _user, profile = await register(
                session, name, f"admin@{name.split()[0].lower()}.example", "pw-123456"
            )
            orgs.append((org.id, profile.id))
        await session.flush()
        await conn.execute(text("SET maintenance_work_mem = '1GB'"))
        # Triggers off (the foreign key checks): every row is made consistent above.
        await conn.execute(text("SET session_replication_role = replica"))
        rows = await conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes"
                " WHERE tablename = 'leads' AND indexname <> 'pk_leads'"
            )
        )
        indexes = list(rows)
        for name, _ in indexes:
            await conn.execute(text(f'DROP INDEX "{name}"'))
        began = time.perf_counter()
        for (org_id, profile_id), count in zip(orgs, (ROWS, OTHER_ROWS), strict=True):
            params = {"org_id": org_id, "profile_id": profile_id, "rows": count}
            await conn.execute(text(INSERT), params)
        inserted = time.perf_counter() - began
        print(f"inserted {ROWS:,} + {OTHER_ROWS:,} leads in {inserted:.1f} s")
        for name, definition in indexes:
            began = time.perf_counter()
            await conn.execute(text(definition))
            print(f"  index {name}: {time.perf_counter() - began:.1f} s")
        await conn.execute(text("SET session_replication_role = DEFAULT"))
    await vacuum(engine)


async def vacuum(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        began = time.perf_counter()
        await conn.execute(text("VACUUM (ANALYZE) leads"))
        print(f"VACUUM (ANALYZE) leads: {time.perf_counter() - began:.1f} s")


async def scale_principal(conn: AsyncConnection) -> Principal:
    row = (
        await conn.execute(
            text(
                "SELECT o.id AS org_id, o.name, o.custom_fields_version, p.id AS profile_id,"
                " p.role, u.id AS user_id, u.number, u.email FROM orgs o"
                " JOIN profiles p ON p.org_id = o.id JOIN users u ON u.id = p.user_id"
                " WHERE o.name = 'Scale Org'"
            )
        )
    ).one()
    return Principal(
        token_id=uuid.uuid4(),
        token_kind=TokenKind.access,
        session_id=None,
        org_id=row.org_id,
        org_name=row.name,
        profile_id=row.profile_id,
        role=Role(row.role),
        user_id=row.user_id,
        user_number=row.number,
        email=row.email,
        custom_fields_version=row.custom_fields_version,
    )


def request(query: str) -> Request:
    scope = {"type": "http", "method": "GET", "path": "/api/leads/", "headers": []}
    return Request({**scope, "query_string": query.encode()})


async def deep_cursors(session: AsyncSession, principal: Principal) -> dict[str, str]:
    """For each single-field ordering, the cursor of the record 90% of the way down."""
    make = getattr(list_query, "make_cursor", None)
    if make is None:  # a version of the app without cursors
        return {}
    found = {}
    for name in (*LEADS.ordering, *list_query.ALWAYS_ORDERABLE):
        for term in (name, f"-{name}"):
            order = list_query.parse_ordering(LEADS, term)
            position = int(ROWS * 0.9)
            record = await session.scalar(
                select(Lead)
                .where(Lead.org_id == principal.org_id, Lead.deleted_at.is_(None))
                .order_by(*order.clauses)
                .offset(position)
                .limit(1)
            )
            found[term] = make(order, record)
    await session.rollback()
    return found


@dataclass
class Timing:
    """Milliseconds of each run: the whole list call, and its statements' round trips (the
    database's share, without the Python around them)."""

    total: list[float]
    sql: list[float]

    @staticmethod
    def p(values: list[float], n: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[n - 1]


async def measure(
    engine: AsyncEngine,
    session: AsyncSession,
    principal: Principal,
    shape: Shape,
    runs: int,
    count_limit: int,
) -> tuple[Timing, int, bool]:
    timing = Timing([], [])
    count, estimated = 0, False
    in_sql = [0.0]
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.perf_counter())

    def after(*_: Any) -> None:
        in_sql[0] += time.perf_counter() - started.pop()

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
    for _ in range(runs):
        in_sql[0] = 0.0
        began = time.perf_counter()
        answer = await list_query.list_records(
            session, LEADS, principal, request(shape.query), count_limit
        )
        timing.total.append((time.perf_counter() - began) * 1000)
        timing.sql.append(in_sql[0] * 1000)
        await session.rollback()
        count, estimated = answer.count, answer.count_estimated
    event.remove(engine.sync_engine, "before_cursor_execute", before)
    event.remove(engine.sync_engine, "after_cursor_execute", after)
    return timing, count, estimated


async def explain(
    engine: AsyncEngine, principal: Principal, shape: Shape, count_limit: int = COUNT_LIMIT
) -> None:
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        sent.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    async with engine.connect() as conn, AsyncSession(bind=conn) as session:
        await list_query.list_records(session, LEADS, principal, request(shape.query), count_limit)
    event.remove(engine.sync_engine, "before_cursor_execute", capture)
    async with engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        for statement, params in sent:
            if statement.startswith("EXPLAIN"):
                continue
            plan = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *params)
            print(f"=== {shape.name}\n{statement}\n-- parameters: {list(params)}")
            print("\n".join(row[0] for row in plan), "\n")


async def main(
    url: str, reuse: bool, runs: int, show_plans: bool, count_limit: int, match: str = ""
) -> int:
    # Planned as the app's list pool plans (crm.db.Database.list_sessionmaker).
    engine = create_engine(url, for_lists=True, pool_size=1, max_overflow=0)
    if not reuse:
        await load(engine)
    else:
        await vacuum(engine)
    async with engine.connect() as conn:
        principal = await scale_principal(conn)
        session = AsyncSession(bind=conn)
        cursors = await deep_cursors(session, principal) if "search" not in match else {}
        print(f"\n{runs} runs each, one connection, ms; exact count up to {count_limit:,}\n")
        print("| query | p50 | p95 | SQL p50 | SQL p95 | target (p95) | count |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        slow = []
        for shape in [shape for shape in shapes(cursors) if match in shape.name]:
            timing, count, estimated = await measure(
                engine, session, principal, shape, runs, count_limit
            )
            p95 = Timing.p(timing.total, 95)
            flag = " (estimate)" if estimated else ""
            mark = "" if p95 < shape.target_ms else " **over**"
            print(
                f"| `{shape.name}` | {Timing.p(timing.total, 50):.1f} | {p95:.1f}{mark}"
                f" | {Timing.p(timing.sql, 50):.1f} | {Timing.p(timing.sql, 95):.1f}"
                f" | {shape.target_ms:.0f} | {count:,}{flag} |",
                flush=True,
            )
            if p95 >= shape.target_ms:
                slow.append(shape)
    if show_plans:
        for shape in slow:
            await explain(engine, principal, shape, count_limit)
    await engine.dispose()
    return 1 if slow else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=os.environ.get("CRM_BENCH_DATABASE_URL", ""))
    parser.add_argument("--reuse", action="store_true", help="keep the loaded database")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--explain", action="store_true", help="plans of the slow shapes")
    parser.add_argument("--match", default="", help="only the shapes whose name has this")
    parser.add_argument(
        "--count-limit", type=int, default=COUNT_LIMIT, help="CRM_EXACT_COUNT_LIMIT to run with"
    )
    args = parser.parse_args()
    parsed = make_url(args.url) if args.url else None
    if (
        parsed is None
        or parsed.get_backend_name() != "postgresql"
        or "bench" not in str(parsed.database)
    ):
        parser.error("give a postgresql:// URL of a database named *bench* (it is recreated)")
    if not args.reuse:
        asyncio.run(recreate_database(args.url))
    upgrade(args.url)
    sys.exit(
        asyncio.run(
            main(args.url, args.reuse, args.runs, args.explain, args.count_limit, args.match)
        )
    )
