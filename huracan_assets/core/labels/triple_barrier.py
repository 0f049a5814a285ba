"""Triple-barrier labels (López de Prado, AFML ch. 3), with a numba first-touch kernel.

Pure numpy / numba / polars; no I/O. ``triple_barrier`` is the fast path; ``triple_barrier_reference`` is a
plain-Python implementation of the same rules (the baseline of the tests and of the benchmark), and the two
agree exactly, column for column.

Semantics (bars are candles: ``ts`` is the bar's open time, in epoch ms):

* **Events** are the bars whose ``ts`` is in ``[event_start_ms, event_end_ms)``: the bar whose close makes the
  signal known. **Entry, with a latency** of ``entry_lag_bars`` (L): with L = 0 the position is entered at the
  event bar's **close** (``entry``, at ``ts + bar_ms``; ``entry_ts`` is then the event's ``ts``); with L >= 1 at
  the **open of the fill bar**, the first bar with ``ts >= event ts + L * bar_ms`` (on gap-free bars bar t + L;
  after a hole in the data, the first bar that exists: there is no market to fill in before it). ``entry_ts`` is
  the fill bar's ``ts`` and ``entry`` its open. A fill bar later than the vertical barrier (a hole covering the
  rest of the horizon), or none in the data: no fill, ``entry`` / ``entry_ts`` / barriers null and the event
  ``"unresolved"``. The volatility (so the barrier *multiples*) and the vertical barrier are decided at the event
  bar, where the signal is; the barrier *prices* are those multiples applied to the fill price. So with L >= 1 the
  entry fields are known at the fill bar's open (``entry_ts``, L - 1 bars after the event's close on gap-free
  bars), not at the event's close; the volatility is known at the event's close.
* **Volatility** at an event is the sample standard deviation (ddof 1, two-pass: mean first, then squared
  deviations) of the log close-to-close returns ``log(close[k] / close[k-1])`` of the ``vol_window`` bars
  ending at the event bar, inclusive: causal, it uses the event bar's close and earlier only. It is floored
  at ``min_vol``. With fewer than ``max(2, ceil(vol_window / 2))`` returns of history the event has no
  volatility: ``barrier == "no_vol"``, every barrier column null, never a label. Returns are taken between
  consecutive rows, so a return across a hole in the data spans the hole.
* **Horizontal barriers**: the side's profit-take and stop-loss, ``pt_price`` and ``sl_price``. Long or no side
  (``side`` 0 / +1): ``pt = entry * exp(+pt_mult * vol)`` above and ``sl = entry * exp(-sl_mult * vol)`` below.
  Short (``side`` −1): mirrored, ``pt = entry * exp(-pt_mult * vol)`` below and
  ``sl = entry * exp(+sl_mult * vol)`` above.
* **Vertical barrier, time-based**: the path is the bars after the fill with
  ``ts <= event ts + max_holding_bars * bar_ms``: from the bar after the event bar (L = 0), or from the fill bar
  itself (L >= 1: its high and low happen after its open); the last of them is the vertical bar. On gap-free bars
  the path ends exactly ``max_holding_bars`` bars after the event bar whatever L (with L = 1 the trade is held
  from the open of t+1 to the close of t+H: as long as a fill at t's close); a hole in the data just means fewer
  bars in the path, never a longer holding time. An event is resolved only when the data reach its vertical
  barrier: the frame must hold a bar with ``ts >= event ts + max_holding_bars * bar_ms``. Otherwise it is
  ``"unresolved"`` (label null), **even when a horizontal barrier was already touched** in the bars that exist:
  labelling the early touches of a truncated horizon but not the others would bias the label mix near the end of
  the data, and "resolved or not" must depend on the event time alone. An event whose whole horizon falls in a hole
  (no bar in the path, later bars present) is unresolved too: it has no exit price. Callers pass cleaned
  bars; the holes are handled, not filled.
* **Touches**. ``touch="close"``: a bar touches a barrier when its close is at or beyond it; the exit is that
  close. ``touch="high_low"`` (default): a bar touches the upper barrier when ``high >= upper`` and the
  lower one when ``low <= lower``; the exit is at the barrier price. Within one bar the order of high and low
  is unknown, so **a bar that touches both barriers counts as the stop-loss** (conservative), exit at the stop
  price. One exception, where the order is known: a bar that *opens* at or beyond a barrier (a jump, e.g.
  after a hole in the data) touched that barrier first, at its open; the exit is the open price. (The fill bar
  opens at the entry, strictly between the barriers.) The labels' exit price of a stop is the stop (or the
  gap's open): the stop-slippage cost of the trade is the scorer's (``core/execution.py``), from the exit bar's
  spread, which candles do not carry.
* ``touch_ts`` is the ``ts`` of the bar in which the exit happened (its close is the latest moment the label
  is known: ``touch_ts + bar_ms``); ``holding_bars = (touch_ts - ts) // bar_ms``, counted from the event bar.
* ``ret`` is the gross log return entry (the fill) → exit, times the side for ``side`` ±1 (a short earns the
  fall); ``net_ret = ret - cost_bps / 1e4`` (the round-trip cost as a log return). For ``side`` 0 both are the long's.
* **Both sides' outcomes.** Every row also carries the outcome of the **short** trade of the same event, with
  its own (mirrored) barriers, as if labelled with ``side`` −1: ``touch_ts_short``, ``barrier_short``,
  ``ret_short`` (``-log(exit / entry)``), ``net_ret_short`` and ``holding_bars_short``. A bar that touches both
  barriers is the stop for either side, so there it is a loss for the long *and* for the short: the short's
  outcome is not ``-ret``. With ``pt_mult == sl_mult`` the two sides differ only on such bars; otherwise their
  barriers are not mirror images and their exits may differ anywhere. Resolution (``no_vol`` / ``unresolved``)
  depends on the event alone, so it is the same for both sides. For ``side`` −1 the short columns repeat the
  main ones. Consumers that score a trade use the side's own columns: the long's ``ret`` for a buy, the
  short's ``ret_short`` for a sell, never ``-ret`` (:func:`long_return_bps`, :func:`short_return_bps`).
* **Labels** (``Int8``, null unless resolved), "profitable after costs" throughout:
  - ``side`` 0: +1 when the long's trade nets a profit (``ret - cost > 0``), −1 when the short's *own* trade
    does (``ret_short - cost > 0``), else 0. Without costs that is +1 at the long's profit-take, −1 at the
    short's, the sign of the return at the vertical barrier, and 0 for a bar that touched both barriers (both
    stopped out); with costs a barrier touch too small to pay them is 0. Only with ``pt_mult != sl_mult`` can
    both sides net a profit (one exits before the other reaches its barrier): the side that exited first wins,
    and 0 when both exited in the same bar (the order is unknown).
  - ``side`` ±1 (meta-labels): 1 when the side's trade nets a positive return (``net_ret > 0``), else 0.
  - At the vertical barrier only, a net return below ``vertical_dead_zone_bps`` also gives 0 (``|net| <
    dead zone``); for ``side`` 0 each side's own exit decides whether its dead zone applies.

Kernel barrier codes: 1 ``pt``, −1 ``sl``, 0 ``vertical``, −2 ``unresolved``, −3 ``no_vol``.

Threads: the kernels are serial ``@njit(cache=True, nogil=True)``; a caller may spread coins over threads,
within the machine's thread budget (no numba ``parallel`` here). The short's outcome costs one more first-touch
pass (none for ``side`` −1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from numba import njit

PT, SL, VERTICAL, UNRESOLVED, NO_VOL = 1, -1, 0, -2, -3
BARRIER_NAMES: dict[int, str] = {PT: "pt", SL: "sl", VERTICAL: "vertical", UNRESOLVED: "unresolved", NO_VOL: "no_vol"}
LABEL_SCHEMA: dict[str, pl.DataType] = {
    "ts": pl.Int64,
    "entry_ts": pl.Int64,
    "entry": pl.Float64,
    "vol": pl.Float64,
    "pt_price": pl.Float64,
    "sl_price": pl.Float64,
    "touch_ts": pl.Int64,
    "barrier": pl.String,
    "ret": pl.Float64,
    "net_ret": pl.Float64,
    "label": pl.Int8,
    "holding_bars": pl.Int32,
    "touch_ts_short": pl.Int64,
    "barrier_short": pl.String,
    "ret_short": pl.Float64,
    "net_ret_short": pl.Float64,
    "holding_bars_short": pl.Int32,
}
_BARRIER_STRINGS = pl.Series([BARRIER_NAMES[code] for code in range(NO_VOL, PT + 1)], dtype=pl.String)
_INPUT_COLUMNS = ("ts", "open", "high", "low", "close")
_TOUCH_MODES = ("close", "high_low")


@dataclass(frozen=True)
class BarrierSpec:
    """Barrier parameters; see the module docstring for the exact semantics."""

    pt_mult: float = 2.0  # profit-take at entry x exp(+pt_mult x vol) (mirrored for a short side)
    sl_mult: float = 2.0  # stop-loss at entry x exp(-sl_mult x vol) (mirrored for a short side)
    max_holding_bars: int = 24  # vertical barrier, in bars of time (time-based: holes do not extend it)
    vol_window: int = 48  # trailing std of log close-to-close returns, in bars
    min_vol: float = 1e-4  # floor of the volatility (log-return units)
    side: int = 0  # 0: direction labels -1/0/1; +1 long / -1 short: meta-labels 0/1
    cost_bps: float = 0.0  # round-trip cost, subtracted from the realized log return
    vertical_dead_zone_bps: float = 0.0  # at the vertical barrier, |net return| below this is label 0
    touch: Literal["close", "high_low"] = "high_low"  # high_low: a bar touching both barriers is the stop
    entry_lag_bars: int = 0  # 0: filled at the event bar's close; L >= 1: at the open of the first bar >= ts + L bars

    def __post_init__(self) -> None:
        for name in ("pt_mult", "sl_mult", "min_vol"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"BarrierSpec.{name} must be a finite number > 0, got {value!r}")
        for name in ("cost_bps", "vertical_dead_zone_bps"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value) or value < 0:
                raise ValueError(f"BarrierSpec.{name} must be a finite number >= 0, got {value!r}")
        if not _is_int(self.max_holding_bars) or self.max_holding_bars < 1:
            raise ValueError(f"BarrierSpec.max_holding_bars must be an int >= 1, got {self.max_holding_bars!r}")
        if not _is_int(self.vol_window) or self.vol_window < 2:
            raise ValueError(f"BarrierSpec.vol_window must be an int >= 2, got {self.vol_window!r}")
        if not _is_int(self.side) or self.side not in (-1, 0, 1):
            raise ValueError(f"BarrierSpec.side must be -1, 0 or 1, got {self.side!r}")
        if self.touch not in _TOUCH_MODES:
            raise ValueError(f"BarrierSpec.touch must be one of {_TOUCH_MODES}, got {self.touch!r}")
        lag = self.entry_lag_bars
        if not _is_int(lag) or not 0 <= lag <= self.max_holding_bars:
            raise ValueError(f"BarrierSpec.entry_lag_bars must be an int in [0, max_holding_bars], got {lag!r}")

    @property
    def min_vol_returns(self) -> int:
        """Fewest returns of history an event needs for a volatility (else ``no_vol``)."""
        return max(2, math.ceil(self.vol_window / 2))

    def horizon_ms(self, bar_ms: int) -> int:
        """Length of the vertical barrier in ms, counted from the event bar's open."""
        if not _is_int(bar_ms) or bar_ms <= 0:
            raise ValueError(f"bar_ms must be an int > 0, got {bar_ms!r}")
        return self.max_holding_bars * int(bar_ms)

    def lag_ms(self, bar_ms: int) -> int:
        """The entry latency in ms: the fill is at the first bar whose ts is at least the event's ts plus this."""
        return self.entry_lag_bars * int(bar_ms)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


# ----------------------------------------------------------------------------------------------- kernels
# All transcendental maths (log, exp) happens here, in numba, which calls the C library like Python's
# ``math`` does: the reference below reproduces every float bit for bit (numpy's SIMD exp/log would not).


@njit(cache=True, nogil=True, inline="always")
def _floored_std(ss, n, min_vol):  # pragma: no cover - compiled
    std = math.sqrt(ss / (n - 1))
    return std if std > min_vol else min_vol


@njit(cache=True, nogil=True)
def _trailing_vol(close, entry_idx, window, min_returns, min_vol):  # pragma: no cover - compiled
    """Std (ddof 1, two-pass) of the ``window`` log returns ending at each entry bar; NaN below ``min_returns``.

    Every event sums its own window in index order (the reference's order, so the result is bit-identical);
    four events are summed side by side only to overlap their independent add chains (~2x faster).
    """
    m = entry_idx.size
    out = np.full(m, np.nan)
    if m == 0:
        return out
    lo = max(1, entry_idx.min() - window + 1)
    hi = entry_idx.max() + 1
    rets = np.empty(max(hi, 1))
    for k in range(lo, hi):
        rets[k] = math.log(close[k] / close[k - 1])
    e = 0
    while e < m:
        f0 = f1 = f2 = f3 = 0  # first returns of four events; all >= 1: four full windows
        if e + 4 <= m:
            f0 = entry_idx[e] - window + 1
            f1 = entry_idx[e + 1] - window + 1
            f2 = entry_idx[e + 2] - window + 1
            f3 = entry_idx[e + 3] - window + 1
        if f0 >= 1 and f1 >= 1 and f2 >= 1 and f3 >= 1:  # (spelt so: LLVM then drops negative-index checks)
            s0 = s1 = s2 = s3 = 0.0
            for k in range(window):
                s0 += rets[f0 + k]
                s1 += rets[f1 + k]
                s2 += rets[f2 + k]
                s3 += rets[f3 + k]
            s0 /= window
            s1 /= window
            s2 /= window
            s3 /= window
            q0 = q1 = q2 = q3 = 0.0
            for k in range(window):
                d0 = rets[f0 + k] - s0
                d1 = rets[f1 + k] - s1
                d2 = rets[f2 + k] - s2
                d3 = rets[f3 + k] - s3
                q0 += d0 * d0
                q1 += d1 * d1
                q2 += d2 * d2
                q3 += d3 * d3
            out[e] = _floored_std(q0, window, min_vol)
            out[e + 1] = _floored_std(q1, window, min_vol)
            out[e + 2] = _floored_std(q2, window, min_vol)
            out[e + 3] = _floored_std(q3, window, min_vol)
            e += 4
            continue
        i = entry_idx[e]
        first = max(1, i - window + 1)
        n = i - first + 1
        if n >= min_returns:
            s = 0.0
            for k in range(first, i + 1):
                s += rets[k]
            mean = s / n
            ss = 0.0
            for k in range(first, i + 1):
                d = rets[k] - mean
                ss += d * d
            out[e] = _floored_std(ss, n, min_vol)
        e += 1
    return out


@njit(cache=True, nogil=True, inline="always")
def _barrier_pair(entry, vol, pt_mult, sl_mult, side):  # pragma: no cover - compiled
    """(profit-take, stop-loss) prices of one event."""
    if side < 0:
        return entry * math.exp(-(pt_mult * vol)), entry * math.exp(sl_mult * vol)
    return entry * math.exp(pt_mult * vol), entry * math.exp(-(sl_mult * vol))


@njit(cache=True, nogil=True)
def _barrier_prices(entry, vol, pt_mult, sl_mult, side):  # pragma: no cover - compiled
    m = entry.size
    pt = np.full(m, np.nan)
    sl = np.full(m, np.nan)
    for e in range(m):
        if vol[e] > 0.0:  # False for NaN (no volatility)
            pt[e], sl[e] = _barrier_pair(entry[e], vol[e], pt_mult, sl_mult, side)
    return pt, sl


@njit(cache=True, nogil=True, inline="always")
def _bar_touch(o, h, lo, c, upper, lower, upper_code, lower_code, touch_hl):  # pragma: no cover - compiled
    """``(code, exit price)`` of one bar against the barriers; code 2: no touch."""
    if not touch_hl:
        if c >= upper:
            return upper_code, c
        if c <= lower:
            return lower_code, c
        return 2, 0.0
    if o >= upper:  # opened beyond a barrier: that one was first, filled at the open
        return upper_code, o
    if o <= lower:
        return lower_code, o
    up = h >= upper
    down = lo <= lower
    if up and down:  # both inside one bar, order unknown: the stop (conservative)
        return SL, (upper if upper_code == SL else lower)
    if up:
        return upper_code, upper
    if down:
        return lower_code, lower
    return 2, 0.0


@njit(cache=True, nogil=True, inline="always")
def _event_touch(ts, open_, high, low, close, first, end_ts, pt, sl, side, touch_hl):  # pragma: no cover - compiled
    """``(code, exit row, exit price)`` of an event whose path starts at row ``first`` and whose horizon ends at
    ``end_ts``."""
    if side < 0:
        upper, lower, upper_code, lower_code = sl, pt, SL, PT
    else:
        upper, lower, upper_code, lower_code = pt, sl, PT, SL
    n = ts.size
    j = first
    while j < n and ts[j] <= end_ts:
        code, px = _bar_touch(open_[j], high[j], low[j], close[j], upper, lower, upper_code, lower_code, touch_hl)
        if code != 2:
            return code, j, px
        j += 1
    if j == first:  # no bar in the path (a hole covers the horizon): no exit price
        return UNRESOLVED, -1, np.nan
    return VERTICAL, j - 1, close[j - 1]  # no touch: exit at the close of the vertical bar, the path's last


@njit(cache=True, nogil=True)
def _fills(ts, open_, close, entry_idx, lag_ms, horizon_ms):  # pragma: no cover - compiled
    """``(fill row, entry price, first path row)`` of each event.

    Lag 0: the event bar itself, filled at its close; the path starts at the next row. Lag > 0: the first row with
    ``ts >= event ts + lag_ms``, filled at its open; the path starts at that row (its high and low come after the
    open). No such row by the vertical barrier (``ts <= event ts + horizon_ms``): no fill, ``-1`` / NaN / ``-1``.
    """
    n = ts.size
    m = entry_idx.size
    fill = np.full(m, -1, np.int64)
    entry = np.full(m, np.nan)
    first = np.full(m, -1, np.int64)
    for e in range(m):
        i = entry_idx[e]
        if lag_ms == 0:
            fill[e], entry[e], first[e] = i, close[i], i + 1
            continue
        due = ts[i] + lag_ms
        j = i + 1
        while j < n and ts[j] < due:
            j += 1
        if j < n and ts[j] <= ts[i] + horizon_ms:
            fill[e], entry[e], first[e] = j, open_[j], j
    return fill, entry, first


@njit(cache=True, nogil=True)
def _first_touch(
    ts, open_, high, low, close, entry_idx, first_idx, entry, vol, pt_mult, sl_mult, horizon_ms, touch_hl, side
):  # pragma: no cover - compiled
    """First barrier touched by each event: ``(touch_idx int64[], barrier int8[], exit_price float64[])``.

    ``entry_idx`` are row indices of the event bars, ``first_idx`` the first row of each path and ``entry`` the
    fill prices (``_fills``; -1 / NaN: no fill); ``vol`` their volatility (NaN: no_vol). The path is the rows from
    ``first_idx`` on with ``ts <= ts[event] + horizon_ms``. Codes: 1 pt, -1 sl, 0 vertical, -2 unresolved (the
    data end before the vertical barrier, no fill, or no bar in the path), -3 no_vol. ``touch_idx`` is -1 and
    ``exit_price`` NaN unless the event is resolved.
    """
    n = ts.size
    m = entry_idx.size
    touch_idx = np.full(m, -1, np.int64)
    barrier = np.full(m, UNRESOLVED, np.int8)
    exit_price = np.full(m, np.nan)
    for e in range(m):
        i = entry_idx[e]
        if i < 0 or i >= n:  # not a row (never from triple_barrier): unresolved
            continue
        if not vol[e] > 0.0:
            barrier[e] = NO_VOL
            continue
        end_ts = ts[i] + horizon_ms
        if ts[n - 1] < end_ts or first_idx[e] < 0:
            continue  # the data end before the vertical barrier, or no fill by then: unresolved
        pt, sl = _barrier_pair(entry[e], vol[e], pt_mult, sl_mult, side)
        code, j, px = _event_touch(ts, open_, high, low, close, first_idx[e], end_ts, pt, sl, side, touch_hl)
        barrier[e] = code
        touch_idx[e] = j
        exit_price[e] = px
    return touch_idx, barrier, exit_price


@njit(cache=True, nogil=True)
def _side_outcome(ts, entry_idx, entry, touch_idx, barrier, exit_price, sign, cost, bar_ms):  # pragma: no cover
    """``(ret, net_ret, holding_bars, touch_ts)`` of one side's trades (``sign`` +1 long, -1 short); NaN / 0 where
    the event is unresolved (masked later)."""
    m = entry_idx.size
    ret = np.full(m, np.nan)
    net = np.full(m, np.nan)
    holding = np.zeros(m, np.int32)
    touch_ts = np.zeros(m, np.int64)
    for e in range(m):
        if barrier[e] < SL:
            continue
        r = sign * math.log(exit_price[e] / entry[e])
        ret[e] = r
        net[e] = r - cost
        touch_ts[e] = ts[touch_idx[e]]
        holding[e] = (touch_ts[e] - ts[entry_idx[e]]) // bar_ms
    return ret, net, holding, touch_ts


@njit(cache=True, nogil=True)
def _labels(barrier, net, touch_idx, barrier_s, net_s, touch_idx_s, side, dead_zone):  # pragma: no cover
    """Labels of resolved events (0 elsewhere, masked later) from the side's net return and, for ``side`` 0, the
    short's own net return (``*_s``), as the module docstring says."""
    m = barrier.size
    label = np.zeros(m, np.int8)
    for e in range(m):
        if barrier[e] < SL:
            continue
        zone = dead_zone if barrier[e] == VERTICAL else 0.0
        up = (net[e] > 0) & (net[e] >= zone)  # the long (or the side) nets a profit
        zone_s = dead_zone if barrier_s[e] == VERTICAL else 0.0
        down = (side == 0) & (net_s[e] > 0) & (net_s[e] >= zone_s)  # no side: the short's own trade nets a profit
        lab = np.int8(up) - np.int8(down)  # branch-free: the outcome is a coin flip to the predictor
        if up & down:  # both profit (only when pt_mult != sl_mult): the first exit wins; one bar: unknown order
            lab = np.int8(1) if touch_idx[e] < touch_idx_s[e] else np.int8(-1 if touch_idx_s[e] < touch_idx[e] else 0)
        label[e] = lab
    return label


# ------------------------------------------------------------------------------------------------ public


def triple_barrier(
    frame: pl.DataFrame, event_start_ms: int, event_end_ms: int, spec: BarrierSpec, bar_ms: int
) -> pl.DataFrame:
    """Triple-barrier labels of the bars in ``[event_start_ms, event_end_ms)`` (see the module docstring).

    ``frame``: candles (``ts``, ``open``, ``high``, ``low``, ``close``; ``volume`` is not used), sorted by a
    unique ``ts``, holding the warm-up bars before the events (``vol_window``) and the future bars after them
    (``max_holding_bars``). Returns one row per event with the columns of ``LABEL_SCHEMA``.
    """
    ts, open_, high, low, close = _input_arrays(frame, event_start_ms, event_end_ms, spec, bar_ms)
    lo, hi = np.searchsorted(ts, [event_start_ms, event_end_ms], side="left")
    entry_idx = np.arange(lo, hi, dtype=np.int64)
    horizon_ms, touch_hl = spec.horizon_ms(bar_ms), spec.touch == "high_low"
    fill_idx, entry, first_idx = _fills(ts, open_, close, entry_idx, spec.lag_ms(bar_ms), horizon_ms)
    vol = _trailing_vol(close, entry_idx, spec.vol_window, spec.min_vol_returns, float(spec.min_vol))
    pt, sl = _barrier_prices(entry, vol, float(spec.pt_mult), float(spec.sl_mult), spec.side)
    pt_mult, sl_mult, cost = float(spec.pt_mult), float(spec.sl_mult), spec.cost_bps / 1e4
    args = (ts, open_, high, low, close, entry_idx, first_idx, entry, vol, pt_mult, sl_mult, horizon_ms, touch_hl)
    touch_idx, code, exit_price = _first_touch(*args, spec.side)
    sign = -1.0 if spec.side < 0 else 1.0
    ret, net, holding, touch_ts = _side_outcome(ts, entry_idx, entry, touch_idx, code, exit_price, sign, cost, bar_ms)
    if spec.side < 0:  # the side is the short: its outcome is the short's
        s_touch_idx, s_code, s_ret, s_net, s_holding, s_touch_ts = touch_idx, code, ret, net, holding, touch_ts
    else:  # the short's own barriers (mirrored) and first touch: one more pass
        s_touch_idx, s_code, s_exit = _first_touch(*args, -1)
        s_ret, s_net, s_holding, s_touch_ts = _side_outcome(
            ts, entry_idx, entry, s_touch_idx, s_code, s_exit, -1.0, cost, bar_ms
        )
    label = _labels(code, net, touch_idx, s_code, s_net, s_touch_idx, spec.side, spec.vertical_dead_zone_bps / 1e4)
    out = pl.DataFrame(
        [
            pl.Series("ts", ts[entry_idx], dtype=pl.Int64),
            pl.Series("entry_ts", np.where(fill_idx >= 0, ts[np.maximum(fill_idx, 0)], 0), dtype=pl.Int64),
            pl.Series("entry", entry, dtype=pl.Float64, nan_to_null=True),
            pl.Series("vol", vol, dtype=pl.Float64, nan_to_null=True),
            pl.Series("pt_price", pt, dtype=pl.Float64, nan_to_null=True),
            pl.Series("sl_price", sl, dtype=pl.Float64, nan_to_null=True),
            pl.Series("touch_ts", touch_ts, dtype=pl.Int64),
            _BARRIER_STRINGS.gather(code.astype(np.int64) - NO_VOL).alias("barrier"),
            pl.Series("ret", ret, dtype=pl.Float64, nan_to_null=True),
            pl.Series("net_ret", net, dtype=pl.Float64, nan_to_null=True),
            pl.Series("label", label, dtype=pl.Int8),
            pl.Series("holding_bars", holding, dtype=pl.Int32),
            pl.Series("touch_ts_short", s_touch_ts, dtype=pl.Int64),
            _BARRIER_STRINGS.gather(s_code.astype(np.int64) - NO_VOL).alias("barrier_short"),
            pl.Series("ret_short", s_ret, dtype=pl.Float64, nan_to_null=True),
            pl.Series("net_ret_short", s_net, dtype=pl.Float64, nan_to_null=True),
            pl.Series("holding_bars_short", s_holding, dtype=pl.Int32),
            pl.Series("_resolved", code >= SL, dtype=pl.Boolean),
            pl.Series("_filled", fill_idx >= 0, dtype=pl.Boolean),
        ]
    )
    masked = ("touch_ts", "label", "holding_bars", "touch_ts_short", "holding_bars_short")
    out = out.with_columns(pl.when(pl.col("_resolved")).then(pl.col(c)).alias(c) for c in masked)
    return out.with_columns(pl.when(pl.col("_filled")).then(pl.col("entry_ts")).alias("entry_ts")).drop(
        "_resolved", "_filled"
    )


def long_return_bps(ret: str = "ret") -> pl.Expr:
    """The long trade's simple return in bps, ``(exit / entry - 1) x 1e4``, from its log return column ``ret``
    (a labels frame of ``side`` 0 or +1): what one unit of notional earns before costs, as the shadow trader
    books it. The log return understates a long's gain (and overstates its loss) by about ``ret² / 2``."""
    return (pl.col(ret).exp() - 1.0) * 1e4


def short_return_bps(ret_short: str = "ret_short") -> pl.Expr:
    """The short trade's simple return in bps, ``(1 - exit / entry) x 1e4``, from its own log return column
    ``ret_short`` (``-log(exit / entry)``): the short's P&L as the shadow trader books it. Never ``-ret``: the
    short has its own exit; and ``ret_short`` itself would overstate the short's P&L by about ``ret_short² / 2``."""
    return (1.0 - (-pl.col(ret_short)).exp()) * 1e4


def triple_barrier_reference(
    frame: pl.DataFrame, event_start_ms: int, event_end_ms: int, spec: BarrierSpec, bar_ms: int
) -> pl.DataFrame:
    """The same labels as ``triple_barrier``, by plain Python loops over lists: the honest baseline."""
    _input_arrays(frame, event_start_ms, event_end_ms, spec, bar_ms)  # the same input checks
    ts, open_, high, low, close = (frame[c].to_list() for c in _INPUT_COLUMNS)
    rows = [
        _reference_event(i, ts, open_, high, low, close, spec, bar_ms)
        for i in range(len(ts))
        if event_start_ms <= ts[i] < event_end_ms
    ]
    return pl.DataFrame(rows, schema=LABEL_SCHEMA, orient="row")


# ---------------------------------------------------------------------------------------------- helpers


def _input_arrays(
    frame: pl.DataFrame, event_start_ms: int, event_end_ms: int, spec: BarrierSpec, bar_ms: int
) -> tuple[np.ndarray, ...]:
    """Checked numpy views of ``ts, open, high, low, close``; ``ValueError`` on bad input."""
    if not isinstance(spec, BarrierSpec):
        raise TypeError(f"spec must be a BarrierSpec, got {type(spec).__name__}")
    spec.horizon_ms(bar_ms)  # checks bar_ms
    if not (_is_int(event_start_ms) and _is_int(event_end_ms)) or event_start_ms > event_end_ms:
        raise ValueError(f"bad event window [{event_start_ms!r}, {event_end_ms!r})")
    missing = [c for c in _INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing}")
    if frame.select(_INPUT_COLUMNS).null_count().sum_horizontal().item():
        raise ValueError("frame has null values")
    if not frame.schema["ts"].is_integer():
        raise ValueError(f"frame ts must be integer epoch ms, got {frame.schema['ts']}")
    ts = frame["ts"].cast(pl.Int64).to_numpy()
    if ts.size > 1 and not (np.diff(ts) > 0).all():
        raise ValueError("frame ts must be strictly increasing (sorted, unique)")
    prices = []
    for c in _INPUT_COLUMNS[1:]:
        values = np.ascontiguousarray(frame[c].cast(pl.Float64).to_numpy())
        if not (np.isfinite(values).all() and (values > 0).all()):
            raise ValueError(f"frame column {c} must hold finite prices > 0")
        prices.append(values)
    return (np.ascontiguousarray(ts), *prices)


def _reference_vol(i: int, close: list[float], spec: BarrierSpec) -> float | None:
    first = max(1, i - spec.vol_window + 1)
    rets = [math.log(close[k] / close[k - 1]) for k in range(first, i + 1)]
    n = len(rets)
    if n < spec.min_vol_returns:
        return None
    total = 0.0
    for r in rets:
        total += r
    mean = total / n
    squares = 0.0
    for r in rets:
        squares += (r - mean) * (r - mean)
    return max(math.sqrt(squares / (n - 1)), spec.min_vol)


def _reference_touch(j, pt, sl, upper_is_pt, open_, high, low, close, spec):
    """(barrier, exit price) if bar ``j`` touches a barrier, else None."""
    upper, lower = (pt, sl) if upper_is_pt else (sl, pt)
    name_up, name_down = ("pt", "sl") if upper_is_pt else ("sl", "pt")
    if spec.touch == "close":
        if close[j] >= upper:
            return name_up, close[j]
        if close[j] <= lower:
            return name_down, close[j]
        return None
    if open_[j] >= upper:
        return name_up, open_[j]
    if open_[j] <= lower:
        return name_down, open_[j]
    up, down = high[j] >= upper, low[j] <= lower
    if up and down:
        return "sl", sl
    if up:
        return name_up, upper
    if down:
        return name_down, lower
    return None


def _reference_fill(i, ts, open_, close, spec, bar_ms) -> tuple:
    """``(fill row, entry price, first path row)`` of event ``i``; ``(None, None, None)`` without a fill."""
    if spec.entry_lag_bars == 0:
        return i, close[i], i + 1
    later = [j for j in range(i + 1, len(ts)) if ts[j] >= ts[i] + spec.lag_ms(bar_ms)]
    if not later or ts[later[0]] > ts[i] + spec.horizon_ms(bar_ms):
        return None, None, None
    return later[0], open_[later[0]], later[0]


def _reference_side(i, side, vol, entry, first, ts, open_, high, low, close, spec, bar_ms) -> tuple:
    """``(pt, sl, touch ts, barrier, ret, net_ret, holding_bars)`` of the ``side`` (+1 / -1) trade of event ``i``,
    filled at ``entry`` with its path from row ``first`` on (``None``: no fill)."""
    if entry is None:
        return (None, None, None, "unresolved", None, None, None)
    if side < 0:
        pt, sl = entry * math.exp(-(spec.pt_mult * vol)), entry * math.exp(spec.sl_mult * vol)
    else:
        pt, sl = entry * math.exp(spec.pt_mult * vol), entry * math.exp(-(spec.sl_mult * vol))
    end_ts = ts[i] + spec.max_holding_bars * bar_ms
    path = [j for j in range(first, len(ts)) if ts[j] <= end_ts]
    if ts[-1] < end_ts or not path:
        return (pt, sl, None, "unresolved", None, None, None)
    hit = None
    for j in path:
        hit = _reference_touch(j, pt, sl, side >= 0, open_, high, low, close, spec)
        if hit is not None:
            barrier, exit_price, exit_j = hit[0], hit[1], j
            break
    if hit is None:
        barrier, exit_price, exit_j = "vertical", close[path[-1]], path[-1]
    ret = (-1.0 if side < 0 else 1.0) * math.log(exit_price / entry)
    net = ret - spec.cost_bps / 1e4
    return (pt, sl, ts[exit_j], barrier, ret, net, (ts[exit_j] - ts[i]) // bar_ms)


def _reference_profits(barrier: str, net: float, spec: BarrierSpec) -> bool:
    dead_zone = spec.vertical_dead_zone_bps / 1e4 if barrier == "vertical" else 0.0
    return net > 0 and net >= dead_zone


def _reference_event(i, ts, open_, high, low, close, spec, bar_ms) -> tuple:
    fill, entry, first = _reference_fill(i, ts, open_, close, spec, bar_ms)
    entry_ts = None if fill is None else ts[fill]
    vol = _reference_vol(i, close, spec)
    if vol is None:
        short = (None, "no_vol", None, None, None)  # touch ts, barrier, ret, net_ret, holding bars of the short
        return (ts[i], entry_ts, entry, None, None, None, None, "no_vol", None, None, None, None, *short)
    pt, sl, touch, barrier, ret, net, holding = _reference_side(
        i, -1 if spec.side < 0 else 1, vol, entry, first, ts, open_, high, low, close, spec, bar_ms
    )
    short = _reference_side(i, -1, vol, entry, first, ts, open_, high, low, close, spec, bar_ms)[2:]
    s_touch, s_barrier, _, s_net, _ = short
    if barrier == "unresolved":
        return (ts[i], entry_ts, entry, vol, pt, sl, None, barrier, None, None, None, None, *short)
    wins = _reference_profits(barrier, net, spec)
    short_wins = spec.side == 0 and _reference_profits(s_barrier, s_net, spec)
    if wins and short_wins:  # both sides profit: the first exit; the same bar: unknown order
        label = 1 if touch < s_touch else -1 if s_touch < touch else 0
    else:
        label = 1 if wins else -1 if short_wins else 0
    return (ts[i], entry_ts, entry, vol, pt, sl, touch, barrier, ret, net, label, holding, *short)
