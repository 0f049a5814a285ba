"""The replay benchmark at a tiny size, so ``pytest -m benchmark huracan_assets_tests/benchmarks`` proves it runs.
Full run: ``python -m huracan_assets_tests.benchmarks.bench_param_replay`` (22 coins x 10 days)."""

import pytest


@pytest.mark.benchmark
def test_param_replay_benchmark_runs_small(capsys):
    from huracan_assets_tests.benchmarks import bench_param_replay as bench

    result = bench.main(["--days", "3", "--coins", "2"])
    out = capsys.readouterr().out
    assert result["coin_days"] == 6 and result["trades"] > 0 and result["ms_per_coin_day"] > 0
    assert "per coin-day; 400 coins:" in out
