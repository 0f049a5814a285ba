"""RSI overbought / oversold reversal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, sign_or_wait, wilder


def wilder_rsi(close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's RSI (recursive smoothing of gains and losses), 50 when both averages are 0."""
    delta = close - lag(close, 1)  # NaN where a close is missing: np.maximum keeps it NaN, the smoothing skips it
    gains, losses = wilder(np.maximum(delta, 0.0), period), wilder(np.maximum(-delta, 0.0), period)
    total = gains + losses
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0.0, 100.0 * gains / total, np.where(np.isfinite(total), 50.0, np.nan))


@register_engine
class RsiReversal(BaseEngine):
    """Mean reversion on Wilder's relative strength index: RSI is the share (0..100) of the smoothed recent
    up-moves in the smoothed total movement of the close. After a run of losses it falls below ``oversold``
    and the engine buys, expecting a bounce; after a run of gains it rises above ``overbought`` and the engine
    sells; in between it waits. Parameters: ``period`` the Wilder smoothing period in bars, ``oversold`` and
    ``overbought`` the RSI levels that trigger a buy and a sell."""

    name = "rsi_reversal"
    family = "reversion"
    defaults: ClassVar[Mapping[str, Any]] = {"period": 14, "oversold": 30.0, "overbought": 70.0}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["period"]) + 1

    def directions(self, inp: EngineInput) -> np.ndarray:
        rsi = wilder_rsi(inp.np("close"), int(self.params["period"]))
        oversold, overbought = float(self.params["oversold"]), float(self.params["overbought"])
        return sign_or_wait(rsi < oversold, rsi > overbought, np.isfinite(rsi))
