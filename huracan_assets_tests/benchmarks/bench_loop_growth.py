"""Load: the daily loop for the scale run's universe, several dates back to back in ONE process and ONE instance,
watching what must not grow: the process's memory, its open files and threads, and the database connections.

It starts from the scale run's history (``bench_scale_run``, same ``--out``; the instance and the registry are
copied from it, so the history is not touched) and runs dates D, D+1, ... as the schedule would, in one process
(``huracan demo``'s runner, in-process executor). After each date it records the process's resident memory and
its peak so far, its open file descriptors and threads, and the connections PostgreSQL holds for the instance's and
the registry's databases. The first date warms the caches (numba, imports, LightGBM): growth is judged from the
second date on.

    python -m huracan_assets_tests.benchmarks.bench_loop_growth --out /tmp/huracan-scale --coins 400 --dates 3
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import timedelta
from pathlib import Path

import psutil
import sqlalchemy as sa

from huracan_assets_tests.benchmarks import bench_scale_run as scale

MODULE = "huracan_assets_tests.benchmarks.bench_loop_growth"


def connections(databases: list[str]) -> int:
    engine = sa.create_engine(scale.PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = ANY(:names)")
            return int(conn.execute(query, {"names": databases}).scalar_one())
    finally:
        engine.dispose()


def run_dates(args) -> None:
    """In the loop's own process: ``--dates`` dates from ``--date``, one after the other."""
    from huracan_assets.cli import _prepare_env, after_day_ms, demo_history_days, replayed

    settings = scale.phase_settings(args, args.home, 1, args.max_symbols)
    _prepare_env(settings)
    from dagster import DagsterInstance

    from huracan_assets.runner import daily_loop, definitions_for
    from huracan_assets.storage.object_store import LocalObjectStore

    last = args.date + timedelta(days=args.dates - 1)
    first = args.date - timedelta(days=demo_history_days(settings))
    me = psutil.Process()
    rows = []
    with replayed(settings, first, last) as (settings, replay):
        defs = definitions_for(settings)
        instance = DagsterInstance.get()
        store = LocalObjectStore(settings.store_root, prefix=settings.object_store.prefix)

        databases = [f"scale_{args.tag}_dagster", f"scale_{args.tag}_registry"]

        def after_each(outcome) -> None:
            rows.append({"date": outcome.day.isoformat(), "seconds": outcome.seconds,
                         "done": outcome.summary.get("symbols_done", 0), "rss": me.memory_info().rss,
                         "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # KiB on Linux
                         "fds": me.num_fds(), "threads": me.num_threads(),
                         "pg_connections": connections(databases)})  # fmt: skip
            (args.home / "growth.json").write_text(json.dumps(rows))

        daily_loop(defs, instance, store, args.date, last, progress=after_each,
                   clock=lambda d: replay.set_now(after_day_ms(d)))  # fmt: skip


def report(rows: list[dict], args) -> str:
    lines = [f"## The daily loop {len(rows)} dates back to back, one process, {args.coins} coins", "",
             "| date | coins trained | seconds | RSS MB | peak RSS so far MB | open fds | threads "
             "| PostgreSQL connections |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    lines += [f"| {r['date']} | {r['done']} | {r['seconds']:.0f} | {r['rss'] / 2**20:,.0f} "
              f"| {r.get('peak_rss', 0) / 2**20:,.0f} | {r['fds']} | {r['threads']} | {r['pg_connections']} |"
              for r in rows]  # fmt: skip
    if len(rows) >= 3:
        base, end = rows[1], rows[-1]
        lines += ["", f"From the second date to the last: RSS {100 * (end['rss'] / base['rss'] - 1):+.1f} %, "
                  f"open fds {end['fds'] - base['fds']:+d}, threads {end['threads'] - base['threads']:+d}, "
                  f"connections {end['pg_connections'] - base['pg_connections']:+d}"]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/huracan-scale"), help="a scale run's folder")
    parser.add_argument("--coins", type=int, default=400)
    parser.add_argument("--dates", type=int, default=3)
    parser.add_argument("--loop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="loop", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    marker = args.out / "history.json"
    if not marker.exists():
        raise SystemExit(f"no scale run history in {args.out}: run bench_scale_run first")
    history = json.loads(marker.read_text())
    scale_args = scale.parse_args(["--out", str(args.out), *rest])
    scale_args.data = args.out / "data"
    for name in ("home", "tag", "coins", "dates"):
        setattr(scale_args, name, getattr(args, name))
    scale_args.max_symbols = args.coins
    if args.loop:
        run_dates(scale_args)
        return []
    home = args.out / args.tag
    scale.make_home(home, args.tag, "hist", args.out / "hist")
    started = time.monotonic()
    scale.launch(scale_args, home, args.tag, "date", 1, args.coins, entry=MODULE,
                 extra=["--loop", "--home", str(home), "--tag", args.tag, "--coins", str(args.coins),
                        "--dates", str(args.dates), "--out", str(args.out)])  # fmt: skip
    rows = json.loads((home / "growth.json").read_text())
    text = report(rows, args) + f"\n\n(history of {history['coins']} coins reused; {time.monotonic() - started:.0f} s)"
    (args.out / "growth.md").write_text(text)
    print(text)
    return rows


if __name__ == "__main__":
    main()
