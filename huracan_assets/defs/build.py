"""Build the ``Definitions`` for one ``Settings``: resources by environment, assets, jobs, automation."""

from __future__ import annotations

from dagster import Definitions, EnvVar, in_process_executor, multiprocess_executor

from huracan_assets.core.market_data.candles import ms_to_date
from huracan_assets.defs.alerts import build_alert_sensors
from huracan_assets.defs.assets import build_assets
from huracan_assets.defs.automation import build_automation, build_jobs
from huracan_assets.defs.io_managers import PartitionedParquetIOManager, RegistryTableIOManager
from huracan_assets.defs.resources import (
    AlertResource,
    ExchangeResource,
    ObjectStoreResource,
    RegistryResource,
    TelegramResource,
)
from huracan_assets.exchange.files import FilesExchange
from huracan_assets.registry.client import sqlite_url
from huracan_assets.settings import Settings


def _env(name: str | None):
    return EnvVar(name) if name else None


def build_resources(settings: Settings) -> dict:
    os_cfg = settings.object_store
    if os_cfg.kind == "local":
        object_store = ObjectStoreResource(kind="local", root=str(settings.store_root), prefix=os_cfg.prefix)
    else:
        object_store = ObjectStoreResource(
            kind="s3",
            bucket=os_cfg.bucket,
            prefix=os_cfg.prefix,
            region=os_cfg.region,
            endpoint_url=_env(os_cfg.endpoint_url_env),
            access_key_id=_env(os_cfg.access_key_id_env),
            secret_access_key=_env(os_cfg.secret_access_key_env),
        )
    if settings.registry.kind == "sqlite":
        registry = RegistryResource(url=sqlite_url(settings.sqlite_path))
    else:
        if not settings.registry.url_env:
            raise ValueError("a postgres registry needs registry.url_env")
        registry = RegistryResource(url=EnvVar(settings.registry.url_env))
    ex = settings.exchange
    exchange = ExchangeResource(
        kind=ex.kind,
        timeframe=settings.timeframe,
        quote=settings.universe.quote,
        data_dir=str(settings.data_dir) if ex.kind == "files" else None,
        exchange_id=ex.exchange_id,
        base_url=ex.base_url,
        page_limit=ex.page_limit,
        attempts=ex.attempts,
        retry_base_delay=ex.retry_base_delay,
        rate_limit_ms=ex.rate_limit_ms,
        api_key=_env(ex.api_key_env),
        api_secret=_env(ex.api_secret_env),
    )
    tg = settings.telegram
    telegram = TelegramResource(
        notify=tg.notify, token_env=tg.token_env, base_url=tg.base_url, chat_ids=list(tg.notify_chat_ids)
    )
    al = settings.alerts
    alerter = AlertResource(
        enabled=al.enabled,
        token_env=tg.token_env,
        base_url=tg.base_url,
        chat_ids=list(tg.alert_chat_ids),
        webhook_url_env=al.webhook_url_env,
        webserver_url=settings.dagster.webserver_url,
        max_per_hour=al.max_per_hour,
    )
    return {
        "object_store": object_store,
        "telegram": telegram,
        "alerter": alerter,
        "registry": registry,
        "exchange": exchange,
        "parquet_io_manager": PartitionedParquetIOManager(
            object_store=object_store, registry=registry, timeframe=settings.timeframe
        ),
        "table_io_manager": RegistryTableIOManager(registry=registry, timeframe=settings.timeframe),
    }


def resolve_partitions(settings: Settings) -> Settings:
    """``partitions.end_date: data`` becomes the last day of the files exchange's candles (open-ended for any
    other exchange, or without candles)."""

    def last_data_day():
        if settings.exchange.kind != "files":
            return None
        coverage = FilesExchange(settings.data_dir, settings.timeframe, settings.universe.quote).coverage()
        return ms_to_date(coverage[1]) if coverage else None

    return settings.model_copy(update={"partitions": settings.partitions.resolved(last_data_day)})


def executor_for(settings: Settings):
    """Every job's executor (``execution.executor``): Dagster's in-process executor, its multiprocess executor
    running at most ``execution.workers`` steps at once (each step its own process, ``thread_budget`` threads), or
    dagster-k8s's ``k8s_job_executor`` (one pod per step)."""
    e = settings.execution
    if e.executor == "multiprocess":
        return multiprocess_executor.configured({"max_concurrent": e.workers}, name="huracan_multiprocess")
    if e.executor == "k8s":  # one pod per step (huracan_assets/k8s.py)
        from huracan_assets.k8s import k8s_executor

        return k8s_executor(settings)
    return in_process_executor


def build_definitions(settings: Settings) -> Definitions:
    settings = resolve_partitions(settings)
    prelude, symbol_day, summary, data = build_jobs(settings.execution.run_timeout_seconds)
    schedules, sensors = build_automation(prelude, symbol_day, summary, running=settings.env == "prod")
    sensors = [*sensors, *build_alert_sensors(settings)]
    return Definitions(
        assets=build_assets(settings),
        executor=executor_for(settings),
        jobs=[prelude, symbol_day, summary, data],
        schedules=schedules,
        sensors=sensors,
        resources=build_resources(settings),
    )
