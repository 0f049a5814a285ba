"""Donchian channel breakout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import hold_events, lag, rolling_max, rolling_min, sign_or_wait


@register_engine
class DonchianBreakout(BaseEngine):
    """Channel breakout: the Donchian channel is the highest high and the lowest low of the ``window`` bars
    before the current one (the current bar is excluded, so a breakout is measured against a level that was
    known before the bar). A close above the prior channel high buys, a close below the prior channel low
    sells, anything inside waits. A breakout signal is then held for ``hold`` more bars (unless an opposite
    breakout replaces it) so the engine stays with the move's follow-through. Parameters: ``window`` the
    channel length in bars, ``hold`` the extra bars a breakout keeps its direction (0 = the breakout bar only)."""

    name = "donchian_breakout"
    family = "breakout"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 24, "hold": 3}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["window"])

    def directions(self, inp: EngineInput) -> np.ndarray:
        window = int(self.params["window"])
        close = inp.np("close")
        upper, lower = lag(rolling_max(inp.np("high"), window), 1), lag(rolling_min(inp.np("low"), window), 1)
        defined = np.isfinite(upper) & np.isfinite(lower) & np.isfinite(close)
        events = sign_or_wait(close > upper, close < lower, defined)
        return np.where(defined, hold_events(events, int(self.params["hold"])), np.nan)
