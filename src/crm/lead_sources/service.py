"""The lead sources service, shared by both dialects: listing, reading, creating,
renaming and deleting an org's sources, and looking them up by name for the leads of the
`/api/` dialect. It speaks in domain terms (its own exceptions, never a status code); the
dialects translate. Like every service it flushes and never commits."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm.db import Base, by_code_point, folded, next_numbers, refused_by, utcnow
from crm.lead_sources.models import DEFAULT_SOURCES, LeadSource
from crm.orgs.models import Profile, User
from crm.validation import NUL_REASON, contains_nul

NAME_MAX = 255
RESOURCE_TYPES = ("lead",)
SORT_FIELDS = ("id", "name", "updated_at", "created_at")
NAME_INDEX = "uq_lead_sources_org_id_name"
# Ids are BIGINT: a larger number cannot name a source (and would overflow the driver).
ID_MAX = 2**63 - 1


class SourceError(Exception):
    """Base of the service's errors."""


class SourceNotFound(SourceError):
    """No such source in the org."""


class InvalidSource(SourceError):
    """An attribute's value is refused; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class DuplicateName(InvalidSource):
    def __init__(self, name: str) -> None:
        super().__init__("name", f"A lead source named '{name}' already exists.")


@dataclass(frozen=True)
class Source:
    """A lead source as both dialects read it."""

    id: int
    name: str
    resource_type: str
    creator_profile_id: uuid.UUID
    creator_number: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SortKey:
    field: str  # one of SORT_FIELDS
    descending: bool = False


@dataclass(frozen=True)
class SourceQuery:
    """What a list asks for: a page, an order, and the filters (None: no filter)."""

    page: int = 1
    per_page: int = 25
    sort: tuple[SortKey, ...] = ()
    ids: tuple[int, ...] | None = None
    name: str | None = None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


@dataclass(frozen=True)
class SourcePage:
    items: list[Source]
    has_next: bool
    # The last page that has items (1 when none has); known only when it was needed, i.e.
    # for a page past the end.
    last_page: int | None = None


# --- reading ---------------------------------------------------------------------------


def _statement() -> Select[LeadSource, int]:
    """A source with its creator's user number: one statement, whatever the page size."""
    return (
        select(LeadSource, User.number)
        .outerjoin(
            Profile,
            (Profile.org_id == LeadSource.org_id) & (Profile.id == LeadSource.created_by_id),
        )
        .outerjoin(User, User.id == Profile.user_id)
    )


def _source(row: LeadSource, creator_number: int | None) -> Source:
    return Source(
        id=row.id,
        name=row.name,
        resource_type=row.resource_type,
        creator_profile_id=row.created_by_id,
        creator_number=creator_number,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _order_by(sort: Sequence[SortKey]) -> list[ColumnElement[Any]]:
    columns: dict[str, Any] = {
        "id": LeadSource.id,
        # Names are unique whatever their case, so their folded form orders them fully,
        # by code point on every database.
        "name": by_code_point(folded(LeadSource.name)),
        "updated_at": LeadSource.updated_at,
        "created_at": LeadSource.created_at,
    }
    order: list[ColumnElement[Any]] = []
    for key in sort:
        column = columns[key.field]
        order.append(column.desc() if key.descending else column.asc())
    if not any(key.field == "id" for key in sort):
        order.append(LeadSource.id.asc())  # ties broken by id: pages never overlap
    return order


def _conditions(org_id: uuid.UUID, query: SourceQuery) -> list[ColumnElement[bool]]:
    conditions = [LeadSource.org_id == org_id]
    if query.ids is not None:
        conditions.append(LeadSource.id.in_(query.ids))
    if query.name is not None:
        conditions.append(LeadSource.name == query.name)
    return conditions


async def list_sources(session: AsyncSession, org_id: uuid.UUID, query: SourceQuery) -> SourcePage:
    """One page of the org's sources. One statement (it reads one row more than the page to
    know whether a next page exists); a page past the end costs a count besides."""
    conditions = _conditions(org_id, query)
    rows = (
        await session.execute(
            _statement()
            .where(*conditions)
            .order_by(*_order_by(query.sort))
            .limit(query.per_page + 1)
            .offset(query.offset)
        )
    ).all()
    items = [_source(row, number) for row, number in rows[: query.per_page]]
    last_page = None
    if not items and query.page > 1:
        total = await session.scalar(
            select(func.count()).select_from(LeadSource).where(*conditions)
        )
        last_page = max(1, -(-int(total or 0) // query.per_page))
    return SourcePage(items=items, has_next=len(rows) > query.per_page, last_page=last_page)


async def get_source(session: AsyncSession, org_id: uuid.UUID, source_id: int) -> Source:
    """The org's source; SourceNotFound for any other id, another org's included."""
    if not 1 <= source_id <= ID_MAX:
        raise SourceNotFound()
    row = (
        await session.execute(
            _statement().where(LeadSource.org_id == org_id, LeadSource.id == source_id)
        )
    ).one_or_none()
    if row is None:
        raise SourceNotFound()
    return _source(row[0], row[1])


async def _row(
    session: AsyncSession, org_id: uuid.UUID, source_id: int, *, for_update: bool = False
) -> LeadSource:
    if not 1 <= source_id <= ID_MAX:
        raise SourceNotFound()
    statement = select(LeadSource).where(LeadSource.org_id == org_id, LeadSource.id == source_id)
    if for_update:
        statement = statement.with_for_update()
    found = await session.scalar(statement)
    if found is None:
        raise SourceNotFound()
    return found


async def find_by_name(session: AsyncSession, org_id: uuid.UUID, name: str) -> LeadSource | None:
    """The org's source of that name, whatever its case (names are unique without regard to
    case), or None."""
    found: LeadSource | None = await session.scalar(
        select(LeadSource).where(
            LeadSource.org_id == org_id, folded(LeadSource.name) == folded(name.strip())
        )
    )
    return found


async def names_by_id(
    session: AsyncSession, org_id: uuid.UUID, ids: Iterable[int | None]
) -> dict[int, str]:
    """The names of the org's sources among `ids` (None and unknown ids are left out), in one
    statement: how a lead's `source` is read by name."""
    wanted = sorted({source_id for source_id in ids if source_id is not None})
    if not wanted:
        return {}
    rows = await session.execute(
        select(LeadSource.id, LeadSource.name).where(
            LeadSource.org_id == org_id, LeadSource.id.in_(wanted)
        )
    )
    return {source_id: name for source_id, name in rows}


# --- writing ---------------------------------------------------------------------------


def clean_name(value: object) -> str:
    """A source's name: a string of 1 to 255 characters once surrounding blanks are gone."""
    if value is None:
        raise InvalidSource("name", "Can't be blank.")
    if not isinstance(value, str):
        raise InvalidSource("name", "Must be a string.")
    if contains_nul(value):
        raise InvalidSource("name", NUL_REASON)
    name = value.strip()
    if not name:
        raise InvalidSource("name", "Can't be blank.")
    if len(name) > NAME_MAX:
        raise InvalidSource("name", f"Is too long (at most {NAME_MAX} characters).")
    return name


def clean_resource_type(value: object) -> str:
    if value not in RESOURCE_TYPES:
        raise InvalidSource("resource_type", f"Must be one of: {', '.join(RESOURCE_TYPES)}.")
    return str(value)


async def _name_taken(
    session: AsyncSession, org_id: uuid.UUID, name: str, except_id: int | None = None
) -> bool:
    statement = select(LeadSource.id).where(
        LeadSource.org_id == org_id, folded(LeadSource.name) == folded(name)
    )
    if except_id is not None:
        statement = statement.where(LeadSource.id != except_id)
    return await session.scalar(statement.limit(1)) is not None


def _is_name_conflict(error: IntegrityError) -> bool:
    """Whether the unique index on (org_id, name_folded) refused the write."""
    return refused_by(error, LeadSource.__table__, NAME_INDEX)  # type: ignore[arg-type]


async def _flush(session: AsyncSession, name: str) -> None:
    """Flushes; a name taken by a concurrent transaction since the check is a DuplicateName
    (the request's transaction is then rolled back by the session dependency)."""
    try:
        await session.flush()
    except IntegrityError as error:
        if _is_name_conflict(error):
            raise DuplicateName(name) from None
        raise


async def create_source(
    session: AsyncSession,
    org_id: uuid.UUID,
    creator_profile_id: uuid.UUID,
    name: object,
    resource_type: object = "lead",
) -> Source:
    clean = clean_name(name)
    kind = clean_resource_type(resource_type)
    if await _name_taken(session, org_id, clean):
        raise DuplicateName(clean)
    (source_id,) = await next_numbers(session)
    now = utcnow()
    row = LeadSource(
        org_id=org_id,
        id=source_id,
        name=clean,
        resource_type=kind,
        created_by_id=creator_profile_id,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await _flush(session, clean)
    return await get_source(session, org_id, source_id)


async def update_source(
    session: AsyncSession, org_id: uuid.UUID, source_id: int, changes: dict[str, object]
) -> Source:
    """Changes the attributes in `changes` (`name`, `resource_type`); the others stay.
    Renaming a source to its own name, or changing only its case, is fine; a lead's
    `source` reads the new name at once (leads store the id)."""
    unknown = sorted(set(changes) - {"name", "resource_type"})
    if unknown:
        raise InvalidSource(unknown[0], "Is not an attribute of a lead source.")
    row = await _row(session, org_id, source_id)
    values: dict[str, str] = {}
    if "name" in changes:
        name = clean_name(changes["name"])
        if await _name_taken(session, org_id, name, except_id=source_id):
            raise DuplicateName(name)
        if name != row.name:
            values["name"] = name
    if "resource_type" in changes:
        kind = clean_resource_type(changes["resource_type"])
        if kind != row.resource_type:
            values["resource_type"] = kind
    if values:
        for attribute, value in values.items():
            setattr(row, attribute, value)
        row.updated_at = utcnow()
        await _flush(session, values.get("name", row.name))
    return await get_source(session, org_id, source_id)


def _links_to_sources() -> list[tuple[str, str]]:
    """(table, column) of every link to a lead source: each foreign key of the schema that
    refers to lead_sources, by its column other than org_id."""
    import crm.models  # noqa: F401  (registers every table in Base.metadata)

    links = []
    for table in Base.metadata.sorted_tables:
        for constraint in table.foreign_key_constraints:
            if constraint.referred_table.name != LeadSource.__tablename__:
                continue
            for column in constraint.columns:
                if column.name != "org_id":
                    links.append((table.name, column.name))
    return links


async def delete_source(session: AsyncSession, org_id: uuid.UUID, source_id: int) -> None:
    """Deletes the source; every row that links to it (a lead's source, …) is left with a
    NULL link and keeps working. The row lock makes a write that links to the source at
    the same moment (it takes a share lock) either finish first, and be unlinked here, or
    wait and find the source gone."""
    row = await _row(session, org_id, source_id, for_update=True)
    for table_name, column_name in _links_to_sources():
        table = Base.metadata.tables[table_name]
        column = table.c[column_name]
        await session.execute(
            update(table)
            .where(table.c.org_id == org_id, column == source_id)
            .values({column_name: None})
        )
    await session.delete(row)
    await session.flush()


async def create_defaults(
    session: AsyncSession, org_id: uuid.UUID, creator_profile_id: uuid.UUID
) -> None:
    """Every new org starts with the default sources."""
    ids = await next_numbers(session, len(DEFAULT_SOURCES))
    now = utcnow()
    await session.execute(
        insert(LeadSource),
        [
            {
                "org_id": org_id,
                "id": source_id,
                "name": name,
                "resource_type": "lead",
                "created_by_id": creator_profile_id,
                "created_at": now,
                "updated_at": now,
            }
            for source_id, name in zip(ids, DEFAULT_SOURCES, strict=True)
        ],
    )
