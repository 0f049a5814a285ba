"""symbol_status.detail: per-key quality numbers (bars, gaps, spread, flags) as JSON.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("symbol_status") as batch:
        batch.add_column(sa.Column("detail", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("symbol_status") as batch:
        batch.drop_column("detail")
