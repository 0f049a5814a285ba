"""On-balance-volume divergence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, rolling_max, rolling_min, sign_or_wait


@register_engine
class ObvDivergence(BaseEngine):
    """Divergence between price and on-balance volume: OBV adds a bar's volume when the close rose and
    subtracts it when the close fell, so it tracks whether volume is behind the moves. When the close makes a
    new ``window``-bar high (above every close of the ``window`` bars before it) but OBV does not (it is at or
    below its own maximum of those bars), the rally lacks volume behind it: bearish divergence, the engine
    sells. A new ``window``-bar closing low without a new OBV low is bullish divergence and buys. Otherwise it
    waits. A bar with missing volume adds nothing to OBV. Parameters: ``window`` the look-back in bars for
    the highs and lows."""

    name = "obv_divergence"
    family = "volume"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 24}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["window"])

    def directions(self, inp: EngineInput) -> np.ndarray:
        window = int(self.params["window"])
        close = inp.np("close")
        step = np.nan_to_num(np.sign(close - lag(close, 1)) * inp.np("volume"), nan=0.0)
        obv = np.cumsum(step)
        price_high, price_low = lag(rolling_max(close, window), 1), lag(rolling_min(close, window), 1)
        obv_high, obv_low = lag(rolling_max(obv, window), 1), lag(rolling_min(obv, window), 1)
        new_high, new_low = close > price_high, close < price_low
        defined = np.isfinite(price_high) & np.isfinite(price_low) & np.isfinite(close)
        return sign_or_wait(new_low & (obv >= obv_low), new_high & (obv <= obv_high), defined)
