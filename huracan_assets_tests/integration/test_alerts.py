"""Alerts from real Dagster runs reach a Telegram chat through the real python-telegram-bot and the fake Bot API:
a failed ERROR check, a failed run, stale data and a rollback; once per cause per date; a Telegram outage is
reported, never raised."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import pytest
from dagster import (
    DagsterEventType,
    DagsterRunStatus,
    RunsFilter,
    build_run_status_sensor_context,
    build_sensor_context,
)

from huracan_assets.defs.alerts import build_alert_sensors
from huracan_assets.defs.build import build_resources
from huracan_assets.publishing.rollback import perform_rollback
from huracan_assets.registry.client import Registry, sqlite_url
from huracan_assets.runner import RunFailed, run_prelude
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets_tests.defs.helpers import defs_for, local_settings, sqlite_instance
from huracan_assets_tests.fakes.telegram_bot_api import FakeTelegramServer
from huracan_assets_tests.publishing.test_champion import RECIPE, SYMBOL, _publish, make_bundles

pytestmark = pytest.mark.integration
TOKEN = "123456:alert-test-token"
CHAT = -100777


def _settings(tmp_path, data_dir, server_url: str):
    return local_settings(
        data_dir,
        home=str(tmp_path / "home"),
        telegram={"alert_chat_ids": [CHAT], "base_url": server_url},
        dagster={"webserver_url": "http://ui.example:3000"},
    )


def _sensors(settings, now=None):
    sensors = build_alert_sensors(settings, clock=(lambda: now) if now else lambda: datetime.now(UTC))
    return {s.name: s for s in sensors}


def _resources(settings) -> dict:
    built = build_resources(settings)
    return {k: built[k] for k in ("alerter", "object_store", "registry")}


def _on_last_run(sensor, instance, status: DagsterRunStatus, resources):
    """Evaluate a run status sensor on the newest run of ``status``; returns that run."""
    [record] = instance.get_run_records(RunsFilter(statuses=[status]), limit=1)
    event_type = DagsterEventType.RUN_SUCCESS if status == DagsterRunStatus.SUCCESS else DagsterEventType.RUN_FAILURE
    [entry] = instance.all_logs(record.dagster_run.run_id, of_type=event_type)
    with build_run_status_sensor_context(
        sensor.name, entry.dagster_event, instance, record.dagster_run, resources=resources
    ) as ctx:
        sensor(ctx.for_run_failure() if status == DagsterRunStatus.FAILURE else ctx)
    return record.dagster_run


def _tick(sensor, instance, resources, cursor=None):
    with build_sensor_context(instance=instance, resources=resources, cursor=cursor) as ctx:
        result = sensor(ctx)
        return result, ctx.cursor


def test_checks_runs_and_stale_data_reach_telegram_once(tmp_path, test_data_dir, monkeypatch):
    monkeypatch.setenv("HURACAN_TELEGRAM_TOKEN", TOKEN)
    instance = sqlite_instance(tmp_path / "dagster")
    with FakeTelegramServer(TOKEN) as server:
        settings = _settings(tmp_path, test_data_dir, server.url)
        defs, resources = defs_for(settings), _resources(settings)
        sensors = _sensors(settings)

        # a date after the data: the universe is empty, its ERROR check fails, the run itself succeeds
        run_prelude(defs, instance, date(2024, 3, 20), date(2024, 3, 20))
        ended = time.monotonic()
        run = _on_last_run(sensors["alert_on_run_success"], instance, DagsterRunStatus.SUCCESS, resources)
        [message] = server.wait_for_sent(1, chat_id=CHAT, timeout=30)
        assert time.monotonic() - ended < 60  # within a minute of the event
        text = message["text"]
        for part in ("ERROR", "check failed", "2024-03-20", "universe.universe_is_not_empty", "no coin selected",
                     f"http://ui.example:3000/runs/{run.run_id}"):  # fmt: skip
            assert part in text, (part, text)
        # the same run seen again (a sensor restart): nothing new
        _on_last_run(sensors["alert_on_run_success"], instance, DagsterRunStatus.SUCCESS, resources)
        time.sleep(1)
        assert len(server.sent(chat_id=CHAT)) == 1

        # a failed run: an exchange folder that does not exist
        broken = settings.model_copy(update={"exchange": settings.exchange.model_copy(
            update={"data_dir": str(tmp_path / "nowhere")})})  # fmt: skip
        with pytest.raises(RunFailed):
            run_prelude(defs_for(broken), instance, date(2024, 3, 5), date(2024, 3, 5))
        run = _on_last_run(sensors["alert_on_run_failure"], instance, DagsterRunStatus.FAILURE, resources)
        [_, failed] = server.wait_for_sent(2, chat_id=CHAT, timeout=30)
        assert "run failed" in failed["text"] and "daily_prelude_job" in failed["text"]
        assert "2024-03-05" in failed["text"] and run.run_id in failed["text"]

        # stale data: no candles for yesterday by 03:00 UTC today
        late = _sensors(settings, now=datetime(2024, 3, 21, 3, 5, tzinfo=UTC))
        early = _sensors(settings, now=datetime(2024, 3, 21, 2, 55, tzinfo=UTC))
        tick, _ = _tick(early["alert_on_stale_data"], instance, resources)
        assert "before 03:00" in tick.skip_message
        _tick(late["alert_on_stale_data"], instance, resources)
        [*_, stale] = server.wait_for_sent(3, chat_id=CHAT, timeout=30)
        assert "stale data" in stale["text"] and "2024-03-20" in stale["text"]

        # Telegram down: the sensor reports it and does not raise; the alert is sent when Telegram is back
        next_day = _sensors(settings, now=datetime(2024, 3, 22, 3, 5, tzinfo=UTC))["alert_on_stale_data"]
        server.fail_next("sendMessage", status=500)  # the one send of this tick
        tick, _ = _tick(next_day, instance, resources)
        assert "500" in tick.skip_message or "Internal" in tick.skip_message, tick.skip_message
        assert len(server.sent(chat_id=CHAT)) == 3
        _tick(next_day, instance, resources)
        [*_, retried] = server.wait_for_sent(4, chat_id=CHAT, timeout=30)
        assert "2024-03-21" in retried["text"]
    assert TOKEN not in text


def test_a_rollback_is_announced(tmp_path, test_data_dir, monkeypatch):
    monkeypatch.setenv("HURACAN_TELEGRAM_TOKEN", TOKEN)
    instance = sqlite_instance(tmp_path / "dagster")
    with FakeTelegramServer(TOKEN) as server:
        settings = _settings(tmp_path, test_data_dir, server.url)
        resources = _resources(settings)
        store = LocalObjectStore(settings.store_root)
        bundles = make_bundles()
        first = _publish(store, bundles["2024-08-01"], "2024-08-05")
        _publish(store, bundles["2024-08-07"], "2024-08-10")
        perform_rollback(store, Registry(sqlite_url(settings.sqlite_path)), SYMBOL, first.model_id, "live drawdown",
                         recipe_hash=RECIPE.hash, timeframe="1h")  # fmt: skip
        sensor = _sensors(settings)["alert_on_rollback"]
        _, cursor = _tick(sensor, instance, resources)
        [message] = server.wait_for_sent(1, chat_id=CHAT, timeout=30)
        assert "rollback" in message["text"] and first.model_id in message["text"] and SYMBOL in message["text"]
        tick, _ = _tick(sensor, instance, resources, cursor)
        assert tick.skip_message == "no new rollback"
