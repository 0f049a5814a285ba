"""Triple-barrier labelling throughput (events/s): ``triple_barrier`` (numba) against honest baselines.

Data: the shared real 5m candles (14 coins x ~72k bars). Every bar is an event, labelled with the default
``BarrierSpec`` (2 x vol barriers, 24-bar vertical barrier, 48-bar volatility, high/low touches).

Rows of the table, all timed in this process, median of ``--repeats``:

* ``triple_barrier``, 1 thread: every event of every coin, one coin after the other (after the numba warm-up);
* ``triple_barrier``, N threads: the same, the coins spread over N threads (the kernels release the GIL);
* ``triple_barrier_reference``: the plain-Python reference, on a contiguous block of events per coin,
  extrapolated to events/s; its output is checked equal to ``triple_barrier``'s, bit for bit;
* pandas loop: the straightforward pandas way (vectorized rolling std, then a Python loop over events that
  slices each event's future with ``df.loc`` on the sorted ``ts`` index and finds the first touch of each
  barrier), on the same blocks, extrapolated to events/s; its labels are compared with ``triple_barrier``'s.

    python -m huracan_assets_tests.benchmarks.bench_triple_barrier [--coins 14] [--bars 0] [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
from polars.testing import assert_frame_equal

from huracan_assets.core.labels.triple_barrier import BarrierSpec, triple_barrier, triple_barrier_reference

SHARED_5M = Path(__file__).resolve().parents[3] / "shared" / "data" / "ohlcv" / "binance_spot" / "5m"
BAR_MS = 300_000
SPEC = BarrierSpec()


@dataclass
class Row:
    name: str
    events: int  # events labelled per repeat
    seconds: list[float]  # one per repeat
    note: str = ""

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def events_per_s(self) -> float:
        return self.events / self.median_s


def load_coins(n_coins: int, n_bars: int) -> dict[str, pl.DataFrame]:
    files = sorted(SHARED_5M.glob("*.parquet"))
    if not files:
        raise SystemExit(f"bench_triple_barrier needs the shared 5m candles at {SHARED_5M} (none found)")
    frames = {f.name.removesuffix(".parquet"): pl.read_parquet(f) for f in files[:n_coins]}
    return {k: (f.head(n_bars) if n_bars else f) for k, f in frames.items()}


def label_all(frames: dict[str, pl.DataFrame], threads: int) -> int:
    """Label every bar of every coin; returns the number of events."""

    def one(frame: pl.DataFrame) -> int:
        return triple_barrier(frame, frame["ts"][0], frame["ts"][-1] + 1, SPEC, BAR_MS).height

    if threads == 1:
        return sum(one(f) for f in frames.values())
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(pool.map(one, frames.values()))


def blocks(frames: dict[str, pl.DataFrame], events_per_coin: int) -> list[tuple[pl.DataFrame, int, int]]:
    """Per coin: a frame slice holding a block of ``events_per_coin`` events mid-file, their warm-up and their
    future; and the event window ``[start, end)``."""
    out = []
    for frame in frames.values():
        first = max(SPEC.vol_window, frame.height // 2 - events_per_coin // 2)
        last = min(first + events_per_coin, frame.height)
        part = frame.slice(first - SPEC.vol_window, last - first + SPEC.vol_window + SPEC.max_holding_bars + 1)
        out.append((part, int(frame["ts"][first]), int(frame["ts"][last - 1]) + 1))
    return out


def pandas_loop(df: pd.DataFrame, start: int, end: int, spec: BarrierSpec, bar_ms: int) -> pd.DataFrame:
    """Labels the straightforward pandas way: one Python iteration per event, its future sliced with ``loc``.

    ``df`` is indexed by the sorted ``ts``. Same rules as ``triple_barrier`` for ``side`` 0 without costs, with
    symmetric barriers (the short's barriers are then the long's two prices, so one pass decides both sides).
    """
    if spec.side or spec.cost_bps or spec.vertical_dead_zone_bps or spec.touch != "high_low":
        raise ValueError("the pandas baseline implements side 0, no costs, high/low touches only")
    if spec.pt_mult != spec.sl_mult:
        raise ValueError("the pandas baseline implements symmetric barriers only (pt_mult == sl_mult)")
    vol = np.log(df["close"]).diff().rolling(spec.vol_window, min_periods=spec.min_vol_returns).std()
    vol = vol.clip(lower=spec.min_vol)
    horizon = spec.horizon_ms(bar_ms)
    rows = []
    for t in df.index[(df.index >= start) & (df.index < end)]:
        entry, v = df.at[t, "close"], vol.at[t]
        if np.isnan(v):
            rows.append((t, "no_vol", None))
            continue
        if df.index[-1] < t + horizon:
            rows.append((t, "unresolved", None))
            continue
        pt, sl = entry * math.exp(spec.pt_mult * v), entry * math.exp(-spec.sl_mult * v)
        path = df.loc[t + 1 : t + horizon]
        if path.empty:
            rows.append((t, "unresolved", None))
            continue
        ups = path.index[path["high"] >= pt]
        downs = path.index[path["low"] <= sl]
        t_up = ups[0] if len(ups) else None
        t_down = downs[0] if len(downs) else None
        if t_up is None and t_down is None:
            ret = math.log(path["close"].iloc[-1] / entry)
            rows.append((t, "vertical", int(np.sign(ret))))
        elif t_down is not None and (t_up is None or t_down < t_up):
            rows.append((t, "sl", -1))
        elif t_up is not None and (t_down is None or t_up < t_down):
            rows.append((t, "pt", 1))
        elif path.at[t_up, "open"] >= pt:  # both in one bar: the stop, unless the bar opened beyond a barrier
            rows.append((t, "pt", 1))
        elif path.at[t_up, "open"] <= sl:  # opened below the stop: the short took its profit at the open
            rows.append((t, "sl", -1))
        else:  # the long's stop, and the short's stop too: neither side made money
            rows.append((t, "sl", 0))
    return pd.DataFrame(rows, columns=["ts", "barrier", "label"])


def time_it(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, float]]:
    frames = load_coins(args.coins, args.bars)
    label_all(dict(list(frames.items())[:1]), 1)  # numba warm-up (compiles or loads the cache)
    rows = []
    n_events = label_all(frames, 1)
    rows.append(Row("triple_barrier (numba), 1 thread", n_events, time_it(lambda: label_all(frames, 1), args.repeats)))
    if args.threads > 1:
        seconds = time_it(lambda: label_all(frames, args.threads), args.repeats)
        rows.append(Row(f"triple_barrier (numba), {args.threads} threads over coins", n_events, seconds))
    # the baselines, on one block of events per coin, extrapolated
    ref_blocks = blocks(frames, args.reference_events // len(frames))
    ref_events = sum(triple_barrier(*b, SPEC, BAR_MS).height for b in ref_blocks)
    for part, start, end in ref_blocks:  # proof that the baseline computes the same thing
        fast = triple_barrier(part, start, end, SPEC, BAR_MS)
        assert_frame_equal(fast, triple_barrier_reference(part, start, end, SPEC, BAR_MS), check_exact=True)
    seconds = time_it(
        lambda: [triple_barrier_reference(part, s, e, SPEC, BAR_MS) for part, s, e in ref_blocks], args.repeats
    )
    rows.append(Row("triple_barrier_reference (plain Python)", ref_events, seconds, "extrapolated; exact match"))
    pd_blocks = blocks(frames, args.pandas_events // len(frames))
    pd_frames = [(part.to_pandas().set_index("ts"), s, e) for part, s, e in pd_blocks]
    pd_events = sum(triple_barrier(*b, SPEC, BAR_MS).height for b in pd_blocks)
    agree = total = 0
    for (part, start, end), (df, _, _) in zip(pd_blocks, pd_frames, strict=True):
        fast = triple_barrier(part, start, end, SPEC, BAR_MS).select("ts", "barrier", "label").to_pandas()
        slow = pandas_loop(df, start, end, SPEC, BAR_MS)
        same = (fast["barrier"].to_numpy() == slow["barrier"].to_numpy()) & (
            fast["label"].fillna(9).to_numpy() == slow["label"].fillna(9).to_numpy()
        )
        agree, total = agree + int(same.sum()), total + len(same)
    seconds = time_it(lambda: [pandas_loop(df, s, e, SPEC, BAR_MS) for df, s, e in pd_frames], args.repeats)
    rows.append(Row("pandas loop (per-event loc slice)", pd_events, seconds, f"extrapolated; agrees {agree}/{total}"))
    return rows, {"pandas_agreement": agree / total if total else float("nan")}


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=14)
    parser.add_argument("--bars", type=int, default=0, help="first N bars per coin (0: all, ~72k)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="threads for the multi-threaded numba row")
    parser.add_argument("--reference-events", type=int, default=14_000, help="events for the plain-Python baseline")
    parser.add_argument("--pandas-events", type=int, default=2_800, help="events for the pandas-loop baseline")
    args = parser.parse_args(argv)
    rows, extra = run(args)
    pandas_rate = rows[-1].events_per_s
    print(
        f"triple-barrier labelling, {args.coins} coins of real 5m bars, {rows[0].events:,} events, "
        f"default BarrierSpec; median of {args.repeats} repeats"
    )
    print("| implementation | events timed | median s | events/s | x pandas loop | note |")
    print("|---|---:|---:|---:|---:|---|")
    for row in rows:
        ratio = row.events_per_s / pandas_rate
        print(
            f"| {row.name} | {row.events:,} | {row.median_s:.4f} | {row.events_per_s:,.0f} | {ratio:,.1f} |"
            f" {row.note} |"
        )
    best = max(rows[: 2 if args.threads > 1 else 1], key=lambda r: r.events_per_s)
    print(
        f"target >= 10,000x the pandas loop: {'met' if best.events_per_s >= 1e4 * pandas_rate else 'NOT met'} "
        f"({best.events_per_s / pandas_rate:,.0f}x); target ~10M events/s on 2 cores: "
        f"{'met' if best.events_per_s >= 1e7 else 'NOT met'} ({best.events_per_s / 1e6:.1f}M/s); "
        f"pandas-loop label agreement {extra['pandas_agreement']:.2%}"
    )
    return rows


if __name__ == "__main__":
    main()
