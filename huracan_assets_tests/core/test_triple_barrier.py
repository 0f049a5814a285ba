"""Triple-barrier labels: hand-built paths with known first touches, the truncated-future canary, and exact
agreement of the numba path with the plain-Python reference on real candles."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from huracan_assets.core.labels.triple_barrier import (
    LABEL_SCHEMA,
    BarrierSpec,
    _first_touch,
    triple_barrier,
    triple_barrier_reference,
)

BAR = 3_600_000
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
WARM = 4
EVENT_TS = T0 + WARM * BAR
# A flat warm-up has zero volatility, floored to min_vol = 0.01: pt = 100 e^0.01 = 101.005, sl = 100 e^-0.01 = 99.005;
# the vertical barrier is the 5th bar after the event bar.
SPEC = BarrierSpec(pt_mult=1.0, sl_mult=1.0, max_holding_bars=5, vol_window=4, min_vol=0.01)
PT, SL = 100 * math.exp(0.01), 100 * math.exp(-0.01)
Q = (100.0, 100.3, 99.7, 100.0)  # a quiet bar: touches nothing
HOURLY = Path(__file__).resolve().parents[1] / "data" / "ohlcv" / "1h"


def _path(future, gaps=(), warm=WARM) -> pl.DataFrame:
    """``warm`` flat bars at 100, the event bar (flat at 100), then ``future`` bars (open, high, low, close) at
    offsets 1, 2, ... from the event; offsets in ``gaps`` are left out (holes in the data)."""
    rows = [(100.0, 100.0, 100.0, 100.0)] * (warm + 1) + list(future)
    keep = [k for k in range(len(rows)) if k - warm not in gaps]
    return pl.DataFrame(
        {
            "ts": [T0 + (k + WARM - warm) * BAR for k in keep],
            "open": [rows[k][0] for k in keep],
            "high": [rows[k][1] for k in keep],
            "low": [rows[k][2] for k in keep],
            "close": [rows[k][3] for k in keep],
            "volume": [1.0] * len(keep),
        }
    )


def _event(frame: pl.DataFrame, spec: BarrierSpec = SPEC, **changes) -> dict:
    """The one event at EVENT_TS, from both implementations (which must agree exactly)."""
    spec = dataclasses.replace(spec, **changes)
    out = triple_barrier(frame, EVENT_TS, EVENT_TS + 1, spec, BAR)
    assert_frame_equal(out, triple_barrier_reference(frame, EVENT_TS, EVENT_TS + 1, spec, BAR), check_exact=True)
    assert out.schema == pl.Schema(LABEL_SCHEMA) and out.height == 1
    return out.row(0, named=True)


def _at(offset: int) -> int:
    return EVENT_TS + offset * BAR


# ------------------------------------------------------------------------------------------ known paths


def test_profit_take_first_rises_through_pt_in_bar_3():
    path = _path([(100, 100.4, 99.8, 100.2), (100.2, 100.9, 100.0, 100.7), (100.7, 101.3, 100.5, 101.1), Q, Q])
    row = _event(path)
    assert row["vol"] == 0.01 and row["pt_price"] == PT and row["sl_price"] == SL and row["entry"] == 100.0
    assert (row["barrier"], row["touch_ts"], row["holding_bars"], row["label"]) == ("pt", _at(3), 3, 1)
    assert row["ret"] == pytest.approx(0.01, abs=1e-15) and row["net_ret"] == row["ret"]  # exit at the pt price
    by_close = _event(path, touch="close")  # the close 101.1 is beyond the pt too: exit at that close
    assert (by_close["barrier"], by_close["touch_ts"], by_close["label"]) == ("pt", _at(3), 1)
    assert by_close["ret"] == math.log(101.1 / 100)


def test_stop_loss_first_even_if_pt_follows():
    path = _path([Q, (100, 100.2, 98.9, 99.2), (99.2, 101.5, 99.0, 101.2), Q, Q])
    row = _event(path)
    assert (row["barrier"], row["touch_ts"], row["holding_bars"], row["label"]) == ("sl", _at(2), 2, -1)
    assert row["ret"] == pytest.approx(-0.01, abs=1e-15)
    by_close = _event(path, touch="close")  # the wick to 98.9 closed at 99.2: only the close of bar 3 counts
    assert (by_close["barrier"], by_close["touch_ts"], by_close["label"]) == ("pt", _at(3), 1)


@pytest.mark.parametrize(
    ("last_close", "dead_zone_bps", "label"),
    [(100.4, 0.0, 1), (99.6, 0.0, -1), (100.4, 50.0, 0), (99.6, 50.0, 0), (100.4, 30.0, 1), (100.0, 0.0, 0)],
)
def test_vertical_barrier_labels_by_the_sign_of_the_return_with_a_dead_zone(last_close, dead_zone_bps, label):
    path = _path([Q, Q, Q, Q, (100, 100.5, 99.5, last_close), (100, 102, 98, 100)])  # bar 6: beyond the horizon
    row = _event(path, vertical_dead_zone_bps=dead_zone_bps)
    assert (row["barrier"], row["touch_ts"], row["holding_bars"], row["label"]) == ("vertical", _at(5), 5, label)
    assert row["ret"] == math.log(last_close / 100)  # ~ +-40 bps: inside a 50 bps dead zone, outside 30 bps


def test_both_barriers_in_one_bar_count_as_the_stop_for_either_side():
    path = _path([Q, (100, 101.5, 98.5, 100.1), Q, Q, Q])
    row = _event(path)
    # the long stops at 99.005 (below); the short's own stop is 101.005 (above): the same bar stops it out too
    assert (row["barrier"], row["touch_ts"], row["holding_bars"]) == ("sl", _at(2), 2)
    assert row["ret"] == math.log(SL / 100) == row["net_ret"]  # filled at the stop price: -100 bps
    assert (row["barrier_short"], row["touch_ts_short"], row["holding_bars_short"]) == ("sl", _at(2), 2)
    assert row["ret_short"] == -math.log(PT / 100) == row["net_ret_short"]  # also -100 bps, not +100
    assert row["label"] == 0  # neither side's trade made money (it was -1, the short credited with the long's stop)
    by_close = _event(path, touch="close")  # closes never left the band
    assert (by_close["barrier"], by_close["barrier_short"], by_close["label"]) == ("vertical", "vertical", 0)
    assert by_close["ret_short"] == -math.log(100.0 / 100) == 0.0 and by_close["ret"] == 0.0
    # a meta-label of the short (side -1) stops out there as well, and its columns are the short's
    short = _event(path, side=-1)
    assert (short["barrier"], short["label"], short["ret"]) == ("sl", 0, -math.log(PT / 100))
    assert [short[c] for c in ("touch_ts", "barrier", "ret", "net_ret", "holding_bars")] == [
        short[f"{c}_short"] for c in ("touch_ts", "barrier", "ret", "net_ret", "holding_bars")
    ]


def test_the_short_has_its_own_outcome_columns():
    path = _path([Q, (100, 100.2, 98.9, 99.2), (99.2, 101.5, 99.0, 101.2), Q, Q])  # falls through 99.005 in bar 2
    row = _event(path, cost_bps=10.0)
    assert (row["barrier"], row["touch_ts"], row["ret"]) == ("sl", _at(2), math.log(SL / 100))
    assert (row["barrier_short"], row["touch_ts_short"], row["holding_bars_short"]) == ("pt", _at(2), 2)
    assert row["ret_short"] == -math.log(SL / 100) and row["net_ret_short"] == row["ret_short"] - 0.001
    assert row["label"] == -1  # the short's own trade nets +90 bps
    long_meta = _event(path, side=1)  # a meta-label of the long carries the short's outcome too
    assert (long_meta["label"], long_meta["barrier_short"], long_meta["ret_short"]) == (0, "pt", row["ret_short"])


@pytest.mark.parametrize(
    ("bars", "label", "short", "long"),
    [
        # pt 1 x vol, sl 2 x vol: long pt 101.005 / sl 98.020; short pt 99.005 / sl 102.020
        ([(100, 100.2, 98.9, 99.3), (99.3, 101.2, 99.2, 101.0), Q, Q, Q], -1, ("pt", 1), ("pt", 2)),  # short first
        ([(100, 101.1, 99.9, 100.8), (100.8, 100.9, 98.8, 99.0), Q, Q, Q], 1, ("pt", 2), ("pt", 1)),  # long first
        ([(100, 101.1, 98.9, 100.0), Q, Q, Q, Q], 0, ("pt", 1), ("pt", 1)),  # both in one bar: order unknown
        ([(100, 102.5, 97.5, 100.0), Q, Q, Q, Q], 0, ("sl", 1), ("sl", 1)),  # beyond both stops: both stop out
        ([(100, 100.2, 98.9, 99.3), (99.3, 99.4, 97.9, 98.0), Q, Q, Q], -1, ("pt", 1), ("sl", 2)),
    ],
)
def test_asymmetric_barriers_are_not_a_mirror(bars, label, short, long):
    row = _event(_path(bars), sl_mult=2.0)
    assert (row["barrier"], row["holding_bars"]) == long
    assert (row["barrier_short"], row["holding_bars_short"]) == short
    assert row["label"] == label
    if long[0] == short[0] == "pt":  # both sides made money on the same event: -ret_short would say otherwise
        assert row["ret"] > 0 and row["ret_short"] > 0


def test_a_bar_opening_beyond_a_barrier_touched_it_first_at_its_open():
    row = _event(_path([Q, (101.2, 101.5, 98.5, 100.1), Q, Q, Q]))  # both in one bar, but it opened above pt
    assert (row["barrier"], row["touch_ts"], row["label"]) == ("pt", _at(2), 1)
    assert row["ret"] == math.log(101.2 / 100)  # the open, not the pt price
    row = _event(_path([Q, (98.0, 98.5, 97.0, 98.2), Q, Q, Q]))  # gapped through the stop: filled at the open
    assert (row["barrier"], row["label"]) == ("sl", -1) and row["ret"] == math.log(98.0 / 100)


def test_vertical_barrier_is_time_based_across_holes_in_the_data():
    beyond = (100.3, 102.0, 100.2, 101.8)  # touches pt, but at offset 6: after the vertical barrier
    future = [Q, Q, Q, Q, (100, 100.5, 99.8, 100.3), beyond, Q, Q]
    row = _event(_path(future, gaps={3, 4}))  # a bar count would take offsets 1, 2, 5, 6, 7 and find the pt
    assert (row["barrier"], row["touch_ts"], row["holding_bars"], row["label"]) == ("vertical", _at(5), 5, 1)
    assert row["ret"] == math.log(100.3 / 100)
    row = _event(_path(future, gaps={5}))  # the vertical bar itself is missing: the last bar before it
    assert (row["barrier"], row["touch_ts"], row["holding_bars"], row["label"]) == ("vertical", _at(4), 4, 0)
    row = _event(_path(future, gaps={1, 2, 3, 4, 5}))  # nothing inside the horizon: no exit price
    assert (row["barrier"], row["touch_ts"], row["label"], row["ret"]) == ("unresolved", None, None, None)


@pytest.mark.parametrize(("side", "last_close"), [(1, 100.05), (-1, 99.95)])
def test_meta_labels_costs_turn_a_tiny_win_into_label_0(side, last_close):
    path = _path([Q, Q, Q, Q, (100, 100.2, 99.8, last_close)])
    gross = side * math.log(last_close / 100)  # ~ +5 bps for the side
    free = _event(path, side=side)
    assert (free["barrier"], free["label"], free["ret"], free["net_ret"]) == ("vertical", 1, gross, gross)
    costly = _event(path, side=side, cost_bps=10.0)
    assert (costly["label"], costly["ret"], costly["net_ret"]) == (0, gross, gross - 0.001)


def test_meta_labels_of_a_short_mirror_the_barriers():
    falls = _path([Q, (100, 100.1, 98.9, 99.1), Q, Q, Q])
    row = _event(falls, side=-1)
    assert row["pt_price"] == SL and row["sl_price"] == PT  # a short takes profit below, stops out above
    assert (row["barrier"], row["label"]) == ("pt", 1) and row["ret"] == pytest.approx(0.01, abs=1e-15)
    row = _event(_path([Q, (100, 101.3, 99.9, 101.0), Q, Q, Q]), side=-1)
    assert (row["barrier"], row["label"]) == ("sl", 0) and row["ret"] == pytest.approx(-0.01, abs=1e-15)
    assert _event(falls, side=1)["barrier"] == "sl" and _event(falls, side=1)["label"] == 0


def test_costs_larger_than_the_barrier_move_give_label_0_without_a_side():
    row = _event(_path([Q, (100, 101.3, 99.9, 101.0), Q, Q, Q]), cost_bps=150.0)  # pt pays 100 bps < 150
    assert (row["barrier"], row["label"]) == ("pt", 0)
    assert row["net_ret"] == pytest.approx(0.01 - 0.015, abs=1e-15)


def test_truncated_future_is_unresolved_never_labelled():
    path = _path([Q, (100, 101.2, 99.9, 101.1), Q])  # data end 2 bars before the vertical barrier
    row = _event(path)  # the pt was touched in bar 2, but the horizon is incomplete: no label at all
    assert row["barrier"] == "unresolved" and row["pt_price"] == PT and row["vol"] == 0.01
    assert [row[c] for c in ("touch_ts", "ret", "net_ret", "label", "holding_bars")] == [None] * 5
    touch_idx, barrier, exit_price = _first_touch(
        *(path[c].to_numpy() for c in ("ts", "open", "high", "low", "close")),
        np.array([WARM], dtype=np.int64),
        np.array([WARM + 1], dtype=np.int64),  # the path starts after the event bar (a fill at its close)
        np.array([100.0]),
        np.array([0.01]),
        1.0,
        1.0,
        SPEC.horizon_ms(BAR),
        True,
        0,
    )
    assert barrier.dtype == np.int8 and barrier.tolist() == [-2] and touch_idx.tolist() == [-1]
    assert np.isnan(exit_price).all()
    full = _path([Q, (100, 101.2, 99.9, 101.1), Q, Q, Q])  # ... and with the horizon complete: the pt of bar 2
    assert (_event(full)["barrier"], _event(full)["label"]) == ("pt", 1)


def test_too_little_history_is_no_vol():
    row = _event(_path([Q] * 5, warm=1))  # one return of history; vol_window 4 needs 2
    assert (row["barrier"], row["vol"], row["pt_price"], row["label"]) == ("no_vol", None, None, None)
    assert _event(_path([Q] * 5, warm=2))["barrier"] == "vertical"  # two returns are enough


# ------------------------------------------------------------------------------------------ entry latency


def test_latency_one_fills_at_the_next_open_and_the_fill_bar_is_in_the_path():
    # the event bar closes at 100; the next bar opens at 100.5 (the fill) and its high reaches 101.6 >= 100.5 e^0.01
    path = _path([(100.5, 101.6, 100.4, 101.0), Q, Q, Q, Q, (100, 102, 98, 100)])
    row = _event(path, entry_lag_bars=1)
    assert (row["entry_ts"], row["entry"], row["vol"]) == (_at(1), 100.5, 0.01)  # volatility of the event bar
    assert row["pt_price"] == 100.5 * math.exp(0.01) and row["sl_price"] == 100.5 * math.exp(-0.01)
    assert (row["barrier"], row["touch_ts"], row["holding_bars"], row["label"]) == ("pt", _at(1), 1, 1)
    assert row["ret"] == pytest.approx(0.01, abs=1e-15)
    # no latency: filled at the event's close, 100, with its barriers around 100
    lag0 = _event(path)
    assert (lag0["entry_ts"], lag0["entry"], lag0["pt_price"], lag0["touch_ts"]) == (EVENT_TS, 100.0, PT, _at(1))
    # the vertical barrier is still the event's: 5 bars after the event bar, whatever the latency (bar 6, beyond
    # the horizon, would touch both barriers)
    fill = (100.5, 100.6, 100.4, 100.5)
    flat = _event(_path([fill, Q, Q, Q, (100.2, 100.3, 100.1, 100.2), (100, 102, 98, 100)]), entry_lag_bars=1)
    assert (flat["barrier"], flat["touch_ts"], flat["holding_bars"]) == ("vertical", _at(5), 5)
    assert flat["ret"] == math.log(100.2 / 100.5)


def test_latency_after_a_hole_fills_at_the_open_of_the_first_bar_that_exists():
    # bar 1 is missing: the order of the event's signal fills at the open of bar 2 (99.0), the first market after
    # the hole; barriers 99 e^+-0.01 from there, and bar 3's low 97.9 is below 99 e^-0.01 = 98.015
    path = _path([Q, (99.0, 99.5, 98.6, 99.2), (99.2, 99.4, 97.9, 98.1), Q, Q], gaps=(1,))
    row = _event(path, entry_lag_bars=1)
    assert (row["entry_ts"], row["entry"]) == (_at(2), 99.0)
    assert (row["barrier"], row["touch_ts"], row["holding_bars"]) == ("sl", _at(3), 3)
    assert row["ret"] == pytest.approx(-0.01, abs=1e-15)  # filled at the stop price, from the fill price
    assert row["barrier_short"] == "pt" and row["ret_short"] == pytest.approx(0.01, abs=1e-15)
    # latency 2 on gap-free bars is the same fill bar: ts >= event + 2 bars
    gap_free = _path([(100.0, 100.1, 99.9, 100.0), (99.0, 99.5, 98.6, 99.2), (99.2, 99.4, 97.9, 98.1), Q, Q])
    assert _event(gap_free, entry_lag_bars=2)["entry_ts"] == _at(2)


def test_no_fill_before_the_vertical_barrier_is_unresolved():
    # bars 1..5 missing: the first bar after the event is past its vertical barrier, nothing could be bought
    row = _event(_path([Q] * 7, gaps=(1, 2, 3, 4, 5)), entry_lag_bars=1)
    assert (row["barrier"], row["barrier_short"], row["vol"]) == ("unresolved", "unresolved", 0.01)
    assert [row[c] for c in ("entry_ts", "entry", "pt_price", "sl_price", "touch_ts", "label")] == [None] * 6
    # the last bar of the data: no next bar at all
    last = triple_barrier(_path([Q] * 2), _at(2), _at(3), SPEC, BAR)
    lagged = triple_barrier(_path([Q] * 2), _at(2), _at(3), dataclasses.replace(SPEC, entry_lag_bars=1), BAR)
    assert last["entry"].to_list() == [100.0] and lagged["entry"].to_list() == [None]
    assert lagged["barrier"].to_list() == ["unresolved"]
    # a latency as long as the horizon fills on the vertical bar and exits at its close
    row = _event(_path([Q, Q, Q, Q, (100.1, 100.3, 100.0, 100.2), Q]), entry_lag_bars=5)
    assert (row["entry"], row["barrier"], row["touch_ts"], row["ret"]) == (100.1, "vertical", _at(5),
                                                                          math.log(100.2 / 100.1))  # fmt: skip
    with pytest.raises(ValueError, match="entry_lag_bars"):
        BarrierSpec(max_holding_bars=5, entry_lag_bars=6)
    with pytest.raises(ValueError, match="entry_lag_bars"):
        BarrierSpec(entry_lag_bars=-1)


def test_lagged_entry_fields_are_known_at_the_fill_and_the_volatility_at_the_event():
    frame = _hourly("ETH")
    spec = BarrierSpec(entry_lag_bars=1)
    start, end = T0 + 4 * 86_400_000, T0 + 9 * 86_400_000
    full = triple_barrier(frame, start, end, spec, BAR)
    for cut in (start + 13 * BAR, start + 61 * BAR):
        cut_rows = triple_barrier(frame.filter(pl.col("ts") < cut), start, end, spec, BAR)
        before = full.filter(pl.col("ts") < cut)
        assert cut_rows["ts"].equals(before["ts"]) and cut_rows["vol"].equals(before["vol"])
        filled = pl.col("ts") + BAR < cut  # the fill bar opened before the cut
        fields = ["ts", "entry_ts", "entry", "pt_price", "sl_price"]
        assert cut_rows.filter(filled).select(fields).equals(before.filter(filled).select(fields))
        assert cut_rows.filter(filled).height == before.height - 1
        # the event on the cut's last bar has no fill yet: its entry is unknown, not guessed
        at_cut = cut_rows.filter(pl.col("ts") == cut - BAR)
        assert at_cut["entry"].to_list() == [None] and full.filter(pl.col("ts") == cut - BAR)["entry"][0] > 0


def test_events_are_the_bars_of_the_window_only():
    path = _path([Q] * 8)
    out = triple_barrier(path, _at(-1), _at(2), SPEC, BAR)
    assert out["ts"].to_list() == [_at(-1), _at(0), _at(1)]
    assert triple_barrier(path, _at(2), _at(2), SPEC, BAR).height == 0
    empty = triple_barrier(path.clear(), _at(0), _at(5), SPEC, BAR)
    assert empty.height == 0 and empty.schema == pl.Schema(LABEL_SCHEMA)


def test_spec_and_input_validation():
    assert SPEC.horizon_ms(BAR) == 5 * BAR and BarrierSpec().horizon_ms(300_000) == 24 * 300_000
    for bad in (
        {"pt_mult": 0},
        {"sl_mult": -1.0},
        {"sl_mult": math.inf},
        {"max_holding_bars": 0},
        {"max_holding_bars": 2.5},
        {"vol_window": 1},
        {"min_vol": 0.0},
        {"side": 2},
        {"side": True},
        {"cost_bps": -1.0},
        {"vertical_dead_zone_bps": math.nan},
        {"touch": "open"},
    ):
        with pytest.raises(ValueError, match="BarrierSpec"):
            BarrierSpec(**bad)
    path = _path([Q] * 5)
    with pytest.raises(ValueError, match="bar_ms"):
        triple_barrier(path, _at(0), _at(1), SPEC, 0)
    with pytest.raises(ValueError, match="strictly increasing"):
        triple_barrier(path.reverse(), _at(0), _at(1), SPEC, BAR)
    with pytest.raises(ValueError, match="prices > 0"):
        triple_barrier(path.with_columns(low=pl.lit(0.0)), _at(0), _at(1), SPEC, BAR)
    with pytest.raises(ValueError, match="lacks columns"):
        triple_barrier(path.drop("high"), _at(0), _at(1), SPEC, BAR)


# ------------------------------------------------------------------------------------ real candles


def _hourly(symbol: str) -> pl.DataFrame:
    return pl.read_parquet(HOURLY / f"{symbol}_USDT.parquet")


def _canary_violations(label_fn, frame: pl.DataFrame, start: int, end: int, spec: BarrierSpec, cuts) -> list[str]:
    """Cut the future at each time in ``cuts``: events whose horizon ends by the cut must keep their exact row;
    events whose horizon crosses it must be unresolved (their causal columns unchanged)."""
    full = label_fn(frame, start, end, spec, BAR)
    causal = ["ts", "entry", "vol", "pt_price", "sl_price"]
    found = []
    for cut in cuts:
        cut_rows = label_fn(frame.filter(pl.col("ts") < cut), start, end, spec, BAR)
        before = full.filter(pl.col("ts") < cut)
        complete = pl.col("ts") + (spec.max_holding_bars + 1) * BAR <= cut
        if not cut_rows.filter(complete).equals(before.filter(complete)):
            found.append(f"cut {cut}: a label with a complete horizon changed")
        crossing = cut_rows.filter(~complete)
        if not crossing.select(causal).equals(before.filter(~complete).select(causal)):
            found.append(f"cut {cut}: causal columns changed")
        labelled = crossing.filter(pl.col("barrier") != "no_vol")
        if (labelled["barrier"] != "unresolved").any() or labelled["label"].null_count() != labelled.height:
            found.append(f"cut {cut}: an event with a truncated horizon got a label")
    return found


def test_truncated_future_canary_on_real_candles():
    frame = _hourly("ETH")
    start, end = T0 + 4 * 86_400_000, T0 + 9 * 86_400_000
    cuts = [start + h * BAR for h in (13, 30, 61, 100)]
    spec = BarrierSpec()
    assert _canary_violations(triple_barrier, frame, start, end, spec, cuts) == []
    assert _canary_violations(triple_barrier, frame, start, end, BarrierSpec(side=1, cost_bps=10), cuts) == []
    cut_rows = triple_barrier(frame.filter(pl.col("ts") < cuts[1]), start, end, spec, BAR)
    assert (cut_rows["barrier"] == "unresolved").sum() == spec.max_holding_bars  # the last 24 events, exactly
    assert cut_rows["barrier"].is_in(["pt", "sl"]).sum() > 0  # the check is not vacuous


def test_the_canary_catches_labels_of_truncated_horizons():
    def leaky(frame, start, end, spec, bar_ms):  # labels what it can see: the last close decides
        out = triple_barrier(frame, start, end, spec, bar_ms)
        guess = (pl.lit(frame["close"][-1]) - pl.col("entry")).sign().cast(pl.Int8)
        return out.with_columns(label=pl.when(pl.col("barrier") == "unresolved").then(guess).otherwise(pl.col("label")))

    frame = _hourly("ETH")
    start, end = T0 + 4 * 86_400_000, T0 + 9 * 86_400_000
    assert _canary_violations(leaky, frame, start, end, BarrierSpec(), [start + 30 * BAR]) != []


SPECS = {
    "default": BarrierSpec(),
    "long_meta_costs": BarrierSpec(side=1, cost_bps=15.0, vertical_dead_zone_bps=5.0),
    "short_meta_close": BarrierSpec(side=-1, cost_bps=8.0, touch="close", pt_mult=1.0, sl_mult=1.5),
    "short_horizon_costs": BarrierSpec(
        pt_mult=0.75, sl_mult=3.0, max_holding_bars=6, vol_window=12, cost_bps=4.0, vertical_dead_zone_bps=10.0
    ),
    "tight_close_dead_zone": BarrierSpec(pt_mult=0.5, sl_mult=0.5, touch="close", vertical_dead_zone_bps=25.0),
    "next_open": BarrierSpec(entry_lag_bars=1, pt_mult=1.0, sl_mult=1.5),
    "two_bar_latency_short_horizon": BarrierSpec(
        entry_lag_bars=2, pt_mult=0.75, sl_mult=3.0, max_holding_bars=6, vol_window=12, cost_bps=4.0
    ),
}


@pytest.mark.parametrize("holes", [False, True], ids=["gap_free", "with_holes"])
@pytest.mark.parametrize("spec_name", list(SPECS))
@pytest.mark.parametrize("symbol", ["BTC", "ETH", "SOL", "DOGE", "WIF"])
def test_numba_agrees_exactly_with_the_reference_on_real_candles(symbol, spec_name, holes):
    frame = _hourly(symbol)
    if holes:  # drop every 17th bar and a 5-hour block: the vertical barrier must stay time-based in both
        frame = frame.with_row_index().filter((pl.col("index") % 17 != 5) & ~pl.col("index").is_between(200, 204))
        frame = frame.drop("index")
    spec = SPECS[spec_name]
    start, end = frame["ts"][3], frame["ts"][-1] + 1  # some no_vol at the start, unresolved at the end
    fast = triple_barrier(frame, start, end, spec, BAR)
    slow = triple_barrier_reference(frame, start, end, spec, BAR)
    assert_frame_equal(fast, slow, check_exact=True)
    assert fast.height == frame.filter(pl.col("ts") >= start).height
    kinds = set(fast["barrier"])
    assert {"no_vol", "unresolved", "pt", "sl"} <= kinds
    labels = set(fast["label"].drop_nulls())
    assert labels == {0, 1} if spec.side else {-1, 1} <= labels <= {-1, 0, 1}


def test_volatility_matches_an_independent_rolling_std():
    frame = _hourly("SOL")
    spec = BarrierSpec()
    out = triple_barrier(frame, frame["ts"][0], frame["ts"][-1] + 1, spec, BAR)
    expected = (
        frame.select(
            pl.col("close")
            .log()
            .diff()
            .rolling_std(spec.vol_window, min_samples=spec.min_vol_returns)
            .clip(lower_bound=spec.min_vol)
        )
        .to_series()
        .to_numpy()
    )
    vol = out["vol"].to_numpy()
    assert np.array_equal(np.isnan(vol), np.isnan(expected))
    np.testing.assert_allclose(vol, expected, rtol=1e-9)


@pytest.mark.parametrize("symbol", ["BTC", "DOGE", "WIF"])
def test_the_short_is_the_mirror_of_the_long_except_on_bars_that_touch_both_barriers(symbol):
    # symmetric barriers: both sides see the same two prices, so the short's outcome is -ret except where the exit
    # bar touched both barriers (neither opened beyond one): there both stop out and both lose
    frame = _hourly(symbol)
    spec = BarrierSpec(pt_mult=1.0, sl_mult=1.0, max_holding_bars=12)
    out = triple_barrier(frame, frame["ts"][0], frame["ts"][-1] + 1, spec, BAR).filter(pl.col("label").is_not_null())
    exit_bar = out.join(frame.select(pl.col("ts").alias("touch_ts"), "open", "high", "low"), on="touch_ts")
    both = (
        (pl.col("high") >= pl.col("pt_price"))
        & (pl.col("low") <= pl.col("sl_price"))
        & (pl.col("open") < pl.col("pt_price"))
        & (pl.col("open") > pl.col("sl_price"))
    )
    double = exit_bar.filter(both)
    assert double.height > 0  # the check is not vacuous
    assert (double["barrier"] == "sl").all() and (double["barrier_short"] == "sl").all()
    assert (double["ret"] < 0).all() and (double["ret_short"] < 0).all() and (double["label"] == 0).all()
    mirror = exit_bar.filter(~both)
    assert mirror["touch_ts"].equals(mirror["touch_ts_short"])
    np.testing.assert_allclose(mirror["ret_short"].to_numpy(), -mirror["ret"].to_numpy(), rtol=0, atol=1e-15)
    swap = {"pt": "sl", "sl": "pt", "vertical": "vertical"}
    assert mirror["barrier_short"].to_list() == [swap[b] for b in mirror["barrier"]]
