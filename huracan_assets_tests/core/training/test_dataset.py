"""The training set: exactly the events whose whole life is inside the window, and nothing after it."""

import math
from datetime import date

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.execution import NO_STOP_SLIPPAGE, StopSlippage
from huracan_assets.core.labels.triple_barrier import BarrierSpec, triple_barrier
from huracan_assets.core.training.dataset import (
    BASE_COLUMNS,
    Windows,
    fill_missing_costs,
    matrix,
    signal_feature_names,
    trade_costs,
    training_frame,
)
from huracan_assets_tests.conftest import TEST_DATA

H = 3_600_000
DAY = 86_400_000
HORIZON = 3 * H  # the synthetic events' vertical barrier: 3 bars after the event bar


def test_windows_for_a_day():
    w = Windows.for_day(date(2024, 5, 20), training_days=90, shadow_days=14, embargo_days=1)
    ms = lambda d: (d - date(1970, 1, 1)).days * DAY  # noqa: E731
    assert w.training_start_ms == ms(date(2024, 2, 6))  # D - 14 - 90
    assert w.training_end_ms == ms(date(2024, 5, 5))  # D - 14 - 1, exclusive
    assert w.shadow_start_ms == ms(date(2024, 5, 6)) and w.shadow_end_ms == ms(date(2024, 5, 21))
    assert w.to_dict()["training"] == "[2024-02-06, 2024-05-05)"
    with pytest.raises(ValueError):
        Windows.for_day(date(2024, 5, 20), 0, 14, 1)


def test_refit_window_ends_with_the_day_and_has_no_shadow():
    ms = lambda d: (d - date(1970, 1, 1)).days * DAY  # noqa: E731
    w = Windows.refit_for_day(date(2024, 5, 20), training_days=90)
    assert w.training_start_ms == ms(date(2024, 2, 21))  # D + 1 - 90: the same length W
    assert w.training_end_ms == ms(date(2024, 5, 21))  # the end of D, exclusive: events resolved by then
    assert w.is_refit and not Windows.for_day(date(2024, 5, 20), 90, 0, 0).is_refit
    assert w.to_dict() == {"training": "[2024-02-21, 2024-05-21)", "shadow": "none: a refit through as_of",
                           "as_of": "2024-05-20"}  # fmt: skip
    with pytest.raises(ValueError):
        Windows.refit_for_day(date(2024, 5, 20), 0)


def _frames(n: int = 48):
    ts = [i * H for i in range(n)]
    features = pl.DataFrame({"ts": ts, "f1": [float(i) for i in range(n)], "f2": [None] + [1.0] * (n - 1)})
    labels = pl.DataFrame(
        {
            "ts": ts,
            "touch_ts": [t + 3 * H for t in ts],  # every event resolves 3 bars later (closes 4 bars later)
            "ret": [0.01 if i % 3 else -0.02 for i in range(n)],
            "label": [1 if i % 3 else -1 for i in range(n)],
            # the short: the long's mirror, except event 12 (its exit bar touched both barriers: a stop for the
            # short too) and event 20 (the short exits 2 bars after the long)
            "touch_ts_short": [t + (5 if i == 20 else 3) * H for i, t in enumerate(ts)],
            "ret_short": [-0.01 if i == 12 else -(0.01 if i % 3 else -0.02) for i in range(n)],
            # filled at the next bar's open (a latency of one bar); the long's losses are stops, and so is event
            # 12's short
            "entry_ts": [t + H for t in ts],
            "barrier": ["pt" if i % 3 else "sl" for i in range(n)],
            "barrier_short": ["sl" if i == 12 else ("sl" if i % 3 else "pt") for i in range(n)],
        }
    ).with_columns(pl.when(pl.col("ts") == 5 * H).then(None).otherwise(pl.col("label")).alias("label"))
    signals = pl.DataFrame(
        {
            "ts": ts,
            "regime": ["TREND", "RANGE", "PANIC", "ILLIQUID"] * (n // 4),
            "a__direction": [1, 0, -1] * (n // 3),
            "combined_score": [0.1] * n,
            # round trips per bar: fee 20, spread 2 x bar number, slippage 6 (NaN on bar 17: no estimate)
            "fee_bps": [20.0] * n,
            "spread_bps": [2.0 * i for i in range(n)],
            "slippage_bps": [np.nan if i == 17 else 6.0 for i in range(n)],
        }
    ).with_columns(pl.col("a__direction").cast(pl.Int8))
    return features, signals, labels


def test_only_events_whose_whole_life_is_in_the_window():
    features, signals, labels = _frames()
    frame = training_frame(features, signals, labels, 10 * H, 30 * H, H, ["f1", "f2"], ["a"], horizon_ms=HORIZON)
    # t0 >= 10h and t1 = t0 + 4h <= 30h  ->  t0 in 10h..26h: 17 events
    assert frame["t0"].to_list() == [i * H for i in range(10, 27)]
    assert frame.columns == [*BASE_COLUMNS, "f1", "f2", *signal_feature_names(["a"])]
    row = frame.filter(pl.col("t0") == 12 * H).row(0, named=True)
    assert row["y"] == 0 and row["t1"] == row["t1_short"] == 16 * H
    # simple returns of each side's own trade: the long lost 2 % in log terms, the short its own 1 % stop
    assert row["ret_bps"] == pytest.approx((math.exp(-0.02) - 1) * 1e4, rel=1e-12)  # -198.01 bps
    assert row["ret_short_bps"] == pytest.approx((1 - math.exp(0.01)) * 1e4, rel=1e-12)  # -100.50 bps, not +198
    other = frame.filter(pl.col("t0") == 13 * H).row(0, named=True)  # a mirrored event: +1 % / -1 % in log terms
    assert (other["ret_bps"], other["ret_short_bps"]) == pytest.approx((100.5017, -100.5017), abs=1e-4)
    assert row["regime_code"] == 0.0 and row["a__direction"] == 1.0
    x = matrix(frame, ["f1", "f2", "a__direction"])
    assert x.dtype == np.float64 and x.shape == (17, 3)


def test_a_row_lives_until_its_later_exit():
    features, signals, labels = _frames()
    frame = training_frame(features, signals, labels, 10 * H, 30 * H, H, ["f1", "f2"], ["a"], horizon_ms=HORIZON)
    row = frame.filter(pl.col("t0") == 20 * H).row(0, named=True)
    assert (row["t1"], row["t1_short"]) == (24 * H, 26 * H)
    # event 20's long is known at 24h, but its short only at 26h: outside a window ending at 25h
    cut = training_frame(features, signals, labels, 10 * H, 25 * H, H, ["f1", "f2"], ["a"], horizon_ms=HORIZON)
    assert cut["t0"].to_list() == [i * H for i in range(10, 22) if i != 20]


def test_unresolved_events_are_never_used():
    features, signals, labels = _frames()
    frame = training_frame(features, signals, labels, 0, 30 * H, H, ["f1"], ["a"], horizon_ms=HORIZON)
    assert 5 * H not in frame["t0"].to_list()


def test_rows_after_the_window_do_not_change_the_matrix():
    features, signals, labels = _frames()
    end = 30 * H
    full = training_frame(features, signals, labels, 0, end, H, ["f1", "f2"], ["a"], horizon_ms=HORIZON)
    cut_labels = labels.filter(pl.col("ts") < end).with_columns(
        pl.when(pl.col("touch_ts") + H <= end).then(pl.col("label")).alias("label")
    )
    before = pl.col("ts") < end
    cut = training_frame(
        features.filter(before), signals.filter(before), cut_labels, 0, end, H, ["f1", "f2"], ["a"], horizon_ms=HORIZON
    )
    assert full.equals(cut)
    # the check can fail: a window end that lets a row outlive it changes the matrix
    leaky = training_frame(features, signals, labels, 0, end + 3 * H, H, ["f1", "f2"], ["a"], horizon_ms=HORIZON)
    assert not leaky.equals(cut)


def test_missing_signals_leave_nulls_not_guesses():
    features, _, labels = _frames()
    frame = training_frame(features, None, labels, 0, 30 * H, H, ["f1"], ["a"], horizon_ms=HORIZON)
    assert frame["exit_fee_bps"].null_count() == frame.height and frame["a__direction"].null_count() == frame.height
    filled, missing = fill_missing_costs(frame)
    assert missing == frame.height and (filled["entry_fee_bps"] == 0.0).all()


def test_each_side_pays_half_the_fill_bars_costs_in_and_half_its_own_exit_bars_out():
    features, signals, labels = _frames()
    frame = training_frame(features, signals, labels, 10 * H, 30 * H, H, ["f1", "f2"], ["a"], horizon_ms=HORIZON)
    row = frame.filter(pl.col("t0") == 12 * H).row(0, named=True)  # filled at bar 13, both sides out at bar 15
    assert (row["entry_fee_bps"], row["entry_spread_bps"], row["entry_slippage_bps"]) == (10.0, 13.0, 3.0)
    assert (row["exit_fee_bps"], row["exit_spread_bps"], row["exit_slippage_bps"]) == (10.0, 15.0, 3.0)
    assert (row["exit_spread_short_bps"], row["stopped"], row["stopped_short"]) == (15.0, 1, 1)
    other = frame.filter(pl.col("t0") == 20 * H).row(0, named=True)  # the short leaves at bar 25, the long at 23
    assert (other["exit_spread_bps"], other["exit_spread_short_bps"], other["stopped"]) == (23.0, 25.0, 0)
    # bar 17 has no slippage estimate: a leg paid there takes the signal bar's (event 14: out at 17)
    assert frame.filter(pl.col("t0") == 14 * H)["exit_slippage_bps"].to_list() == [3.0]
    costs = trade_costs(frame, StopSlippage(half_spreads=1.0, fixed_bps=2.0))
    i = frame["t0"].to_list().index(12 * H)
    # long: fee 10 + 10, spread 13 + 15, slippage 3 + 3, stopped: 1 x 15 + 2
    assert costs.long[i].tolist() == [20.0, 28.0, 6.0, 17.0] and costs.short[i].tolist() == [20.0, 28.0, 6.0, 17.0]
    j = frame["t0"].to_list().index(20 * H)
    # event 20: the long took its profit (no stop slippage), the short was stopped on bar 25 (25 + 2)
    assert costs.long[j].tolist() == [20.0, 44.0, 6.0, 0.0] and costs.short[j].tolist() == [20.0, 46.0, 6.0, 27.0]
    long_total, short_total = costs.totals()
    assert (long_total[i], long_total[j], short_total[j]) == (71.0, 70.0, 99.0)
    assert trade_costs(frame, NO_STOP_SLIPPAGE).long[i].tolist() == [20.0, 28.0, 6.0, 0.0]


def test_membership_depends_on_the_event_start_not_on_how_fast_it_resolved():
    """Real 1h candles: the training frame of a window equals the one a world cut at the window's end builds.

    Labels of the full world resolve the events of the last horizon that touched a barrier early; the cut world
    has them unresolved. Selecting them by ``t1 <= end`` alone would pick them by what happened after the end."""
    candles = pl.read_parquet(TEST_DATA.parent / "replay_long" / "1h" / "ETH_USDT.parquet").sort("ts")
    candles = candles.with_columns(pl.col("ts").cast(pl.Int64))
    spec = BarrierSpec(max_holding_bars=24, vol_window=48)
    first = int(candles["ts"][0])
    start, end = first + 3 * DAY, first + 20 * DAY + 7 * H  # an end inside a day, like any cut
    full_labels = triple_barrier(candles, start, end, spec, H)
    cut_labels = triple_barrier(candles.filter(pl.col("ts") < end), start, end, spec, H)
    features = candles.select("ts", pl.col("close").alias("f1"))

    def frame(labels, horizon_ms):
        return training_frame(features, None, labels, start, end, H, ["f1"], [], horizon_ms=horizon_ms)

    full, cut = frame(full_labels, spec.horizon_ms(H)), frame(cut_labels, spec.horizon_ms(H))
    assert full.height > 300 and full.equals(cut)
    assert full["t0"].max() + spec.horizon_ms(H) + H <= end
    # the old rule (no horizon condition) keeps early touches of the last horizon: a different frame
    early = frame(full_labels, 0)
    assert early.height > cut.height and frame(cut_labels, 0).height == cut.height
