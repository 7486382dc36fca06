"""Writing records: validation of a body against the entity's spec, links, custom fields
and uniqueness; create, update, soft delete and restore. Services write, never commit."""

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError, create_model
from pydantic.fields import FieldInfo
from sqlalchemy import (
    BindParameter,
    Insert,
    Row,
    Select,
    String,
    Update,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm.auth.tokens import Principal
from crm.customfields.service import definition_body, definitions, validate_values
from crm.db import folded, new_uuid, refused_by, utcnow
from crm.errors import ApiError, validation_errors
from crm.orgs.models import Profile
from crm.records.models import unique_index_name
from crm.records.read import alive, read_bodies
from crm.records.scope import can_see, fetch, fetch_for_change, record_statement
from crm.records.spec import SERVER_DERIVED, EntitySpec, Link, ManyLink, RecordIn, all_registered
from crm.validation import NUL_REASON, contains_nul


@cache
def patch_schema(schema: type[RecordIn]) -> type[BaseModel]:
    """The entity's schema with every field optional, for PATCH."""
    fields: dict[str, Any] = {
        name: (info.rebuild_annotation() | None, None) for name, info in schema.model_fields.items()
    }
    return create_model(f"{schema.__name__}Patch", __base__=schema, **fields)


def nullable(info: FieldInfo) -> bool:
    """Whether PATCH may set the field to null: only an optional field whose default is null
    (a required field, or one like `status` or `tags` with a value as default, may not)."""
    return not info.is_required() and info.default is None and info.default_factory is None


@cache
def never_null(schema: type[RecordIn]) -> tuple[str, ...]:
    return tuple(name for name, info in schema.model_fields.items() if not nullable(info))


@contextmanager
def gathered(errors: dict[str, str]) -> Iterator[None]:
    """A 400 raised in the block adds its reasons to `errors` (a field keeps its first
    reason) instead of ending the request, so that every problem of a body is answered at
    once."""
    try:
        yield
    except ApiError as exc:
        if exc.status != 400:
            raise
        for field, reason in exc.errors.items():
            errors.setdefault(field, reason)


def refused_keys(spec: EntitySpec, body: dict[str, Any]) -> dict[str, str]:
    """The keys no body of the entity may carry, and the values holding a NUL."""
    errors: dict[str, str] = {}
    for key, value in body.items():
        if key in SERVER_DERIVED or key in spec.read_only:
            errors[key] = "This field is set by the server and cannot be written."
        elif key not in spec.writable:
            errors[key] = "Unknown field."
        elif key == "custom_fields" and isinstance(value, dict):
            for name, item in value.items():
                if contains_nul(name) or contains_nul(item):
                    errors[f"custom_fields.{name}"] = NUL_REASON
        elif contains_nul(value):
            errors[key] = NUL_REASON
    return errors


def parse_body(
    spec: EntitySpec, body: Any, *, partial: bool, current: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The body's writable fields that are valid, and the reasons of those that are not;
    for a valid full write (create, PUT) every writable field, those left out at their
    default. `current`: the record it changes (None for a new one)."""
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    errors = refused_keys(spec, body)
    writable = {key: value for key, value in body.items() if key not in errors}
    data, invalid = checked_fields(spec, writable, partial=partial, current=current)
    for field, reason in invalid.items():
        errors.setdefault(field, reason)
    return data, errors


def names_field(key: str, field: str) -> bool:
    """Whether an error's key is the field's, or one of its items' (`<field>.0`)."""
    return key == field or key.startswith(f"{field}.")


@cache
def writable_choices(spec: EntitySpec) -> dict[str, tuple[str, ...]]:
    """The values a body may write to each field that holds some only the server sets: what
    a refused value's reason offers."""
    return {
        name: tuple(value for value in spec.choices[name] if value not in setters)
        for name, setters in spec.server_set.items()
    }


def checked_fields(
    spec: EntitySpec,
    body: dict[str, Any],
    *,
    partial: bool,
    current: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """A body of writable fields without NUL characters through the entity's schema, the
    one validation of the JSON API (parse_body) and of CSV uploads (validated): the values
    of the fields that passed (all of them, defaults included, for a valid full write) and
    the reasons of those that did not. `current` holds at least the server-set fields of
    the record the body changes (None for a new record)."""
    schema = patch_schema(spec.schema) if partial else spec.schema
    try:
        data = schema.model_validate(body).model_dump(exclude_unset=partial)
    except ValidationError as exc:
        errors = validation_errors(list(exc.errors()), writable_choices(spec))
        # The fields that passed, so that what depends on them (custom fields, links) is
        # checked in the same answer.
        passed = {
            name: value
            for name, value in body.items()
            if not any(names_field(key, name) for key in errors)
        }
        try:
            data = patch_schema(spec.schema).model_validate(passed).model_dump(exclude_unset=True)
        except ValidationError:
            data = {}
    else:
        errors = {}
    if partial:
        for name in never_null(spec.schema):
            if name in data and data[name] is None:
                errors[name] = "This field may not be null."
                del data[name]
    with gathered(errors):
        keep_server_set(spec, data, body, current)
    return data, errors


def validated(
    spec: EntitySpec,
    body: dict[str, Any],
    *,
    partial: bool,
    current: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A CSV row's body through checked_fields, its reasons raised as a 400 (an upload
    checks the fields a file names and its NUL characters once for its header and once a
    row)."""
    data, errors = checked_fields(spec, body, partial=partial, current=current)
    if errors:
        raise ApiError(400, errors)
    return data


def keep_server_set(
    spec: EntitySpec,
    data: dict[str, Any],
    given: Mapping[str, Any],
    current: Mapping[str, Any] | None,
) -> None:
    """A value only the server sets (spec.server_set: `converted`, set by convert) is
    refused in a write; a record holding one keeps it. A write that gives it again changes
    nothing; a full write that leaves the field out keeps it (rather than returning it to
    its default, which would undo what set it); any other value is a 400."""
    errors: dict[str, str] = {}
    for name, setters in spec.server_set.items():
        held = current.get(name) if current is not None else None
        if held in setters:
            if name not in given:
                data.pop(name, None)
            elif data.get(name) != held:
                errors[name] = f"This {spec.singular} is {held}: its {name} cannot change."
        elif data.get(name) in setters:
            value = data[name]
            errors[name] = f"'{value}' is set only by {setters[value]}."
    if errors:
        raise ApiError(400, errors)


@cache
def link_statement(link: Link) -> Select[Any]:
    """The id of the live record of an org (parameter `org_id`) that a link's value names
    (`value`), built once per link. A share lock: the linked row cannot be deleted before
    the write commits."""
    target = link.target
    by = getattr(target, link.by)
    if link.by == "id":
        match = by == bindparam("value")
    else:
        match = folded(by) == folded(bindparam("value", type_=String))
    conditions = [target.org_id == bindparam("org_id"), match, *alive(target)]
    return select(target.id).where(*conditions).with_for_update(read=True)


# Whether a profile (parameter `profile_id`) is an active member of the org (`org_id`).
ACTIVE_MEMBER = select(Profile.id).where(
    Profile.org_id == bindparam("org_id"),
    Profile.id == bindparam("profile_id"),
    Profile.is_active.is_(True),
)


@cache
def listed_statement(many: ManyLink) -> Select[Any]:
    """Which of the records a list field names (parameter `ids`) are live records of the
    org (`org_id`), built once per list field; share-locked as a link's."""
    target = many.target
    ids: BindParameter[Any] = bindparam("ids", expanding=True)
    conditions = [target.org_id == bindparam("org_id"), target.id.in_(ids), *alive(target)]
    return select(target.id).where(*conditions).with_for_update(read=True)


async def link_columns(
    session: AsyncSession, spec: EntitySpec, principal: Principal, data: dict[str, Any]
) -> dict[str, Any]:
    """Column values for the links and the assignee in `data`, each checked to exist in
    the caller's org."""
    columns: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for link in spec.links:
        if link.field not in data:
            continue
        value = data[link.field]
        if value is None:
            columns[link.column] = None
            continue
        parameters = {"org_id": principal.org_id, "value": value if link.by == "id" else str(value)}
        found = await session.scalar(link_statement(link), parameters)
        if found is None:
            errors[link.field] = f"No {link.field} '{value}' in this org."
        columns[link.column] = found
    if data.get("assigned_to") is not None:
        parameters = {"org_id": principal.org_id, "profile_id": data["assigned_to"]}
        if await session.scalar(ACTIVE_MEMBER, parameters) is None:
            errors["assigned_to"] = "Not an active member of this org."
    if "assigned_to" in data:
        columns["assigned_to_id"] = data["assigned_to"]
    if errors:
        raise ApiError(400, errors)
    return columns


async def many_ids(
    session: AsyncSession, spec: EntitySpec, principal: Principal, data: dict[str, Any]
) -> dict[ManyLink, list[uuid.UUID]]:
    """The records each list field in `data` names (repeats dropped), each checked to be a
    live record of the caller's org, in one statement per field."""
    result: dict[ManyLink, list[uuid.UUID]] = {}
    errors: dict[str, str] = {}
    for many in spec.many:
        if many.field not in data:
            continue
        wanted = list(dict.fromkeys(data[many.field] or []))
        if wanted:
            parameters = {"org_id": principal.org_id, "ids": wanted}
            found = set(await session.scalars(listed_statement(many), parameters))
            missing = [str(record_id) for record_id in wanted if record_id not in found]
            if missing:
                errors[many.field] = f"No such record in this org: {', '.join(missing)}."
        result[many] = wanted
    if errors:
        raise ApiError(400, errors)
    return result


async def write_many(
    session: AsyncSession,
    org_id: uuid.UUID,
    record_id: uuid.UUID,
    lists: dict[ManyLink, list[uuid.UUID]],
    *,
    new: bool = False,
) -> None:
    """Replace what a record lists (a `new` one lists nothing yet)."""
    for many, ids in lists.items():
        await write_lists(session, org_id, many, {record_id: ids}, new=new)


async def write_lists(
    session: AsyncSession,
    org_id: uuid.UUID,
    many: ManyLink,
    listed: dict[uuid.UUID, list[uuid.UUID]],
    *,
    new: bool = False,
) -> None:
    """Replace what each record of `listed` lists, for all of them at once (`new` records
    list nothing yet: nothing to delete). Rows naming a deleted record stay, so that
    restoring it brings it back into the list."""
    if not listed:
        return
    table, target = many.table, many.target
    if not new:
        owner = getattr(table, many.owner)
        column = getattr(table, many.target_column)
        live_targets = select(target.id).where(target.org_id == org_id, *alive(target))
        await session.execute(
            delete(table).where(
                table.org_id == org_id, owner.in_(list(listed)), column.in_(live_targets)
            )
        )
    rows = [
        {"org_id": org_id, many.owner: record_id, many.target_column: listed_id}
        for record_id, ids in listed.items()
        for listed_id in ids
    ]
    if rows:
        await session.execute(insert(table), rows)


def check_exclusive(spec: EntitySpec, data: dict[str, Any], record: Any = None) -> None:
    """At most one of the spec's exclusive links is set once `data` is applied to `record`
    (None for a new record)."""
    linked = []
    for name in spec.exclusive:
        link = spec.link(name)
        assert link is not None
        current = getattr(record, link.column) if record is not None else None
        if data.get(name, current) is not None:
            linked.append(name)
    if len(linked) > 1:
        reason = f"At most one of {', '.join(spec.exclusive)} may be set."
        raise ApiError(400, dict.fromkeys(linked, reason))


def duplicate(spec: EntitySpec, name: str) -> ApiError:
    article = "An" if spec.singular[0] in "aeiou" else "A"
    return ApiError(400, {name: f"{article} {spec.singular} with this {name} already exists."})


@contextmanager
def unique_fields(spec: EntitySpec) -> Iterator[None]:
    """The unique index of a field (unique in the org among live records, whatever its
    case: crm.records.models.unique_live) refusing the write in the block is a 400 naming
    the field. The index is the check: a lookup before the write would cost a statement and
    still need the index for concurrent writes."""
    try:
        yield
    except IntegrityError as exc:
        refused = (
            name
            for name in spec.unique
            if refused_by(exc, spec.table, unique_index_name(spec.name, name))
        )
        field = next(refused, None)
        if field is None:
            raise
        raise duplicate(spec, field) from None


@cache
def insert_statement(spec: EntitySpec) -> Insert:
    return insert(spec.table)


@cache
def update_statement(spec: EntitySpec) -> Update:
    """An UPDATE of one record (parameters `record_org_id` and `record_id`) whose SET
    clause names the columns that its parameters give."""
    table = spec.table
    return update(table).where(
        table.c.org_id == bindparam("record_org_id"), table.c.id == bindparam("record_id")
    )


async def update_record(
    session: AsyncSession, spec: EntitySpec, record: Row[Any], values: dict[str, Any]
) -> None:
    """Set `values` (by column) on a record read by fetch_for_change."""
    parameters = {**values, "record_org_id": record.org_id, "record_id": record.id}
    await session.execute(update_statement(spec), parameters)


async def read_one(
    session: AsyncSession, spec: EntitySpec, org_id: uuid.UUID, record_id: uuid.UUID
) -> dict[str, Any]:
    """A record of the org, deleted or not, in its JSON form."""
    statement = record_statement(spec, deleted=None)
    row = (await session.execute(statement, {"org_id": org_id, "record_id": record_id})).one()
    return read_bodies(spec, [row])[0]


async def read_for(
    session: AsyncSession, spec: EntitySpec, principal: Principal, record_id: uuid.UUID
) -> dict[str, Any]:
    """A record of the caller's org as a write that links it answers it: in full when the
    caller may see it, else its id alone (a `user` may link records it does not see)."""
    statement = record_statement(spec, deleted=None)
    parameters = {"org_id": principal.org_id, "record_id": record_id}
    row = (await session.execute(statement, parameters)).one()
    if not can_see(row, principal):
        return {"id": row.id}
    return read_bodies(spec, [row])[0]


async def detail(
    session: AsyncSession, spec: EntitySpec, principal: Principal, row: Row[Any]
) -> dict[str, Any]:
    """A record with the custom field definitions of its entity, for forms."""
    fields = await definitions(session, principal, spec.singular)
    return {
        **read_bodies(spec, [row])[0],
        "custom_field_definitions": [definition_body(field) for field in fields],
    }


async def checked_links(
    session: AsyncSession,
    spec: EntitySpec,
    principal: Principal,
    data: dict[str, Any],
    errors: dict[str, str],
    record: Any = None,
) -> tuple[dict[str, Any], dict[ManyLink, list[uuid.UUID]]]:
    """The last checks of a write, after its fields' (whose reasons `errors` holds): its
    exclusive links and the records its links name. The link columns and lists to write;
    400 with every reason found, the fields' included."""
    columns: dict[str, Any] = {}
    lists: dict[ManyLink, list[uuid.UUID]] = {}
    with gathered(errors):
        check_exclusive(spec, data, record)
    with gathered(errors):
        columns = await link_columns(session, spec, principal, data)
    with gathered(errors):
        lists = await many_ids(session, spec, principal, data)
    if errors:
        raise ApiError(400, errors)
    return columns, lists


async def create(
    session: AsyncSession, spec: EntitySpec, principal: Principal, body: Any
) -> dict[str, Any]:
    data, errors = parse_body(spec, body, partial=False)
    custom: dict[str, Any] = {}
    if "custom_fields" not in errors:
        fields = await definitions(session, principal, spec.singular)
        with gathered(errors):
            custom = validate_values(fields, {}, data.get("custom_fields", {}), replace=True)
    columns, lists = await checked_links(session, spec, principal, data, errors)
    now = utcnow()
    record_id = new_uuid()
    values = {
        "org_id": principal.org_id,
        "id": record_id,
        "created_by_id": principal.profile_id,
        "tags": data["tags"],
        "custom_fields": custom,
        "created_at": now,
        "updated_at": now,
        **{name: data[name] for name in spec.entity_fields},
        **columns,
    }
    # In Core: the answer is read back below, so no ORM entity is needed.
    with unique_fields(spec):
        await session.execute(insert_statement(spec), values)
    await write_many(session, principal.org_id, record_id, lists, new=True)
    return await read_one(session, spec, principal.org_id, record_id)


async def change(
    session: AsyncSession,
    spec: EntitySpec,
    principal: Principal,
    raw_id: str,
    body: Any,
    *,
    partial: bool,
) -> dict[str, Any]:
    """PATCH (`partial`: only the fields in the body change) or PUT (a writable field left
    out returns to its default)."""
    record = await fetch_for_change(session, spec, principal, raw_id)
    data, errors = parse_body(spec, body, partial=partial, current=record._mapping)
    values: dict[str, Any] = {}
    if "custom_fields" in data:
        fields = await definitions(session, principal, spec.singular)
        with gathered(errors):
            values["custom_fields"] = validate_values(
                fields, record.custom_fields or {}, data["custom_fields"] or {}, replace=not partial
            )
    columns, lists = await checked_links(session, spec, principal, data, errors, record)
    values.update((name, data[name]) for name in spec.entity_fields if name in data)
    if "tags" in data:
        values["tags"] = data["tags"] or []
    values.update(columns)
    values["updated_at"] = utcnow()
    with unique_fields(spec):
        await update_record(session, spec, record, values)
    await write_many(session, principal.org_id, record.id, lists)
    return await read_one(session, spec, principal.org_id, record.id)


async def soft_delete(
    session: AsyncSession, spec: EntitySpec, principal: Principal, raw_id: str
) -> None:
    record = await fetch_for_change(session, spec, principal, raw_id)
    await update_record(session, spec, record, {"deleted_at": utcnow()})


async def restore(
    session: AsyncSession, spec: EntitySpec, principal: Principal, raw_id: str
) -> dict[str, Any]:
    record = await fetch_for_change(session, spec, principal, raw_id, deleted=True)
    with unique_fields(spec):
        await update_record(session, spec, record, {"deleted_at": None, "updated_at": utcnow()})
    return await detail(session, spec, principal, await fetch(session, spec, principal, raw_id))


async def remove_custom_field(
    session: AsyncSession, spec: EntitySpec, org_id: uuid.UUID, key: str
) -> None:
    """Drop a deleted custom field's key from every record of the org."""
    model = spec.model
    dialect = session.get_bind().dialect.name
    stripped: Any = (
        model.custom_fields.op("-")(key)
        if dialect == "postgresql"
        else func.json_remove(model.custom_fields, f'$."{key}"')
    )
    await session.execute(
        update(model)
        .where(model.org_id == org_id)
        .values(custom_fields=stripped)
        .execution_options(synchronize_session=False)
    )


async def reassign_records(
    session: AsyncSession, org_id: uuid.UUID, from_id: uuid.UUID, to_id: uuid.UUID
) -> dict[str, int]:
    """Every live record of the org assigned to `from_id`, of every entity, assigned to
    `to_id` instead (checked to be an active member, 400 naming `to`), in the request's
    transaction; how many moved, by entity (its URL's name). Set-based: one UPDATE per
    entity, kept to the org by its org_id (the assignee's link is on (org_id, id))."""
    if to_id == from_id:
        raise ApiError(400, {"to": "Must be another member than the one whose records move."})
    if await session.scalar(ACTIVE_MEMBER, {"org_id": org_id, "profile_id": to_id}) is None:
        raise ApiError(400, {"to": "Not an active member of this org."})
    moved: dict[str, int] = {}
    now = utcnow()
    for spec in all_registered():
        table = spec.table
        result = await session.execute(
            update(table)
            .where(
                table.c.org_id == org_id,
                table.c.assigned_to_id == from_id,
                table.c.deleted_at.is_(None),
            )
            .values(assigned_to_id=to_id, updated_at=now)
        )
        moved[spec.name] = result.rowcount  # type: ignore[attr-defined]
    return moved
