from datetime import date

import polars as pl

from huracan_assets.core.market_data.candles import bars_per_day, day_bounds_ms
from huracan_assets.core.market_data.cleaning import CleaningPolicy, clean_candles
from huracan_assets.exchange.files import FilesExchange

DAY = date(2024, 3, 2)
H = 3_600_000


def _bars(ts_list, close=100.0):
    return pl.DataFrame(
        {
            "ts": ts_list,
            "open": [close] * len(ts_list),
            "high": [close + 1] * len(ts_list),
            "low": [close - 1] * len(ts_list),
            "close": [close] * len(ts_list),
            "volume": [1.0] * len(ts_list),
        }
    )


def test_day_bounds_are_utc_midnights():
    start, end = day_bounds_ms(DAY)
    assert start == 1709337600000  # 2024-03-02T00:00:00Z
    assert end - start == 86_400_000
    assert bars_per_day(60) == 24 and bars_per_day(5) == 288


def test_real_day_of_btc_is_complete_and_unchanged(test_data_dir):
    ex = FilesExchange(test_data_dir, "1h")
    raw = ex.fetch_ohlcv("BTCUSDT", *day_bounds_ms(DAY))
    out, report = clean_candles(raw, *day_bounds_ms(DAY), CleaningPolicy(bar_minutes=60))
    assert report.rows_out == 24 and report.missing_bars == 0 and not report.changed
    assert out.equals(raw.sort("ts"))
    assert out.schema["ts"] == pl.Int64
