"""The engine benchmark at a tiny size, so ``pytest -m benchmark huracan_assets_tests/benchmarks`` proves it runs.

Full run: ``python -m huracan_assets_tests.benchmarks.bench_engines`` (100 coins x 51,840 5m bars, 300 rounds).
"""

import pytest


@pytest.mark.benchmark
def test_engine_benchmark_runs_small(capsys):
    from huracan_assets_tests.benchmarks import bench_engines

    if not bench_engines.SHARED_5M.is_dir():
        pytest.fail(f"the engine benchmark needs the shared 5m data at {bench_engines.SHARED_5M}")
    rows = bench_engines.main(["--coins", "2", "--bars", "3000", "--repeats", "1", "--rounds", "20"])
    out = capsys.readouterr().out
    tables = [r.table for r in rows]
    assert tables.count("throughput") == 4 and tables.count("per engine") == 23
    assert tables.count("coin-day") == 3 and tables.count("retrain") == 1
    assert [(r.coins, r.bars) for r in rows if r.table == "throughput"] == [(1, 3000), (2, 3000)] * 2
    assert all(r.seconds > 0 and r.rate > 0 for r in rows)
    assert all(r.bars == 34 * 288 for r in rows if r.table == "coin-day")  # D plus 30 + 3 days before it
    assert "| workload | coins x bars | s | bars/s |" in out
    assert "| engine | s | bars/s | share |" in out
    assert "| workload | bars in input | s |" in out
    assert "| engine work per coin | engine s | LightGBM s | share | target | met |" in out
    assert "| all 23 engines: directions | 2 x 3,000 |" in out and "lgb.train, 20 rounds" in out
    assert all(share > 0 for _what, _s, share in bench_engines.shares(rows))
