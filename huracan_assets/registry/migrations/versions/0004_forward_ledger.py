"""The forward-only track record: shadow_trades hold each role's ledger trades with their gross, cost and net
(and the cost's parts), daily_equity a role, the ledger's start and its cumulative trade count.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TRADES = (
    ("role", sa.String(16)),
    ("exit_time", sa.DateTime(timezone=True)),
    ("exit_reason", sa.String(16)),
    ("gross_bps", sa.Float),
    ("cost_bps", sa.Float),
    ("net_bps", sa.Float),
    ("fee_bps", sa.Float),
    ("spread_bps", sa.Float),
    ("slippage_bps", sa.Float),
    ("stop_slippage_bps", sa.Float),
)
EQUITY = (
    ("role", sa.String(16)),
    ("since", sa.Date),
    ("n_trades", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("shadow_trades") as batch:
        for name, kind in TRADES:
            batch.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("daily_equity") as batch:
        for name, kind in EQUITY:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("daily_equity") as batch:
        for name, _ in reversed(EQUITY):
            batch.drop_column(name)
    with op.batch_alter_table("shadow_trades") as batch:
        for name, _ in reversed(TRADES):
            batch.drop_column(name)
