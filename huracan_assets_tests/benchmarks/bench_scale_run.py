"""The scale run: one date of the whole graph for a universe of synthetic coins, with 1 and 2 workers.

The coins are block-bootstrapped from the bundled real 1h candles (``synthetic_coins``); BTC and ETH, the reference
series, are the real ones. The Engine runs as production does: a Dagster instance on PostgreSQL, a PostgreSQL
registry, the stock ccxt client against the replay exchange of the folder, and the CLI's runner (prelude run,
ONE ranged run of every symbol x day asset, summary run).

1. **History** (not timed against the target): the data assets (candles through engine signals) of the days the
   date's windows read, materialized once in chunks of dates, as ``huracan demo`` does.
2. **A snapshot** of the instance and the registry (``CREATE DATABASE ... TEMPLATE``) and the object store (a
   copy), one per measured configuration, so each starts from the same state.
3. **The date D** through the whole graph (training, walk-forward, canaries, shadow, promotion, presets, summary)
   with ``--workers`` 1 and 2 (the multiprocess executor), and once with a smaller universe on one worker to show
   how memory scales with the number of coins.

Each configuration runs in its own process. A sampler reads the resident memory of that process and all its
children four times a second. Per stage (each step of the runs), the run's event log gives the wall time, and the
metadata our code writes gives the time inside our code: ``run_compute_seconds`` (the per-key work,
``per_symbol.run_keys``), ``run_store_seconds`` (the IO managers' writes) and a training shard's
``compute_seconds``. Dagster's share of a stage is the rest of its wall time.

    python -m huracan_assets_tests.benchmarks.bench_scale_run --coins 400 --workers 1,2 --small 100

The databases are named ``scale_<configuration>_dagster`` and ``scale_<configuration>_registry`` on the server of
``$HURACAN_TEST_PG_URL``: one scale run (one ``--out``) per server at a time; a new run drops the last one's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psutil
import sqlalchemy as sa

from huracan_assets.settings import SAMPLE_DATA_DIR
from huracan_assets_tests.benchmarks.synthetic_coins import write_synthetic_folder

PG_ADMIN_URL = os.environ.get("HURACAN_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REGISTRY_ENV = "HURACAN_SCALE_REGISTRY_URL"
INSTANCE_YAML = """\
telemetry:
  enabled: false
storage:
  postgres:
    postgres_url: {url}
run_monitoring:
  enabled: false
"""


# ----------------------------------------------------------------------------------------------- one phase
def phase_settings(args, home: Path, workers: int, max_symbols: int):
    """The settings of one phase: the synthetic folder, the scale windows, the PostgreSQL registry."""
    from huracan_assets.settings import load_settings

    settings = load_settings(data_dir=str(args.data), home=str(home))
    executor = "multiprocess" if workers > 1 else "in_process"
    update = {
        "windows": settings.windows.model_copy(
            update={"training_days": args.training_days, "shadow_days": args.shadow_days}
        ),
        "universe": settings.universe.model_copy(update={"max_symbols": max_symbols}),
        "registry": settings.registry.model_copy(update={"kind": "postgres", "url_env": REGISTRY_ENV}),
        "engines": settings.engines.model_copy(update={"calibration_days": args.calibration_days}),
        "gate": settings.gate.model_copy(update={"window_days": args.gate_days}),
        "execution": settings.execution.model_copy(update={"executor": executor, "workers": workers}),
    }
    return settings.model_copy(update=update)


def run_phase(args) -> None:
    """In the phase's own process: the history backfill, or the date through the whole graph."""
    from huracan_assets.cli import _prepare_env, after_day_ms, demo_history_days, replayed

    settings = phase_settings(args, args.home, int(args.workers), args.max_symbols)
    _prepare_env(settings)
    from dagster import DagsterInstance

    from huracan_assets.runner import backfill, daily_loop, definitions_for
    from huracan_assets.storage.object_store import LocalObjectStore

    day = args.date
    first = day - timedelta(days=demo_history_days(settings))
    with replayed(settings, first, day) as (settings, replay):
        defs = definitions_for(settings)
        instance = DagsterInstance.get()
        clock = lambda d: replay.set_now(after_day_ms(d))  # noqa: E731
        if args.phase == "history":
            backfill(defs, instance, first, day - timedelta(days=1), settings.execution.backfill_chunk_days,
                     with_summary=False, clock=clock, job="symbol_day_data_job")  # fmt: skip
            return
        store = LocalObjectStore(settings.store_root, prefix=settings.object_store.prefix)
        (outcome,) = daily_loop(defs, instance, store, day, day, clock=clock)
        if hasattr(defs, "close"):
            defs.close()
        s = outcome.summary
        result = {"done": s.get("symbols_done", 0), "skipped": len(s.get("skipped", {})),
                  "failed": len(s.get("failed", {})), "seconds": outcome.seconds}  # fmt: skip
        (args.home / "phase.json").write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------- the parent
@dataclass
class Sampler:
    """Resident memory of a process tree, sampled on a thread."""

    pid: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (time, tree RSS, largest process RSS)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        root = psutil.Process(self.pid)
        while not self.stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                rss = []
                for p in procs:
                    try:
                        rss.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                self.samples.append((time.time(), sum(rss), max(rss, default=0)))
            except psutil.Error:
                return
            self.stop.wait(0.25)

    def peak(self, lo: float = 0.0, hi: float = float("inf")) -> tuple[int, int]:
        inside = [(t, a, b) for t, a, b in self.samples if lo <= t <= hi]
        return max((a for _, a, _ in inside), default=0), max((b for _, _, b in inside), default=0)


def pg_exec(statements: list[str]) -> None:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def db_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def make_home(home: Path, tag: str, template: str | None, template_home: Path | None) -> None:
    """A home with its own instance and registry databases: empty, or copies of ``template``'s."""
    dbs = [f"scale_{tag}_dagster", f"scale_{tag}_registry"]
    drops = [f"DROP DATABASE IF EXISTS {db} WITH (FORCE)" for db in dbs]
    if template is None:
        pg_exec([*drops, *(f"CREATE DATABASE {db}" for db in dbs)])
    else:
        sources = [f"scale_{template}_dagster", f"scale_{template}_registry"]
        pg_exec([*drops, *(f"CREATE DATABASE {d} TEMPLATE {s}" for d, s in zip(dbs, sources, strict=True))])
    if home.exists():
        shutil.rmtree(home)
    if template_home is not None:
        shutil.copytree(template_home, home, symlinks=True)
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text(INSTANCE_YAML.format(url=db_url(dbs[0])))


def launch(
    args,
    home: Path,
    tag: str,
    phase: str,
    workers: int,
    max_symbols: int,
    entry: str | None = None,
    extra: list[str] | None = None,
) -> tuple[float, Sampler]:
    """Run a phase in its own process (``entry``: another benchmark module, given ``extra`` arguments) and
    sample its memory; the process's output goes to ``home/<phase>.log``."""
    cmd = [sys.executable, "-m", "huracan_assets_tests.benchmarks.bench_scale_run", "--phase", phase,
           "--home", str(home), "--workers", str(workers), "--max-symbols", str(max_symbols),
           "--data", str(args.data), "--date", args.date.isoformat(), "--training-days", str(args.training_days),
           "--shadow-days", str(args.shadow_days), "--calibration-days", str(args.calibration_days),
           "--gate-days", str(args.gate_days)]  # fmt: skip
    if entry is not None:
        cmd = [sys.executable, "-m", entry, *(extra or [])]
    env = {**os.environ, REGISTRY_ENV: db_url(f"scale_{tag}_registry"), "PYTHONUNBUFFERED": "1"}
    env.pop("DAGSTER_HOME", None)
    started = time.monotonic()
    with (home / f"{phase}.log").open("w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid)
        thread = threading.Thread(target=sampler.run, daemon=True)
        thread.start()
        code = proc.wait()
        sampler.stop.set()
        thread.join()
    if code != 0:
        tail = (home / f"{phase}.log").read_text()[-3000:]
        raise SystemExit(f"{phase} in {home} failed (rc {code}):\n{tail}")
    return time.monotonic() - started, sampler


def _metadata_seconds(entry, names: tuple[str, ...]) -> float | None:
    """Our code's seconds in an event: the named entries of a materialization's or a step output's metadata
    (None: the event records none)."""
    data = entry.dagster_event.event_specific_data
    meta = getattr(getattr(data, "materialization", None), "metadata", None) or getattr(data, "metadata", None)
    found = [float(meta[name].value) for name in names if meta and name in meta]
    return sum(found) if found else None


def _add(step: dict, seconds: float | None) -> None:
    if seconds is not None:
        step["ours"] = (step["ours"] or 0.0) + seconds


def stage_table(home: Path, sampler: Sampler, since: float) -> list[dict]:
    """Per stage of the runs started after ``since``: wall time, our code's time, Dagster's share, peak memory."""
    from dagster import DagsterEventType, DagsterInstance

    instance = DagsterInstance.from_config(str(home / "dagster"))
    rows = []
    for run in reversed(instance.get_runs()):
        stats = instance.get_run_stats(run.run_id)
        if (stats.start_time or 0) < since:
            continue
        steps: dict[str, dict] = {}
        seen: set[tuple[str, str]] = set()
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None or event.step_key is None:
                continue
            stage = event.step_key.split("[")[0]
            step = steps.setdefault(event.step_key, {"stage": stage, "ours": None})
            kind = event.event_type
            if kind == DagsterEventType.STEP_START:
                step["start"] = entry.timestamp
            elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                step["end"] = entry.timestamp
            elif kind == DagsterEventType.ASSET_MATERIALIZATION:
                # every key of a ranged run carries the run's metadata: count it once per asset
                if (event.step_key, event.asset_key) not in seen:
                    seen.add((event.step_key, event.asset_key))
                    _add(step, _metadata_seconds(entry, ("run_compute_seconds", "run_store_seconds")))
            elif kind == DagsterEventType.STEP_OUTPUT:  # an op's output that is no asset (a training shard)
                _add(step, _metadata_seconds(entry, ("compute_seconds",)))
        for key, step in steps.items():
            if "start" not in step or "end" not in step:
                continue
            wall = step["end"] - step["start"]
            tree, largest = sampler.peak(step["start"], step["end"])
            rows.append({"job": run.job_name, "step": key, "stage": step["stage"], "wall": wall,
                         "ours": None if step["ours"] is None else min(step["ours"], wall), "tree_rss": tree,
                         "largest_rss": largest,
                         "start": step["start"], "end": step["end"]})  # fmt: skip
        rows.append({"job": run.job_name, "step": "(run)", "stage": "(run)",
                     "wall": (stats.end_time or 0) - (stats.start_time or 0), "ours": None,
                     "tree_rss": sampler.peak(stats.start_time or 0, stats.end_time or 0)[0], "largest_rss": None,
                     "start": stats.start_time, "end": stats.end_time})  # fmt: skip
    return rows


def measure(args, tag: str, workers: int, max_symbols: int, template_home: Path) -> dict:
    home = args.out / tag
    make_home(home, tag, "hist", template_home)
    since = time.time()
    seconds, sampler = launch(args, home, tag, "date", workers, max_symbols)
    outcome = json.loads((home / "phase.json").read_text())
    rows = stage_table(home, sampler, since)
    peak_tree, peak_one = sampler.peak()
    return {"tag": tag, "workers": workers, "max_symbols": max_symbols, "process_seconds": seconds,
            "date_seconds": outcome["seconds"], "done": outcome["done"], "skipped": outcome["skipped"],
            "failed": outcome["failed"], "coins_per_hour": outcome["done"] / outcome["seconds"] * 3600,
            "peak_tree_rss": peak_tree, "peak_process_rss": peak_one, "stages": rows}  # fmt: skip


def _mb(value) -> str:
    return "" if value is None else f"{value / 2**20:,.0f}"


def _config_row(r: dict) -> str:
    name = f"{r['tag']} ({r['workers']} worker{'s' if r['workers'] > 1 else ''}, universe {r['max_symbols']})"
    return (f"| {name} | {r['done']} | {r['skipped']} | {r['failed']} | {r['date_seconds']:.0f} "
            f"| {r['coins_per_hour']:.0f} | {_mb(r['peak_tree_rss'])} | {_mb(r['peak_process_rss'])} |")  # fmt: skip


def report(results: list[dict], history: dict, args) -> str:
    lines = [f"## Scale run: {args.coins} coins x {args.date} (1h bars, W = {args.training_days} days, "
             f"S = {args.shadow_days}, engine calibration {args.calibration_days} days, meta gate "
             f"{args.gate_days} days)", "",
             f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {os.cpu_count()} cores, "
             f"Python {platform.python_version()}",
             f"- History (data assets of {history['days']} days x {args.coins} coins, chunks of dates): "
             f"{history['seconds']:.0f} s, peak memory {_mb(history['peak_tree_rss'])} MB (process tree)", "",
             "| configuration | coins trained | skipped | failed | date wall s | coins / hour | peak tree RSS MB "
             "| largest process MB |", "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    lines.extend(_config_row(r) for r in results)
    base = next((r for r in results if r["workers"] == 1 and r["max_symbols"] == args.coins), None)
    two = next((r for r in results if r["workers"] == 2), None)
    if base and two:
        ratio = two["coins_per_hour"] / base["coins_per_hour"]
        lines += ["", f"**2 workers / 1 worker, coins per hour: {ratio:.2f}x**"]
    for r in results:
        lines += ["", f"### Stages of {r['tag']}", "",
                  "| job | stage | steps | wall s (sum) | our code s | Dagster share | peak tree RSS MB |",
                  "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        stages: dict[tuple[str, str], dict] = {}
        for row in r["stages"]:
            agg = stages.setdefault((row["job"], row["stage"]), {"n": 0, "wall": 0.0, "ours": 0.0, "rss": 0})
            agg["n"] += 1
            agg["wall"] += row["wall"]
            agg["ours"] = None if row["ours"] is None or agg["ours"] is None else agg["ours"] + row["ours"]
            agg["rss"] = max(agg["rss"], row["tree_rss"] or 0)
        for (job, stage), agg in stages.items():
            share = "" if agg["ours"] is None or agg["wall"] <= 0 else f"{1 - agg['ours'] / agg['wall']:.0%}"
            ours = "" if agg["ours"] is None else f"{agg['ours']:.1f}"
            lines.append(f"| {job} | {stage} | {agg['n']} | {agg['wall']:.1f} | {ours} | {share} | {_mb(agg['rss'])} |")
    return "\n".join(lines)


def build_history(args, hist_home: Path) -> dict:
    """The synthetic folder, then the data assets of the days the date's windows read (in ``hist_home``)."""
    from huracan_assets.cli import demo_history_days

    if args.data.exists():
        shutil.rmtree(args.data)
    t0 = time.monotonic()
    symbols = write_synthetic_folder(SAMPLE_DATA_DIR, args.data, "1h", args.coins, ("BTC_USDT", "ETH_USDT"), 24,
                                     args.seed)  # fmt: skip
    print(f"{len(symbols)} coins written to {args.data} in {time.monotonic() - t0:.1f} s", flush=True)
    make_home(hist_home, "hist", None, None)
    seconds, sampler = launch(args, hist_home, "hist", "history", 1, args.coins)
    days = demo_history_days(phase_settings(args, hist_home, 1, args.coins))
    print(f"history: {days} days x {args.coins} coins in {seconds:.0f} s", flush=True)
    return {"seconds": seconds, "days": days, "peak_tree_rss": sampler.peak()[0], "coins": args.coins}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coins", type=int, default=400, help="universe size, BTC and ETH included")
    parser.add_argument("--workers", default="1,2", help="worker counts to measure, e.g. 1,2")
    parser.add_argument("--small", type=int, default=0, help="also run one worker on this smaller universe (memory)")
    parser.add_argument("--date", type=date.fromisoformat, default=date(2024, 6, 1))
    parser.add_argument("--training-days", type=int, default=20)
    parser.add_argument("--shadow-days", type=int, default=3)
    parser.add_argument("--calibration-days", type=int, default=14)
    parser.add_argument("--gate-days", type=int, default=14, help="the meta gate's trailing window (config: 30)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/huracan-scale"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse-history", action="store_true", help="keep the coins and history of --out")
    # the phase's own process
    parser.add_argument("--phase", choices=["history", "date"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max-symbols", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.phase:
        run_phase(args)
        return {}
    args.out.mkdir(parents=True, exist_ok=True)
    args.data = args.out / "data"
    hist_home = args.out / "hist"
    marker = args.out / "history.json"
    if args.reuse_history and marker.exists():  # the same coins and history: only the dates are measured again
        history = json.loads(marker.read_text())
        print(f"history reused: {marker}", flush=True)
    else:
        history = build_history(args, hist_home)
        marker.write_text(json.dumps(history))
    results = []
    configs = [(f"w{w}", int(w), args.coins) for w in args.workers.split(",")]
    if args.small:
        configs.append((f"w1_small{args.small}", 1, args.small))
    for tag, workers, max_symbols in configs:
        result = measure(args, tag, workers, max_symbols, hist_home)
        results.append(result)
        (args.out / "results.json").write_text(json.dumps({"history": history, "results": results}, default=str))
        print(f"{tag}: {result['done']} coins trained in {result['date_seconds']:.0f} s "
              f"({result['coins_per_hour']:.0f} coins/hour), peak tree RSS {_mb(result['peak_tree_rss'])} MB",
              flush=True)  # fmt: skip
    text = report(results, history, args)
    (args.out / "report.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps({"history": history, "results": results}, default=str))
    print(text)
    return {"history": history, "results": results}


if __name__ == "__main__":
    main()
