"""Validation: purged, embargoed walk-forward splits, out-of-sample trading metrics and leakage canaries."""

from huracan_assets.core.validation.metrics import (
    auc,
    auc_null_sigma,
    daily_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    log_loss,
    max_drawdown,
    metrics_from_trades,
    probabilistic_sharpe_ratio,
    select_trades,
    sharpe,
    trade_pnl_bps,
    trading_metrics,
    turnover,
)
from huracan_assets.core.validation.splits import Fold, WalkForwardSpec, purge_train, purged_splits
from huracan_assets.core.validation.walk_forward import (
    WalkForwardConfig,
    WalkForwardResult,
    block_shuffle_labels,
    canaries,
    walk_forward,
)

__all__ = [
    "Fold",
    "WalkForwardConfig",
    "WalkForwardResult",
    "WalkForwardSpec",
    "auc",
    "auc_null_sigma",
    "block_shuffle_labels",
    "canaries",
    "daily_returns",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "log_loss",
    "max_drawdown",
    "metrics_from_trades",
    "probabilistic_sharpe_ratio",
    "purge_train",
    "purged_splits",
    "select_trades",
    "sharpe",
    "trade_pnl_bps",
    "trading_metrics",
    "turnover",
    "walk_forward",
]
