"""A small causal feature set over candles: the first consumer of a date-window input.

Issue "Features" replaces this with the shared ``FeatureRecipe``. Every column at bar t uses
bars up to and including t only (trailing windows), so cutting the future never changes the past.
"""

from __future__ import annotations

import polars as pl

BASIC_FEATURES = ("log_ret_1", "ret_24", "vol_24", "range_pct", "volume_z_24")


def basic_features(candles: pl.DataFrame, start_ms: int, end_ms: int, window: int = 24) -> pl.DataFrame:
    """Features of the bars in ``[start_ms, end_ms)``, computed over the whole (warm-up + D) frame."""
    frame = candles.sort("ts")
    log_close = pl.col("close").log()
    out = frame.with_columns(
        log_ret_1=log_close.diff(),
        ret_24=log_close - log_close.shift(window),
        range_pct=(pl.col("high") - pl.col("low")) / pl.col("close"),
    ).with_columns(
        vol_24=pl.col("log_ret_1").rolling_std(window, min_samples=window),
        volume_z_24=(pl.col("volume") - pl.col("volume").rolling_mean(window, min_samples=window))
        / pl.col("volume").rolling_std(window, min_samples=window),
    )
    return out.filter((pl.col("ts") >= start_ms) & (pl.col("ts") < end_ms)).select(["ts", *BASIC_FEATURES])
