import shutil
from datetime import date

import polars as pl

from huracan_assets.core.market_data.candles import DAY_MS, day_bounds_ms
from huracan_assets.core.market_data.universe import rank_universe
from huracan_assets.exchange.files import FilesExchange


def _stats():
    return pl.DataFrame(
        {
            "symbol": ["AAAUSDT", "BBBUSDT", "CCCUSDT", "NEWUSDT"],
            "quote_volume": [10.0, 30.0, 20.0, 99.0],
            "first_bar_ts": [0, 0, 0, 10 * DAY_MS - DAY_MS // 2],
        }
    )


def test_rank_by_quote_volume_and_drop_young_coins():
    out = rank_universe(_stats(), as_of_end_ms=10 * DAY_MS, max_symbols=2, min_history_days=1)
    selected = out.filter("selected")["symbol"].to_list()
    assert selected == ["BBBUSDT", "CCCUSDT"]
    reasons = dict(zip(out["symbol"], out["reason"], strict=True))
    assert reasons["NEWUSDT"].startswith("history <")
    assert reasons["AAAUSDT"] == "below top 2"


def test_explicit_symbols_bypass_filters_but_must_be_listed():
    out = rank_universe(
        _stats(), as_of_end_ms=10 * DAY_MS, max_symbols=1, min_history_days=5, explicit=("NEWUSDT", "ZZZUSDT")
    )
    reasons = dict(zip(out["symbol"], out["reason"], strict=True))
    assert out.filter("selected")["symbol"].to_list() == ["NEWUSDT"]
    assert reasons["ZZZUSDT"] == "not listed as of D"


def test_listing_stats_know_nothing_after_the_as_of_instant(test_data_dir, tmp_path):
    """Changing bars after D must not change D's universe: no look-ahead, no survivorship."""
    day = date(2024, 3, 4)
    _, end = day_bounds_ms(day)
    before = FilesExchange(test_data_dir, "1h").listing_stats(end, 3 * DAY_MS)[0]
    assert "WIFUSDT" not in before["symbol"].to_list()  # WIF lists on 2024-03-05

    tampered = tmp_path / "1h"
    shutil.copytree(test_data_dir / "1h", tampered)
    path = tampered / "BTC_USDT.parquet"
    frame = pl.read_parquet(path)
    frame = frame.with_columns(
        volume=pl.when(pl.col("ts") >= end).then(pl.col("volume") * 1e6).otherwise(pl.col("volume"))
    )
    frame.write_parquet(path)
    after = FilesExchange(tmp_path, "1h").listing_stats(end, 3 * DAY_MS)[0]
    assert before.sort("symbol").equals(after.sort("symbol"))

    later = FilesExchange(tmp_path, "1h").listing_stats(end + DAY_MS, 3 * DAY_MS)[0]
    assert not before.sort("symbol").equals(later.filter(pl.col("symbol") != "WIFUSDT").sort("symbol"))
