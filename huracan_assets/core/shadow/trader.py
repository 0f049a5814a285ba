"""Shadow (paper) trading of one model's signals on one coin, one position at a time, with a numba bar loop.

Pure numpy / numba / polars; no I/O. ``simulate`` is the fast path (a ``@njit`` loop over the bars);
``reference_simulate`` is a plain-Python loop over lists with the same rules (the oracle of the tests and
the baseline of the benchmark), and the two agree exactly: same trades, same floats.

Semantics (bars are candles: ``ts`` is the bar's open time in epoch ms; every input is one value per bar):

* **Window.** Bars with ``ts < start_ms`` are warm-up only: they feed the trailing volatility, never a trade,
  and are not counted anywhere. Trading happens on the bars with ``start_ms <= ts < end_ms``; bars from
  ``end_ms`` on are ignored entirely (no exit is found there either).
* **Signal timing.** The signal of bar t (``p[t]``, ``meta_direction[t]`` and the cost estimates of t) is acted
  on at bar t's **close**: the entry price is ``close[t]``, exactly like an event of the triple-barrier labels.
  ``entry_ts`` is that bar's ``ts`` (the fill is at ``ts + bar_ms``).
* **Side.** +1 (long) if ``p >= 0.5 + threshold``, −1 (short) if ``p <= 0.5 - threshold``, else none; a NaN
  ``p`` is no signal. ``meta_direction`` is −1 / 0 / +1 per bar (NaN or ``None``: no opinion).
* **Barriers** follow :mod:`huracan_assets.core.labels.triple_barrier` (its kernels are reused): volatility at
  the entry bar = sample std (ddof 1) of the ``vol_window`` log close-to-close returns ending at it (warm-up
  bars included), floored at ``min_vol``, undefined with fewer than ``max(2, ceil(vol_window / 2))`` returns.
  Long: profit-take ``pt = entry * exp(+pt_mult * vol)``, stop ``sl = entry * exp(-sl_mult * vol)``; short
  mirrored. They are checked from bar t+1 on, high/low touches: a long's ``high >= pt`` exits at ``pt``,
  ``low <= sl`` at ``sl``; a bar touching both is the **stop**; a bar that **opens** at or beyond a barrier
  exits at its open (a gap through the stop fills worse than the stop; through the profit-take, better).
* **Vertical barrier, time-based:** with no horizontal touch, the exit is at the close of the first bar with
  ``ts >= entry ts + max_holding_bars * bar_ms`` (on gap-free bars: bar t + max_holding_bars). That bar's
  barriers are checked first. Unlike the labels (the last bar *within* the horizon), a hole in the data
  makes the paper trader wait for the next bar that exists: it cannot exit where there is no market.
* **Mark.** A position still open after the last bar of the window is closed at that bar's close with
  ``exit_reason == "mark"`` (and pays the exit cost): the final equity is the liquidation value. An entry on
  the window's last bar is marked at its own close (gross 0, the round trip's cost).
* **Costs**, in bps of the notional, per side: ``fee_bps[t]/2 + spread_bps[t]/2 + slippage_bps[t]/2`` of the
  *entry* bar t, paid at entry and the same amount at exit (the exit's estimates are the entry bar's, as in
  :meth:`CostModel.round_trip_bps`, whose per-bar round-trip columns are the inputs). ``cost_bps`` = the two
  sides; funding is not modelled (spot). Per trade: ``gross = side * (exit / entry - 1)``,
  ``net = gross - cost_bps / 1e4``; ``gross_bps``, ``net_bps`` are those times 1e4.
* **Sizing and equity.** ``size = position_fraction * equity`` at entry (notional, in units of the initial
  equity); at the exit ``equity *= 1 + position_fraction * net`` (compounding, realized at exits only).
  The per-bar equity curve is the realized equity when flat and, while a position is open, its liquidation
  value at the bar's close: ``equity * (1 + position_fraction * net_if_closed_at_close)``, both costs paid.
* **Guardrails**, checked in this order at every window bar; the first that fails is counted in ``skipped``
  under its name, and nothing is entered:

  1. ``no_signal``: NaN ``p`` or inside the threshold band;
  2. ``spread``: ``spread_bps[t] > max_spread_bps`` (a thin book), or an undefined (NaN) spread;
  3. ``net_edge``: ``q * pt_mult * vol * 1e4 - (fee_bps + spread_bps + slippage_bps)`` below
     ``net_edge_floor_bps``, with ``q = 2p - 1`` for a long, ``1 - 2p`` for a short (the expected value of a
     symmetric barrier bet won with probability p); undefined (no volatility yet, a NaN cost) fails too;
  4. ``meta``: ``respect_meta`` and ``meta_direction[t] == -side``;
  5. ``cooldown``: ``t <= exit bar + cooldown_bars`` of the last exit (the exit bar itself never re-enters;
     ``cooldown_bars`` more bars after it are blocked);
  6. ``dedup``: ``t <= last entry bar in the same direction + dedup_bars``;
  7. ``max_trades_per_day``: the UTC day already has ``max_trades_per_day`` entries;
  8. ``daily_loss_limit``: the day's realized loss exceeds the limit: ``day_start_equity - equity >
     daily_loss_limit * day_start_equity``; blocks entries for the rest of that UTC day.

  A signal passing all eight while a position is open is ignored (not counted). The counts therefore cover
  every window bar whose signal failed a guardrail, whether or not a position was open then. Days are UTC
  days of the bar's ``ts``: an entry counts in its entry bar's day, a realized PnL in its exit bar's day;
  ``day_start_equity`` is the realized equity before the day's first bar. Each bar is processed as: day
  roll, the open position's exit, then the bar's signal (so an exit's loss is known to that bar's guardrails).
* **Stats** (``ShadowResult.stats``): ``n_trades``; ``net_bps_per_trade`` (mean ``net_bps``) and ``hit_rate``
  (share of trades with ``net_bps > 0``), NaN without trades; ``total_return`` (last equity / initial − 1);
  ``max_drawdown`` (largest fall of the per-bar equity below its running peak, the initial equity included,
  as a positive fraction); ``sharpe``: mean / std (ddof 1) of the daily returns of the equity at each UTC
  day's last window bar (the first day against the initial equity), times sqrt(365), NaN with fewer than
  two days or no variation; ``turnover_per_day``: traded notional (entry and exit, ``2 * size``) over the mean
  equity, per day of window bars (``bars * bar_ms / 1 day``).

How ``simulate`` computes it (``reference_simulate`` just follows the rules above, bar by bar): numba passes
over the arrays, then polars frames. The entry volatility is ``triple_barrier._trailing_vol``'s number, bit
for bit, but two passes over a 48-bar window at every bar would be half the run time, and most bars only need
to know whether the volatility clears the net-edge floor. So ``_vol_bounds`` brackets it from rolling sums with
a rigorous rounding-error bound (relative width ~1e-11), ``_edge_flags`` decides the net edge on the bracket
and computes the exact volatility (``_exact_vol``, the labels' arithmetic) only where the bracket straddles
the floor, and the bar loop computes it at entries, for the barriers. Decisions and barrier prices are
therefore exactly those of the exact volatility.

Threads: the kernels are serial ``@njit(cache=True, nogil=True)``; a caller may spread coins over threads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from huracan_assets.core.labels.triple_barrier import (
    PT,
    SL,
    VERTICAL,
    BarrierSpec,
    _bar_touch,
    _barrier_pair,
    _floored_std,
    _is_int,
    _is_real,
    _reference_touch,
    _reference_vol,
    _trailing_vol,
)

DAY_MS = 86_400_000
NO_TOUCH = 2  # _bar_touch's "no touch" code
MARK = 3
EXIT_REASONS: dict[int, str] = {PT: "pt", SL: "sl", VERTICAL: "vertical", MARK: "mark"}
SKIP_REASONS = (
    "no_signal",
    "spread",
    "net_edge",
    "meta",
    "cooldown",
    "dedup",
    "max_trades_per_day",
    "daily_loss_limit",
)
TRADE_SCHEMA: dict[str, pl.DataType] = {
    "entry_ts": pl.Int64,
    "exit_ts": pl.Int64,
    "side": pl.Int8,
    "entry_price": pl.Float64,
    "exit_price": pl.Float64,
    "size": pl.Float64,
    "gross_bps": pl.Float64,
    "cost_bps": pl.Float64,
    "net_bps": pl.Float64,
    "exit_reason": pl.String,
}
EQUITY_SCHEMA: dict[str, pl.DataType] = {"ts": pl.Int64, "equity": pl.Float64}
_N_SKIP = len(SKIP_REASONS)
_ANCHOR = 32  # _vol_bounds recomputes its rolling sums every this many rows
_U = 2.0**-53  # unit roundoff of float64
_INPUT_ERRORS = (
    "",
    "ts must be strictly increasing (sorted, unique)",
    "open, high, low and close must hold finite prices > 0 up to the window's end",
    "p must be probabilities in [0, 1] (NaN: no signal)",
    "meta_direction must be -1, 0 or 1 (NaN: no opinion)",
)
_NEVER = -(2**40)  # "no previous exit / entry": any bar index minus this exceeds every window
_REC_COLUMNS = 10  # kernel trade record: entry idx, exit idx, side, entry, exit, size, gross, cost, net, code
_EXIT_OBJECTS = np.array([EXIT_REASONS.get(code, "") for code in range(SL, MARK + 1)], dtype=object)


@dataclass(frozen=True)
class RiskPreset:
    """Sizing and limits (module docstring)."""

    name: str
    position_fraction: float  # share of equity per trade (notional)
    max_trades_per_day: int
    daily_loss_limit: float  # fraction of the UTC day's starting equity; beyond it, no entry that day

    def __post_init__(self) -> None:
        f = self.position_fraction
        if not _is_real(f) or not math.isfinite(f) or not 0 < f <= 1:
            raise ValueError(f"RiskPreset.position_fraction must be in (0, 1], got {f!r}")
        if not _is_int(self.max_trades_per_day) or self.max_trades_per_day < 1:
            raise ValueError(f"RiskPreset.max_trades_per_day must be an int >= 1, got {self.max_trades_per_day!r}")
        limit = self.daily_loss_limit
        if not _is_real(limit) or not math.isfinite(limit) or limit <= 0:
            raise ValueError(f"RiskPreset.daily_loss_limit must be a finite number > 0, got {limit!r}")


RISK_PRESETS: dict[str, RiskPreset] = {
    "conservative": RiskPreset("conservative", 0.25, 4, 0.02),
    "balanced": RiskPreset("balanced", 0.5, 8, 0.04),
    "aggressive": RiskPreset("aggressive", 1.0, 16, 0.08),
}


@dataclass(frozen=True)
class ShadowSpec:
    """Signal, guardrail, barrier and risk parameters; see the module docstring for the exact semantics."""

    threshold: float = 0.05  # long if p >= 0.5 + threshold, short if p <= 0.5 - threshold
    net_edge_floor_bps: float = 5.0  # (2p - 1 | 1 - 2p) x pt_mult x vol x 1e4 - round-trip cost must reach it
    max_spread_bps: float = 50.0  # no entry when the bar's spread estimate exceeds it
    cooldown_bars: int = 2  # after an exit at bar j, no entry up to bar j + cooldown_bars
    dedup_bars: int = 6  # no entry within this many bars of the previous entry in the same direction
    respect_meta: bool = True  # no entry against the meta combiner's direction
    pt_mult: float = 2.0
    sl_mult: float = 2.0
    max_holding_bars: int = 24
    vol_window: int = 48
    min_vol: float = 1e-4
    risk: RiskPreset = RISK_PRESETS["balanced"]
    initial_equity: float = 1.0

    def __post_init__(self) -> None:
        if not _is_real(self.threshold) or not 0 <= self.threshold < 0.5:
            raise ValueError(f"ShadowSpec.threshold must be in [0, 0.5), got {self.threshold!r}")
        for name in ("net_edge_floor_bps", "max_spread_bps", "initial_equity"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value):
                raise ValueError(f"ShadowSpec.{name} must be a finite number, got {value!r}")
        if self.initial_equity <= 0:
            raise ValueError(f"ShadowSpec.initial_equity must be > 0, got {self.initial_equity!r}")
        for name in ("cooldown_bars", "dedup_bars"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"ShadowSpec.{name} must be an int >= 0, got {value!r}")
        if not isinstance(self.respect_meta, bool):
            raise ValueError(f"ShadowSpec.respect_meta must be a bool, got {self.respect_meta!r}")
        if not isinstance(self.risk, RiskPreset):
            raise ValueError(f"ShadowSpec.risk must be a RiskPreset, got {self.risk!r}")
        _ = self.barrier_spec  # BarrierSpec checks the barrier fields

    @property
    def barrier_spec(self) -> BarrierSpec:
        """The triple-barrier parameters of the exits (high/low touches)."""
        return BarrierSpec(
            pt_mult=self.pt_mult,
            sl_mult=self.sl_mult,
            max_holding_bars=self.max_holding_bars,
            vol_window=self.vol_window,
            min_vol=self.min_vol,
        )


@dataclass(frozen=True)
class ShadowResult:
    """Trades (``TRADE_SCHEMA``), per-bar equity of the window (``EQUITY_SCHEMA``), skip counts by guardrail
    (every name of ``SKIP_REASONS``) and summary stats (module docstring)."""

    trades: pl.DataFrame
    equity: pl.DataFrame
    skipped: dict[str, int]
    stats: dict[str, float]


# ----------------------------------------------------------------------------------------------- kernels


@njit(cache=True, nogil=True)
def _vol_bounds(close, lo, hi, window, min_returns, min_vol):  # pragma: no cover - compiled
    """``(rets, vol_lo, vol_hi)``: log returns, and bounds on the entry volatility of every row in ``[lo, hi)``.

    The exact volatility (``triple_barrier._trailing_vol``, two passes over the window) is what barriers and
    decisions use, but most rows only need to know whether it clears the net-edge floor. So ``_edge_flags``
    gets cheap bounds ``vol_lo <= vol <= vol_hi`` from rolling sums (``S1 = sum r``, ``S2 = sum r^2`` over the
    window, recomputed from scratch every ``_ANCHOR`` rows) and computes the exact value (``_exact_vol``) only
    where they straddle the floor; the bar loop computes it at entries. The bound on ``|var_rolling -
    var_exact|`` is the textbook one for recursive summation, ``u * (additions) * (sum of |terms|)``, over every
    term added or removed since the last recomputation (``T1 = sum |r|``, ``T2 = sum r^2`` of those), plus the
    exact two-pass algorithm's own rounding, with a 4x margin:
    ``16 u (window + 2 _ANCHOR + 2) (T2 + T1^2 / window) / (window - 1)``. Rows with a partial window (the data's
    first ``window`` rows) get the exact value from ``_trailing_vol`` (``vol_lo == vol_hi``), and so do rows
    whose upper bound is floored to ``min_vol`` (the exact value is then ``min_vol`` too). NaN both: no
    volatility (too few returns).
    """
    n = max(hi - lo, 0)
    vlo = np.full(n, np.nan)
    vhi = np.full(n, np.nan)
    rets = np.zeros(max(hi, 1))
    for k in range(max(1, lo - window + 1), hi):
        rets[k] = math.log(close[k] / close[k - 1])
    split = min(max(lo, window), hi)
    if split > lo:
        vlo[: split - lo] = _trailing_vol(close, np.arange(lo, split), window, min_returns, min_vol)
        vhi[: split - lo] = vlo[: split - lo]
    s1 = s2 = t1 = t2 = 0.0
    inv_w, inv_w1 = 1.0 / window, 1.0 / (window - 1)  # (reciprocals: rounding within the margin)
    scale = 16.0 * _U * (window + 2 * _ANCHOR + 2) * inv_w1
    for i in range(split, hi):  # the rolling sums: variance into vlo, its error bound into vhi
        if (i - split) % _ANCHOR == 0:  # recompute the window's sums: the rounding errors start afresh
            s1 = s2 = t1 = 0.0
            for k in range(i - window + 1, i + 1):
                s1 += rets[k]
                s2 += rets[k] * rets[k]
                t1 += abs(rets[k])
            t2 = s2
        else:
            r_in, r_out = rets[i], rets[i - window]
            s1 = s1 + r_in - r_out
            s2 = s2 + r_in * r_in - r_out * r_out
            t1 += abs(r_in)
            t2 += r_in * r_in
        vlo[i - lo] = (s2 - s1 * s1 * inv_w) * inv_w1
        vhi[i - lo] = scale * (t2 + t1 * t1 * inv_w)
    for j in range(split - lo, n):  # the bounds (a separate loop: it vectorizes)
        var, err = vlo[j], vhi[j]
        std_lo = math.sqrt(max(var - err, 0.0)) * (1.0 - 4.0 * _U)
        std_hi = math.sqrt(max(var + err, 0.0)) * (1.0 + 4.0 * _U)
        vlo[j] = max(std_lo, min_vol)  # the floor is monotone: it keeps the order
        vhi[j] = max(std_hi, min_vol)
    return rets, vlo, vhi


@njit(cache=True, nogil=True)
def _exact_vol(rets, i, window, min_vol):  # pragma: no cover - compiled
    """The volatility of row ``i >= window`` exactly as ``triple_barrier._trailing_vol`` computes it (a full
    window: the mean of the ``window`` returns in index order, then their squared deviations, then the floor)."""
    s = 0.0
    for k in range(i - window + 1, i + 1):
        s += rets[k]
    mean = s / window
    ss = 0.0
    for k in range(i - window + 1, i + 1):
        d = rets[k] - mean
        ss += d * d
    return _floored_std(ss, window, min_vol)


@njit(cache=True, nogil=True)
def _input_error(ts, open_, high, low, close, p, meta, hi):  # pragma: no cover - compiled
    """0 if the inputs are valid, else an index of ``_INPUT_ERRORS`` (branch-free passes that vectorize)."""
    bad = False
    for t in range(1, ts.size):
        bad |= ts[t] <= ts[t - 1]
    if bad:
        return 1
    for t in range(hi):
        lowest = min(min(open_[t], high[t]), min(low[t], close[t]))  # NaN-safe below: any NaN fails
        highest = max(max(open_[t], high[t]), max(low[t], close[t]))
        bad |= not ((lowest > 0.0) & (highest < np.inf) & (open_[t] == open_[t]) & (high[t] == high[t]))
        bad |= not ((low[t] == low[t]) & (close[t] == close[t]))
    if bad:
        return 2
    for t in range(p.size):
        bad |= (p[t] < 0.0) | (p[t] > 1.0)
    if bad:
        return 3
    for t in range(meta.size):
        m = meta[t]
        bad |= (m == m) & (m != -1.0) & (m != 0.0) & (m != 1.0)
    return 4 if bad else 0


@njit(cache=True, nogil=True, inline="always")
def _signal_side(p, threshold):  # pragma: no cover - compiled
    if p >= 0.5 + threshold:
        return 1
    if p <= 0.5 - threshold:
        return -1
    return 0  # inside the band, or NaN


@njit(cache=True, nogil=True, inline="always")
def _net_return(side, entry, price, cost_bps):  # pragma: no cover - compiled
    """Net return (fraction) of closing at ``price``: ``side * (price / entry - 1) - cost_bps / 1e4``."""
    return side * (price / entry - 1.0) - cost_bps / 1e4


@njit(cache=True, nogil=True, inline="always")
def _exit_fill(o, h, lo, c, ts_t, side, pt, sl, vertical_ts):  # pragma: no cover - compiled
    """``(code, price)`` of an open position at one bar; code ``NO_TOUCH``: still open."""
    if side > 0:
        code, px = _bar_touch(o, h, lo, c, pt, sl, PT, SL, True)
    else:
        code, px = _bar_touch(o, h, lo, c, sl, pt, SL, PT, True)
    if code == NO_TOUCH and ts_t >= vertical_ts:
        return VERTICAL, c
    return code, px


@njit(cache=True, nogil=True, inline="always")
def _edge_clears(q, cost, vol, pt_mult, floor_bps):  # pragma: no cover - compiled
    """The net-edge test; non-decreasing in ``vol`` (``q >= 0``), also in floating point. NaN: False."""
    return q * pt_mult * vol * 1e4 - cost >= floor_bps


@njit(cache=True, nogil=True)
def _edge_flags(
    p, fee, spread, slip, rets, vlo, vhi, lo, hi, threshold, pt_mult, floor_bps, window, min_vol
):  # pragma: no cover - compiled
    """Per row of ``[lo, hi)``: 1 if the bar has a signal whose net edge reaches the floor, else 0.

    Decided on the volatility bounds of ``_vol_bounds`` where they agree (nearly always), else on the exact
    volatility (``_exact_vol``). A branch-free pass of its own, out of the bar loop. ``q = |2p - 1|`` is both
    sides' ``2p - 1`` / ``1 - 2p`` exactly (round to nearest is symmetric).
    """
    n = max(hi - lo, 0)
    out = np.zeros(n, np.int8)
    unsure = False
    for j in range(n):
        t = lo + j
        q = abs(2.0 * p[t] - 1.0)
        has = (p[t] >= 0.5 + threshold) | (p[t] <= 0.5 - threshold)
        cost = fee[t] + spread[t] + slip[t]
        clears_lo = _edge_clears(q, cost, vlo[j], pt_mult, floor_bps)
        out[j] = has & clears_lo
        unsure |= has & (not clears_lo) & _edge_clears(q, cost, vhi[j], pt_mult, floor_bps)
    if unsure:  # rare: bounds straddling the floor (never where vlo == vhi)
        for j in range(n):
            t = lo + j
            q = abs(2.0 * p[t] - 1.0)
            has = (p[t] >= 0.5 + threshold) | (p[t] <= 0.5 - threshold)
            cost = fee[t] + spread[t] + slip[t]
            if has and not out[j] and _edge_clears(q, cost, vhi[j], pt_mult, floor_bps):
                out[j] = _edge_clears(q, cost, _exact_vol(rets, t, window, min_vol), pt_mult, floor_bps)
    return out


@njit(cache=True, nogil=True, inline="always")
def _skip_reason(
    side, spread, edge_ok, meta, since_exit, since_same, day_trades, day_equity, equity, prm, respect_meta
):  # pragma: no cover - compiled
    """0 if the signal passes every guardrail, else the 1-based index of the first failing one in SKIP_REASONS.

    ``edge_ok``: ``_edge_flags``; ``prm``: max_spread, cooldown, dedup, max_trades, loss_limit (float64).
    """
    if side == 0:
        return 1
    if not spread <= prm[0]:
        return 2
    if not edge_ok:
        return 3
    if respect_meta and meta == -side:
        return 4
    if since_exit <= prm[1]:
        return 5
    if since_same <= prm[2]:
        return 6
    if day_trades >= prm[3]:
        return 7
    if day_equity - equity > prm[4] * day_equity:
        return 8
    return 0


@njit(cache=True, nogil=True, inline="always")
def _book(rec, k, i0, j, side, entry, price, size, cost_bps, code, equity, fraction):  # pragma: no cover
    """Write trade ``k`` into ``rec``; returns the equity after it."""
    net = _net_return(side, entry, price, cost_bps)
    rec[0, k] = i0
    rec[1, k] = j
    rec[2, k] = side
    rec[3, k] = entry
    rec[4, k] = price
    rec[5, k] = size
    rec[6, k] = side * (price / entry - 1.0) * 1e4
    rec[7, k] = cost_bps
    rec[8, k] = net * 1e4
    rec[9, k] = code
    return equity * (1.0 + fraction * net)


@njit(cache=True, nogil=True)
def _shadow_kernel(
    ts, open_, high, low, close, p, meta, fee, spread, slip, edge_ok, rets, vlo, vhi, lo, hi, prm, respect_meta,
    threshold, pt_mult, sl_mult, horizon_ms, fraction, equity0, window, min_vol,
):  # fmt: skip  # pragma: no cover - compiled
    """The bar loop over rows ``[lo, hi)``: ``(trade records (10, k), per-bar equity, skip counts, max drawdown)``.

    ``edge_ok`` comes from ``_edge_flags``, ``rets``, ``vlo``, ``vhi`` from ``_vol_bounds``; ``prm`` as in
    ``_skip_reason``.
    """
    n = hi - lo
    rec = np.empty((_REC_COLUMNS, n))  # one row per field: contiguous columns for the frame
    curve = np.empty(n)
    skipped = np.zeros(_N_SKIP + 1, np.int64)
    equity = equity0
    side = 0
    i0 = 0
    v_ts = 0
    entry = pt = sl = cost = 0.0
    last_exit = last_long = last_short = _NEVER
    next_day = ts[lo] if n > 0 else 0  # ts of the next UTC day's start: the first bar rolls the day
    day_equity = equity0
    day_trades = 0
    k = 0
    peak = trough = equity0  # running peak of the curve, and its lowest value since that peak
    max_dd = 0.0
    for t in range(lo, hi):
        if ts[t] >= next_day:
            next_day = (ts[t] // DAY_MS + 1) * DAY_MS
            day_equity, day_trades = equity, 0
        if side != 0:
            code, px = _exit_fill(open_[t], high[t], low[t], close[t], ts[t], side, pt, sl, v_ts)
            if code != NO_TOUCH:
                equity = _book(rec, k, i0, t, side, entry, px, fraction * equity, cost, code, equity, fraction)
                k += 1
                side = 0
                last_exit = t
        s = _signal_side(p[t], threshold)
        since_same = t - (last_long if s > 0 else last_short)
        reason = _skip_reason(
            s, spread[t], edge_ok[t - lo], meta[t], t - last_exit, since_same, day_trades, day_equity, equity, prm,
            respect_meta,
        )  # fmt: skip
        skipped[reason] += 1
        if reason == 0 and side == 0:
            side, i0, entry, v_ts = s, t, close[t], ts[t] + horizon_ms
            vol = vlo[t - lo] if vlo[t - lo] == vhi[t - lo] else _exact_vol(rets, t, window, min_vol)
            pt, sl = _barrier_pair(entry, vol, pt_mult, sl_mult, s)
            c_side = fee[t] * 0.5 + spread[t] * 0.5 + slip[t] * 0.5
            cost = c_side + c_side
            day_trades += 1
            last_long, last_short = (t, last_short) if s > 0 else (last_long, t)
        e = equity if side == 0 else equity * (1.0 + fraction * _net_return(side, entry, close[t], cost))
        curve[t - lo] = e
        if e > peak:
            peak = trough = e
        elif e < trough:  # the drawdown from this peak deepens (1 - e / peak is monotone in e)
            trough = e
            max_dd = max(max_dd, 1.0 - e / peak)
    if side != 0:  # still open at the end of the window: marked to the last close
        equity = _book(rec, k, i0, hi - 1, side, entry, close[hi - 1], fraction * equity, cost, MARK, equity, fraction)
        k += 1
        curve[n - 1] = equity  # the same value as the marked one (the same arithmetic)
    return rec[:, :k], curve, skipped[1:], max_dd


# ------------------------------------------------------------------------------------------------ public


def simulate(
    ts: Any,
    open_: Any,
    high: Any,
    low: Any,
    close: Any,
    p: Any,
    meta_direction: Any,
    fee_bps: Any,
    spread_bps: Any,
    slippage_bps: Any,
    start_ms: int,
    end_ms: int,
    spec: ShadowSpec,
    bar_ms: int,
) -> ShadowResult:
    """Paper-trade the signals of the bars in ``[start_ms, end_ms)`` (see the module docstring).

    Every input but the window, ``spec`` and ``bar_ms`` holds one value per bar (numpy arrays, polars Series or
    sequences), sorted by a unique integer ``ts``, the warm-up bars (``vol_window``) first. ``fee_bps``,
    ``spread_bps``, ``slippage_bps`` are round-trip amounts per bar, the columns of
    :meth:`CostModel.round_trip_bps`. ``meta_direction`` may be ``None`` (no meta opinion).
    """
    a = _prepare(ts, open_, high, low, close, p, meta_direction, fee_bps, spread_bps, slippage_bps, start_ms,
                 end_ms, spec, bar_ms)  # fmt: skip
    lo, hi = a["lo"], a["hi"]
    rets, vlo, vhi = _vol_bounds(
        a["close"], lo, hi, spec.vol_window, spec.barrier_spec.min_vol_returns, float(spec.min_vol)
    )
    risk = spec.risk
    edge_ok = _edge_flags(
        a["p"], a["fee"], a["spread"], a["slip"], rets, vlo, vhi, lo, hi, float(spec.threshold), float(spec.pt_mult),
        float(spec.net_edge_floor_bps), spec.vol_window, float(spec.min_vol),
    )  # fmt: skip
    prm = np.array(
        [spec.max_spread_bps, spec.cooldown_bars, spec.dedup_bars, risk.max_trades_per_day, risk.daily_loss_limit],
        dtype=np.float64,
    )
    rec, curve, skipped, max_dd = _shadow_kernel(
        a["ts"], a["open"], a["high"], a["low"], a["close"], a["p"], a["meta"], a["fee"], a["spread"], a["slip"],
        edge_ok, rets, vlo, vhi, lo, hi, prm, spec.respect_meta, float(spec.threshold), float(spec.pt_mult),
        float(spec.sl_mult), spec.max_holding_bars * int(bar_ms), float(risk.position_fraction),
        float(spec.initial_equity), spec.vol_window, float(spec.min_vol),
    )  # fmt: skip
    ts_arr = a["ts"]
    trades = pl.DataFrame(
        {
            "entry_ts": ts_arr[rec[0].astype(np.int64)],
            "exit_ts": ts_arr[rec[1].astype(np.int64)],
            "side": rec[2].astype(np.int8),
            **{name: rec[c] for c, name in enumerate(list(TRADE_SCHEMA)[3:9], 3)},
            "exit_reason": _EXIT_OBJECTS[rec[9].astype(np.int64) - SL].tolist(),
        },
        schema=TRADE_SCHEMA,
    )
    skips = dict(zip(SKIP_REASONS, skipped.tolist(), strict=True))
    return _result(trades, ts_arr[lo:hi], curve, skips, max_dd, spec, bar_ms)


def reference_simulate(
    ts: Any,
    open_: Any,
    high: Any,
    low: Any,
    close: Any,
    p: Any,
    meta_direction: Any,
    fee_bps: Any,
    spread_bps: Any,
    slippage_bps: Any,
    start_ms: int,
    end_ms: int,
    spec: ShadowSpec,
    bar_ms: int,
) -> ShadowResult:
    """The same paper trading as :func:`simulate`, by a plain-Python loop over lists: the oracle (no numba)."""
    a = _prepare(ts, open_, high, low, close, p, meta_direction, fee_bps, spread_bps, slippage_bps, start_ms,
                 end_ms, spec, bar_ms)  # fmt: skip
    trader = _ReferenceTrader({k: v.tolist() for k, v in a.items() if isinstance(v, np.ndarray)}, spec, bar_ms)
    for t in range(a["lo"], a["hi"]):
        trader.bar(t)
    trader.finish(a["hi"] - 1)
    trades = pl.DataFrame(trader.trades, schema=TRADE_SCHEMA, orient="row")
    curve = np.array(trader.curve, dtype=np.float64)
    return _result(trades, a["ts"][a["lo"] : a["hi"]], curve, trader.skipped, trader.max_dd, spec, bar_ms)


# ---------------------------------------------------------------------------------------------- helpers


def _daily_sharpe(ts: np.ndarray, equity: np.ndarray, initial: float) -> float:
    if not equity.size:
        return math.nan
    first_day, last_day = int(ts[0]) // DAY_MS, int(ts[-1]) // DAY_MS
    ends = np.searchsorted(ts, np.arange(first_day + 1, last_day + 2, dtype=np.int64) * DAY_MS) - 1
    last = np.unique(ends)  # each day's last bar (a day without bars repeats the previous day's)
    closes = equity[last]
    rets = closes / np.concatenate([[initial], closes[:-1]]) - 1.0
    if rets.size < 2:
        return math.nan
    sd = float(rets.std(ddof=1))
    return float(rets.mean()) / sd * math.sqrt(365.0) if sd > 0 else math.nan


def _result(
    trades: pl.DataFrame,
    ts: np.ndarray,
    curve: np.ndarray,
    skipped: dict[str, int],
    max_drawdown: float,
    spec: ShadowSpec,
    bar_ms: int,
) -> ShadowResult:
    """The result frames and the summary stats (module docstring); ``max_drawdown`` comes from the bar loop."""
    initial = float(spec.initial_equity)
    n = trades.height
    net = trades["net_bps"].to_numpy()
    days = curve.size * bar_ms / DAY_MS
    stats = {
        "n_trades": n,
        "net_bps_per_trade": float(net.mean()) if n else math.nan,
        "total_return": (float(curve[-1]) if curve.size else initial) / initial - 1.0,
        "hit_rate": float((net > 0).mean()) if n else math.nan,
        "max_drawdown": float(max_drawdown),
        "sharpe": _daily_sharpe(ts, curve, initial),
        "turnover_per_day": 2.0 * float(trades["size"].sum()) / float(curve.mean()) / days if curve.size else 0.0,
    }
    equity = pl.DataFrame({"ts": ts, "equity": curve}, schema=EQUITY_SCHEMA)
    return ShadowResult(trades=trades, equity=equity, skipped=skipped, stats=stats)


def _float_array(name: str, values: Any, n: int) -> np.ndarray:
    if isinstance(values, pl.Series):
        values = values.cast(pl.Float64).to_numpy()
    out = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    if out.shape != (n,):
        raise ValueError(f"{name} must be 1-D with one value per bar ({n}), got shape {out.shape}")
    return out


def _prepare(
    ts, open_, high, low, close, p, meta_direction, fee_bps, spread_bps, slippage_bps, start_ms, end_ms, spec, bar_ms
) -> dict[str, Any]:
    """Checked float64 / int64 arrays and the window rows ``[lo, hi)``; ``ValueError`` on bad input."""
    if not isinstance(spec, ShadowSpec):
        raise TypeError(f"spec must be a ShadowSpec, got {type(spec).__name__}")
    spec.barrier_spec.horizon_ms(bar_ms)  # checks bar_ms
    if not (_is_int(start_ms) and _is_int(end_ms)) or start_ms > end_ms:
        raise ValueError(f"bad window [{start_ms!r}, {end_ms!r})")
    ts_arr = np.asarray(ts.to_numpy() if isinstance(ts, pl.Series) else ts)
    if ts_arr.ndim != 1 or not np.issubdtype(ts_arr.dtype, np.integer):
        raise ValueError(f"ts must be a 1-D array of integer epoch ms, got {ts_arr.dtype} {ts_arr.shape}")
    ts_arr = np.ascontiguousarray(ts_arr, dtype=np.int64)
    n = ts_arr.size
    lo, hi = (int(i) for i in np.searchsorted(ts_arr, [start_ms, end_ms], side="left"))
    out: dict[str, Any] = {"ts": ts_arr, "lo": lo, "hi": hi}
    named = (("open", "open", open_), ("high", "high", high), ("low", "low", low), ("close", "close", close),
             ("p", "p", p), ("fee", "fee_bps", fee_bps), ("spread", "spread_bps", spread_bps),
             ("slip", "slippage_bps", slippage_bps))  # fmt: skip
    for key, name, values in named:
        out[key] = _float_array(name, values, n)
    out["meta"] = np.full(n, np.nan) if meta_direction is None else _float_array("meta_direction", meta_direction, n)
    error = _input_error(ts_arr, out["open"], out["high"], out["low"], out["close"], out["p"], out["meta"], hi)
    if error:
        raise ValueError(_INPUT_ERRORS[error])
    return out


class _ReferenceTrader:
    """The plain-Python state machine of ``reference_simulate``: one call of ``bar`` per window bar."""

    def __init__(self, a: dict[str, list], spec: ShadowSpec, bar_ms: int) -> None:
        self.a, self.spec, self.bar_ms = a, spec, bar_ms
        self.barriers = spec.barrier_spec
        self.fraction = spec.risk.position_fraction
        self.equity = float(spec.initial_equity)
        self.position: dict[str, Any] | None = None
        self.last_exit: int | None = None
        self.last_entry: dict[int, int] = {}
        self.day: int | None = None
        self.day_equity = self.equity
        self.day_trades = 0
        self.trades: list[tuple] = []
        self.curve: list[float] = []
        self.peak = self.equity
        self.max_dd = 0.0
        self.skipped = dict.fromkeys(SKIP_REASONS, 0)

    def bar(self, t: int) -> None:
        a = self.a
        if a["ts"][t] // DAY_MS != self.day:
            self.day, self.day_equity, self.day_trades = a["ts"][t] // DAY_MS, self.equity, 0
        if self.position is not None:
            hit = self._exit(t)
            if hit is not None:
                self._close(t, *hit)
                self.last_exit = t
        side = self._side(a["p"][t])
        reason = self._skip_reason(t, side)
        if reason is not None:
            self.skipped[reason] += 1
        elif self.position is None:
            self._enter(t, side)
        pos = self.position
        if pos is None:
            value = self.equity
        else:
            net = pos["side"] * (a["close"][t] / pos["entry"] - 1.0) - pos["cost"] / 1e4
            value = self.equity * (1.0 + self.fraction * net)
        self.curve.append(value)
        self.peak = max(self.peak, value)
        self.max_dd = max(self.max_dd, 1.0 - value / self.peak)

    def finish(self, last: int) -> None:
        if self.position is not None:
            self._close(last, "mark", self.a["close"][last])
            self.curve[-1] = self.equity

    def _side(self, p: float) -> int:
        if p >= 0.5 + self.spec.threshold:
            return 1
        if p <= 0.5 - self.spec.threshold:
            return -1
        return 0

    def _net_edge_ok(self, t: int, side: int) -> bool:
        a, spec = self.a, self.spec
        vol = _reference_vol(t, a["close"], self.barriers)
        if vol is None:
            return False
        q = 2.0 * a["p"][t] - 1.0 if side > 0 else 1.0 - 2.0 * a["p"][t]
        return q * spec.pt_mult * vol * 1e4 - (a["fee"][t] + a["spread"][t] + a["slip"][t]) >= spec.net_edge_floor_bps

    def _skip_reason(self, t: int, side: int) -> str | None:
        a, spec, risk = self.a, self.spec, self.spec.risk
        checks = (
            ("no_signal", lambda: side == 0),
            ("spread", lambda: not a["spread"][t] <= spec.max_spread_bps),
            ("net_edge", lambda: not self._net_edge_ok(t, side)),
            ("meta", lambda: spec.respect_meta and a["meta"][t] == -side),
            ("cooldown", lambda: self.last_exit is not None and t - self.last_exit <= spec.cooldown_bars),
            ("dedup", lambda: side in self.last_entry and t - self.last_entry[side] <= spec.dedup_bars),
            ("max_trades_per_day", lambda: self.day_trades >= risk.max_trades_per_day),
            ("daily_loss_limit", lambda: self.day_equity - self.equity > risk.daily_loss_limit * self.day_equity),
        )
        return next((name for name, fails in checks if fails()), None)

    def _enter(self, t: int, side: int) -> None:
        a, spec = self.a, self.spec
        entry = a["close"][t]
        vol = _reference_vol(t, a["close"], self.barriers)
        if side > 0:
            pt, sl = entry * math.exp(spec.pt_mult * vol), entry * math.exp(-(spec.sl_mult * vol))
        else:
            pt, sl = entry * math.exp(-(spec.pt_mult * vol)), entry * math.exp(spec.sl_mult * vol)
        per_side = a["fee"][t] * 0.5 + a["spread"][t] * 0.5 + a["slip"][t] * 0.5
        self.position = {
            "t": t, "side": side, "entry": entry, "pt": pt, "sl": sl, "cost": per_side + per_side,
            "vertical_ts": a["ts"][t] + spec.max_holding_bars * self.bar_ms, "size": self.fraction * self.equity,
        }  # fmt: skip
        self.day_trades += 1
        self.last_entry[side] = t

    def _exit(self, t: int) -> tuple[str, float] | None:
        a, pos = self.a, self.position
        hit = _reference_touch(
            t, pos["pt"], pos["sl"], pos["side"] > 0, a["open"], a["high"], a["low"], a["close"], self.barriers
        )
        if hit is None and a["ts"][t] >= pos["vertical_ts"]:
            return "vertical", a["close"][t]
        return hit

    def _close(self, t: int, reason: str, price: float) -> None:
        a, pos = self.a, self.position
        gross = pos["side"] * (price / pos["entry"] - 1.0)
        net = gross - pos["cost"] / 1e4
        self.trades.append(
            (a["ts"][pos["t"]], a["ts"][t], pos["side"], pos["entry"], price, pos["size"], gross * 1e4, pos["cost"],
             net * 1e4, reason)
        )  # fmt: skip
        self.equity = self.equity * (1.0 + self.fraction * net)
        self.position = None
