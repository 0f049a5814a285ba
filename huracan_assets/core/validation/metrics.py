"""Out-of-sample metrics of a probability model over triple-barrier events: ranking, trading, overfitting.

Pure numpy / numba / scipy / scikit-learn; no I/O. Conventions:

* ``y`` is 1 when the event's long return was positive, else 0; ``p`` the model's ``P(y = 1)``.
* **Each side has its own outcome.** ``ret_long_bps`` is the realized return of the long trade of the event at
  ``t0`` (entered at its fill, with the labels' latency) and closed at its exit ``t1``; ``ret_short_bps`` that of
  the short trade, closed at *its* exit ``t1_short``, in bps (the training frame gives simple returns, the P&L of
  one unit of notional). The short is **not** ``-ret_long_bps``: its barriers are its own (mirrored), a bar that
  touches both barriers stops out either side, and with ``pt_mult != sl_mult`` its exit differs from the long's
  anywhere.
* **Each side has its own cost** (:class:`TradeCosts`): the round trip of the long's trade and of the short's, in
  bps of the notional, by part (``COST_PARTS``: fee, spread, slippage, stop slippage): half of the fill bar's
  estimates in, half of the side's own exit bar's out, and the stop slippage when that side's exit was a stop
  (:mod:`huracan_assets.core.execution`, ``training.dataset.trade_costs``), exactly as the shadow trader books
  them. A long earns ``ret_long_bps - cost_long``, a short ``ret_short_bps - cost_short``; the reports give the
  gross, each part of the cost, the cost and the net per trade side by side.
* **Trades**: a long is entered where ``p >= 0.5 + threshold``, a short where ``p <= 0.5 - threshold`` (a ``p``
  of exactly 0.5 never trades, even at threshold 0), **one position at a time**: after an entry at row ``i``
  every row with ``t0`` before the exit of the side taken (``t1[i]`` for a long, ``t1_short[i]`` for a short) is
  skipped (a new position may open at the very ms the last one closed).
* **Daily series**: each trade's P&L is booked on the UTC day of its side's exit; days without exits are 0; one
  value per calendar day of the evaluation window, as a fraction (``bps / 1e4``). Several exits on one day are
  summed (one position at a time, so the sum is the day's return of the one unit of capital; log and simple
  returns are not distinguished at these magnitudes).
* **Sharpe** is annualized with ``sqrt(365)`` (crypto trades every day). PSR and DSR work on the *per-period*
  (daily, not annualized) Sharpe ratio, as in Bailey & López de Prado; their benchmark and the trials' Sharpe
  variance are per-period too.
* Undefined numbers are NaN (one class for the AUC, fewer than 2 days or a constant series for the Sharpe, no
  trades for the per-trade means), never an exception.

The normal law is scipy's (the ``ndtr`` / ``ndtri`` ufuncs that ``scipy.stats.norm`` evaluates, called directly:
the ``scipy.stats`` front end costs ~100 µs per scalar call); the AUC and the log loss are scikit-learn's, behind
thin wrappers that keep the conventions above (NaN for one class or no rows, ``eps`` clipping).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit
from scipy import special
from sklearn import metrics as _skm

from huracan_assets.core.market_data.candles import DAY_MS

PERIODS_PER_YEAR = 365.0
EULER_GAMMA = 0.5772156649015329
COST_PARTS = ("fee", "spread", "slippage", "stop_slippage")  # the parts of a trade's cost, in this order


# ----------------------------------------------------------------------------------------------- normal law
def norm_cdf(x: float) -> float:
    """Standard normal CDF Φ(x) (``scipy.stats.norm.cdf``)."""
    return float(special.ndtr(x))


def norm_ppf(q: float) -> float:
    """Standard normal quantile Φ⁻¹(q) for q in [0, 1] (±inf at the ends; ``scipy.stats.norm.ppf``)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"norm_ppf needs q in [0, 1], got {q!r}")
    return float(special.ndtri(q))


# ----------------------------------------------------------------------------------------------- ranking
def _labels(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}")
    if y.size and not np.all((y == 0) | (y == 1)):
        raise ValueError("y must hold only 0 and 1")
    return y.astype(np.int8)


def _probs(p: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (n,):
        raise ValueError(f"p must be 1-D with {n} values, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("p must be finite")
    return p


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC (``sklearn.metrics.roc_auc_score``: the Mann–Whitney statistic, ties count 1/2); NaN if only one
    class."""
    y = _labels(y)
    p = _probs(p, y.size)
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        return math.nan
    return float(_skm.roc_auc_score(y, p))


def log_loss(y: np.ndarray, p: np.ndarray, eps: float = 1e-12) -> float:
    """Mean binary cross-entropy (``sklearn.metrics.log_loss``), ``p`` clipped to ``[eps, 1 - eps]``; NaN for no
    rows."""
    y = _labels(y)
    p = np.clip(_probs(p, y.size), eps, 1.0 - eps)
    if y.size == 0:
        return math.nan
    return float(_skm.log_loss(y, p, labels=[0, 1]))


def auc_null_sigma(n_pos: int, n_neg: int, block: int = 1) -> float:
    """Std of the AUC of an uninformative score: ``sqrt((n_pos + n_neg + 1) / (12 n_pos n_neg)) x sqrt(block)``.

    The first factor is the Mann–Whitney null for independent rows. Overlapping labels (a 24-bar horizon on
    hourly events) and autocorrelated features make neighbouring rows near-copies, so the effective sample is
    about ``n / block`` and the variance grows by about ``block``: ``block`` is the length of the runs of
    dependent rows (e.g. the label horizon in rows, or the block of a block shuffle). NaN if a class is empty.
    """
    if n_pos <= 0 or n_neg <= 0:
        return math.nan
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block!r}")
    return math.sqrt((n_pos + n_neg + 1) / (12.0 * n_pos * n_neg)) * math.sqrt(block)


# ----------------------------------------------------------------------------------------------- costs
@dataclass(frozen=True, eq=False)
class TradeCosts:
    """The round-trip cost of each row's long trade and of its short trade, in bps of the notional, by part:
    ``long`` and ``short`` are float64 arrays of shape ``(n, len(COST_PARTS))``, columns in ``COST_PARTS`` order.

    The total of a row is ``((fee + spread) + slippage) + stop_slippage``, summed in that order, as the shadow
    trader sums it."""

    long: np.ndarray
    short: np.ndarray

    def __post_init__(self) -> None:
        for name in ("long", "short"):
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != len(COST_PARTS):
                raise ValueError(f"TradeCosts.{name} must have shape (n, {len(COST_PARTS)}), got {arr.shape}")
            object.__setattr__(self, name, arr)
        if self.long.shape != self.short.shape:
            raise ValueError(f"TradeCosts: long {self.long.shape} and short {self.short.shape} differ in shape")

    @classmethod
    def from_parts(
        cls, long: Mapping[str, Any], short: Mapping[str, Any] | None = None, n: int | None = None
    ) -> TradeCosts:
        """From per-row arrays (or scalars, with ``n``) by part name; a part left out is 0, an unknown name an
        error. ``short`` None: the short pays what the long pays (one cost for both sides)."""

        def stack(parts: Mapping[str, Any]) -> np.ndarray:
            unknown = set(parts) - set(COST_PARTS)
            if unknown:
                raise ValueError(f"unknown cost parts {sorted(unknown)}; expected some of {COST_PARTS}")
            sizes = {np.size(v) for v in parts.values() if np.ndim(v) > 0}
            rows = n if n is not None else (sizes.pop() if len(sizes) == 1 else None)
            if rows is None or sizes - {rows}:
                raise ValueError("TradeCosts.from_parts needs arrays of one length (or n with scalars)")
            columns = [np.broadcast_to(np.asarray(parts.get(c, 0.0), np.float64), (rows,)) for c in COST_PARTS]
            return np.column_stack(columns)

        costs = stack(long)
        return cls(costs, costs.copy() if short is None else stack(short))

    def __len__(self) -> int:
        return self.long.shape[0]

    def take(self, idx: np.ndarray) -> TradeCosts:
        """The rows ``idx``."""
        return TradeCosts(self.long[idx], self.short[idx])

    def totals(self) -> tuple[np.ndarray, np.ndarray]:
        """Each row's round trip of the long and of the short, in bps."""
        return _total(self.long), _total(self.short)

    def of_trades(self, idx: np.ndarray, side: np.ndarray) -> np.ndarray:
        """The parts ``(k, len(COST_PARTS))`` of trades at rows ``idx`` on ``side`` (+1: the long's, -1: the
        short's)."""
        side = np.asarray(side)
        return np.where((side > 0)[:, None], self.long[idx], self.short[idx])


def _total(parts: np.ndarray) -> np.ndarray:
    return ((parts[:, 0] + parts[:, 1]) + parts[:, 2]) + parts[:, 3]


# ----------------------------------------------------------------------------------------------- trades
@njit(cache=True, nogil=True)
def _select_trades(t0, t1, t1_short, p, threshold):  # pragma: no cover - compiled
    n = t0.size
    idx = np.empty(n, dtype=np.int64)
    side = np.empty(n, dtype=np.int8)
    m = 0
    busy_until = 0
    busy = False
    hi = 0.5 + threshold
    lo = 0.5 - threshold
    for i in range(n):
        if busy and t0[i] < busy_until:
            continue
        s = 0
        if p[i] >= hi and p[i] > 0.5:
            s = 1
        elif p[i] <= lo and p[i] < 0.5:
            s = -1
        if s != 0:
            idx[m] = i
            side[m] = s
            m += 1
            busy_until = t1[i] if s > 0 else t1_short[i]  # the exit of the side actually taken
            busy = True
    return idx[:m], side[:m]


def select_trades(
    t0: np.ndarray, t1: np.ndarray, p: np.ndarray, threshold: float, t1_short: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (int64) and sides (int8, +1 long / -1 short) of the trades taken, one position at a time.

    ``t1`` is the long's exit per row and ``t1_short`` the short's (default: ``t1``, one exit for both sides):
    the position is busy until the exit of the side taken."""
    t0 = np.ascontiguousarray(t0, dtype=np.int64)
    t1 = np.ascontiguousarray(t1, dtype=np.int64)
    t1_short = t1 if t1_short is None else np.ascontiguousarray(t1_short, dtype=np.int64)
    if t0.ndim != 1 or t0.shape != t1.shape or t1_short.shape != t1.shape:
        raise ValueError(
            f"t0, t1 and t1_short must be 1-D of the same length, got {t0.shape}, {t1.shape} and {t1_short.shape}"
        )
    p = np.ascontiguousarray(_probs(p, t0.size))
    if not 0.0 <= threshold < 0.5:
        raise ValueError(f"threshold must be in [0, 0.5), got {threshold!r}")
    return _select_trades(t0, t1, t1_short, p, float(threshold))


def side_return_bps(side: np.ndarray, ret_long_bps: np.ndarray, ret_short_bps: np.ndarray) -> np.ndarray:
    """Gross return of each trade in bps: the long's own outcome for ``side`` +1, the short's for -1, 0 for 0."""
    side = np.asarray(side)
    long_, short = np.asarray(ret_long_bps, dtype=np.float64), np.asarray(ret_short_bps, dtype=np.float64)
    return np.where(side > 0, long_, np.where(side < 0, short, 0.0))


def trade_pnl_bps(
    side: np.ndarray, ret_long_bps: np.ndarray, ret_short_bps: np.ndarray, cost_bps: np.ndarray
) -> np.ndarray:
    """Net P&L of each trade in bps: ``ret_long_bps - cost_bps`` for a long, ``ret_short_bps - cost_bps`` for a
    short (each side's own outcome, never ``-ret_long_bps``)."""
    return side_return_bps(side, ret_long_bps, ret_short_bps) - np.asarray(cost_bps, dtype=np.float64)


def daily_returns(t1_of_trades: np.ndarray, pnl_bps: np.ndarray, first_day_ms: int, last_day_ms: int) -> np.ndarray:
    """One value per UTC calendar day from the day of ``first_day_ms`` to the day of ``last_day_ms`` (inclusive):
    the P&L (as a fraction) of the trades that exited that day, 0 on days without exits."""
    first, last = int(first_day_ms) // DAY_MS, int(last_day_ms) // DAY_MS
    if last < first:
        raise ValueError(f"last_day_ms {last_day_ms} is before first_day_ms {first_day_ms}")
    days = np.asarray(t1_of_trades, dtype=np.int64) // DAY_MS
    pnl = np.asarray(pnl_bps, dtype=np.float64)
    if days.shape != pnl.shape:
        raise ValueError(f"t1_of_trades and pnl_bps must have the same shape, got {days.shape} and {pnl.shape}")
    if days.size and (days.min() < first or days.max() > last):
        raise ValueError("a trade exits outside the day range [first_day_ms, last_day_ms]")
    return np.bincount(days - first, weights=pnl, minlength=last - first + 1) / 1e4


# ----------------------------------------------------------------------------------------------- performance
def _series(daily: np.ndarray) -> np.ndarray:
    daily = np.asarray(daily, dtype=np.float64)
    if daily.ndim != 1:
        raise ValueError(f"the daily series must be 1-D, got shape {daily.shape}")
    return daily


def sharpe(daily: np.ndarray, periods_per_year: float = PERIODS_PER_YEAR) -> float:
    """Sharpe ratio ``mean / std (ddof 1) x sqrt(periods_per_year)``; NaN for < 2 values or a constant series.

    ``periods_per_year=1`` gives the per-period Sharpe ratio used by PSR and DSR.
    """
    daily = _series(daily)
    if daily.size < 2 or np.all(daily == daily[0]):
        return math.nan
    return float(daily.mean() / daily.std(ddof=1) * math.sqrt(periods_per_year))


def probabilistic_sharpe_ratio(daily: np.ndarray, sr_benchmark: float = 0.0) -> float:
    """PSR (Bailey & López de Prado 2012): the probability that the true per-period Sharpe exceeds
    ``sr_benchmark`` (per period), given the series' length, skewness and (non-excess) kurtosis:
    ``Φ((SR - SR*) sqrt(n - 1) / sqrt(1 - γ3 SR + (γ4 - 1) / 4 SR²))``. NaN where the Sharpe is undefined."""
    daily = _series(daily)
    sr = sharpe(daily, periods_per_year=1.0)
    if math.isnan(sr) or math.isnan(sr_benchmark):
        return math.nan
    dev = daily - daily.mean()
    m2 = float(np.mean(dev**2))
    skew = float(np.mean(dev**3)) / m2**1.5
    kurt = float(np.mean(dev**4)) / m2**2
    radicand = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    if not radicand > 0.0:
        return math.nan
    return norm_cdf((sr - sr_benchmark) * math.sqrt(daily.size - 1) / math.sqrt(radicand))


def expected_max_sharpe(n_trials: int, trials_sharpe_var: float) -> float:
    """DSR benchmark ``SR0 = sqrt(V) ((1 - γ) Φ⁻¹(1 - 1/N) + γ Φ⁻¹(1 - 1/(N e)))``: the expected best per-period
    Sharpe of ``N`` unskilled trials whose Sharpes vary with variance ``V``; 0 for ``N == 1``."""
    if not _is_count(n_trials) or n_trials < 1:
        raise ValueError(f"n_trials must be an int >= 1, got {n_trials!r}")
    if math.isnan(trials_sharpe_var):
        return math.nan
    if trials_sharpe_var < 0:
        raise ValueError(f"trials_sharpe_var must be >= 0, got {trials_sharpe_var!r}")
    if n_trials == 1:
        return 0.0
    z = (1.0 - EULER_GAMMA) * norm_ppf(1.0 - 1.0 / n_trials) + EULER_GAMMA * norm_ppf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(trials_sharpe_var) * z


def null_sharpe_var(n_days: int) -> float:
    """``1 / (T - 1)``: the sampling variance of the per-period Sharpe ratio of ``T`` daily returns of a strategy
    with no edge (the ``sqrt(n - 1)`` of the PSR); the spread that unskilled trials show by luck alone, so a floor
    under any estimate of the trials' Sharpe variance. NaN for ``T < 2``."""
    if not _is_count(n_days) or n_days < 0:
        raise ValueError(f"n_days must be an int >= 0, got {n_days!r}")
    return 1.0 / (n_days - 1) if n_days >= 2 else math.nan


def deflated_sharpe_ratio(daily: np.ndarray, n_trials: int, trials_sharpe_var: float) -> float:
    """DSR (Bailey & López de Prado 2014): the PSR against the expected maximum Sharpe of ``n_trials`` unskilled
    trials, ``expected_max_sharpe(n_trials, trials_sharpe_var)``. ``trials_sharpe_var`` is the variance of the
    trials' *per-period* Sharpe ratios (annualized Sharpe variance / 365). Equals ``PSR(0)`` for one trial."""
    return probabilistic_sharpe_ratio(daily, expected_max_sharpe(n_trials, float(trials_sharpe_var)))


def max_drawdown(daily: np.ndarray) -> float:
    """Largest peak-to-trough fall of the compounded equity ``prod(1 + r)`` (starting at 1), as a positive fraction."""
    daily = _series(daily)
    if daily.size == 0:
        return 0.0
    equity = np.concatenate(([1.0], np.cumprod(1.0 + daily)))
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak))


def turnover(sides: np.ndarray, n_days: int) -> float:
    """Position changes per day: each trade is one entry and one exit, ``2 x len(sides) / n_days``."""
    if n_days <= 0:
        return math.nan
    return 2.0 * np.asarray(sides).size / n_days


def _is_count(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


# ----------------------------------------------------------------------------------------------- bundles
def metrics_from_trades(
    side: np.ndarray,
    gross_bps: np.ndarray,
    cost_parts_bps: np.ndarray,
    t1: np.ndarray,
    first_day_ms: int,
    last_day_ms: int,
    *,
    n_trials: int = 1,
    trials_sharpe_var: float = 0.0,
) -> dict[str, float]:
    """The trading metrics of given trades: ``side``, ``gross_bps`` (each trade's return from its own side's
    outcome, :func:`side_return_bps`), ``cost_parts_bps`` (each trade's cost by part, shape ``(k,
    len(COST_PARTS))``: :meth:`TradeCosts.of_trades`) and ``t1`` (the exit of the side taken) per trade.

    Per trade, side by side: ``gross_bps_per_trade``, ``<part>_bps_per_trade`` for each of ``COST_PARTS``,
    ``cost_bps_per_trade`` (their sum) and ``net_bps_per_trade`` (gross - cost)."""
    side = np.asarray(side, dtype=np.float64)
    gross = np.asarray(gross_bps, dtype=np.float64)
    parts = np.asarray(cost_parts_bps, dtype=np.float64)
    if gross.shape != side.shape or parts.shape != (side.size, len(COST_PARTS)):
        raise ValueError(f"gross_bps must have one value and cost_parts_bps one row of {COST_PARTS} per trade")
    cost = _total(parts)
    pnl = gross - cost
    daily = daily_returns(t1, pnl, first_day_ms, last_day_ms)
    has = side.size > 0

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if has else math.nan

    return {
        "n_trades": int(side.size),
        "n_days": int(daily.size),
        "hit_rate": float(np.mean(pnl > 0)) if has else math.nan,
        "gross_bps_per_trade": mean(gross),
        **{f"{name}_bps_per_trade": mean(parts[:, c]) for c, name in enumerate(COST_PARTS)},
        "cost_bps_per_trade": mean(cost),
        "net_bps_per_trade": mean(pnl),
        "sharpe": sharpe(daily),
        "psr": probabilistic_sharpe_ratio(daily),
        "dsr": deflated_sharpe_ratio(daily, n_trials, trials_sharpe_var),
        "max_drawdown": max_drawdown(daily),
        "turnover_per_day": turnover(side, daily.size),
    }


def trading_metrics(
    t0: np.ndarray,
    t1: np.ndarray,
    p: np.ndarray,
    ret_long_bps: np.ndarray,
    costs: TradeCosts,
    threshold: float,
    *,
    ret_short_bps: np.ndarray,
    t1_short: np.ndarray,
    first_day_ms: int | None = None,
    last_day_ms: int | None = None,
    n_trials: int = 1,
    trials_sharpe_var: float = 0.0,
) -> dict[str, float]:
    """Select the trades of ``p`` (``select_trades``) and measure them: n_trades, n_days, hit_rate,
    gross / cost parts / cost / net bps per trade, sharpe (annualized), psr, dsr, max_drawdown, turnover_per_day.

    Each row's long and short trades are separate outcomes with separate costs: ``ret_long_bps`` closing at ``t1``,
    ``ret_short_bps`` at ``t1_short``, ``costs`` the round trip of each (:class:`TradeCosts`). The daily series
    spans ``first_day_ms`` .. ``last_day_ms`` (default: the first ``t0`` to the last exit of either side), so idle
    days count as zero-return days.
    """
    t0 = np.asarray(t0, dtype=np.int64)
    t1 = np.asarray(t1, dtype=np.int64)
    t1_short = np.asarray(t1_short, dtype=np.int64)
    if t0.size == 0:
        raise ValueError("trading_metrics needs at least one row")
    ret_long = np.asarray(ret_long_bps, dtype=np.float64)
    ret_short = np.asarray(ret_short_bps, dtype=np.float64)
    if not isinstance(costs, TradeCosts):
        raise TypeError(f"costs must be TradeCosts (each side's round trip by part), got {type(costs).__name__}")
    if any(a.shape != t0.shape for a in (ret_long, ret_short, t1_short)) or len(costs) != t0.size:
        raise ValueError("ret_long_bps, ret_short_bps, costs and t1_short must have one value per row")
    first = int(t0.min()) if first_day_ms is None else first_day_ms
    last = max(int(t1.max()), int(t1_short.max())) if last_day_ms is None else last_day_ms
    idx, side = select_trades(t0, t1, p, threshold, t1_short)
    return metrics_from_trades(
        side,
        side_return_bps(side, ret_long[idx], ret_short[idx]),
        costs.of_trades(idx, side),
        np.where(side > 0, t1[idx], t1_short[idx]),
        first,
        last,
        n_trials=n_trials,
        trials_sharpe_var=trials_sharpe_var,
    )
