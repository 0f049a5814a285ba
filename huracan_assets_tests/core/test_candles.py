from datetime import date

import polars as pl
import pytest

from huracan_assets.core.market_data.candles import bars_per_day, day_bounds_ms, normalize_day
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


def test_normalize_keeps_only_aligned_bars_of_the_day_and_last_duplicate_wins():
    start, end = day_bounds_ms(DAY)
    frame = pl.concat(
        [
            _bars([start - H]),  # previous day
            _bars([start + 2 * H, start, start + H]),  # unsorted
            _bars([start + H], close=200.0),  # late duplicate: must win
            _bars([start + H + 60_000]),  # misaligned
            _bars([end]),  # next day
        ]
    )
    out, report = normalize_day(frame, DAY, 60)
    assert out["ts"].to_list() == [start, start + H, start + 2 * H]
    assert out.filter(pl.col("ts") == start + H)["close"].item() == 200.0
    assert report.duplicates_dropped == 1
    assert report.outside_day_dropped == 2
    assert report.misaligned_dropped == 1
    assert report.missing_bars == 21
    assert report.gaps == [(start + 3 * H, 21)]


def test_normalize_reports_interior_gaps_without_filling():
    start, _ = day_bounds_ms(DAY)
    hours = [h for h in range(24) if h not in (5, 6, 7, 20)]
    out, report = normalize_day(_bars([start + h * H for h in hours]), DAY, 60)
    assert out.height == 20
    assert report.gaps == [(start + 5 * H, 3), (start + 20 * H, 1)]


def test_normalize_rejects_frames_without_candle_columns():
    with pytest.raises(ValueError, match="lack columns"):
        normalize_day(pl.DataFrame({"ts": [1]}), DAY, 60)


def test_real_day_of_btc_is_complete_and_unchanged(test_data_dir):
    ex = FilesExchange(test_data_dir, "1h")
    raw = ex.fetch_ohlcv("BTCUSDT", *day_bounds_ms(DAY))
    out, report = normalize_day(raw, DAY, 60)
    assert report.rows_out == 24 and report.missing_bars == 0 and report.duplicates_dropped == 0
    assert out.equals(raw.sort("ts"))
    assert out.schema["ts"] == pl.Int64
