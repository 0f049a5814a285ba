"""From a shadow run to the promotion gates' inputs: daily returns of the equity curve."""

from __future__ import annotations

import numpy as np
import polars as pl

from huracan_assets.core.market_data.candles import DAY_MS


def daily_returns(equity: pl.DataFrame, initial_equity: float) -> np.ndarray:
    """Returns of the equity at each UTC day's last bar, the first day against ``initial_equity``."""
    if equity.height == 0:
        return np.zeros(0)
    last = equity.group_by(pl.col("ts") // DAY_MS, maintain_order=True).agg(pl.col("equity").last())
    values = np.concatenate([[initial_equity], last["equity"].to_numpy()])
    return values[1:] / values[:-1] - 1.0
