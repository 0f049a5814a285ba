"""The zero-edge promotion benchmark at a tiny size, so ``pytest -m benchmark huracan_assets_tests/benchmarks`` proves
it runs. Full run: ``python -m huracan_assets_tests.benchmarks.bench_promotion_null`` (200 coins x 365 retests)."""

import re

import numpy as np
import pytest


@pytest.mark.benchmark
def test_promotion_null_benchmark_runs_small(capsys):
    from huracan_assets_tests.benchmarks import bench_promotion_null as bench

    argv = ["--coins", "10", "--days", "40", "--power-coins", "10", "--edge-coins", "4", "--power-days", "35",
            "--edges", "10,20", "--power-repeats", "1", "--workers", "1"]  # fmt: skip
    res = bench.main(argv)
    out = capsys.readouterr().out.rstrip().splitlines()
    last = re.fullmatch(r"false_promotion_share=([0-9.]+)", out[-1])
    assert last and float(last.group(1)) == pytest.approx(res.false_promotion_share, abs=5e-5)
    assert out[-3] == f"false_promotion_share_before={res.false_promotion_share_before:.4f}"
    text = "\n".join(out)
    assert "| before: every retest at 90% confidence" in text and "| after: retests counted" in text
    assert "## Power: P(promoted within 30 / 90 days), 4 coins with the edge among 10" in text
    table = bench.power_table(res.power)
    assert list(table) == [10.0, 20.0] and set(table[20.0]) == {"before", "after"}
    assert all(row[0] == 4 and 0 <= row[1] <= row[2] <= 1 for rows in table.values() for row in rows.values())
    # the null run decided every coin every day with both rules; the after rule counts its retests
    null = res.null
    assert null.scenario.coins == 10 and null.scenario.days == 40
    assert len(null.trades_per_window) == 10 * 40
    assert null.first_champion_tests["after"] + sum(40 - 1 - f for f in null.first["after"] if f is not None) == 10 * 40


@pytest.mark.benchmark
def test_the_simulated_shadow_windows_are_consistent():
    """Day D's challenger trades [D - S, D] (S + 1 days, at most the preset's trades a day), its daily returns
    compound its trades, consecutive challengers share most trades, and the champion's states stay frozen."""
    from huracan_assets_tests.benchmarks.bench_promotion_null import BASE_DAY, DAY_MS, Coin, Market

    market = Market()
    coin = Coin(market, 30, 0.0, np.random.default_rng(0))
    s = market.shadow_days
    assert np.bincount(coin.day).max() <= market.max_trades_per_day
    a = coin.stats("a", coin.state, 10, 10 - s - 1)
    assert a.n_days == s + 1 and a.compared_from_ms == (BASE_DAY + 10 - s) * DAY_MS > a.trained_until_ms
    growth = np.prod(1 + market.position_fraction * a.trade_net_bps / 1e4)
    assert np.prod(1 + a.daily_returns) == pytest.approx(growth, rel=1e-12)
    assert a.max_drawdown >= a.drawdown() - 1e-12  # trade by trade, so at least the daily drawdown
    frozen = coin.state.copy()
    coin.next_challenger()
    window = slice(coin.starts[10], coin.starts[10 + s + 1])
    same = (coin.state[window] == frozen[window]).mean()
    assert 0.8 < same < 1.0  # persistence 0.9, plus redraws that land on the same state
    b = coin.stats("b", frozen, 10, 10 - s - 1)
    assert np.array_equal(a.trade_net_bps, b.trade_net_bps)
