"""Support / resistance bounce."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, rolling_max, rolling_mean, rolling_min, sign_or_wait


def _atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Simple mean of the true range over ``window`` bars (NaN for the first ``window`` bars)."""
    prev = lag(close, 1)
    tr = np.fmax(high - low, np.fmax(np.abs(high - prev), np.abs(low - prev)))
    tr[np.isnan(prev)] = np.nan
    return rolling_mean(tr, window)


@register_engine
class SrBounce(BaseEngine):
    """Bounce off support and resistance. Support is the lowest low of the ``lookback`` bars before the
    current one, resistance their highest high. A bar whose low comes within ``k_atr`` × ATR of support
    (touching it or wicking below it) and that closes bullish (close above open) while still closing at or
    above support buys: buyers defended the level. Mirror image at resistance: a high within ``k_atr`` × ATR of
    it and a bearish close at or below it sells. A bar that does both (a range narrower than the band) waits,
    and so does every other bar. Parameters: ``lookback`` bars of the trailing range, ``atr_window`` bars of
    the simple-average true range, ``k_atr`` the proximity band in ATRs."""

    name = "sr_bounce"
    family = "reversion"
    defaults: ClassVar[Mapping[str, Any]] = {"lookback": 48, "atr_window": 14, "k_atr": 0.5}

    def warmup_bars(self, bar_minutes: int) -> int:
        return max(int(self.params["lookback"]), int(self.params["atr_window"])) + 1

    def directions(self, inp: EngineInput) -> np.ndarray:
        o, h, lo, c = inp.np("open"), inp.np("high"), inp.np("low"), inp.np("close")
        n = int(self.params["lookback"])
        support, resistance = lag(rolling_min(lo, n), 1), lag(rolling_max(h, n), 1)
        band = self.params["k_atr"] * _atr(h, lo, c, int(self.params["atr_window"]))
        buy = (lo <= support + band) & (c > o) & (c >= support)
        sell = (h >= resistance - band) & (c < o) & (c <= resistance)
        defined = np.isfinite(support) & np.isfinite(resistance) & np.isfinite(band) & np.isfinite(o) & np.isfinite(c)
        return sign_or_wait(buy, sell, defined)
