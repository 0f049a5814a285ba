"""MACD histogram momentum."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import ema, sign_or_wait


@register_engine
class MacdMomentum(BaseEngine):
    """Momentum on the MACD histogram: the MACD line is the fast EMA of the close minus the slow EMA, the
    signal line is an EMA of the MACD line, and the histogram (line minus signal) is positive while the trend
    is accelerating upward and negative while it accelerates downward. The engine buys when the histogram,
    as a fraction of the close, is above ``band``, sells when it is below ``-band``, and waits inside that
    dead zone (a steady trend, or a flat market, has a histogram near 0). Parameters: ``fast``, ``slow`` and
    ``signal`` EMA spans in bars, ``band`` the dead zone relative to price (0.001 = 10 bps)."""

    name = "macd_momentum"
    family = "trend"
    defaults: ClassVar[Mapping[str, Any]] = {"fast": 12, "slow": 26, "signal": 9, "band": 0.001}

    def warmup_bars(self, bar_minutes: int) -> int:
        return max(int(self.params["fast"]), int(self.params["slow"])) + int(self.params["signal"])

    def directions(self, inp: EngineInput) -> np.ndarray:
        close = inp.np("close")
        line = ema(close, int(self.params["fast"])) - ema(close, int(self.params["slow"]))
        hist = line - ema(line, int(self.params["signal"]))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = hist / close
        band = float(self.params["band"])
        return sign_or_wait(rel > band, rel < -band, np.isfinite(rel))
