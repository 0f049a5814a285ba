"""Volatility-regime switch between trend and reversion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, log_returns, rolling_std, sign_or_wait


@register_engine
class VolRegimeSwitch(BaseEngine):
    """Trend in calm markets, reversion in turbulent ones. The regime compares short volatility (sample std
    of 1-bar log returns over ``short`` bars) with long volatility (over ``long`` bars): below ``low_ratio`` ×
    long it is calm, above ``high_ratio`` × long turbulent, in between undecided (wait). The signal is the
    trailing ``lookback``-bar log return in units of long volatility scaled to that horizon
    (ret / (long_vol × sqrt(lookback))); when its size exceeds ``z_min`` the engine follows it in a calm
    regime (buy after a rise) and fades it in a turbulent one (sell after a rise); otherwise it waits, and so it
    does when the long volatility is zero."""

    name = "vol_regime_switch"
    family = "volatility"
    defaults: ClassVar[Mapping[str, Any]] = {
        "short": 24,
        "long": 168,
        "lookback": 24,
        "z_min": 0.5,
        "low_ratio": 0.9,
        "high_ratio": 1.1,
    }

    def warmup_bars(self, bar_minutes: int) -> int:
        p = self.params
        return max(int(p["long"]), int(p["short"]), int(p["lookback"])) + 1

    def directions(self, inp: EngineInput) -> np.ndarray:
        p = self.params
        c = inp.np("close")
        r = log_returns(c)
        short_vol, long_vol = rolling_std(r, int(p["short"])), rolling_std(r, int(p["long"]))
        k = int(p["lookback"])
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = np.log(c / lag(c, k))
            z = np.where(long_vol > 0, ret / (long_vol * np.sqrt(k)), 0.0)
        calm = short_vol < p["low_ratio"] * long_vol
        wild = short_vol > p["high_ratio"] * long_vol
        up, down = z > p["z_min"], z < -p["z_min"]
        defined = np.isfinite(short_vol) & np.isfinite(long_vol) & np.isfinite(ret)
        return sign_or_wait((calm & up) | (wild & down), (calm & down) | (wild & up), defined)
