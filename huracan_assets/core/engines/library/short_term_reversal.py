"""Short-term reversal of an extreme move."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, log_returns, rolling_std, sign_or_wait


@register_engine
class ShortTermReversal(BaseEngine):
    """Short-term reversal: an unusually sharp move over the last few bars tends to be partly given back
    (liquidity-driven overshoots). The engine z-scores the log return of the last ``lookback`` bars by the
    volatility measured before the move (the sample std of 1-bar log returns over the ``vol_window`` bars
    ending ``lookback`` bars ago, scaled by sqrt(``lookback``)), so the move does not dilute its own yardstick.
    A z-score above ``z`` sells (fade the spike up), below ``-z`` buys (fade the drop), otherwise it waits.
    Parameters: ``lookback`` the move length in bars, ``vol_window`` the volatility window in bars, ``z`` the
    extreme threshold in standard deviations."""

    name = "short_term_reversal"
    family = "reversion"
    defaults: ClassVar[Mapping[str, Any]] = {"lookback": 3, "vol_window": 72, "z": 2.5}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["vol_window"]) + int(self.params["lookback"])

    def directions(self, inp: EngineInput) -> np.ndarray:
        lookback = int(self.params["lookback"])
        close = inp.np("close")
        with np.errstate(divide="ignore", invalid="ignore"):
            move = np.log(close / lag(close, lookback))
        vol = lag(rolling_std(log_returns(close), int(self.params["vol_window"])), lookback)
        threshold = float(self.params["z"]) * vol * np.sqrt(lookback)
        defined = np.isfinite(move) & np.isfinite(threshold)
        return sign_or_wait(move < -threshold, move > threshold, defined)
