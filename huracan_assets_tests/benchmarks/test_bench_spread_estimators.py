"""The spread-estimator study on the repository's small slice (``data/spreads``: BTC, SOL, JUV, 14 days), so
``pytest -m benchmark huracan_assets_tests/benchmarks`` proves it runs. Full study on the shared data:
``python -m huracan_assets_tests.benchmarks.bench_spread_estimators``."""

from pathlib import Path

import polars as pl
import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "spreads"


@pytest.mark.benchmark
def test_spread_study_runs_on_the_test_slice(capsys):
    from huracan_assets_tests.benchmarks import bench_spread_estimators as bench

    study = bench.main(["--data", str(DATA)])
    out = capsys.readouterr().out
    assert "## Daily spread estimates, bps" in out and "## Modelled round trip on 1h training bars" in out
    assert study.coins == ["BTC", "SOL", "JUV"] and study.days == {"BTC": 14, "SOL": 14, "JUV": 14}
    # 14 days x 3 estimators x 2 bar sizes (no 15m in the slice) per coin
    assert study.daily.height == 3 * 14 * 3 * 2
    prod = study.costs.filter(pl.col("model").str.starts_with("spreads from 5m")).sort("coin")
    btc = prod.filter(pl.col("coin") == "BTC").row(0, named=True)
    assert btc["bars"] == 6 * 24 and btc["fee"] == 20.0 and btc["total"] < 25.0
    old = study.costs.filter((pl.col("coin") == "BTC") & pl.col("model").str.starts_with("before")).row(0, named=True)
    assert old["total"] > btc["total"] + 10.0  # the pre-issue-14 model charged BTC ~40 bps
