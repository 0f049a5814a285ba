"""Faults survived by the daily loop on real servers: killed processes, an S3 outage, a PostgreSQL restart, a full
disk and a misbehaving exchange.

Each test takes the next date of the fault world (``conftest.DATES``), runs its three runs (prelude, every
symbol x day asset, summary) through the deployed webserver and daemon with a fault, and checks:

- right after each fault, the invariants (``world.invariants``): every champion pointer verifies, every object
  matches its recorded sha256 (nothing partial under a final key), no registry row duplicated, nothing of the
  earlier dates lost;
- after the recovery (re-execution from failure, or a rerun), the outputs byte for byte: every object and every
  registry row equal the undisturbed reference's after the same date (``world.differences``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterEventType, DagsterRunStatus

from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.names import DATE_TAG, RANGE_END_TAG, RANGE_START_TAG
from huracan_assets.runner import CLI_TAGS
from huracan_assets_tests.faults import world as W
from huracan_assets_tests.faults.conftest import DATES
from huracan_assets_tests.faults.deployment import (
    Deployment,
    RunEnded,
    wait_for_status,
    wait_for_step,
    worker_pid,
)

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("faults")]

START, SUCCESS = DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS
SHARD = "challenger_model.challenger_shard[shard_0]"
JOBS = ("daily_prelude_job", "symbol_day_job", "daily_summary_job")


@dataclass(frozen=True)
class Kill:
    """SIGKILL the run worker once ``step`` has logged ``event`` (and ``delay`` seconds more)."""

    step: str
    event: DagsterEventType = SUCCESS
    delay: float = 0.0

    def __str__(self) -> str:
        return f"{'after' if self.event == SUCCESS else 'inside'} {self.step}"


# every stage boundary of the three runs, and inside the steps that train, publish and summarize
KILLS = {
    "daily_prelude_job": (Kill("reference_candles"),),
    "symbol_day_job": (
        *(Kill(step) for step in ("candles", "features", "labels", "regimes", "spreads", "meta_weights")),
        Kill("engine_signals"),
        Kill("challenger_model.challenger_plan"),
        Kill(SHARD, START, delay=2.0),  # inside training: the walk-forward folds are fitting
        Kill("challenger_model.challenger_collect", START, delay=0.3),  # inside publication
        Kill("shadow_trades"),
    ),
    "daily_summary_job": (Kill("daily_summary", START, delay=0.2),),
}


def tags(job: str, day: date, instance) -> dict[str, str]:
    """The tags the runner gives ``job``'s run of ``day``: the test chains the three runs itself, so they carry the
    CLI's driver tag and the deployment's chaining sensors leave them alone (re-executions inherit it)."""
    if job == "symbol_day_job":
        scope = range_tags(day, day, instance.get_dynamic_partitions(SYMBOLS))
    else:
        scope = {RANGE_START_TAG: day.isoformat(), RANGE_END_TAG: day.isoformat()}
    return {**CLI_TAGS, **scope, DATE_TAG: day.isoformat()}


def start_date(deployment: Deployment, instance, day: date) -> None:
    """Ready the fault world for ``day``: the dates before it that no test ran (a ``-k`` selection) run undisturbed
    first; then the exchange's clock goes to 02:00 UTC after ``day``, when the schedule runs it."""
    for earlier in DATES[: DATES.index(day)]:
        if earlier not in deployment.dates_run:
            deployment.dates_run.add(earlier)
            deployment.world.servers.replay.set_now(W.after(earlier))
            for job in JOBS:
                run(deployment, instance, job, earlier)
    deployment.dates_run.add(day)
    deployment.world.servers.replay.set_now(W.after(day))


def run(deployment: Deployment, instance, job: str, day: date) -> str:
    """Launch ``job`` for ``day`` and wait for its end; its run id (it must succeed)."""
    run_id = deployment.launch(job, tags(job, day, instance))
    status = wait_for_status(instance, run_id)
    assert status == DagsterRunStatus.SUCCESS, f"{job} {day}: {status}\n{deployment.tails()}"
    return run_id


def assert_same_as_reference(deployment: Deployment, reference, day: date) -> None:
    diff = W.differences(W.snapshot(deployment.world), reference[day])
    assert diff == [], f"after {day} the outputs differ from the undisturbed run's:\n" + "\n".join(diff[:30])


def kill_through(deployment: Deployment, instance, job: str, day: date, kills, before: W.Snapshot) -> list[str]:
    """Run ``job``, killing its worker at each of ``kills`` in turn and re-executing from failure after each;
    what each kill did (the run's status) and every invariant broken right after it."""
    run_id = deployment.launch(job, tags(job, day, instance))
    done: set[str] = set()  # steps that succeeded in an earlier run of the chain: a re-execution skips them
    report = []
    for kill in kills:
        if kill.step in done:
            report.append(f"{kill}: skipped (the step was done before the kill landed)")
            continue
        try:
            wait_for_step(instance, run_id, kill.step, kill.event)
        except RunEnded as ended:  # a late kill: the re-execution did not run the step (the caller counts misses)
            report.append(f"{kill}: not reached, the run ended {ended.status.value} without the step")
            if ended.status == DagsterRunStatus.SUCCESS:
                return report
            raise
        time.sleep(kill.delay)
        try:
            os.kill(worker_pid(instance, run_id), signal.SIGKILL)
        except ProcessLookupError:  # the worker had already exited: the run ended before the kill could land
            pass
        status = wait_for_status(instance, run_id, 120)
        done |= {e.step_key for e in instance.all_logs(run_id, of_type=SUCCESS)}
        broken = W.invariants(deployment.world, before)
        report.append(f"{kill}: run {status.value}" + (f", broken: {broken}" if broken else ""))
        assert not broken, f"{job} {day} {kill}: {broken}"
        if status == DagsterRunStatus.SUCCESS:  # the step was quicker than the kill; the caller counts the misses
            return report
        assert status == DagsterRunStatus.FAILURE, f"{job} {day} {kill}: the run ended {status} after the kill"
        run_id = deployment.reexecute_from_failure(run_id)
    status = wait_for_status(instance, run_id)
    assert status == DagsterRunStatus.SUCCESS, f"{job} {day}: the last re-execution {status}\n{deployment.tails()}"
    return report


def test_run_worker_killed_at_every_stage_boundary_and_inside_training(deployment, reference):
    day = DATES[0]
    instance = deployment.instance()
    start_date(deployment, instance, day)
    before = W.snapshot(deployment.world)
    assert W.differences(before, reference[None]) == []  # the fault world starts where the reference did
    report = []
    for job in JOBS:
        report += kill_through(deployment, instance, job, day, KILLS[job], before)
    print("\n".join(report))
    assert sum("run FAILURE" in line for line in report) >= 12  # the kills landed while the runs ran
    assert_same_as_reference(deployment, reference, day)
    instance.dispose()


def test_code_server_killed_with_its_run_is_marked_failed_by_run_monitoring(deployment, reference):
    """The ``code`` container restarting mid-run: the server and its run worker die together, so no process is
    left to mark the run failed. Run monitoring asks the new server (``MonitoredRunLauncher``), marks it failed,
    and the run is re-executed from failure."""
    day = DATES[1]
    instance = deployment.instance()
    start_date(deployment, instance, day)
    run(deployment, instance, "daily_prelude_job", day)
    run_id = deployment.launch("symbol_day_job", tags("symbol_day_job", day, instance))
    wait_for_step(instance, run_id, SHARD, START)
    time.sleep(1.0)
    deployment.kill_code_server()
    time.sleep(2.0)
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED  # nothing else will notice
    deployment.start_code_server()
    assert wait_for_status(instance, run_id, 120) == DagsterRunStatus.FAILURE
    messages = [e.message for e in instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)]
    assert any("is not executing the run" in m for m in messages), messages  # run monitoring's verdict
    assert W.invariants(deployment.world, W.snapshot(deployment.world)) == []
    deployment.reload()
    assert wait_for_status(instance, deployment.reexecute_from_failure(run_id)) == DagsterRunStatus.SUCCESS
    run(deployment, instance, "daily_summary_job", day)
    assert_same_as_reference(deployment, reference, day)
    instance.dispose()


def recover(deployment: Deployment, instance, run_id: str, day: date) -> list[str]:
    """Bring ``day``'s symbol x day work back after a fault: re-execute a failed run from failure; rerun the date if
    the run succeeded with coins marked failed (a failed coin is the run's business, not Dagster's); then the
    summary. What was done, in words."""
    done = []
    status = wait_for_status(instance, run_id, 600)
    if status == DagsterRunStatus.FAILURE:
        deployment.reload()
        run_id = deployment.reexecute_from_failure(run_id)
        status = wait_for_status(instance, run_id)
        done.append(f"re-executed from failure: {status.value}")
    assert status == DagsterRunStatus.SUCCESS, f"{day}: {status}\n{deployment.tails()}"
    failed = failed_keys(deployment, day)
    if failed:
        run(deployment, instance, "symbol_day_job", day)
        done.append(f"rerun of the date for {len(failed)} failed keys, e.g. {failed[:3]}")
    run(deployment, instance, "daily_summary_job", day)
    assert failed_keys(deployment, day) == []
    return done


def failed_rows(url: str, day: date) -> list[tuple[str, str, str]]:
    """``(asset, symbol, reason)`` of the date's keys the registry's status log marks failed."""
    from huracan_assets.registry.client import Registry

    registry = Registry(url, migrate=False)
    try:
        rows = registry.select("symbol_status", as_of=day, status="failed")
    finally:
        registry.dispose()
    return sorted((r["asset"], r["symbol"], r["reason"]) for r in rows)


def failed_keys(deployment: Deployment, day: date) -> list[str]:
    return [f"{asset} {symbol}" for asset, symbol, _ in failed_rows(deployment.world.registry_url, day)]


def outage_during_training(deployment: Deployment, reference, day: date, stop, start) -> None:
    """``day``'s runs with a server down while the models train (``stop``, 2 s, ``start``): the invariants right
    after, the recovery, the outputs compared with the reference's."""
    instance = deployment.instance()
    start_date(deployment, instance, day)
    run(deployment, instance, "daily_prelude_job", day)
    before = W.snapshot(deployment.world)
    run_id = deployment.launch("symbol_day_job", tags("symbol_day_job", day, instance))
    wait_for_step(instance, run_id, SHARD, START)
    time.sleep(1.0)
    stop()
    time.sleep(2.0)
    start()
    wait_for_status(instance, run_id, 600)
    assert W.invariants(deployment.world, before) == []
    print(recover(deployment, instance, run_id, day))
    assert_same_as_reference(deployment, reference, day)
    instance.dispose()


def test_s3_server_killed_mid_training_and_started_again(deployment, reference):
    """SeaweedFS dies while the models train and publish (SIGKILL, then a start on the same folder, ~10 s)."""
    s3 = deployment.world.servers.s3
    outage_during_training(deployment, reference, DATES[2], s3.kill, s3.start)


def test_postgres_restarted_mid_training(deployment, reference):
    """The PostgreSQL server of the Dagster instance and of the registry stops as in a crash (``immediate``: no
    checkpoint, clients cut) while the models train, and starts again."""
    pg = deployment.world.servers.pg
    outage_during_training(deployment, reference, DATES[3], lambda: pg.stop("immediate"), pg.start)
    print(f"webserver requests failed on a dead pooled connection: {deployment.stale_connection_errors}")
    assert deployment.stale_connection_errors <= 4  # one per pooled connection (run, event, schedule storage)


# the exchange misbehaving on the candles of each coin: within the client's retries (5 attempts), and, for ETH,
# beyond them (the coin fails, the others go on, a rerun of the date brings it back)
EXCHANGE_FAULTS = (
    {"kind": "http_5xx", "path": "/api/v3/klines", "symbol": "BTCUSDT", "count": 2},
    {"kind": "truncated_json", "path": "/api/v3/klines", "symbol": "BTCUSDT", "count": 1},
    {"kind": "truncated_json", "path": "/api/v3/klines", "symbol": "BTCUSDT", "count": 1, "cut_connection": True},
    {"kind": "rate_limit_429", "path": "/api/v3/klines", "symbol": "SOLUSDT", "count": 2, "retry_after": 1},
    {"kind": "garbled_json", "path": "/api/v3/klines", "symbol": "SOLUSDT", "count": 1},
    {"kind": "timeout", "path": "/api/v3/klines", "symbol": "SOLUSDT", "count": 1, "delay_s": 12.0},  # a stall
    {"kind": "http_5xx", "path": "/api/v3/klines", "symbol": "ETHUSDT", "count": 50},  # more than the retries
)


def test_exchange_errors_garbage_truncation_and_a_stall(deployment, reference):
    day = DATES[4]
    instance = deployment.instance()
    start_date(deployment, instance, day)
    run(deployment, instance, "daily_prelude_job", day)
    before = W.snapshot(deployment.world)
    replay = deployment.world.servers.replay
    replay.reset_requests()
    replay.set_faults(list(EXCHANGE_FAULTS))
    try:
        run_id = deployment.launch("symbol_day_job", tags("symbol_day_job", day, instance))
        wait_for_status(instance, run_id, 600)
        fired = {(r["fault"], r["query"].get("symbol")) for r in replay.request_log() if r["fault"]}
    finally:
        replay.clear_faults()
    assert W.invariants(deployment.world, before) == []
    failed = failed_keys(deployment, day)
    assert "candles ETHUSDT" in failed and all(k.endswith(" ETHUSDT") for k in failed), failed  # that coin only
    for fault in EXCHANGE_FAULTS:
        assert (fault["kind"], fault["symbol"]) in fired, f"{fault['kind']} never fired: {fired}"
    print(recover(deployment, instance, run_id, day))
    assert_same_as_reference(deployment, reference, day)
    instance.dispose()


def forget_steps(world: W.World, run_id: str, steps: tuple[str, ...]) -> int:
    """Remove what ``steps`` of the run wrote to the instance's event log: the run as if its worker had died before
    they started. How many events went."""
    engine = sa.create_engine(world.instance_url)
    try:
        with engine.begin() as conn:
            table = sa.Table("event_logs", sa.MetaData(), autoload_with=conn)
            done = conn.execute(table.delete().where(table.c.run_id == run_id, table.c.step_key.in_(steps)))
            return done.rowcount
    finally:
        engine.dispose()


def test_a_run_killed_between_the_plan_and_its_shard_is_trained_in_full_when_reexecuted(deployment, reference):
    """The worker dies after ``challenger_plan`` succeeded and before its shard started. Dagster's re-execution from
    failure then starts ``challenger_collect`` but not the mapped shard that never ran, and the collect step gets no
    result at all. Seen once in the kill chain on a loaded machine: the collect step stored an empty
    challenger_model and its checks passed. Now it trains the keys no shard brought back.

    The instant between the two steps is a few milliseconds, too short to hit with a signal each time, so the
    worker is frozen (SIGSTOP) as the plan succeeds, whatever it wrote after the plan is taken out of the event log
    (the state a kill in that instant leaves), and it is killed."""
    day = DATES[5]
    instance = deployment.instance()
    start_date(deployment, instance, day)
    run(deployment, instance, "daily_prelude_job", day)
    run_id = deployment.launch("symbol_day_job", tags("symbol_day_job", day, instance))
    pid = worker_pid(instance, run_id)
    wait_for_step(instance, run_id, "challenger_model.challenger_plan", SUCCESS)
    os.kill(pid, signal.SIGSTOP)
    forget_steps(deployment.world, run_id, (SHARD, "challenger_model.challenger_collect"))
    shutil.rmtree(deployment.root / "storage" / "storage" / run_id / SHARD, ignore_errors=True)
    os.kill(pid, signal.SIGKILL)
    assert wait_for_status(instance, run_id, 120) == DagsterRunStatus.FAILURE
    rerun = deployment.reexecute_from_failure(run_id)
    assert wait_for_status(instance, rerun) == DagsterRunStatus.SUCCESS, deployment.tails()
    started = {e.step_key for e in instance.all_logs(rerun, of_type=START)}
    assert "challenger_model.challenger_collect" in started and SHARD not in started  # Dagster's gap, as seen
    run(deployment, instance, "daily_summary_job", day)
    assert_same_as_reference(deployment, reference, day)
    warned = [e.message for e in instance.all_logs(rerun) if "came back from no training step" in (e.message or "")]
    assert warned, "the collect step did not say it trained the keys no shard brought back"
    instance.dispose()


# ------------------------------------------------------------------------------------------------------ full disk
@contextmanager
def small_disk(path: Path, size_bytes: int):
    """A tmpfs of ``size_bytes`` mounted at ``path`` (a size-limited filesystem); skip where mounting is refused."""
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited filesystem here (needs root and CAP_SYS_ADMIN): {done.stderr}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path, leave_bytes: int) -> Path:
    """Write a filler file until only ``leave_bytes`` are free on ``path``'s filesystem."""
    filler = path / "filler"
    free = shutil.disk_usage(path).free
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, free - leave_bytes))
    return filler


def test_local_store_disk_full_mid_run_then_space_freed(golden_world, reference, tmp_path):
    """The local object store's filesystem fills up during the daily loop (ENOSPC). The run fails with the error
    named, nothing partial is left under a final key nor a temporary file behind, and once space is freed a rerun
    of the date gives the undisturbed outputs (the same bytes as the reference's S3 store)."""
    from huracan_assets.defs.build import build_definitions
    from huracan_assets.runner import RunFailed, daily_loop
    from huracan_assets.storage.object_store import LocalObjectStore

    day = DATES[0]
    world = W.copy_world(golden_world, "disk")
    source = golden_world.store()
    size = sum(source.info(key).size for key in source.list(""))
    with small_disk(tmp_path / "disk", size * 2 + 64 * 1024 * 1024) as disk:
        store = LocalObjectStore(disk / "store")
        for key in source.list(""):  # the history, into the local store
            store.put(key, source.get(key))
        settings = world.settings(tmp_path / "home", object_store={"kind": "local", "root": str(disk / "store")})
        before = W.snapshot(world, store)
        assert W.differences(before, reference[None]) == []
        filler = fill(disk, leave_bytes=256 * 1024)  # room for the candles, not for the models
        replay = golden_world.servers.replay
        clock = lambda d: replay.set_now(W.after(d))  # noqa: E731
        with W.environment(world.environment()):
            defs, instance = build_definitions(settings), world.instance(tmp_path)
            try:
                daily_loop(defs, instance, store, day, day, clock=clock)
                errors = []
            except RunFailed as exc:
                errors = [str(exc)]
            errors += [f"{asset} {symbol}: {reason}" for asset, symbol, reason in failed_rows(world.registry_url, day)]
            assert any("No space left on device" in text for text in errors), errors or "the full disk was never hit"
            assert W.invariants(world, before, store) == []
            leftovers = [p for p in (disk / "store").rglob(".*.tmp")]
            assert leftovers == [], f"temporary files left behind on the full disk: {leftovers[:5]}"
            filler.unlink()
            daily_loop(defs, instance, store, day, day, clock=clock)
            instance.dispose()
        diff = W.differences(W.snapshot(world, store), reference[day])
        assert diff == [], "\n".join(diff[:30])
