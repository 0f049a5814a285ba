"""Stochastic oscillator in ranging markets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import (
    lag,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_sum,
    sign_or_wait,
)


@register_engine
class RangeStochastic(BaseEngine):
    """Mean reversion with the stochastic oscillator, switched on only while the market ranges. %K is where
    the close sits in the ``k_window``-bar high-low range (0 at the low, 100 at the high; 50 if the range is
    flat), averaged over ``smooth`` bars (slow %K). The market ranges when Kaufman's efficiency ratio over
    ``er_window`` bars (net close change / sum of absolute bar-to-bar changes, 0 = pure chop, 1 = straight
    line; 0 when nothing moved) is below ``er_max``. In a range, %K below ``oversold`` buys and above
    ``overbought`` sells; in a trend, and in the middle of the range, the engine waits."""

    name = "range_stochastic"
    family = "reversion"
    defaults: ClassVar[Mapping[str, Any]] = {
        "k_window": 14,
        "smooth": 3,
        "er_window": 20,
        "er_max": 0.3,
        "oversold": 20.0,
        "overbought": 80.0,
    }

    def warmup_bars(self, bar_minutes: int) -> int:
        p = self.params
        return max(int(p["k_window"]) + int(p["smooth"]) - 1, int(p["er_window"]) + 1)

    def directions(self, inp: EngineInput) -> np.ndarray:
        p = self.params
        h, lo, c = inp.np("high"), inp.np("low"), inp.np("close")
        hh, ll = rolling_max(h, int(p["k_window"])), rolling_min(lo, int(p["k_window"]))
        span = hh - ll
        with np.errstate(divide="ignore", invalid="ignore"):
            raw_k = np.where(span > 0, 100.0 * (c - ll) / span, np.where(np.isfinite(span), 50.0, np.nan))
        k = rolling_mean(raw_k, int(p["smooth"]))
        m = int(p["er_window"])
        path = rolling_sum(np.abs(c - lag(c, 1)), m)
        net = np.abs(c - lag(c, m))
        with np.errstate(divide="ignore", invalid="ignore"):
            er = np.where(path > 0, net / path, np.where(np.isfinite(path), 0.0, np.nan))
        ranging = er < p["er_max"]
        return sign_or_wait(ranging & (k < p["oversold"]), ranging & (k > p["overbought"]), np.isfinite(k + er))
