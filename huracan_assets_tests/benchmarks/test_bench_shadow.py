"""The shadow-trading benchmark at a tiny size, so ``pytest -m benchmark huracan_assets_tests/benchmarks`` proves it
runs. Full run: ``python -m huracan_assets_tests.benchmarks.bench_shadow`` (100 coins x 51,840 5m bars)."""

import re

import pytest


@pytest.mark.benchmark
def test_shadow_benchmark_runs_small(capsys):
    from huracan_assets_tests.benchmarks import bench_shadow

    if not bench_shadow.SHARED_5M.is_dir():
        pytest.fail(f"the shadow benchmark needs the shared 5m data at {bench_shadow.SHARED_5M}")
    rows = bench_shadow.main(["--coins", "3", "--bars", "3000", "--repeats", "1", "--threads", "2"])
    out = capsys.readouterr().out
    assert [(r.coins, r.threads, r.baseline) for r in rows] == [
        (1, 1, "from_signals + value/trades/stats"),
        (1, 1, "from_signals alone"),
        (3, 1, "from_signals + value/trades/stats"),
        (3, 1, "from_signals alone"),
        (3, 2, "from_signals + value/trades/stats"),
        (3, 2, "from_signals alone"),
    ]
    assert all(r.ours_s > 0 and r.baseline_s > 0 and r.ratio > 0 for r in rows)
    assert "| 3 x 3,000 | 2 |" in out and "vectorbt 1.2.0" in out
    same, total = map(int, re.search(r"vectorbt reproduced (\d+)/(\d+)", out).groups())
    assert total > 0 and same == total  # vectorbt finds the same profit-takes and stops on the same entries
