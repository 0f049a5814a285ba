"""Classic reversal candle patterns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, sign_or_wait


@register_engine
class CandlePattern(BaseEngine):
    """Four reversal candles, read at the bar's close. Bullish engulfing: a bearish bar followed by a bullish
    bar whose body covers the previous body (opens at or below its close, closes at or above its open, and is
    larger); bearish engulfing is the mirror. Hammer: a lower wick of at least ``wick_frac`` of the bar's range
    and an upper wick of at most ``tail_frac`` of it (buyers rejected the lows); shooting star is the mirror.
    Reversal patterns only mean something after a move, so bullish patterns count only when the previous
    close is below the close ``context_bars`` earlier (a decline) and bearish ones only after a rise
    (``context_bars`` = 0 drops that filter). A bullish pattern buys, a bearish one sells, both or neither
    waits. Parameters: ``wick_frac``, ``tail_frac`` (fractions of the high-low range), ``context_bars``."""

    name = "candle_pattern"
    family = "pattern"
    defaults: ClassVar[Mapping[str, Any]] = {"wick_frac": 0.6, "tail_frac": 0.15, "context_bars": 5}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["context_bars"]) + 2

    def directions(self, inp: EngineInput) -> np.ndarray:
        p = self.params
        o, h, lo, c = inp.np("open"), inp.np("high"), inp.np("low"), inp.np("close")
        o1, c1 = lag(o, 1), lag(c, 1)
        body, body1 = np.abs(c - o), np.abs(c1 - o1)
        bull_engulf = (c1 < o1) & (c > o) & (o <= c1) & (c >= o1) & (body > body1)
        bear_engulf = (c1 > o1) & (c < o) & (o >= c1) & (c <= o1) & (body > body1)
        rng = h - lo
        upper, lower = h - np.maximum(o, c), np.minimum(o, c) - lo
        hammer = (rng > 0) & (lower >= p["wick_frac"] * rng) & (upper <= p["tail_frac"] * rng)
        star = (rng > 0) & (upper >= p["wick_frac"] * rng) & (lower <= p["tail_frac"] * rng)
        m = int(p["context_bars"])
        if m > 0:
            before = lag(c1, m)
            fell, rose = c1 < before, c1 > before
            defined = np.isfinite(before)
        else:
            fell = rose = np.ones(inp.n, dtype=bool)
            defined = np.isfinite(c1)
        bull = (bull_engulf | hammer) & fell
        bear = (bear_engulf | star) & rose
        return sign_or_wait(bull, bear, defined & np.isfinite(o + h + lo + c))
