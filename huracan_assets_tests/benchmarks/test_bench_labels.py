"""The triple-barrier benchmark at a small size, so ``pytest -m benchmark huracan_assets_tests/benchmarks`` proves
it runs. Full run: ``python -m huracan_assets_tests.benchmarks.bench_triple_barrier``."""

import pytest


@pytest.mark.benchmark
def test_triple_barrier_benchmark_runs_small(capsys):
    from huracan_assets_tests.benchmarks import bench_triple_barrier

    if not bench_triple_barrier.SHARED_5M.is_dir():
        pytest.fail(f"the triple-barrier benchmark needs the shared 5m data at {bench_triple_barrier.SHARED_5M}")
    argv = ["--coins", "2", "--bars", "3000", "--repeats", "1", "--reference-events", "400", "--pandas-events", "100"]
    rows = bench_triple_barrier.main(argv)
    out = capsys.readouterr().out
    assert [r.events for r in rows] == [6000, 6000, 400, 100]
    assert all(r.events_per_s > 0 for r in rows)
    assert rows[0].events_per_s > rows[-1].events_per_s  # numba beats the pandas loop even at this size
    assert "| pandas loop (per-event loc slice) | 100 |" in out and "agrees 100/100" in out
    assert "exact match" in out
