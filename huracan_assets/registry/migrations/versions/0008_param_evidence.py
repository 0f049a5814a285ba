"""The parameter controller's evidence from the Engine: each strategy preset's posterior learned from the replayed
shadow trades (asset ``param_posteriors``), per (strategy, instrument), the latest date only. ``huracan serve`` adds
it to the live posteriors when it decides (``params.replay_evidence``). Written by ``huracan_assets/params/store.py``.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "param_evidence",
        sa.Column("strategy", sa.String(64), primary_key=True),
        sa.Column("instrument", sa.String(64), primary_key=True),
        sa.Column("preset_id", sa.String(64), primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),  # the param_posteriors date it comes from
        sa.Column("A", sa.JSON, nullable=False),  # precision matrix (prior included), rows of floats
        sa.Column("b", sa.JSON, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("model_id", sa.String(128), nullable=True),  # the model whose probabilities were replayed on as_of
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("param_evidence")
