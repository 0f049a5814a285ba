"""Session opening-range breakout."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import polars as pl

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.market_data.candles import DAY_MS

MINUTE_MS = 60_000


@register_engine
class SessionOpenRangeBreakout(BaseEngine):
    """Opening-range breakout on the UTC day session. A session starts every day at ``session_offset_minutes``
    after 00:00 UTC and lasts 24 hours; the bars that open in its first ``range_minutes`` form the opening
    range (their highest high and lowest low), during which the engine waits. Afterwards a close above the
    range high buys and a close below the range low sells, and that direction is held (a later close through
    the other side flips it) until the session ends; before the first break it waits. Time-based on ``ts``:
    a missing bar is not counted. A session whose opening range is not fully in the frame (the frame starts
    after the session opened) or has no bar at all is not defined (NaN), so the warm-up is up to one day
    plus the range. Parameters: ``range_minutes`` length of the opening range, ``session_offset_minutes``
    session start after midnight UTC."""

    name = "session_open_range_breakout"
    family = "breakout"
    defaults: ClassVar[Mapping[str, Any]] = {"range_minutes": 120, "session_offset_minutes": 0}

    def warmup_bars(self, bar_minutes: int) -> int:
        return math.ceil((1440 + int(self.params["range_minutes"])) / bar_minutes)

    def directions(self, inp: EngineInput) -> np.ndarray:
        if inp.n == 0:
            return np.empty(0, dtype=np.float64)
        offset = int(self.params["session_offset_minutes"]) * MINUTE_MS
        range_ms = int(self.params["range_minutes"]) * MINUTE_MS
        ts = pl.col("ts")
        session = (ts - offset) // DAY_MS
        start = session * DAY_MS + offset
        in_range = ts < start + range_ms
        hi = pl.when(pl.col("in_range")).then(pl.col("high")).forward_fill().cum_max().over("s")
        lo = pl.when(pl.col("in_range")).then(pl.col("low")).forward_fill().cum_min().over("s")
        event = pl.when(pl.col("close") > pl.col("hi")).then(1.0).when(pl.col("close") < pl.col("lo")).then(-1.0)
        first_ts = inp.frame["ts"][0]
        out = (
            inp.frame.select("ts", "high", "low", "close")
            .with_columns(s=session, start=start, in_range=in_range)
            .with_columns(hi=hi, lo=lo)
            .with_columns(
                d=pl.when(pl.col("in_range")).then(0.0).otherwise(event.forward_fill().over("s").fill_null(0.0)),
                incomplete=(pl.col("start") < first_ts) | pl.col("hi").is_null() | pl.col("lo").is_null(),
            )
            .select(pl.when(pl.col("incomplete")).then(None).otherwise(pl.col("d")).alias("d"))
        )
        return out["d"].cast(pl.Float64).to_numpy().astype(np.float64)
