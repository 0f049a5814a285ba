"""Liquidity-sweep reversal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, rolling_max, rolling_min


@register_engine
class LiquiditySweepReversal(BaseEngine):
    """Fade a stop run. The prior ``lookback`` bars' highest high and lowest low are where stops rest. A bar
    whose high pierces that high but which closes back below it swept the buy stops and failed: sell. A bar
    whose low pierces the prior low but which closes back above it: buy. A bar that sweeps both sides is
    ambiguous and waits. The signal is held for ``hold`` bars (the sweep bar included) unless a new sweep
    replaces it; otherwise the engine waits. Parameters: ``lookback`` bars of the prior range, ``hold`` bars
    the signal lasts."""

    name = "liquidity_sweep_reversal"
    family = "pattern"
    defaults: ClassVar[Mapping[str, Any]] = {"lookback": 24, "hold": 3}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["lookback"]) + 1

    def directions(self, inp: EngineInput) -> np.ndarray:
        h, lo, c = inp.np("high"), inp.np("low"), inp.np("close")
        n = int(self.params["lookback"])
        prior_high, prior_low = lag(rolling_max(h, n), 1), lag(rolling_min(lo, n), 1)
        sell = (h > prior_high) & (c < prior_high)
        buy = (lo < prior_low) & (c > prior_low)
        event = np.where(buy & ~sell, 1.0, np.where(sell & ~buy, -1.0, np.where(buy & sell, 0.0, np.nan)))
        hold = max(1, int(self.params["hold"]))
        held = pl.Series(event).fill_nan(None).fill_null(strategy="forward", limit=hold - 1).fill_null(0.0)
        out = held.to_numpy().astype(np.float64)
        defined = np.isfinite(prior_high) & np.isfinite(prior_low) & np.isfinite(c)
        return np.where(defined, out, np.nan)
