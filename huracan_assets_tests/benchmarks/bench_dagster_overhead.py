"""Dagster overhead of ONE date with N symbols: one ranged run against the same work without Dagster.

What is measured (ENGINEERING.md "Benchmarks", "Dagster facts measured on this machine"):

- Dagster: three chained symbol x day assets ``bench_a -> bench_b -> bench_c`` built exactly like
  ``candles`` / ``features`` (``run_keys`` + ``outputs_with_check``, ``BackfillPolicy.single_run()``,
  one aggregate check per step, ``PartitionedParquetIOManager`` on a local object store and a SQLite
  registry). ``bench_b`` reads a window of 1 day back of ``bench_a``. N symbols are registered as
  dynamic partitions and ONE run per date covers them all through the ``range_tags`` of the project,
  started the way ``huracan_assets.runner`` starts it (``resolve_job_def(...).execute_in_process``).
- Baseline, same process: the same per-key functions, the same parquet writes (``write_frame``) and
  window reads (``PartitionWindow``) on a ``LocalObjectStore``, and the same one registry status upsert
  per asset that the IO manager does; no Dagster.

Per (backend, N): a fresh instance (SQLite in a temp DAGSTER_HOME, or dagster-postgres in a fresh
database, dropped afterwards), a warm-up date (so the window input has data and imports/migrations are
paid), then ``repeats`` measured dates, each timed around the one ranged run only; Dagster and the
baseline alternate date by date so both see the same machine load. After every Dagster run the
benchmark verifies that every key of that date got a materialization of all three assets, that the
three checks passed, and that ``bench_c`` is identical to the baseline's, so it cannot report a run
that did nothing.

    python -m huracan_assets_tests.benchmarks.bench_dagster_overhead [--sizes 20,100,400] [--repeats 3]
        [--backends sqlite,postgres]
"""

import os

# production settings, as the CLI sets them (ENGINEERING.md); Dagster reads them at run time, set before
# importing it anyway
os.environ["DAGSTER_EVENT_BATCH_SIZE"] = "1000"
os.environ["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "true"

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import warnings
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetSelection,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    MetadataValue,
    asset,
    define_asset_job,
)

from huracan_assets.defs import resources as resources_module
from huracan_assets.defs.io_managers import PartitionedParquetIOManager
from huracan_assets.defs.partitions import SYMBOLS, range_tags, symbol_day_partitions, window_mapping
from huracan_assets.defs.per_symbol import outputs_with_check, run_keys
from huracan_assets.defs.resources import ObjectStoreResource, RegistryResource
from huracan_assets.names import join_key
from huracan_assets.registry.client import Registry
from huracan_assets.runner import QUIET
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import PartitionWindow, write_frame

PG_ADMIN_URL = os.environ.get("HURACAN_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
START = date(2024, 1, 1)  # partitions start; the warm-up date is START + 1 so its window has a day before it
TIMEFRAME = "1h"
BARS = 24
HOUR_MS = 3_600_000
ASSETS = ("bench_a", "bench_b", "bench_c")
JOB = "bench_job"

warnings.filterwarnings("ignore", message=".*is currently in beta.*")

# seconds spent in our own code inside the Dagster run: asset bodies (compute + window reads) and
# handle_output (parquet writes + registry upsert); reset before each run
_USER_S = [0.0]


# ---- the per-key work, shared by the assets and the baseline -------------------------------------


def _rng(asset_name: str, day: date, symbol: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{asset_name}|{day.isoformat()}|{symbol}".encode()))


def make_a(day: date, symbol: str) -> pl.DataFrame:
    """24 hourly bars of a random walk, seeded by (asset, day, symbol)."""
    rng = _rng("bench_a", day, symbol)
    start_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    return pl.DataFrame(
        {
            "ts": start_ms + np.arange(BARS, dtype=np.int64) * HOUR_MS,
            "close": 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, BARS))),
            "volume": rng.exponential(1_000.0, BARS),
        }
    )


def make_b(day: date, symbol: str, a: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Rolling features of D over D-1 and D of ``bench_a`` (the window input)."""
    today = a[join_key(day, symbol)]
    before = a.get(join_key(day - timedelta(days=1), symbol))
    frame = today if before is None else pl.concat([before, today])
    noise = _rng("bench_b", day, symbol).normal(0.0, 1e-6, frame.height)
    out = frame.with_columns(
        ret=pl.col("close").log().diff().fill_null(0.0) + noise,
        ma6=pl.col("close").rolling_mean(6, min_samples=1),
    )
    return out.tail(BARS)


def make_c(day: date, symbol: str, b: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """A score per bar from ``bench_b`` of the same key."""
    frame = b[join_key(day, symbol)]
    noise = _rng("bench_c", day, symbol).normal(0.0, 1e-6, frame.height)
    vol = pl.col("ret").rolling_std(6, min_samples=2).fill_null(1.0) + 1e-9
    return frame.select("ts", score=(pl.col("close") / pl.col("ma6") - 1.0) / vol + noise)


# ---- Dagster: assets shaped like candles / features ----------------------------------------------


KEY_CHART: list[str | None] = [None]  # bench_key_metadata: a markdown chart for every key of every asset


def _per_key(results: Mapping[str, object]) -> dict[str, dict] | None:
    """Each key's own chart (the chart's markdown with the key in its alt text, so no two are equal)."""
    chart = KEY_CHART[0]
    return (
        None if chart is None else {k: {"chart": MetadataValue.md(chart.replace("![", f"![{k} ", 1))} for k in results}
    )


def bench_assets(start: date = START) -> list:
    parts = symbol_day_partitions(start)
    single_run = BackfillPolicy.single_run()

    @asset(
        partitions_def=parts,
        group_name="benchmark",
        io_manager_key="parquet_io_manager",
        backfill_policy=single_run,
        check_specs=[AssetCheckSpec("bench_a_all_symbols_ok", asset="bench_a")],
    )
    def bench_a(context: AssetExecutionContext):
        t0 = time.perf_counter()
        results = run_keys(context, make_a)
        _USER_S[0] += time.perf_counter() - t0
        yield from outputs_with_check(context, results, "bench_a_all_symbols_ok", per_key=_per_key(results))

    @asset(
        partitions_def=parts,
        group_name="benchmark",
        io_manager_key="parquet_io_manager",
        backfill_policy=single_run,
        ins={"bench_a": AssetIn(partition_mapping=window_mapping(1))},
        check_specs=[AssetCheckSpec("bench_b_all_symbols_ok", asset="bench_b")],
    )
    def bench_b(context: AssetExecutionContext, bench_a: PartitionWindow):
        t0 = time.perf_counter()
        results = run_keys(context, lambda day, symbol: make_b(day, symbol, bench_a))
        _USER_S[0] += time.perf_counter() - t0
        yield from outputs_with_check(context, results, "bench_b_all_symbols_ok", per_key=_per_key(results))

    @asset(
        partitions_def=parts,
        group_name="benchmark",
        io_manager_key="parquet_io_manager",
        backfill_policy=single_run,
        ins={"bench_b": AssetIn()},
        check_specs=[AssetCheckSpec("bench_c_all_symbols_ok", asset="bench_c")],
    )
    def bench_c(context: AssetExecutionContext, bench_b: PartitionWindow):
        t0 = time.perf_counter()
        results = run_keys(context, lambda day, symbol: make_c(day, symbol, bench_b))
        _USER_S[0] += time.perf_counter() - t0
        yield from outputs_with_check(context, results, "bench_c_all_symbols_ok", per_key=_per_key(results))

    return [bench_a, bench_b, bench_c]


class TimedParquetIOManager(PartitionedParquetIOManager):
    """The project's IO manager, unchanged, with the time of ``handle_output`` added to ``_USER_S``."""

    def handle_output(self, context, obj) -> None:
        t0 = time.perf_counter()
        try:
            super().handle_output(context, obj)
        finally:
            _USER_S[0] += time.perf_counter() - t0


def bench_definitions(store_root: Path, registry_url: str) -> Definitions:
    assets = bench_assets()
    return Definitions(
        assets=assets,
        jobs=[define_asset_job(JOB, selection=AssetSelection.assets(*assets))],
        resources={
            "parquet_io_manager": TimedParquetIOManager(
                object_store=ObjectStoreResource(kind="local", root=str(store_root)),
                registry=RegistryResource(url=registry_url),
                timeframe=TIMEFRAME,
            )
        },
    )


@dataclass
class RunStats:
    seconds: float
    events: int
    setup_s: float  # call -> RUN_START (run record, planning, planned events)
    steps_s: float  # first STEP_START -> last STEP_SUCCESS (compute, IO, per-key events)
    teardown_s: float  # last STEP_SUCCESS -> return (RUN_SUCCESS, result)
    user_s: float  # our code inside the run: asset bodies + handle_output


def run_dagster_day(defs: Definitions, instance: DagsterInstance, day: date, symbols: list[str]) -> RunStats:
    job = defs.resolve_job_def(JOB)
    _USER_S[0] = 0.0
    t0_wall, t0 = time.time(), time.perf_counter()
    result = job.execute_in_process(
        instance=instance, tags=range_tags(day, day, symbols), run_config=QUIET, raise_on_error=True
    )
    seconds = time.perf_counter() - t0
    user_s = _USER_S[0]
    t1_wall = t0_wall + seconds
    if not result.success:
        raise RuntimeError(f"benchmark run {result.run_id} for {day} failed")
    logs = instance.all_logs(result.run_id)
    stamps: dict[DagsterEventType, list[float]] = {}
    for entry in logs:
        if entry.dagster_event is not None:
            stamps.setdefault(entry.dagster_event.event_type, []).append(entry.timestamp)
    run_start = min(stamps.get(DagsterEventType.RUN_START, [t0_wall]))
    first_step = min(stamps.get(DagsterEventType.STEP_START, [run_start]))
    last_step = max(stamps.get(DagsterEventType.STEP_SUCCESS, [first_step]))
    verify_dagster_day(instance, result, day, symbols)
    return RunStats(seconds, len(logs), first_step - t0_wall, last_step - first_step, t1_wall - last_step, user_s)


def verify_dagster_day(instance: DagsterInstance, result, day: date, symbols: list[str]) -> None:
    """Every key of the date materialized for every asset, every check passed; else raise."""
    prefix = f"{day.isoformat()}|"
    for name in ASSETS:
        done = {k for k in instance.get_materialized_partitions(AssetKey(name)) if k.startswith(prefix)}
        if len(done) != len(symbols):
            raise AssertionError(f"{name} {day}: {len(done)} of {len(symbols)} keys materialized")
    in_run = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "bench_c"]
    if len(in_run) != len(symbols):
        raise AssertionError(f"bench_c {day}: {len(in_run)} materialization events in the run, not {len(symbols)}")
    checks = result.get_asset_check_evaluations()
    if len(checks) != len(ASSETS) or not all(c.passed for c in checks):
        raise AssertionError(f"checks of {day}: {[(c.check_name, c.passed) for c in checks]}")


# ---- baseline: the same work without Dagster -----------------------------------------------------


def _write_all(store: LocalObjectStore, registry: Registry, asset_name: str, frames: dict[str, pl.DataFrame]) -> None:
    """What PartitionedParquetIOManager.handle_output does for all-ok frames."""
    statuses = {}
    for key in sorted(frames):
        write_frame(store, asset_name, key, frames[key])
        day, _, symbol = key.partition("|")
        statuses[(symbol, date.fromisoformat(day))] = ("ok", None)
    registry.record_symbol_status(asset_name, TIMEFRAME, statuses, "baseline")


def run_baseline_day(store: LocalObjectStore, registry: Registry, day: date, symbols: list[str]) -> float:
    prev = day - timedelta(days=1)
    keys = sorted(join_key(day, s) for s in symbols)
    t0 = time.perf_counter()
    _write_all(store, registry, "bench_a", {join_key(day, s): make_a(day, s) for s in symbols})
    window_a = PartitionWindow(store, "bench_a", [join_key(prev, s) for s in symbols] + keys)
    _write_all(store, registry, "bench_b", {join_key(day, s): make_b(day, s, window_a) for s in symbols})
    window_b = PartitionWindow(store, "bench_b", keys)
    _write_all(store, registry, "bench_c", {join_key(day, s): make_c(day, s, window_b) for s in symbols})
    return time.perf_counter() - t0


def verify_same_output(dagster_root: Path, baseline_root: Path, day: date, symbols: list[str]) -> None:
    keys = [join_key(day, s) for s in symbols]
    ours = PartitionWindow(LocalObjectStore(dagster_root), "bench_c", keys)
    theirs = PartitionWindow(LocalObjectStore(baseline_root), "bench_c", keys)
    for key in keys:
        if not ours[key].equals(theirs[key]):
            raise AssertionError(f"bench_c {key}: the Dagster run and the baseline differ")


# ---- instances -----------------------------------------------------------------------------------


def _write_home(home: Path, storage_yaml: str = "") -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(f"{storage_yaml}telemetry:\n  enabled: false\n")
    return home


@contextlib.contextmanager
def open_instance(backend: str, workdir: Path, pg_admin_url: str) -> Iterator[DagsterInstance]:
    if backend == "sqlite":
        instance = DagsterInstance.from_config(str(_write_home(workdir / "dagster_home")))
        try:
            yield instance
        finally:
            instance.dispose()
        return
    if backend != "postgres":
        raise ValueError(f"unknown backend {backend!r}")
    import sqlalchemy as sa

    name = f"huracan_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    storage = f'storage:\n  postgres:\n    postgres_url: "{url}"\n'
    try:
        instance = DagsterInstance.from_config(str(_write_home(workdir / "dagster_pg_home", storage)))
        try:
            yield instance
        finally:
            instance.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# ---- driver --------------------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    n: int
    dagster: list[RunStats] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)

    @property
    def dagster_s(self) -> float:
        return statistics.median(r.seconds for r in self.dagster)

    @property
    def baseline_s(self) -> float:
        return statistics.median(self.baseline)

    @property
    def overhead_s(self) -> float:
        return self.dagster_s - self.baseline_s

    def median_of(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.dagster)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_one(backend: str, n: int, repeats: int, workdir: Path, pg_admin_url: str) -> Row:
    symbols = [f"S{i:04d}USDT" for i in range(n)]
    dagster_root, baseline_root = workdir / "store_dagster", workdir / "store_baseline"
    registry_url = f"sqlite:///{workdir / 'registry_dagster.sqlite'}"
    baseline_registry = Registry(f"sqlite:///{workdir / 'registry_baseline.sqlite'}", migrate=True)
    baseline_store = LocalObjectStore(baseline_root)
    defs = bench_definitions(dagster_root, registry_url)
    row = Row(backend, n)
    try:
        with open_instance(backend, workdir, pg_admin_url) as instance:
            instance.add_dynamic_partitions(SYMBOLS, symbols)
            warm = START + timedelta(days=1)
            stats = run_dagster_day(defs, instance, warm, symbols)
            base = run_baseline_day(baseline_store, baseline_registry, warm, symbols)
            _log(f"{backend:8} N={n:<4} warm-up  dagster {stats.seconds:6.2f}s  baseline {base:6.2f}s")
            for r in range(repeats):
                day = warm + timedelta(days=r + 1)
                stats = run_dagster_day(defs, instance, day, symbols)
                base = run_baseline_day(baseline_store, baseline_registry, day, symbols)
                verify_same_output(dagster_root, baseline_root, day, symbols)
                row.dagster.append(stats)
                row.baseline.append(base)
                _log(
                    f"{backend:8} N={n:<4} repeat {r + 1}  dagster {stats.seconds:6.2f}s "
                    f"(setup {stats.setup_s:.2f} steps {stats.steps_s:.2f} teardown {stats.teardown_s:.2f}, "
                    f"our code {stats.user_s:.2f}, {stats.events} events)  baseline {base:6.2f}s"
                )
    finally:
        baseline_registry.dispose()
        with contextlib.suppress(Exception):
            resources_module._registry(registry_url).dispose()
        resources_module._registry.cache_clear()
        resources_module._store.cache_clear()
    return row


def run_benchmark(
    sizes: list[int], repeats: int, backends: list[str], pg_admin_url: str = PG_ADMIN_URL, keep: bool = False
) -> list[Row]:
    rows = []
    root = Path(tempfile.mkdtemp(prefix="huracan_bench_dagster_"))
    try:
        for backend in backends:
            for n in sizes:
                workdir = root / f"{backend}_{n}"
                workdir.mkdir()
                rows.append(bench_one(backend, n, repeats, workdir, pg_admin_url))
    finally:
        if keep:
            _log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return rows


def _table_row(r: Row) -> str:
    m = r.median_of
    return (
        f"| {r.backend} | {r.n} | {len(r.dagster)} | {r.dagster_s:.2f} | {r.baseline_s:.2f} | {r.overhead_s:.2f} "
        f"| {1000 * r.overhead_s / r.n:.1f} | {r.dagster_s / r.baseline_s:.1f}x | {m('user_s'):.2f} "
        f"| {m('setup_s'):.2f} | {m('steps_s'):.2f} | {m('teardown_s'):.2f} | {int(m('events'))} |"
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| backend | N | repeats | dagster run s (median) | baseline s (median) | overhead s | overhead/symbol ms "
        "| ratio | our code in run s | run setup s | steps s | teardown s | events/run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines.extend(_table_row(r) for r in rows)
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_ints, default=[20, 100, 400], help="symbols per date, e.g. 20,100,400")
    parser.add_argument("--repeats", type=int, default=3, help="measured dates per configuration (median)")
    parser.add_argument(
        "--repeats-large", type=int, default=None, help="measured dates when N >= 400 (default: --repeats)"
    )
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite,postgres")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="a database to CREATE/DROP the bench DB from")
    parser.add_argument("--target-s", type=float, default=13.0, help="overhead target per date at the largest N")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    rows: list[Row] = []
    started = time.perf_counter()
    for backend in backends:
        for n in args.sizes:
            repeats = args.repeats_large if (args.repeats_large and n >= 400) else args.repeats
            rows += run_benchmark([n], repeats, [backend], args.pg_admin_url, args.keep)
    print(table(rows))
    largest = max(args.sizes)
    for r in rows:
        if r.n == largest:
            verdict = "met" if r.overhead_s <= args.target_s else "NOT met"
            print(
                f"\n{r.backend}: overhead at N={r.n} is {r.overhead_s:.2f} s per date, "
                f"target <= {args.target_s:g} s: {verdict}"
            )
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    main()
