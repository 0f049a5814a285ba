"""Drive the daily loop and backfills against a Dagster instance, the way schedule and sensors do.

For each date D: the prelude run (universe, reference candles) for D, then ONE ranged run over
``D|first..D|last`` for every symbol x day asset, then the summary run. History is backfilled in
bounded chunks of dates (one ranged run per chunk), never one run per key.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

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


class WorkerDefinitions:
    """Definitions whose runs execute as Dagster runs them in production: the job is reconstructed from the code
    location (``huracan_assets.definitions``) and its executor (``execution.executor``) decides, so with
    ``multiprocess`` each step is its own process and up to ``execution.workers`` run at once. Each process
    rebuilds the code location from these same settings, written to a private config folder the processes are
    pointed at (``settings.settings_environment``). Anything else is delegated to the in-process
    :class:`Definitions` of the same settings."""

    def __init__(self, settings) -> None:
        from huracan_assets.defs.build import build_definitions
        from huracan_assets.settings import strategy_schemas_dir, write_settings_folder

        schemas = strategy_schemas_dir(settings)
        self.settings = settings.model_copy(update={"params": settings.params.model_copy(
            update={"schemas_dir": schemas})})  # fmt: skip
        self.defs = build_definitions(self.settings)
        self.folder = write_settings_folder(self.settings, Path(tempfile.mkdtemp(prefix="huracan-workers-")))

    def __getattr__(self, name: str):
        return getattr(self.defs, name)

    def execute(
        self, job: str, instance: DagsterInstance, tags: dict[str, str], run_config: dict | None, asset_selection=None
    ):
        from dagster import execute_job
        from dagster._core.definitions.reconstruct import ReconstructableRepository

        from huracan_assets.settings import settings_environment

        with settings_environment(self.folder, self.settings.env):
            repo = ReconstructableRepository.for_module("huracan_assets.definitions", "defs", str(Path.cwd()))
            return execute_job(
                repo.get_reconstructable_job(job), instance, run_config=run_config, tags=tags, raise_on_error=False,
                asset_selection=asset_selection,
            )  # fmt: skip

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def definitions_for(settings):
    """The definitions the runner executes: in process, or (``execution.executor: multiprocess``) reconstructed
    for Dagster's multiprocess executor (:class:`WorkerDefinitions`)."""
    if settings.execution.executor == "multiprocess":
        return WorkerDefinitions(settings)
    from huracan_assets.defs.build import build_definitions

    return build_definitions(settings)


def _execute(defs, instance: DagsterInstance, job: str, tags: dict[str, str], quiet: bool) -> None:
    run_config = QUIET if quiet else None
    if isinstance(defs, WorkerDefinitions):
        result = defs.execute(job, instance, {**CLI_TAGS, **tags}, run_config)
    else:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, tags={**CLI_TAGS, **tags}, run_config=run_config, raise_on_error=False
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
