"""The daily-loop benchmark at a tiny size, so ``pytest -m benchmark huracan_assets_tests/benchmarks`` proves it runs.

Full run: ``python -m huracan_assets_tests.benchmarks.bench_daily_loop`` (BTC and SOL, 180 days of 5m bars,
W = 90 and 180 days, LightGBM's 200 rounds).
"""

import pytest


@pytest.mark.benchmark
def test_daily_loop_benchmark_runs_small(capsys):
    from huracan_assets_tests.benchmarks import bench_daily_loop

    if not bench_daily_loop.SHARED_5M.is_dir():
        pytest.fail(f"the daily-loop benchmark needs the shared 5m data at {bench_daily_loop.SHARED_5M}")
    argv = ["--coins", "SOL_USDT", "--days", "20", "--windows", "4", "--repeats", "1", "--rounds", "5"]
    cases = bench_daily_loop.main(argv)
    out = capsys.readouterr().out
    assert [(c.coin, c.training_days) for c in cases] == [("SOL_USDT", 4)]
    case = cases[0]
    assert list(case.seconds) == [key for key, _label, _group in bench_daily_loop.STAGES]
    slow = {k: s for k, s in case.seconds.items() if not s > 0}
    assert not slow, f"stages without a positive time: {slow}"
    assert case.training_rows > 300 and case.history_bars >= 20 * 288 * 0.95
    assert case.info["wf_fits"] == 4 and case.info["can_fits"] == 8
    assert 0 < case.fitting < case.total and case.outside > 0 and case.share > 0
    assert all(s > 0 for s in case.history_seconds.values())
    assert "Table 1: seconds per stage, one coin" in out
    assert "| stage | group | SOL W=4 |" in out
    assert "| **outside / fitting** (target <= 15 %) |" in out
    assert "Table 2: seconds per coin and a 100-coin date on this machine" in out
    assert "| coin | W days | s per coin | 100-coin date, projected |" in out
    assert "| coin | bars | features | labels | regimes | engine directions + costs |" in out
    assert "15% target" in out
