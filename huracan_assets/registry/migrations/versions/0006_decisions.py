"""The decision log: every promotion, refusal, kill and rollback, one row each with its inputs and gate values
(also ``decisions/D.jsonl`` in the store). The graph's rows of a date are replaced when the date is decided again
(``source`` graph, ``event_id`` empty); an operator's rollbacks are kept (``source`` operator, ``event_id`` its
stamp).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),  # promotion | refusal | kill | global_kill | rollback ...
        sa.Column("event_id", sa.String(32), primary_key=True, server_default=""),
        sa.Column("source", sa.String(16), nullable=False),  # graph | operator
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("model_id", sa.String(128), nullable=True),  # the challenger decided on, or the rollback's target
        sa.Column("champion_model_id", sa.String(128), nullable=True),  # the champion it was compared with
        sa.Column("document", sa.JSON, nullable=True),  # the gates, the stats, the inputs
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("decisions")
