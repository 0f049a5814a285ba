"""model_metrics: the walk-forward's out-of-sample metrics (AUC, log-loss, PSR, DSR, turnover), the
canaries' verdict and the per-fold detail.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = (
    ("auc", sa.Float),
    ("log_loss", sa.Float),
    ("psr", sa.Float),
    ("dsr", sa.Float),
    ("turnover", sa.Float),
    ("n_test", sa.Integer),
    ("canaries_passed", sa.Boolean),
    ("detail", sa.JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("model_metrics") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_metrics") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
