"""CSV export of an org's live records (`GET /api/<entity>/export/` and `crm export`, one
writer): the columns and cell forms the upload reads (importer.py) and the record's id and
read-only fields, so that an export uploads back changing nothing. Read in batches, in the
order of the list, so that memory does not grow with the org."""

import csv
import io
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from crm.auth.tokens import Principal
from crm.customfields.service import Definition, read_definitions
from crm.db import Database
from crm.errors import ApiError
from crm.orgs.models import Profile, User
from crm.pagination import page_params
from crm.records.csvfile import neutralised
from crm.records.importer import (
    CF_PREFIX,
    ID_COLUMN,
    LIST_SEPARATOR,
    READ_ONLY_COLUMNS,
    among,
    natural_key_of,
)
from crm.records.query import Ordering, filter_conditions, parse_ordering, past
from crm.records.read import alive, read_bodies, read_statement
from crm.records.scope import org_conditions
from crm.records.service import parse_body
from crm.records.spec import EntitySpec, Link
from crm.responses import json_default

BATCH_ROWS = 1000
PAGING = ("page", "page_size", "cursor")  # an export has every record the list has


def writable_links(spec: EntitySpec) -> list[Link]:
    return [link for link in spec.links if link.field in spec.writable]


# What an export writes beside the upload's columns: the id the upload matches by, and the
# read-only fields it ignores.
SERVER_COLUMNS = (ID_COLUMN, *READ_ONLY_COLUMNS)


def columns(spec: EntitySpec, fields: Sequence[Definition]) -> list[str]:
    """The header: every field an upload writes, as the record reads them, then `cf_<key>`
    for each custom field of the org, then the server's (Exporter.rows writes the cells in
    this order)."""
    return [
        *spec.entity_fields,
        *(link.field for link in writable_links(spec)),
        *(many.field for many in spec.many),
        "assigned_to",
        "tags",
        *(CF_PREFIX + definition.key for definition in fields),
        *SERVER_COLUMNS,
    ]


@cache
def unwritable_choices(spec: EntitySpec) -> dict[str, frozenset[str]]:
    """The values of an enum field that a record may hold but no write may set (its schema
    refuses them: only the server sets them), by field. Their cell is left empty, which an
    upload reads as "not given"."""
    refused: dict[str, frozenset[str]] = {}
    for name, choices in spec.choices.items():
        if name in spec.writable:
            bad = frozenset(value for value in choices if not writable(spec, name, value))
            if bad:
                refused[name] = bad
    return refused


def writable(spec: EntitySpec, name: str, value: Any) -> bool:
    _data, errors = parse_body(spec, {name: value}, partial=True)
    return not errors


def cell(value: Any) -> str:
    """A value as the upload reads it back: dates and times in ISO 8601 (UTC), numbers as
    the JSON API writes them, a checkbox as true/false, nothing as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(json_default(value))
    return str(value)


async def active_members(session: AsyncSession, org_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """The emails of the org's active members, by profile id: an upload assigns only to
    them."""
    rows = await session.execute(
        select(Profile.id, User.email)
        .join(User, User.id == Profile.user_id)
        .where(Profile.org_id == org_id, Profile.is_active.is_(True))
    )
    return {profile_id: email for profile_id, email in rows}


async def natural_keys(
    session: AsyncSession, org_id: uuid.UUID, target: type[Any], ids: Iterable[Any]
) -> dict[Any, str]:
    """The natural keys of the linked records that have one, by id, in one statement."""
    key = natural_key_of(target)
    ids = {value for value in ids if value is not None}
    if key is None or not ids:
        return {}
    rows = await session.execute(
        select(target.id, getattr(target, key)).where(
            target.org_id == org_id, among(session, target.id, ids), *alive(target)
        )
    )
    return {record_id: value for record_id, value in rows if value}


class Exporter:
    def __init__(
        self,
        spec: EntitySpec,
        org_id: uuid.UUID,
        fields: Sequence[Definition],
        members: dict[uuid.UUID, str],
    ) -> None:
        self.spec = spec
        self.org_id = org_id
        self.keys = [definition.key for definition in fields]
        self.members = members
        self.unwritable = unwritable_choices(spec)
        self.links = writable_links(spec)
        self.server = SERVER_COLUMNS

    async def rows(self, session: AsyncSession, bodies: list[dict[str, Any]]) -> list[list[str]]:
        """A batch of records (their JSON form) as CSV rows: one statement per link field
        by id whose records have a natural key, which names them instead."""
        spec = self.spec
        names: dict[str, dict[Any, str]] = {}
        for link in self.links:
            if link.by == "id":
                ids = [body[link.field] for body in bodies]
                names[link.field] = await natural_keys(session, self.org_id, link.target, ids)
        for many in spec.many:
            ids = [value for body in bodies for value in body[many.field]]
            names[many.field] = await natural_keys(session, self.org_id, many.target, ids)
        rows = []
        for body in bodies:
            row = []
            for name in spec.entity_fields:
                value = body[name]
                row.append("" if value in self.unwritable.get(name, ()) else cell(value))
            for link in self.links:  # a link by name (a source) is read as its name
                value = body[link.field]
                row.append(names.get(link.field, {}).get(value) or cell(value))
            for many in spec.many:
                listed = [names[many.field].get(value) or cell(value) for value in body[many.field]]
                row.append(LIST_SEPARATOR.join(listed))
            assigned = body["assigned_to"]
            row.append(self.members.get(assigned["id"], "") if assigned else "")
            row.append(LIST_SEPARATOR.join(body["tags"]))
            row.extend(cell(body["custom_fields"].get(key)) for key in self.keys)
            for name in self.server:
                value = body[name]
                row.append(cell(value["email"] if name == "created_by" and value else value))
            rows.append([neutralised(text) for text in row])
        return rows


async def export_query(
    session: AsyncSession, spec: EntitySpec, principal: Principal, request: Request
) -> tuple[list[ColumnElement[bool]], Ordering]:
    """The records `GET /api/<entity>/export/` writes: the list's parameters but its page's
    (400, as is any the list refuses), checked before the answer starts."""
    paging = [name for name in PAGING if name in request.query_params]
    if paging:
        raise ApiError(400, dict.fromkeys(paging, "An export has every record: it takes no page."))
    page_params(request)  # a parameter given twice is refused there, as for the list
    dialect = session.get_bind().dialect.name
    filters = await filter_conditions(session, spec, principal, request, dialect)
    return filters, parse_ordering(spec, request.query_params.get("ordering"))


@asynccontextmanager
async def snapshot(database: Database) -> AsyncIterator[AsyncSession]:
    """A session in which every batch of an export reads the database as the first did, so
    that the links of one batch name the records as the others see them."""
    async with database.sessionmaker() as session:
        if database.dialect == "postgresql":
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        yield session


async def export_csv(
    session: AsyncSession,
    spec: EntitySpec,
    org_id: uuid.UUID,
    filters: Sequence[ColumnElement[bool]] = (),
    ordering: Ordering | None = None,
) -> AsyncIterator[tuple[str, int]]:
    """The org's live records of `spec` that match `filters` as CSV text, in `ordering`
    (the list's default when None): the header, then a batch at a time, each with the number
    of records it holds."""
    ordering = ordering or parse_ordering(spec, None)
    fields = await read_definitions(session, org_id, spec.singular)
    members = await active_members(session, org_id)
    exporter = Exporter(spec, org_id, fields, members)
    out = io.StringIO()
    writer = csv.writer(out)

    def flushed() -> str:
        chunk = out.getvalue()
        out.seek(0)
        out.truncate()
        return chunk

    writer.writerow(columns(spec, fields))
    yield flushed(), 0
    chosen = read_statement(spec).where(*org_conditions(spec, org_id, deleted=False), *filters)
    statement = chosen
    while True:
        batch = statement.order_by(*ordering.clauses).limit(BATCH_ROWS)
        records = list(await session.execute(batch))
        if not records:
            return
        writer.writerows(await exporter.rows(session, read_bodies(spec, records)))
        yield flushed(), len(records)
        last = records[-1]
        # By keyset from the last record: no offset to skip.
        statement = chosen.where(past(ordering, [getattr(last, name) for name in ordering.fields]))
