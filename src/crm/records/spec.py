"""How an entity is declared: its model, its writable fields (a Pydantic schema) and what
its lists may filter, search and order on. The machinery builds everything else from it."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table

from crm.records.fields import Description, Phone, Tag
from crm.records.models import RecordMixin, ordering_indexes
from crm.validation import Email

# Fields every record reads but no body may carry.
SERVER_DERIVED = ("id", "number", "org", "created_by", "created_at", "updated_at")


class RecordIn(BaseModel):
    """The writable fields every entity has; an entity's schema extends it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    assigned_to: uuid.UUID | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=100)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    description: Description | None = None


# Fields of RecordIn that are not a column of the same name.
SPECIAL = ("assigned_to", "tags", "custom_fields")


class ReachableIn(RecordIn):
    """The writable fields of crm.records.models.Reachable."""

    email: Email | None = None
    phone: Phone | None = None


@dataclass(frozen=True)
class Link:
    """A field that names a row of another org-scoped table: written and read as that row's
    `by` attribute (its id, or e.g. a name), stored as the id in `column`."""

    field: str
    column: str
    target: type[Any]
    by: str = "id"


@dataclass(frozen=True)
class ManyLink:
    """A field that names a list of records of another entity, kept in a link table: one
    row per (owner, target) pair."""

    field: str
    table: type[Any]  # the link table's model: org_id, `owner`, `target_column`
    owner: str  # its column naming the record that has the list
    target_column: str  # its column naming a listed record
    target: type[Any]  # the listed records' model


@dataclass(frozen=True, eq=False)
class EntitySpec:
    model: type[RecordMixin]
    schema: type[RecordIn]
    singular: str  # the entity of its custom field definitions
    search: tuple[str, ...]  # text columns that `search` looks in
    filters: tuple[str, ...]  # enum and link fields a list filters on by exact match
    ordering: tuple[str, ...]  # columns a list may be ordered by
    links: tuple[Link, ...] = ()
    many: tuple[ManyLink, ...] = ()
    # Links of which a record has at most one (one parent among several kinds).
    exclusive: tuple[str, ...] = ()
    read_only: tuple[str, ...] = ()  # further server-derived fields of this entity
    unique: tuple[str, ...] = ()  # fields unique in the org among live records, any case
    natural_key: str | None = None  # de-duplicates CSV uploads
    # The values an enum field may hold (and be filtered on), field by field.
    choices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Values of an enum field that only the server sets, each with what sets it; a record
    # holding one keeps it through every write (crm.records.service.keep_server_set).
    server_set: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    example: Mapping[str, Any] | None = None  # a create body, for the API document

    @property
    def table(self) -> Table:
        """The model's table, for statements in Core."""
        table: Table = self.model.__table__  # type: ignore[attr-defined]
        return table

    @property
    def name(self) -> str:
        """The plural of the URL, /api/<name>/: the table's name."""
        return str(self.model.__tablename__)  # type: ignore[attr-defined]

    @cached_property
    def writable(self) -> tuple[str, ...]:
        return tuple(self.schema.model_fields)

    @cached_property
    def entity_fields(self) -> tuple[str, ...]:
        """The writable fields stored in a column of the same name, the entity's own first
        (as a record reads them), then those every record or several have."""
        linked = {link.field for link in self.links} | {many.field for many in self.many}
        names = [name for name in self.writable if name not in set(SPECIAL) | linked]
        layers = (ReachableIn.model_fields, RecordIn.model_fields)
        return tuple(sorted(names, key=lambda name: sum(name in layer for layer in layers)))

    def link(self, name: str) -> Link | None:
        return next((link for link in self.links if link.field == name), None)


_REGISTRY: dict[str, EntitySpec] = {}


def register(spec: EntitySpec) -> EntitySpec:
    # Records are written in Core by column name (crm.records.service), where a key that is
    # no column would be dropped without a word.
    columns = spec.table.c
    unknown = [
        name
        for name in (*spec.entity_fields, *(link.column for link in spec.links))
        if name not in columns
    ]
    assert not unknown, f"{spec.name}: no column for {unknown}"
    ordering_indexes(spec.model, (*spec.ordering, "created_at", "updated_at"))
    _REGISTRY[spec.singular] = spec
    return spec


def registered(singular: str) -> EntitySpec | None:
    return _REGISTRY.get(singular)


def all_registered() -> list[EntitySpec]:
    return list(_REGISTRY.values())
