"""From a shadow run to the promotion gates' inputs: daily returns of the equity curve, and a sparkline."""

from __future__ import annotations

import numpy as np
import polars as pl

from huracan_assets.core.market_data.candles import DAY_MS

SPARKS = "▁▂▃▄▅▆▇█"


def daily_returns(equity: pl.DataFrame, initial_equity: float) -> np.ndarray:
    """Returns of the equity at each UTC day's last bar, the first day against ``initial_equity``."""
    if equity.height == 0:
        return np.zeros(0)
    last = equity.group_by(pl.col("ts") // DAY_MS, maintain_order=True).agg(pl.col("equity").last())
    values = np.concatenate([[initial_equity], last["equity"].to_numpy()])
    return values[1:] / values[:-1] - 1.0


def sparkline(values: np.ndarray, width: int = 48) -> str:
    """A one-line chart of a series (resampled to ``width`` points), for markdown metadata."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ""
    idx = np.linspace(0, v.size - 1, min(width, v.size)).round().astype(int)
    v = v[idx]
    lo, hi = float(v.min()), float(v.max())
    if hi - lo <= 1e-12:
        return SPARKS[3] * v.size
    return "".join(SPARKS[int((x - lo) / (hi - lo) * (len(SPARKS) - 1))] for x in v)
