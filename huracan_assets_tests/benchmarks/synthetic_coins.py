"""Synthetic coins for the scale run, block-bootstrapped from real candles.

A coin is built from whole days (``block_bars`` bars) of real bars drawn at random, with replacement, from the
source coins. Each drawn bar keeps its moves relative to the previous close (open, high, low and close over the
previous close) and its traded value in quote currency; chained from a start price, the blocks give a new price
path whose returns, intraday ranges, volume profile and within-day autocorrelation are real, while the days come
in a new order. The timestamps are the target grid's, so every coin is listed on every day of the grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def relative_bars(frame: pl.DataFrame) -> np.ndarray:
    """Rows ``(open, high, low, close) / previous close`` and the bar's quote value (``volume x close``), for
    every bar that has a previous bar one step before it (the first bar, and any bar after a gap, have none)."""
    ts = frame["ts"].to_numpy()
    c = frame["close"].to_numpy()
    step = int(np.median(np.diff(ts))) if ts.size > 1 else 0
    ok = np.zeros(ts.size, dtype=bool)
    ok[1:] = (np.diff(ts) == step) & (c[:-1] > 0)
    prev = np.roll(c, 1)
    rel = np.column_stack(
        [frame[name].to_numpy() / prev for name in ("open", "high", "low", "close")] + [frame["volume"].to_numpy() * c]
    )
    return rel[ok]


def bootstrap_coin(
    sources: list[np.ndarray], grid_ms: np.ndarray, block_bars: int, seed: int, start_price: float
) -> pl.DataFrame:
    """One coin on ``grid_ms``: blocks of ``block_bars`` consecutive relative bars (``relative_bars``), each from
    a source chosen at random, chained from ``start_price``; the volume is the bar's quote value at the new
    price, times one lognormal size factor per coin (so the coins rank apart by liquidity)."""
    rng = np.random.default_rng(seed)
    n = grid_ms.size
    parts, have = [], 0
    while have < n:
        src = sources[int(rng.integers(len(sources)))]
        start = int(rng.integers(0, src.shape[0] - block_bars + 1))
        parts.append(src[start : start + block_bars])
        have += block_bars
    rel = np.concatenate(parts)[:n]
    close = start_price * np.cumprod(rel[:, 3])
    prev = np.concatenate([[start_price], close[:-1]])
    size = float(np.exp(rng.normal(0.0, 1.0)))
    frame = pl.DataFrame(
        {
            "ts": grid_ms.astype(np.int64),
            "open": prev * rel[:, 0],
            "high": prev * rel[:, 1],
            "low": prev * rel[:, 2],
            "close": close,
            "volume": rel[:, 4] * size / close,
        }
    )
    return frame.select(COLUMNS)


def write_synthetic_folder(
    source_dir: Path, out_dir: Path, timeframe: str, coins: int, keep: tuple[str, ...], block_bars: int, seed: int
) -> list[str]:
    """``out_dir/<timeframe>/``: the real files named in ``keep`` (the reference coins) copied as they are, and
    ``coins - len(keep)`` synthetic coins ``S0001_USDT`` ... bootstrapped from every file of ``source_dir``
    on the grid of the first kept file. Returns the symbols written."""
    src_files = sorted((source_dir / timeframe).glob("*_USDT.parquet"))
    if not src_files:
        raise FileNotFoundError(f"no *_USDT.parquet candles in {source_dir / timeframe}")
    folder = out_dir / timeframe
    folder.mkdir(parents=True, exist_ok=True)
    frames = {f.stem: pl.read_parquet(f).select(COLUMNS).sort("ts") for f in src_files}
    sources = [relative_bars(f) for f in frames.values()]
    sources = [s for s in sources if s.shape[0] >= block_bars]
    written = []
    for name in keep:
        frames[name].write_parquet(folder / f"{name}.parquet")
        written.append(name.replace("_", ""))
    grid = frames[keep[0]]["ts"].to_numpy()
    rng = np.random.default_rng(seed)
    for i in range(1, coins - len(keep) + 1):
        price = float(10 ** rng.uniform(-3, 3))
        coin = bootstrap_coin(sources, grid, block_bars, seed * 100_003 + i, price)
        coin.write_parquet(folder / f"S{i:04d}_USDT.parquet")
        written.append(f"S{i:04d}USDT")
    return written
