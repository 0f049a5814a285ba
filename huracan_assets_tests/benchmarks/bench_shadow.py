"""Shadow-trading throughput (bars/s): ``simulate`` against vectorbt's ``Portfolio.from_signals`` on the same trades.

Data: ``load_market`` of bench_features: the 14 shared real 5m files, cut to a common end, the last ``--bars``
(51,840 = 180 days) bars of each, reused under ``--coins`` names. Per coin, built outside the timing:

- a pseudo-probability ``p = 1 / (1 + exp(-r12 / 0.01))`` of the 12-bar log return ``r12`` (a momentum score;
  NaN for the first 12 bars), and ``meta_direction`` = the sign of the 288-bar (one day) log return;
- Binance spot costs, ``CostModel.from_config({"venue": "binance_spot"}).round_trip_bps(frame, 1000.0, 120)``;
- the default ``ShadowSpec`` (balanced preset, 2 x vol barriers, 24-bar vertical barrier, 48-bar volatility, the
  default stop slippage) but a fill at the signal bar's close (``latency_bars=0``: ``from_signals`` cannot check a
  stop inside the bar it entered at the open of; the bar loop costs the same either way); the window is every bar
  of the frame (the first 24 have no volatility yet, so no trade).

Sides (each the median of ``--repeats`` timed runs, the sides taking turns, after one untimed warm-up that
JIT-compiles both):

- **ours**: ``simulate`` per coin, one coin after the other, from numpy arrays: guardrails, trailing volatility,
  barrier exits, the trades frame, the per-bar equity frame and the stats.
- **vectorbt** (numba engine): ``Portfolio.from_signals`` on the same trades. ``from_signals`` cannot express the
  stateful guardrails (cooldown, dedup, trades per day, daily loss limit) nor a time stop, so it gets them
  solved: the entries ``simulate`` took (``entries`` / ``short_entries``) and the exits of its trades that ended
  at the vertical barrier (``exits`` / ``short_exits``). It finds the profit-takes and stops itself:
  ``sl_stop`` / ``tp_stop`` per entry as fractions giving the same barrier prices (long: ``sl = 1 - exp(-2 vol)``,
  ``tp = exp(2 vol) - 1``; short mirrored) from ``open``/``high``/``low`` (stop checked before take-profit, a gap
  fills at the open: our rules). Costs: ``fees`` = our per-side cost ``(fee + spread + slippage) / 2`` of each
  bar, charged on the bar of the order (our rule: the entry bar's in, the exit bar's out; the stop slippage is
  not charged); ``size = position_fraction`` of equity (``size_type="percent"``),
  ``init_cash=1``. One coin is one column; 100 coins are one call on 100 columns (vectorbt's favoured layout).
  Two baselines: ``from_signals`` alone (the simulation: order records), and ``from_signals`` + what
  ``simulate`` returns besides: per-bar equity ``pf.value()``, the trade records ``pf.trades.records``, and
  ``total_return``, ``max_drawdown``, ``sharpe_ratio``.

How the two differ: vectorbt charges the exit fee on the exit notional and takes fees from cash, while
``simulate`` subtracts both sides' cost (and a stop's slippage) from the trade's return; a position open at the end
stays open in vectorbt (valued at the close, no exit cost), ``simulate`` marks it with its exit cost. Agreement is
checked outside the timing: vectorbt's orders must sit on the bars of our entries and exits at the same prices.

    python -m huracan_assets_tests.benchmarks.bench_shadow [--coins 100] [--bars 51840] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl
import vectorbt as vbt

from huracan_assets.core.costs import CostModel
from huracan_assets.core.labels.triple_barrier import _trailing_vol
from huracan_assets.core.shadow import ShadowResult, ShadowSpec, simulate
from huracan_assets_tests.benchmarks.bench_features import SHARED_5M, load_market

BAR_MS = 300_000
SPEC = ShadowSpec(latency_bars=0)
P_SCALE = 0.01  # log-return scale of the logistic momentum score
TARGET = 10.0
__all__ = ["SHARED_5M", "main"]


@dataclass
class Row:
    workload: str
    coins: int
    bars: int
    ours_s: float  # wall time, median
    baseline: str
    baseline_s: float
    ours_cpu_s: float  # CPU time of the process (all threads), median
    baseline_cpu_s: float
    threads: int = 1  # ours: coins spread over this many threads (the kernels release the GIL)
    target: float = TARGET

    @property
    def ours_rate(self) -> float:
        return self.coins * self.bars / self.ours_s

    @property
    def baseline_rate(self) -> float:
        return self.coins * self.bars / self.baseline_s

    @property
    def ratio(self) -> float:
        return self.baseline_s / self.ours_s

    @property
    def cpu_ratio(self) -> float:
        return self.baseline_cpu_s / self.ours_cpu_s


def _interleaved_medians(fns: list[Callable[[], object]], repeats: int) -> list[tuple[float, float]]:
    """(median wall time, median process CPU time) of each function over ``repeats`` rounds, the functions taking
    turns within a round, so that a busy machine slows every side alike. CPU time is the steadier of the two on a
    shared machine (it leaves out the time spent waiting for a core)."""
    times: list[list[tuple[float, float]]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            out.append((time.perf_counter() - w0, time.process_time() - c0))
    return [(statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for t in times]


def shadow_inputs(frame: pl.DataFrame) -> dict:
    """``simulate``'s keyword arguments for one coin (module docstring)."""
    close = frame["close"].to_numpy()
    r12 = np.full(close.size, np.nan)
    r12[12:] = np.log(close[12:] / close[:-12])
    meta = np.zeros(close.size)
    meta[288:] = np.sign(np.log(close[288:] / close[:-288]))
    costs = CostModel.from_config({"venue": "binance_spot"}).round_trip_bps(frame, 1000.0, SPEC.max_holding_bars * 5)
    ts = frame["ts"].to_numpy()
    return {
        "ts": ts,
        "open_": frame["open"].to_numpy(),
        "high": frame["high"].to_numpy(),
        "low": frame["low"].to_numpy(),
        "close": close,
        "p": 1.0 / (1.0 + np.exp(-r12 / P_SCALE)),
        "meta_direction": meta,
        "fee_bps": costs["fee_bps"].to_numpy(),
        "spread_bps": costs["spread_bps"].to_numpy(),
        "slippage_bps": costs["slippage_bps"].to_numpy(),
        "start_ms": int(ts[0]),
        "end_ms": int(ts[-1]) + 1,
        "spec": SPEC,
        "bar_ms": BAR_MS,
    }


def vbt_columns(inputs: dict, result: ShadowResult) -> dict[str, np.ndarray]:
    """One coin's ``from_signals`` arrays for the trades of ``result`` (module docstring)."""
    ts, close = inputs["ts"], inputs["close"]
    n = ts.size
    trades = result.trades
    entry = np.searchsorted(ts, trades["entry_ts"].to_numpy())
    exit_ = np.searchsorted(ts, trades["exit_ts"].to_numpy())
    side = trades["side"].to_numpy()
    vertical = (trades["exit_reason"] == "vertical").to_numpy()
    cols = {name: np.zeros(n, bool) for name in ("entries", "exits", "short_entries", "short_exits")}
    cols["entries"][entry[side > 0]] = True
    cols["short_entries"][entry[side < 0]] = True
    cols["exits"][exit_[vertical & (side > 0)]] = True
    cols["short_exits"][exit_[vertical & (side < 0)]] = True
    vol = _trailing_vol(close, entry.astype(np.int64), SPEC.vol_window, SPEC.barrier_spec.min_vol_returns, SPEC.min_vol)
    below = -np.expm1(-SPEC.sl_mult * vol)  # entry * (1 - below) = entry * exp(-2 vol)
    above = np.expm1(SPEC.pt_mult * vol)  # entry * (1 + above) = entry * exp(2 vol)
    cols["sl_stop"] = np.full(n, np.nan)
    cols["tp_stop"] = np.full(n, np.nan)
    cols["sl_stop"][entry] = np.where(side > 0, below, np.expm1(SPEC.sl_mult * vol))
    cols["tp_stop"][entry] = np.where(side > 0, above, -np.expm1(-SPEC.pt_mult * vol))
    per_side = (inputs["fee_bps"] + inputs["spread_bps"] + inputs["slippage_bps"]) / 2.0 / 1e4
    cols["fees"] = np.nan_to_num(per_side)  # each order pays its own bar's cost (no trade where it is NaN)
    for name in ("open_", "high", "low", "close"):
        cols[name] = inputs[name]
    return cols


def vbt_kwargs(columns: list[dict[str, np.ndarray]], index: pd.DatetimeIndex) -> dict:
    """``from_signals`` keyword arguments: one DataFrame column per coin."""
    frames = {name: pd.DataFrame(np.column_stack([c[name] for c in columns]), index=index) for name in columns[0]}
    frames["open"] = frames.pop("open_")
    return frames | {
        "size": SPEC.risk.position_fraction,
        "size_type": "percent",
        "init_cash": float(SPEC.initial_equity),
        "freq": "5min",
        "engine": "numba",
    }


def vbt_simulation(kwargs: dict) -> vbt.Portfolio:
    return vbt.Portfolio.from_signals(**kwargs)


def vbt_with_outputs(kwargs: dict) -> vbt.Portfolio:
    pf = vbt.Portfolio.from_signals(**kwargs)
    pf.value()
    _ = pf.trades.records
    pf.total_return()
    pf.max_drawdown()
    pf.sharpe_ratio()
    return pf


def agreement(pf: vbt.Portfolio, results: list[ShadowResult], inputs: list[dict]) -> tuple[int, int, float]:
    """(trades vectorbt reproduced: same entry and exit bars and prices to 1e-9; our trades; largest
    |total return difference|) over the columns given."""
    orders = pf.orders.values
    returns = pf.total_return().to_numpy()
    same = total = 0
    worst = 0.0
    for col, (res, inp) in enumerate(zip(results, inputs, strict=True)):
        o = orders[orders["col"] == col]
        t = res.trades
        entry = np.searchsorted(inp["ts"], t["entry_ts"].to_numpy())
        exit_ = np.searchsorted(inp["ts"], t["exit_ts"].to_numpy())
        closed = (t["exit_reason"] != "mark").to_numpy()
        total += t.height
        if o.size == 2 * t.height - (~closed).sum():
            ok = np.isclose(o["price"][0::2], t["entry_price"].to_numpy(), rtol=1e-9, atol=0) & (
                o["idx"][0::2] == entry
            )
            shut = np.flatnonzero(closed)
            ok[shut] &= (o["idx"][1::2] == exit_[shut]) & np.isclose(
                o["price"][1::2], t["exit_price"].to_numpy()[shut], rtol=1e-9, atol=0
            )
            same += int(ok.sum())
        worst = max(worst, abs(float(returns[col]) - res.stats["total_return"]))
    return same, total, worst


def run(coins: int, bars: int, repeats: int, threads: int = 1) -> tuple[list[Row], str]:
    market, _ = load_market(coins, bars)
    unique: dict[int, tuple[dict, ShadowResult]] = {}
    for frame in market:
        if id(frame) not in unique:
            inp = shadow_inputs(frame)
            unique[id(frame)] = (inp, simulate(**inp))  # also the numba warm-up
    per_coin = [unique[id(f)] for f in market]
    inputs = [inp for inp, _ in per_coin]
    columns = {id(f): vbt_columns(*unique[id(f)]) for f in market}
    index = pd.DatetimeIndex(pd.to_datetime(inputs[0]["ts"], unit="ms"))
    kw_one = vbt_kwargs([columns[id(market[0])]], index)
    kw_all = vbt_kwargs([columns[id(f)] for f in market], index)

    pf = vbt_with_outputs(kw_all)  # vectorbt warm-up, then the agreement check (untimed)
    n_unique = min(coins, len(unique))
    same, total, worst = agreement(pf, [r for _, r in per_coin[:n_unique]], inputs[:n_unique])
    vbt_with_outputs(kw_one)

    def ours(n: int) -> Callable[[], None]:
        return lambda: [simulate(**inp) for inp in inputs[:n]]

    def ours_threaded(n: int) -> Callable[[], None]:
        def go() -> None:
            with ThreadPoolExecutor(threads) as pool:  # started inside the timing
                list(pool.map(lambda inp: simulate(**inp), inputs[:n]))

        return go

    rows = []
    for n, kw in ((1, kw_one), (coins, kw_all)):
        fns = [ours(n), lambda kw=kw: vbt_with_outputs(kw), lambda kw=kw: vbt_simulation(kw)]
        spread = threads > 1 and n > 1
        if spread:
            fns.append(ours_threaded(n))
        timed = _interleaved_medians(fns, repeats)
        (ours_s, ours_cpu), (full_s, full_cpu), (alone_s, alone_cpu) = timed[:3]
        full, alone = "from_signals + value/trades/stats", "from_signals alone"
        rows.append(Row("shadow window", n, bars, ours_s, full, full_s, ours_cpu, full_cpu))
        rows.append(Row("shadow window", n, bars, ours_s, alone, alone_s, ours_cpu, alone_cpu))
        if spread:
            (par_s, par_cpu) = timed[3]
            rows.append(Row("shadow window", n, bars, par_s, full, full_s, par_cpu, full_cpu, threads))
            rows.append(Row("shadow window", n, bars, par_s, alone, alone_s, par_cpu, alone_cpu, threads))
    n_trades = [r.stats["n_trades"] for _, r in per_coin[:n_unique]]
    note = (
        f"Agreement (untimed, the {n_unique} distinct coins): vectorbt reproduced {same}/{total} of our trades "
        f"(same entry and exit bars, prices to 1e-9); largest |total return difference| {worst:.2e} "
        f"(fees on the exit notional, no exit cost on a position open at the end). Trades per coin: "
        f"{min(n_trades)}-{max(n_trades)}."
    )
    return rows, note


def render(rows: list[Row], repeats: int, note: str) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        f"Shadow trading, 5m bars, median of {repeats}; machine: {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, 1-min load average {load:.1f} at the end; vectorbt "
        f"{vbt.__version__} (numba engine), pandas {pd.__version__}, polars {pl.__version__}",
        "",
        "| coins x bars | ours threads | ours s | ours bars/s | vectorbt workload (1 thread) | vectorbt s | "
        "vectorbt bars/s | speed-up | ours CPU s | vectorbt CPU s | speed-up (CPU) | target | met |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        met = "yes" if r.ratio >= r.target else "**no**"
        lines.append(
            f"| {r.coins} x {r.bars:,} | {r.threads} | {r.ours_s:.4f} | {r.ours_rate:,.0f} | {r.baseline} | "
            f"{r.baseline_s:.4f} | "
            f"{r.baseline_rate:,.0f} | {r.ratio:.1f}x | {r.ours_cpu_s:.4f} | {r.baseline_cpu_s:.4f} | "
            f"{r.cpu_ratio:.1f}x | >= {r.target:g}x | {met} |"
        )
    return "\n".join([*lines, "", note])


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=100)
    parser.add_argument("--bars", type=int, default=51_840)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="also spread our coins over threads")
    args = parser.parse_args(argv)
    rows, note = run(args.coins, args.bars, args.repeats, max(1, args.threads))
    print(render(rows, args.repeats, note))
    missed = [f"{r.coins} coins, {r.threads} thread(s), vs {r.baseline} ({r.ratio:.1f}x)" for r in rows
              if r.ratio < r.target]  # fmt: skip
    print("targets missed: " + "; ".join(missed) if missed else "all targets met")
    return rows


if __name__ == "__main__":
    main()
