import shutil
from datetime import date, timedelta

import polars as pl
import pytest

from huracan_assets.core.market_data.candles import DAY_MS, day_bounds_ms
from huracan_assets.core.market_data.universe import (
    UniverseRules,
    parse_selector,
    rank_universe,
    spread_estimate_bps,
)
from huracan_assets.defs.market_data import universe_of_day
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
    out = rank_universe(_stats(), as_of_end_ms=10 * DAY_MS, rules=UniverseRules(max_symbols=2, min_history_days=1))
    selected = out.filter("selected")["symbol"].to_list()
    assert selected == ["BBBUSDT", "CCCUSDT"]
    reasons = dict(zip(out["symbol"], out["reason"], strict=True))
    assert reasons["NEWUSDT"].startswith("history <")
    assert reasons["AAAUSDT"] == "below top 2"


def test_explicit_symbols_bypass_filters_but_must_be_listed():
    out = rank_universe(
        _stats(),
        as_of_end_ms=10 * DAY_MS,
        rules=UniverseRules(max_symbols=1, min_history_days=5),
        explicit=("NEWUSDT", "ZZZUSDT"),
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


def _scaled_copy(src, dst, symbol_file: str, lo_ms: int, hi_ms: int, factor: float):
    """``src`` copied to ``dst`` with one coin's volume multiplied by ``factor`` on the bars of ``[lo_ms, hi_ms)``."""
    shutil.copytree(src / "1h", dst / "1h")
    path = dst / "1h" / symbol_file
    frame = pl.read_parquet(path)
    inside = (pl.col("ts") >= lo_ms) & (pl.col("ts") < hi_ms)
    frame.with_columns(
        volume=pl.when(inside).then(pl.col("volume") * factor).otherwise(pl.col("volume"))
    ).write_parquet(path)
    return dst


def test_the_ranking_of_d_reads_the_days_before_d_never_d_itself(test_data_dir, tmp_path):
    """D's ranking is built on bars up to the end of D-1: a millionfold volume on D leaves the whole universe of D
    unchanged; the same on D-1 lifts the coin to the top."""
    day, rules = date(2024, 3, 8), UniverseRules(max_symbols=5, min_history_days=1)
    start, end = day_bounds_ms(day)
    base, _ = universe_of_day(FilesExchange(test_data_dir, "1h"), day, 3, rules)
    last = base.sort("rank")["symbol"][-1]  # the least liquid coin of the three days before D
    assert base.height == 24 and last not in base.filter("selected")["symbol"].to_list()
    file = f"{last.removesuffix('USDT')}_USDT.parquet"

    on_d = _scaled_copy(test_data_dir, tmp_path / "d", file, start, end, 1e6)
    same, _ = universe_of_day(FilesExchange(on_d, "1h"), day, 3, rules)
    assert same.equals(base)

    on_d_minus_1 = _scaled_copy(test_data_dir, tmp_path / "d-1", file, start - DAY_MS, start, 1e6)
    moved, _ = universe_of_day(FilesExchange(on_d_minus_1, "1h"), day, 3, rules)
    assert moved.filter(pl.col("symbol") == last)["rank"].item() == 1
    assert last in moved.filter("selected")["symbol"].to_list()


def test_a_coin_is_in_the_universe_of_the_days_it_traded_and_not_after(test_data_dir, tmp_path):
    """DOGE's data end on 2024-03-09 at 12:00 (a delisting): its last day is in the universe, the next is not."""
    shutil.copytree(test_data_dir / "1h", tmp_path / "1h")
    last_day = date(2024, 3, 9)
    path = tmp_path / "1h" / "DOGE_USDT.parquet"
    pl.read_parquet(path).filter(pl.col("ts") < day_bounds_ms(last_day)[0] + 12 * 3_600_000).write_parquet(path)
    ex, rules = FilesExchange(tmp_path, "1h"), UniverseRules(min_history_days=1)
    members = {}
    for offset in (-1, 0, 1, 2):
        day = last_day + timedelta(days=offset)
        members[offset] = universe_of_day(ex, day, 3, rules)[0].filter("selected")["symbol"].to_list()
    assert "DOGEUSDT" in members[-1] and "DOGEUSDT" in members[0]
    assert "DOGEUSDT" not in members[1] and "DOGEUSDT" not in members[2] and len(members[1]) == 23
    named = universe_of_day(ex, last_day + timedelta(days=1), 3, rules, explicit=("DOGEUSDT", "BTCUSDT"))[0]
    reasons = dict(zip(named["symbol"], named["reason"], strict=True))
    assert reasons["DOGEUSDT"] == "no bar on D (halted or delisted)" and reasons["BTCUSDT"] == "named explicitly"


def test_volume_and_spread_filters_and_no_hard_limit_on_n():
    n = 450
    stats = pl.DataFrame(
        {
            "symbol": [f"C{i:03d}USDT" for i in range(n)],
            "quote_volume": [float(i) for i in range(n)],
            "first_bar_ts": [0] * n,
            "spread_bps": [5.0] * (n - 1) + [500.0],
        }
    )
    out = rank_universe(
        stats, as_of_end_ms=30 * DAY_MS, rules=UniverseRules(max_symbols=420, min_quote_volume=10, max_spread_bps=100)
    )
    reasons = dict(zip(out["symbol"], out["reason"], strict=True))
    assert reasons["C449USDT"] == "spread > 100 bps"  # the most liquid by volume, but a thin book
    assert reasons["C003USDT"] == "quote volume < 10"
    assert out["selected"].sum() == 420
    assert out.filter("selected")["symbol"].to_list()[0] == "C448USDT"


def test_spread_estimator_on_known_bars():
    # two identical bars with a 1% range and no price move: beta = 2 ln(1.01)^2, gamma = ln(1.01)^2
    bars = pl.DataFrame({"ts": [0, 1], "high": [101.0, 101.0], "low": [100.0, 100.0]})
    import math

    hl = math.log(1.01) ** 2
    alpha = (math.sqrt(4 * hl) - math.sqrt(2 * hl)) / (3 - 2 * math.sqrt(2)) - math.sqrt(hl / (3 - 2 * math.sqrt(2)))
    expected = 2 * (math.exp(alpha) - 1) / (1 + math.exp(alpha)) * 1e4
    assert abs(spread_estimate_bps(bars) - max(expected, 0.0)) < 1e-9
    flat = pl.DataFrame({"ts": [0, 1, 2], "high": [1.0, 1.0, 1.0], "low": [1.0, 1.0, 1.0]})
    assert spread_estimate_bps(flat) == 0.0
    assert math.isnan(spread_estimate_bps(flat.head(1)))


def test_real_thin_fan_token_has_a_wider_estimated_spread_than_btc(test_data_dir):
    ex = FilesExchange(test_data_dir, "1h")
    end = day_bounds_ms(date(2024, 3, 14))[1]
    stats = ex.listing_stats(end, 7 * DAY_MS)[0]
    spread = dict(zip(stats["symbol"], stats["spread_bps"], strict=True))
    assert spread["JUVUSDT"] > 2 * spread["BTCUSDT"]


def test_selector_document():
    assert parse_selector({"symbols": ["btc/usdt", "ETHUSDT", "BTCUSDT"]}) == ("BTCUSDT", "ETHUSDT")
    assert parse_selector({"symbols": []}) is None
    assert parse_selector({}) is None
    for bad in ({"symbols": "BTCUSDT"}, {"symbols": [1]}, ["BTCUSDT"]):
        with pytest.raises(ValueError):
            parse_selector(bad)


def test_a_market_listed_after_d_is_in_the_universe_of_d_with_its_reason(test_data_dir, tmp_path):
    """A coin whose first bar comes after D is not a coin of D, and the universe says so (the daily summary shows
    it as skipped with that reason), rather than leaving it out without a word."""
    shutil.copytree(test_data_dir / "1h", tmp_path / "1h")
    listed = date(2024, 3, 10)
    path = tmp_path / "1h" / "SOL_USDT.parquet"
    pl.read_parquet(path).filter(pl.col("ts") >= day_bounds_ms(listed)[0]).write_parquet(path)
    ex, rules = FilesExchange(tmp_path, "1h"), UniverseRules(min_history_days=1)
    before = universe_of_day(ex, listed - timedelta(days=1), 3, rules)[0]
    reasons = dict(zip(before["symbol"], before["reason"], strict=True))
    assert reasons["SOLUSDT"] == "not listed as of D (its first bar is later)"
    assert not before.filter(pl.col("symbol") == "SOLUSDT")["selected"][0]
    assert before.filter("selected").height == 23 and before.height == 24
    on = dict(zip(*universe_of_day(ex, listed, 3, rules)[0].select("symbol", "reason"), strict=True))
    assert on["SOLUSDT"] == "top by quote volume"  # from its first day on, an ordinary coin of D
