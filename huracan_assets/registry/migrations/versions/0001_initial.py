"""Initial registry: models, model_metrics, promotions, shadow_trades, daily_equity, symbol_status.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("model_id", sa.String(128), primary_key=True),
        sa.Column("parent_id", sa.String(128), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("s3_path", sa.Text, nullable=False),
        sa.Column("features_used", sa.JSON, nullable=True),
        sa.Column("params", sa.JSON, nullable=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
    )
    op.create_index("ix_models_symbol_as_of", "models", ["symbol", "as_of"])
    op.create_table(
        "model_metrics",
        sa.Column("model_id", sa.String(128), primary_key=True),
        sa.Column("window", sa.String(64), primary_key=True),
        sa.Column("sharpe", sa.Float, nullable=True),
        sa.Column("hit_rate", sa.Float, nullable=True),
        sa.Column("drawdown", sa.Float, nullable=True),
        sa.Column("net_bps", sa.Float, nullable=True),
        sa.Column("cost_bps", sa.Float, nullable=True),
        sa.Column("n_trades", sa.Integer, nullable=True),
        sa.Column("promoted", sa.Boolean, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
    )
    op.create_index("ix_model_metrics_symbol_as_of", "model_metrics", ["symbol", "as_of"])
    op.create_table(
        "promotions",
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("as_of", sa.Date, primary_key=True),
        sa.Column("from_model_id", sa.String(128), nullable=True),
        sa.Column("to_model_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("snapshot", sa.JSON, nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
    op.create_table(
        "shadow_trades",
        sa.Column("trade_id", sa.String(160), primary_key=True),
        sa.Column("time", TZ, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("size", sa.Float, nullable=False),
        sa.Column("entry", sa.Float, nullable=False),
        sa.Column("exit", sa.Float, nullable=True),
        sa.Column("fees", sa.Float, nullable=False),
        sa.Column("net_pnl", sa.Float, nullable=True),
        sa.Column("model_id", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("timeframe", sa.String(8), nullable=False),
    )
    op.create_index("ix_shadow_trades_symbol_as_of", "shadow_trades", ["symbol", "as_of"])
    op.create_table(
        "daily_equity",
        sa.Column("date", sa.Date, primary_key=True),
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("model_id", sa.String(128), primary_key=True),
        sa.Column("nav", sa.Float, nullable=False),
        sa.Column("max_dd", sa.Float, nullable=False),
        sa.Column("turnover", sa.Float, nullable=False),
        sa.Column("fees_bps", sa.Float, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
    )
    op.create_table(
        "symbol_status",
        sa.Column("asset", sa.String(64), primary_key=True),
        sa.Column("symbol", sa.String(32), primary_key=True),
        sa.Column("as_of", sa.Date, primary_key=True),
        sa.Column("timeframe", sa.String(8), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for name in ("symbol_status", "daily_equity", "shadow_trades", "promotions", "model_metrics", "models"):
        op.drop_table(name)
