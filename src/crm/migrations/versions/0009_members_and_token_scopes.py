"""members and token scopes: a user's name, a profile's membership (invited, member,
removed), a personal token's parent and scopes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("name", sa.String(length=255), nullable=True))
    with op.batch_alter_table("profiles") as batch:
        batch.add_column(
            sa.Column(
                "membership",
                sa.Enum(
                    "invited", "member", "removed", name="membership", native_enum=False, length=20
                ),
                nullable=False,
                server_default="member",
            )
        )
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("parent_id", sa.Uuid(), nullable=True))
        batch.add_column(
            sa.Column("scopes", sa.String(length=100), nullable=False, server_default="read write")
        )
        batch.create_index(batch.f("ix_tokens_parent_id"), ["parent_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_tokens_org_id_parent_id_tokens"),
            "tokens",
            ["org_id", "parent_id"],
            ["org_id", "id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_constraint(batch.f("fk_tokens_org_id_parent_id_tokens"), type_="foreignkey")
        batch.drop_index(batch.f("ix_tokens_parent_id"))
        batch.drop_column("scopes")
        batch.drop_column("parent_id")
    with op.batch_alter_table("profiles") as batch:
        batch.drop_column("membership")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("name")
