"""The feature benchmark at a tiny size, so ``pytest -m benchmark huracan_assets_tests/benchmarks`` proves it runs.

Full run: ``python -m huracan_assets_tests.benchmarks.bench_features`` (100 coins x 51,840 5m bars).
"""

import pytest


@pytest.mark.benchmark
def test_feature_benchmark_runs_small(capsys):
    from huracan_assets_tests.benchmarks import bench_features

    if not bench_features.SHARED_5M.is_dir():
        pytest.fail(f"the feature benchmark needs the shared 5m data at {bench_features.SHARED_5M}")
    rows = bench_features.main(["--coins", "3", "--bars", "2000", "--repeats", "1", "--ta-coins", "1"])
    out = capsys.readouterr().out
    assert [(r.coins, r.baseline_coins) for r in rows] == [(1, 1), (3, 3), (1, 1), (3, 1)]
    assert all(r.ours_s > 0 and r.baseline_s > 0 and r.ratio > 0 for r in rows)
    assert "| full recipe (63 features) | 3 x 2,000 |" in out and "ta 0.11" in out
