"""CSV export of an org's live records (`crm export`): the columns and cell forms the upload
reads (importer.py), so that an export uploads back unchanged. Read in batches, in the order
of creation, so that memory does not grow with the org."""

import csv
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import IO, Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from crm.customfields.service import Definition, read_definitions
from crm.errors import ApiError
from crm.orgs.models import Profile, User
from crm.records.importer import CF_PREFIX, LIST_SEPARATOR, among, natural_key_of
from crm.records.read import alive, read_bodies, read_statement
from crm.records.service import parse_body
from crm.records.spec import EntitySpec, Link
from crm.responses import json_default

BATCH_ROWS = 1000


def writable_links(spec: EntitySpec) -> list[Link]:
    return [link for link in spec.links if link.field in spec.writable]


def columns(spec: EntitySpec, fields: Sequence[Definition]) -> list[str]:
    """The header: every field an upload writes, as the record reads them, then `cf_<key>`
    for each custom field of the org (Exporter.rows writes the cells in this order)."""
    return [
        *spec.entity_fields,
        *(link.field for link in writable_links(spec)),
        *(many.field for many in spec.many),
        "assigned_to",
        "tags",
        *(CF_PREFIX + definition.key for definition in fields),
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
    try:
        parse_body(spec, {name: value}, partial=True)
    except ApiError:
        return False
    return True


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
            rows.append(row)
        return rows


async def export_csv(
    session: AsyncSession,
    spec: EntitySpec,
    org_id: uuid.UUID,
    out: IO[str],
) -> int:
    """Write the org's live records of `spec` to `out` as CSV, in the order they were
    created; answers how many. The session's one transaction reads them all."""
    fields = await read_definitions(session, org_id, spec.singular)
    members = await active_members(session, org_id)
    exporter = Exporter(spec, org_id, fields, members)
    writer = csv.writer(out)
    writer.writerow(columns(spec, fields))
    model = spec.model
    order = (model.created_at, model.id)
    after: tuple[Any, Any] | None = None
    count = 0
    while True:
        statement = read_statement(spec).where(model.org_id == org_id, model.deleted_at.is_(None))
        if after is not None:
            statement = statement.where(tuple_(*order) > after)  # keyset: no offset to skip
        records = list(await session.execute(statement.order_by(*order).limit(BATCH_ROWS)))
        if not records:
            return count
        bodies = read_bodies(spec, records)
        writer.writerows(await exporter.rows(session, bodies))
        out.flush()
        count += len(records)
        last = records[-1]
        after = (last.created_at, last.id)
