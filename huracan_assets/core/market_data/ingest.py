"""Ingestion semantics for one (symbol, day), as pure functions.

- ``first_missing_ts``: a partial day already stored is completed by fetching only from its first
  missing bar on;
- ``merge_bars``: late bars overwrite older copies by timestamp (the newer fetch wins);
- ``assess``: quality numbers of the cleaned day against thresholds (completeness, freshness against
  the end of the partition day, OHLC sanity, thin-book flag) and the verdict for the key.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from huracan_assets.core.market_data.cleaning import CleaningReport
from huracan_assets.core.market_data.universe import spread_estimate_bps


def first_missing_ts(existing: pl.DataFrame | None, start_ms: int, end_ms: int, bar_ms: int) -> int | None:
    """Open time of the first bar of ``[start_ms, end_ms)`` not in ``existing``; None if complete."""
    if existing is None or existing.is_empty():
        return start_ms
    have = set(existing["ts"].to_list())
    for ts in range(start_ms, end_ms, bar_ms):
        if ts not in have:
            return ts
    return None


def merge_bars(existing: pl.DataFrame | None, fetched: pl.DataFrame) -> pl.DataFrame:
    """Union of both, one bar per timestamp; where both have a bar the fetched (newer) copy wins."""
    if existing is None or existing.is_empty():
        return fetched
    both = pl.concat([existing.select(fetched.columns), fetched], how="vertical_relaxed")
    return both.unique(subset="ts", keep="last", maintain_order=True).sort("ts")


@dataclass(frozen=True)
class QualityThresholds:
    min_completeness: float = 0.5
    warn_completeness: float = 0.99
    max_lag_bars: int = 1
    max_spread_bps: float = 300.0
    max_zero_volume_share: float = 0.25
    min_day_quote_volume: float = 2_000_000.0


@dataclass(frozen=True)
class Assessment:
    status: str  # ok | failed
    reason: str | None
    detail: dict


def assess(frame: pl.DataFrame, report: CleaningReport, end_ms: int, bar_ms: int, t: QualityThresholds) -> Assessment:
    """Quality of a cleaned day and whether the key may feed its downstream assets."""
    expected = max(report.expected_bars, 1)
    bars = frame.height
    completeness = bars / expected
    last_close = int(frame["ts"].max()) + bar_ms if bars else None
    lag_bars = (end_ms - last_close) // bar_ms if last_close is not None else expected
    real = frame.filter(pl.col("volume") > 0) if bars else frame
    zero_share = 1.0 - real.height / bars if bars else 1.0
    spread = spread_estimate_bps(frame) if bars >= 2 else float("nan")
    quote_volume = float((frame["close"] * frame["volume"]).sum()) if bars else 0.0
    # A thin book shows as little traded value or many no-trade bars. The Corwin-Schultz estimate is
    # dominated by volatility on bars of an hour or more (BTC's doubles on a crash day), so on its own
    # it flags only extreme values.
    thin = bool(
        zero_share > t.max_zero_volume_share
        or quote_volume < t.min_day_quote_volume
        or (spread == spread and spread > t.max_spread_bps)
    )
    detail = {
        **report.as_metadata(),
        "bars": bars,
        "completeness": round(completeness, 6),
        "lag_bars": int(lag_bars),
        "spread_bps": None if spread != spread else round(spread, 3),
        "zero_volume_share": round(zero_share, 6),
        "quote_volume": round(quote_volume, 2),
        "thin_book": thin,
        "ohlc_problems": report.ohlc_repaired + report.non_positive_dropped + report.nan_rows_dropped,
    }
    if completeness < t.min_completeness:
        return Assessment("failed", f"incomplete: {bars}/{expected} bars (< {t.min_completeness:.0%})", detail)
    return Assessment("ok", None, detail)
