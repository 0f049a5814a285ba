"""Feature building throughput: the shared FeatureBuilder against plain pandas and the ``ta`` library.

Data: the 14 shared real 5m files (``shared/data/ohlcv/binance_spot/5m``), cut to a common end, the last
``--bars`` (51,840 = 180 days) bars of each, reused under ``--coins`` names; BTC is the reference coin.

Workloads (each the median of ``--repeats`` timed runs, after one untimed warm-up that JIT-compiles the
numba kernels):

- the full default recipe with ``build_features`` vs the plain-pandas references of the same recipe
  (``huracan_assets_tests/reference_features.py``, the tests' oracle; checked equal to 1e-9 here too);
- the indicators ``ta`` has (RSI 14/28, ATR 14/28, MACD line/signal/hist, ADX/+DI/-DI, Bollinger width/%B,
  Keltner width/position, stochastic %K, MFI: 16 columns) with ``build_features`` on that subset of the
  recipe vs ``ta`` computing the same 16 columns. ``ta`` runs Python loops (ATR, ADX, MFI's rolling apply),
  about 1 s per coin, so its many-coin figure is measured on ``--ta-coins`` coins; bars/s is per bar either way.

Each side starts from its native frames (polars / pandas), converted outside the timing.

    python -m huracan_assets_tests.benchmarks.bench_features [--coins 100] [--bars 51840] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import ta

from huracan_assets.core.features.recipe import FeatureRecipe, build_features, default_recipe
from huracan_assets_tests.reference_features import reference_features

SHARED_5M = Path(__file__).resolve().parents[3] / "shared" / "data" / "ohlcv" / "binance_spot" / "5m"
REFERENCE_FILE = "BTC_USDT.parquet"
TA_SHARED = (
    "rsi_14", "rsi_28", "atr_pct_14", "atr_pct_28", "macd_line", "macd_signal", "macd_hist", "adx_14",
    "plus_di_14", "minus_di_14", "bb_width_20", "bb_pctb_20", "kc_width_20", "kc_pos_20", "stoch_k_14", "mfi_14",
)  # fmt: skip


@dataclass
class Row:
    workload: str
    coins: int
    bars: int
    ours_s: float
    baseline: str
    baseline_coins: int
    baseline_s: float
    target: float

    @property
    def ours_rate(self) -> float:
        return self.coins * self.bars / self.ours_s

    @property
    def baseline_rate(self) -> float:
        return self.baseline_coins * self.bars / self.baseline_s

    @property
    def ratio(self) -> float:
        return self.ours_rate / self.baseline_rate


def load_market(n_coins: int, bars: int) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    """``n_coins`` frames of the last ``bars`` 5m bars (the 14 shared files reused), and the BTC reference."""
    files = sorted(SHARED_5M.glob("*.parquet"))
    if not files:
        raise SystemExit(f"bench_features needs the shared 5m candles at {SHARED_5M} (none found)")
    frames = {f.name: pl.read_parquet(f) for f in files}
    if REFERENCE_FILE not in frames:
        raise SystemExit(f"bench_features needs {REFERENCE_FILE} in {SHARED_5M}")
    end = min(int(f["ts"].max()) for f in frames.values())
    cut = {name: f.filter(pl.col("ts") <= end).tail(bars) for name, f in frames.items()}
    short = [name for name, f in cut.items() if f.height < bars]
    if short:
        raise SystemExit(f"shared 5m files with fewer than {bars} bars: {short}")
    sources = list(cut.values())
    return [sources[i % len(sources)] for i in range(n_coins)], cut[REFERENCE_FILE]


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ta_indicators(frame: pd.DataFrame) -> pd.DataFrame:
    """The 16 ta-shared columns with ``ta`` (classic infinite Wilder/EMA recursions)."""
    h, low, c, v = frame["high"], frame["low"], frame["close"], frame["volume"]
    macd = ta.trend.MACD(c, 26, 12, 9)
    adx = ta.trend.ADXIndicator(h, low, c, 14)
    bb = ta.volatility.BollingerBands(c, 20, 2)
    kc = ta.volatility.KeltnerChannel(h, low, c, 20, 10, original_version=False, multiplier=2)
    return pd.DataFrame(
        {
            "rsi_14": ta.momentum.RSIIndicator(c, 14).rsi(),
            "rsi_28": ta.momentum.RSIIndicator(c, 28).rsi(),
            "atr_pct_14": ta.volatility.AverageTrueRange(h, low, c, 14).average_true_range() / c,
            "atr_pct_28": ta.volatility.AverageTrueRange(h, low, c, 28).average_true_range() / c,
            "macd_line": macd.macd() / c,
            "macd_signal": macd.macd_signal() / c,
            "macd_hist": macd.macd_diff() / c,
            "adx_14": adx.adx(),
            "plus_di_14": adx.adx_pos(),
            "minus_di_14": adx.adx_neg(),
            "bb_width_20": bb.bollinger_wband() / 100.0,
            "bb_pctb_20": bb.bollinger_pband(),
            "kc_width_20": kc.keltner_channel_wband() / 100.0,
            "kc_pos_20": kc.keltner_channel_pband(),
            "stoch_k_14": ta.momentum.StochasticOscillator(h, low, c, 14).stoch(),
            "mfi_14": ta.volume.MFIIndicator(h, low, c, v, 14).money_flow_index(),
        }
    )


def check_same_recipe(ours: pl.DataFrame, theirs: pd.DataFrame, names: tuple[str, ...], rtol: float = 1e-6) -> None:
    """The pandas baseline computes the same numbers: nulls identical, values within ``rtol`` of the column's
    scale. 1e-6, not the tests' 1e-9: over 51,840 bars pandas' running-sum rolling std/mean of close drifts
    (up to ~3e-7 relative in the z-scores and Bollinger columns; the builder sums each window directly and
    matches numpy's two-pass result to ~1e-12)."""
    for name in names:
        a, b = ours[name].to_numpy().astype(float), theirs[name].to_numpy()
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            raise AssertionError(f"{name}: null pattern differs between builder and pandas baseline")
        ok = ~np.isnan(a)
        if ok.any():
            scale = np.maximum(np.abs(b[ok]), np.median(np.abs(b[ok])))
            if (np.abs(a[ok] - b[ok]) > rtol * scale).any():
                raise AssertionError(f"{name}: builder and pandas baseline disagree")


def run(coins: int, bars: int, repeats: int, ta_coins: int, pandas_coins: int) -> list[Row]:
    market, reference = load_market(coins, bars)
    market_pd = [f.to_pandas() for f in market[: max(pandas_coins, ta_coins, 1)]]
    reference_pd = reference.to_pandas()
    recipe = default_recipe()
    subset: FeatureRecipe = recipe.subset(TA_SHARED, "ta-shared")
    specs = [(s.name, s.kind, s.param_dict) for s in recipe.specs]

    ours_one = build_features(market[0], recipe, reference)  # warm-up: numba compiles here
    check_same_recipe(ours_one, reference_features(market_pd[0], specs, reference_pd), recipe.names)
    build_features(market[0], subset, reference)

    def ours_all(r: FeatureRecipe, n: int) -> Callable[[], None]:
        return lambda: [build_features(f, r, reference) for f in market[:n]]

    def pandas_all(n: int) -> Callable[[], None]:
        return lambda: [reference_features(f, specs, reference_pd) for f in market_pd[:n]]

    def ta_all(n: int) -> Callable[[], None]:
        return lambda: [ta_indicators(f) for f in market_pd[:n]]

    rows = [
        Row(f"full recipe ({len(recipe.names)} features)", 1, bars, _median_time(ours_all(recipe, 1), repeats),
            "plain pandas, same recipe", 1, _median_time(pandas_all(1), repeats), 1.5),
        Row(f"full recipe ({len(recipe.names)} features)", coins, bars, _median_time(ours_all(recipe, coins), repeats),
            "plain pandas, same recipe", pandas_coins, _median_time(pandas_all(pandas_coins), repeats), 1.5),
        Row(f"ta-shared indicators ({len(subset.names)})", 1, bars, _median_time(ours_all(subset, 1), repeats),
            "ta 0.11", 1, _median_time(ta_all(1), repeats), 10.0),
        Row(f"ta-shared indicators ({len(subset.names)})", coins, bars, _median_time(ours_all(subset, coins), repeats),
            "ta 0.11", ta_coins, _median_time(ta_all(ta_coins), repeats), 10.0),
    ]  # fmt: skip
    return rows


def render(rows: list[Row], repeats: int) -> str:
    lines = [
        f"Feature building, 5m bars, median of {repeats}; machine: {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}; polars {pl.__version__}, pandas {pd.__version__}",
        "",
        "| workload | coins x bars | ours s | ours bars/s | baseline | baseline coins | baseline s | "
        "baseline bars/s | speed-up | target | met |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        met = "yes" if r.ratio >= r.target else "**no**"
        lines.append(
            f"| {r.workload} | {r.coins} x {r.bars:,} | {r.ours_s:.3f} | {r.ours_rate:,.0f} | {r.baseline} | "
            f"{r.baseline_coins} | {r.baseline_s:.3f} | {r.baseline_rate:,.0f} | {r.ratio:.1f}x | "
            f">= {r.target:g}x | {met} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=100)
    parser.add_argument("--bars", type=int, default=51_840)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ta-coins", type=int, default=10, help="coins ta is timed on for the many-coin row")
    parser.add_argument("--pandas-coins", type=int, default=None, help="default: --coins")
    args = parser.parse_args(argv)
    pandas_coins = args.coins if args.pandas_coins is None else args.pandas_coins
    ta_coins = min(args.ta_coins, args.coins)
    rows = run(args.coins, args.bars, args.repeats, ta_coins, min(pandas_coins, args.coins))
    print(render(rows, args.repeats))
    missed = [f"{r.workload} x{r.coins} ({r.ratio:.1f}x < {r.target:g}x)" for r in rows if r.ratio < r.target]
    print("targets missed: " + "; ".join(missed) if missed else "all targets met")
    return rows


if __name__ == "__main__":
    main()
