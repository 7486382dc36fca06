"""one case folding on PostgreSQL: ICU's root locale, whatever the server's locale

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 18:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The expression of crm.db.folded on PostgreSQL, and of crm.records.query.search_expression
# over the leads' search fields.
FOLDED = '(lower(({}) COLLATE "und-x-icu"))'
SEARCHED = (
    "coalesce(title, '') || ' ' || coalesce(first_name, '') || ' ' || "
    "coalesce(last_name, '') || ' ' || coalesce(email, '') || ' ' || "
    "coalesce(company_name, '') || ' ' || coalesce(phone, '')"
)


def rebuild(fold: str) -> None:
    op.execute("DROP INDEX uq_leads_org_id_email")
    op.execute(
        f"CREATE UNIQUE INDEX uq_leads_org_id_email ON leads (org_id, {fold.format('email')})"
        " WHERE deleted_at IS NULL"
    )
    op.execute("DROP INDEX uq_lead_sources_org_id_name")
    op.execute(
        "CREATE UNIQUE INDEX uq_lead_sources_org_id_name"
        f" ON lead_sources (org_id, {fold.format('name')})"
    )
    op.execute("DROP INDEX pgx_leads_search")
    op.execute(
        f"CREATE INDEX pgx_leads_search ON leads USING gin ({fold.format(SEARCHED)} gin_trgm_ops)"
    )


def upgrade() -> None:
    # SQLite's lower() is already Python's (registered on every connection): its indexes stay.
    if op.get_bind().dialect.name == "postgresql":
        rebuild(FOLDED)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        rebuild("lower({})")
