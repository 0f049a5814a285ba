"""Time-series momentum."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, log_returns, rolling_std, sign_or_wait


@register_engine
class TsMomentum(BaseEngine):
    """Time-series momentum: a coin that has risen over the last ``lookback`` bars tends to keep rising, and
    one that has fallen to keep falling, when the move is large compared with the coin's own noise. The
    engine takes the log return over ``lookback`` bars and compares it with ``k`` times the trailing
    volatility scaled to that horizon (the sample std of 1-bar log returns over ``vol_window`` bars, times
    sqrt(``lookback``)): above it buys, below minus it sells, a move within the noise waits. Parameters:
    ``lookback`` the momentum horizon in bars, ``vol_window`` the volatility window in bars, ``k`` the
    threshold in horizon standard deviations."""

    name = "ts_momentum"
    family = "trend"
    defaults: ClassVar[Mapping[str, Any]] = {"lookback": 24, "vol_window": 168, "k": 1.0}

    def warmup_bars(self, bar_minutes: int) -> int:
        return max(int(self.params["lookback"]), int(self.params["vol_window"]))

    def directions(self, inp: EngineInput) -> np.ndarray:
        lookback, k = int(self.params["lookback"]), float(self.params["k"])
        close = inp.np("close")
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = np.log(close / lag(close, lookback))
        threshold = k * rolling_std(log_returns(close), int(self.params["vol_window"])) * np.sqrt(lookback)
        defined = np.isfinite(ret) & np.isfinite(threshold)
        return sign_or_wait(ret > threshold, ret < -threshold, defined)
