"""Volatility-squeeze breakout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, rolling_mean, rolling_std, sign_or_wait

REL_TOL = 1e-9


@register_engine
class SqueezeBreakout(BaseEngine):
    """Volatility-squeeze breakout: quiet markets coil before they move. The Bollinger bands are the
    ``window``-bar SMA of the close plus and minus ``k`` sample standard deviations, and their width is
    2 k std / SMA. A bar is in a squeeze when that width is at or below the ``pct`` quantile of its own
    trailing ``lookback`` bars (current bar included). If any of the ``memory`` bars before the current one
    was in a squeeze, a close above the previous bar's upper band buys and a close below the previous bar's
    lower band sells (the breakout's direction); otherwise the engine waits. Parameters: ``window`` and ``k``
    the bands, ``lookback`` the bars of width history, ``pct`` the squeeze quantile (0..1), ``memory`` how
    many bars a squeeze stays armed."""

    name = "squeeze_breakout"
    family = "volatility"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 20, "k": 2.0, "lookback": 120, "pct": 0.2, "memory": 12}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["window"]) + int(self.params["lookback"]) + int(self.params["memory"])

    def directions(self, inp: EngineInput) -> np.ndarray:
        window, k, memory = int(self.params["window"]), float(self.params["k"]), int(self.params["memory"])
        close = inp.np("close")
        mean, std = rolling_mean(close, window), rolling_std(close, window)
        with np.errstate(divide="ignore", invalid="ignore"):
            width = 2.0 * k * std / mean
        width = np.where(np.isfinite(width), width, np.nan)
        cutoff = (
            pl.Series(width)
            .fill_nan(None)
            .rolling_quantile(float(self.params["pct"]), "nearest", int(self.params["lookback"]))
            .to_numpy()
            .astype(np.float64)
        )
        squeeze = np.where(np.isfinite(cutoff) & np.isfinite(width), (width <= cutoff).astype(np.float64), np.nan)
        armed = pl.Series(lag(squeeze, 1)).fill_nan(None).rolling_max(memory).to_numpy().astype(np.float64) > 0.0
        tol = REL_TOL * np.abs(mean)  # a flat window's band is its mean up to rounding: not a breakout
        upper, lower = lag(mean + k * std + tol, 1), lag(mean - k * std - tol, 1)
        defined = np.isfinite(upper) & np.isfinite(close) & np.isfinite(lag(squeeze, memory))
        return sign_or_wait(armed & (close > upper), armed & (close < lower), defined)
