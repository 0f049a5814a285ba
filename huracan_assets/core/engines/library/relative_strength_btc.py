"""Relative strength against BTC."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, log_returns, rolling_std, sign_or_wait


@register_engine
class RelativeStrengthBtc(BaseEngine):
    """Follow relative strength against the reference coin (BTC). The spread is the coin's ``lookback``-bar
    log return minus the reference's over the same bars. It is measured in units of the spread's trailing
    volatility: the sample std of the 1-bar return differences over ``vol_window`` bars, scaled by
    sqrt(``lookback``). A spread above ``threshold`` of those units (the coin clearly outperforms) buys, below
    minus ``threshold`` sells, in between waits; a spread with zero volatility (BTC against itself, whose
    spread is always 0) waits. Where the reference close is null anywhere in the windows the engine is not
    defined (NaN)."""

    name = "relative_strength_btc"
    family = "cross_asset"
    defaults: ClassVar[Mapping[str, Any]] = {"lookback": 24, "vol_window": 168, "threshold": 1.0}

    def warmup_bars(self, bar_minutes: int) -> int:
        return max(int(self.params["lookback"]), int(self.params["vol_window"])) + 1

    def directions(self, inp: EngineInput) -> np.ndarray:
        p = self.params
        c, ref = inp.np("close"), inp.np("ref_close")
        k = int(p["lookback"])
        diff = log_returns(c) - log_returns(ref)
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.log(c / lag(c, k)) - np.log(ref / lag(ref, k))
        scale = rolling_std(diff, int(p["vol_window"])) * np.sqrt(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(scale > 0, spread / scale, 0.0)
        t = p["threshold"]
        return sign_or_wait(z > t, z < -t, np.isfinite(spread) & np.isfinite(scale))
