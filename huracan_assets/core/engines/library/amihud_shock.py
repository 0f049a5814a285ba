"""Amihud illiquidity shock reversal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, log_returns, rolling_std


@register_engine
class AmihudShock(BaseEngine):
    """Fade moves made on thin liquidity. Amihud illiquidity of a bar is |log return| / quote volume (volume ×
    close): how far the price moved per unit of money traded. When a bar's illiquidity exceeds ``mult`` times
    its median over the previous ``window`` bars, and its move is also large (|return| above ``min_z`` times
    the std of 1-bar log returns over those previous bars), the move was pushed through an empty book and
    tends to revert: the engine trades against it (sell after an up bar, buy after a down bar). Otherwise it
    waits. A bar with a move but no volume has infinite illiquidity (a shock); a bar without a move has zero.
    Parameters: ``window`` bars of the trailing median and std, ``mult`` the spike multiple, ``min_z`` the
    move filter."""

    name = "amihud_shock"
    family = "volume"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 168, "mult": 3.0, "min_z": 1.0}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["window"]) + 2

    def directions(self, inp: EngineInput) -> np.ndarray:
        p = self.params
        w = int(p["window"])
        close, volume = inp.np("close"), inp.np("volume")
        r = log_returns(close)
        quote = volume * close
        move = np.abs(r)
        with np.errstate(divide="ignore", invalid="ignore"):
            illiq = np.where(move == 0, 0.0, np.where(quote > 0, move / quote, np.inf))
        illiq = np.where(np.isfinite(r) & np.isfinite(quote), illiq, np.nan)
        median = lag(pl.Series(illiq).fill_nan(None).rolling_median(w).to_numpy().astype(np.float64), 1)
        vol = lag(rolling_std(r, w), 1)
        shock = (illiq > p["mult"] * median) & (move > p["min_z"] * vol)
        out = np.where(shock, -np.sign(r), 0.0)
        defined = np.isfinite(median) & np.isfinite(vol) & np.isfinite(illiq)
        return np.where(defined, out, np.nan)
