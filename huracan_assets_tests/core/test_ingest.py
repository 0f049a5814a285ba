"""Ingestion semantics with known answers: watermark, late bars, quality verdicts."""

import polars as pl

from huracan_assets.core.market_data.cleaning import CleaningPolicy, clean_candles
from huracan_assets.core.market_data.ingest import QualityThresholds, assess, first_missing_ts, merge_bars

H = 3_600_000
DAY = 86_400_000


def bars(hours, close=100.0, volume=1.0):
    n = len(hours)
    return pl.DataFrame(
        {
            "ts": [h * H for h in hours],
            "open": [close] * n,
            "high": [close * 1.001] * n,
            "low": [close * 0.999] * n,
            "close": [close] * n,
            "volume": [volume] * n,
        }
    )


def test_first_missing_bar_is_the_watermark():
    assert first_missing_ts(None, 0, DAY, H) == 0
    assert first_missing_ts(bars(range(10)), 0, DAY, H) == 10 * H
    assert first_missing_ts(bars([0, 1, 3]), 0, DAY, H) == 2 * H  # an interior hole is fetched again
    assert first_missing_ts(bars(range(24)), 0, DAY, H) is None


def test_late_bars_overwrite_older_copies_by_timestamp():
    old = bars(range(6), close=100.0)
    late = bars([4, 5, 6], close=101.0)
    merged = merge_bars(old, late)
    assert merged["ts"].to_list() == [h * H for h in range(7)]
    assert merged["close"].to_list() == [100.0] * 4 + [101.0] * 3


def test_assess_completeness_freshness_and_thin_books():
    t = QualityThresholds(min_completeness=0.5, max_lag_bars=1, max_spread_bps=50, max_zero_volume_share=0.25)
    policy = CleaningPolicy(bar_minutes=60)
    full, report = clean_candles(bars(range(24)), 0, DAY, policy)
    verdict = assess(full, report, DAY, H, t)
    assert verdict.status == "ok" and verdict.detail["lag_bars"] == 0 and not verdict.detail["thin_book"]

    part, report = clean_candles(bars(range(10)), 0, DAY, policy)
    verdict = assess(part, report, DAY, H, t)
    assert verdict.status == "failed" and verdict.reason == "incomplete: 10/24 bars (< 50%)"
    assert verdict.detail["lag_bars"] == 14 and verdict.detail["gaps"] == 1

    quiet = pl.concat([bars(range(12)), bars(range(12, 24), volume=0.0)])
    quiet, report = clean_candles(quiet, 0, DAY, policy)
    verdict = assess(quiet, report, DAY, H, t)
    assert verdict.status == "ok" and verdict.detail["thin_book"] and verdict.detail["zero_volume_share"] == 0.5
