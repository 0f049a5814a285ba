"""Shadow trader: hand-worked bar sequences with known trades, every guardrail, and exact agreement of the numba
loop with the plain-Python reference on real candles.

Every hand-worked case runs both ``simulate`` and ``reference_simulate`` (``_run``), which must agree exactly.
"""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from huracan_assets.core.costs import CostModel
from huracan_assets.core.execution import NO_STOP_SLIPPAGE, StopSlippage
from huracan_assets.core.labels.triple_barrier import BarrierSpec, _trailing_vol, triple_barrier
from huracan_assets.core.shadow import RISK_PRESETS, SKIP_REASONS, RiskPreset, ShadowSpec, reference_simulate, simulate
from huracan_assets.core.shadow.trader import EQUITY_SCHEMA, TRADE_SCHEMA, ShadowState, _exact_vol, _vol_bounds

BAR = 3_600_000
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
WARM = 4
START = T0 + WARM * BAR  # the window's first bar, 04:00 UTC; offset 20 is the next UTC day's first bar
# Flat closes have zero volatility, floored to min_vol = 0.01: a long entered at 100 has pt = 100 e^0.01 = 101.005
# and sl = 100 e^-0.01 = 99.005 (a short: mirrored); the vertical barrier is 5 bars after the entry bar. With
# p = 0.9 the expected edge is (2 x 0.9 - 1) x 1 x 0.01 x 1e4 = 80 bps.
# The hand-worked cases below fill at the signal bar's close (latency 0) and charge no stop slippage, unless they
# say otherwise: the latency, the exit bar's costs and the stop slippage have their own sections.
RISK = RiskPreset("test", 0.5, 8, 0.04)
SPEC = ShadowSpec(
    cooldown_bars=0, dedup_bars=0, pt_mult=1.0, sl_mult=1.0, max_holding_bars=5, vol_window=4, min_vol=0.01, risk=RISK,
    latency_bars=0, stop_slippage=NO_STOP_SLIPPAGE,
)  # fmt: skip
UP, DOWN = 100 * math.exp(0.01), 100 * math.exp(-0.01)
Q = (100.0, 100.3, 99.7, 100.0)  # a quiet bar: touches nothing
HIGH = (100.0, 101.5, 99.8, 100.0)  # touches the upper barrier only
LOW = (100.0, 100.2, 98.8, 100.0)  # touches the lower barrier only
SAMPLE_1H = Path(__file__).resolve().parents[3] / "huracan_assets" / "sample_data" / "ohlcv" / "1h"


def _at(offset: int) -> int:
    return START + offset * BAR


def _market(bars, p=None, meta=None, fee=None, spread=None, slip=None, gaps=(), warm=WARM, warm_p=np.nan) -> dict:
    """``warm`` flat bars at 100, then the window's ``bars`` (open, high, low, close) at offsets 0, 1, ...;
    ``p`` / ``meta`` / ``fee`` / ``spread`` / ``slip``: {offset: value} (NaN p, NaN meta, 0 costs elsewhere);
    offsets in ``gaps`` are left out (holes in the data)."""
    rows = [(-warm + k, (100.0,) * 4) for k in range(warm)] + [(k, b) for k, b in enumerate(bars) if k not in gaps]

    def column(values, default, warm_value=None):
        values = values or {}
        return np.array([values.get(k, default) if k >= 0 else (warm_value or default) for k, _ in rows], float)

    return {
        "ts": np.array([_at(k) for k, _ in rows], np.int64),
        **{name: np.array([b[i] for _, b in rows]) for i, name in enumerate(("open_", "high", "low", "close"))},
        "p": column(p, np.nan, warm_p),
        "meta_direction": column(meta, np.nan),
        "fee_bps": column(fee, 0.0),
        "spread_bps": column(spread, 0.0),
        "slippage_bps": column(slip, 0.0),
    }


def _run(
    market: dict,
    spec: ShadowSpec = SPEC,
    start: int = START,
    end: int | None = None,
    initial_state: dict | None = None,
    carry: bool = False,
    **changes,
):
    """Both implementations on ``market`` (which must agree exactly, final state included); returns simulate's
    result."""
    spec = dataclasses.replace(spec, **changes)
    end = int(market["ts"][-1]) + 1 if end is None else end
    window = {"start_ms": start, "end_ms": end, "spec": spec, "bar_ms": BAR, "initial_state": initial_state}
    fast = simulate(**market, **window, carry=carry)
    slow = reference_simulate(**market, **window, carry=carry)
    assert fast.state == slow.state and json.loads(json.dumps(fast.state)) == fast.state
    assert_frame_equal(fast.trades, slow.trades, check_exact=True)
    assert_frame_equal(fast.equity, slow.equity, check_exact=True)
    assert fast.skipped == slow.skipped and list(fast.skipped) == list(SKIP_REASONS)
    assert fast.stats.keys() == slow.stats.keys()
    assert all(_same(fast.stats[k], slow.stats[k]) for k in fast.stats)
    assert fast.trades.schema == pl.Schema(TRADE_SCHEMA) and fast.equity.schema == pl.Schema(EQUITY_SCHEMA)
    return fast


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _trades(result) -> list[tuple]:
    """(entry offset, exit offset, side, entry, exit, reason) per trade."""
    return [
        ((r["entry_ts"] - START) // BAR, (r["exit_ts"] - START) // BAR, r["side"], r["entry_price"],
         r["exit_price"], r["exit_reason"])
        for r in result.trades.iter_rows(named=True)
    ]  # fmt: skip


def _bps(exit_price: float, side: int = 1, entry: float = 100.0) -> float:
    return side * (exit_price / entry - 1) * 1e4


# ------------------------------------------------------------------------------------------------- exits


def test_long_hits_the_profit_take():
    out = _run(_market([Q, Q, HIGH, Q], p={0: 0.9}))
    assert _trades(out) == [(0, 2, 1, 100.0, UP, "pt")]
    row = out.trades.row(0, named=True)
    assert row["size"] == 0.5 and row["cost_bps"] == 0.0
    assert row["gross_bps"] == pytest.approx(100.5016708, abs=1e-6) and row["net_bps"] == row["gross_bps"]
    assert out.stats["total_return"] == pytest.approx(0.5 * (UP / 100 - 1), rel=1e-12)
    assert out.stats["n_trades"] == 1 and out.stats["hit_rate"] == 1.0


def test_short_hits_the_stop():
    out = _run(_market([Q, HIGH, Q], p={0: 0.1}))
    assert _trades(out) == [(0, 1, -1, 100.0, UP, "sl")]
    assert out.trades["net_bps"][0] == pytest.approx(_bps(UP, side=-1), rel=1e-12)
    assert out.trades["net_bps"][0] == pytest.approx(-100.5016708, abs=1e-6)
    assert out.stats["hit_rate"] == 0.0


def test_short_hits_its_profit_take_below():
    out = _run(_market([Q, LOW, Q], p={0: 0.1}))
    assert _trades(out) == [(0, 1, -1, 100.0, DOWN, "pt")]
    assert out.trades["net_bps"][0] == pytest.approx(99.5016625, abs=1e-6)


def test_a_bar_touching_both_barriers_is_the_stop():
    both = (100.0, 101.5, 98.5, 100.0)
    assert _trades(_run(_market([Q, both], p={0: 0.9}))) == [(0, 1, 1, 100.0, DOWN, "sl")]
    assert _trades(_run(_market([Q, both], p={0: 0.1}))) == [(0, 1, -1, 100.0, UP, "sl")]


def test_a_gap_through_a_barrier_exits_at_the_open():
    # through the long's stop: filled at the open, 98, worse than the stop at 99.005
    out = _run(_market([Q, (98.0, 98.5, 97.5, 98.2)], p={0: 0.9}))
    assert _trades(out) == [(0, 1, 1, 100.0, 98.0, "sl")]
    assert out.trades["net_bps"][0] == pytest.approx(-200.0, abs=1e-9)
    # through the short's stop above
    assert _trades(_run(_market([Q, (102.0, 102.5, 101.5, 102.0)], p={0: 0.1}))) == [(0, 1, -1, 100.0, 102.0, "sl")]
    # through the long's profit-take: at the open too
    assert _trades(_run(_market([Q, (102.0, 102.5, 101.5, 102.0)], p={0: 0.9}))) == [(0, 1, 1, 100.0, 102.0, "pt")]


def test_vertical_barrier_exits_at_the_close_of_bar_t_plus_max_holding():
    vertical_bar = (100.0, 100.3, 99.7, 100.2)
    out = _run(_market([Q, Q, Q, Q, Q, vertical_bar, HIGH], p={0: 0.9}))
    assert _trades(out) == [(0, 5, 1, 100.0, 100.2, "vertical")]
    assert out.trades["net_bps"][0] == pytest.approx(20.0, abs=1e-9)
    # time-based: with bars 4 and 5 missing, the first bar at or after entry + 5h is offset 6
    out = _run(_market([Q, Q, Q, Q, Q, Q, (100.0, 100.3, 99.7, 99.9), HIGH], p={0: 0.9}, gaps=(4, 5)))
    assert _trades(out) == [(0, 6, 1, 100.0, 99.9, "vertical")]
    # that bar's barriers come first
    assert _trades(_run(_market([Q, Q, Q, Q, Q, HIGH], p={0: 0.9}))) == [(0, 5, 1, 100.0, UP, "pt")]


def test_open_position_is_marked_to_the_last_close_of_the_window():
    # the window ends before offset 3, whose profit-take touch is outside it and ignored
    out = _run(_market([Q, Q, (100.0, 100.3, 99.7, 100.1), HIGH], p={0: 0.9}, fee={0: 20.0, 2: 30.0}), end=_at(3))
    assert _trades(out) == [(0, 2, 1, 100.0, 100.1, "mark")]
    assert out.trades["cost_bps"][0] == 25.0  # the exit cost is paid: half of the last bar's 30 bps
    assert out.trades["net_bps"][0] == pytest.approx(10.0 - 25.0, abs=1e-9)
    assert out.equity["ts"].to_list() == [_at(0), _at(1), _at(2)]
    assert out.equity["equity"][-1] == pytest.approx(1 + 0.5 * (0.001 - 0.0025), rel=1e-12)
    assert out.state["position"] is None and out.state["equity"] == out.equity["equity"][-1]
    # an entry on the window's last bar: marked at its own close, paying the round trip
    out = _run(_market([Q, Q], p={1: 0.9}, fee={1: 20.0}))
    assert _trades(out) == [(1, 1, 1, 100.0, 100.0, "mark")]
    assert out.trades["net_bps"][0] == pytest.approx(-20.0, abs=1e-9)


# ------------------------------------------------------------------------------------------------- costs


def test_costs_are_half_of_each_round_trip_estimate_per_side_entry_bar_in_exit_bar_out():
    m = _market([Q, Q, HIGH, Q], p={0: 0.9}, fee={0: 20.0, 2: 200.0}, spread={0: 4.0, 2: 40.0}, slip={0: 6.0, 2: 60.0})
    out = _run(m)
    row = out.trades.row(0, named=True)
    # in: half of the entry bar's 20 + 4 + 6 = 15 bps; out: half of the exit bar's 200 + 40 + 60 = 150 bps
    assert (row["fee_bps"], row["spread_bps"], row["slippage_bps"], row["stop_slippage_bps"]) == (110, 22, 33, 0)
    assert row["cost_bps"] == 165.0
    assert row["gross_bps"] == pytest.approx(_bps(UP), rel=1e-12)
    assert row["net_bps"] == pytest.approx(_bps(UP) - 165.0, rel=1e-12)
    net = (UP / 100 - 1) - 165e-4
    assert out.stats["total_return"] == pytest.approx(0.5 * net, rel=1e-12)
    # per-bar equity: the open position's liquidation value at each close, the entry's cost and that bar's exit cost
    # (bar 0: its own 15 bps; bar 1: no cost estimate of its own is 0 here)
    curve = out.equity["equity"].to_list()
    assert curve[:2] == pytest.approx([1 - 0.5 * 30e-4, 1 - 0.5 * 15e-4], rel=1e-12)
    assert curve[2:] == pytest.approx([1 + 0.5 * net] * 2, rel=1e-12)


def test_a_fill_or_exit_bar_without_a_cost_estimate_uses_the_signal_bars():
    # latency 1: filled at bar 1, exited at bar 3; neither has an estimate (NaN): both sides take the signal bar's
    nan = dict.fromkeys((1, 3), np.nan)
    m = _market([Q, Q, Q, HIGH], p={0: 0.9}, fee={0: 20.0, **nan}, spread={0: 4.0, **nan}, slip={0: 6.0, **nan})
    row = _run(m, latency_bars=1).trades.row(0, named=True)
    assert (row["entry_ts"], row["exit_ts"], row["cost_bps"]) == (_at(1), _at(3), 30.0)
    assert (row["fee_bps"], row["spread_bps"], row["slippage_bps"]) == (20.0, 4.0, 6.0)


def test_equity_compounds_and_size_is_the_fraction_of_equity_at_entry():
    out = _run(_market([Q, HIGH, Q, Q, LOW, Q], p={0: 0.9, 3: 0.9}), risk=RiskPreset("r", 0.25, 8, 0.5))
    assert _trades(out) == [(0, 1, 1, 100.0, UP, "pt"), (3, 4, 1, 100.0, DOWN, "sl")]
    e1 = 1 + 0.25 * (UP / 100 - 1)
    assert out.trades["size"].to_list() == pytest.approx([0.25, 0.25 * e1], rel=1e-12)
    assert out.stats["total_return"] == pytest.approx(e1 * (1 + 0.25 * (DOWN / 100 - 1)) - 1, rel=1e-12)


# ----------------------------------------------------------------------------------------------- latency


def test_latency_one_fills_at_the_next_open_with_the_signal_bars_barriers():
    # the signal of bar 0 (volatility 0.01, from the flat warm-up) fills at bar 1's open, 100.5, with barriers
    # 100.5 e^+-0.01, checked in the fill bar itself: its high 101.6 reaches 101.505
    m = _market([Q, (100.5, 101.6, 100.4, 101.0), Q], p={0: 0.9})
    out = _run(m, latency_bars=1)
    row = out.trades.row(0, named=True)
    assert (row["signal_ts"], row["entry_ts"], row["exit_ts"]) == (_at(0), _at(1), _at(1))
    assert (row["entry_price"], row["exit_price"], row["exit_reason"]) == (100.5, 100.5 * math.exp(0.01), "pt")
    assert out.equity["equity"][0] == 1.0  # no position while the order waits
    # latency 0, for comparison: filled at bar 0's close, 100, and out at its own profit-take 101.005 in bar 1
    assert _trades(_run(m)) == [(0, 1, 1, 100.0, UP, "pt")]
    assert _run(m).trades["signal_ts"].to_list() == [_at(0)]


def test_a_next_open_fill_after_a_hole_in_the_data():
    # bar 1 is missing: the signal of bar 0 fills at the open of bar 2, 99.0, the first market after the hole. The
    # barriers are the signal bar's (volatility 0.01) around the fill: stop 99 e^-0.01 = 98.015, which bar 3's low
    # 97.9 goes through. Costs: the fill bar's half round trips in, the exit bar's out, and the stop's slippage
    # (1 x the exit bar's half-spread 3 bps + 2 bps).
    bars = [Q, Q, (99.0, 99.5, 98.6, 99.2), (99.2, 99.4, 97.9, 98.1), Q, Q]
    m = _market(bars, p={0: 0.9}, gaps=(1,), fee={0: 20.0, 2: 10.0, 3: 30.0}, spread={0: 4.0, 2: 8.0, 3: 6.0})
    out = _run(m, latency_bars=1, stop_slippage=StopSlippage(1.0, 2.0))
    row = out.trades.row(0, named=True)
    assert (row["signal_ts"], row["entry_ts"], row["exit_ts"], row["exit_reason"]) == (_at(0), _at(2), _at(3), "sl")
    assert (row["entry_price"], row["exit_price"]) == (99.0, 99.0 * math.exp(-0.01))
    assert (row["fee_bps"], row["spread_bps"], row["slippage_bps"], row["stop_slippage_bps"]) == (20, 7, 0, 5)
    assert row["cost_bps"] == 32.0
    assert row["gross_bps"] == pytest.approx((math.exp(-0.01) - 1) * 1e4, rel=1e-12)  # -99.50 bps
    assert row["net_bps"] == pytest.approx(row["gross_bps"] - 32.0, rel=1e-12)
    # the labels with the same latency fill and exit there too
    frame = pl.DataFrame({"ts": m["ts"], "open": m["open_"], "high": m["high"], "low": m["low"], "close": m["close"]})
    barrier = BarrierSpec(pt_mult=1.0, sl_mult=1.0, max_holding_bars=5, vol_window=4, min_vol=0.01, entry_lag_bars=1)
    label = triple_barrier(frame, _at(0), _at(1), barrier, BAR).row(0, named=True)
    assert (label["entry_ts"], label["entry"], label["touch_ts"], label["barrier"]) == (_at(2), 99.0, _at(3), "sl")
    assert label["sl_price"] == row["exit_price"]


def test_an_order_with_no_fill_before_its_vertical_barrier_is_cancelled():
    # bars 1..5 are missing: the first bar after the signal is past its vertical barrier (5 bars): nothing is
    # bought; the trader is free again on that bar, whose own signal fills at the next open
    m = _market([Q, Q, Q, Q, Q, Q, Q, (100.2, 100.3, 100.1, 100.2), HIGH], p={0: 0.9, 6: 0.9}, gaps=(1, 2, 3, 4, 5))
    out = _run(m, latency_bars=1)
    assert out.trades.select("signal_ts", "entry_ts", "exit_ts").rows() == [(_at(6), _at(7), _at(8))]
    assert out.equity["equity"][:2].to_list() == [1.0, 1.0]


def test_the_trader_is_busy_while_an_order_waits():
    # latency 2: the long of bar 0 fills at bar 2; bar 1's short passes every guardrail but is ignored, not counted
    out = _run(_market([Q, Q, Q, HIGH], p={0: 0.9, 1: 0.1}), latency_bars=2)
    assert out.trades.select("signal_ts", "entry_ts", "side").rows() == [(_at(0), _at(2), 1)]
    assert out.skipped == dict.fromkeys(SKIP_REASONS, 0) | {"no_signal": 2}
    assert out.stats["n_trades"] == 1


def test_an_order_waiting_at_the_windows_end_is_dropped_or_carried():
    m = _market([Q, Q, (100.2, 100.4, 100.1, 100.3), Q, Q, Q, Q, Q], p={1: 0.9})
    dropped = _run(m, latency_bars=1, end=_at(2))  # the default: it would fill after the window
    assert dropped.trades.height == 0 and dropped.state["pending"] is None and dropped.state["day_trades"] == 1
    carried = _run(m, latency_bars=1, end=_at(2), carry=True)
    assert carried.trades.height == 0 and carried.state["position"] is None
    assert carried.state["pending"] | {"vol": 0.01} == {
        "side": 1, "signal_ts": _at(1), "due_ts": _at(2), "vertical_ts": _at(6), "vol": 0.01, "signal_fee_bps": 0.0,
        "signal_spread_bps": 0.0, "signal_slippage_bps": 0.0,
    }  # fmt: skip
    following = _run(m, latency_bars=1, start=_at(2), initial_state=carried.state)
    assert following.trades.select("signal_ts", "entry_ts", "entry_price", "exit_reason").rows() == [
        (_at(1), _at(2), 100.2, "vertical")
    ]
    one_go = _run(m, latency_bars=1)
    assert_frame_equal(following.trades, one_go.trades)


# ------------------------------------------------------------------------------------------ stop slippage


def test_a_stop_pays_the_stop_slippage_on_the_exit_bars_spread():
    slip = StopSlippage(half_spreads=1.5, fixed_bps=2.0)
    m = _market([Q, LOW, Q], p={0: 0.9}, spread={0: 10.0, 1: 40.0})
    row = _run(m, stop_slippage=slip).trades.row(0, named=True)
    # the exit bar's half-spread is 20 bps: 1.5 x 20 + 2 = 32 bps, on top of the spreads paid (5 in, 20 out)
    assert (row["exit_reason"], row["exit_price"]) == ("sl", DOWN)  # the price is the stop; the slippage a cost
    assert (row["spread_bps"], row["stop_slippage_bps"], row["cost_bps"]) == (25.0, 32.0, 57.0)
    assert row["net_bps"] == pytest.approx(_bps(DOWN) - 57.0, rel=1e-12)
    # a short's stop above, and a gap through the stop (filled at the open): the same term
    assert _run(_market([Q, HIGH, Q], p={0: 0.1}, spread={1: 40.0}), stop_slippage=slip).trades[
        "stop_slippage_bps"
    ].to_list() == [32.0]
    gap = _run(_market([Q, (98.0, 98.5, 97.5, 98.2), Q], p={0: 0.9}, spread={1: 40.0}), stop_slippage=slip)
    assert gap.trades.select("exit_price", "stop_slippage_bps").rows() == [(98.0, 32.0)]
    # a profit-take, a vertical exit and a mark pay none
    pt = _run(_market([Q, HIGH], p={0: 0.9}, spread={1: 40.0}), stop_slippage=slip).trades
    assert pt.select("exit_reason", "spread_bps", "stop_slippage_bps").rows() == [("pt", 20.0, 0.0)]
    others = _run(_market([Q, Q, Q, Q, Q, Q, Q], p={0: 0.9, 6: 0.9}), stop_slippage=slip).trades
    assert others["exit_reason"].to_list() == ["vertical", "mark"] and others["stop_slippage_bps"].to_list() == [0, 0]


# -------------------------------------------------------------------------------------- state, day by day


def test_a_position_open_across_midnight_is_carried_not_marked():
    # day one ends at offset 19 (23:00 UTC) with the long of offset 18 open; it exits at offset 21, on day two
    m = _day_market({21: HIGH}, {}, (18,))
    day_one = _run(m, end=_at(20), carry=True)
    assert day_one.trades.height == 0
    pos = day_one.state["position"]
    assert (pos["side"], pos["signal_ts"], pos["entry_ts"], pos["entry_price"]) == (1, _at(18), _at(18), 100.0)
    assert (pos["pt"], pos["sl"], pos["vertical_ts"], pos["size"]) == (UP, DOWN, _at(23), 0.5)
    assert day_one.state["last_ts"] == _at(19) and day_one.state["day_trades"] == 1
    assert day_one.equity["equity"][-1] == 1.0  # its liquidation value at the close (no costs here)
    day_two = _run(m, start=_at(20), initial_state=day_one.state)
    one_go = _run(m)
    assert_frame_equal(day_two.trades, one_go.trades)
    assert day_two.trades.select("signal_ts", "exit_ts", "exit_reason").rows() == [(_at(18), _at(21), "pt")]
    assert_frame_equal(pl.concat([day_one.equity, day_two.equity]), one_go.equity)
    assert day_two.state == one_go.state
    # without the carry, day one marks it at its last close: a different (and shorter) trade
    assert _run(m, end=_at(20)).trades.select("exit_ts", "exit_reason").rows() == [(_at(19), "mark")]


def test_state_round_trips_through_json_and_guards_against_counting_bars_twice():
    m = _day_market({21: HIGH}, {}, (18,))
    state = _run(m, end=_at(20), carry=True, latency_bars=1).state
    assert state["pending"] is None and state["position"]["entry_ts"] == _at(19)
    assert ShadowState.from_dict(json.loads(json.dumps(state))).to_dict() == state
    assert len(json.dumps(state)) < 1000
    with pytest.raises(ValueError, match="twice"):
        simulate(**m, start_ms=_at(19), end_ms=_at(24), spec=SPEC, bar_ms=BAR, initial_state=state)
    with pytest.raises(ValueError, match="version"):
        simulate(**m, start_ms=_at(20), end_ms=_at(24), spec=SPEC, bar_ms=BAR, initial_state=state | {"version": 0})
    with pytest.raises(ValueError, match="fields"):
        ShadowState.from_dict(state | {"position": state["position"] | {"stop": 1.0}})
    with pytest.raises(ValueError, match="equity"):
        ShadowState.from_dict(state | {"equity": 0.0})
    # an empty window changes nothing
    assert simulate(**m, start_ms=_at(30), end_ms=_at(30), spec=SPEC, bar_ms=BAR, initial_state=state).state == state


# -------------------------------------------------------------------------------------------- guardrails


def test_threshold_bounds_are_inclusive_and_nan_is_no_signal():
    out = _run(_market([Q, Q, Q, Q, HIGH, Q], p={0: 0.54, 1: 0.46, 2: 0.5, 3: 0.55}))
    assert _trades(out) == [(3, 4, 1, 100.0, UP, "pt")]
    assert out.skipped == dict.fromkeys(SKIP_REASONS, 0) | {"no_signal": 5}  # offsets 0, 1, 2 and the NaN 4, 5
    assert _trades(_run(_market([Q, LOW], p={0: 0.45}))) == [(0, 1, -1, 100.0, DOWN, "pt")]
    assert _trades(_run(_market([Q, LOW], p={0: 0.45}), threshold=0.06)) == []


def test_spread_guard():
    out = _run(_market([Q, Q, Q, HIGH], p={0: 0.9, 1: 0.9, 2: 0.9}, spread={0: 50.5, 1: np.nan, 2: 50.0}))
    assert _trades(out) == [(2, 3, 1, 100.0, UP, "pt")]  # 50 is not above max_spread_bps: trades
    assert out.skipped["spread"] == 2
    assert _run(_market([Q, Q], p={0: 0.9}, spread={0: 60.0}), max_spread_bps=60.0).stats["n_trades"] == 1


def test_net_edge_floor():
    # threshold 0.01, p = 0.53: edge = 0.06 x 1 x 0.01 x 1e4 = 6 bps; a 1.5 bp round trip leaves 4.5 < 5, 0.5 leaves 5.5
    m = _market([Q, Q, HIGH], p={0: 0.53, 1: 0.53}, fee={0: 1.5, 1: 0.5})
    out = _run(m, threshold=0.01)
    assert _trades(out) == [(1, 2, 1, 100.0, UP, "pt")]
    assert out.skipped["net_edge"] == 1
    assert _run(m, threshold=0.01, net_edge_floor_bps=5.6).stats["n_trades"] == 0
    assert _run(m, threshold=0.01, net_edge_floor_bps=4.0).trades["entry_ts"].to_list() == [_at(0)]
    # the edge scales with the barrier distance: pt_mult 2 doubles it (12 - 1.5 >= 5)
    assert _run(m, threshold=0.01, pt_mult=2.0).trades["entry_ts"].to_list() == [_at(0)]


def test_no_volatility_yet_fails_the_net_edge_floor():
    # no warm-up: the first bar has no return, the second one return (< 2); the third bar has a volatility
    out = _run(_market([Q, Q, Q, HIGH], p={0: 0.9, 1: 0.9, 2: 0.9}, warm=0))
    assert _trades(out) == [(2, 3, 1, 100.0, UP, "pt")]
    assert out.skipped["net_edge"] == 2


def test_meta_direction_against_the_side_blocks_the_entry():
    m = _market([Q, Q, HIGH], p={0: 0.9, 1: 0.9}, meta={0: -1, 1: 0})
    out = _run(m)
    assert _trades(out) == [(1, 2, 1, 100.0, UP, "pt")]
    assert out.skipped["meta"] == 1
    assert _trades(_run(m, respect_meta=False))[0][0] == 0
    agreeing = _run(_market([Q, Q, HIGH], p={0: 0.1, 1: 0.9}, meta={0: -1, 1: -1}))
    assert [t[:3] for t in _trades(agreeing)] == [(0, 2, -1)]  # short with meta -1 trades; the long at 1 is meta
    assert agreeing.skipped["meta"] == 1
    no_meta = {**m, "meta_direction": None}
    assert _trades(_run(no_meta))[0][0] == 0


def test_cooldown_blocks_the_exit_bar_and_the_next_cooldown_bars():
    m = _market([Q, HIGH, Q, Q, Q, HIGH], p=dict.fromkeys(range(5), 0.9))
    out = _run(m, cooldown_bars=2)
    assert _trades(out) == [(0, 1, 1, 100.0, UP, "pt"), (4, 5, 1, 100.0, UP, "pt")]
    assert out.skipped["cooldown"] == 3  # offsets 1 (the exit bar), 2 and 3
    out = _run(m, cooldown_bars=0)
    assert [t[0] for t in _trades(out)] == [0, 2] and out.skipped["cooldown"] == 1  # the exit bar only


def test_dedup_blocks_the_same_direction_only():
    out = _run(_market([Q, HIGH, Q, Q, Q, HIGH], p={0: 0.9, 2: 0.9, 3: 0.9, 4: 0.9}), dedup_bars=3)
    assert [t[:3] for t in _trades(out)] == [(0, 1, 1), (4, 5, 1)]
    assert out.skipped["dedup"] == 2  # offsets 2 and 3: within 3 bars of the long at 0
    out = _run(_market([Q, HIGH, Q, LOW], p={0: 0.9, 2: 0.1}), dedup_bars=3)
    assert [t[:3] for t in _trades(out)] == [(0, 1, 1), (2, 3, -1)]
    assert out.skipped["dedup"] == 0


def test_guardrails_are_counted_while_a_position_is_open_and_the_passing_signal_is_ignored():
    out = _run(_market([Q, Q, Q, Q, HIGH], p={0: 0.9, 1: 0.9, 2: 0.1, 3: 0.5}), dedup_bars=1)
    assert [t[:3] for t in _trades(out)] == [(0, 4, 1)]
    # offset 1: dedup (long at 0); 2: a short passing everything, ignored (position open); 3 and 4: no signal
    assert out.skipped == dict.fromkeys(SKIP_REASONS, 0) | {"dedup": 1, "no_signal": 2}


def _day_market(day_one, day_two, p_offsets) -> dict:
    """Offsets 0-19 are 2024-03-01 (04:00-23:00 UTC), 20-23 are 2024-03-02."""
    bars = [Q] * 24
    for k, bar in {**day_one, **day_two}.items():
        bars[k] = bar
    return _market(bars, p=dict.fromkeys(p_offsets, 0.9))


def test_max_trades_per_day():
    m = _day_market({1: HIGH, 3: HIGH, 5: HIGH}, {21: HIGH}, (0, 2, 4, 20))
    out = _run(m, risk=RiskPreset("two", 0.5, 2, 0.5))
    assert [t[0] for t in _trades(out)] == [0, 2, 20]  # the third of the day is blocked; the next day trades
    assert out.skipped["max_trades_per_day"] == 1
    assert [t[0] for t in _trades(_run(m, risk=RiskPreset("three", 0.5, 3, 0.5)))] == [0, 2, 4, 20]


def test_daily_loss_limit():
    # fraction 1: each stop loses 1 - e^-0.01 = 0.995% of equity; after two stops the day is down 1.98% > 1.5%
    m = _day_market({1: LOW, 3: LOW, 5: LOW}, {21: HIGH}, (0, 2, 4, 20))
    out = _run(m, risk=RiskPreset("tight", 1.0, 16, 0.015))
    assert [t[:3] for t in _trades(out)] == [(0, 1, 1), (2, 3, 1), (20, 21, 1)]
    assert out.skipped["daily_loss_limit"] == 1
    assert [t[0] for t in _trades(_run(m, risk=RiskPreset("loose", 1.0, 16, 0.02)))] == [0, 2, 4, 20]


def test_warm_up_bars_never_trade_nor_count():
    out = _run(_market([Q, HIGH, Q], warm=6, warm_p=0.9))
    assert out.trades.height == 0
    assert out.skipped == dict.fromkeys(SKIP_REASONS, 0) | {"no_signal": 3}
    assert out.equity["ts"].to_list() == [_at(0), _at(1), _at(2)]
    assert out.equity["equity"].to_list() == [1.0, 1.0, 1.0]
    assert math.isnan(out.stats["net_bps_per_trade"]) and out.stats["total_return"] == 0.0


def test_stats_on_a_hand_worked_run():
    m = _day_market({1: HIGH, 21: LOW}, {}, (0, 20))
    out = _run(m)
    win, loss = UP / 100 - 1, DOWN / 100 - 1
    assert out.stats["n_trades"] == 2 and out.stats["hit_rate"] == 0.5
    assert out.stats["net_bps_per_trade"] == pytest.approx((win + loss) / 2 * 1e4, rel=1e-12)
    final = (1 + 0.5 * win) * (1 + 0.5 * loss)
    assert out.stats["total_return"] == pytest.approx(final - 1, rel=1e-12)
    assert out.stats["max_drawdown"] == pytest.approx(-0.5 * loss, rel=1e-12)  # the loss from the peak
    # two days: day 1 ends at 1 + 0.5 win, day 2 at final; sharpe = mean / std x sqrt(365)
    rets = np.array([0.5 * win, final / (1 + 0.5 * win) - 1])
    assert out.stats["sharpe"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(365), rel=1e-9)
    # notional traded: 2 x (0.5 + 0.5 (1 + 0.5 win)) over the mean equity, per day (24 bars = 1 day)
    size = 0.5 + 0.5 * (1 + 0.5 * win)
    assert out.stats["turnover_per_day"] == pytest.approx(2 * size / out.equity["equity"].mean(), rel=1e-12)


def test_presets_and_bad_input():
    assert RISK_PRESETS["conservative"] == RiskPreset("conservative", 0.25, 4, 0.02)
    assert ShadowSpec().risk == RISK_PRESETS["balanced"]
    assert RISK_PRESETS["aggressive"].position_fraction == 1.0 and RISK_PRESETS["aggressive"].max_trades_per_day == 16
    assert (ShadowSpec().latency_bars, ShadowSpec().stop_slippage) == (1, StopSlippage(1.0, 2.0))  # the defaults
    for bad in ({"threshold": 0.5}, {"cooldown_bars": -1}, {"vol_window": 1}, {"pt_mult": 0.0}, {"respect_meta": 1},
                {"latency_bars": -1}, {"latency_bars": 25}, {"latency_bars": 1.0}, {"stop_slippage": 2.0}):  # fmt: skip
        with pytest.raises(ValueError):
            ShadowSpec(**bad)
    with pytest.raises(ValueError):
        RiskPreset("x", 1.5, 4, 0.02)
    for bad_slippage in ((-1.0, 0.0), (0.0, math.nan), (True, 1.0)):
        with pytest.raises(ValueError, match="StopSlippage"):
            StopSlippage(*bad_slippage)
    m = _market([Q, Q], p={0: 0.9})
    with pytest.raises(ValueError, match="strictly increasing"):
        simulate(**{**m, "ts": m["ts"][::-1].copy()}, start_ms=START, end_ms=_at(2), spec=SPEC, bar_ms=BAR)
    with pytest.raises(ValueError, match="probabilities"):
        simulate(**{**m, "p": m["p"] + 1.0}, start_ms=START, end_ms=_at(2), spec=SPEC, bar_ms=BAR)
    with pytest.raises(ValueError, match="one value per bar"):
        reference_simulate(**{**m, "fee_bps": [0.0]}, start_ms=START, end_ms=_at(2), spec=SPEC, bar_ms=BAR)
    for column, value in (("close", np.nan), ("low", 0.0), ("high", np.inf)):
        broken = {**m, column: m[column].copy()}
        broken[column][WARM] = value
        with pytest.raises(ValueError, match="finite prices"):
            simulate(**broken, start_ms=START, end_ms=_at(2), spec=SPEC, bar_ms=BAR)
    beyond = {**m, "close": m["close"].copy()}
    beyond["close"][-1] = np.nan  # after the window's end: not read, not checked
    assert simulate(**beyond, start_ms=START, end_ms=_at(1), spec=SPEC, bar_ms=BAR).trades.height == 1
    with pytest.raises(ValueError, match="meta_direction"):
        simulate(**{**m, "meta_direction": np.full(len(m["ts"]), 0.5)}, start_ms=START, end_ms=_at(2), spec=SPEC,
                 bar_ms=BAR)  # fmt: skip


# ------------------------------------------------------------------------------------ volatility bounds


def _bound_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    synthetic = np.full(3000, 100.0)
    synthetic[500:600] = 100.0 * np.exp(np.cumsum(np.full(100, 1e-3)))  # constant returns: a mean, no variance
    synthetic[600:] = synthetic[599]
    synthetic[1200] *= 1.5  # a spike, up and back: it leaves the window's sums
    synthetic[2000:] *= np.exp(np.cumsum(rng.normal(0.0, 1e-7, 1000)))  # tiny moves
    hourly = {s: pl.read_parquet(SAMPLE_1H / f"{s}_USDT.parquet")["close"].to_numpy() for s in ("SOL", "BTC")}
    return {**hourly, "synthetic": synthetic}


@pytest.mark.parametrize("window", [4, 48, 100])
def test_volatility_bounds_bracket_the_labels_volatility(window):
    min_returns = max(2, math.ceil(window / 2))
    for name, close in _bound_cases().items():
        for lo in (0, window + 5):
            rows = np.arange(lo, close.size, dtype=np.int64)
            exact = _trailing_vol(close, rows, window, min_returns, 1e-4)
            rets, vlo, vhi = _vol_bounds(close, lo, close.size, window, min_returns, 1e-4)
            assert np.array_equal(np.isnan(vlo), np.isnan(exact)) and np.array_equal(np.isnan(vhi), np.isnan(exact))
            ok = ~np.isnan(exact)
            assert (vlo[ok] <= exact[ok]).all() and (exact[ok] <= vhi[ok]).all(), name
            assert ((vhi[ok] - vlo[ok]) / exact[ok]).max() < 1e-7, name  # tight: the exact path stays rare
            partial = max(window - lo, 0)  # rows with a partial window: exact, one value
            assert (vlo[:partial] == vhi[:partial])[ok[:partial]].all()
            sample = rows[(rows >= window) & (rows % 37 == 0)]
            assert [_exact_vol(rets, i, window, 1e-4) for i in sample] == exact[sample - lo].tolist(), name


def test_net_edge_exactly_at_the_floor_is_decided_on_the_exact_volatility():
    # zig-zag closes: the volatility is well above min_vol, and the floor is set to the exact net edge itself
    closes = [100.0, 101.0] * 4 + [100.0, 100.0, 100.0]
    m = {
        "ts": np.array([T0 + k * BAR for k in range(len(closes))], np.int64),
        "open_": np.array(closes), "high": np.array(closes) + 0.1, "low": np.array(closes) - 0.1,
        "close": np.array(closes), "p": np.array([np.nan] * 8 + [0.9, np.nan, np.nan]),
        "meta_direction": None, "fee_bps": np.full(len(closes), 3.0), "spread_bps": np.full(len(closes), 2.0),
        "slippage_bps": np.full(len(closes), 1.0),
    }  # fmt: skip
    spec = dataclasses.replace(SPEC, min_vol=1e-3)
    entry = 8
    vol = _trailing_vol(m["close"], np.array([entry]), 4, 2, 1e-3)[0]
    _, vlo, vhi = _vol_bounds(m["close"], 0, len(closes), 4, 2, 1e-3)
    assert vlo[entry] < vol < vhi[entry]  # the bounds straddle any floor at the exact edge
    floor = (2.0 * 0.9 - 1.0) * 1.0 * vol * 1e4 - (3.0 + 2.0 + 1.0)
    window = {"start_ms": T0 + entry * BAR, "end_ms": T0 + len(closes) * BAR, "bar_ms": BAR}
    at = simulate(**m, **window, spec=dataclasses.replace(spec, net_edge_floor_bps=floor))
    assert at.trades.height == 1 and at.skipped["net_edge"] == 0
    above = dataclasses.replace(spec, net_edge_floor_bps=float(np.nextafter(floor, np.inf)))
    assert simulate(**m, **window, spec=above).trades.height == 0
    for s in (dataclasses.replace(spec, net_edge_floor_bps=floor), above):
        assert_frame_equal(simulate(**m, **window, spec=s).trades, reference_simulate(**m, **window, spec=s).trades)


# ------------------------------------------------------------------------------------------ real candles


def _real_inputs(symbol: str) -> dict:
    """Hourly sample candles, a momentum pseudo-probability (12-bar log return through a logistic), meta
    directions from a seeded RNG, and binance spot costs for a 1,000 USDT order held up to a day."""
    frame = pl.read_parquet(SAMPLE_1H / f"{symbol}_USDT.parquet")
    costs = CostModel.from_config({"venue": "binance_spot"}).round_trip_bps(frame, 1000.0, 1440)
    close = frame["close"].to_numpy()
    momentum = np.full(close.size, np.nan)
    momentum[12:] = np.log(close[12:] / close[:-12])
    return {
        "ts": frame["ts"],
        "open_": frame["open"],
        "high": frame["high"],
        "low": frame["low"],
        "close": frame["close"],
        "p": 1.0 / (1.0 + np.exp(-momentum / 0.02)),
        "meta_direction": np.random.default_rng(7).integers(-1, 2, close.size),
        "fee_bps": costs["fee_bps"],
        "spread_bps": costs["spread_bps"],
        "slippage_bps": costs["slippage_bps"],
    }


@pytest.mark.parametrize(
    ("symbol", "preset", "latency"),
    [("SOL", "balanced", 1), ("BTC", "aggressive", 0), ("SOL", "conservative", 3), ("BTC", "balanced", 1)],
)
def test_simulate_matches_the_reference_on_real_candles(symbol, preset, latency):
    m = _real_inputs(symbol)
    ts = m["ts"].to_numpy()
    spec = ShadowSpec(risk=RISK_PRESETS[preset], latency_bars=latency)  # the default stop slippage
    start, end = int(ts[200]), int(ts[-100])  # 200 warm-up bars; the last 100 bars are outside the window
    for carry in (False, True):
        fast = simulate(**m, start_ms=start, end_ms=end, spec=spec, bar_ms=BAR, carry=carry)
        slow = reference_simulate(**m, start_ms=start, end_ms=end, spec=spec, bar_ms=BAR, carry=carry)
        assert fast.stats["n_trades"] == slow.stats["n_trades"] >= 30
        assert_frame_equal(fast.trades, slow.trades, check_exact=True)
        assert_frame_equal(fast.equity, slow.equity, check_exact=True)
        assert fast.skipped == slow.skipped and fast.state == slow.state
        assert abs(fast.stats["total_return"] - slow.stats["total_return"]) <= 1e-12
    # the run exercises the rules: several exit kinds and guardrails, stop slippage, entries only inside the window
    assert {"pt", "sl"} <= set(fast.trades["exit_reason"].to_list())
    assert sum(v > 0 for v in fast.skipped.values()) >= 5
    stops = fast.trades.filter(pl.col("exit_reason") == "sl")
    assert (stops["stop_slippage_bps"] > 2.0).all() and (fast.trades["stop_slippage_bps"] > 0).sum() == stops.height
    lag = fast.trades["entry_ts"] - fast.trades["signal_ts"]
    assert (lag == latency * BAR).all()  # the sample has no holes
    assert fast.trades["signal_ts"].min() >= start and fast.trades["exit_ts"].max() < end
    assert fast.equity.height == int(((ts >= start) & (ts < end)).sum())


# --------------------------------------------------------------------- day by day equals one run, real candles

REAL = Path(__file__).resolve().parents[2] / "data"
DAY_MS = 86_400_000


def _candle_inputs(path: Path, bar_ms: int, holes: bool) -> dict:
    """Real candles (every 13th bar and a 5-bar block dropped with ``holes``), a momentum pseudo-probability,
    seeded meta directions and binance spot costs, as ``simulate``'s per-bar keyword arguments."""
    frame = pl.read_parquet(path).sort("ts")
    if holes:
        frame = frame.with_row_index().filter((pl.col("index") % 13 != 7) & ~pl.col("index").is_between(300, 304))
        frame = frame.drop("index")
    bars_per_day = DAY_MS // bar_ms
    costs = CostModel.from_config({"venue": "binance_spot"}).round_trip_bps(frame, 1000.0, 1440)
    close = frame["close"].to_numpy()
    momentum = np.full(close.size, np.nan)
    momentum[6:] = np.log(close[6:] / close[:-6])
    scale = 0.01 if bars_per_day == 24 else 0.003
    return {
        "ts": frame["ts"].to_numpy(),
        "open_": frame["open"].to_numpy(),
        "high": frame["high"].to_numpy(),
        "low": frame["low"].to_numpy(),
        "close": close,
        "p": 1.0 / (1.0 + np.exp(-momentum / scale)),
        "meta_direction": np.random.default_rng(11).integers(-1, 2, close.size).astype(float),
        "fee_bps": costs["fee_bps"].to_numpy(),
        "spread_bps": costs["spread_bps"].to_numpy(),
        "slippage_bps": costs["slippage_bps"].to_numpy(),
    }


def _slice(m: dict, lo_ms: int, hi_ms: int) -> dict:
    keep = (m["ts"] >= lo_ms) & (m["ts"] < hi_ms)
    return {k: v[keep] for k, v in m.items()}


@pytest.mark.parametrize(
    ("path", "bar_ms", "barriers", "latency", "holes", "window_hours"),
    [
        ("replay_long/1h/BTC_USDT.parquet", BAR, (2.0, 24), 1, False, 24),
        ("replay_long/1h/AVAX_USDT.parquet", BAR, (2.0, 24), 0, False, 24),
        ("replay_long/1h/SOL_USDT.parquet", BAR, (1.5, 12), 2, True, 24),
        # 5m, three days: windows of 4 hours (so that more than one boundary is crossed), wider barriers
        ("special/BTC_USDT_5m_2024-08-19_21.parquet", 300_000, (3.0, 144), 1, False, 4),
        ("special/JUV_USDT_5m_2024-08-19_21.parquet", 300_000, (3.0, 144), 1, True, 4),
    ],
)
def test_day_by_day_with_the_carried_state_equals_one_simulation(path, bar_ms, barriers, latency, holes, window_hours):
    """Each UTC day (or shorter window) simulated alone, its arrays cut to it and to the volatility's warm-up before
    it, from the state the window before left (through JSON): the same trades, equity, skip counts and final state
    as one run over all of them, whether the last window marks its open position or carries it."""
    m = _candle_inputs(REAL / path, bar_ms, holes)
    spec = ShadowSpec(
        pt_mult=barriers[0], sl_mult=barriers[0], max_holding_bars=barriers[1], latency_bars=latency,
        cooldown_bars=1, dedup_bars=3, net_edge_floor_bps=-50.0, max_spread_bps=500.0,
        risk=RISK_PRESETS["aggressive"],
    )  # fmt: skip
    step = window_hours * BAR
    first = (int(m["ts"][0]) // DAY_MS + 1) * DAY_MS  # from the first whole day: its warm-up is the day before
    windows = list(range(first, (int(m["ts"][-1]) // DAY_MS + 1) * DAY_MS, step))
    warm = 2 * (spec.vol_window + 2) * bar_ms  # (with holes: still at least vol_window + 1 bars before the window)
    kw = {"spec": spec, "bar_ms": bar_ms}
    for carry_last in (False, True):
        whole = simulate(**m, start_ms=windows[0], end_ms=windows[-1] + step, carry=carry_last, **kw)
        state, parts, carried = None, [], []
        for start in windows:
            carry = carry_last or start != windows[-1]
            one = dict(_slice(m, start - warm, start + step), start_ms=start, end_ms=start + step, **kw)
            res = simulate(**one, initial_state=state, carry=carry)
            if start == windows[1]:  # the oracle agrees on a window started from a carried state too
                ref = reference_simulate(**one, initial_state=state, carry=carry)
                assert_frame_equal(res.trades, ref.trades, check_exact=True)
                assert res.state == ref.state
            state = json.loads(json.dumps(res.state))  # what a ledger would store
            parts.append(res)
            carried.append(state)
        assert_frame_equal(pl.concat([r.trades for r in parts]), whole.trades, check_exact=True)
        assert_frame_equal(pl.concat([r.equity for r in parts]), whole.equity, check_exact=True)
        assert {k: sum(r.skipped[k] for r in parts) for k in SKIP_REASONS} == whole.skipped
        assert state == whole.state
    # not vacuous: trades of both sides, and positions carried from one window to the next
    assert whole.trades.height >= 10 and set(whole.trades["side"]) == {-1, 1}
    assert sum(s["position"] is not None for s in carried[:-1]) >= 1
    if window_hours == 24:  # ... over midnight, and (with a latency) orders waiting for their fill at midnight
        over_midnight = whole.trades.filter(pl.col("entry_ts") // DAY_MS != pl.col("exit_ts") // DAY_MS)
        assert over_midnight.height >= 3
        assert latency == 0 or sum(s["pending"] is not None for s in carried[:-1]) >= 1
