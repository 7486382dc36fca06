"""The bare baseline of bench/http_bench.py: a plain ASGI app (asyncpg + orjson, no framework,
no auth, no validation) over the CRM's own PostgreSQL tables, answering the benchmarked
requests with the same JSON as the API, each with one statement (and, as the API, a list
whose count passes the exact bound a second one: EXPLAIN, for the estimate).

    BENCH_DATABASE_URL=postgresql://… BENCH_ORG_ID=<org> BENCH_PROFILE_ID=<creator> \\
        uvicorn bench.baseline:app --workers 2 --loop uvloop --http httptools --no-access-log

It serves one org (BENCH_ORG_ID) as its admin would see it: GET /api/{leads,contacts,
opportunities}/ with page, page_size, ordering and, for leads, status, search and
cf_<key>; GET /api/leads/<id>/ with the lead's custom field definitions; POST /api/leads/
(the record's JSON as given, created by BENCH_PROFILE_ID); PATCH /api/leads/<id>/ (status,
description and custom_fields, merged). Anything else is 404.
"""

import os
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
import orjson

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PAGE_SIZE = 25
# 32 connections over 2 workers: each worker has at most 16 requests in flight.
POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "16"))
# Counted as the API counts (CRM_EXACT_COUNT_LIMIT): exactly up to this many, then the
# planner's estimate.
EXACT_COUNT_LIMIT = int(os.environ.get("BENCH_EXACT_COUNT_LIMIT", "10000"))
# As the API (crm.db.LIST_PLANNING): lists planned for their values, their joins in the order
# written, on connections of their own; the lookups by id on connections that keep their plans.
LIST_PLANNING = {"plan_cache_mode": "force_custom_plan", "join_collapse_limit": "1"}

PROFILES = """
LEFT JOIN profiles ap ON ap.org_id = r.org_id AND ap.id = r.assigned_to_id
LEFT JOIN users au ON au.id = ap.user_id
LEFT JOIN profiles cp ON cp.org_id = r.org_id AND cp.id = r.created_by_id
LEFT JOIN users cu ON cu.id = cp.user_id"""
COMMON = """r.assigned_to_id AS assigned_to, au.email AS assigned_to_email,
r.created_by_id AS created_by, cu.email AS created_by_email, r.tags, r.custom_fields"""

# What each entity reads: its columns (in the API's order) and the joins they need.
COLUMNS = {
    "leads": f"""r.id, r.title, r.first_name, r.last_name, r.company_name, r.status, r.email,
r.phone, r.description, src.name AS source, ca.id AS converted_account,
cc.id AS converted_contact, co.id AS converted_opportunity, {COMMON}, r.converted_at,
r.created_at, r.updated_at""",
    "contacts": f"""r.id, r.first_name, r.last_name, r.title, r.email, r.phone, r.description,
acc.id AS account, {COMMON}, r.created_at, r.updated_at""",
    "opportunities": f"""r.id, r.name, r.amount, r.currency, r.stage, r.probability,
r.close_date, r.description, acc.id AS account, src.name AS source, {COMMON}, r.created_at,
r.updated_at, ARRAY(
    SELECT oc.contact_id FROM opportunity_contacts oc
    JOIN contacts c ON c.org_id = oc.org_id AND c.id = oc.contact_id AND c.deleted_at IS NULL
    WHERE oc.org_id = r.org_id AND oc.opportunity_id = r.id ORDER BY oc.contact_id
) AS contacts""",
}
SOURCE = "LEFT JOIN lead_sources src ON src.org_id = r.org_id AND src.id = r.source_id"
ACCOUNT = """LEFT JOIN accounts acc
    ON acc.org_id = r.org_id AND acc.id = r.account_id AND acc.deleted_at IS NULL"""
JOINS = {
    "leads": f"""{PROFILES}
{SOURCE}
LEFT JOIN accounts ca
    ON ca.org_id = r.org_id AND ca.id = r.converted_account_id AND ca.deleted_at IS NULL
LEFT JOIN contacts cc
    ON cc.org_id = r.org_id AND cc.id = r.converted_contact_id AND cc.deleted_at IS NULL
LEFT JOIN opportunities co
    ON co.org_id = r.org_id AND co.id = r.converted_opportunity_id AND co.deleted_at IS NULL""",
    "contacts": f"{PROFILES}\n{ACCOUNT}",
    "opportunities": f"{PROFILES}\n{ACCOUNT}\n{SOURCE}",
}
ORDERABLE = {
    "leads": {"title", "first_name", "last_name", "email", "company_name", "status"},
    "contacts": {"first_name", "last_name", "email", "title"},
    "opportunities": {"name", "amount", "stage", "probability", "close_date"},
}
# The leads' stored folded search text (migration 0008), which the trigram index covers.
SEARCHED = "r.pgx_search"
DEFINITIONS = """(SELECT coalesce(json_agg(json_build_object(
    'id', f.id::text, 'entity', f.entity, 'key', f.key, 'label', f.label, 'type', f.type,
    'options', f.options, 'required', f.required, 'filterable', f.filterable) ORDER BY f.key),
    '[]') FROM custom_fields f WHERE f.org_id = r.org_id AND f.entity = 'lead')
    AS custom_field_definitions"""
LEAD_FIELDS = ("title", "first_name", "last_name", "email", "phone", "company_name", "status")


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)  # asyncpg's UUID


def dumps(content: Any) -> bytes:
    return orjson.dumps(
        content, default=json_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
    )


def json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def record_body(row: asyncpg.Record) -> dict[str, Any]:
    body = dict(row.items())
    for name in ("assigned_to", "created_by"):
        email = body.pop(f"{name}_email")
        body[name] = {"id": body[name], "email": email} if body[name] else None
    return body


def order_by(entity: str, raw: str | None) -> str:
    terms = []
    for term in (raw or "-created_at").split(","):
        name = term.strip().removeprefix("-")
        if name not in ORDERABLE[entity] | {"created_at", "updated_at"}:
            raise LookupError(name)
        terms.append(f"r.{name} {'DESC' if term.strip().startswith('-') else 'ASC'}")
    return ", ".join([*terms, "r.id ASC"])


class Baseline:
    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.list_pool: asyncpg.Pool | None = None
        self.org = uuid.UUID(os.environ["BENCH_ORG_ID"])
        self.profile = uuid.UUID(os.environ["BENCH_PROFILE_ID"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        try:
            status, content = await self.answer(scope, receive)
        except (LookupError, ValueError):
            status, content = 404, {"detail": "Not found."}
        body = dumps(content)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool, self.list_pool = [
                    await asyncpg.create_pool(
                        os.environ["BENCH_DATABASE_URL"],
                        min_size=POOL_SIZE,
                        max_size=POOL_SIZE,
                        init=self.codecs,
                        server_settings=settings,
                    )
                    for settings in ({}, LIST_PLANNING)
                ]
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in (self.pool, self.list_pool):
                    if pool is not None:
                        await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def codecs(conn: asyncpg.Connection) -> None:
        # JSON from the database is passed through to the answer as it is, never parsed.
        for name in ("json", "jsonb"):
            await conn.set_type_codec(
                name,
                schema="pg_catalog",
                encoder=json_text,
                decoder=orjson.Fragment,
                format="text",
            )

    async def answer(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        assert self.pool is not None
        parts = scope["path"].strip("/").split("/")
        method = scope["method"]
        if len(parts) < 2 or parts[0] != "api" or parts[1] not in COLUMNS:
            raise LookupError(scope["path"])
        entity = parts[1]
        if len(parts) == 2 and method == "GET":
            return 200, await self.list(scope, entity)
        if entity != "leads":
            raise LookupError(scope["path"])
        if len(parts) == 2 and method == "POST":
            return 201, await self.create(orjson.loads(await read_body(receive)))
        if len(parts) == 3 and method == "GET":
            return 200, await self.detail(uuid.UUID(parts[2]))
        if len(parts) == 3 and method == "PATCH":
            body = orjson.loads(await read_body(receive))
            return 200, await self.patch(uuid.UUID(parts[2]), body)
        raise LookupError(scope["path"])

    async def list(self, scope: Scope, entity: str) -> dict[str, Any]:
        assert self.list_pool is not None
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        page = int(query.get("page", "1"))
        page_size = int(query.get("page_size", PAGE_SIZE))
        conditions = ["r.org_id = $1", "r.deleted_at IS NULL"]
        args: list[Any] = [self.org]
        for key, value in query.items():
            if key in ("page", "page_size", "ordering"):
                continue
            args.append(value)
            if entity == "leads" and key == "status":
                conditions.append(f"r.status = ${len(args)}")
            elif entity == "leads" and key == "search":
                escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                args[-1] = f"%{escaped.lower()}%"
                conditions.append(f"{SEARCHED} LIKE ${len(args)} ESCAPE '\\'")
            elif key.startswith("cf_"):
                args[-1] = orjson.dumps({key.removeprefix("cf_"): value}).decode()
                conditions.append(f"r.custom_fields @> ${len(args)}::jsonb")
            else:
                raise LookupError(key)
        where = " AND ".join(conditions)
        args += [page_size + 1, (page - 1) * page_size]
        # The count bounded in the statement of the page; the page one record longer, to
        # tell whether a next one exists whatever the count.
        rows = await self.list_pool.fetch(
            f"""SELECT t.total, p.* FROM (SELECT count(*) AS total FROM (SELECT 1 FROM {entity} r
                WHERE {where} LIMIT {EXACT_COUNT_LIMIT + 1}) c) t
            LEFT JOIN LATERAL (SELECT {COLUMNS[entity]} FROM {entity} r {JOINS[entity]}
                WHERE {where} ORDER BY {order_by(entity, query.get("ordering"))}
                LIMIT ${len(args) - 1} OFFSET ${len(args)}) p ON true""",
            *args,
        )
        count, estimated = rows[0]["total"], False
        if count > EXACT_COUNT_LIMIT:
            plan = await self.list_pool.fetchval(
                f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {entity} r WHERE {where}", *args[:-2]
            )
            plan = orjson.loads(orjson.dumps(plan))  # a Fragment of the plan's JSON text
            count, estimated = max(int(plan[0]["Plan"]["Plan Rows"]), count), True
        results = []
        for row in rows[:page_size]:
            if row["id"] is not None:
                body = record_body(row)
                del body["total"]
                results.append(body)
        has_next = len(rows) > page_size
        last_page = max(1, -(-count // page_size))
        return {
            "count": count,
            "count_estimated": estimated,
            "next": page_url(scope, page + 1) if has_next else None,
            "previous": page_url(scope, min(page - 1, last_page)) if page > 1 else None,
            "results": results,
        }

    async def detail(self, lead_id: uuid.UUID) -> dict[str, Any]:
        assert self.pool is not None
        row = await self.pool.fetchrow(
            f"""SELECT {COLUMNS["leads"]}, {DEFINITIONS} FROM leads r {JOINS["leads"]}
            WHERE r.org_id = $1 AND r.id = $2 AND r.deleted_at IS NULL""",
            self.org,
            lead_id,
        )
        if row is None:
            raise LookupError(lead_id)
        return record_body(row)

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        assert self.pool is not None
        values = [body.get(name) for name in LEAD_FIELDS]
        values[-1] = values[-1] or "new"
        assigned = uuid.UUID(body["assigned_to"]) if body.get("assigned_to") else None
        row = await self.pool.fetchrow(
            f"""WITH r AS (
                INSERT INTO leads (org_id, id, created_by_id, assigned_to_id, tags, custom_fields,
                    created_at, updated_at, description, {", ".join(LEAD_FIELDS)})
                VALUES ($1, gen_random_uuid(), $2, $3, $4, $5, now(), now(), $6, $7, $8, $9,
                    $10, $11, $12, $13)
                RETURNING *)
            SELECT {COLUMNS["leads"]} FROM r {JOINS["leads"]}""",
            self.org,
            self.profile,
            assigned,
            body.get("tags", []),
            body.get("custom_fields", {}),
            body.get("description"),
            *values,
        )
        return record_body(row)

    async def patch(self, lead_id: uuid.UUID, body: dict[str, Any]) -> dict[str, Any]:
        assert self.pool is not None
        row = await self.pool.fetchrow(
            f"""WITH r AS (
                UPDATE leads SET status = coalesce($3, status),
                    description = CASE WHEN $4 THEN $5 ELSE description END,
                    custom_fields = jsonb_strip_nulls(custom_fields || $6), updated_at = now()
                WHERE org_id = $1 AND id = $2 AND deleted_at IS NULL
                RETURNING *)
            SELECT {COLUMNS["leads"]} FROM r {JOINS["leads"]}""",
            self.org,
            lead_id,
            body.get("status"),
            "description" in body,
            body.get("description"),
            body.get("custom_fields", {}),
        )
        if row is None:
            raise LookupError(lead_id)
        return record_body(row)


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def page_url(scope: Scope, page: int) -> str:
    """As the API builds it (Starlette's include_query_params): `page` replaced, moved last."""
    host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
    params = [
        (key, value)
        for key, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        if key != "page"
    ]
    query = urlencode([*params, ("page", str(page))])
    return f"{scope['scheme']}://{host}{scope['path']}?{query}"


app = Baseline()
