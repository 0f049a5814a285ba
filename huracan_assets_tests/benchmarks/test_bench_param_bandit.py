"""The bandit-regret benchmark at a tiny size, so ``pytest -m benchmark huracan_assets_tests/benchmarks`` proves it
runs. Full run: ``python -m huracan_assets_tests.benchmarks.bench_param_bandit`` (2,000 rounds x 8 seeds)."""

import re

import pytest


@pytest.mark.benchmark
def test_param_bandit_benchmark_runs_small(capsys):
    from huracan_assets_tests.benchmarks import bench_param_bandit as bench

    results = bench.main(["--rounds", "300", "--seeds", "0,1", "--last", "50"])
    out = capsys.readouterr().out
    assert [(r.policy, r.seed) for r in results] == [(p, s) for s in (0, 1) for p in bench.POLICIES]
    assert all(len(r.choices) == 300 and (r.regret >= -1e-9).all() for r in results)
    assert "| policy | seeds | cumulative regret" in out and "| lints | 2 |" in out and "| uniform | 2 |" in out
    means = {p: float(re.search(rf"mean_regret_{p}=([0-9.]+)", out).group(1)) for p in bench.POLICIES}
    assert means["lints"] < means["uniform"] and means["egreedy"] < means["uniform"]
    # every policy faced the same rounds: the same best preset per round
    assert len({r.best for r in results if r.seed == 0}) == 1
