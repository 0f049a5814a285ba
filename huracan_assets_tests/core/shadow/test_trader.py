"""Shadow trader: hand-worked bar sequences with known trades, every guardrail, and exact agreement of the numba
loop with the plain-Python reference on real candles.

Every hand-worked case runs both ``simulate`` and ``reference_simulate`` (``_run``), which must agree exactly.
"""

import dataclasses
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from huracan_assets.core.costs import CostModel
from huracan_assets.core.labels.triple_barrier import _trailing_vol
from huracan_assets.core.shadow import RISK_PRESETS, SKIP_REASONS, RiskPreset, ShadowSpec, reference_simulate, simulate
from huracan_assets.core.shadow.trader import EQUITY_SCHEMA, TRADE_SCHEMA, _exact_vol, _vol_bounds

BAR = 3_600_000
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
WARM = 4
START = T0 + WARM * BAR  # the window's first bar, 04:00 UTC; offset 20 is the next UTC day's first bar
# Flat closes have zero volatility, floored to min_vol = 0.01: a long entered at 100 has pt = 100 e^0.01 = 101.005
# and sl = 100 e^-0.01 = 99.005 (a short: mirrored); the vertical barrier is 5 bars after the entry bar. With
# p = 0.9 the expected edge is (2 x 0.9 - 1) x 1 x 0.01 x 1e4 = 80 bps.
RISK = RiskPreset("test", 0.5, 8, 0.04)
SPEC = ShadowSpec(
    cooldown_bars=0, dedup_bars=0, pt_mult=1.0, sl_mult=1.0, max_holding_bars=5, vol_window=4, min_vol=0.01, risk=RISK
)
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


def _run(market: dict, spec: ShadowSpec = SPEC, start: int = START, end: int | None = None, **changes):
    """Both implementations on ``market`` (which must agree exactly); returns simulate's result."""
    spec = dataclasses.replace(spec, **changes)
    end = int(market["ts"][-1]) + 1 if end is None else end
    fast = simulate(**market, start_ms=start, end_ms=end, spec=spec, bar_ms=BAR)
    slow = reference_simulate(**market, start_ms=start, end_ms=end, spec=spec, bar_ms=BAR)
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
    out = _run(_market([Q, Q, (100.0, 100.3, 99.7, 100.1), HIGH], p={0: 0.9}, fee={0: 20.0}), end=_at(3))
    assert _trades(out) == [(0, 2, 1, 100.0, 100.1, "mark")]
    assert out.trades["cost_bps"][0] == 20.0  # the exit cost is paid
    assert out.trades["net_bps"][0] == pytest.approx(10.0 - 20.0, abs=1e-9)
    assert out.equity["ts"].to_list() == [_at(0), _at(1), _at(2)]
    assert out.equity["equity"][-1] == pytest.approx(1 + 0.5 * (0.001 - 0.002), rel=1e-12)
    # an entry on the window's last bar: marked at its own close, paying the round trip
    out = _run(_market([Q, Q], p={1: 0.9}, fee={1: 20.0}))
    assert _trades(out) == [(1, 1, 1, 100.0, 100.0, "mark")]
    assert out.trades["net_bps"][0] == pytest.approx(-20.0, abs=1e-9)


# ------------------------------------------------------------------------------------------------- costs


def test_costs_are_half_of_each_round_trip_estimate_per_side_from_the_entry_bar():
    m = _market([Q, Q, HIGH, Q], p={0: 0.9}, fee={0: 20.0, 2: 200.0}, spread={0: 4.0, 2: 40.0}, slip={0: 6.0, 2: 60.0})
    out = _run(m)
    row = out.trades.row(0, named=True)
    # per side 10 + 2 + 3 = 15 bps, at entry and at exit (the exit bar's own estimates are not used)
    assert row["cost_bps"] == 30.0
    assert row["gross_bps"] == pytest.approx(_bps(UP), rel=1e-12)
    assert row["net_bps"] == pytest.approx(_bps(UP) - 30.0, rel=1e-12)
    assert row["net_bps"] == pytest.approx(70.5016708, abs=1e-6)
    net = (UP / 100 - 1) - 30e-4
    assert out.stats["total_return"] == pytest.approx(0.5 * net, rel=1e-12)
    # per-bar equity: the open position's liquidation value at each close, both costs paid
    assert out.equity["equity"].to_list()[:2] == pytest.approx([1 - 0.5 * 30e-4] * 2, rel=1e-12)
    assert out.equity["equity"].to_list()[2:] == pytest.approx([1 + 0.5 * net] * 2, rel=1e-12)


def test_equity_compounds_and_size_is_the_fraction_of_equity_at_entry():
    out = _run(_market([Q, HIGH, Q, Q, LOW, Q], p={0: 0.9, 3: 0.9}), risk=RiskPreset("r", 0.25, 8, 0.5))
    assert _trades(out) == [(0, 1, 1, 100.0, UP, "pt"), (3, 4, 1, 100.0, DOWN, "sl")]
    e1 = 1 + 0.25 * (UP / 100 - 1)
    assert out.trades["size"].to_list() == pytest.approx([0.25, 0.25 * e1], rel=1e-12)
    assert out.stats["total_return"] == pytest.approx(e1 * (1 + 0.25 * (DOWN / 100 - 1)) - 1, rel=1e-12)


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
    for bad in ({"threshold": 0.5}, {"cooldown_bars": -1}, {"vol_window": 1}, {"pt_mult": 0.0}, {"respect_meta": 1}):
        with pytest.raises(ValueError):
            ShadowSpec(**bad)
    with pytest.raises(ValueError):
        RiskPreset("x", 1.5, 4, 0.02)
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


@pytest.mark.parametrize(("symbol", "preset"), [("SOL", "balanced"), ("BTC", "aggressive"), ("SOL", "conservative")])
def test_simulate_matches_the_reference_on_real_candles(symbol, preset):
    m = _real_inputs(symbol)
    ts = m["ts"].to_numpy()
    spec = ShadowSpec(risk=RISK_PRESETS[preset])
    start, end = int(ts[200]), int(ts[-100])  # 200 warm-up bars; the last 100 bars are outside the window
    fast = simulate(**m, start_ms=start, end_ms=end, spec=spec, bar_ms=BAR)
    slow = reference_simulate(**m, start_ms=start, end_ms=end, spec=spec, bar_ms=BAR)
    assert fast.stats["n_trades"] == slow.stats["n_trades"] >= 30
    assert_frame_equal(fast.trades, slow.trades, check_exact=True)
    assert_frame_equal(fast.equity, slow.equity, check_exact=True)
    assert fast.skipped == slow.skipped
    assert abs(fast.stats["total_return"] - slow.stats["total_return"]) <= 1e-12
    # the run exercises the rules: several exit kinds and guardrails, entries only inside the window
    assert {"pt", "sl"} <= set(fast.trades["exit_reason"].to_list())
    assert sum(v > 0 for v in fast.skipped.values()) >= 5
    assert fast.trades["entry_ts"].min() >= start and fast.trades["exit_ts"].max() < end
    assert fast.equity.height == int(((ts >= start) & (ts < end)).sum())
