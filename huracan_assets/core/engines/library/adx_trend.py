"""ADX trend: follow the dominant directional movement when the trend is strong."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, sign_or_wait, wilder


def wilder_dmi(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilder's +DI, -DI (0 when the smoothed true range is 0) and ADX (DX = 0 when +DI + -DI = 0), recursive."""
    prev_close = lag(close, 1)
    up, down = high - lag(high, 1), lag(low, 1) - low
    defined = np.isfinite(up) & np.isfinite(down) & np.isfinite(prev_close)
    plus_dm = np.where(defined, np.where((up > down) & (up > 0.0), up, 0.0), np.nan)
    minus_dm = np.where(defined, np.where((down > up) & (down > 0.0), down, 0.0), np.nan)
    tr = np.fmax(high - low, np.fmax(np.abs(high - prev_close), np.abs(low - prev_close)))
    tr = np.where(defined, tr, np.nan)
    atr, plus_s, minus_s = wilder(tr, period), wilder(plus_dm, period), wilder(minus_dm, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        plus_di = np.where(atr > 0.0, 100.0 * plus_s / atr, np.where(np.isfinite(atr), 0.0, np.nan))
        minus_di = np.where(atr > 0.0, 100.0 * minus_s / atr, np.where(np.isfinite(atr), 0.0, np.nan))
        total = plus_di + minus_di
        dx = np.where(
            total > 0.0, 100.0 * np.abs(plus_di - minus_di) / total, np.where(np.isfinite(total), 0.0, np.nan)
        )
    return plus_di, minus_di, wilder(dx, period)


@register_engine
class AdxTrend(BaseEngine):
    """Trend following on Wilder's directional movement index. +DI and -DI measure how much of the recent
    true range was upward versus downward movement; ADX, the smoothed spread between them, measures how
    strong (not which way) the trend is. When ADX is above ``threshold`` the engine trades in the direction of
    the larger DI (+DI above -DI buys, below sells); in a weak or directionless market (ADX at or below the
    threshold) it waits. Parameters: ``period`` the Wilder smoothing period in bars (used for the true range,
    the directional movements and ADX itself), ``threshold`` the ADX level (0..100) a trend must exceed."""

    name = "adx_trend"
    family = "trend"
    defaults: ClassVar[Mapping[str, Any]] = {"period": 14, "threshold": 25.0}

    def warmup_bars(self, bar_minutes: int) -> int:
        return 2 * int(self.params["period"])

    def directions(self, inp: EngineInput) -> np.ndarray:
        plus_di, minus_di, adx = wilder_dmi(inp.np("high"), inp.np("low"), inp.np("close"), int(self.params["period"]))
        strong = adx > float(self.params["threshold"])
        defined = np.isfinite(adx) & np.isfinite(plus_di) & np.isfinite(minus_di)
        return sign_or_wait(strong & (plus_di > minus_di), strong & (minus_di > plus_di), defined)
