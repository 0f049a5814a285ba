"""The production wiring on real servers: S3 (SeaweedFS), Postgres registry, Postgres Dagster instance.

Also the registry table IO manager: a relational asset upserted by partition and read back.
"""

import uuid
from datetime import date

import polars as pl
import pytest
from dagster import AssetIn, BackfillPolicy, Definitions, asset

from huracan_assets.defs.io_managers import RegistryTableIOManager
from huracan_assets.defs.partitions import SYMBOLS, range_tags, symbol_day_partitions
from huracan_assets.defs.resources import RegistryResource
from huracan_assets.registry.client import Registry
from huracan_assets.runner import run_prelude, run_summary, run_symbol_days
from huracan_assets.settings import load_settings
from huracan_assets.storage.object_store import S3ObjectStore
from huracan_assets_tests.conftest import S3_TEST_BUCKET
from huracan_assets_tests.defs.helpers import defs_for, postgres_instance, s3_settings

pytestmark = pytest.mark.integration


def test_prod_environment_runs_on_s3_and_postgres(home, tmp_path, monkeypatch, pg_url, s3_endpoint, test_data_dir):
    prefix = f"prod-{uuid.uuid4().hex[:8]}/"
    monkeypatch.setenv("HURACAN_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("HURACAN_REGISTRY_URL", pg_url)
    settings = load_settings(
        "prod",
        partitions={"start_date": "2024-03-01"},
        object_store=s3_settings(prefix),
        exchange={"kind": "files", "data_dir": str(test_data_dir)},
        symbols="BTCUSDT,ETHUSDT,SOLUSDT",
    )
    defs = defs_for(settings)
    instance = postgres_instance(tmp_path, pg_url)
    first, last = date(2024, 3, 1), date(2024, 3, 11)
    run_prelude(defs, instance, first, last)
    assert run_symbol_days(defs, instance, first, last)
    run_summary(defs, instance, last, last)

    store = S3ObjectStore(
        S3_TEST_BUCKET, prefix=prefix, endpoint_url=s3_endpoint, access_key_id="t", secret_access_key="t"
    )
    keys = list(store.list("features/BTCUSDT/"))
    assert keys == ["features/BTCUSDT/2024-03-10.parquet", "features/BTCUSDT/2024-03-11.parquet"]  # 9 warm-up days
    assert len(list(store.list("candles/"))) == 33
    assert store.exists("labels/SOLUSDT/2024-03-11.parquet") and store.exists("regimes/SOLUSDT/2024-03-11.parquet")
    frame = pl.read_parquet(store.get_verified("candles/ETHUSDT/2024-03-04.parquet"))
    assert frame.height == 24 and frame.schema["ts"] == pl.Int64
    assert store.exists("summaries/daily/2024-03-11.json")
    statuses = Registry(pg_url).select("symbol_status", asset="features", as_of=date(2024, 3, 11))
    assert sorted((r["symbol"], r["status"]) for r in statuses) == [
        ("BTCUSDT", "ok"),
        ("ETHUSDT", "ok"),
        ("SOLUSDT", "ok"),
    ]
    assert instance.get_dynamic_partitions(SYMBOLS) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def test_registry_table_io_manager_upserts_by_partition(home, tmp_path, pg_url):
    registry = RegistryResource(url=pg_url)
    resources = {"table_io_manager": RegistryTableIOManager(registry=registry, timeframe="1h")}
    parts = symbol_day_partitions(date(2024, 3, 1))
    nav = {"v": 1.0}

    @asset(
        partitions_def=parts,
        io_manager_key="table_io_manager",
        metadata={"table": "daily_equity", "date_column": "date"},
        backfill_policy=BackfillPolicy.single_run(),
    )
    def daily_equity(context):
        return {
            k: pl.DataFrame(
                {"model_id": ["m1"], "nav": [nav["v"]], "max_dd": [0.1], "turnover": [2.0], "fees_bps": [7.5]}
            )
            for k in context.partition_keys
        }

    @asset(
        partitions_def=parts,
        ins={"daily_equity": AssetIn()},
        io_manager_key="table_io_manager",
        metadata={"table": "daily_equity", "date_column": "date"},
        backfill_policy=BackfillPolicy.single_run(),
    )
    def equity_reader(context, daily_equity: pl.DataFrame):
        context.add_output_metadata({"rows_seen": daily_equity.height})
        assert set(daily_equity["symbol"]) == {"BTCUSDT", "ETHUSDT"}
        return {}

    defs = Definitions(assets=[daily_equity, equity_reader], resources=resources)
    instance = postgres_instance(tmp_path, pg_url)
    instance.add_dynamic_partitions(SYMBOLS, ["BTCUSDT", "ETHUSDT"])
    job = defs.resolve_implicit_global_asset_job_def()
    tags = range_tags(date(2024, 3, 2), date(2024, 3, 3), ["BTCUSDT", "ETHUSDT"])
    assert job.execute_in_process(instance=instance, tags=tags).success
    nav["v"] = 1.05
    assert job.execute_in_process(instance=instance, tags=tags).success  # rerun: replaced, not duplicated
    rows = Registry(pg_url).select("daily_equity")
    assert len(rows) == 4
    assert {r["nav"] for r in rows} == {1.05}
    assert {(r["symbol"], r["date"]) for r in rows} == {
        (s, date(2024, 3, d)) for s in ("BTCUSDT", "ETHUSDT") for d in (2, 3)
    }
