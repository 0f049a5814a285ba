"""Promotion gates: should a challenger replace the champion of a coin? A pure decision over shadow results.

Both models paper-trade the SAME unseen bars (the shadow window). :func:`decide_day` decides every coin of a day
together (the asset's pass 2, once all coins have their shadow stats); :func:`decide` is one coin alone. Each
:class:`Decision`'s ``gates`` record every check (``passed``, ``value``, ``threshold``, JSON-ready). All of these
must hold to promote:

1. ``kill_switch``: neither the challenger's nor the champion's drawdown over the window exceeds
   ``kill_switch_drawdown``. A breach sets ``Decision.kill_switch`` (promotions stop for the coin until a human
   looks) and never promotes.
2. ``canaries``: the challenger's walk-forward leakage canaries passed.
3. ``min_trades``: the challenger closed at least ``min_trades`` trades (no flips on tiny samples).
4. ``max_drawdown``: the challenger's drawdown is at most ``max_drawdown``.
5. ``dsr``: the deflated Sharpe ratio of the challenger's daily returns is at least ``min_dsr``, with
   ``N = dsr_trials x trial`` trials: ``dsr_trials`` variants behind each retest, times the coin's retests since
   its last promotion (``Candidate.trial``, counted in the champion pointer).
6. the edge, a one-sided Student t test on net bps per trade, at the coin's retest level (below):

   - ``absolute_edge`` (no champion yet): H0 ``mean <= first_min_net_bps``, ``t = (mean - first_min) / (s / sqrt(n))``
     with ``n - 1`` df;
   - ``champion_margin`` (a champion exists): Welch, H0 ``mean_c - mean_k <= margin_bps``,
     ``t = (mean_c - mean_k - margin) / sqrt(s_c²/n_c + s_k²/n_k)`` with Welch–Satterthwaite df. A champion with
     fewer than 2 trades has no variance to speak of: the challenger is then compared with 0 net bps (a
     one-sample test), and the gate and reason say so.

   It passes when its p-value is at most the retest level ``min(1 - confidence, alpha g_k)`` (alpha spending over
   the coin's retests, :mod:`huracan_assets.core.promotion.multiplicity`); ``value`` is the lower confidence
   bound at that level (``estimate - t_{1 - level}(df) se``), which then exceeds the threshold.
7. ``fdr``: Benjamini–Hochberg at ``fdr_q`` across the coins decided together, each coin's threshold capped at
   its retest level; a coin refused by another gate enters with p = 1 (every coin of the day counts in m). The
   gate records the p-value, the level the coin was tested at today (``threshold``), m, the rejections and rank.

With ``alpha=None`` every retest runs at ``1 - confidence`` and with ``fdr_q=None`` there is no ``fdr`` gate:
with ``trial=1`` that is the rule before retests were counted (kept to measure it, e.g. the benchmark
``bench_promotion_null``); the defaults control both (see multiplicity.py for the guarantees and references).

Drawdowns are the larger of the reported ``max_drawdown`` (which may be measured intrabar) and the drawdown of
the daily returns. The DSR (Bailey & López de Prado 2014): the variance of the trials' per-period Sharpe ratios
is unknown here, so it defaults to the variance of a Sharpe estimate under the null (zero true Sharpe),
``1 / (n_days - 1)`` per day, the same ``sqrt(n - 1)`` scale the PSR uses: the DSR is then about
``Φ(t_SR - E[max of N standard normals])`` with ``t_SR = SR sqrt(n - 1)``. This is conservative (retests of
overlapping windows are correlated, their Sharpes vary less); ``PromotionSpec.trials_sharpe_var`` overrides it
when the caller has the retests' Sharpes. The DSR alone is no error bound over an unbounded sequence of retests
(its false-pass chance falls like 1/N, whose sum diverges): the edge test's spending is.

Pure: numpy, math and scipy (the Student t and normal laws), deterministic, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from scipy import special

from huracan_assets.core.promotion.multiplicity import StepUp, bh_step_up, retest_level
from huracan_assets.core.validation.metrics import deflated_sharpe_ratio, max_drawdown, norm_ppf

GATE_ORDER = (
    "kill_switch",
    "canaries",
    "min_trades",
    "max_drawdown",
    "dsr",
    "absolute_edge",
    "champion_margin",
    "fdr",
)
K = TypeVar("K", bound=Hashable)


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
    confidence: float = 0.90  # ... with at least this one-sided confidence in any single retest (level <= 1 - it)
    min_dsr: float = 0.5  # deflated Sharpe of the challenger's daily returns
    dsr_trials: int = 30  # strategy variants behind one retest; the DSR's N = dsr_trials x retests since promotion
    max_drawdown: float = 0.25
    first_min_net_bps: float = 0.0  # absolute gate for the first champion (same test)
    kill_switch_drawdown: float = 0.35  # a drawdown past this stops promotions for the coin
    trials_sharpe_var: float | None = None  # per-day variance of the trials' Sharpes; None: 1 / (n_days - 1)
    alpha: float | None = 0.05  # per coin: P(false promotion over all retests since its last promotion) <= alpha
    spending_half_tests: float = 30.0  # half of alpha is spent over the first this-many retests
    fdr_q: float | None = 0.10  # Benjamini-Hochberg level across the coins decided together (None: no BH)

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
        if self.alpha is not None and not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be None or in (0, 1), got {self.alpha!r}")
        if not (math.isfinite(self.spending_half_tests) and self.spending_half_tests > 0):
            raise ValueError(f"spending_half_tests must be finite and > 0, got {self.spending_half_tests!r}")
        if self.fdr_q is not None and not 0.0 < self.fdr_q <= 1.0:
            raise ValueError(f"fdr_q must be None or in (0, 1], got {self.fdr_q!r}")

    def level(self, trial: int) -> float:
        """The level of the coin's retest number ``trial`` since its last promotion."""
        ceiling = 1.0 - self.confidence
        if self.alpha is None:
            return ceiling
        return retest_level(trial, self.alpha, self.spending_half_tests, ceiling)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str  # one line a human reads: which gate decided
    gates: dict[str, dict]  # every gate: {"passed": bool, "value": ..., "threshold": ...} (+ details)
    kill_switch: bool


def _check_window(stats: ShadowStats, role: str) -> None:
    if stats.compared_from_ms < stats.trained_until_ms:
        raise ValueError(
            f"{role} {stats.model_id}: its stats start at {stats.compared_from_ms}, before its training cutoff "
            f"{stats.trained_until_ms}; cut them to the bars after the cutoff"
        )


@dataclass(frozen=True)
class Candidate:
    """One coin of the day: its challenger, its champion (None: no champion yet) and ``trial``, the number of
    this retest since the coin's last promotion (1 = the first; ``multiplicity.next_trial``).

    Raises ValueError when a model's stats cover bars before its own training cutoff (in-sample bars)."""

    challenger: ShadowStats
    champion: ShadowStats | None = None
    trial: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.trial, bool) or not isinstance(self.trial, int | np.integer) or self.trial < 1:
            raise ValueError(f"trial must be an int >= 1, got {self.trial!r}")
        object.__setattr__(self, "trial", int(self.trial))
        _check_window(self.challenger, "challenger")
        if self.champion is not None:
            _check_window(self.champion, "champion")


# --------------------------------------------------------------------------------------------- Student t
# The ufuncs ``scipy.stats.t`` evaluates (``cdf = stdtr(df, x)``, ``isf = -stdtrit(df, p)``), called directly: the
# ``scipy.stats`` front end costs ~100 µs per scalar call and the promotion benchmark makes hundreds of thousands.
def _check_df(df: float) -> None:
    if not df > 0:
        raise ValueError(f"df must be > 0, got {df!r}")


def t_cdf(x: float, df: float) -> float:
    """Student's t CDF with ``df`` (> 0, may be fractional or inf) degrees of freedom (``scipy.stats.t.cdf``);
    ``t_cdf(-x, df)`` is the upper tail ``P(T > x)`` with full relative precision."""
    _check_df(df)
    return float(special.stdtr(df, x))


def t_isf(p: float, df: float) -> float:
    """Student's t inverse survival function: the ``x`` with ``P(T > x) = p``, for ``p`` in (0, 0.5]
    (``scipy.stats.t.isf``). Small ``p`` (a strict retest level) keeps its full relative precision."""
    if not 0.0 < p <= 0.5:
        raise ValueError(f"t_isf needs p in (0, 0.5], got {p!r}")
    _check_df(df)
    return 0.0 if p == 0.5 else float(-special.stdtrit(df, p))


def t_ppf(q: float, df: float) -> float:
    """Student's t quantile for ``q`` in [0.5, 1): ``t_isf(1 - q, df)``."""
    if not 0.5 <= q < 1.0:
        raise ValueError(f"t_ppf needs q in [0.5, 1), got {q!r}")
    _check_df(df)
    return 0.0 if q == 0.5 else t_isf(1.0 - q, df)


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


@dataclass(frozen=True)
class EdgeTest:
    """The one-sided t test of the edge: H0 ``estimate <= threshold`` (bps per trade)."""

    gate: str  # "absolute_edge" or "champion_margin"
    estimate: float  # mean (first champion) or the difference of means (vs the champion); NaN: undefined
    se: float  # its standard error
    df: float  # Student / Welch–Satterthwaite degrees of freedom (inf when both samples are constant)
    threshold: float
    n_trades: int  # the challenger's
    mean_bps: float  # the challenger's mean
    baseline_bps: float | None  # the champion's mean (0 when it has < 2 trades); None for a first champion
    against: str  # for the detail line

    @property
    def p_value(self) -> float:
        """``P(T >= t)`` under H0, ``t = (estimate - threshold) / se``; NaN when undefined (< 2 trades)."""
        if not math.isfinite(self.estimate) or not math.isfinite(self.se):
            return math.nan
        diff = self.estimate - self.threshold
        if self.se == 0.0:
            return 0.0 if diff > 0 else 1.0
        if math.isinf(self.df):
            return 0.5 * math.erfc(diff / self.se / math.sqrt(2.0))
        return t_cdf(-diff / self.se, self.df)

    def quantile(self, level: float) -> float:
        """``t_{1 - level}(df)``: the bound at this level is ``estimate - quantile * se``."""
        if not math.isfinite(self.df):
            return -norm_ppf(level) if math.isinf(self.df) else math.nan
        return t_isf(level, self.df)

    def bound(self, level: float) -> float:
        if not math.isfinite(self.estimate) or not math.isfinite(self.se):
            return math.nan
        return self.estimate if self.se == 0.0 else self.estimate - self.quantile(level) * self.se


def _one_sample(x: np.ndarray) -> tuple[float, float, float]:
    """(mean, standard error, df), NaN for fewer than 2 values."""
    if x.size < 2:
        return (float(x.mean()) if x.size else math.nan), math.nan, math.nan
    mean, var_mean = _mean_var(x)
    return mean, math.sqrt(var_mean), float(x.size - 1)


def edge_test(challenger: ShadowStats, champion: ShadowStats | None, spec: PromotionSpec) -> EdgeTest:
    """The edge test of :func:`decide_day`: absolute for a first champion, Welch against the champion."""
    c, n = challenger.trade_net_bps, challenger.n_trades
    if champion is None:
        mean, se, df = _one_sample(c)
        return EdgeTest("absolute_edge", mean, se, df, spec.first_min_net_bps, n, mean, None, "")
    if champion.n_trades < 2:
        mean, se, df = _one_sample(c)
        against = f"0 net bps (champion {champion.model_id} has {champion.n_trades} trade(s) < 2)"
        return EdgeTest("champion_margin", mean, se, df, spec.margin_bps, n, mean, 0.0, against)
    mean_c = float(c.mean()) if c.size else math.nan
    k = champion.trade_net_bps
    mean_k = float(k.mean())
    against = f"champion {champion.model_id} ({_fmt(mean_k)} bps/trade, {champion.n_trades} trades)"
    se, df = math.nan, math.nan
    if n >= 2:
        va, vb = _mean_var(c)[1], _mean_var(k)[1]
        se2 = va + vb
        se = math.sqrt(se2)
        df = math.inf if se2 == 0.0 else se2 * se2 / (va * va / (n - 1) + vb * vb / (k.size - 1))
    return EdgeTest("champion_margin", mean_c - mean_k, se, df, spec.margin_bps, n, mean_c, mean_k, against)


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


def _dsr_gate(challenger: ShadowStats, spec: PromotionSpec, trial: int) -> dict:
    n = challenger.n_days
    trials = spec.dsr_trials * trial
    var = spec.trials_sharpe_var if spec.trials_sharpe_var is not None else (1.0 / (n - 1) if n >= 2 else math.nan)
    dsr = deflated_sharpe_ratio(challenger.daily_returns, trials, var) if n >= 2 else math.nan
    passed = math.isfinite(dsr) and dsr >= spec.min_dsr
    detail = (
        f"DSR {_fmt(dsr, '.3f')} {'>=' if passed else 'not >='} {spec.min_dsr} over {n} days, {trials} trials "
        f"({spec.dsr_trials} per retest x retest {trial})"
    )
    return _gate(passed, _num(dsr), spec.min_dsr, detail, n_days=n, trials=trials, trial=trial, trials_sharpe_var=var)


def _edge_gate(test: EdgeTest, spec: PromotionSpec, trial: int) -> dict:
    level = spec.level(trial)
    p = test.p_value
    bound = test.bound(level)
    passed = math.isfinite(p) and p <= level
    conf = f"{1 - level:.4%} lower bound {_fmt(bound)} {'>' if passed else 'not >'}"
    head = f"retest {trial} since the last promotion: p = {_fmt(p, '.3g')} {'<=' if passed else 'not <='} "
    head += f"level {level:.3g}"
    if test.gate == "absolute_edge":
        detail = (
            f"first champion: mean {_fmt(test.mean_bps)} net bps/trade over {test.n_trades} trades, {head}; "
            f"{conf} {test.threshold}"
        )
        extra = {}
    else:
        detail = f"challenger {_fmt(test.mean_bps)} bps/trade vs {test.against}: {head}; {conf} margin {test.threshold}"
        extra = {"baseline_bps": test.baseline_bps, "df": test.df}
    return _gate(
        passed,
        _num(bound),
        test.threshold,
        detail,
        mean_bps=test.mean_bps,
        **extra,
        t_quantile=test.quantile(level) if math.isfinite(test.se) else math.nan,
        p_value=p,
        trial=trial,
        level=level,
    )


def _coin_gates(candidate: Candidate, spec: PromotionSpec) -> tuple[dict[str, dict], float | None]:
    """Every gate but ``fdr``, and the coin's p-value for the day's BH family: None (it enters as 1) when another
    gate refuses the coin, the edge test included (a p-value above its cap can never be rejected, so BH's outcome is
    the same either way)."""
    challenger, champion = candidate.challenger, candidate.champion
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
        "dsr": _dsr_gate(challenger, spec, candidate.trial),
    }
    test = edge_test(challenger, champion, spec)
    gates[test.gate] = _edge_gate(test, spec, candidate.trial)
    return gates, (test.p_value if all(g["passed"] for g in gates.values()) else None)


def _fdr_gate(p: float | None, bh: StepUp, i: int, cap: float) -> dict:
    rejected, threshold = bh.rejected[i], bh.thresholds[i]
    entered = "p = 1 (refused by another gate)" if p is None else f"p = {_fmt(p, '.3g')}"
    detail = (
        f"Benjamini-Hochberg over {bh.m} coin(s) at q = {bh.q}: {bh.rejections} rejection(s); {entered}, rank "
        f"{bh.ranks[i]}, {'<=' if rejected else 'not <='} level {threshold:.3g} = min(retest level {cap:.3g}, "
        f"q x {max(bh.rejections, 1)} / {bh.m})"
    )
    value = 1.0 if p is None else p
    gate = _gate(rejected, _num(value), _num(threshold), detail, coins=bh.m, rejections=bh.rejections,
                 rank=bh.ranks[i], q=bh.q)  # fmt: skip
    gate["tested"] = p is not None  # False: another gate refused the coin first, so BH is not why it failed
    return gate


def _decision(candidate: Candidate, gates: dict[str, dict]) -> Decision:
    kill = not gates["kill_switch"]["passed"]
    failed = [
        name for name in GATE_ORDER if name in gates and not gates[name]["passed"] and gates[name].get("tested", True)
    ]
    if kill:
        reason = f"kill switch: {gates['kill_switch']['detail']}"
    elif failed:
        also = f" (also failing: {', '.join(failed[1:])})" if len(failed) > 1 else ""
        reason = f"refused by {failed[0]}: {gates[failed[0]]['detail']}{also}"
    else:
        edge = "absolute_edge" if candidate.champion is None else "champion_margin"
        reason = f"promote {candidate.challenger.model_id}: all gates passed; {edge}: {gates[edge]['detail']}"
    return Decision(promote=not failed, reason=reason, gates=gates, kill_switch=kill)


def decide_day(candidates: Mapping[K, Candidate], spec: PromotionSpec) -> dict[K, Decision]:
    """Decide every coin of a day together: each coin's gates at its retest level, then Benjamini–Hochberg across
    all of them (``fdr``). See the module docstring and :mod:`huracan_assets.core.promotion.multiplicity`."""
    keys = list(candidates)
    coins = {key: _coin_gates(candidates[key], spec) for key in keys}
    if spec.fdr_q is not None and keys:
        caps = [spec.level(candidates[key].trial) for key in keys]
        family = [1.0 if coins[key][1] is None else coins[key][1] for key in keys]
        bh = bh_step_up(family, spec.fdr_q, caps)
        for i, key in enumerate(keys):
            gates, p = coins[key]
            gates["fdr"] = _fdr_gate(p, bh, i, caps[i])
    return {key: _decision(candidates[key], coins[key][0]) for key in keys}


def decide(challenger: ShadowStats, champion: ShadowStats | None, spec: PromotionSpec, trial: int = 1) -> Decision:
    """Promote ``challenger`` over ``champion`` (None: the coin has no champion yet)? One coin decided alone, at its
    retest number ``trial`` since its last promotion: :func:`decide_day` with one candidate (BH over m = 1).

    Raises ValueError when a model's stats cover bars before its own training cutoff (in-sample bars).
    """
    return decide_day({0: Candidate(challenger, champion, trial)}, spec)[0]
