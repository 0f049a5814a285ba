"""The forward-only ledger: days only move forward, the NAV compounds, and the state survives JSON."""

from datetime import date, timedelta

import numpy as np
import pytest

from huracan_assets.core.shadow.ledger import Ledger

D = date(2024, 8, 6)


def test_days_only_move_forward_and_never_before_the_start():
    ledger = Ledger("champion", since=D, model_id="BTC-1").append(D, [10.0], 0.001, {"open": None})
    with pytest.raises(ValueError, match="count bars twice"):
        ledger.append(D, [5.0], 0.0, None)
    with pytest.raises(ValueError, match="before it"):
        Ledger("champion", since=D).append(D - timedelta(days=1), [], 0.0, None)
    with pytest.raises(ValueError, match="role"):
        Ledger("live", since=D)


def test_nav_compounds_daily_returns_and_tracks_drawdown():
    ledger = Ledger("challenger", since=D)
    returns = [0.02, -0.05, 0.01, 0.03]
    trades = [[12.0], [-30.0, -20.0], [], [15.0]]
    for i, (r, t) in enumerate(zip(returns, trades, strict=True)):
        ledger = ledger.append(D + timedelta(days=i), t, r, None, [x + 20 for x in t], [20.0] * len(t))
    navs = np.cumprod(1 + np.array(returns))
    assert ledger.nav == pytest.approx(navs[-1], rel=1e-15)
    assert np.allclose(ledger.daily_returns(), returns, rtol=0, atol=1e-15)
    assert ledger.max_drawdown == pytest.approx(1 - navs[1] / navs[0])
    st = ledger.stats()
    assert st["n_trades"] == 4 and st["hit_rate"] == 0.5 and st["days"] == 4
    assert st["net_bps_per_trade"] == pytest.approx(-5.75) and st["cost_bps_per_trade"] == 20.0
    assert st["gross_bps_per_trade"] == pytest.approx(14.25)


def test_json_round_trip_keeps_everything():
    ledger = Ledger("champion", since=D, model_id="ETH-x").append(D, [1.5, -2.0], -0.0003, {"pos": [1, 2.5]})
    again = Ledger.from_json(ledger.to_json())
    assert again == ledger and again.trader_state == {"pos": [1, 2.5]} and again.last_day == D
    assert np.isnan(again.stats()["gross_bps_per_trade"])  # no breakdown given: unknown, not zero


def test_bad_days_are_refused():
    ledger = Ledger("champion", since=D)
    with pytest.raises(ValueError):
        ledger.append(D, [float("nan")], 0.0, None)
    with pytest.raises(ValueError):
        ledger.append(D, [], -1.0, None)


def test_window_takes_the_trades_and_returns_of_the_last_days():
    ledger = Ledger("champion", since=D)
    for i, (trades, r) in enumerate([([5.0], 0.01), ([-8.0, 2.0], -0.02), ([], 0.0), ([7.0], 0.015)]):
        ledger = ledger.append(D + timedelta(days=i), trades, r, None)
    net, returns, dd = ledger.window(D + timedelta(days=1))
    assert net.tolist() == [-8.0, 2.0, 7.0] and np.allclose(returns, [-0.02, 0.0, 0.015])
    assert dd == pytest.approx(0.02)
    net, returns, dd = ledger.window(D + timedelta(days=9))
    assert net.size == 0 and returns.size == 0 and dd == 0.0
    assert Ledger.from_json(ledger.to_json()).window(D + timedelta(days=1))[0].tolist() == [-8.0, 2.0, 7.0]


def test_a_ledger_of_days_equals_one_run_on_real_candles():
    """Real 1h candles, 12 days traded one at a time through ``ledger_day`` (only each day's bars, from the state
    the day before left): the same trades and the same NAV as one run over the 12 days, nothing counted twice."""
    import polars as pl

    from huracan_assets.core.shadow.ledger import ledger_day
    from huracan_assets.core.shadow.trader import ShadowSpec, simulate
    from huracan_assets_tests.conftest import TEST_DATA

    h, day_ms = 3_600_000, 86_400_000
    candles = pl.read_parquet(TEST_DATA.parent / "replay_long" / "1h" / "SOL_USDT.parquet").sort("ts")
    ts = candles["ts"].to_numpy()
    rng = np.random.default_rng(5)
    p = np.where(rng.random(ts.size) < 0.5, rng.choice([0.2, 0.8], ts.size), 0.5)
    n = ts.size
    cols = (candles["open"], candles["high"], candles["low"], candles["close"])
    costs = (np.full(n, 20.0), np.full(n, 2.0), np.full(n, 1.0))
    spec = ShadowSpec(net_edge_floor_bps=-1e9, respect_meta=False)
    first_day = date(2024, 7, 10)
    start = (first_day - date(1970, 1, 1)).days * day_ms
    days = [first_day + timedelta(days=i) for i in range(12)]

    def run(lo, hi, state=None):
        return simulate(ts, *cols, p, None, *costs, lo, hi, spec, h, initial_state=state, carry=True)

    whole = run(start, start + 12 * day_ms)
    ledger = Ledger("challenger", since=first_day)
    for i, d in enumerate(days):
        res = run(start + i * day_ms, start + (i + 1) * day_ms, ledger.trader_state)
        ledger = ledger_day(ledger, d, res, spec.initial_equity)
        ledger = Ledger.from_json(ledger.to_json())  # stored between daily runs
    assert ledger.n_trades == whole.trades.height > 20
    assert list(ledger.trade_net_bps) == whole.trades["net_bps"].to_list()
    assert ledger.nav == pytest.approx(float(whole.equity["equity"][-1]) / spec.initial_equity, rel=1e-12)
    assert sum(ledger.daily_trade_counts) == ledger.n_trades and ledger.days == tuple(days)
    with pytest.raises(ValueError, match="count bars twice"):
        ledger_day(ledger, days[-1], run(start + 11 * day_ms, start + 12 * day_ms), spec.initial_equity)
