"""Helpers for Dagster tests: Definitions over a data folder, and instances on SQLite or Postgres."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from dagster import DagsterInstance

from huracan_assets.defs.build import build_definitions
from huracan_assets.settings import Settings, load_settings


def local_settings(data_dir: Path, start: date = date(2024, 3, 1), **overrides) -> Settings:
    return load_settings(
        "local",
        data_dir=data_dir,
        partitions={"start_date": start.isoformat()},
        **overrides,
    )


def defs_for(settings: Settings):
    return build_definitions(settings)


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
