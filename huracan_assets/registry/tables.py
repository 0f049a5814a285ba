"""Registry tables (SQLAlchemy Core). The seeds' columns, plus symbol, sha256, as-of date, timeframe.

The schema is created and evolved only by the Alembic migrations in ``migrations/``; a test compares
the migrated database with this metadata on PostgreSQL and SQLite, so the two cannot drift.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()
VERSION_TABLE = "huracan_registry_version"

models = Table(
    "models",
    metadata,
    Column("model_id", String(128), primary_key=True),
    Column("parent_id", String(128), nullable=True),
    Column("kind", String(32), nullable=False),  # challenger | champion | refit
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("s3_path", Text, nullable=False),
    Column("features_used", JSON, nullable=True),
    Column("params", JSON, nullable=True),
    Column("symbol", String(32), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("timeframe", String(8), nullable=False),
    Index("ix_models_symbol_as_of", "symbol", "as_of"),
)

model_metrics = Table(
    "model_metrics",
    metadata,
    Column("model_id", String(128), primary_key=True),
    Column("window", String(64), primary_key=True),  # e.g. "wf_fold_3", "wf_overall", "shadow"
    Column("sharpe", Float, nullable=True),
    Column("hit_rate", Float, nullable=True),
    Column("drawdown", Float, nullable=True),
    Column("net_bps", Float, nullable=True),
    Column("cost_bps", Float, nullable=True),
    Column("n_trades", Integer, nullable=True),
    Column("promoted", Boolean, nullable=False, default=False),
    Column("symbol", String(32), nullable=False),
    Column("sha256", String(64), nullable=True),
    Column("as_of", Date, nullable=False),
    Column("timeframe", String(8), nullable=False),
    # 0003: out-of-sample validation metrics, the canaries' verdict and per-fold detail
    Column("auc", Float, nullable=True),
    Column("log_loss", Float, nullable=True),
    Column("psr", Float, nullable=True),
    Column("dsr", Float, nullable=True),
    Column("turnover", Float, nullable=True),
    Column("n_test", Integer, nullable=True),
    Column("canaries_passed", Boolean, nullable=True),
    Column("detail", JSON, nullable=True),
    Index("ix_model_metrics_symbol_as_of", "symbol", "as_of"),
)

promotions = Table(
    "promotions",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("timeframe", String(8), primary_key=True),
    Column("as_of", Date, primary_key=True),
    Column("kind", String(16), primary_key=True, server_default="promotion"),  # promotion | rollback
    Column("event_id", String(32), primary_key=True, server_default=""),  # "" for a promotion, a rollback's stamp
    Column("from_model_id", String(128), nullable=True),
    Column("to_model_id", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("snapshot", JSON, nullable=True),
    Column("sha256", String(64), nullable=False),
)

shadow_trades = Table(
    "shadow_trades",
    metadata,
    Column("trade_id", String(160), primary_key=True),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("side", String(8), nullable=False),
    Column("size", Float, nullable=False),
    Column("entry", Float, nullable=False),
    Column("exit", Float, nullable=True),
    Column("fees", Float, nullable=False),
    Column("net_pnl", Float, nullable=True),
    Column("model_id", String(128), nullable=False),
    Column("sha256", String(64), nullable=True),
    Column("as_of", Date, nullable=False),  # the day the trade closed (the ledger day that appended it)
    Column("timeframe", String(8), nullable=False),
    # 0004: the forward ledger (role champion | challenger) and each trade's gross, cost and net, cost in parts
    Column("role", String(16), nullable=True),
    Column("exit_time", DateTime(timezone=True), nullable=True),
    Column("exit_reason", String(16), nullable=True),
    Column("gross_bps", Float, nullable=True),
    Column("cost_bps", Float, nullable=True),
    Column("net_bps", Float, nullable=True),
    Column("fee_bps", Float, nullable=True),
    Column("spread_bps", Float, nullable=True),
    Column("slippage_bps", Float, nullable=True),
    Column("stop_slippage_bps", Float, nullable=True),
    Index("ix_shadow_trades_symbol_as_of", "symbol", "as_of"),
)

daily_equity = Table(
    "daily_equity",
    metadata,
    Column("date", Date, primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("timeframe", String(8), primary_key=True),
    Column("model_id", String(128), primary_key=True),
    Column("nav", Float, nullable=False),
    Column("max_dd", Float, nullable=False),
    Column("turnover", Float, nullable=False),
    Column("fees_bps", Float, nullable=False),
    Column("sha256", String(64), nullable=True),
    # 0004: the forward ledger's role, first day and cumulative trade count (nav is that ledger's NAV)
    Column("role", String(16), nullable=True),
    Column("since", Date, nullable=True),
    Column("n_trades", Integer, nullable=True),
)

# Per-symbol status of every (asset, symbol, day): how one bad coin is recorded without blocking others.
symbol_status = Table(
    "symbol_status",
    metadata,
    Column("asset", String(64), primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("as_of", Date, primary_key=True),
    Column("timeframe", String(8), primary_key=True),
    Column("status", String(16), nullable=False),  # ok | skipped | failed
    Column("reason", Text, nullable=True),
    Column("detail", JSON, nullable=True),  # quality numbers of the key (bars, gaps, spread, flags)
    Column("run_id", String(64), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

decisions = Table(
    "decisions",
    metadata,
    Column("date", Date, primary_key=True),
    Column("symbol", String(32), primary_key=True),
    Column("timeframe", String(8), primary_key=True),
    Column(
        "kind", String(16), primary_key=True
    ),  # promotion | refusal | kill | global_kill | publish_failed | rollback
    Column("event_id", String(32), primary_key=True, server_default=""),  # "" for the graph's, a rollback's stamp
    Column("source", String(16), nullable=False),  # graph | operator
    Column("reason", Text, nullable=False),
    Column("model_id", String(128), nullable=True),
    Column("champion_model_id", String(128), nullable=True),
    Column("document", JSON, nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

TABLES = {t.name: t for t in metadata.sorted_tables}

# 0007: the parameter controller (core/params, written by params/store.py)
presets = Table(
    "presets",
    metadata,
    Column("strategy", String(64), primary_key=True),
    Column("instrument", String(64), primary_key=True),  # "*": every instrument of the strategy
    Column("preset_id", String(64), primary_key=True),
    Column("params", JSON, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("source", String(16), nullable=False),  # schema | admin
)

posteriors = Table(
    "posteriors",
    metadata,
    Column("strategy", String(64), primary_key=True),
    Column("instrument", String(64), primary_key=True),
    Column("preset_id", String(64), primary_key=True),
    Column("A", JSON, nullable=False),  # precision matrix, rows of floats
    Column("b", JSON, nullable=False),
    Column("n", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),  # format of A and b (core/params/bandit.py)
)

param_state = Table(
    "param_state",
    metadata,
    Column("strategy", String(64), primary_key=True),
    Column("instrument", String(64), primary_key=True),
    Column("state", JSON, nullable=False),  # ControllerState.to_dict() without the posteriors
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
)

param_decisions = Table(
    "param_decisions",
    metadata,
    Column("decision_id", String(200), primary_key=True),  # strategy:instrument:decision number
    Column("at", DateTime(timezone=True), nullable=False),
    Column("strategy", String(64), nullable=False),
    Column("instrument", String(64), nullable=False),
    Column("preset_id", String(64), nullable=False),
    Column("config_id", String(260), nullable=False),
    Column("position_id", String(128), nullable=True),
    Column("reason", String(32), nullable=False),
    Column("features", JSON, nullable=False),
    Column("scores", JSON, nullable=False),
    Index("ix_param_decisions_strategy_instrument_at", "strategy", "instrument", "at"),
)

# 0008: the Engine's replay evidence (asset param_posteriors), the latest date per (strategy, instrument, preset)
param_evidence = Table(
    "param_evidence",
    metadata,
    Column("strategy", String(64), primary_key=True),
    Column("instrument", String(64), primary_key=True),
    Column("preset_id", String(64), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("A", JSON, nullable=False),  # precision matrix (prior included), rows of floats
    Column("b", JSON, nullable=False),
    Column("n", Integer, nullable=False),
    Column("model_id", String(128), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
)

TABLES = {t.name: t for t in metadata.sorted_tables}
