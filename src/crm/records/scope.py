"""Tenant scope, in one place: every query of a record table starts from these conditions,
built from the caller's principal (its org, its visibility, live records only)."""

from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm.auth.tokens import Principal
from crm.errors import forbidden, not_found
from crm.ids import parse_id
from crm.records.read import read_statement
from crm.records.spec import EntitySpec


def in_org(
    spec: EntitySpec, principal: Principal, *, deleted: bool = False
) -> list[ColumnElement[bool]]:
    """The caller's org, and live records (or, for restore, soft-deleted ones)."""
    return org_conditions(spec, principal.org_id, deleted=deleted)


def org_conditions(
    spec: EntitySpec, org_id: Any, *, deleted: bool | None
) -> list[ColumnElement[bool]]:
    """Records of the org `org_id` (a value, or a bound parameter), live ones, soft-deleted
    ones (`deleted`) or both (None)."""
    columns = spec.table.c  # Core columns: cheaper to compare than the ORM's, per request
    conditions = [columns.org_id == org_id]
    if deleted is not None:
        conditions.append(
            columns.deleted_at.is_not(None) if deleted else columns.deleted_at.is_(None)
        )
    return conditions


def visible(spec: EntitySpec, principal: Principal) -> list[ColumnElement[bool]]:
    """An admin sees every record of the org; a user those it created or is assigned."""
    return [] if principal.is_admin else visible_to(spec, principal.profile_id)


def visible_to(spec: EntitySpec, profile_id: Any) -> list[ColumnElement[bool]]:
    """What a user (not an admin) sees of the records: those of the profile `profile_id`
    (a value, or a bound parameter) created or is assigned."""
    columns = spec.table.c
    return [or_(columns.created_by_id == profile_id, columns.assigned_to_id == profile_id)]


def scope(spec: EntitySpec, principal: Principal) -> list[ColumnElement[bool]]:
    """What a list shows the caller."""
    return [*in_org(spec, principal), *visible(spec, principal)]


def can_see(record: Any, principal: Principal) -> bool:
    return principal.is_admin or principal.profile_id in (
        record.created_by_id,
        record.assigned_to_id,
    )


@cache
def record_statement(spec: EntitySpec, *, deleted: bool | None) -> Select[Any]:
    """One record of an org by id, with what it reads from linked rows; built once per
    entity and kind, so that SQLAlchemy keeps its compiled form (parameters `org_id` and
    `record_id`)."""
    table = spec.table
    return read_statement(spec).where(
        *org_conditions(spec, bindparam("org_id"), deleted=deleted),
        table.c.id == bindparam("record_id"),
    )


@cache
def locking_statement(spec: EntitySpec, *, deleted: bool) -> Select[Any]:
    """One record of an org by id (parameters `org_id` and `record_id`), its own columns,
    its row locked."""
    table = spec.table
    return (
        select(table)
        .where(
            *org_conditions(spec, bindparam("org_id"), deleted=deleted),
            table.c.id == bindparam("record_id"),
        )
        .with_for_update()
    )


async def fetch(
    session: AsyncSession,
    spec: EntitySpec,
    principal: Principal,
    raw_id: str,
) -> Row[Any]:
    """One live record with what it reads from linked rows. 404 when it is not in the
    caller's org (or not live); 403 when it is, but the caller may not see it."""
    statement = record_statement(spec, deleted=False)
    parameters = {"org_id": principal.org_id, "record_id": parse_id(raw_id)}
    row = (await session.execute(statement, parameters)).one_or_none()
    return seen(row, principal)


async def fetch_for_change(
    session: AsyncSession,
    spec: EntitySpec,
    principal: Principal,
    raw_id: str,
    *,
    deleted: bool = False,
) -> Any:
    """The record (soft-deleted, with `deleted`) to change (crm.records.service.update_record),
    404 and 403 as fetch. Its row stays locked until the request's transaction ends, so that
    concurrent changes of one record apply one after the other instead of overwriting each
    other."""
    statement = locking_statement(spec, deleted=deleted)
    parameters = {"org_id": principal.org_id, "record_id": parse_id(raw_id)}
    record = (await session.execute(statement, parameters)).one_or_none()
    return seen(record, principal)


def seen(record: Any, principal: Principal) -> Any:
    if record is None:
        raise not_found()
    if not can_see(record, principal):
        raise forbidden("This record is neither yours nor assigned to you.")
    return record
