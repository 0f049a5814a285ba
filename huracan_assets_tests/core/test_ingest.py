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
    t = QualityThresholds(
        min_completeness=0.5, max_lag_bars=1, max_spread_bps=50, max_zero_volume_share=0.25, min_day_quote_volume=1000
    )
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


def test_little_traded_value_is_a_thin_book_but_volatility_alone_is_not():
    t = QualityThresholds(min_day_quote_volume=1_000_000, max_spread_bps=300)
    policy = CleaningPolicy(bar_minutes=60)
    small, report = clean_candles(bars(range(24), volume=10.0), 0, DAY, policy)  # 24 x 100 x 10 = 24,000 traded
    assert assess(small, report, DAY, H, t).detail["thin_book"]
    # a volatile but heavily traded day: 2% high-low ranges every hour, 2.4e9 traded
    wild = bars(range(24), volume=1e6).with_columns(high=pl.col("close") * 1.01, low=pl.col("close") * 0.99)
    wild, report = clean_candles(wild, 0, DAY, policy)
    verdict = assess(wild, report, DAY, H, t)
    assert not verdict.detail["thin_book"] and verdict.detail["quote_volume"] == 2.4e9
