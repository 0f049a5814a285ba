"""The training set: exactly the events whose whole life is inside the window, and nothing after it."""

import math
from datetime import date

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.labels.triple_barrier import BarrierSpec, triple_barrier
from huracan_assets.core.training.dataset import BASE_COLUMNS, Windows, matrix, signal_feature_names, training_frame
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
        }
    ).with_columns(pl.when(pl.col("ts") == 5 * H).then(None).otherwise(pl.col("label")).alias("label"))
    signals = pl.DataFrame(
        {
            "ts": ts,
            "regime": ["TREND", "RANGE", "PANIC", "ILLIQUID"] * (n // 4),
            "a__direction": [1, 0, -1] * (n // 3),
            "combined_score": [0.1] * n,
            "total_bps": [30.0] * n,
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
    assert row["regime_code"] == 0.0 and row["a__direction"] == 1.0 and row["cost_bps"] == 30.0
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
    assert frame["cost_bps"].null_count() == frame.height and frame["a__direction"].null_count() == frame.height


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
