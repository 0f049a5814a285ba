"""EMA-cross trend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import ema, sign_or_wait


@register_engine
class EmaCross(BaseEngine):
    """Trend following on two exponential moving averages of the close. When the fast EMA is above the
    slow one by more than ``band`` (a fraction of the slow EMA) the trend is up and the engine buys; below by
    more than ``band`` it sells; inside the band it waits, so a flat market does not flip the signal every
    bar. Parameters: ``fast`` and ``slow`` spans in bars, ``band`` the dead zone (0.001 = 10 bps)."""

    name = "ema_cross"
    family = "trend"
    defaults: ClassVar[Mapping[str, Any]] = {"fast": 12, "slow": 48, "band": 0.001}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["slow"])

    def directions(self, inp: EngineInput) -> np.ndarray:
        close = inp.np("close")
        fast, slow = ema(close, self.params["fast"]), ema(close, self.params["slow"])
        gap = fast / slow - 1.0
        band = self.params["band"]
        return sign_or_wait(gap > band, gap < -band, np.isfinite(gap))
