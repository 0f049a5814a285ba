"""Jobs, the 02:00 UTC schedule and the sensors that chain day-only and symbol x day runs.

Dagster does not mix partition definitions in one job, so a day is three runs:
1. ``daily_prelude_job`` (universe, reference candles) for D, started by the schedule at 02:00 on D+1;
2. ``symbol_day_job``: one ranged run ``D|first..D|last`` over all registered symbols, started by
   ``symbol_day_sensor`` once a prelude run of D succeeded (requests in date order; the queued run
   coordinator runs one run per lane at a time, see ``dagster.yaml``);
3. ``daily_summary_job`` for D, started by ``daily_summary_sensor`` once D's ranged run succeeded.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta

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

from huracan_assets.core.market_data.candles import date_range
from huracan_assets.core.market_data.universe import parse_selector
from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.defs.resources import ObjectStoreResource
from huracan_assets.names import (
    DATA_ASSETS,
    DATE_TAG,
    DRIVER_TAG,
    LANE_TAG,
    PARTITION_TAG,
    PRELUDE_ASSETS,
    RANGE_END_TAG,
    RANGE_START_TAG,
    SUMMARY_ASSETS,
    SYMBOL_DAY_ASSETS,
    split_key,
)
from huracan_assets.storage.object_store import ObjectNotFound
from huracan_assets.telegram.control import SELECTOR_KEY, parse_selector_bytes

SYMBOL_DAY_JOB_ASSETS = SYMBOL_DAY_ASSETS  # the whole symbol x day graph, in order
SYMBOL_DAY_DATA_ASSETS = DATA_ASSETS  # without training: history backfills that only feed the windows use it


MAX_RUNTIME_TAG = "dagster/max_runtime"  # run monitoring fails a run still going after this many seconds


def build_jobs(run_timeout_seconds: int = 0):
    """The four jobs. ``run_timeout_seconds`` (``execution.run_timeout_seconds``; 0: none) bounds the date's
    symbol x day run through Dagster's run monitoring (``dagster/max_runtime``; the daemon enforces it)."""
    prelude = define_asset_job(
        "daily_prelude_job", selection=AssetSelection.assets(*PRELUDE_ASSETS), tags={LANE_TAG: "prelude"}
    )
    timeout = {MAX_RUNTIME_TAG: str(run_timeout_seconds)} if run_timeout_seconds else {}
    symbol_day = define_asset_job(
        "symbol_day_job",
        selection=AssetSelection.assets(*SYMBOL_DAY_JOB_ASSETS),
        tags={LANE_TAG: "symbol_day", **timeout},
    )
    summary = define_asset_job(
        "daily_summary_job", selection=AssetSelection.assets(*SUMMARY_ASSETS), tags={LANE_TAG: "summary"}
    )
    data = define_asset_job(
        "symbol_day_data_job", selection=AssetSelection.assets(*SYMBOL_DAY_DATA_ASSETS), tags={LANE_TAG: "symbol_day"}
    )
    return prelude, symbol_day, summary, data


def symbol_day_run_request(day: date, symbols: list[str], trigger: str = "") -> RunRequest:
    """The one ranged run of a date over all registered symbols (a rectangle: D x first..last)."""
    return RunRequest(
        run_key=f"symbol_day:{day.isoformat()}:{trigger}",
        job_name="symbol_day_job",
        tags={**range_tags(day, day, symbols), DATE_TAG: day.isoformat()},
    )


def run_dates(tags: dict[str, str]) -> list[date]:
    """The dates a run covered, from its partition or partition-range tags."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return date_range(split_key(tags[RANGE_START_TAG])[0], split_key(tags[RANGE_END_TAG])[0])
    if PARTITION_TAG in tags:
        return [split_key(tags[PARTITION_TAG])[0]]
    return []


def new_successes(context: SensorEvaluationContext, job_name: str) -> list[tuple[date, str]]:
    """``(date, run_id)`` of runs of ``job_name`` that succeeded since the cursor, by date.

    The cursor is the update time of the newest run handled, so a re-run of an older date triggers
    again. Runs driven by the CLI (``huracan demo``/``backfill``) chain themselves and are ignored.
    """
    after = datetime.fromisoformat(context.cursor) if context.cursor else None
    records = context.instance.get_run_records(
        RunsFilter(job_name=job_name, statuses=[DagsterRunStatus.SUCCESS], updated_after=after)
    )
    if not records:
        return []
    context.update_cursor(max(r.update_timestamp for r in records).isoformat())
    latest: dict[date, tuple[datetime, str]] = {}
    for rec in records:
        if rec.dagster_run.tags.get(DRIVER_TAG) == "cli":
            continue
        for day in run_dates(rec.dagster_run.tags):
            if day not in latest or rec.update_timestamp > latest[day][0]:
                latest[day] = (rec.update_timestamp, rec.dagster_run.run_id)
    return [(day, run_id) for day, (_, run_id) in sorted(latest.items())]


def build_automation(prelude_job, symbol_day_job, summary_job, running: bool = True):
    """The schedule and the chaining sensors; ``running``: on by default (production), else they start stopped (a
    local UI left open would otherwise start runs at 02:00 on sample data that ended long ago)."""
    schedule_status = DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED
    sensor_status = DefaultSensorStatus.RUNNING if running else DefaultSensorStatus.STOPPED

    @schedule(
        cron_schedule="0 2 * * *",
        execution_timezone="UTC",
        job=prelude_job,
        default_status=schedule_status,
        description="At 02:00 UTC on D+1, start the day's work for D (yesterday), once D's bars are all in.",
    )
    def daily_0200_utc(context: ScheduleEvaluationContext):
        """At 02:00 UTC on D+1, start the day's work for D (yesterday), once D's bars are all in."""
        day = (context.scheduled_execution_time - timedelta(days=1)).date()
        return RunRequest(run_key=f"prelude:{day}", partition_key=day.isoformat(), tags={DATE_TAG: day.isoformat()})

    @sensor(
        job=symbol_day_job,
        minimum_interval_seconds=30,
        default_status=sensor_status,
        description="Launch D's ranged symbol x day run after a prelude run of D succeeded; in date order.",
    )
    def symbol_day_sensor(context: SensorEvaluationContext):
        """Launch D's ranged symbol x day run after a prelude run of D succeeded; in date order."""
        symbols = context.instance.get_dynamic_partitions(SYMBOLS)
        if not symbols:
            return SkipReason("no symbols registered yet")
        pending = new_successes(context, prelude_job.name)
        if not pending:
            return SkipReason("no new prelude run")
        return [symbol_day_run_request(d, symbols, trigger=run_id[:8]) for d, run_id in pending]

    @sensor(job=summary_job, minimum_interval_seconds=30, default_status=sensor_status,
            description="Write D's daily summary after D's ranged run succeeded.")  # fmt: skip
    def daily_summary_sensor(context: SensorEvaluationContext):
        """Write D's summary after D's ranged run succeeded."""
        pending = new_successes(context, symbol_day_job.name)
        if not pending:
            return SkipReason("no new symbol-day run")
        return [
            RunRequest(run_key=f"summary:{d}:{run_id[:8]}", partition_key=d.isoformat(), tags={DATE_TAG: d.isoformat()})
            for d, run_id in pending
        ]

    @sensor(
        minimum_interval_seconds=60,
        default_status=sensor_status,
        description="Report each change of the Telegram /trade selector (control/symbols_selector.json).",
    )
    def symbols_selector_sensor(context: SensorEvaluationContext, object_store: ObjectStoreResource):
        """Watch ``control/symbols_selector.json`` (the Telegram bot's ``/trade``): each change is reported in the
        sensor's tick, an unusable file at once. The universe of the next daily run applies it; past days keep
        the universe they were trained with."""
        try:
            data = object_store.get_store().get(SELECTOR_KEY)
        except ObjectNotFound:
            data = None
        digest = hashlib.sha256(data).hexdigest() if data is not None else "none"
        if context.cursor == digest:
            return SkipReason("selector unchanged")
        context.update_cursor(digest)
        document, error = parse_selector_bytes(data) if data is not None else (None, None)
        symbols = parse_selector(document) if document is not None else None
        if error:
            context.log.warning(f"symbols selector unusable: {error}")
            return SkipReason(f"selector unusable, the universe falls back to its own ranking: {error}")
        if symbols is None:
            return SkipReason("no selector override: the universe ranks coins itself")
        shown = ", ".join(symbols[:20]) + (" ..." if len(symbols) > 20 else "")
        return SkipReason(f"selector changed: {len(symbols)} coins ({shown}); the next daily run uses them")

    return [daily_0200_utc], [symbol_day_sensor, daily_summary_sensor, symbols_selector_sensor]
