"""Rolling-VWAP mean reversion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import log_returns, rolling_std, rolling_sum, sign_or_wait


@register_engine
class VwapReversion(BaseEngine):
    """Mean reversion to the volume-weighted average price: the rolling VWAP is the volume-weighted mean of
    the typical price (high + low + close) / 3 over the last ``window`` bars (current bar included). When the
    close sits more than ``k`` trailing volatilities above it (the log distance ln(close / VWAP) against the
    sample std of 1-bar log returns over ``vol_window`` bars) the price is treated as stretched and the engine
    sells; more than ``k`` below it buys; otherwise it waits, and it also waits when the window traded no
    volume (no VWAP). Parameters: ``window`` the VWAP length in bars, ``vol_window`` the volatility window in
    bars, ``k`` the threshold in 1-bar standard deviations (a random walk's distance from a 24-bar VWAP is
    about sqrt(24 / 3) = 2.8 of them)."""

    name = "vwap_reversion"
    family = "reversion"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 24, "vol_window": 72, "k": 4.0}

    def warmup_bars(self, bar_minutes: int) -> int:
        return max(int(self.params["window"]), int(self.params["vol_window"]))

    def directions(self, inp: EngineInput) -> np.ndarray:
        window = int(self.params["window"])
        close, volume = inp.np("close"), inp.np("volume")
        typical = (inp.np("high") + inp.np("low") + close) / 3.0
        turnover, traded = rolling_sum(typical * volume, window), rolling_sum(volume, window)
        with np.errstate(divide="ignore", invalid="ignore"):
            distance = np.log(close * traded / turnover)
        threshold = float(self.params["k"]) * rolling_std(log_returns(close), int(self.params["vol_window"]))
        defined = np.isfinite(traded) & np.isfinite(threshold) & np.isfinite(close)
        return sign_or_wait(distance < -threshold, distance > threshold, defined)
