"""Benchmarks at a small size, so ``pytest -m benchmark huracan_assets_tests/benchmarks`` proves they run.

Full runs and their results: ``python -m huracan_assets_tests.benchmarks.bench_dagster_overhead`` and
RESULTS.md in this folder.
"""

import pytest


@pytest.mark.benchmark
def test_dagster_overhead_small(pg_admin, capsys):
    """20 symbols, one measured date, SQLite and Postgres instances; every key verified materialized."""
    from huracan_assets_tests.benchmarks.bench_dagster_overhead import PG_ADMIN_URL, main

    rows = main(["--sizes", "20", "--repeats", "1", "--backends", "sqlite,postgres", "--pg-admin-url", PG_ADMIN_URL])
    out = capsys.readouterr().out
    assert [(r.backend, r.n) for r in rows] == [("sqlite", 20), ("postgres", 20)]
    for row in rows:
        assert len(row.dagster) == len(row.baseline) == 1
        assert row.dagster_s > 0 and row.baseline_s > 0
        assert row.dagster[0].user_s > 0  # our asset code really ran inside the Dagster run
    assert "| sqlite | 20 |" in out and "| postgres | 20 |" in out


@pytest.mark.benchmark
def test_ingest_benchmark_runs_small(capsys):
    from huracan_assets_tests.benchmarks import bench_ingest

    if not bench_ingest.SHARED_5M.is_dir():
        pytest.fail(f"the ingest benchmark needs the shared 5m data at {bench_ingest.SHARED_5M}")
    bench_ingest.main(["--symbols", "10", "--repeats", "1"])
    assert "ingest total" in capsys.readouterr().out


@pytest.mark.benchmark
def test_key_metadata_benchmark_runs_small(capsys):
    """Every chart kind drawn, and a ranged run of 20 coins with and without per-key charts."""
    from huracan_assets_tests.benchmarks.bench_key_metadata import main

    out = main(["--n", "20", "--repeats", "1", "--draws", "2"])
    assert set(out["charts"]) == {"regimes", "meta weights", "walk-forward folds", "equity (ledgers)"}
    assert all(ms > 0 and png > 500 for ms, png, _ in out["charts"].values())
    assert out["plain_s"] > 0 and out["chart_s"] > 0 and "share of a" in capsys.readouterr().out
