"""Reading records: one statement that fetches records together with what they show of
linked rows (the assignee's and creator's email, name and whether still active, linked names,
the records they list), and their JSON form."""

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Dialect,
    FromClause,
    FunctionElement,
    Join,
    Row,
    Select,
    String,
    Subquery,
    TypeDecorator,
    Uuid,
    and_,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeEngine

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
        columns.append(user.c.name.label(f"{name}_name"))
        columns.append(profile.c.is_active.label(f"{name}_is_active"))
    for link in spec.links:
        target = link.target.__table__.alias(f"{link.field}_target")
        condition = and_(target.c.org_id == table.c.org_id, target.c.id == table.c[link.column])
        if "deleted_at" in target.c:  # a soft-deleted linked record reads as null
            condition = and_(condition, target.c.deleted_at.is_(None))
        statement_joins.append((target, condition))
        columns.append(target.c[link.by].label(f"{link.field}_value"))
    for many in spec.many:
        columns.append(listed_column(many, table).label(listed_label(many)))
    return columns, statement_joins


def listed_label(many: ManyLink) -> str:
    return f"{many.field}_listed"


def listed_column(many: ManyLink, owners: Any) -> Any:
    """The live records that a record of `owners` lists, as a column of its read: a
    subquery correlated with the record, so that a read of any number of records stays
    one statement."""
    table, target = many.table.__table__, many.target.__table__
    listed = table.c[many.target_column]
    joined = and_(target.c.org_id == table.c.org_id, target.c.id == listed)
    if "deleted_at" in target.c:  # a soft-deleted record is out of the lists that name it
        joined = and_(joined, target.c.deleted_at.is_(None))
    return (
        select(listed_ids(listed))
        .select_from(Join(table, target, joined))
        .where(table.c.org_id == owners.c.org_id, table.c[many.owner] == owners.c.id)
        .correlate(owners)
        .scalar_subquery()
    )


class IdList(TypeDecorator[list[Any]]):
    """What listed_ids reads: a uuid[] on PostgreSQL; JSON text on SQLite, of ids as its
    Uuid columns store them (32 hex digits). Sorted, as the ids compare on both."""

    impl = String
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.ARRAY(Uuid()))
        return dialect.type_descriptor(String())

    def process_result_value(self, value: Any, dialect: Dialect) -> list[Any]:
        if value is None:  # PostgreSQL aggregates no rows to null
            return []
        if isinstance(value, str):
            value = [uuid.UUID(item) for item in orjson.loads(value)]
        return sorted(value)


class listed_ids(FunctionElement[list[Any]]):
    """The ids of a subquery's rows, aggregated into one value (IdList)."""

    type = IdList()
    name = "listed_ids"
    inherit_cache = True


@compiles(listed_ids)
def _listed_ids(element: listed_ids, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(func.json_group_array(*element.clauses), **kw))


@compiles(listed_ids, "postgresql")
def _listed_ids_postgresql(element: listed_ids, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(func.array_agg(*element.clauses), **kw))


def alive(target: Any) -> list[ColumnElement[bool]]:
    """A linked record counts while it is not soft-deleted (a row that cannot be
    soft-deleted always counts)."""
    return [target.deleted_at.is_(None)] if hasattr(target, "deleted_at") else []


def read_bodies(spec: EntitySpec, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """The JSON form of records read with read_statement, their list fields included."""
    return [record_body(spec, row) for row in rows]


BodyLayout = tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...]]


@cache
def body_layout(spec: EntitySpec) -> BodyLayout:
    """What record_body copies, worked out once per entity: the record's own columns, each
    link's field with the label of its value, and the read-only fields that are no link."""
    linked = tuple((link.field, f"{link.field}_value") for link in spec.links)
    read_only = tuple(name for name in spec.read_only if spec.link(name) is None)
    return ("id", "number", *spec.entity_fields), linked, read_only


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
        body[name] = (
            {
                "id": profile_id,
                "email": mapping[f"{name}_email"],
                "name": mapping[f"{name}_name"],
                "is_active": mapping[f"{name}_is_active"],
            }
            if profile_id
            else None
        )
    body["tags"] = mapping["tags"] or []
    body["custom_fields"] = mapping["custom_fields"] or {}
    for name in read_only:
        body[name] = mapping[name]
    body["created_at"] = mapping["created_at"]
    body["updated_at"] = mapping["updated_at"]
    for many in spec.many:
        body[many.field] = mapping[listed_label(many)]
    return body
