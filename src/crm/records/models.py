"""What every record table has: the tenant key, ownership, tags, custom fields, times."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    FetchedValue,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.sql.schema import SchemaItem

from crm.db import FOLDED_SUFFIX, Base, new_uuid, utcnow
from crm.orgs.models import profile_fk

# JSONB on PostgreSQL (indexable with GIN), JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")

# Indexes whose names start with this exist on PostgreSQL only (GIN, trigram): migrations
# create them there, and the schema comparison skips them elsewhere.
POSTGRESQL_ONLY_PREFIX = "pgx_"
# On PostgreSQL, a record table's column of the folded text that `search` looks in: generated
# from the entity's search fields by the database (migration 0008), indexed by trigrams.
SEARCH_COLUMN = f"{POSTGRESQL_ONLY_PREFIX}search"


class Cents(TypeDecorator[Decimal]):
    """A money amount as a whole number of cents: exact and ordered like the amount, for
    SQLite, which has no decimal type (its NUMERIC is a float)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else int(value * 100)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(int(value)) / 100


# An amount with 2 decimals: NUMERIC on PostgreSQL, cents on SQLite; never a float.
Money = Numeric(15, 2, asdecimal=True).with_variant(Cents(), "sqlite")


def link_fk(column: str, table: str) -> ForeignKeyConstraint:
    """The composite link from a record to a row of another tenant table of the same org."""
    return ForeignKeyConstraint(["org_id", column], [f"{table}.org_id", f"{table}.id"])


def unique_index_name(table: str, name: str) -> str:
    return f"uq_{table}_org_id_{name}"


def unique_live(model: Any, name: str) -> Index:
    """The column `name` unique in the org among live records, whatever its case: an index
    on its stored folded copy (crm.db.folded_copy), declared after the model, whose
    columns it names."""
    return Index(
        unique_index_name(model.__tablename__, name),
        model.org_id,
        getattr(model, name + FOLDED_SUFFIX),
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    )


def ordering_indexes(model: Any, fields: tuple[str, ...]) -> list[Index]:
    """An index per field a list orders by, as crm.records.query.parse_ordering orders:
    (org, [field IS NULL,] field, id) over live records; one serves both directions."""
    indexes = []
    table = model.__tablename__
    for name in fields:
        column = getattr(model, name)
        nulls = [column.is_(None)] if model.__table__.columns[name].nullable else []
        indexes.append(
            Index(
                f"ix_{table}_by_{name}",
                model.org_id,
                *nulls,
                column,
                model.id,
                sqlite_where=text("deleted_at IS NULL"),
                postgresql_where=text("deleted_at IS NULL"),
            )
        )
    return indexes


class RecordMixin:
    """Columns shared by every entity table; `(org_id, id)` is the primary key."""

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    # Unique server-wide, never reused: taken from crm.db.next_numbers's allocator by the
    # database at insert, whatever writes the row (migration 0010).
    number: Mapped[int] = mapped_column(BigInteger, server_default=FetchedValue())
    created_by_id: Mapped[uuid.UUID | None] = mapped_column()
    assigned_to_id: Mapped[uuid.UUID | None] = mapped_column()
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    description: Mapped[str | None] = mapped_column(Text)

    @declared_attr.directive
    @classmethod
    def __table_args__(cls) -> tuple[SchemaItem, ...]:
        return record_table_args(cls.__tablename__)  # type: ignore[attr-defined]


class Reachable:
    """The email and phone of a record that stands for someone to reach."""

    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(50))


def record_table_args(table: str, *extra: SchemaItem) -> tuple[SchemaItem, ...]:
    """The constraints and indexes of every record table, plus an entity's own."""
    return (
        profile_fk("created_by_id"),
        profile_fk("assigned_to_id"),
        Index(f"uq_{table}_number", "number", unique=True),
        Index(f"ix_{table}_org_id_assigned_to_id", "org_id", "assigned_to_id"),
        Index(f"ix_{table}_org_id_created_by_id", "org_id", "created_by_id"),
        Index(
            f"{POSTGRESQL_ONLY_PREFIX}{table}_custom_fields",
            "custom_fields",
            postgresql_using="gin",
            postgresql_ops={"custom_fields": "jsonb_path_ops"},
            postgresql_with={"fastupdate": "off"},
        ),
        Index(
            f"{POSTGRESQL_ONLY_PREFIX}{table}_tags",
            "tags",
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
        ),
        *extra,
    )


class Upload(Base):
    """A CSV file imported into an org's records of one kind, by its SHA-256: the same file
    again writes nothing and answers what the first import did."""

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("org_id", "entity", "digest"), profile_fk("created_by_id"))

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_uuid)
    entity: Mapped[str] = mapped_column(String(40))  # the URL's plural
    digest: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
