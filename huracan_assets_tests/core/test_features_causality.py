"""Leakage canaries for the first features: a truncated future changes nothing; an injected leak is caught."""

from datetime import date

import polars as pl

from huracan_assets.core.features.basic import BASIC_FEATURES, basic_features
from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets.exchange.files import FilesExchange

DAY = date(2024, 3, 8)


def _window(test_data_dir, symbol="ETHUSDT"):
    start, end = day_bounds_ms(DAY)
    return FilesExchange(test_data_dir, "1h").fetch_ohlcv(symbol, start - 3 * 86_400_000, end + 3 * 86_400_000)


def _truncation_changes_past(fn, frame, start, end) -> bool:
    """True when features of bars before a cut change once the bars after the cut are removed."""
    full = fn(frame, start, end)
    for cut_hour in (6, 12, 18):
        cut = start + cut_hour * 3_600_000
        truncated = fn(frame.filter(pl.col("ts") < cut), start, end)
        if not full.filter(pl.col("ts") < cut).equals(truncated):
            return True
    return False


def test_features_cover_exactly_the_day(test_data_dir):
    start, end = day_bounds_ms(DAY)
    out = basic_features(_window(test_data_dir), start, end)
    assert out.height == 24
    assert out["ts"].min() == start and out["ts"].max() == end - 3_600_000
    assert out.select(BASIC_FEATURES).null_count().sum_horizontal().item() == 0  # 3 warm-up days suffice


def test_truncated_future_leaves_features_unchanged(test_data_dir):
    start, end = day_bounds_ms(DAY)
    assert not _truncation_changes_past(basic_features, _window(test_data_dir), start, end)


def test_canary_catches_an_injected_leak(test_data_dir):
    start, end = day_bounds_ms(DAY)

    def leaky(frame, lo, hi):
        out = basic_features(frame, lo, hi)
        nxt = frame.sort("ts").with_columns(peek=pl.col("close").shift(-1)).select("ts", "peek")
        return out.join(nxt, on="ts", how="left")

    assert _truncation_changes_past(leaky, _window(test_data_dir), start, end)
