"""Reading records: one statement that fetches records together with what they show of
linked rows (profile emails, linked names), and their JSON form."""

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Join,
    Row,
    Select,
    Subquery,
    and_,
    bindparam,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from crm.orgs.models import Profile, User
from crm.records.spec import EntitySpec, ManyLink

PROFILE_LINKS = ("assigned_to", "created_by")


@cache
def read_statement(spec: EntitySpec) -> Select[Any]:
    """SELECT record, <profile emails>, <link values> with outer joins: whatever the page
    size, one statement."""
    return with_links(spec, spec.table)


def read_chosen(spec: EntitySpec, chosen: Subquery) -> Select[Any]:
    """read_statement for the records whose `org_id` and `id` columns `chosen` selects,
    read from it first: joined from those rows alone, whatever the size of the table (on
    PostgreSQL the list pool keeps the joins in the order written, crm.db.LIST_PLANNING)."""
    table = spec.table
    on = and_(table.c.org_id == chosen.c.org_id, table.c.id == chosen.c.id)
    return with_links(spec, Join(chosen, table, on))


def with_links(spec: EntitySpec, start: FromClause) -> Select[Any]:
    """What a read selects, from `start` outer-joined to the record's linked rows. Join
    objects, not a Select's generative joins: a list builds this on every request."""
    columns, statement_joins = linked_parts(spec)
    joined = start
    for target, condition in statement_joins:
        joined = Join(joined, target, condition, isouter=True)
    return select(*columns).select_from(joined)


@cache
def linked_parts(spec: EntitySpec) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """What a read selects (the record's columns, profile emails, link values) and its
    outer joins, built once per entity. In Core: a read answers JSON and loads no ORM
    entities, and building ORM expressions anew would cost more than a list's own query."""
    table = spec.table
    columns: list[Any] = list(table.c)
    statement_joins: list[tuple[Any, Any]] = []
    for name in PROFILE_LINKS:
        profile = Profile.__table__.alias(f"{name}_profile")
        user = User.__table__.alias(f"{name}_user")
        column = table.c[f"{name}_id"]
        statement_joins.append(
            (profile, and_(profile.c.org_id == table.c.org_id, profile.c.id == column))
        )
        statement_joins.append((user, user.c.id == profile.c.user_id))
        columns.append(user.c.email.label(f"{name}_email"))
    for link in spec.links:
        target = link.target.__table__.alias(f"{link.field}_target")
        condition = and_(target.c.org_id == table.c.org_id, target.c.id == table.c[link.column])
        if "deleted_at" in target.c:  # a soft-deleted linked record reads as null
            condition = and_(condition, target.c.deleted_at.is_(None))
        statement_joins.append((target, condition))
        columns.append(target.c[link.by].label(f"{link.field}_value"))
    return columns, statement_joins


def alive(target: Any) -> list[ColumnElement[bool]]:
    """A linked record counts while it is not soft-deleted (a row that cannot be
    soft-deleted always counts)."""
    return [target.deleted_at.is_(None)] if hasattr(target, "deleted_at") else []


@cache
def many_statement(many: ManyLink) -> Select[Any]:
    """The live records that owners list, built once per list field (parameters `org_id`
    and `owner_ids`), in Core."""
    table, target = many.table.__table__, many.target.__table__
    owner, listed = table.c[many.owner], table.c[many.target_column]
    joined = and_(target.c.org_id == table.c.org_id, target.c.id == listed)
    if "deleted_at" in target.c:
        joined = and_(joined, target.c.deleted_at.is_(None))
    return (
        select(owner, listed)
        .join(target, joined)
        .where(
            table.c.org_id == bindparam("org_id"),
            owner.in_(bindparam("owner_ids", expanding=True)),
        )
        .order_by(owner, listed)
    )


async def many_values(
    session: AsyncSession, many: ManyLink, org_id: Any, owner_ids: Sequence[Any]
) -> dict[Any, list[Any]]:
    """The live records each owner lists, by owner id, in one statement."""
    parameters = {"org_id": org_id, "owner_ids": list(owner_ids)}
    rows = await session.execute(many_statement(many), parameters)
    values: dict[Any, list[Any]] = {owner_id: [] for owner_id in owner_ids}
    for owner_id, listed_id in rows:
        values[owner_id].append(listed_id)
    return values


async def read_bodies(
    session: AsyncSession, spec: EntitySpec, rows: Sequence[Row[Any]]
) -> list[dict[str, Any]]:
    """The JSON form of records read with read_statement, their list fields included: one
    statement per list field, whatever the number of records."""
    bodies = [record_body(spec, row) for row in rows]
    if bodies:
        for many in spec.many:
            org_id = rows[0].org_id
            values = await many_values(session, many, org_id, [body["id"] for body in bodies])
            for body in bodies:
                body[many.field] = values[body["id"]]
    return bodies


BodyLayout = tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...]]


@cache
def body_layout(spec: EntitySpec) -> BodyLayout:
    """What record_body copies, worked out once per entity: the record's own columns, each
    link's field with the label of its value, and the read-only fields that are no link."""
    linked = tuple((link.field, f"{link.field}_value") for link in spec.links)
    read_only = tuple(name for name in spec.read_only if spec.link(name) is None)
    return ("id", *spec.entity_fields), linked, read_only


def record_body(spec: EntitySpec, record: Row[Any]) -> dict[str, Any]:
    """A record read with read_statement: its columns by name, beside what it read of
    linked rows."""
    mapping = record._mapping
    own, linked, read_only = body_layout(spec)
    body: dict[str, Any] = {name: mapping[name] for name in own}
    for name, label in linked:
        body[name] = mapping[label]
    for name in PROFILE_LINKS:
        profile_id = mapping[f"{name}_id"]
        body[name] = {"id": profile_id, "email": mapping[f"{name}_email"]} if profile_id else None
    body["tags"] = mapping["tags"] or []
    body["custom_fields"] = mapping["custom_fields"] or {}
    for name in read_only:
        body[name] = mapping[name]
    body["created_at"] = mapping["created_at"]
    body["updated_at"] = mapping["updated_at"]
    return body
