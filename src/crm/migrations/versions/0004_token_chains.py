"""token chains: the login every access and refresh token descends from

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_id", sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tokens_chain_id"), ["chain_id"], unique=False)
    # A pair issued before chains were recorded is taken as a chain of its own.
    op.execute("UPDATE tokens SET chain_id = session_id")


def downgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tokens_chain_id"))
        batch_op.drop_column("chain_id")
