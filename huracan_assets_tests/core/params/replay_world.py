"""A coin's replay inputs from real candles, shared by the replay tests and its benchmark: bars with constant
round-trip costs and a stand-in model's probability (a logistic of the last 3-bar return: causal, like a model's),
and the real regime classifier's regimes of the same candles."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from huracan_assets.core.regime.classifier import classify_rules

REPLAY_1H = Path(__file__).resolve().parents[2] / "data" / "replay_long" / "1h"


def coin_world(path: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(bars, regimes)``: the replay's bar columns and ``p``; ``ts``, ``regime``, ``efficiency_ratio``."""
    candles = pl.read_parquet(path).sort("ts")
    ts = candles["ts"] if candles.schema["ts"].is_integer() else candles["ts"].dt.epoch("ms")
    candles = candles.with_columns(ts=ts.cast(pl.Int64))
    mom = pl.col("close").log().diff(3)
    bars = candles.select(
        "ts", "open", "high", "low", "close",
        fee_bps=pl.lit(20.0), spread_bps=pl.lit(4.0) + (pl.col("high") / pl.col("low") - 1.0) * 50.0,
        slippage_bps=pl.lit(2.0), combined_raw_direction=pl.lit(0.0), p=1.0 / (1.0 + (-mom * 300.0).exp()),
    )  # fmt: skip
    return bars, classify_rules(candles).select("ts", "regime", "efficiency_ratio")
