"""Candle cleaning: crafted frames with known answers, then real Binance days (kept unchanged)."""

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from huracan_assets.core.market_data.candles import CANDLE_SCHEMA, date_range, day_bounds_ms
from huracan_assets.core.market_data.cleaning import (
    CANDLE_FRAME_SCHEMA,
    CleaningPolicy,
    CleaningReport,
    _invariants_hold,
    clean_candles,
    validate_candles,
)

DAY = date(2024, 3, 2)
START, END = day_bounds_ms(DAY)
H = 3_600_000
HOURLY = CleaningPolicy(bar_minutes=60)
SPECIAL = Path(__file__).resolve().parents[1] / "data" / "special"


def _bars(hours, close=None, volume=1.0) -> pl.DataFrame:
    """Hourly bars of DAY; close defaults to 100 + hour so every bar is distinguishable."""
    closes = [float(close if close is not None else 100 + h) for h in hours]
    return pl.DataFrame(
        {
            "ts": [START + h * H for h in hours],
            "open": closes,
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": [volume] * len(closes),
        },
        schema=CANDLE_SCHEMA,
    )


def _set(frame: pl.DataFrame, hour: int, **values) -> pl.DataFrame:
    at = pl.col("ts") == START + hour * H
    return frame.with_columns([pl.when(at).then(pl.lit(v)).otherwise(pl.col(c)).alias(c) for c, v in values.items()])


def _clean(frame, policy=HOURLY):
    return clean_candles(frame, START, END, policy)


# ------------------------------------------------------------------------------------- crafted frames


def test_a_clean_day_is_returned_unchanged():
    day = _bars(range(24))
    out, report = _clean(day)
    assert out.equals(day)
    assert not report.changed
    assert (report.rows_in, report.rows_out, report.expected_bars, report.missing_bars) == (24, 24, 24, 0)
    assert report.gaps == [] and report.suspect_jumps == []


def test_duplicates_last_copy_wins_and_is_counted():
    frame = pl.concat([_bars(range(24)), _bars([5], close=200.0), _bars([9], close=300.0), _bars([9], close=301.0)])
    out, report = _clean(frame)
    assert out["ts"].to_list() == [START + h * H for h in range(24)]
    assert out.filter(pl.col("ts") == START + 5 * H)["close"].item() == 200.0
    assert out.filter(pl.col("ts") == START + 9 * H)["close"].item() == 301.0
    assert report.duplicates_dropped == 3
    assert report.rows_out == 24 and report.changed


def test_unsorted_input_is_sorted_and_counted():
    day = _bars(range(24))
    out, report = _clean(day.reverse())
    assert out.equals(day)
    assert report.unsorted_fixed == 23  # every row after the first is earlier than its predecessor
    assert report.changed


def test_misaligned_and_outside_window_rows_are_dropped():
    frame = pl.concat(
        [
            _bars(range(24)),
            _bars([-1, 24]),  # previous day's last bar, next day's first bar
            _bars([3]).with_columns(pl.col("ts") + 60_000),  # 03:01, not on the hourly grid
        ]
    )
    out, report = _clean(frame)
    assert out.equals(_bars(range(24)))
    assert report.outside_window_dropped == 2
    assert report.misaligned_dropped == 1
    assert report.changed


def test_window_selection_alone_is_not_a_change():
    out, report = _clean(pl.concat([_bars([-2, -1]), _bars(range(24)), _bars([24])]))
    assert out.equals(_bars(range(24)))
    assert report.outside_window_dropped == 3
    assert not report.changed


def test_rows_with_nan_null_or_inf_are_dropped_and_leave_gaps():
    frame = _set(_bars(range(24)), 3, close=float("nan"))
    frame = _set(frame, 7, volume=None)
    frame = _set(frame, 8, high=float("inf"))
    frame = pl.concat([frame, _bars([10]).with_columns(pl.lit(None, pl.Int64).alias("ts"))])  # no timestamp
    out, report = _clean(frame)
    assert report.nan_rows_dropped == 4
    assert report.rows_out == 21
    assert report.gaps == [(START + 3 * H, 1), (START + 7 * H, 2)]
    assert report.missing_bars == 3
    assert validate_candles(out) == []


def test_non_positive_prices_and_negative_volume_are_dropped():
    frame = _set(_set(_bars(range(24)), 2, open=-5.0), 11, low=0.0)
    frame = _set(frame, 9, volume=-1.0)
    out, report = _clean(frame)
    assert report.non_positive_dropped == 3
    assert sorted(set(range(24)) - {(t - START) // H for t in out["ts"]}) == [2, 9, 11]
    with pytest.raises(ValueError, match="drop_non_positive=False"):
        _clean(frame, CleaningPolicy(bar_minutes=60, drop_non_positive=False))


def test_ohlc_violations_are_repaired_by_widening_high_and_low():
    frame = _set(_set(_bars(range(24)), 4, high=103.0), 6, low=107.0)  # close 104 > high; open 106 < low
    out, report = _clean(frame)
    assert report.ohlc_repaired == 2
    bar4 = out.filter(pl.col("ts") == START + 4 * H).row(0, named=True)
    bar6 = out.filter(pl.col("ts") == START + 6 * H).row(0, named=True)
    assert (bar4["open"], bar4["high"], bar4["low"], bar4["close"]) == (104.0, 104.0, 103.0, 104.0)
    assert (bar6["open"], bar6["high"], bar6["low"], bar6["close"]) == (106.0, 107.0, 106.0, 106.0)
    untouched = [h for h in range(24) if h not in (4, 6)]
    assert out.filter(pl.col("ts").is_in([START + h * H for h in untouched])).equals(_bars(untouched))
    assert report.changed
    with pytest.raises(ValueError, match="repair_ohlc=False"):
        _clean(frame, CleaningPolicy(bar_minutes=60, repair_ohlc=False))


def test_a_three_bar_gap_is_reported_and_left_with_policy_none():
    hours = [h for h in range(24) if h not in (5, 6, 7)]
    out, report = _clean(_bars(hours))
    assert out.equals(_bars(hours))
    assert report.gaps == [(START + 5 * H, 3)]
    assert (report.missing_bars, report.gap_bars_filled, report.rows_out) == (3, 0, 21)
    assert not report.changed


def test_a_three_bar_gap_is_filled_flat_at_the_previous_close_with_ffill_flat():
    hours = [h for h in range(24) if h not in (5, 6, 7)]
    policy = CleaningPolicy(bar_minutes=60, fill_gaps="ffill_flat", max_gap_fill_bars=3)
    out, report = _clean(_bars(hours), policy)
    assert out["ts"].to_list() == [START + h * H for h in range(24)]
    filled = out.filter(pl.col("ts").is_between(START + 5 * H, START + 7 * H))
    assert filled.drop("ts").rows() == [(104.0, 104.0, 104.0, 104.0, 0.0)] * 3  # bar 4 closed at 104
    assert out.filter(~pl.col("ts").is_between(START + 5 * H, START + 7 * H)).equals(_bars(hours))
    assert report.gaps == [(START + 5 * H, 3)]
    assert (report.missing_bars, report.gap_bars_filled, report.rows_out) == (3, 3, 24)
    assert report.zero_volume_bars == 0  # filled bars are counted as filled, not as real zero-volume bars
    assert report.changed


def test_only_short_interior_gaps_are_filled():
    # missing: 0-1 (window start), 5-9 (5 bars, too long), 14-15 (filled), 23 (window end)
    hours = [h for h in range(24) if h not in (0, 1, 5, 6, 7, 8, 9, 14, 15, 23)]
    policy = CleaningPolicy(bar_minutes=60, fill_gaps="ffill_flat", max_gap_fill_bars=3)
    out, report = _clean(_bars(hours), policy)
    assert report.gaps == [(START, 2), (START + 5 * H, 5), (START + 14 * H, 2), (START + 23 * H, 1)]
    assert report.missing_bars == 10
    assert report.gap_bars_filled == 2
    assert out.height == 16
    assert set(range(24)) - {(t - START) // H for t in out["ts"]} == {0, 1, 5, 6, 7, 8, 9, 23}
    assert out.filter(pl.col("volume") == 0)["close"].to_list() == [113.0, 113.0]


def test_an_empty_window_is_one_gap():
    out, report = _clean(_bars([-3, -2, -1]))
    assert out.schema == pl.Schema(CANDLE_SCHEMA) and out.height == 0
    assert report.gaps == [(START, 24)] and report.missing_bars == 24
    assert validate_candles(out) == []


def test_extreme_moves_are_flagged_but_kept_unchanged():
    closes = [100.0 * (1.005 if h % 2 else 1.0) for h in range(24)]  # +-0.5% noise
    closes[15:] = [c * 1.3 for c in closes[15:]]  # +30% at 15:00, then the same noise at the new level
    frame = pl.DataFrame(
        {
            "ts": [START + h * H for h in range(24)],
            "open": closes,
            "high": [c * 1.001 for c in closes],
            "low": [c * 0.999 for c in closes],
            "close": closes,
            "volume": [1.0] * 24,
        }
    )
    out, report = _clean(frame)
    assert report.suspect_jumps == [START + 15 * H]
    assert out.equals(frame) and not report.changed


def test_any_numeric_dtypes_are_cast_and_extra_columns_dropped():
    day = _bars(range(24))
    odd = day.with_columns(
        pl.col("ts").cast(pl.Float64),
        pl.col("open").cast(pl.Int32),
        pl.col("high").cast(pl.Float32),
        pl.col("low").cast(pl.String),  # numeric text is castable
        pl.col("volume").cast(pl.UInt8),
        pl.lit("x").alias("symbol"),
    )
    out, report = _clean(odd)
    assert out.schema == pl.Schema(CANDLE_SCHEMA)
    assert out.equals(day) and not report.changed


def test_missing_columns_raise_value_error():
    with pytest.raises(ValueError, match=r"lack columns \['low', 'volume'\]"):
        _clean(_bars(range(24)).drop("low", "volume"))


def test_garbage_text_in_a_price_column_raises_value_error():
    frame = _bars(range(24)).with_columns(pl.col("close").cast(pl.String))
    frame = frame.with_columns(
        pl.when(pl.col("ts") == START).then(pl.lit("n/a")).otherwise(pl.col("close")).alias("close")
    )
    with pytest.raises(ValueError, match="cannot be cast"):
        _clean(frame)


def test_fractional_timestamps_raise_value_error():
    with pytest.raises(ValueError, match="non-integral"):
        _clean(_bars(range(24)).with_columns(pl.col("ts").cast(pl.Float64) + 0.5))


def test_policy_rejects_unknown_values():
    with pytest.raises(ValueError, match="fill_gaps"):
        CleaningPolicy(bar_minutes=60, fill_gaps="interpolate")
    with pytest.raises(ValueError, match="bar_minutes"):
        CleaningPolicy(bar_minutes=0)


def test_report_metadata_is_scalar_counts():
    hours = [h for h in range(24) if h != 12]
    _, report = _clean(pl.concat([_bars(hours), _bars([3], close=50.0)]))
    meta = report.as_metadata()
    assert all(type(v) is int for v in meta.values())
    assert meta["duplicates_dropped"] == 1 and meta["missing_bars"] == 1 and meta["gaps"] == 1
    assert set(meta) >= {"rows_in", "rows_out", "expected_bars", "suspect_jumps", "gap_bars_filled"}
    assert not CleaningReport().changed


# ----------------------------------------------------------------------------------------- the schema


def test_validate_candles_reports_each_violation_of_a_bad_frame():
    bad = pl.DataFrame(
        {
            "ts": [START, START, START - H],  # duplicate, then decreasing
            "open": [100.0, float("nan"), 100.0],
            "high": [99.0, 101.0, 101.0],  # high < open
            "low": [99.0, 99.0, 99.0],
            "close": [100.0, 100.0, -1.0],  # non-positive
            "volume": [1.0, -2.0, 1.0],  # negative
        }
    )
    problems = validate_candles(bad)
    assert [p.split(" (")[0] for p in problems] == [
        "no_missing_values",
        "ts_unique_increasing",
        "positive_prices",
        "non_negative_volume",
        "ohlc_consistent",
    ]
    assert "ts unique and strictly increasing) violated by 2 row(s) [1, 2]" in problems[1]
    assert "high >= max(open, close) and low <= min(open, close)) violated by 2 row(s) [0, 2]" in problems[4]
    assert "column 'ts': dtype('Int64') failed, found Float64" in validate_candles(
        bad.with_columns(pl.col("ts").cast(pl.Float64))
    )
    assert "missing column: volume" in validate_candles(bad.drop("volume"))
    assert "unexpected column: symbol" in validate_candles(bad.with_columns(symbol=pl.lit("BTC")))
    assert validate_candles("not a frame") == ["expected a polars DataFrame, got str"]


def test_validate_candles_accepts_a_clean_frame():
    assert validate_candles(_bars(range(24))) == []
    CANDLE_FRAME_SCHEMA.validate(_bars(range(24)))


@pytest.mark.parametrize(
    "defect",
    [
        lambda f: _set(f, 3, close=float("nan")),
        lambda f: _set(f, 3, volume=None),
        lambda f: _set(f, 3, high=float("inf")),
        lambda f: _set(f, 3, open=0.0),
        lambda f: _set(f, 3, volume=-1.0),
        lambda f: _set(f, 3, high=102.0),  # close 103 > high
        lambda f: _set(f, 3, low=104.0),  # open 103 < low
        lambda f: f.reverse(),
        lambda f: pl.concat([f, f.tail(1)]),
        lambda f: f.with_columns(pl.col("volume").cast(pl.Float32)),
        lambda f: f.select(reversed(f.columns)),
        lambda f: f.drop("volume"),
    ],
)
def test_the_fast_post_condition_of_clean_candles_agrees_with_the_pandera_schema(defect):
    good = _bars(range(24))
    assert _invariants_hold(good) and validate_candles(good) == []
    bad = defect(good)
    assert not _invariants_hold(bad)
    assert validate_candles(bad) != []


# ------------------------------------------------------------------------------------------ real data


def _day(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    start, end = day_bounds_ms(day)
    return frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))


def test_a_real_btc_day_is_returned_unchanged(test_data_dir):
    btc = pl.read_parquet(test_data_dir / "1h" / "BTC_USDT.parquet")
    day = date(2024, 3, 5)
    out, report = clean_candles(btc, *day_bounds_ms(day), HOURLY)
    assert out.equals(_day(btc, day))
    assert not report.changed
    assert report.rows_out == 24 and report.gaps == [] and report.suspect_jumps == []
    assert report.outside_window_dropped == btc.height - 24


def test_every_real_day_cleans_unchanged_and_passes_the_schema(test_data_dir):
    files = sorted((test_data_dir / "1h").glob("*.parquet"))
    assert len(files) == 24
    for path in files:
        frame = pl.read_parquet(path)
        for day in date_range(date(2024, 3, 1), date(2024, 3, 14)):
            out, report = clean_candles(frame, *day_bounds_ms(day), HOURLY)
            assert validate_candles(out) == [], (path.name, day)
            assert out.equals(_day(frame, day)), (path.name, day)
            assert not report.changed, (path.name, day)
            if path.name != "WIF_USDT.parquet":
                assert report.rows_out == 24 and report.gaps == [], (path.name, day)
    wif = pl.read_parquet(test_data_dir / "1h" / "WIF_USDT.parquet")
    start, end = day_bounds_ms(date(2024, 3, 5))
    _, report = clean_candles(wif, start, end, HOURLY)
    assert report.gaps == [(start, 14)] and report.rows_out == 10  # listed 2024-03-05 14:00 UTC


def test_a_damaged_real_day_is_repaired_to_the_original(test_data_dir):
    day = _day(pl.read_parquet(test_data_dir / "1h" / "ETH_USDT.parquet"), date(2024, 3, 8))
    start, end = day_bounds_ms(date(2024, 3, 8))
    damaged = pl.concat([day.filter(~pl.col("ts").is_in([start + 9 * H, start + 10 * H])), day.head(3)]).reverse()
    policy = CleaningPolicy(bar_minutes=60, fill_gaps="ffill_flat", max_gap_fill_bars=2)
    out, report = clean_candles(damaged, start, end, policy)
    assert report.duplicates_dropped == 3 and report.unsorted_fixed > 0
    assert report.gaps == [(start + 9 * H, 2)] and report.gap_bars_filled == 2
    kept = ~pl.col("ts").is_in([start + 9 * H, start + 10 * H])
    assert out.filter(kept).equals(day.filter(kept))
    prev_close = day.filter(pl.col("ts") == start + 8 * H)["close"].item()
    assert out.filter(~kept).drop("ts").rows() == [(prev_close, prev_close, prev_close, prev_close, 0.0)] * 2


def test_real_zero_volume_bars_of_a_thin_pair_are_kept_and_counted():
    juv = pl.read_parquet(SPECIAL / "JUV_USDT_5m_2024-02-03.parquet")
    flat_zero = (pl.col("volume") == 0) & (pl.col("open") == pl.col("high")) & (pl.col("low") == pl.col("close"))
    assert juv.height == 288 and juv.filter(flat_zero).height == 59
    for fill in ("none", "ffill_flat"):
        out, report = clean_candles(
            juv, *day_bounds_ms(date(2024, 2, 3)), CleaningPolicy(bar_minutes=5, fill_gaps=fill)
        )
        assert out.equals(juv)
        assert report.zero_volume_bars == 59
        assert not report.changed and report.gap_bars_filled == 0 and report.missing_bars == 0
        assert validate_candles(out) == []


def test_the_real_uni_fee_switch_jump_is_kept_and_flagged():
    uni = pl.read_parquet(SPECIAL / "UNI_USDT_1h_2024-02-22_24.parquet")
    jump_ts = day_bounds_ms(date(2024, 2, 23))[0] + 14 * H
    closes = uni.filter(pl.col("ts").is_in([jump_ts - H, jump_ts]))["close"].to_list()
    assert closes[1] / closes[0] - 1 == pytest.approx(0.547, abs=5e-4)
    windows = [
        day_bounds_ms(date(2024, 2, 23)),
        (day_bounds_ms(date(2024, 2, 22))[0], day_bounds_ms(date(2024, 2, 24))[1]),
    ]
    for start, end in windows:
        out, report = clean_candles(uni, start, end, HOURLY)
        assert jump_ts in report.suspect_jumps
        assert out.equals(uni.filter((pl.col("ts") >= start) & (pl.col("ts") < end)))
        assert out.filter(pl.col("ts") == jump_ts).equals(uni.filter(pl.col("ts") == jump_ts))
        assert not report.changed and report.rows_out == (end - start) // H
        assert validate_candles(out) == []
