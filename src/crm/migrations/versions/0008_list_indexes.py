"""lists at scale: an index per orderable field of each entity, (org, [field IS NULL,]
field, id) over live records, as crm.records.query.parse_ordering orders a list (the one of
created_at replaces (org, created_at, id) over every record); on PostgreSQL, each record's
folded search text stored (pgx_search) and indexed by trigrams, instead of the expression
that every search evaluated again for each row

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each entity's orderable fields, the nullable ones marked with "?": those sort by
# (field IS NULL, field).
ORDERED = {
    "leads": "title first_name? last_name? email? company_name? status",
    "contacts": "first_name last_name? email? title?",
    "accounts": "name email? industry?",
    "opportunities": "name amount? stage probability? close_date?",
    "tasks": "title status priority due_date?",
}
ALWAYS = "created_at updated_at"

# Each entity's `search` fields, as crm.records.query.search_expression joins them, and the
# expression of crm.db.folded on PostgreSQL (ICU's root locale, whatever the server's).
SEARCH = {
    "leads": ("title", "first_name", "last_name", "email", "company_name", "phone"),
    "accounts": ("name", "email", "phone", "website", "industry"),
    "contacts": ("first_name", "last_name", "email", "phone", "title"),
    "opportunities": ("name", "description"),
    "tasks": ("title", "description"),
}
FOLDED = '(lower(({}) COLLATE "und-x-icu"))'


def searched(table: str) -> str:
    return FOLDED.format(" || ' ' || ".join(f"coalesce({name}, '')" for name in SEARCH[table]))


def indexes() -> list[tuple[str, str, list[sa.TextClause]]]:
    found = []
    for table, fields in ORDERED.items():
        for field in f"{fields} {ALWAYS}".split():
            name = field.removesuffix("?")
            nulls = [sa.text(f"({name} IS NULL)")] if field.endswith("?") else []
            columns = [sa.text("org_id"), *nulls, sa.text(name), sa.text("id")]
            found.append((table, f"ix_{table}_by_{name}", columns))
    return found


def upgrade() -> None:
    for table in ORDERED:
        op.drop_index(f"ix_{table}_org_id_created_at", table_name=table)
    for table, index, columns in indexes():
        op.create_index(
            index,
            table,
            columns,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        )
    if op.get_bind().dialect.name == "postgresql":
        for table in SEARCH:
            # Generated: whatever writes a record (the app, a COPY), its search text follows.
            op.execute(
                f'ALTER TABLE {table} ADD COLUMN pgx_search text COLLATE "und-x-icu"'
                f" GENERATED ALWAYS AS ({searched(table)}) STORED"
            )
            op.execute(f"DROP INDEX pgx_{table}_search")
            op.execute(
                f"CREATE INDEX pgx_{table}_search ON {table} USING gin (pgx_search gin_trgm_ops)"
            )
            # A histogram of 1,000 texts, not 100: the planner's estimate of a fragment in 1%
            # of the rows is then near 1% (with 100 it said 0.01%), and that estimate is the
            # `count` of a list past CRM_EXACT_COUNT_LIMIT.
            op.execute(f"ALTER TABLE {table} ALTER COLUMN pgx_search SET STATISTICS 1000")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in SEARCH:
            op.execute(f"DROP INDEX pgx_{table}_search")
            op.execute(f"ALTER TABLE {table} DROP COLUMN pgx_search")
            op.execute(
                f"CREATE INDEX pgx_{table}_search ON {table}"
                f" USING gin ({searched(table)} gin_trgm_ops)"
            )
    for table, index, _ in indexes():
        op.drop_index(index, table_name=table)
    for table in ORDERED:
        op.create_index(f"ix_{table}_org_id_created_at", table, ["org_id", "created_at", "id"])
