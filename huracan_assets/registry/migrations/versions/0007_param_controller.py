"""The parameter controller (issue 18): the presets of each strategy (the schema's and the registered ones), each
preset's Gaussian posterior per (strategy, instrument), the controller's other state per (strategy, instrument)
(current preset, decision counter, the day's changes, the kill switch's reward path, the open positions' configs),
and the log of its decisions. Written by ``huracan_assets/params/store.py``.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "presets",
        sa.Column("strategy", sa.String(64), primary_key=True),
        sa.Column("instrument", sa.String(64), primary_key=True),  # "*": every instrument of the strategy
        sa.Column("preset_id", sa.String(64), primary_key=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),  # schema | admin
    )
    op.create_table(
        "posteriors",
        sa.Column("strategy", sa.String(64), primary_key=True),
        sa.Column("instrument", sa.String(64), primary_key=True),
        sa.Column("preset_id", sa.String(64), primary_key=True),
        sa.Column("A", sa.JSON, nullable=False),  # precision matrix, rows of floats
        sa.Column("b", sa.JSON, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),  # format of A and b (core/params/bandit.py)
    )
    op.create_table(
        "param_state",
        sa.Column("strategy", sa.String(64), primary_key=True),
        sa.Column("instrument", sa.String(64), primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),  # ControllerState.to_dict() without the posteriors
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "param_decisions",
        sa.Column("decision_id", sa.String(200), primary_key=True),  # strategy:instrument:decision number
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("instrument", sa.String(64), nullable=False),
        sa.Column("preset_id", sa.String(64), nullable=False),
        sa.Column("config_id", sa.String(260), nullable=False),
        sa.Column("position_id", sa.String(128), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("features", sa.JSON, nullable=False),
        sa.Column("scores", sa.JSON, nullable=False),
    )
    op.create_index("ix_param_decisions_strategy_instrument_at", "param_decisions", ["strategy", "instrument", "at"])


def downgrade() -> None:
    op.drop_index("ix_param_decisions_strategy_instrument_at", table_name="param_decisions")
    op.drop_table("param_decisions")
    op.drop_table("param_state")
    op.drop_table("posteriors")
    op.drop_table("presets")
