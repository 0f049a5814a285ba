"""Ranged runs over many symbols, per-symbol failure without blocking, and a rerun of one symbol."""

import shutil
from datetime import date

import polars as pl
import pytest
from dagster import AssetKey

from huracan_assets.defs.partitions import SYMBOLS
from huracan_assets.registry.client import Registry
from huracan_assets.runner import run_prelude, run_summary, run_symbol_days
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import PartitionWindow
from huracan_assets_tests.defs.helpers import defs_for, local_settings, postgres_instance, sqlite_instance

FIRST, LAST = date(2024, 3, 1), date(2024, 3, 12)  # 9 feature warm-up days + 3 days with every asset
# the coins these tests name (WIF lists on 03-05) and a few more: many symbols in one ranged run, without the
# time of all 24 (``make test-all`` runs the whole folder)
SOME = ("BTC", "ETH", "SOL", "WIF", "XRP", "DOGE", "LINK", "AVAX")


def _data(test_data_dir, tmp_path, full: bool):
    """The test folder, or a copy of its SOME coins."""
    data = tmp_path / "data"
    if full:
        shutil.copytree(test_data_dir, data)
        return data
    (data / "1h").mkdir(parents=True)
    for coin in SOME:
        shutil.copy(test_data_dir / "1h" / f"{coin}_USDT.parquet", data / "1h")
    return data


def _materialized(instance, asset):
    return set(instance.get_materialized_partitions(AssetKey(asset)))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("full", [False, pytest.param(True, marks=pytest.mark.full)])
def test_ranged_run_of_the_whole_symbol_day_graph_12_days_on_postgres(full, home, tmp_path, pg_url, test_data_dir):
    settings = local_settings(_data(test_data_dir, tmp_path, full))
    defs = defs_for(settings)
    instance = postgres_instance(tmp_path, pg_url)
    run_prelude(defs, instance, FIRST, LAST)
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    assert len(symbols) >= (20 if full else len(SOME)) and "WIFUSDT" in symbols  # WIF lists 03-05, selected 03-06

    runs_before = len(instance.get_runs())
    # the data graph (12 days are too short to train on: models have their own tests)
    assert run_symbol_days(defs, instance, FIRST, LAST, job="symbol_day_data_job")
    assert len(instance.get_runs()) == runs_before + 1  # one run for the whole rectangle

    keys = {f"2024-03-{d:02d}|{s}" for d in range(1, 13) for s in symbols}
    for asset in ("candles", "features", "labels", "regimes", "meta_weights", "engine_signals"):
        assert _materialized(instance, asset) == keys, asset

    store = LocalObjectStore(settings.store_root)
    btc = pl.read_parquet(settings.store_root / "candles/BTCUSDT/2024-03-07.parquet")
    assert btc.height == 24 and btc.schema["ts"] == pl.Int64
    feats = PartitionWindow(store, "features", [f"2024-03-{d:02d}|ETHUSDT" for d in (9, 10, 11, 12)])
    assert feats.missing() == ["2024-03-09|ETHUSDT"]  # first days lack warm-up: skipped, named
    assert feats.status("2024-03-09|ETHUSDT").reason == "insufficient history: 8/9 warm-up days"
    assert feats.frame("ETHUSDT").shape == (72, 64)  # ts + 63 features, D's rows only

    labels = PartitionWindow(store, "labels", ["2024-03-12|ETHUSDT"])["2024-03-12|ETHUSDT"]
    assert labels["ts"].min() == 1710115200000  # labels[D] are the events of D-1 (2024-03-11)
    assert labels["label"].null_count() == 0  # all resolved by the end of D
    regimes = PartitionWindow(store, "regimes", ["2024-03-12|ETHUSDT"])["2024-03-12|ETHUSDT"]
    assert regimes.height == 24 and set(regimes["regime"]) <= {"TREND", "RANGE", "PANIC", "ILLIQUID"}

    wif = PartitionWindow(store, "candles", [f"2024-03-0{d}|WIFUSDT" for d in (5, 6)])
    assert wif.status("2024-03-05|WIFUSDT").reason == "not in the universe of 2024-03-05"
    assert wif.status("2024-03-06|WIFUSDT").status == "ok"

    run_summary(defs, instance, LAST, LAST)
    import json

    summary = json.loads(store.get("summaries/daily/2024-03-12.json"))
    assert summary["symbols_done"] == len(symbols) - 1
    assert summary["skipped"] == {"WIFUSDT": "features: insufficient history: 6/9 warm-up days"}
    assert summary["failed"] == {}


def _lose_most_of_one_day(data_dir, symbol_file, day_start_ms):
    """An exchange outage: only the first 6 of the day's 24 hourly bars exist."""
    path = data_dir / "1h" / symbol_file
    frame = pl.read_parquet(path)
    keep = (pl.col("ts") < day_start_ms + 6 * 3_600_000) | (pl.col("ts") >= day_start_ms + 86_400_000)
    frame.filter(keep).write_parquet(path)


@pytest.mark.slow
def test_one_bad_coin_fails_alone_and_reruns_alone(home, tmp_path, test_data_dir):
    data = _data(test_data_dir, tmp_path, full=False)
    good_copy = (data / "1h" / "SOL_USDT.parquet").read_bytes()
    _lose_most_of_one_day(data, "SOL_USDT.parquet", 1710201600000)  # 2024-03-12
    settings = local_settings(data)
    defs = defs_for(settings)
    instance = sqlite_instance(tmp_path)
    run_prelude(defs, instance, FIRST, LAST)
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    assert "SOLUSDT" in symbols

    result = defs.resolve_job_def("symbol_day_job").execute_in_process(
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": f"{FIRST}|{symbols[0]}",
            "dagster/asset_partition_range_end": f"{LAST}|{symbols[-1]}",
        },
    )
    assert result.success  # the run is green: one coin's failure is data, not a crash
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["candles_all_symbols_ok"].passed
    failed = checks["candles_all_symbols_ok"].metadata["offending_keys"].data
    assert failed == {"2024-03-12|SOLUSDT": "incomplete: 6/24 bars (< 50%)"}
    assert not checks["candles_complete"].passed and checks["candles_complete"].severity.value == "ERROR"
    assert checks["features_all_symbols_ok"].passed  # features skip the coin with a reason
    _check_key_metadata(result)

    store = LocalObjectStore(settings.store_root)
    window = PartitionWindow(store, "features", ["2024-03-12|SOLUSDT", "2024-03-12|BTCUSDT"])
    assert window.status("2024-03-12|SOLUSDT").status == "skipped"
    assert window.status("2024-03-12|SOLUSDT").reason == "candles failed: incomplete: 6/24 bars (< 50%)"
    assert store.exists("candles/SOLUSDT/2024-03-12.parquet")  # what was fetched is kept, held out
    assert window.status("2024-03-12|BTCUSDT").status == "ok"

    registry = Registry(f"sqlite:///{settings.sqlite_path}")
    rows = {(r["asset"], r["symbol"]): r for r in registry.select("symbol_status", as_of=date(2024, 3, 12))}
    assert rows[("candles", "SOLUSDT")]["status"] == "failed"
    assert rows[("candles", "SOLUSDT")]["detail"]["bars"] == 6
    assert rows[("candles", "BTCUSDT")]["status"] == "ok"

    # fix the data, rerun that one symbol of that one day alone
    (data / "1h" / "SOL_USDT.parquet").write_bytes(good_copy)
    rerun = defs.resolve_job_def("symbol_day_job").execute_in_process(
        instance=instance, partition_key="2024-03-12|SOLUSDT"
    )
    assert rerun.success
    assert {e.partition for e in rerun.get_asset_materialization_events()} == {"2024-03-12|SOLUSDT"}
    window = PartitionWindow(store, "features", ["2024-03-12|SOLUSDT"])
    assert window.status("2024-03-12|SOLUSDT").status == "ok"
    rows = {(r["asset"], r["symbol"]): r for r in registry.select("symbol_status", as_of=date(2024, 3, 12))}
    assert rows[("candles", "SOLUSDT")]["status"] == "ok"
    # the partial day was completed by fetching only what was missing
    assert rows[("candles", "SOLUSDT")]["detail"]["reused_bars"] == 6
    assert rows[("candles", "SOLUSDT")]["detail"]["fetched_from_ts"] == 1710201600000 + 6 * 3_600_000
    assert pl.read_parquet(settings.store_root / "candles/SOLUSDT/2024-03-12.parquet").height == 24


def _check_key_metadata(result) -> None:
    """Each key's materialization carries its own status and numbers, not the run's: the failed and the skipped
    coin say so on their own page, and each coin's regime chart is its own."""
    meta = {
        (e.asset_key.to_user_string(), str(e.partition)): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    candles, features = meta[("candles", "2024-03-12|SOLUSDT")], meta[("features", "2024-03-12|SOLUSDT")]
    assert candles["status"].value == "failed" and candles["reason"].value == "incomplete: 6/24 bars (< 50%)"
    assert candles["bars"].value == 6  # the key's quality numbers
    assert features["status"].value == "skipped" and features["reason"].value.startswith("candles failed")
    btc = meta[("candles", "2024-03-12|BTCUSDT")]
    assert btc["status"].value == "ok" and "reason" not in btc and btc["rows"].value == 24
    assert candles["run_keys_failed"].value == btc["run_keys_failed"].value == 1  # the run's numbers, named so
    charts = {s: meta[("regimes", f"2024-03-12|{s}")]["regimes"].value for s in ("BTCUSDT", "ETHUSDT")}
    assert all("data:image/png;base64," in c for c in charts.values()) and charts["BTCUSDT"] != charts["ETHUSDT"]
    assert "2024-03-12|BTCUSDT" in charts["BTCUSDT"]
    shares = meta[("regimes", "2024-03-12|BTCUSDT")]
    assert sum(v.value for k, v in shares.items() if k.startswith("share_")) == pytest.approx(1.0, abs=1e-3)
    weights = meta[("meta_weights", "2024-03-12|BTCUSDT")]
    assert "data:image/png;base64," in weights["weights_over_time"].value and 0 < weights["top_weight"].value <= 1
