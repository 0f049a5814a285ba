"""Jobs, the 02:00 UTC schedule and the sensors that chain day-only and symbol x day runs.

Dagster does not mix partition definitions in one job, so a day is three runs:
1. ``daily_prelude_job`` (universe, reference candles) for D, started by the schedule at 02:00 on D+1;
2. ``symbol_day_job``: one ranged run ``D|first..D|last`` over all registered symbols, started by
   ``symbol_day_sensor`` once the prelude of D succeeded, dates strictly in order;
3. ``daily_summary_job`` for D, started by ``daily_summary_sensor`` once D's ranged run succeeded.
"""

from __future__ import annotations

from datetime import date, timedelta

from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from huracan_assets.defs.partitions import RANGE_START_TAG, SYMBOLS, range_tags, split_key

PRELUDE_ASSETS = ("universe", "reference_candles")
SYMBOL_DAY_JOB_ASSETS = ("candles", "features")
SUMMARY_ASSETS = ("daily_summary",)
LANE_TAG = "huracan/lane"
DATE_TAG = "huracan/date"


def build_jobs():
    prelude = define_asset_job(
        "daily_prelude_job", selection=AssetSelection.assets(*PRELUDE_ASSETS), tags={LANE_TAG: "prelude"}
    )
    symbol_day = define_asset_job(
        "symbol_day_job", selection=AssetSelection.assets(*SYMBOL_DAY_JOB_ASSETS), tags={LANE_TAG: "symbol_day"}
    )
    summary = define_asset_job(
        "daily_summary_job", selection=AssetSelection.assets(*SUMMARY_ASSETS), tags={LANE_TAG: "summary"}
    )
    return prelude, symbol_day, summary


def symbol_day_run_request(day: date, symbols: list[str]) -> RunRequest:
    """The one ranged run of a date over all registered symbols (a rectangle: D x first..last)."""
    return RunRequest(
        run_key=f"symbol_day:{day.isoformat()}",
        job_name="symbol_day_job",
        tags={**range_tags(day, day, symbols), DATE_TAG: day.isoformat()},
    )


def _successful_dates(instance, job_name: str) -> list[date]:
    records = instance.get_run_records(RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.SUCCESS]))
    out = set()
    for rec in records:
        tags = rec.dagster_run.tags
        if DATE_TAG in tags:
            out.add(date.fromisoformat(tags[DATE_TAG]))
        elif "dagster/partition" in tags:
            out.add(date.fromisoformat(tags["dagster/partition"]))
        elif RANGE_START_TAG in tags:
            out.add(split_key(tags[RANGE_START_TAG])[0])
    return sorted(out)


def _dates_after_cursor(context: SensorEvaluationContext, job_name: str) -> list[date]:
    """Dates whose ``job_name`` run succeeded and that this sensor has not handled yet, in order."""
    cursor = date.fromisoformat(context.cursor) if context.cursor else None
    return [d for d in _successful_dates(context.instance, job_name) if cursor is None or d > cursor]


def build_automation(prelude_job, symbol_day_job, summary_job):
    @schedule(
        cron_schedule="0 2 * * *",
        execution_timezone="UTC",
        job=prelude_job,
        default_status=DefaultScheduleStatus.RUNNING,
    )
    def daily_0200_utc(context: ScheduleEvaluationContext):
        """At 02:00 UTC on D+1, start the day's work for D (yesterday), once D's bars are all in."""
        day = (context.scheduled_execution_time - timedelta(days=1)).date()
        return RunRequest(run_key=f"prelude:{day}", partition_key=day.isoformat(), tags={DATE_TAG: day.isoformat()})

    @sensor(job=symbol_day_job, minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING)
    def symbol_day_sensor(context: SensorEvaluationContext):
        """Launch D's ranged symbol x day run after D's prelude succeeded; dates in order, once each."""
        pending = _dates_after_cursor(context, prelude_job.name)
        if not pending:
            return SkipReason("no new prelude run")
        symbols = context.instance.get_dynamic_partitions(SYMBOLS)
        if not symbols:
            return SkipReason("no symbols registered yet")
        requests = [symbol_day_run_request(d, symbols) for d in pending]
        context.update_cursor(pending[-1].isoformat())
        return requests

    @sensor(job=summary_job, minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING)
    def daily_summary_sensor(context: SensorEvaluationContext):
        """Write D's summary after D's ranged run succeeded."""
        pending = _dates_after_cursor(context, symbol_day_job.name)
        if not pending:
            return SkipReason("no new symbol-day run")
        context.update_cursor(pending[-1].isoformat())
        return [
            RunRequest(run_key=f"summary:{d}", partition_key=d.isoformat(), tags={DATE_TAG: d.isoformat()})
            for d in pending
        ]

    return [daily_0200_utc], [symbol_day_sensor, daily_summary_sensor]
