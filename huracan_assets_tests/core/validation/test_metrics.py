"""Metrics on hand-worked examples: AUC with ties, log loss, trade selection, daily booking, drawdown, Sharpe,
PSR and DSR."""

import itertools
import math

import numpy as np
import pytest

from huracan_assets.core.validation.metrics import (
    COST_PARTS,
    DAY_MS,
    EULER_GAMMA,
    TradeCosts,
    auc,
    auc_null_sigma,
    daily_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    log_loss,
    max_drawdown,
    norm_cdf,
    norm_ppf,
    null_sharpe_var,
    probabilistic_sharpe_ratio,
    select_trades,
    sharpe,
    side_return_bps,
    trade_pnl_bps,
    trading_metrics,
    turnover,
)

H = 3_600_000
D0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC


# ----------------------------------------------------------------------------------------------- ranking
def test_auc_by_hand_with_a_tie():
    # positives 0.35, 0.8, 0.9 vs negatives 0.1, 0.4, 0.8; pairs won: 0.35 -> 1; 0.8 -> 2 + 1/2 (tie); 0.9 -> 3
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.8, 0.9])
    assert auc(y, p) == pytest.approx(6.5 / 9, abs=1e-15)
    assert auc(y, 1 - p) == pytest.approx(2.5 / 9, abs=1e-15)  # mirrored: the tie still counts 1/2
    assert auc(y, np.full(6, 0.3)) == 0.5  # all tied
    assert math.isnan(auc(np.ones(4), np.arange(4) / 4))  # one class: NaN, not sklearn's error
    assert math.isnan(auc(np.zeros(3, dtype=int), np.array([0.1, 0.9, 0.5])))
    assert math.isnan(auc(np.array([], dtype=int), np.array([])))


def test_auc_rejects_bad_input():
    with pytest.raises(ValueError, match="0 and 1"):
        auc(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="finite"):
        auc(np.array([0, 1]), np.array([0.1, np.nan]))


def test_log_loss_by_hand():
    assert log_loss(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    # a certain wrong answer is clipped at eps = 1e-12: -ln(1e-12) (1 - eps is rounded in floating point)
    assert log_loss(np.array([1]), np.array([0.0])) == pytest.approx(-math.log(1e-12), rel=1e-15)
    assert log_loss(np.array([0]), np.array([1.0])) == pytest.approx(-math.log1p(-(1 - 1e-12)), rel=1e-15)
    assert math.isnan(log_loss(np.array([], dtype=int), np.array([])))
    # one class is fine (sklearn must be told both labels); eps is a parameter
    assert log_loss(np.array([1, 1]), np.array([0.5, 0.25])) == pytest.approx(-(math.log(0.5) + math.log(0.25)) / 2)
    assert log_loss(np.array([1]), np.array([0.0]), eps=1e-3) == pytest.approx(-math.log(1e-3), rel=1e-15)


def test_auc_null_sigma_by_hand():
    assert auc_null_sigma(2, 2) == pytest.approx(math.sqrt(5 / 48))
    assert auc_null_sigma(2, 2, block=4) == pytest.approx(2 * math.sqrt(5 / 48))
    assert math.isnan(auc_null_sigma(0, 5))


# ----------------------------------------------------------------------------------------------- trades
def test_select_trades_by_hand():
    # threshold 0.25: long at p >= 0.75, short at p <= 0.25 (both exact in binary floating point)
    hours_t0 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12]
    hours_t1 = [3, 2, 4, 5, 5, 9, 7, 8, 10, 11, 12, 13]
    p = [0.75, 0.9, 0.1, 0.25, 0.74, 0.2, 0.8, 0.1, 0.74, 0.26, 0.5, 0.95]
    # row 0: long at the edge, busy until 3 h -> rows 1, 2 skipped (strong signals, but a position is open)
    # row 3: t0 = 3 h is not < 3 h, short at the edge, busy until 5 h -> row 4 skipped
    # row 5: short, busy until 9 h -> rows 6, 7 skipped; rows 8-10 just inside the band; row 11: long
    t0 = D0 + np.array(hours_t0, dtype=np.int64) * H
    t1 = D0 + np.array(hours_t1, dtype=np.int64) * H
    idx, side = select_trades(t0, t1, np.array(p), 0.25)
    assert idx.tolist() == [0, 3, 5, 11]
    assert side.tolist() == [1, -1, -1, 1]
    assert idx.dtype == np.int64 and side.dtype == np.int8


def test_select_trades_threshold_zero_and_edges():
    t0 = D0 + np.arange(4, dtype=np.int64) * H
    t1 = t0  # instantaneous labels: no overlap
    idx, side = select_trades(t0, t1, np.array([0.5, 0.5000001, 0.4999999, 0.5]), 0.0)
    assert idx.tolist() == [1, 2] and side.tolist() == [1, -1]  # exactly 0.5 never trades
    idx, _ = select_trades(t0, t1, np.array([0.2, 0.8, 0.5, 0.5]), 0.3)
    assert idx.tolist() == [0, 1]  # 0.2 == 0.5 - 0.3 and 0.8 == 0.5 + 0.3 in floating point
    assert select_trades(t0[:0], t1[:0], np.array([]), 0.1)[0].size == 0
    with pytest.raises(ValueError, match="threshold"):
        select_trades(t0, t1, np.full(4, 0.5), 0.5)


def test_trade_pnl_bps_uses_each_sides_own_outcome():
    side = np.array([1, -1, -1, -1, 0])
    ret_long = np.array([30.0, 30.0, -30.0, -100.0, 7.0])
    # the last short: the long stopped out at -100 on a bar that touched both barriers, and so did the short
    ret_short = np.array([-30.0, -30.0, 30.0, -100.0, -7.0])
    cost = np.full(5, 5.0)
    assert side_return_bps(side, ret_long, ret_short).tolist() == [30.0, -30.0, 30.0, -100.0, 0.0]
    assert trade_pnl_bps(side, ret_long, ret_short, cost).tolist() == [25.0, -35.0, 25.0, -105.0, -5.0]
    # -ret of the long would have booked that short as a +95 bps win


def test_select_trades_waits_for_the_exit_of_the_side_taken():
    # row 0 short: its own exit is at 4 h, the long's would have been at 1 h -> rows 1-3 are skipped
    t0 = D0 + np.arange(6, dtype=np.int64) * H
    t1 = t0 + H
    t1_short = t1.copy()
    t1_short[0] = D0 + 4 * H
    p = np.array([0.1, 0.9, 0.9, 0.1, 0.9, 0.1])
    idx, side = select_trades(t0, t1, p, 0.25, t1_short)
    assert idx.tolist() == [0, 4, 5] and side.tolist() == [-1, 1, -1]
    assert select_trades(t0, t1, p, 0.25)[0].tolist() == [0, 1, 2, 3, 4, 5]  # one exit time for both sides
    t1_short[2] = D0 + 5 * H  # a long at row 2 is not delayed by its short's exit
    assert select_trades(t0, t1, np.array([0.5, 0.5, 0.9, 0.9, 0.5, 0.5]), 0.25, t1_short)[0].tolist() == [2, 3]
    with pytest.raises(ValueError, match="t1_short"):
        select_trades(t0, t1, p, 0.25, t1_short[:-1])


def test_daily_returns_books_on_the_exit_day():
    exits = np.array([D0 + H, D0 + DAY_MS - 1, D0 + DAY_MS, D0 + 3 * DAY_MS + 5 * H])
    pnl = np.array([10.0, 20.0, -5.0, 40.0])
    daily = daily_returns(exits, pnl, D0 + 12 * H, D0 + 3 * DAY_MS + H)
    np.testing.assert_allclose(daily, [0.003, -0.0005, 0.0, 0.004], rtol=0, atol=1e-18)
    assert daily_returns(np.array([], dtype=np.int64), np.array([]), D0, D0 + DAY_MS).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="outside"):
        daily_returns(exits, pnl, D0 + DAY_MS, D0 + 4 * DAY_MS)


# ----------------------------------------------------------------------------------------------- performance
def test_max_drawdown_by_hand():
    assert max_drawdown(np.array([0.10, -0.20, 0.05])) == pytest.approx(0.20)
    # 1.1, 0.99, 1.287 (peak), then x 0.8 x 0.75 = 0.6 of the peak
    assert max_drawdown(np.array([0.1, -0.1, 0.3, -0.2, -0.25])) == pytest.approx(0.40)
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0
    assert max_drawdown(np.array([-0.5])) == pytest.approx(0.5)  # a loss on day one counts from the start
    assert max_drawdown(np.array([])) == 0.0


def test_sharpe_by_hand():
    daily = np.array([0.01, -0.01, 0.02, 0.0])  # mean 0.005, squared deviations sum to 0.0005
    assert sharpe(daily) == pytest.approx(0.005 / math.sqrt(0.0005 / 3) * math.sqrt(365))
    assert sharpe(daily, periods_per_year=1) == pytest.approx(math.sqrt(0.15))
    for degenerate in ([0.01], [0.01, 0.01, 0.01], []):
        assert math.isnan(sharpe(np.array(degenerate)))


def test_psr_by_hand():
    # the same series: per-period SR^2 = 0.15, skew 0 (symmetric), kurtosis m4 / m2^2 = 2.5625e-8 / 1.5625e-8 = 1.64
    daily = np.array([0.01, -0.01, 0.02, 0.0])
    expected = norm_cdf(math.sqrt(0.15) * math.sqrt(3) / math.sqrt(1 + (1.64 - 1) / 4 * 0.15))
    assert probabilistic_sharpe_ratio(daily) == pytest.approx(expected, rel=1e-12)
    assert 0.74 < expected < 0.75


def test_psr_is_one_half_at_the_benchmark():
    rng = np.random.default_rng(3)
    daily = rng.normal(0.001, 0.01, 200)
    sr = sharpe(daily, periods_per_year=1)
    assert probabilistic_sharpe_ratio(daily, sr_benchmark=sr) == pytest.approx(0.5, abs=1e-15)
    assert probabilistic_sharpe_ratio(daily, sr_benchmark=sr + 0.05) < 0.5 < probabilistic_sharpe_ratio(daily)
    assert math.isnan(probabilistic_sharpe_ratio(np.zeros(10)))


def test_dsr():
    rng = np.random.default_rng(4)
    daily = rng.normal(0.002, 0.01, 250)
    psr0 = probabilistic_sharpe_ratio(daily, 0.0)
    assert deflated_sharpe_ratio(daily, 1, 0.01) == psr0  # one trial: no deflation, whatever the variance
    assert deflated_sharpe_ratio(daily, 50, 0.0) == psr0  # identical trials: no deflation either
    dsr = [deflated_sharpe_ratio(daily, n, 0.004) for n in (2, 5, 10, 100, 1000)]
    assert dsr[0] < psr0
    assert all(a > b for a, b in itertools.pairwise(dsr))
    assert math.isnan(deflated_sharpe_ratio(daily, 10, math.nan))
    with pytest.raises(ValueError, match="n_trials"):
        deflated_sharpe_ratio(daily, 0, 0.01)


def test_expected_max_sharpe_by_hand():
    # N = 2: Φ⁻¹(1 - 1/2) = 0, so SR0 = sqrt(V) γ Φ⁻¹(1 - 1/(2e))
    assert expected_max_sharpe(2, 0.04) == pytest.approx(0.2 * EULER_GAMMA * norm_ppf(1 - 1 / (2 * math.e)))
    assert expected_max_sharpe(1, 0.04) == 0.0


def test_normal_law():
    assert norm_ppf(0.975) == pytest.approx(1.959963984540054, rel=1e-15)
    assert norm_ppf(0.05) == pytest.approx(-1.6448536269514722, rel=1e-15)
    assert norm_ppf(0.5) == 0.0 and norm_ppf(0.0) == -math.inf and norm_ppf(1.0) == math.inf
    for q in (1e-300, 1e-10, 0.01, 0.3, 0.7, 0.99, 1 - 1e-12):
        assert norm_cdf(norm_ppf(q)) == pytest.approx(q, rel=1e-12, abs=1e-15)
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="q in"):
            norm_ppf(bad)


def test_turnover():
    assert turnover(np.array([1, -1, 1]), 10) == pytest.approx(0.6)
    assert math.isnan(turnover(np.array([1]), 0))


def test_trading_metrics_by_hand():
    # three hourly-spaced events, 2 h labels, threshold 0.1: row 0 long (busy until 2 h), row 1 skipped, row 2 short
    t0 = D0 + np.array([0, 1, 2], dtype=np.int64) * H
    t1 = t0 + 2 * H
    p = np.array([0.7, 0.9, 0.3])
    ret = np.array([50.0, 80.0, 20.0])
    ret_short = np.array([-50.0, -80.0, -20.0])  # mirrored outcomes: the short exits with the long
    cost = TradeCosts.from_parts({"fee": np.array([10.0, 10.0, 6.0])})  # the same for either side here
    short = {"ret_short_bps": ret_short, "t1_short": t1}
    m = trading_metrics(t0, t1, p, ret, cost, 0.1, last_day_ms=D0 + 2 * DAY_MS, **short)
    # trades: +50 - 10 = 40, -20 - 6 = -26 bps, both exit on day 0 -> daily [0.0014, 0, 0]
    assert m["n_trades"] == 2 and m["n_days"] == 3
    assert m["hit_rate"] == 0.5
    assert m["net_bps_per_trade"] == pytest.approx(7.0)
    assert m["gross_bps_per_trade"] == pytest.approx(15.0)
    assert m["cost_bps_per_trade"] == pytest.approx(8.0) == m["fee_bps_per_trade"]
    assert m["spread_bps_per_trade"] == m["slippage_bps_per_trade"] == m["stop_slippage_bps_per_trade"] == 0.0
    assert m["max_drawdown"] == 0.0
    assert m["turnover_per_day"] == pytest.approx(4 / 3)
    assert m["sharpe"] == pytest.approx(sharpe(np.array([0.0014, 0.0, 0.0])))
    assert m["dsr"] == m["psr"]  # one trial
    none = trading_metrics(t0, t1, np.full(3, 0.5), ret, cost, 0.1, **short)
    assert none["n_trades"] == 0 and math.isnan(none["net_bps_per_trade"]) and math.isnan(none["sharpe"])
    # the short's own outcome: row 2's exit bar touched both barriers, the short stopped out (-35 bps) a day later
    own = {"ret_short_bps": np.array([-50.0, -80.0, -35.0]), "t1_short": t1 + np.array([0, 0, DAY_MS])}
    m = trading_metrics(t0, t1, p, ret, cost, 0.1, last_day_ms=D0 + 2 * DAY_MS, **own)
    assert m["net_bps_per_trade"] == pytest.approx((40.0 - 41.0) / 2) and m["hit_rate"] == 0.5
    assert m["gross_bps_per_trade"] == pytest.approx((50.0 - 35.0) / 2)
    assert m["sharpe"] == pytest.approx(sharpe(np.array([0.004, -0.0041, 0.0])))  # booked on the short's exit day
    with pytest.raises(TypeError, match="ret_short_bps"):
        trading_metrics(t0, t1, p, ret, cost, 0.1)  # no silent mirror of the long
    with pytest.raises(TypeError, match="TradeCosts"):
        trading_metrics(t0, t1, p, ret, np.array([10.0, 10.0, 6.0]), 0.1, **short)  # one cost for both sides? no


def test_each_side_pays_its_own_cost_and_the_report_breaks_it_down():
    # the trades of test_trading_metrics_by_hand (row 0 long, row 2 short), but each side's own round trip by part:
    # the short of row 2 left on a stop, through a wide exit bar
    t0 = D0 + np.array([0, 1, 2], dtype=np.int64) * H
    t1 = t0 + 2 * H
    costs = TradeCosts.from_parts(
        {"fee": [20.0, 20.0, 20.0], "spread": [4.0, 4.0, 4.0], "slippage": [2.0, 2.0, 2.0]},
        {"fee": [20.0, 20.0, 20.0], "spread": [4.0, 4.0, 30.0], "slippage": [2.0, 2.0, 8.0],
         "stop_slippage": [0.0, 0.0, 17.0]},
    )  # fmt: skip
    ret, ret_short = np.array([50.0, 80.0, 20.0]), np.array([-50.0, -80.0, -20.0])
    m = trading_metrics(t0, t1, np.array([0.7, 0.9, 0.3]), ret, costs, 0.1, ret_short_bps=ret_short, t1_short=t1)
    assert m["n_trades"] == 2
    # long: 50 - 26 = 24; short: -20 - 75 = -95
    expected = {"gross": 15.0, "fee": 20.0, "spread": 17.0, "slippage": 5.0, "stop_slippage": 8.5, "cost": 50.5,
                "net": -35.5}  # fmt: skip
    assert {k: m[f"{k}_bps_per_trade"] for k in expected} == pytest.approx(expected, abs=1e-12)
    assert list(m)[3:10] == [f"{k}_bps_per_trade" for k in ("gross", *COST_PARTS, "cost", "net")]  # side by side
    assert costs.totals()[1].tolist() == [26.0, 26.0, 75.0]
    assert TradeCosts.from_parts({"fee": 8.0}, n=3).short.tolist() == [[8.0, 0.0, 0.0, 0.0]] * 3
    with pytest.raises(ValueError, match="unknown cost parts"):
        TradeCosts.from_parts({"fees": [1.0]})


def test_null_sharpe_var():
    assert null_sharpe_var(2) == 1.0 and null_sharpe_var(366) == 1 / 365
    assert math.isnan(null_sharpe_var(1)) and math.isnan(null_sharpe_var(0))
    with pytest.raises(ValueError, match="n_days"):
        null_sharpe_var(-1)
    # it is the sampling variance of the per-period Sharpe of T no-edge daily returns (here T = 60)
    rng = np.random.default_rng(5)
    sharpes = [sharpe(rng.normal(0.0, 0.01, 60), periods_per_year=1.0) for _ in range(4000)]
    assert np.var(sharpes) == pytest.approx(null_sharpe_var(60), rel=0.08)
