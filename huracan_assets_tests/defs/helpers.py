"""Helpers for Dagster tests: Definitions over a data folder, and instances on SQLite or Postgres."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from dagster import DagsterInstance

from huracan_assets.defs.build import build_definitions
from huracan_assets.settings import Settings, load_settings
from huracan_assets_tests.conftest import S3_TEST_BUCKET


def local_settings(data_dir: Path, start: date = date(2024, 3, 1), **overrides) -> Settings:
    return load_settings(
        "local",
        data_dir=data_dir,
        partitions={"start_date": start.isoformat()},
        **overrides,
    )


def defs_for(settings: Settings):
    return build_definitions(settings)


def s3_settings(prefix: str, bucket: str = S3_TEST_BUCKET) -> dict:
    """``object_store`` settings of the test S3 server, reading production's environment variable names."""
    return {
        "kind": "s3",
        "bucket": bucket,
        "prefix": prefix,
        "endpoint_url_env": "HURACAN_S3_ENDPOINT_URL",
        "access_key_id_env": "AWS_ACCESS_KEY_ID",
        "secret_access_key_env": "AWS_SECRET_ACCESS_KEY",
    }


def postgres_instance(tmp_path: Path, url: str) -> DagsterInstance:
    """A real Dagster instance on dagster-postgres (runs, events, schedules in PostgreSQL)."""
    home = tmp_path / "dagster_pg_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        f'storage:\n  postgres:\n    postgres_url: "{url}"\ntelemetry:\n  enabled: false\n'
    )
    return DagsterInstance.from_config(str(home))


def sqlite_instance(tmp_path: Path) -> DagsterInstance:
    home = tmp_path / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return DagsterInstance.from_config(str(home))
