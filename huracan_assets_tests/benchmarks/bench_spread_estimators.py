"""Spread estimators against the bar size, and the modelled round trip they lead to (issue 14, "Honest P&L").

Question: which range-based spread estimator, on which bars, measures the bid-ask spread rather than volatility?
A spread is a property of the book: an estimator that measures it gives the same answer on 5m, 15m and 1h bars
of the same days. One that grows with the bar size is measuring diffusion over the bar.

Data: real Binance spot candles, ``DIR/<timeframe>/<BASE>_USDT.parquet`` with ``timeframe`` in 5m, 15m, 1h
(default ``DIR``: the shared data set ``../shared/data/ohlcv/binance_spot`` next to the repository, 2024-01-01 ..
2024-09-06, see its PROVENANCE.md). Coins: every coin with 5m and 1h files (15m where present). Only UTC days
complete at every bar size of the coin are used, so each bar size sees the same days. The "pooled" estimate is
the estimator over the pair terms of all those days together: its centre, free of the clipping of noisy days.

Per coin, bar size and estimator, one estimate per day: :func:`huracan_assets.core.costs.day_spread_frame`,
the function the ``spreads`` asset calls (the day's pair terms pooled: Corwin-Schultz (2012) the mean of the
pair spreads, negatives set to 0; Abdi-Ranaldo (2017) and Roll (1984) the square root of the mean signed
squared-spread term, 0 when negative). The first table gives the median and mean of the daily estimates (bps),
the share of days at 0, and ``1h/5m``: the ratio of the means (``-`` when the 5m mean is 0). The second gives
the tick (the smallest price step of the day, :func:`tick_bps`), a hard lower bound of the quoted spread.

The third table is the production cost model at a ``--order`` (1,000 USDT) order, over every 1h bar of the
coin after a ``--warmup-days`` warm-up (the training bars are 1h): ``CostModel`` of ``config/base.yaml``
(``load_settings("local").costs``) with the daily spreads from 5m bars (``round_trip_bps(..., spreads=...)``,
each bar reads the trailing median of the days before its day), the same with the coarse fallback (daily
spreads from the 1h bars: what the ``spreads`` asset stores when the exchange serves no 5m), and the cost
model before issue 14 (Abdi-Ranaldo over 24 1h bars, slippage ``0.1 x vol + 10 x sqrt(Q / bar turnover)``).
Columns are means over the bars (the median and 90th percentile of the total too); ``total - fees`` is the
mean total less the fees. The last lines average ``total - fees`` of the production model over the coins of each
tier (large: BTC, ETH, SOL; small: JUV; mid: the others).

    python -m huracan_assets_tests.benchmarks.bench_spread_estimators [--data DIR] [--coins BTC,ETH] [--order 1000]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from huracan_assets.core.costs import CostModel, day_spread_frame, trailing_vol_bps
from huracan_assets.core.spreads import SPREAD_ESTIMATORS, pooled_spread_bps
from huracan_assets.settings import load_settings

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "ohlcv" / "binance_spot"  # as bench_features
TIMEFRAMES = {"5m": 5, "15m": 15, "1h": 60}
DAY_MS = 86_400_000
LARGE = ("BTC", "ETH", "SOL")
SMALL = ("JUV",)


@dataclass(frozen=True)
class Study:
    daily: pl.DataFrame  # coin, timeframe, estimator, day, spread_bps, tick_bps
    pooled: pl.DataFrame  # coin, timeframe, estimator, pooled_bps: the pair terms of all the days together
    costs: pl.DataFrame  # coin, model, fee/spread/slippage/total means and the median total
    coins: list[str]
    days: dict[str, int]


def tier(coin: str) -> str:
    return "large" if coin in LARGE else "small" if coin in SMALL else "mid"


def coins_in(data: Path) -> list[str]:
    have = {tf: {p.stem.split("_")[0] for p in (data / tf).glob("*_USDT.parquet")} for tf in TIMEFRAMES}
    return sorted(have["5m"] & have["1h"], key=lambda c: (("large", "mid", "small").index(tier(c)), c))


def load(data: Path, coin: str) -> dict[str, pl.DataFrame]:
    out = {}
    for tf in TIMEFRAMES:
        path = data / tf / f"{coin}_USDT.parquet"
        if path.exists():
            out[tf] = pl.read_parquet(path).sort("ts").with_columns(day=(pl.col("ts") // DAY_MS))
    return out


def complete_days(frames: dict[str, pl.DataFrame]) -> list[int]:
    """Days (epoch-day numbers) with every bar at every bar size of the coin."""
    sets = []
    for tf, frame in frames.items():
        counts = frame.group_by("day").len()
        sets.append(set(counts.filter(pl.col("len") == 1440 // TIMEFRAMES[tf])["day"].to_list()))
    return sorted(set.intersection(*sets))


def pooled_estimates(frames: dict[str, pl.DataFrame], days: list[int], coin: str) -> list[dict]:
    """One estimate per coin, bar size and estimator from the pair terms of all the days together (the mean of
    the signed squared-spread terms before the square root): where the daily estimates are mostly noise, this
    shows whether the estimator's centre, not its noise, grows with the bar size."""
    rows = []
    for tf, frame in frames.items():
        bars = frame.filter(pl.col("day").is_in(set(days)))
        for est in SPREAD_ESTIMATORS:
            value, _ = pooled_spread_bps(est, bars["high"], bars["low"], bars["close"])
            rows.append({"coin": coin, "timeframe": tf, "estimator": est, "pooled_bps": value})
    return rows


def daily_estimates(frames: dict[str, pl.DataFrame], days: list[int], coin: str) -> pl.DataFrame:
    rows = []
    keep = set(days)
    for tf, frame in frames.items():
        for (d,), bars in frame.filter(pl.col("day").is_in(keep)).group_by(["day"], maintain_order=True):
            day = date(1970, 1, 1) + timedelta(days=int(d))
            for est in SPREAD_ESTIMATORS:
                row = day_spread_frame(bars.drop("day"), day, est, TIMEFRAMES[tf])
                rows.append(row.with_columns(coin=pl.lit(coin), timeframe=pl.lit(tf)))
    return pl.concat(rows)


def old_model_costs(frame: pl.DataFrame, order: float) -> pl.DataFrame:
    """The cost model before issue 14: AR over 24 1h bars, slippage 0.1 x vol + 10 x sqrt(Q / bar turnover)."""
    model = CostModel.from_config({"venue": "binance_spot", "slippage_vol_coef": 0.1, "impact_y": 0.0})
    out = model.round_trip_bps(frame, 0.0, 60)  # spread and the 0.1 x vol term (no order: no impact term)
    turnover = (frame["close"] * frame["volume"]).rolling_mean(24, min_samples=12).to_numpy()
    vol = trailing_vol_bps(frame["close"], 24)
    impact = np.where(turnover > 0, 10.0 * np.sqrt(order / turnover), np.nan)
    slip = 2.0 * (0.1 * vol + impact)
    return out.with_columns(slippage_bps=pl.Series(slip)).with_columns(
        total_bps=pl.col("fee_bps") + pl.col("spread_bps") + pl.col("slippage_bps")
    )


def cost_rows(
    coin: str, hourly: pl.DataFrame, spreads: dict[str, pl.DataFrame], model: CostModel, order: float, warm_ms: int
) -> list[dict]:
    frame = hourly.drop("day")
    variants = {
        "spreads from 5m (production)": model.round_trip_bps(frame, order, 60, spreads=spreads["5m"]),
        "coarse fallback: spreads from 1h": model.round_trip_bps(frame, order, 60, spreads=spreads["1h"]),
        "before issue 14 (AR 24 x 1h, old slippage)": old_model_costs(frame, order),
    }
    rows = []
    for name, out in variants.items():
        out = out.filter((pl.col("ts") >= warm_ms) & pl.col("total_bps").is_not_nan())
        rows.append(
            {
                "coin": coin,
                "tier": tier(coin),
                "model": name,
                "bars": out.height,
                "fee": out["fee_bps"].mean(),
                "spread": out["spread_bps"].mean(),
                "slippage": out["slippage_bps"].mean(),
                "total": out["total_bps"].mean(),
                "total_med": out["total_bps"].median(),
                "total_p90": out["total_bps"].quantile(0.9),
            }
        )
    return rows


def run(data: Path, coins: list[str], order: float, warmup_days: int) -> Study:
    settings = load_settings("local")
    model = CostModel.from_config(settings.costs.model_config_mapping())
    daily, pooled, costs, n_days = [], [], [], {}
    for coin in coins:
        frames = load(data, coin)
        days = complete_days(frames)
        n_days[coin] = len(days)
        est = daily_estimates(frames, days, coin)
        daily.append(est)
        pooled += pooled_estimates(frames, days, coin)
        chosen = est.filter(pl.col("estimator") == model.spread_estimator)
        spreads = {tf: chosen.filter(pl.col("timeframe") == tf).sort("day") for tf in ("5m", "1h")}
        warm_ms = (days[0] + warmup_days) * DAY_MS
        hourly = frames["1h"].filter(pl.col("day").is_between(days[0], days[-1]))
        costs += cost_rows(coin, hourly, spreads, model, order, warm_ms)
    return Study(pl.concat(daily), pl.DataFrame(pooled), pl.DataFrame(costs), coins, n_days)


# --------------------------------------------------------------------------------------------- tables


def _f(x: float | None, digits: int = 2) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def estimator_table(daily: pl.DataFrame, pooled: pl.DataFrame, coins: list[str]) -> str:
    stats = daily.group_by("coin", "timeframe", "estimator").agg(
        med=pl.col("spread_bps").fill_nan(None).median(),
        mean=pl.col("spread_bps").fill_nan(None).mean(),
        zero=(pl.col("spread_bps") == 0).mean(),
    )
    stats = stats.join(pooled, on=["coin", "timeframe", "estimator"], how="left")
    get = {(r["coin"], r["timeframe"], r["estimator"]): r for r in stats.iter_rows(named=True)}
    head = "| coin | estimator | " + " | ".join(f"{tf}: median / mean (0-days) / pooled" for tf in TIMEFRAMES)
    lines = [head + " | 1h/5m |", "|---|---|" + "---:|" * (len(TIMEFRAMES) + 1)]
    for coin in coins:
        for est in ("abdi_ranaldo", "corwin_schultz", "roll"):
            cells = []
            for tf in TIMEFRAMES:
                r = get.get((coin, tf, est))
                cells.append(
                    "n/a"
                    if r is None
                    else f"{_f(r['med'])} / {_f(r['mean'])} ({r['zero']:.0%}) / {_f(r['pooled_bps'])}"
                )
            a, b = get.get((coin, "5m", est)), get.get((coin, "1h", est))
            ratio = b["mean"] / a["mean"] if a and b and a["mean"] and a["mean"] > 0 else None
            lines.append(f"| {coin} | {est} | " + " | ".join(cells) + f" | {_f(ratio, 1)} |")
    return "\n".join(lines)


def tick_table(daily: pl.DataFrame, coins: list[str]) -> str:
    ticks = (
        daily.filter((pl.col("timeframe") == "5m") & (pl.col("estimator") == "abdi_ranaldo"))
        .group_by("coin")
        .agg(pl.col("tick_bps").median())
    )
    get = dict(ticks.iter_rows())
    lines = ["| coin | " + " | ".join(coins) + " |", "|---|" + "---:|" * len(coins)]
    lines.append("| tick, bps (median day) | " + " | ".join(_f(get.get(c), 3) for c in coins) + " |")
    return "\n".join(lines)


def cost_table(costs: pl.DataFrame, order: float) -> str:
    lines = [
        "| coin | tier | model | bars | fee | spread | slippage | total (mean) | total (med) | total (p90) "
        "| total - fees |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['coin']} | {r['tier']} | {r['model']} | {r['bars']} | {_f(r['fee'], 1)} | {_f(r['spread'])} | "
        f"{_f(r['slippage'])} | {_f(r['total'])} | {_f(r['total_med'])} | {_f(r['total_p90'])} | "
        f"{_f(r['total'] - r['fee'])} |"
        for r in costs.iter_rows(named=True)
    ]
    lines.append(f"\n(bps per round trip at a {order:,.0f} USDT taker order; fees are Binance spot VIP 0, 2 x 10 bps)")
    return "\n".join(lines)


def versions() -> str:
    return f"Python {platform.python_version()}, polars {pl.__version__}, numpy {np.__version__}"


def main(argv: list[str] | None = None) -> Study:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=SHARED, help="folder with 5m/, 15m/, 1h/ of <BASE>_USDT.parquet")
    ap.add_argument("--coins", default="", help="comma-separated bases (default: every coin with 5m and 1h)")
    ap.add_argument("--order", type=float, default=1000.0, help="order notional, USDT")
    ap.add_argument("--warmup-days", type=int, default=8, help="days before the costs are read (spread history)")
    args = ap.parse_args(argv)
    if not (args.data / "5m").is_dir() or not (args.data / "1h").is_dir():
        raise SystemExit(f"bench_spread_estimators needs {args.data}/5m and {args.data}/1h (see --data)")
    coins = [c.strip().upper() for c in args.coins.split(",") if c.strip()] or coins_in(args.data)
    started = time.perf_counter()
    study = run(args.data, coins, args.order, args.warmup_days)
    elapsed = time.perf_counter() - started
    print(f"# Spread estimators against the bar size ({args.data})")
    print(f"{versions()}; {os.cpu_count()} cores; {elapsed:.1f} s")
    print("days per coin (complete at every bar size): " + ", ".join(f"{c} {n}" for c, n in study.days.items()))
    print("\n## Daily spread estimates, bps\n")
    print(estimator_table(study.daily, study.pooled, coins))
    print("\n## Tick size (a quoted spread is at least one tick)\n")
    print(tick_table(study.daily, coins))
    print("\n## Modelled round trip on 1h training bars\n")
    print(cost_table(study.costs, args.order))
    prod = study.costs.filter(pl.col("model").str.starts_with("spreads from 5m"))
    for name in ("large", "mid", "small"):
        part = prod.filter(pl.col("tier") == name)
        if part.height:
            over = part["total"] - part["fee"]
            print(f"{name}: round trip - fees, mean over coins {over.mean():.2f} bps (max {over.max():.2f})")
    return study


if __name__ == "__main__":
    main()
