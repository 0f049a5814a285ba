"""The 02:00 schedule, the prelude job and the sensors chain into one ranged run per date, in order."""

from datetime import UTC, date, datetime

from dagster import AssetKey, RunRequest, SkipReason, build_schedule_context, build_sensor_context

from huracan_assets.defs.automation import DATE_TAG
from huracan_assets.defs.partitions import SYMBOLS
from huracan_assets.names import RANGE_END_TAG, RANGE_START_TAG
from huracan_assets_tests.defs.helpers import defs_for, local_settings, sqlite_instance


def _execute(defs, instance, request: RunRequest, job_name: str):
    job = defs.resolve_job_def(job_name)
    tags = dict(request.tags)
    if request.partition_key:
        return job.execute_in_process(instance=instance, partition_key=request.partition_key, tags=tags)
    return job.execute_in_process(instance=instance, tags=tags)


def test_schedule_sensors_chain_one_ranged_run_per_date_in_order(home, tmp_path, test_data_dir):
    defs = defs_for(local_settings(test_data_dir, symbols="BTCUSDT,ETHUSDT,SOLUSDT"))
    instance = sqlite_instance(tmp_path)
    schedule = defs.resolve_schedule_def("daily_0200_utc")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    symbol_sensor = defs.resolve_sensor_def("symbol_day_sensor")
    summary_sensor = defs.resolve_sensor_def("daily_summary_sensor")

    # nothing has run yet
    assert isinstance(symbol_sensor(build_sensor_context(instance=instance, definitions=defs)), SkipReason)

    # the schedule ticks at 02:00 UTC on 03-06 and 03-07: each asks for the day before
    prelude_days = []
    for tick in (datetime(2024, 3, 6, 2, 0, tzinfo=UTC), datetime(2024, 3, 7, 2, 0, tzinfo=UTC)):
        ctx = build_schedule_context(instance=instance, scheduled_execution_time=tick)
        request = schedule(ctx)
        prelude_days.append(request.partition_key)
        assert _execute(defs, instance, request, "daily_prelude_job").success
    assert prelude_days == ["2024-03-05", "2024-03-06"]
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    assert symbols == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]

    ctx = build_sensor_context(instance=instance, definitions=defs)
    requests = symbol_sensor(ctx)
    assert [r.tags[DATE_TAG] for r in requests] == ["2024-03-05", "2024-03-06"]  # in date order
    for r in requests:
        d = r.tags[DATE_TAG]
        assert r.tags[RANGE_START_TAG] == f"{d}|BTCUSDT" and r.tags[RANGE_END_TAG] == f"{d}|SOLUSDT"
        assert r.run_key.startswith(f"symbol_day:{d}:")
    # the cursor moved: a second evaluation asks for nothing new
    again = symbol_sensor(build_sensor_context(instance=instance, definitions=defs, cursor=ctx.cursor))
    assert isinstance(again, SkipReason)

    for r in requests:
        result = _execute(defs, instance, r, "symbol_day_job")
        assert result.success
        assert len({e.partition for e in result.get_asset_materialization_events()}) == 3  # 3 symbols x 1 date

    summary_requests = summary_sensor(build_sensor_context(instance=instance, definitions=defs))
    assert [r.partition_key for r in summary_requests] == ["2024-03-05", "2024-03-06"]
    for r in summary_requests:
        assert _execute(defs, instance, r, "daily_summary_job").success
    # a re-run of an older date's prelude triggers that date again, and only that date
    rerun = _execute(
        defs, instance, RunRequest(partition_key="2024-03-05", tags={DATE_TAG: "2024-03-05"}), "daily_prelude_job"
    )
    assert rerun.success
    again = symbol_sensor(build_sensor_context(instance=instance, definitions=defs, cursor=ctx.cursor))
    assert [r.tags[DATE_TAG] for r in again] == ["2024-03-05"]
    assert again[0].run_key != requests[0].run_key  # a new run key, so Dagster does not dedupe it away

    runs = instance.get_runs()
    by_job = {}
    for run in runs:
        by_job.setdefault(run.job_name, []).append(run)
    assert len(by_job["symbol_day_job"]) == 2 and len(by_job["daily_prelude_job"]) == 3
    assert len(by_job["daily_summary_job"]) == 2


def test_symbol_sensor_waits_for_symbols(home, tmp_path, test_data_dir):
    defs = defs_for(local_settings(test_data_dir, symbols="BTCUSDT"))
    instance = sqlite_instance(tmp_path)
    assert instance.get_dynamic_partitions(SYMBOLS) == []
    result = symbol_sensor_eval(defs, instance)
    assert isinstance(result, SkipReason)


def symbol_sensor_eval(defs, instance):
    return defs.resolve_sensor_def("symbol_day_sensor")(build_sensor_context(instance=instance, definitions=defs))


def test_partition_start_and_dates_are_utc(home, test_data_dir):
    settings = local_settings(test_data_dir, start=date(2024, 3, 1))
    defs = defs_for(settings)
    pdef = defs.resolve_assets_def("universe").partitions_def
    assert pdef.timezone == "UTC" and pdef.start.date() == date(2024, 3, 1)


def test_sensors_leave_cli_driven_runs_alone(home, tmp_path, test_data_dir):
    from huracan_assets.runner import run_prelude

    defs = defs_for(local_settings(test_data_dir, symbols="BTCUSDT"))
    instance = sqlite_instance(tmp_path)
    run_prelude(defs, instance, date(2024, 3, 4), date(2024, 3, 5))  # `huracan backfill` chains its own runs
    assert instance.get_dynamic_partitions(SYMBOLS) == ["BTCUSDT"]
    assert isinstance(symbol_sensor_eval(defs, instance), SkipReason)


def test_a_multi_date_prelude_run_triggers_each_of_its_dates(home, tmp_path, test_data_dir):
    defs = defs_for(local_settings(test_data_dir, symbols="BTCUSDT,ETHUSDT"))
    instance = sqlite_instance(tmp_path)
    tags = {RANGE_START_TAG: "2024-03-04", RANGE_END_TAG: "2024-03-06"}
    assert defs.resolve_job_def("daily_prelude_job").execute_in_process(instance=instance, tags=tags).success
    requests = symbol_sensor_eval(defs, instance)
    assert [r.tags[DATE_TAG] for r in requests] == ["2024-03-04", "2024-03-05", "2024-03-06"]


def _ui_backfill_plan(defs, symbols, days):
    """Dagster's own planner, as asset backfills from the UI use it, on our single-run assets."""
    from dagster import DagsterInstance
    from dagster._core.definitions.automation_tick_evaluation_context import (
        build_run_requests_with_backfill_policies,
    )
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.definitions.partitions.context import partition_loading_context

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(SYMBOLS, symbols)
    with partition_loading_context(dynamic_partitions_store=instance):
        requested = {
            AssetKeyPartitionKey(AssetKey(asset), f"2024-03-{d:02d}|{s}")
            for asset in ("candles", "features")
            for d in days
            for s in symbols
        }
        requests = build_run_requests_with_backfill_policies(requested, defs.resolve_asset_graph(), instance)
    assert all(set(r.asset_selection) == {AssetKey("candles"), AssetKey("features")} for r in requests)
    return sorted((r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests)


def test_ui_backfill_is_chunked_never_one_run_per_key_nor_one_for_all(home, test_data_dir):
    """Dagster groups a multi-partition range by the dimension with fewer keys in the selection."""
    defs = defs_for(local_settings(test_data_dir))
    many_symbols = [f"C{i:02d}USDT" for i in range(8)]
    # more symbols than dates (the daily case, 400 coins): one run per date over all symbols
    plan = _ui_backfill_plan(defs, many_symbols, range(2, 5))
    assert plan == [(f"2024-03-{d:02d}|C00USDT", f"2024-03-{d:02d}|C07USDT") for d in range(2, 5)]
    # fewer symbols than dates (a long history of a few coins): one run per coin over the dates
    plan = _ui_backfill_plan(defs, ["BTCUSDT", "ETHUSDT"], range(2, 9))
    assert plan == [(f"2024-03-02|{s}", f"2024-03-08|{s}") for s in ("BTCUSDT", "ETHUSDT")]


def test_every_check_sensor_and_schedule_says_what_it_does_and_local_ones_start_stopped(home, test_data_dir):
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    local = defs_for(local_settings(test_data_dir))
    repo = local.get_repository_def()
    checks = [spec for a in repo.assets_defs_by_key.values() for spec in a.check_specs]
    assert len({c.key for c in checks}) >= 28
    assert all(c.description and len(c.description) > 20 for c in checks), [c.name for c in checks if not c.description]
    sensors, schedules = repo.sensor_defs, repo.schedule_defs
    assert all(s.description for s in [*sensors, *schedules]), [s.name for s in sensors if not s.description]
    assert {s.default_status for s in sensors} == {DefaultSensorStatus.STOPPED}
    assert {s.default_status for s in schedules} == {DefaultScheduleStatus.STOPPED}
    prod = defs_for(local_settings(test_data_dir).model_copy(update={"env": "prod"})).get_repository_def()
    assert {s.default_status for s in prod.sensor_defs} == {DefaultSensorStatus.RUNNING}
    assert {s.default_status for s in prod.schedule_defs} == {DefaultScheduleStatus.RUNNING}
