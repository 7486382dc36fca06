"""uploads: the CSV files imported into an org, by digest, with what each import did

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 18:45:37.236244
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id", "created_by_id"],
            ["profiles.org_id", "profiles.id"],
            name=op.f("fk_uploads_org_id_created_by_id_profiles"),
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_uploads_org_id_orgs")),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_uploads")),
        sa.UniqueConstraint(
            "org_id", "entity", "digest", name=op.f("uq_uploads_org_id_entity_digest")
        ),
    )


def downgrade() -> None:
    op.drop_table("uploads")
