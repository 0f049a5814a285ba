"""The 02:00 schedule, the prelude job and the sensors chain into one ranged run per date, in order."""

from datetime import UTC, date, datetime

from dagster import RunRequest, SkipReason, build_schedule_context, build_sensor_context

from huracan_assets.defs.automation import DATE_TAG
from huracan_assets.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, SYMBOLS
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
        assert r.run_key == f"symbol_day:{d}"
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
    runs = instance.get_runs()
    by_job = {}
    for run in runs:
        by_job.setdefault(run.job_name, []).append(run)
    assert len(by_job["symbol_day_job"]) == 2 and len(by_job["daily_prelude_job"]) == 2
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
