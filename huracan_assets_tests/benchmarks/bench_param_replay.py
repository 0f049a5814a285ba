"""The cost of ``param_posteriors`` per coin-day: the pure replay (``core/params/replay.py``) of every preset of the
bundled strategy schemas (3 strategies x 3 presets: 9 paper traders per coin-day), the context and the decision.

Real 1h candles of the replay folder (22 coins) with a stand-in probability, costs and the real regime classifier
(``core/params/replay_world.py``, the tests' inputs). Each coin is replayed day after day over
``--days`` days, each day with the inputs the asset reads (the trader's two warm-up days, the regimes of D-1 and D)
and the previous day's frame, as the asset chains them. Inputs are built before the clock starts: what is timed
is ``bar_context`` plus ``replay_day`` (the asset adds reading the stored frames, which the other assets pay too).

    python -m huracan_assets_tests.benchmarks.bench_param_replay [--days 10] [--coins 22]
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from huracan_assets.core.market_data.candles import DAY_MS, day_bounds_ms
from huracan_assets.core.params import Controller, ControllerSpec, load_schemas
from huracan_assets.core.params.replay import bar_context, replay_day
from huracan_assets.core.shadow.trader import ShadowSpec
from huracan_assets_tests.core.params.replay_world import REPLAY_1H, coin_world

SCHEMAS = Path(__file__).resolve().parents[2] / "config" / "strategy_schemas"
BAR_MS = 3_600_000
BASE = ShadowSpec(respect_meta=False)
FIRST = date(2024, 7, 5)


def day_inputs(bars: pl.DataFrame, regimes: pl.DataFrame, day: date) -> tuple[pl.DataFrame, pl.DataFrame]:
    lo, hi = day_bounds_ms(day)
    return (
        bars.filter(pl.col("ts").is_between(lo - 2 * DAY_MS, hi - 1)),
        regimes.filter(pl.col("ts").is_between(lo - DAY_MS, hi - 1)),
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--coins", type=int, default=22)
    args = parser.parse_args(argv)
    controllers = {n: Controller(s, ControllerSpec()) for n, s in load_schemas(SCHEMAS).items()}
    paths = sorted(REPLAY_1H.glob("*.parquet"))[: args.coins]
    days = [FIRST + timedelta(days=i) for i in range(args.days)]
    inputs = []
    for path in paths:
        bars, regimes = coin_world(path)
        inputs.append((path.stem.replace("_", ""), [day_inputs(bars, regimes, d) for d in days]))
    # compile the trader's kernels and warm the caches outside the clock
    name, first = inputs[0]
    replay_day(controllers, name, None, first[0][0], bar_context(*first[0], 48, 1e-4, BAR_MS), days[0], BASE, BAR_MS)
    started, trades = time.perf_counter(), 0
    for name, per_day in inputs:
        previous = None
        for d, (bars, regimes) in zip(days, per_day, strict=True):
            context = bar_context(bars, regimes, BASE.vol_window, BASE.min_vol, BAR_MS)
            previous = replay_day(controllers, name, previous, bars, context, d, BASE, BAR_MS)
            trades += int(previous["trades"].sum())
    seconds = time.perf_counter() - started
    coin_days = len(inputs) * len(days)
    per = seconds / coin_days
    result = {"coin_days": coin_days, "seconds": seconds, "ms_per_coin_day": per * 1e3, "trades": trades,
              "seconds_for_400_coins": per * 400}  # fmt: skip
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(f"{coin_days} coin-days ({len(inputs)} coins x {len(days)} days), {trades} replayed trades learned from")
    print(f"{seconds:.2f} s: {per * 1e3:.1f} ms per coin-day; 400 coins: {per * 400:.1f} s per date (one core)")
    return result


if __name__ == "__main__":
    main()
