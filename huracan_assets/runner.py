"""Drive the daily loop and backfills against a Dagster instance, the way schedule and sensors do.

For each date D: the prelude run (universe, reference candles) for D, then ONE ranged run over
``D|first..D|last`` for every symbol x day asset, then the summary run. History is backfilled in
bounded chunks of dates (one ranged run per chunk), never one run per key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from dagster import DagsterInstance, Definitions

from huracan_assets.core.market_data.candles import date_range
from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.names import (
    DATE_TAG,
    DRIVER_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    REPOSITORY_LABEL,
    REPOSITORY_LABEL_TAG,
)
from huracan_assets.storage.object_store import ObjectNotFound, ObjectStore

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# the sensors leave runs the CLI chains itself alone; the repository label links them to the code location in the UI
CLI_TAGS = {DRIVER_TAG: "cli", REPOSITORY_LABEL_TAG: REPOSITORY_LABEL}


class RunFailed(RuntimeError):
    pass


@dataclass
class DateOutcome:
    day: date
    seconds: float
    summary: dict = field(default_factory=dict)


def _execute(defs: Definitions, instance: DagsterInstance, job: str, tags: dict[str, str], quiet: bool) -> None:
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags={**CLI_TAGS, **tags}, run_config=QUIET if quiet else None, raise_on_error=False
    )
    if not result.success:
        errors = [
            f"{ev.step_key}: {_root_cause(ev.event_specific_data.error)}"
            for ev in result.all_events
            if ev.is_step_failure
        ]
        raise RunFailed(f"{job} run {result.run_id} failed: {'; '.join(errors) or 'see the run in the UI'}")


def _root_cause(error) -> str:
    """The innermost error of a Dagster step failure (the wrapper messages say little)."""
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    return error.message.strip().splitlines()[-1] if error is not None else "unknown error"


def run_prelude(defs, instance, first: date, last: date, quiet: bool = True) -> None:
    tags = {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat(), DATE_TAG: first.isoformat()}
    _execute(defs, instance, "daily_prelude_job", tags, quiet)


def run_symbol_days(defs, instance, first: date, last: date, quiet: bool = True, job: str = "symbol_day_job") -> bool:
    """One ranged run over the rectangle [first..last] x all registered symbols; False if none.

    ``job``: ``symbol_day_job`` (the whole graph) or ``symbol_day_data_job`` (without training)."""
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    if not symbols:
        return False
    tags = {**range_tags(first, last, symbols), DATE_TAG: first.isoformat()}
    _execute(defs, instance, job, tags, quiet)
    return True


def run_summary(defs, instance, first: date, last: date, quiet: bool = True) -> None:
    tags = {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat(), DATE_TAG: first.isoformat()}
    _execute(defs, instance, "daily_summary_job", tags, quiet)


def chunks(first: date, last: date, size: int) -> list[tuple[date, date]]:
    days = date_range(first, last)
    return [(days[i], days[min(i + size, len(days)) - 1]) for i in range(0, len(days), size)]


def backfill(
    defs: Definitions,
    instance: DagsterInstance,
    first: date,
    last: date,
    chunk_days: int,
    *,
    with_summary: bool = True,
    progress: Callable[[date, date, float], None] | None = None,
    clock: Callable[[date], None] | None = None,
    job: str = "symbol_day_job",
) -> None:
    """Materialize [first, last] in bounded chunks of dates, in date order (``job``: see run_symbol_days).

    ``clock(day)`` is called before the runs that need ``day`` complete (a replay exchange moves its
    simulated now to 02:00 UTC of the next day, as the schedule would see it).
    """
    for lo, hi in chunks(first, last, chunk_days):
        started = time.monotonic()
        if clock:
            clock(hi)
        run_prelude(defs, instance, lo, hi)
        if run_symbol_days(defs, instance, lo, hi, job=job) and with_summary:
            run_summary(defs, instance, lo, hi)
        if progress:
            progress(lo, hi, time.monotonic() - started)


def daily_loop(
    defs: Definitions,
    instance: DagsterInstance,
    store: ObjectStore,
    first: date,
    last: date,
    progress: Callable[[DateOutcome], None] | None = None,
    clock: Callable[[date], None] | None = None,
) -> list[DateOutcome]:
    """Each date D in order, exactly as the 02:00 schedule and the sensors would run it after D ends."""
    outcomes = []
    day = first
    while day <= last:
        started = time.monotonic()
        if clock:
            clock(day)
        run_prelude(defs, instance, day, day)
        run_symbol_days(defs, instance, day, day)
        run_summary(defs, instance, day, day)
        outcome = DateOutcome(day, time.monotonic() - started, read_summary(store, day))
        outcomes.append(outcome)
        if progress:
            progress(outcome)
        day += timedelta(days=1)
    return outcomes


def read_summary(store: ObjectStore, day: date) -> dict:
    try:
        return json.loads(store.get(f"summaries/daily/{day.isoformat()}.json"))
    except ObjectNotFound:
        return {}
