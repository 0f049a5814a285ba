"""Shadow (paper) trading of one model's signals on one coin, one position at a time, with a numba bar loop.

Pure numpy / numba / polars; no I/O. ``simulate`` is the fast path (a ``@njit`` loop over the bars);
``reference_simulate`` is a plain-Python loop over lists with the same rules (the oracle of the tests and
the baseline of the benchmark), and the two agree exactly: same trades, same floats, same final state.

Semantics (bars are candles: ``ts`` is the bar's open time in epoch ms; every input is one value per bar):

* **Window.** Bars with ``ts < start_ms`` are warm-up only: they feed the trailing volatility, never a trade,
  and are not counted anywhere. Trading happens on the bars with ``start_ms <= ts < end_ms``; bars from
  ``end_ms`` on are ignored entirely (no fill nor exit is found there either).
* **Signal timing and latency.** The signal of bar t (``p[t]``, ``meta_direction[t]`` and the cost estimates of
  t) is known at bar t's close, and every guardrail is decided there. With ``latency_bars`` L >= 1 (default 1)
  the order fills at the **open of the fill bar**, the first window bar with ``ts >= ts[t] + L * bar_ms`` (on
  gap-free bars bar t + L; after a hole in the data, the first bar that exists). A fill bar later than the
  signal's vertical barrier (a hole covering the rest of the horizon) cancels the order: nothing is bought.
  While the order waits the trader is busy (as with an open position). With L = 0 the entry is bar t's own
  **close**. ``signal_ts`` is bar t's ``ts``; ``entry_ts`` the fill bar's (L = 0: bar t, filled at its close;
  L >= 1: filled at its open, i.e. at ``entry_ts``). These are the fills of the triple-barrier labels with
  ``entry_lag_bars`` = L (:mod:`huracan_assets.core.labels.triple_barrier`).
* **Side.** +1 (long) if ``p >= 0.5 + threshold``, −1 (short) if ``p <= 0.5 - threshold``, else none; a NaN
  ``p`` is no signal. ``meta_direction`` is −1 / 0 / +1 per bar (NaN or ``None``: no opinion).
* **Barriers** follow the labels (their kernels are reused): the volatility of the **signal** bar = sample std
  (ddof 1) of the ``vol_window`` log close-to-close returns ending at it (warm-up bars included), floored at
  ``min_vol``, undefined with fewer than ``max(2, ceil(vol_window / 2))`` returns; applied to the **fill price**.
  Long: profit-take ``pt = entry * exp(+pt_mult * vol)``, stop ``sl = entry * exp(-sl_mult * vol)``; short
  mirrored. They are checked from the bar after the entry (L = 0) or from the fill bar itself (L >= 1: its high
  and low come after its open), high/low touches: a long's ``high >= pt`` exits at ``pt``, ``low <= sl`` at
  ``sl``; a bar touching both is the **stop**; a bar that **opens** at or beyond a barrier exits at its open (a
  gap through the stop fills worse than the stop; through the profit-take, better).
* **Vertical barrier, time-based, from the signal bar:** with no horizontal touch, the exit is at the close of
  the first bar with ``ts >= signal ts + max_holding_bars * bar_ms`` (on gap-free bars: bar t + max_holding_bars,
  whatever L). That bar's barriers are checked first. Unlike the labels (the last bar *within* the horizon), a
  hole in the data makes the paper trader wait for the next bar that exists: it cannot exit where there is no
  market.
* **End of the window, two modes.** By default (``carry=False``) a position still open after the last window bar
  is closed at that bar's close with ``exit_reason == "mark"`` (and pays the exit cost): the final equity is the
  liquidation value; an order still waiting for its fill is dropped (it would fill outside the window). With L = 0
  an entry on the window's last bar is marked at its own close (gross 0, the round trip's cost). With
  ``carry=True`` nothing is closed nor dropped: the open position or the waiting order is in the returned state,
  for the next window (below).
* **Costs**, in bps of the notional, per side: half of each per-bar round-trip estimate, ``fee_bps/2 +
  spread_bps/2 + slippage_bps/2``: at entry the **fill bar**'s, at exit the **exit bar**'s (:mod:`huracan_assets.
  core.execution`; a bar whose estimate is NaN uses the signal bar's). A **stop** (``exit_reason == "sl"``, a gap
  through it included) also pays ``stop_slippage``: ``half_spreads x`` the exit bar's half-spread ``+
  fixed_bps``. Per trade: ``fee_bps``, ``spread_bps``, ``slippage_bps`` (entry + exit), ``stop_slippage_bps``;
  ``cost_bps`` is their sum; funding is not modelled (spot). ``gross = side * (exit / entry - 1)``, ``net = gross -
  cost_bps / 1e4``; ``gross_bps``, ``net_bps`` are those times 1e4. ``exit_price`` is the barrier (or the gap's
  open, or the close): the stop slippage is a cost, not a price.
* **Sizing and equity.** ``size = position_fraction * equity`` at the fill (notional, in units of the initial
  equity); at the exit ``equity *= 1 + position_fraction * net`` (compounding, realized at exits only).
  The per-bar equity curve is the realized equity when flat (or waiting for a fill) and, while a position is
  open, its liquidation value at the bar's close: ``equity * (1 + position_fraction * net_if_closed_at_close)``,
  the entry's cost and that bar's exit cost paid (no stop slippage).
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
  6. ``dedup``: ``t <= last entry signal bar in the same direction + dedup_bars``;
  7. ``max_trades_per_day``: the UTC day already has ``max_trades_per_day`` entries;
  8. ``daily_loss_limit``: the day's realized loss exceeds the limit: ``day_start_equity - equity >
     daily_loss_limit * day_start_equity``; blocks entries for the rest of that UTC day.

  A signal passing all eight while a position is open (or an order waits) is ignored (not counted). The counts
  therefore cover every window bar whose signal failed a guardrail, whether or not a position was open then.
  Bars are counted in rows (bars that exist). Days are UTC days of the bar's ``ts``: an entry counts in its
  signal bar's day (where it was decided), a realized PnL in its exit bar's day; ``day_start_equity`` is the
  realized equity before the day's first bar. Each bar is processed as: day roll, the waiting order's fill (or
  cancellation), the open position's exit (the fill bar's included), then the bar's signal (so an exit's loss is
  known to that bar's guardrails).
* **Carried state** (:class:`ShadowState`, a small JSON-safe dict in ``ShadowResult.state``): the realized
  equity, the open position (side, signal and entry ts, entry price, barriers, vertical barrier, size, the entry's
  cost parts and the signal bar's estimates), the order waiting for its fill, the rows since the last exit and
  since the last long / short entry signal (cooldown, dedup), the current UTC day with its entry count and
  starting equity, and the ts of the last bar processed. ``simulate(..., initial_state=state)`` continues from it:
  the window must start after the state's last bar (else ``ValueError``: bars would count twice), and rows are
  counted on from there, so simulating consecutive windows (days) one after the other, each from the previous
  one's state with ``carry=True``, gives exactly the trades, equity, skip counts and state of one simulation over
  the whole span (the last window's mode deciding the end). Warm-up bars before each window are still needed for
  the volatility. Bars between the state's last bar and the window (if the caller leaves some out) are not
  simulated: the position is managed from the window's first bar, as if they had not existed.
* **Stats** (``ShadowResult.stats``, of the window only): ``n_trades`` (trades closed in the window);
  ``net_bps_per_trade`` (mean ``net_bps``) and ``hit_rate`` (share of trades with ``net_bps > 0``), NaN without
  trades; ``total_return`` (last equity / the window's starting equity − 1); ``max_drawdown`` (largest fall of the
  per-bar equity below its running peak, the starting equity included, as a positive fraction); ``sharpe``:
  mean / std (ddof 1) of the daily returns of the equity at each UTC day's last window bar (the first day against
  the starting equity), times sqrt(365), NaN with fewer than two days or no variation; ``turnover_per_day``:
  traded notional (entry and exit, ``2 * size``) over the mean equity, per day of window bars (``bars * bar_ms /
  1 day``). The starting equity is ``initial_equity``, or the carried state's realized equity.

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
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from huracan_assets.core.execution import DEFAULT_STOP_SLIPPAGE, StopSlippage
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
from huracan_assets.core.market_data.candles import DAY_MS

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
    "signal_ts": pl.Int64,
    "entry_ts": pl.Int64,
    "exit_ts": pl.Int64,
    "side": pl.Int8,
    "entry_price": pl.Float64,
    "exit_price": pl.Float64,
    "size": pl.Float64,
    "gross_bps": pl.Float64,
    "fee_bps": pl.Float64,
    "spread_bps": pl.Float64,
    "slippage_bps": pl.Float64,
    "stop_slippage_bps": pl.Float64,
    "cost_bps": pl.Float64,
    "net_bps": pl.Float64,
    "exit_reason": pl.String,
}
EQUITY_SCHEMA: dict[str, pl.DataType] = {"ts": pl.Int64, "equity": pl.Float64}
STATE_VERSION = 1
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
# kernel trade records: ints (signal ts, entry ts, exit ts) and floats, one row per field
_REC_FLOATS = ("side", *list(TRADE_SCHEMA)[4:14], "code")
_N_REC_FLOATS = len(_REC_FLOATS)
# kernel state: floats and ints, one slot per field (``_pack_state`` / ``_unpack_state``)
_F_EQUITY, _F_DAY_EQUITY, _F_ENTRY, _F_PT, _F_SL, _F_SIZE = range(6)
_F_ENTRY_FEE, _F_ENTRY_SPREAD, _F_ENTRY_SLIP, _F_SIG_FEE, _F_SIG_SPREAD, _F_SIG_SLIP, _F_VOL = range(6, 13)
_I_SIDE, _I_PENDING, _I_SIGNAL_TS, _I_ENTRY_TS, _I_VERTICAL_TS, _I_DUE_TS = range(6)
_I_DAY_TRADES, _I_NEXT_DAY, _I_LAST_EXIT, _I_LAST_LONG, _I_LAST_SHORT = range(6, 11)
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
    """Signal, guardrail, execution, barrier and risk parameters; see the module docstring for the semantics."""

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
    latency_bars: int = 1  # the signal of bar t fills at the open of bar t + latency (0: at t's close)
    stop_slippage: StopSlippage = DEFAULT_STOP_SLIPPAGE  # a stop's extra cost (core/execution.py)

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
        if not isinstance(self.stop_slippage, StopSlippage):
            raise ValueError(f"ShadowSpec.stop_slippage must be a StopSlippage, got {self.stop_slippage!r}")
        if not _is_int(self.latency_bars) or not 0 <= self.latency_bars <= self.max_holding_bars:
            raise ValueError(
                f"ShadowSpec.latency_bars must be an int in [0, max_holding_bars], got {self.latency_bars!r}"
            )
        _ = self.barrier_spec  # BarrierSpec checks the barrier fields

    @property
    def barrier_spec(self) -> BarrierSpec:
        """The triple-barrier parameters of the entries and exits (high/low touches): the labels' rules."""
        return BarrierSpec(
            pt_mult=self.pt_mult,
            sl_mult=self.sl_mult,
            max_holding_bars=self.max_holding_bars,
            vol_window=self.vol_window,
            min_vol=self.min_vol,
            entry_lag_bars=self.latency_bars,
        )


# ------------------------------------------------------------------------------------------------- state


@dataclass(frozen=True)
class PendingOrder:
    """An entry decided at ``signal_ts``, waiting for its fill bar (the first bar with ``ts >= due_ts``)."""

    side: int
    signal_ts: int
    due_ts: int  # signal ts + latency
    vertical_ts: int  # signal ts + max_holding_bars bars: no fill after it
    vol: float  # the signal bar's volatility: the barriers' multiples
    signal_fee_bps: float  # the signal bar's round-trip estimates (fallback for a bar without one)
    signal_spread_bps: float
    signal_slippage_bps: float


@dataclass(frozen=True)
class OpenPosition:
    """A filled position: its entry, barriers, size and the cost parts paid at entry (per side, bps)."""

    side: int
    signal_ts: int
    entry_ts: int
    entry_price: float
    pt: float
    sl: float
    vertical_ts: int
    size: float
    entry_fee_bps: float
    entry_spread_bps: float
    entry_slippage_bps: float
    signal_fee_bps: float
    signal_spread_bps: float
    signal_slippage_bps: float


@dataclass(frozen=True)
class ShadowState:
    """What one window hands to the next (module docstring, "Carried state"). ``to_dict`` / ``from_dict`` give a
    small JSON-safe dict (floats survive JSON exactly); ``ShadowResult.state`` is that dict."""

    equity: float  # realized equity
    last_ts: int | None = None  # ts of the last bar processed; the next window must start after it
    day: int | None = None  # UTC day (ts // 1 day) of that bar
    day_start_equity: float | None = None  # realized equity before the day's first bar (None: ``equity``)
    day_trades: int = 0  # entries decided on that day
    bars_since_exit: int | None = None  # rows from the last exit bar to the last bar processed (None: never)
    bars_since_long: int | None = None  # ... from the signal bar of the last long entry
    bars_since_short: int | None = None  # ... from the signal bar of the last short entry
    pending: PendingOrder | None = None
    position: OpenPosition | None = None

    def __post_init__(self) -> None:
        if not (_is_real(self.equity) and math.isfinite(self.equity) and self.equity > 0):
            raise ValueError(f"ShadowState.equity must be finite and > 0, got {self.equity!r}")
        if self.pending is not None and self.position is not None:
            raise ValueError("ShadowState: an open position and a waiting order at once")
        for name in ("bars_since_exit", "bars_since_long", "bars_since_short"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                raise ValueError(f"ShadowState.{name} must be None or an int >= 0, got {value!r}")

    @classmethod
    def fresh(cls, spec: ShadowSpec) -> ShadowState:
        return cls(equity=float(spec.initial_equity))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["version"] = STATE_VERSION
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ShadowState:
        doc = dict(doc)
        version = doc.pop("version", None)
        if version != STATE_VERSION:
            raise ValueError(f"ShadowState version {version!r} is not {STATE_VERSION}")
        for name, kind in (("pending", PendingOrder), ("position", OpenPosition)):
            if doc.get(name) is not None:
                doc[name] = _typed(kind, doc[name])
        return _typed(cls, doc)


def _typed(kind: type, doc: dict[str, Any]) -> Any:
    """``kind(**doc)`` with every field present (no more, no fewer) and ints / floats as Python numbers."""
    names = {f.name for f in fields(kind)}
    if set(doc) - names or (kind is not ShadowState and names - set(doc)):
        raise ValueError(f"{kind.__name__} fields {sorted(names)}, got {sorted(doc)}")
    return kind(**doc)


@dataclass(frozen=True)
class ShadowResult:
    """Trades (``TRADE_SCHEMA``), per-bar equity of the window (``EQUITY_SCHEMA``), skip counts by guardrail
    (every name of ``SKIP_REASONS``), summary stats and the final state (``ShadowState.to_dict()``; module
    docstring)."""

    trades: pl.DataFrame
    equity: pl.DataFrame
    skipped: dict[str, int]
    stats: dict[str, float]
    state: dict[str, Any]


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
def _half(value, fallback):  # pragma: no cover - compiled
    """One side of a round-trip estimate: half of it; a bar without one (NaN) uses the signal bar's ``fallback``."""
    return (value if value == value else fallback) * 0.5


@njit(cache=True, nogil=True, inline="always")
def _total(fee, spread, slip, stop):  # pragma: no cover - compiled
    """A trade's cost from its parts, always summed in this order (the reference does the same)."""
    return ((fee + spread) + slip) + stop


@njit(cache=True, nogil=True, inline="always")
def _book(rec_i, rec_f, k, sig_ts, entry_ts, exit_ts, side, entry, price, size, fee, spread, slip, stop, code, equity,
          fraction):  # fmt: skip  # pragma: no cover - compiled
    """Write trade ``k`` (its cost parts in bps) into the records; returns the equity after it."""
    cost = _total(fee, spread, slip, stop)
    net = _net_return(side, entry, price, cost)
    rec_i[0, k] = sig_ts
    rec_i[1, k] = entry_ts
    rec_i[2, k] = exit_ts
    rec_f[0, k] = side
    rec_f[1, k] = entry
    rec_f[2, k] = price
    rec_f[3, k] = size
    rec_f[4, k] = side * (price / entry - 1.0) * 1e4
    rec_f[5, k] = fee
    rec_f[6, k] = spread
    rec_f[7, k] = slip
    rec_f[8, k] = stop
    rec_f[9, k] = cost
    rec_f[10, k] = net * 1e4
    rec_f[11, k] = code
    return equity * (1.0 + fraction * net)


@njit(cache=True, nogil=True)
def _shadow_kernel(  # noqa: C901 - one flat bar loop, as numba likes it
    ts, open_, high, low, close, p, meta, fee, spread, slip, edge_ok, rets, vlo, vhi, lo, hi, prm, respect_meta,
    threshold, pt_mult, sl_mult, horizon_ms, lag_ms, fraction, window, min_vol, stop_k, stop_fixed, fs, st, mark,
):  # fmt: skip  # pragma: no cover - compiled
    """The bar loop over rows ``[lo, hi)``: ``(int trade records (3, k), float trade records (12, k), per-bar
    equity, skip counts, max drawdown)``; the state arrays ``fs`` (floats) and ``st`` (ints) are read at the start
    and written back at the end (``_pack_state``).

    ``edge_ok`` comes from ``_edge_flags``, ``rets``, ``vlo``, ``vhi`` from ``_vol_bounds``; ``prm`` as in
    ``_skip_reason``; ``mark``: close the open position (and drop a waiting order) at the window's end.
    """
    n = hi - lo
    rec_i = np.empty((3, n + 1), np.int64)  # one row per field: contiguous columns for the frame
    rec_f = np.empty((_N_REC_FLOATS, n + 1))  # n + 1: an exit and a mark can share the last bar
    curve = np.empty(n)
    skipped = np.zeros(_N_SKIP + 1, np.int64)
    equity, day_equity = fs[_F_EQUITY], fs[_F_DAY_EQUITY]
    entry, pt, sl, size = fs[_F_ENTRY], fs[_F_PT], fs[_F_SL], fs[_F_SIZE]
    e_fee, e_spread, e_slip = fs[_F_ENTRY_FEE], fs[_F_ENTRY_SPREAD], fs[_F_ENTRY_SLIP]
    s_fee, s_spread, s_slip, vol_p = fs[_F_SIG_FEE], fs[_F_SIG_SPREAD], fs[_F_SIG_SLIP], fs[_F_VOL]
    side, pend = st[_I_SIDE], st[_I_PENDING]
    sig_ts, entry_ts, v_ts, due_ts = st[_I_SIGNAL_TS], st[_I_ENTRY_TS], st[_I_VERTICAL_TS], st[_I_DUE_TS]
    day_trades, next_day = st[_I_DAY_TRADES], st[_I_NEXT_DAY]
    last_exit, last_long, last_short = st[_I_LAST_EXIT], st[_I_LAST_LONG], st[_I_LAST_SHORT]
    k = 0
    peak = trough = equity  # running peak of the curve, and its lowest value since that peak
    max_dd = 0.0
    for t in range(lo, hi):
        if ts[t] >= next_day:
            next_day = (ts[t] // DAY_MS + 1) * DAY_MS
            day_equity, day_trades = equity, 0
        if pend != 0 and ts[t] >= due_ts:  # the waiting order's fill bar
            if ts[t] <= v_ts:  # filled at this bar's open (else cancelled: past its vertical barrier)
                side, entry, entry_ts = pend, open_[t], ts[t]
                pt, sl = _barrier_pair(entry, vol_p, pt_mult, sl_mult, side)
                e_fee, e_spread, e_slip = _half(fee[t], s_fee), _half(spread[t], s_spread), _half(slip[t], s_slip)
                size = fraction * equity
            pend = 0
        if side != 0:
            code, px = _exit_fill(open_[t], high[t], low[t], close[t], ts[t], side, pt, sl, v_ts)
            if code != NO_TOUCH:
                x_spread = _half(spread[t], s_spread)
                stop = stop_k * x_spread + stop_fixed if code == SL else 0.0
                equity = _book(
                    rec_i, rec_f, k, sig_ts, entry_ts, ts[t], side, entry, px, size, e_fee + _half(fee[t], s_fee),
                    e_spread + x_spread, e_slip + _half(slip[t], s_slip), stop, code, equity, fraction,
                )  # fmt: skip
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
        if reason == 0 and side == 0 and pend == 0:
            vol = vlo[t - lo] if vlo[t - lo] == vhi[t - lo] else _exact_vol(rets, t, window, min_vol)
            sig_ts, v_ts = ts[t], ts[t] + horizon_ms
            s_fee, s_spread, s_slip = fee[t], spread[t], slip[t]
            day_trades += 1
            last_long, last_short = (t, last_short) if s > 0 else (last_long, t)
            if lag_ms == 0:  # filled at this bar's close
                side, entry, entry_ts = s, close[t], ts[t]
                pt, sl = _barrier_pair(entry, vol, pt_mult, sl_mult, s)
                e_fee, e_spread, e_slip = _half(fee[t], s_fee), _half(spread[t], s_spread), _half(slip[t], s_slip)
                size = fraction * equity
            else:  # waits for the open of its fill bar
                pend, due_ts, vol_p = s, ts[t] + lag_ms, vol
        e = equity
        if side != 0:  # the liquidation value at this close: this bar's exit cost, no stop slippage
            c = _total(e_fee + _half(fee[t], s_fee), e_spread + _half(spread[t], s_spread),
                       e_slip + _half(slip[t], s_slip), 0.0)  # fmt: skip
            e = equity * (1.0 + fraction * _net_return(side, entry, close[t], c))
        curve[t - lo] = e
        if e > peak:
            peak = trough = e
        elif e < trough:  # the drawdown from this peak deepens (1 - e / peak is monotone in e)
            trough = e
            max_dd = max(max_dd, 1.0 - e / peak)
    if n > 0 and mark:
        if side != 0:  # still open at the end of the window: marked to the last close (the same arithmetic as above)
            j = hi - 1
            equity = _book(
                rec_i, rec_f, k, sig_ts, entry_ts, ts[j], side, entry, close[j], size, e_fee + _half(fee[j], s_fee),
                e_spread + _half(spread[j], s_spread), e_slip + _half(slip[j], s_slip), 0.0, MARK, equity, fraction,
            )  # fmt: skip
            k += 1
            side = 0
            curve[n - 1] = equity  # the same value as the marked one
        pend = 0  # an order that would fill after the window: dropped
    fs[_F_EQUITY], fs[_F_DAY_EQUITY] = equity, day_equity
    fs[_F_ENTRY], fs[_F_PT], fs[_F_SL], fs[_F_SIZE] = entry, pt, sl, size
    fs[_F_ENTRY_FEE], fs[_F_ENTRY_SPREAD], fs[_F_ENTRY_SLIP] = e_fee, e_spread, e_slip
    fs[_F_SIG_FEE], fs[_F_SIG_SPREAD], fs[_F_SIG_SLIP], fs[_F_VOL] = s_fee, s_spread, s_slip, vol_p
    st[_I_SIDE], st[_I_PENDING] = side, pend
    st[_I_SIGNAL_TS], st[_I_ENTRY_TS], st[_I_VERTICAL_TS], st[_I_DUE_TS] = sig_ts, entry_ts, v_ts, due_ts
    st[_I_DAY_TRADES], st[_I_NEXT_DAY] = day_trades, next_day
    st[_I_LAST_EXIT], st[_I_LAST_LONG], st[_I_LAST_SHORT] = last_exit, last_long, last_short
    return rec_i[:, :k], rec_f[:, :k], curve, skipped[1:], max_dd


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
    *,
    initial_state: ShadowState | dict[str, Any] | None = None,
    carry: bool = False,
) -> ShadowResult:
    """Paper-trade the signals of the bars in ``[start_ms, end_ms)`` (see the module docstring).

    Every input but the window, ``spec`` and ``bar_ms`` holds one value per bar (numpy arrays, polars Series or
    sequences), sorted by a unique integer ``ts``, the warm-up bars (``vol_window``) first. ``fee_bps``,
    ``spread_bps``, ``slippage_bps`` are round-trip amounts per bar, the columns of
    :meth:`CostModel.round_trip_bps`. ``meta_direction`` may be ``None`` (no meta opinion).

    ``initial_state``: a previous window's ``ShadowResult.state`` (or a :class:`ShadowState`) to continue from;
    ``None`` starts flat at ``spec.initial_equity``. ``carry``: leave a position open (and an order waiting) at the
    window's end, in the returned state, instead of marking it (module docstring, "End of the window").
    """
    a, state = _prepare(ts, open_, high, low, close, p, meta_direction, fee_bps, spread_bps, slippage_bps, start_ms,
                        end_ms, spec, bar_ms, initial_state, carry)  # fmt: skip
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
    fs, st = _pack_state(state, a["ts"], lo, hi)
    stop = spec.stop_slippage
    rec_i, rec_f, curve, skipped, max_dd = _shadow_kernel(
        a["ts"], a["open"], a["high"], a["low"], a["close"], a["p"], a["meta"], a["fee"], a["spread"], a["slip"],
        edge_ok, rets, vlo, vhi, lo, hi, prm, spec.respect_meta, float(spec.threshold), float(spec.pt_mult),
        float(spec.sl_mult), spec.max_holding_bars * int(bar_ms), spec.latency_bars * int(bar_ms),
        float(risk.position_fraction), spec.vol_window, float(spec.min_vol), float(stop.half_spreads),
        float(stop.fixed_bps), fs, st, not carry,
    )  # fmt: skip
    floats = dict(zip(_REC_FLOATS, rec_f, strict=True))
    trades = pl.DataFrame(
        {
            "signal_ts": rec_i[0],
            "entry_ts": rec_i[1],
            "exit_ts": rec_i[2],
            "side": floats["side"].astype(np.int8),
            **{name: floats[name] for name in list(TRADE_SCHEMA)[4:14]},
            "exit_reason": _EXIT_OBJECTS[floats["code"].astype(np.int64) - SL].tolist(),
        },
        schema=TRADE_SCHEMA,
    )
    skips = dict(zip(SKIP_REASONS, skipped.tolist(), strict=True))
    final = _unpack_state(fs, st, a["ts"], lo, hi, state)
    return _result(trades, a["ts"][lo:hi], curve, skips, max_dd, state.equity, final, bar_ms)


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
    *,
    initial_state: ShadowState | dict[str, Any] | None = None,
    carry: bool = False,
) -> ShadowResult:
    """The same paper trading as :func:`simulate`, by a plain-Python loop over lists: the oracle (no numba)."""
    a, state = _prepare(ts, open_, high, low, close, p, meta_direction, fee_bps, spread_bps, slippage_bps, start_ms,
                        end_ms, spec, bar_ms, initial_state, carry)  # fmt: skip
    lists = {k: v.tolist() for k, v in a.items() if isinstance(v, np.ndarray)}
    trader = _ReferenceTrader(lists, spec, bar_ms, state, a["lo"])
    for t in range(a["lo"], a["hi"]):
        trader.bar(t)
    if not carry:
        trader.finish(a["hi"] - 1)
    trades = pl.DataFrame(trader.trades, schema=TRADE_SCHEMA, orient="row")
    curve = np.array(trader.curve, dtype=np.float64)
    final = trader.state(a["lo"], a["hi"])
    return _result(
        trades, a["ts"][a["lo"] : a["hi"]], curve, trader.skipped, trader.max_dd, state.equity, final, bar_ms
    )


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
    initial: float,
    state: ShadowState,
    bar_ms: int,
) -> ShadowResult:
    """The result frames and the summary stats (module docstring); ``max_drawdown`` comes from the bar loop,
    ``initial`` is the window's starting equity."""
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
    return ShadowResult(trades=trades, equity=equity, skipped=skipped, stats=stats, state=state.to_dict())


def _float_array(name: str, values: Any, n: int) -> np.ndarray:
    if isinstance(values, pl.Series):
        values = values.cast(pl.Float64).to_numpy()
    out = np.ascontiguousarray(np.asarray(values, dtype=np.float64))
    if out.shape != (n,):
        raise ValueError(f"{name} must be 1-D with one value per bar ({n}), got shape {out.shape}")
    return out


def _prepare(
    ts, open_, high, low, close, p, meta_direction, fee_bps, spread_bps, slippage_bps, start_ms, end_ms, spec, bar_ms,
    initial_state, carry,
) -> tuple[dict[str, Any], ShadowState]:  # fmt: skip
    """Checked float64 / int64 arrays and the window rows ``[lo, hi)``, and the starting state; ``ValueError`` on
    bad input."""
    if not isinstance(spec, ShadowSpec):
        raise TypeError(f"spec must be a ShadowSpec, got {type(spec).__name__}")
    spec.barrier_spec.horizon_ms(bar_ms)  # checks bar_ms
    if not (_is_int(start_ms) and _is_int(end_ms)) or start_ms > end_ms:
        raise ValueError(f"bad window [{start_ms!r}, {end_ms!r})")
    if not isinstance(carry, bool):
        raise ValueError(f"carry must be a bool, got {carry!r}")
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
    if initial_state is None:
        state = ShadowState.fresh(spec)
    elif isinstance(initial_state, ShadowState):
        state = initial_state
    elif isinstance(initial_state, dict):
        state = ShadowState.from_dict(initial_state)
    else:
        raise TypeError(f"initial_state must be a ShadowState, its dict or None, got {type(initial_state).__name__}")
    if state.last_ts is not None and hi > lo and int(ts_arr[lo]) <= state.last_ts:
        raise ValueError(
            f"the window starts at {int(ts_arr[lo])}, at or before the state's last bar {state.last_ts}: "
            "those bars would be simulated twice"
        )
    return out, state


def _pack_state(state: ShadowState, ts: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's state arrays (``_F_*`` floats, ``_I_*`` ints) for a window of rows ``[lo, hi)``: the carried
    row counts become row indices before ``lo``."""
    fs = np.zeros(_F_VOL + 1)
    st = np.zeros(_I_LAST_SHORT + 1, np.int64)
    fs[_F_EQUITY] = state.equity
    fs[_F_DAY_EQUITY] = state.equity if state.day_start_equity is None else state.day_start_equity
    st[_I_DAY_TRADES] = state.day_trades
    if state.day is not None:
        st[_I_NEXT_DAY] = (state.day + 1) * DAY_MS
    else:  # the first bar rolls the day
        st[_I_NEXT_DAY] = ts[lo] if hi > lo else 0
    for slot, since in ((_I_LAST_EXIT, state.bars_since_exit), (_I_LAST_LONG, state.bars_since_long),
                        (_I_LAST_SHORT, state.bars_since_short)):  # fmt: skip
        st[slot] = _NEVER if since is None else lo - 1 - since
    order = state.position or state.pending
    if order is not None:
        st[_I_SIGNAL_TS], st[_I_VERTICAL_TS] = order.signal_ts, order.vertical_ts
        fs[_F_SIG_FEE], fs[_F_SIG_SPREAD] = order.signal_fee_bps, order.signal_spread_bps
        fs[_F_SIG_SLIP] = order.signal_slippage_bps
    if (pos := state.position) is not None:
        st[_I_SIDE], st[_I_ENTRY_TS] = pos.side, pos.entry_ts
        fs[_F_ENTRY], fs[_F_PT], fs[_F_SL], fs[_F_SIZE] = pos.entry_price, pos.pt, pos.sl, pos.size
        fs[_F_ENTRY_FEE], fs[_F_ENTRY_SPREAD], fs[_F_ENTRY_SLIP] = (pos.entry_fee_bps, pos.entry_spread_bps,
                                                                   pos.entry_slippage_bps)  # fmt: skip
    if (pend := state.pending) is not None:
        st[_I_PENDING], st[_I_DUE_TS], fs[_F_VOL] = pend.side, pend.due_ts, pend.vol
    return fs, st


def _unpack_state(fs: np.ndarray, st: np.ndarray, ts: np.ndarray, lo: int, hi: int, previous: ShadowState):
    """The :class:`ShadowState` the kernel left in ``fs`` / ``st`` after the rows ``[lo, hi)`` (an empty window
    changes nothing)."""
    if hi <= lo:
        return previous

    def since(idx: int) -> int | None:
        return None if idx == _NEVER else int(hi - 1 - idx)

    signal = {"signal_fee_bps": float(fs[_F_SIG_FEE]), "signal_spread_bps": float(fs[_F_SIG_SPREAD]),
              "signal_slippage_bps": float(fs[_F_SIG_SLIP])}  # fmt: skip
    position = pending = None
    if st[_I_SIDE] != 0:
        position = OpenPosition(
            side=int(st[_I_SIDE]), signal_ts=int(st[_I_SIGNAL_TS]), entry_ts=int(st[_I_ENTRY_TS]),
            entry_price=float(fs[_F_ENTRY]), pt=float(fs[_F_PT]), sl=float(fs[_F_SL]),
            vertical_ts=int(st[_I_VERTICAL_TS]), size=float(fs[_F_SIZE]), entry_fee_bps=float(fs[_F_ENTRY_FEE]),
            entry_spread_bps=float(fs[_F_ENTRY_SPREAD]), entry_slippage_bps=float(fs[_F_ENTRY_SLIP]), **signal,
        )  # fmt: skip
    if st[_I_PENDING] != 0:
        pending = PendingOrder(
            side=int(st[_I_PENDING]), signal_ts=int(st[_I_SIGNAL_TS]), due_ts=int(st[_I_DUE_TS]),
            vertical_ts=int(st[_I_VERTICAL_TS]), vol=float(fs[_F_VOL]), **signal,
        )  # fmt: skip
    return ShadowState(
        equity=float(fs[_F_EQUITY]),
        last_ts=int(ts[hi - 1]),
        day=int(st[_I_NEXT_DAY]) // DAY_MS - 1,
        day_start_equity=float(fs[_F_DAY_EQUITY]),
        day_trades=int(st[_I_DAY_TRADES]),
        bars_since_exit=since(int(st[_I_LAST_EXIT])),
        bars_since_long=since(int(st[_I_LAST_LONG])),
        bars_since_short=since(int(st[_I_LAST_SHORT])),
        pending=pending,
        position=position,
    )


class _ReferenceTrader:
    """The plain-Python state machine of ``reference_simulate``: one call of ``bar`` per window bar."""

    def __init__(self, a: dict[str, list], spec: ShadowSpec, bar_ms: int, state: ShadowState, lo: int) -> None:
        self.a, self.spec, self.bar_ms, self.initial = a, spec, bar_ms, state
        self.barriers = spec.barrier_spec
        self.fraction = spec.risk.position_fraction
        self.equity = state.equity
        self.position: dict[str, Any] | None = asdict(state.position) if state.position else None
        self.pending: dict[str, Any] | None = asdict(state.pending) if state.pending else None
        self.last_exit: int | None = None if state.bars_since_exit is None else lo - 1 - state.bars_since_exit
        self.last_entry: dict[int, int] = {}
        for side, since in ((1, state.bars_since_long), (-1, state.bars_since_short)):
            if since is not None:
                self.last_entry[side] = lo - 1 - since
        self.day: int | None = state.day
        self.day_equity = state.equity if state.day_start_equity is None else state.day_start_equity
        self.day_trades = state.day_trades
        self.trades: list[tuple] = []
        self.curve: list[float] = []
        self.peak = self.equity
        self.max_dd = 0.0
        self.skipped = dict.fromkeys(SKIP_REASONS, 0)

    def bar(self, t: int) -> None:
        a = self.a
        if a["ts"][t] // DAY_MS != self.day:
            self.day, self.day_equity, self.day_trades = a["ts"][t] // DAY_MS, self.equity, 0
        pend = self.pending
        if pend is not None and a["ts"][t] >= pend["due_ts"]:
            self.pending = None
            if a["ts"][t] <= pend["vertical_ts"]:
                self._fill(t, pend, a["open"][t])
        if self.position is not None:
            hit = self._exit(t)
            if hit is not None:
                self._close(t, *hit)
                self.last_exit = t
        side = self._side(a["p"][t])
        reason = self._skip_reason(t, side)
        if reason is not None:
            self.skipped[reason] += 1
        elif self.position is None and self.pending is None:
            self._enter(t, side)
        pos = self.position
        if pos is None:
            value = self.equity
        else:
            net = pos["side"] * (a["close"][t] / pos["entry_price"] - 1.0) - self._cost(t, "mark") / 1e4
            value = self.equity * (1.0 + self.fraction * net)
        self.curve.append(value)
        self.peak = max(self.peak, value)
        self.max_dd = max(self.max_dd, 1.0 - value / self.peak)

    def finish(self, last: int) -> None:
        if self.curve and self.position is not None:
            self._close(last, "mark", self.a["close"][last])
            self.curve[-1] = self.equity
        if self.curve:
            self.pending = None

    def state(self, lo: int, hi: int) -> ShadowState:
        if hi <= lo:  # an empty window changes nothing
            return self.initial

        def since(idx: int | None) -> int | None:
            return None if idx is None else hi - 1 - idx

        return ShadowState(
            equity=self.equity,
            last_ts=self.a["ts"][hi - 1],
            day=self.day,
            day_start_equity=self.day_equity,
            day_trades=self.day_trades,
            bars_since_exit=since(self.last_exit),
            bars_since_long=since(self.last_entry.get(1)),
            bars_since_short=since(self.last_entry.get(-1)),
            pending=PendingOrder(**self.pending) if self.pending else None,
            position=OpenPosition(**self.position) if self.position else None,
        )

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
        order = {
            "side": side, "signal_ts": a["ts"][t], "due_ts": a["ts"][t] + spec.latency_bars * self.bar_ms,
            "vertical_ts": a["ts"][t] + spec.max_holding_bars * self.bar_ms,
            "vol": _reference_vol(t, a["close"], self.barriers), "signal_fee_bps": a["fee"][t],
            "signal_spread_bps": a["spread"][t], "signal_slippage_bps": a["slip"][t],
        }  # fmt: skip
        self.day_trades += 1
        self.last_entry[side] = t
        if spec.latency_bars == 0:
            self._fill(t, order, a["close"][t])
        else:
            self.pending = order

    def _fill(self, t: int, order: dict[str, Any], price: float) -> None:
        spec, vol = self.spec, order["vol"]
        if order["side"] > 0:
            pt, sl = price * math.exp(spec.pt_mult * vol), price * math.exp(-(spec.sl_mult * vol))
        else:
            pt, sl = price * math.exp(-(spec.pt_mult * vol)), price * math.exp(spec.sl_mult * vol)
        self.position = {
            "side": order["side"], "signal_ts": order["signal_ts"], "entry_ts": self.a["ts"][t], "entry_price": price,
            "pt": pt, "sl": sl, "vertical_ts": order["vertical_ts"], "size": self.fraction * self.equity,
            "entry_fee_bps": self._half(t, "fee", order["signal_fee_bps"]),
            "entry_spread_bps": self._half(t, "spread", order["signal_spread_bps"]),
            "entry_slippage_bps": self._half(t, "slip", order["signal_slippage_bps"]),
            **{k: order[k] for k in ("signal_fee_bps", "signal_spread_bps", "signal_slippage_bps")},
        }  # fmt: skip

    def _half(self, t: int, column: str, fallback: float) -> float:
        value = self.a[column][t]
        return (fallback if math.isnan(value) else value) * 0.5

    def _parts(self, t: int, reason: str) -> tuple[float, float, float, float]:
        """(fee, spread, slippage, stop slippage) of closing the position at bar ``t`` for ``reason``."""
        pos = self.position
        fee = pos["entry_fee_bps"] + self._half(t, "fee", pos["signal_fee_bps"])
        half_spread = self._half(t, "spread", pos["signal_spread_bps"])
        slip = pos["entry_slippage_bps"] + self._half(t, "slip", pos["signal_slippage_bps"])
        stop = self.spec.stop_slippage.bps(half_spread) if reason == "sl" else 0.0
        return fee, pos["entry_spread_bps"] + half_spread, slip, stop

    def _cost(self, t: int, reason: str) -> float:
        fee, spread, slip, stop = self._parts(t, reason)
        return ((fee + spread) + slip) + stop

    def _exit(self, t: int) -> tuple[str, float] | None:
        a, pos = self.a, self.position
        hit = _reference_touch(
            t, pos["pt"], pos["sl"], pos["side"] > 0, a["open"], a["high"], a["low"], a["close"], self.barriers
        )
        if hit is None and a["ts"][t] >= pos["vertical_ts"]:
            return "vertical", a["close"][t]
        return hit

    def _close(self, t: int, reason: str, price: float) -> None:
        pos = self.position
        fee, spread, slip, stop = self._parts(t, reason)
        cost = ((fee + spread) + slip) + stop
        gross = pos["side"] * (price / pos["entry_price"] - 1.0)
        net = gross - cost / 1e4
        self.trades.append(
            (pos["signal_ts"], pos["entry_ts"], self.a["ts"][t], pos["side"], pos["entry_price"], price, pos["size"],
             gross * 1e4, fee, spread, slip, stop, cost, net * 1e4, reason)
        )  # fmt: skip
        self.equity = self.equity * (1.0 + self.fraction * net)
        self.position = None
