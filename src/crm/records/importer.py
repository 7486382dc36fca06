"""CSV upload of records (CONTRACT §5). A file is read as a stream and written in batches of
rows with set-based statements, in the caller's one transaction: per batch one lookup of the
ids and natural keys named, one per link field, one COPY (PostgreSQL) or executemany INSERT
(SQLite) of the new records and one executemany UPDATE per set of changed columns; on
PostgreSQL a batch is written while the next one is validated (see pipeline). Each row goes
through the entity's own validation (service.validated, then validate_values for its custom
fields), so a cell is refused with the message the JSON API gives for that value."""

import asyncio
import hashlib
import io
import logging
import re
import types
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import IO, Annotated, Any, Literal, Union, cast, get_args, get_origin

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    String,
    Table,
    any_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.sqltypes import NullType

from crm.auth.tokens import Principal
from crm.customfields.models import FieldType
from crm.customfields.service import (
    NUMBER_PATTERN,
    Definition,
    definitions,
    parse_number,
    validate_values,
)
from crm.db import folded, new_uuid, utcnow
from crm.errors import DETAIL, ApiError
from crm.ids import CANONICAL_UUID
from crm.orgs.models import Profile, User
from crm.records.csvfile import read_records, typed_back
from crm.records.models import Upload, unique_index_name
from crm.records.read import alive
from crm.records.scope import can_see
from crm.records.service import check_exclusive, duplicate, validated, write_lists
from crm.records.spec import SERVER_DERIVED, EntitySpec, ManyLink, all_registered
from crm.validation import NUL_REASON, exact_number

logger = logging.getLogger(__name__)

BATCH_ROWS = 2000
ATTEMPTS = 5  # imports of a file losing races for its keys before it is a 409 (import_rows)
UNIQUE_VIOLATION, DEADLOCK = "23505", "40P01"  # PostgreSQL's SQLSTATEs
YIELD_ROWS = 200  # rows validated between two turns of the event loop
CF_PREFIX = "cf_"
LIST_SEPARATOR = ";"
CHECKBOX = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
KEY = ("org_id", "id")  # a record's primary key
UNSET = object()
INVISIBLE = "A record with this {key} exists, but it is neither yours nor assigned to you."
# What an export writes beside the columns an upload writes (crm.records.exporter): the `id`
# an upload matches a record by, before any natural key, and the read-only fields, which an
# upload takes but ignores, so that an export uploads back as it is.
ID_COLUMN = "id"
READ_ONLY_COLUMNS = ("number", "created_at", "updated_at", "created_by")
MADE_BEFORE = "An earlier upload of this file created a record from this row: not created again."


def normalise(name: str) -> str:
    """A header cell as a field name: any case, spaces as underscores."""
    return re.sub(r"\s+", "_", name.strip().lower())


# --- What a cell holds -----------------------------------------------------------------


def base_type(annotation: Any) -> Any:
    """The type a field holds, without Optional and Annotated."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return base_type(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        kinds = [arg for arg in get_args(annotation) if arg is not type(None)]
        return base_type(kinds[0])
    if origin is Literal:
        return str
    return origin or annotation


@cache
def field_types(spec: EntitySpec) -> dict[str, Any]:
    return {name: base_type(info.annotation) for name, info in spec.schema.model_fields.items()}


def split_list(cell: str) -> list[str]:
    return [item for item in map(str.strip, cell.split(LIST_SEPARATOR)) if item]


def decimal_cell(cell: str) -> Any:
    return exact_number(cell) if NUMBER_PATTERN.fullmatch(cell) else cell


def number_cell(cell: str) -> Any:
    number = parse_number(cell)
    return cell if number is None else number


def checkbox_cell(cell: str) -> Any:
    return CHECKBOX.get(cell.lower(), cell)


Convert = Callable[[str], Any] | None  # None: the cell as written


def cell_converter(kind: Any) -> Convert:
    """How a cell becomes the JSON value it stands for; one that is no such value is passed
    on as written, for the schema to refuse with its own message."""
    if kind is list:
        return split_list
    if kind is Decimal:
        return decimal_cell
    if kind in (int, float):
        return number_cell
    return None


def custom_converter(kind: FieldType) -> Convert:
    if kind is FieldType.number:
        return number_cell
    if kind is FieldType.checkbox:
        return checkbox_cell
    return None


# --- The header ------------------------------------------------------------------------


def check_header(spec: EntitySpec, header: list[str], fields: Sequence[Definition]) -> list[str]:
    """The header's field names; any problem with them is a 400 for the whole file."""
    names = [normalise(cell) for cell in header]
    keys = {definition.key for definition in fields}
    errors: dict[str, str] = {}
    seen: set[str] = set()
    for position, name in enumerate(names, 1):
        label = name or f"column {position}"
        if name in seen:
            errors[label] = "This column is named twice."
        elif name == ID_COLUMN or name in READ_ONLY_COLUMNS:
            pass
        elif name.startswith(CF_PREFIX):
            if name.removeprefix(CF_PREFIX) not in keys:
                errors[label] = "Unknown custom field."
        elif name in SERVER_DERIVED or name in spec.read_only:
            errors[label] = "This field is set by the server and cannot be written."
        elif name not in spec.writable or name == "custom_fields":
            errors[label] = "Unknown column."
        seen.add(name)
    required = [name for name, info in spec.schema.model_fields.items() if info.is_required()]
    required += [CF_PREFIX + definition.key for definition in fields if definition.required]
    for name in required:
        if name not in seen:
            errors[name] = "This column is required."
    if errors:
        raise ApiError(400, errors)
    return names


# --- Reading the file ------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    number: int  # the spreadsheet row: the header is 1
    cells: dict[str, str]  # the non-empty cells, stripped, by field name
    error: dict[str, str] | None = None
    record_id: str | None = None  # the `id` cell


def read_rows(records: Iterator[list[str]], names: list[str]) -> Iterator[Row]:
    """Each data row with its spreadsheet number. A row of empty cells (a blank line) counts
    as a row but is no record. A cell an export marked as text (csvfile.typed_back) is read
    as the text; the read-only columns are left out."""
    width = len(names)
    ignored = [name for name in names if name in READ_ONLY_COLUMNS]
    for number, record in enumerate(records, 2):
        if len(record) > width:
            reason = f"This row has {len(record)} cells; the header names {width} columns."
            yield Row(number, {}, {DETAIL: reason})
            continue
        stripped = zip(names, map(str.strip, record), strict=False)
        cells = {name: cell for name, cell in stripped if cell}
        for name in ignored:
            cells.pop(name, None)
        text = "".join(record)
        if "'" in text:
            cells = {name: typed_back(cell) for name, cell in cells.items()}
        if "\x00" in text:
            # Refused before anything else, as the JSON API refuses such a body.
            nul = {name: NUL_REASON for name, cell in cells.items() if "\x00" in cell}
            yield Row(number, {}, nul)
        elif cells:
            record_id = cells.pop(ID_COLUMN, None)
            yield Row(number, cells, record_id=record_id)


def batches(rows: Iterable[Row]) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


# --- References by id or by natural key ------------------------------------------------


def natural_key_of(target: type[Any]) -> str | None:
    """The field other records may name a target record by, besides its id."""
    spec = next((spec for spec in all_registered() if spec.model is target), None)
    return spec.natural_key if spec is not None else None


def among(session: AsyncSession, expression: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`expression IN values`; on PostgreSQL `= ANY(<one array>)`, one statement whatever the
    number of values (see import_csv for how it is planned)."""
    values = list(values)
    if session.get_bind().dialect.name != "postgresql":
        return cast(ColumnElement[bool], expression.in_(values))
    kind = expression.type if not isinstance(expression.type, NullType) else String()
    return cast(ColumnElement[bool], expression == any_(bindparam(None, values, type_=ARRAY(kind))))


def split_refs(cells: Iterable[str]) -> tuple[set[uuid.UUID], set[str]]:
    """Cells naming records: those that are ids, and the others (lowered)."""
    ids: set[uuid.UUID] = set()
    keys: set[str] = set()
    for cell in cells:
        if CANONICAL_UUID.fullmatch(cell):
            ids.add(uuid.UUID(cell))
        else:
            keys.add(cell.lower())
    return ids, keys


async def resolve(
    session: AsyncSession,
    org_id: uuid.UUID,
    target: type[Any],
    key: str | None,
    cells: Iterable[str],
    *extra: ColumnElement[bool],
) -> dict[str, uuid.UUID]:
    """The live records of the org the cells name, by lowered cell, in one statement; the
    rows are share-locked so that they cannot be deleted before the upload commits."""
    ids, keys = split_refs(cells)
    if not ids and not keys:
        return {}
    by_key = getattr(target, key) if key else None
    matches = [among(session, target.id, ids)] if ids else []
    if by_key is not None and keys:
        matches.append(among(session, folded(by_key), keys))
    if not matches:
        return {}
    columns = [target.id, folded(by_key)] if by_key is not None else [target.id]
    statement = select(*columns).where(
        target.org_id == org_id, or_(*matches), *alive(target), *extra
    )
    found: dict[str, uuid.UUID] = {}
    for row in await session.execute(statement.with_for_update(read=True)):
        found[str(row[0])] = row[0]
        if by_key is not None and row[1] is not None:
            found.setdefault(row[1], row[0])
    return found


async def resolve_members(
    session: AsyncSession, org_id: uuid.UUID, cells: Iterable[str]
) -> dict[str, uuid.UUID]:
    """Active members of the org named by profile id or email, in one statement."""
    ids, emails = split_refs(cells)
    if not ids and not emails:
        return {}
    matches = []
    if ids:
        matches.append(among(session, Profile.id, ids))
    if emails:
        matches.append(among(session, folded(User.email), emails))
    rows = await session.execute(
        select(Profile.id, folded(User.email))
        .join(User, User.id == Profile.user_id)
        .where(Profile.org_id == org_id, Profile.is_active.is_(True), or_(*matches))
    )
    found: dict[str, uuid.UUID] = {}
    for profile_id, email in rows:
        found[str(profile_id)] = profile_id
        found[email] = profile_id
    return found


# --- Rows to records -------------------------------------------------------------------


@dataclass(slots=True)
class Target:
    """A record a row writes: new (`values` holds every column) or existing (`values`
    holds the columns changed so far)."""

    id: uuid.UUID
    new: bool
    created_by_id: uuid.UUID | None
    assigned_to_id: uuid.UUID | None
    custom_fields: dict[str, Any]
    links: dict[str, Any]  # link columns as they stand
    values: dict[str, Any]
    lists: dict[ManyLink, list[uuid.UUID]] = field(default_factory=dict)
    ctid: Any = None  # where an existing record's row is, on PostgreSQL (see Importer.write)
    held: dict[str, Any] = field(default_factory=dict)  # its server-set fields (spec.server_set)
    current: dict[str, Any] = field(default_factory=dict)  # an existing record's columns

    def carried(self) -> "Target":
        """The record as a later batch finds it, once this batch's write of it is done: a
        copy, as that write may still be reading this one. Its row's ctid is read again
        when the later batch writes (an UPDATE moves the row, a new one had none)."""
        return Target(
            self.id,
            False,
            self.created_by_id,
            self.assigned_to_id,
            self.custom_fields,
            dict(self.links),
            {},
            held=self.held,
            current={**self.current, **self.values},
        )


@dataclass
class Report:
    """The answer, as JSON values (ids as strings): it is also what the upload stores."""

    created: list[dict[str, Any]] = field(default_factory=list)
    updated: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def withdraw(self, numbers: set[int]) -> None:
        """The entries of these rows taken out, for the rows to be answered again."""
        for entries in (self.created, self.updated, self.errors, self.skipped):
            entries[:] = [entry for entry in entries if entry["row"] not in numbers]

    def in_row_order(self) -> None:
        for entries in (self.created, self.updated, self.errors, self.skipped):
            entries.sort(key=lambda entry: entry["row"])

    def body(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "errors": self.errors,
            "skipped": self.skipped,
        }


# The records a batch names: by lowered natural key (text) and by id (a UUID, which never
# equals a text), the same Target under both.
Known = dict[str | uuid.UUID, "Target"]
# A batch's lookups: the records its ids and natural keys name, what its other cells name,
# and the live records earlier uploads of the file created from its rows without a key (by
# row).
Lookups = tuple[Known, dict[str, dict[str, uuid.UUID]], dict[int, Any]]


def same_value(stored: Any, value: Any) -> bool:
    """Whether a column holds `value` already. SQLite reads a date-time back without its
    time zone, which is UTC."""
    if isinstance(stored, datetime) and stored.tzinfo is None and isinstance(value, datetime):
        stored = stored.replace(tzinfo=UTC)
    return bool(stored == value)


def field_name(name: str) -> str:
    """An error's field as the file names it: custom fields as their cf_<key> column."""
    prefix = "custom_fields."
    return CF_PREFIX + name.removeprefix(prefix) if name.startswith(prefix) else name


class Importer:
    def __init__(
        self,
        session: AsyncSession,
        spec: EntitySpec,
        principal: Principal,
        fields: Sequence[Definition],
        made_before: dict[int, uuid.UUID],
    ) -> None:
        self.session = session
        self.spec = spec
        self.principal = principal
        self.fields = fields
        # The records earlier uploads of this file created, by row.
        self.made_before = made_before
        self.report = Report()
        self.id_links = {link.field: link for link in spec.links if link.field in spec.writable}
        self.many = {many.field: many for many in spec.many}
        self.postgresql = session.get_bind().dialect.name == "postgresql"
        # New records inserted unless their key is taken meanwhile, those rows then
        # validated again (see import_rows and write); the batch validated last.
        self.careful = False
        self.validated: list[Row] = []
        # The records the batch last validated wrote, by natural key and by id (see existing).
        self.in_flight: Known = {}
        # How each column's cells become JSON values, looked up once a cell: the fields
        # written as they are typed, and the custom fields (by key).
        self.plain = {
            name: cell_converter(kind)
            for name, kind in field_types(spec).items()
            if name not in self.id_links and name not in self.many and name != "assigned_to"
        }
        self.custom = {
            CF_PREFIX + item.key: (item.key, custom_converter(FieldType(item.type)))
            for item in fields
        }

    # Lookups of a batch: one statement each.

    async def existing(self, batch: list[Row]) -> Known:
        """The live records of the org that the batch's `id` cells and natural keys name, in
        one statement. Those the batch before wrote are taken from memory: that batch may
        still be being written (see pipeline)."""
        spec, model = self.spec, self.spec.model
        key = spec.natural_key
        found: Known = {}
        carried: dict[uuid.UUID, Target] = {}

        def from_memory(record_id: uuid.UUID) -> Target | None:
            before = self.in_flight.get(record_id)
            if before is None:
                return None
            if record_id not in carried:  # one Target per record, however it is named
                carried[record_id] = before.carried()
            return carried[record_id]

        keys: set[str] = set()
        ids: set[uuid.UUID] = set()
        for line in batch:
            if line.record_id is not None and CANONICAL_UUID.fullmatch(line.record_id):
                record_id = uuid.UUID(line.record_id)
                if (target := from_memory(record_id)) is not None:
                    found[record_id] = target
                else:
                    ids.add(record_id)
            natural = line.cells.get(key) if key is not None else None
            if natural is None:
                continue
            natural = natural.lower()
            before = self.in_flight.get(natural)
            if before is not None and (target := from_memory(before.id)) is not None:
                found[natural] = target
            else:
                keys.add(natural)
        if not keys and not ids:
            return found
        by_key = folded(getattr(model, key)) if key is not None else literal_column("NULL")
        matches = [among(self.session, model.id, ids)] if ids else []
        if keys:
            matches.append(among(self.session, by_key, keys))
        table = spec.table
        statement = select(
            *table.c,
            by_key.label("natural_key"),
            literal_column("ctid" if self.postgresql else "NULL").label("row_ctid"),
        ).where(
            table.c.org_id == self.principal.org_id,
            table.c.deleted_at.is_(None),
            or_(*matches),
        )
        for row in await self.session.execute(statement.with_for_update(of=table)):
            record = row._mapping
            current = {column.name: record[column] for column in table.c}
            target = from_memory(row.id) or Target(
                id=row.id,
                new=False,
                created_by_id=row.created_by_id,
                assigned_to_id=row.assigned_to_id,
                custom_fields=dict(row.custom_fields or {}),
                links={link.column: current[link.column] for link in spec.links},
                values={},
                ctid=row.row_ctid,
                held={name: current[name] for name in spec.server_set},
                current=current,
            )
            found[row.id] = target
            if row.natural_key is not None:
                found.setdefault(row.natural_key, target)
        return found

    async def references(self, batch: list[Row]) -> dict[str, dict[str, uuid.UUID]]:
        """What the batch's link, list and assignee cells name, by field and lowered cell."""
        org_id = self.principal.org_id
        found: dict[str, dict[str, uuid.UUID]] = {}
        for name, link in self.id_links.items():
            cells = [row.cells[name] for row in batch if name in row.cells]
            key = link.by if link.by != "id" else natural_key_of(link.target)
            found[name] = await resolve(self.session, org_id, link.target, key, cells)
        for name, many in self.many.items():
            cells = [
                item for row in batch if name in row.cells for item in split_list(row.cells[name])
            ]
            key = natural_key_of(many.target)
            found[name] = await resolve(self.session, org_id, many.target, key, cells)
        members = [row.cells["assigned_to"] for row in batch if "assigned_to" in row.cells]
        found["assigned_to"] = await resolve_members(self.session, org_id, members)
        return found

    def keyless(self, row: Row) -> bool:
        key = self.spec.natural_key
        return key is None or key not in row.cells

    async def made_earlier(self, batch: list[Row]) -> dict[int, Any]:
        """The live records that earlier uploads of this file created from the batch's rows
        without a natural key, by row: such a row is not created again."""
        made = {
            row.number: self.made_before[row.number]
            for row in batch
            if row.number in self.made_before and self.keyless(row)
        }
        if not made:
            return {}
        model = self.spec.model
        statement = select(model.id, model.created_by_id, model.assigned_to_id).where(
            model.org_id == self.principal.org_id,
            among(self.session, model.id, made.values()),
            *alive(model),
        )
        live = {record.id: record for record in await self.session.execute(statement)}
        return {number: live[record_id] for number, record_id in made.items() if record_id in live}

    # One row.

    def body_of(
        self, row: Row, refs: dict[str, dict[str, uuid.UUID]], errors: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The row as a JSON body (links by id) and its custom fields; cells naming no
        record go to `errors`, with the JSON API's message."""
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        plain, custom_columns = self.plain, self.custom
        for name, cell in row.cells.items():
            if name in plain:
                convert = plain[name]
                body[name] = cell if convert is None else convert(cell)
            elif name in custom_columns:
                key, convert = custom_columns[name]
                custom[key] = cell if convert is None else convert(cell)
            elif name in self.id_links:
                link = self.id_links[name]
                match = refs[name].get(cell.lower())
                if match is None:
                    errors[name] = f"No {name} '{cell}' in this org."
                else:
                    body[name] = cell if link.by != "id" else match
            elif name in self.many:
                items = split_list(cell)
                missing = [item for item in items if item.lower() not in refs[name]]
                if missing:
                    errors[name] = f"No such record in this org: {', '.join(missing)}."
                else:
                    body[name] = [refs[name][item.lower()] for item in items]
            else:  # assigned_to
                member = refs[name].get(cell.lower())
                if member is None:
                    errors[name] = "Not an active member of this org."
                else:
                    body[name] = member
        return body, custom

    def columns_of(
        self, data: dict[str, Any], refs: dict[str, dict[str, uuid.UUID]]
    ) -> tuple[dict[str, Any], dict[ManyLink, list[uuid.UUID]]]:
        """The link, assignee and list fields taken out of `data`: as link columns, and as
        the lists to write (repeats dropped)."""
        columns: dict[str, Any] = {}
        for name, link in self.id_links.items():
            if name in data:
                value = data.pop(name)
                if value is not None and link.by != "id":
                    value = refs[name][str(value).lower()]
                columns[link.column] = value
        if "assigned_to" in data:
            columns["assigned_to_id"] = data.pop("assigned_to")
        lists = {
            many: list(dict.fromkeys(data.pop(name)))
            for name, many in self.many.items()
            if name in data
        }
        return columns, lists

    def apply(
        self,
        row: Row,
        target: Target | None,
        refs: dict[str, dict[str, uuid.UUID]],
    ) -> Target:
        """The row written onto `target` (None: a new record); ApiError when it may not be."""
        errors: dict[str, str] = {}
        body, custom = self.body_of(row, refs, errors)
        try:
            held = target.held if target is not None else None
            data = validated(self.spec, body, partial=target is not None, current=held)
        except ApiError as exc:
            errors = {**exc.errors, **errors}
            data = {}
        if custom or target is None:
            try:
                current = target.custom_fields if target is not None else {}
                custom = validate_values(self.fields, current, custom, replace=target is None)
            except ApiError as exc:
                errors.update(exc.errors)
        if not errors and self.spec.exclusive:
            state = types.SimpleNamespace(**target.links) if target is not None else None
            try:
                check_exclusive(self.spec, data, state)
            except ApiError as exc:
                errors.update(exc.errors)
        if errors:
            raise ApiError(400, {field_name(name): reason for name, reason in errors.items()})

        # The validated fields are the record's values: its own fields and tags as they
        # are, links and lists taken out.
        columns, lists = self.columns_of(data, refs)
        data.update(columns)
        now = utcnow()
        if target is None:
            record_id, profile_id = new_uuid(), self.principal.profile_id
            data.update(
                org_id=self.principal.org_id,
                id=record_id,
                created_by_id=profile_id,
                custom_fields=custom,
                created_at=now,
                updated_at=now,
            )
            assigned_to_id = data.get("assigned_to_id")
            return Target(record_id, True, profile_id, assigned_to_id, custom, columns, data, lists)
        if "tags" in data:
            data["tags"] = data["tags"] or []
        if custom:
            data["custom_fields"] = target.custom_fields = custom
        if not target.new:
            # What the row changes of the record as it stands: a row that changes nothing
            # leaves the record as it was, its updated_at too (an export uploads back so).
            stands = target.current
            data = {
                name: value
                for name, value in data.items()
                if not same_value(stands.get(name, UNSET), value)
            }
            stands.update(data)
            if not data and not lists:
                return target
        data["updated_at"] = now
        if not target.new:
            data.setdefault("org_id", self.principal.org_id)
            data.setdefault("id", target.id)
        target.values.update(data)
        target.links.update(columns)
        target.lists.update(lists)
        if "assigned_to_id" in columns:
            target.assigned_to_id = columns["assigned_to_id"]
        return target

    # A batch.

    async def lookups(self, batch: list[Row]) -> Lookups:
        """What the batch's rows name in the database; the database's part of a batch
        before its rows are validated."""
        existing, references = await self.existing(batch), await self.references(batch)
        return existing, references, await self.made_earlier(batch)

    async def validate(self, batch: list[Row], lookups: Lookups) -> list[Target]:
        """The batch's rows onto their records, each row's outcome into the report: the
        Python part of a batch, handing the event loop back every YIELD_ROWS rows so that
        the previous batch's write, meanwhile running, can send its next statement."""
        key = self.spec.natural_key
        known, refs, made = lookups
        self.validated = batch
        written: dict[uuid.UUID, Target] = {}
        in_flight: Known = {}
        report = self.report
        for position, row in enumerate(batch, 1):
            if position % YIELD_ROWS == 0:
                await asyncio.sleep(0)
            if row.error is not None:
                report.errors.append({"row": row.number, "errors": row.error})
                continue
            if row.number in self.made_before and self.keyless(row):
                # Its id shown only to those who see the record (gone: to nobody).
                record = made.get(row.number)
                shown = record is not None and can_see(record, self.principal)
                record_id = str(record.id) if record is not None and shown else None
                report.skipped.append({"row": row.number, "id": record_id, "reason": MADE_BEFORE})
                continue
            natural = row.cells[key].lower() if key and key in row.cells else None
            try:
                target = self.matched(row, natural, known)
                result = self.apply(row, target, refs)
            except ApiError as exc:
                report.errors.append({"row": row.number, "errors": exc.errors})
                continue
            written[result.id] = in_flight[result.id] = result
            if natural is not None:
                in_flight[natural] = known[natural] = result
            if target is None:
                report.created.append({"row": row.number, "id": str(result.id)})
            else:
                report.updated.append({"row": row.number, "id": str(result.id)})
        self.in_flight = in_flight
        return list(written.values())

    def matched(self, row: Row, natural: str | None, known: Known) -> Target | None:
        """The record a row updates (None: it creates one); ApiError when it may not. An
        `id` cell names a live record of the org before any natural key does, and the row's
        key cell may then not be another record's."""
        key = self.spec.natural_key
        holder = known.get(natural) if natural is not None else None
        if row.record_id is None:
            if holder is not None and not can_see(holder, self.principal):
                raise ApiError(400, {str(key): INVISIBLE.format(key=key)})
            return holder
        record_id = row.record_id
        target = known.get(uuid.UUID(record_id)) if CANONICAL_UUID.fullmatch(record_id) else None
        if target is None:
            raise ApiError(400, {ID_COLUMN: f"No {self.spec.singular} with this id in this org."})
        if not can_see(target, self.principal):
            raise ApiError(400, {ID_COLUMN: INVISIBLE.format(key=ID_COLUMN)})
        if key is not None and holder is not None and holder is not target:
            raise duplicate(self.spec, key)
        return target

    async def write(self, targets: list[Target]) -> None:
        """The batch's records: one COPY (PostgreSQL) or executemany INSERT (SQLite), one
        executemany UPDATE per set of changed columns, and their lists."""
        model = self.spec.model
        created = [target.values for target in targets if target.new]
        again: list[Row] = []
        if created and self.careful:
            table = model.__table__  # type: ignore[attr-defined]
            inserted = await insert_untaken(self.session, table, created)
            taken = {values["id"] for values in created} - inserted
            if taken:
                targets = [target for target in targets if target.id not in taken]
                again = self.taken_rows(taken)
        elif created:
            await insert_rows(self.session, model.__table__, created)  # type: ignore[attr-defined]
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for target in targets:
            if not target.new and target.values:  # none: its rows changed nothing
                groups.setdefault(frozenset(target.values), []).append(target.values)
        if self.postgresql and groups:
            await self.read_ctids([target for target in targets if not target.new])
        for group in groups.values():
            if self.postgresql:
                # By the row's ctid (read under the row lock this batch holds, so current),
                # not its primary key: the org's rows are new to the planner's statistics,
                # which then rate an index on org_id alone as good as the primary key and may
                # pick it, scanning all the org's rows for each one updated.
                table = model.__table__  # type: ignore[attr-defined]
                by_row = literal_column("ctid") == bindparam("row_ctid")
                statement = update(table).where(by_row, table.c.id == bindparam("row_id"))
                ctids = {target.id: target.ctid for target in targets if not target.new}
                rows = [
                    {
                        **{name: value for name, value in values.items() if name not in KEY},
                        "row_ctid": ctids[values["id"]],
                        "row_id": values["id"],
                    }
                    for values in group
                ]
                await self.session.execute(statement, rows)
            else:
                await update_rows_sqlite(self.session, model.__table__, group)  # type: ignore[attr-defined]
        for many in self.many.values():
            listed = {target.id: target.lists[many] for target in targets if many in target.lists}
            await write_lists(self.session, self.principal.org_id, many, listed)
        if again:
            # The rows of the keys taken meanwhile, now committed: validated again onto
            # those records (looked up, not taken from this batch), and written.
            self.in_flight = {}
            await self.write(await self.validate(again, await self.lookups(again)))
            self.report.in_row_order()

    def taken_rows(self, taken: set[uuid.UUID]) -> list[Row]:
        """The rows of the batch being written (the one validated last: in careful mode
        batches take turns) that wrote the new records `taken`, their answers withdrawn."""
        keys = {
            natural
            for natural, target in self.in_flight.items()
            if isinstance(natural, str) and target.id in taken
        }
        key = self.spec.natural_key
        rows = [
            row
            for row in self.validated
            if key is not None and row.cells.get(key, "").lower() in keys
        ]
        self.report.withdraw({row.number for row in rows})
        return rows

    async def read_ctids(self, targets: list[Target]) -> None:
        """The current ctid of records an earlier batch of this upload wrote (carried)."""
        missing = {target.id: target for target in targets if target.ctid is None}
        if not missing:
            return
        model = self.spec.model
        statement = select(model.id, literal_column("ctid", NullType())).where(
            model.org_id == self.principal.org_id, among(self.session, model.id, missing)
        )
        for record_id, ctid in await self.session.execute(statement):
            missing[record_id].ctid = ctid


def bound_columns(
    dialect: Dialect, table: Table, rows: list[dict[str, Any]], keys: list[str]
) -> list[list[Any]]:
    """The rows' values as the driver takes them, a column at a time through the column
    type's own bind processor; a column holding one value in every row (the org, the
    importing member) is converted once."""
    columns: list[list[Any]] = []
    for key in keys:
        values = [row[key] for row in rows]
        process = table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            first = values[0]
            if all(value is first for value in values):
                values = [process(first)] * len(values)
            else:
                values = list(map(process, values))
        columns.append(values)
    return columns


async def insert_rows(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """Complete rows (each with the same keys) in one statement: COPY on PostgreSQL, an
    executemany INSERT on SQLite. Neither the ORM nor a Core INSERT: their bookkeeping per
    row and per value costs more than the database's own work. (One multi-row INSERT on
    SQLite would need a statement journal, one row each does not.)"""
    connection = await session.connection()
    dialect = connection.dialect
    keys = list(rows[0])
    records = list(zip(*bound_columns(dialect, table, rows, keys), strict=True))
    if dialect.name == "postgresql":
        raw = await connection.get_raw_connection()
        copy = raw.driver_connection.copy_records_to_table  # type: ignore[union-attr]
        await copy(table.name, records=records, columns=keys)
        return
    quote = dialect.identifier_preparer.quote
    names, values = ", ".join(map(quote, keys)), ", ".join("?" * len(keys))
    statement = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({values})"
    await connection.exec_driver_sql(statement, records)


async def insert_untaken(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]]
) -> set[uuid.UUID]:
    """The ids of the rows inserted, on PostgreSQL, by an INSERT that skips a row whose
    natural key another transaction has written meanwhile (waiting for it to commit)."""
    statement = pg_insert(table).on_conflict_do_nothing().returning(table.c.id)
    return set((await session.execute(statement, rows)).scalars())


async def update_rows_sqlite(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]]
) -> None:
    """Existing rows (each with the same keys, the primary key among them) changed by one
    executemany UPDATE, its values converted as insert_rows converts them rather than by
    the ORM's bulk UPDATE."""
    connection = await session.connection()
    dialect = connection.dialect
    changed = [key for key in rows[0] if key not in KEY]
    records = list(zip(*bound_columns(dialect, table, rows, [*changed, *KEY]), strict=True))
    quote = dialect.identifier_preparer.quote
    settings = ", ".join(f"{quote(key)} = ?" for key in changed)
    statement = f"UPDATE {quote(table.name)} SET {settings} WHERE org_id = ? AND id = ?"
    await connection.exec_driver_sql(statement, records)


# SQLite's page cache while an upload runs, given back when it ends: room for the pages of
# the new rows' indexes (each row goes into every one, most at random places; with the default
# of 2 MiB the transaction's pages are written out to the WAL and read back again and again).
SQLITE_UPLOAD = {"cache_size": f"-{64 * 1024}"}


@asynccontextmanager
async def sqlite_settings(session: AsyncSession) -> AsyncIterator[None]:
    before = {name: await session.scalar(text(f"PRAGMA {name}")) for name in SQLITE_UPLOAD}
    for name, value in SQLITE_UPLOAD.items():
        await session.execute(text(f"PRAGMA {name} = {value}"))
    try:
        yield
    except BaseException:
        with suppress(SQLAlchemyError):  # the failure is the one to report
            for name, value in before.items():
                await session.execute(text(f"PRAGMA {name} = {int(value)}"))
        raise
    for name, value in before.items():
        await session.execute(text(f"PRAGMA {name} = {int(value)}"))


async def import_csv(
    session: AsyncSession,
    spec: EntitySpec,
    principal: Principal,
    file: IO[bytes],
    *,
    dry_run: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """Import a CSV file of records into the caller's org, in the session's transaction
    (rolled back for a dry run). `progress`, when given, is called with the number of rows
    of each batch written."""
    if session.get_bind().dialect.name == "postgresql":
        return await import_file(session, spec, principal, file, dry_run, progress)
    async with sqlite_settings(session):
        return await import_file(session, spec, principal, file, dry_run, progress)


async def import_file(
    session: AsyncSession,
    spec: EntitySpec,
    principal: Principal,
    file: IO[bytes],
    dry_run: bool,
    progress: Any,
) -> dict[str, Any]:
    digest = file_digest(file)
    postgresql = session.get_bind().dialect.name == "postgresql"
    if postgresql and not dry_run:
        # Held until this transaction ends: the same file uploaded again meanwhile is a 409
        # at once, rather than a wait on the unique index below until this import ends.
        # (SQLite's writers take turns: there the second upload waits for the first and
        # then imports the file again.)
        name = f"upload:{principal.org_id}:{spec.name}:{digest}".encode()
        key = int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)
        if not await session.scalar(select(func.pg_try_advisory_xact_lock(key))):
            raise being_imported()
    upload = await session.scalar(
        select(Upload).where(
            Upload.org_id == principal.org_id, Upload.entity == spec.name, Upload.digest == digest
        )
    )
    made_before = {} if upload is None else created_rows(upload.report)
    if upload is None and not dry_run:
        # Recorded first: the unique index refuses a concurrent import of the same file.
        upload = Upload(
            org_id=principal.org_id,
            entity=spec.name,
            digest=digest,
            created_by_id=principal.profile_id,
            report={},
        )
        session.add(upload)
        try:
            await session.flush()
        except IntegrityError:
            raise being_imported() from None
    if postgresql:
        # Each lookup planned for its own values: a generic plan of `= ANY($n)` compares every
        # row of a table without statistics yet (one filling up in this very transaction)
        # with every value in turn, instead of hashing them.
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    importer = await import_rows(session, spec, principal, file, made_before, progress)
    report = importer.report.body()
    if dry_run or upload is None:
        await session.rollback()
    else:
        # The rows created so far by any upload of the file, for the next one to skip.
        made = created_entries(upload.report.get("created", [])) | created_entries(
            report["created"]
        )
        upload.report = {**report, "created": sorted(made.values(), key=lambda e: e["row"])}
        await session.flush()
    return report


async def import_rows(
    session: AsyncSession,
    spec: EntitySpec,
    principal: Principal,
    file: IO[bytes],
    made_before: dict[int, uuid.UUID],
    progress: Any,
) -> Importer:
    """The file's rows imported. On PostgreSQL, another transaction writing one of the
    file's natural keys between this import's lookup of it and its write (a concurrent
    upload or create: the unique index makes this import wait for it, then refuses the
    key), or a deadlock with such a transaction, undoes the import, which then starts
    again in careful mode: batches take turns and insert by an INSERT that skips the keys
    taken meanwhile (insert_untaken), whose rows are then validated again onto the
    records that hold them (Importer.write). A file losing ATTEMPTS times is a 409."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    for attempt in range(ATTEMPTS if postgresql else 1):
        savepoint = await session.begin_nested() if postgresql else None
        stream = io.TextIOWrapper(file, encoding="utf-8-sig", newline="")
        try:
            records = read_records(stream)
            header = next(records, None)
            if header is None or not any(cell.strip() for cell in header):
                raise ApiError(400, {"file": "The file has no header row."})
            fields = await definitions(session, principal, spec.singular)
            names = check_header(spec, header, fields)
            importer = Importer(session, spec, principal, fields, made_before)
            importer.careful = attempt > 0
            await pipeline(importer, batches(read_rows(records, names)), progress)
        except Exception as exc:
            if savepoint is None or not lost_race(spec, exc):
                raise
            await savepoint.rollback()
            logger.info("upload into %s raced another write of its keys; again", spec.name)
            continue
        finally:
            stream.detach()
            file.seek(0)
        if savepoint is not None:
            await savepoint.commit()
        return importer
    raise ApiError(
        409,
        {
            "file": "Records with this file's keys were being written meanwhile; upload the"
            " file again."
        },
    )


def lost_race(spec: EntitySpec, error: BaseException) -> bool:
    """Whether `error` (PostgreSQL's, raw from COPY or wrapped by SQLAlchemy) is this
    transaction losing a race for a natural key: the key's unique index refusing it, or a
    deadlock with the transaction that wrote it."""
    index = unique_index_name(spec.name, spec.natural_key) if spec.natural_key else None
    causes = [error, getattr(error, "orig", None)]
    causes.append(getattr(causes[1], "__cause__", None))
    for cause in causes:
        sqlstate = getattr(cause, "sqlstate", None)
        if sqlstate == DEADLOCK:
            return True
        if sqlstate == UNIQUE_VIOLATION and index is not None:
            named = getattr(cause, "constraint_name", None)
            if named == index or (named is None and index in str(cause)):
                return True
    return False


def created_entries(entries: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {entry["row"]: entry for entry in entries}


def created_rows(report: dict[str, Any]) -> dict[int, uuid.UUID]:
    """What the uploads of a file recorded in `report` created: record ids by row."""
    return {entry["row"]: uuid.UUID(entry["id"]) for entry in report.get("created", [])}


async def pipeline(importer: Importer, rows: Iterator[list[Row]], progress: Any) -> None:
    """Each batch: its lookups, then its rows validated while the batch before is written.
    On PostgreSQL that write (COPY, UPDATE, ANALYZE) runs in the server's process, so that
    the Python of one batch and the database's work of the other overlap. The session runs
    one statement at a time: a batch's lookups come before the previous batch's write
    starts, and see its records from memory (Importer.in_flight). On SQLite the batches take
    turns: the trigger filling the natural key's folded copy calls the app's Python lower()
    for each row written, so aiosqlite's thread would wait for the GIL a row while this one
    validates. So do the batches of an entity linking to its own kind, whose lookups need
    the previous batch written."""
    spec, session = importer.spec, importer.session
    model = spec.model
    linked = [link.target for link in spec.links] + [many.target for many in spec.many]
    overlap = importer.postgresql and not importer.careful and model not in linked
    table = model.__tablename__  # type: ignore[attr-defined]
    done, analyzed = 0, 0

    async def write(targets: list[Target], count: int) -> None:
        nonlocal done, analyzed
        await importer.write(targets)
        done += count
        if importer.postgresql and done >= max(BATCH_ROWS, 4 * analyzed):
            # The planner's statistics of the table, counting this transaction's rows
            # too (ANALYZE does): without them it takes the org's rows for a handful and
            # looks up each batch's keys through any index on org_id, scanning them all.
            # From a full batch on, again as they grow fourfold; skipped while another
            # session analyzes the table.
            await session.execute(text(f"ANALYZE (SKIP_LOCKED) {table}"))
            analyzed = done
        logger.debug("upload into %s: %d rows written, not committed yet", spec.name, done)
        if progress is not None:
            progress(count)

    previous: tuple[list[Target], int] | None = None
    batch = next(rows, None)
    while batch is not None:
        if previous is not None and not overlap:
            await write(*previous)
            previous, importer.in_flight = None, {}
        lookups = await importer.lookups(batch)
        writing = asyncio.create_task(write(*previous)) if previous is not None else None
        try:
            targets = await importer.validate(batch, lookups)
            count, batch = len(batch), next(rows, None)
        finally:
            if writing is not None:
                # Also when reading or validating failed: the session is the write's until
                # it ends, and that failure is the one to report.
                await settled(writing)
        if writing is not None:
            writing.result()
        previous = targets, count
    if previous is not None:
        await write(*previous)


async def settled(writing: asyncio.Future[None]) -> None:
    """The write ended (its failure retrieved, not raised). If this wait is cancelled, the
    write is cancelled too and waited for: the session is the write's until it ends."""
    try:
        await asyncio.wait([writing])
    except asyncio.CancelledError:
        writing.cancel()
        await asyncio.wait([writing])
        raise
    finally:
        if writing.done() and not writing.cancelled():
            writing.exception()  # retrieved: a failed write then is no warning


def being_imported() -> ApiError:
    return ApiError(409, {"file": "This file is being imported right now."})


def file_digest(file: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()
