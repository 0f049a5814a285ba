"""Promotion gates: should a challenger replace the champion of a coin? A pure decision over shadow results.

Both models paper-trade the SAME unseen bars (the shadow window); :func:`decide` compares their results and
returns a :class:`Decision` whose ``gates`` record every check (``passed``, ``value``, ``threshold``, JSON-ready).
All of these must hold to promote:

1. ``kill_switch``: neither the challenger's nor the champion's drawdown over the window exceeds
   ``kill_switch_drawdown``. A breach sets ``Decision.kill_switch`` (promotions stop for the coin until a human
   looks) and never promotes.
2. ``canaries``: the challenger's walk-forward leakage canaries passed.
3. ``min_trades``: the challenger closed at least ``min_trades`` trades (no flips on tiny samples).
4. ``max_drawdown``: the challenger's drawdown is at most ``max_drawdown``.
5. ``dsr``: the deflated Sharpe ratio of the challenger's daily returns is at least ``min_dsr``.
6. the edge, as a one-sided lower confidence bound on net bps per trade:

   - ``absolute_edge`` (no champion yet): ``mean - t_q(n-1) s / sqrt(n)`` must exceed ``first_min_net_bps``;
   - ``champion_margin`` (a champion exists): the Welch bound
     ``(mean_c - mean_k) - t_q(df) sqrt(s_c²/n_c + s_k²/n_k)`` (Welch–Satterthwaite ``df``) must exceed
     ``margin_bps``. A champion with fewer than 2 trades has no variance to speak of: the challenger is then
     compared with 0 net bps (a one-sample bound), and the gate and reason say so.

   ``t_q`` is Student's t quantile at ``confidence`` (exact, via the regularized incomplete beta function), so
   small samples pay for their uncertainty; for large samples it is the normal bound.

Drawdowns are the larger of the reported ``max_drawdown`` (which may be measured intrabar) and the drawdown of
the daily returns. The DSR's trials: ``dsr_trials`` daily retests on overlapping windows. The variance of the
trials' per-period Sharpe ratios is unknown here, so it defaults to the variance of a Sharpe estimate under
the null (zero true Sharpe), ``1 / (n_days - 1)`` per day, the same ``sqrt(n - 1)`` scale the PSR uses: the DSR
is then about ``Φ(t_SR - E[max of N standard normals])`` with ``t_SR = SR sqrt(n - 1)``. This is conservative
(retests of overlapping windows are correlated, their Sharpes vary less); ``PromotionSpec.trials_sharpe_var``
overrides it when the caller has the retests' Sharpes.

Pure: numpy and math only, deterministic, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from huracan_assets.core.validation.metrics import deflated_sharpe_ratio, max_drawdown, norm_ppf

GATE_ORDER = ("kill_switch", "canaries", "min_trades", "max_drawdown", "dsr", "absolute_edge", "champion_margin")


# --------------------------------------------------------------------------------------------- inputs
def _finite_1d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    arr = arr.copy()
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class ShadowStats:
    """One model's paper trading over the shadow window."""

    model_id: str
    trade_net_bps: np.ndarray  # net bps of each closed trade, in time order
    daily_returns: np.ndarray  # per-day equity returns over the window (fractions)
    max_drawdown: float  # positive fraction
    canaries_passed: bool  # from the model's walk-forward report
    trained_until_ms: int  # the model's training cutoff
    compared_from_ms: int  # first bar these stats cover

    def __post_init__(self) -> None:
        if not isinstance(self.model_id, str) or not self.model_id:
            raise ValueError("model_id must be a non-empty string")
        object.__setattr__(self, "trade_net_bps", _finite_1d("trade_net_bps", self.trade_net_bps))
        object.__setattr__(self, "daily_returns", _finite_1d("daily_returns", self.daily_returns))
        dd = float(self.max_drawdown)
        if not 0.0 <= dd <= 1.0:
            raise ValueError(f"max_drawdown must be a fraction in [0, 1], got {self.max_drawdown!r}")
        object.__setattr__(self, "max_drawdown", dd)
        object.__setattr__(self, "canaries_passed", bool(self.canaries_passed))
        for name in ("trained_until_ms", "compared_from_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise ValueError(f"{name} must be an int (epoch ms), got {value!r}")
            object.__setattr__(self, name, int(value))

    @property
    def n_trades(self) -> int:
        return int(self.trade_net_bps.size)

    @property
    def n_days(self) -> int:
        return int(self.daily_returns.size)

    def drawdown(self) -> float:
        """The larger of the reported drawdown and the drawdown of the daily returns."""
        return max(self.max_drawdown, max_drawdown(self.daily_returns))


@dataclass(frozen=True)
class PromotionSpec:
    min_trades: int = 20  # no flips on tiny samples
    margin_bps: float = 2.0  # challenger net bps/trade must beat the champion's by this ...
    confidence: float = 0.90  # ... with this one-sided confidence (lower bound of the difference minus margin > 0)
    min_dsr: float = 0.5  # deflated Sharpe of the challenger's daily returns
    dsr_trials: int = 30  # daily retests on overlapping windows = multiple testing
    max_drawdown: float = 0.25
    first_min_net_bps: float = 0.0  # absolute gate for the first champion (same confidence bound)
    kill_switch_drawdown: float = 0.35  # a drawdown past this stops promotions for the coin
    trials_sharpe_var: float | None = None  # per-day variance of the trials' Sharpes; None: 1 / (n_days - 1)

    def __post_init__(self) -> None:
        if isinstance(self.min_trades, bool) or not isinstance(self.min_trades, int) or self.min_trades < 2:
            raise ValueError(
                f"min_trades must be an int >= 2 (a confidence bound needs 2 trades), got {self.min_trades!r}"
            )
        if isinstance(self.dsr_trials, bool) or not isinstance(self.dsr_trials, int) or self.dsr_trials < 1:
            raise ValueError(f"dsr_trials must be an int >= 1, got {self.dsr_trials!r}")
        if not 0.5 <= self.confidence < 1.0:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence!r}")
        for name in ("margin_bps", "min_dsr", "first_min_net_bps"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite")
        for name in ("max_drawdown", "kill_switch_drawdown"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a fraction in (0, 1], got {getattr(self, name)!r}")
        if self.trials_sharpe_var is not None and not (
            math.isfinite(self.trials_sharpe_var) and self.trials_sharpe_var >= 0
        ):
            raise ValueError(f"trials_sharpe_var must be None or finite >= 0, got {self.trials_sharpe_var!r}")


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str  # one line a human reads: which gate decided
    gates: dict[str, dict]  # every gate: {"passed": bool, "value": ..., "threshold": ...} (+ details)
    kill_switch: bool


# --------------------------------------------------------------------------------------------- Student t
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(x: float, df: float) -> float:
    """Student's t CDF with ``df`` (> 0, may be fractional) degrees of freedom."""
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df!r}")
    x2 = x * x
    if x2 < df:  # the central mass, from x² / (df + x²) computed directly (no 1 - ~1 cancellation at large df)
        tail = 0.5 - 0.5 * _betainc(0.5, df / 2.0, x2 / (df + x2))
    else:
        tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + x2))
    return 1.0 - tail if x >= 0 else tail


def t_ppf(q: float, df: float) -> float:
    """Student's t quantile for ``q`` in [0.5, 1): bisection on :func:`t_cdf`, or for df > 1e4 (where lgamma
    cancellation limits the CDF) the Cornish–Fisher expansion in 1/df (Abramowitz & Stegun 26.7.5)."""
    if not 0.5 <= q < 1.0:
        raise ValueError(f"t_ppf needs q in [0.5, 1), got {q!r}")
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df!r}")
    if df > 1e4:
        z = norm_ppf(q)
        g1 = (z**3 + z) / 4.0
        g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96.0
        g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0
        g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160.0
        return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    lo, hi = 0.0, max(1.0, 2.0 * norm_ppf(q))
    while t_cdf(hi, df) < q:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * hi:
            break
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------------------- bounds
def _mean_var(x: np.ndarray) -> tuple[float, float]:
    """Mean and variance of the mean (``s² / n``, ddof 1)."""
    return float(x.mean()), float(x.var(ddof=1)) / x.size


def lower_bound_one_sample(x: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """One-sided lower bound of the mean of ``x`` (Student t, ``n - 1`` df): (bound, mean, t quantile).
    NaN bound for fewer than 2 values."""
    if x.size < 2:
        return math.nan, float(x.mean()) if x.size else math.nan, math.nan
    mean, var_mean = _mean_var(x)
    q = t_ppf(confidence, x.size - 1)
    return mean - q * math.sqrt(var_mean), mean, q


def welch_lower_bound(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """One-sided Welch lower bound of ``mean(a) - mean(b)``: (bound, Welch–Satterthwaite df, t quantile).
    Both samples need 2 values; when both are constant the bound is the difference itself."""
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan, math.nan
    mean_a, va = _mean_var(a)
    mean_b, vb = _mean_var(b)
    diff = mean_a - mean_b
    se2 = va + vb
    if se2 == 0.0:
        return diff, math.inf, norm_ppf(confidence)
    df = se2 * se2 / (va * va / (a.size - 1) + vb * vb / (b.size - 1))
    q = t_ppf(confidence, df)
    return diff - q * math.sqrt(se2), df, q


# --------------------------------------------------------------------------------------------- gates
def _num(value: float | int | None) -> float | int | None:
    """A JSON-ready number: NaN and ±inf become None."""
    if value is None:
        return None
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def _gate(passed: bool, value: Any, threshold: Any, detail: str, **extra: Any) -> dict[str, Any]:
    gate = {"passed": bool(passed), "value": value, "threshold": threshold, "detail": detail}
    gate.update({k: _num(v) for k, v in extra.items()})
    return gate


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def _kill_switch_gate(challenger: ShadowStats, champion: ShadowStats | None, spec: PromotionSpec) -> dict:
    worst, whose = challenger.drawdown(), f"challenger {challenger.model_id}"
    if champion is not None and champion.drawdown() > worst:
        worst, whose = champion.drawdown(), f"champion {champion.model_id}"
    tripped = worst > spec.kill_switch_drawdown
    detail = f"{whose} drawdown {worst:.1%} {'>' if tripped else '<='} {spec.kill_switch_drawdown:.1%}"
    if tripped:
        detail += ": promotions stopped for this coin"
    return _gate(not tripped, _num(worst), spec.kill_switch_drawdown, detail)


def _dsr_gate(challenger: ShadowStats, spec: PromotionSpec) -> dict:
    n = challenger.n_days
    var = spec.trials_sharpe_var if spec.trials_sharpe_var is not None else (1.0 / (n - 1) if n >= 2 else math.nan)
    dsr = deflated_sharpe_ratio(challenger.daily_returns, spec.dsr_trials, var) if n >= 2 else math.nan
    passed = math.isfinite(dsr) and dsr >= spec.min_dsr
    detail = (
        f"DSR {_fmt(dsr, '.3f')} {'>=' if passed else 'not >='} {spec.min_dsr} over {n} days, {spec.dsr_trials} trials"
    )
    return _gate(passed, _num(dsr), spec.min_dsr, detail, n_days=n, trials=spec.dsr_trials, trials_sharpe_var=var)


def _absolute_edge_gate(challenger: ShadowStats, spec: PromotionSpec) -> dict:
    bound, mean, q = lower_bound_one_sample(challenger.trade_net_bps, spec.confidence)
    passed = math.isfinite(bound) and bound > spec.first_min_net_bps
    detail = (
        f"first champion: mean {_fmt(mean)} net bps/trade over {challenger.n_trades} trades, "
        f"{spec.confidence:.0%} lower bound {_fmt(bound)} {'>' if passed else 'not >'} {spec.first_min_net_bps}"
    )
    return _gate(passed, _num(bound), spec.first_min_net_bps, detail, mean_bps=mean, t_quantile=q)


def _margin_gate(challenger: ShadowStats, champion: ShadowStats, spec: PromotionSpec) -> dict:
    c = challenger.trade_net_bps
    mean_c = float(c.mean()) if c.size else math.nan
    if champion.n_trades < 2:
        bound, _, q = lower_bound_one_sample(c, spec.confidence)
        mean_k, df = 0.0, c.size - 1.0
        against = f"0 net bps (champion {champion.model_id} has {champion.n_trades} trade(s) < 2)"
    else:
        bound, df, q = welch_lower_bound(c, champion.trade_net_bps, spec.confidence)
        mean_k = float(champion.trade_net_bps.mean())
        against = f"champion {champion.model_id} ({_fmt(mean_k)} bps/trade, {champion.n_trades} trades)"
    passed = math.isfinite(bound) and bound > spec.margin_bps
    detail = (
        f"challenger {_fmt(mean_c)} bps/trade ({challenger.n_trades} trades) vs {against}: "
        f"{spec.confidence:.0%} lower bound of the gain {_fmt(bound)} {'>' if passed else 'not >'} "
        f"margin {spec.margin_bps}"
    )
    return _gate(
        passed, _num(bound), spec.margin_bps, detail, mean_bps=mean_c, baseline_bps=mean_k, df=df, t_quantile=q
    )


def _check_window(stats: ShadowStats, role: str) -> None:
    if stats.compared_from_ms < stats.trained_until_ms:
        raise ValueError(
            f"{role} {stats.model_id}: its stats start at {stats.compared_from_ms}, before its training cutoff "
            f"{stats.trained_until_ms}; cut them to the bars after the cutoff"
        )


def decide(challenger: ShadowStats, champion: ShadowStats | None, spec: PromotionSpec) -> Decision:
    """Promote ``challenger`` over ``champion`` (None: the coin has no champion yet)? See the module docstring.

    Raises ValueError when a model's stats cover bars before its own training cutoff (in-sample bars).
    """
    _check_window(challenger, "challenger")
    if champion is not None:
        _check_window(champion, "champion")
    dd = challenger.drawdown()
    gates = {
        "kill_switch": _kill_switch_gate(challenger, champion, spec),
        "canaries": _gate(
            challenger.canaries_passed,
            challenger.canaries_passed,
            True,
            "walk-forward canaries " + ("passed" if challenger.canaries_passed else "FAILED (possible leakage)"),
        ),
        "min_trades": _gate(
            challenger.n_trades >= spec.min_trades,
            challenger.n_trades,
            spec.min_trades,
            f"{challenger.n_trades} trades {'>=' if challenger.n_trades >= spec.min_trades else '<'} {spec.min_trades}",
        ),
        "max_drawdown": _gate(
            dd <= spec.max_drawdown,
            _num(dd),
            spec.max_drawdown,
            f"drawdown {dd:.1%} {'<=' if dd <= spec.max_drawdown else '>'} {spec.max_drawdown:.1%}",
        ),
        "dsr": _dsr_gate(challenger, spec),
    }
    if champion is None:
        gates["absolute_edge"] = _absolute_edge_gate(challenger, spec)
    else:
        gates["champion_margin"] = _margin_gate(challenger, champion, spec)
    kill = not gates["kill_switch"]["passed"]
    failed = [name for name in GATE_ORDER if name in gates and not gates[name]["passed"]]
    if kill:
        reason = f"kill switch: {gates['kill_switch']['detail']}"
    elif failed:
        also = f" (also failing: {', '.join(failed[1:])})" if len(failed) > 1 else ""
        reason = f"refused by {failed[0]}: {gates[failed[0]]['detail']}{also}"
    else:
        edge = "absolute_edge" if champion is None else "champion_margin"
        reason = f"promote {challenger.model_id}: all gates passed; {edge}: {gates[edge]['detail']}"
    return Decision(promote=not failed, reason=reason, gates=gates, kill_switch=kill)
