"""Multiple testing of promotions: every coin is retested every day, and many coins are decided together.

Two families of tests, two controls (the gates in :mod:`huracan_assets.core.promotion.gates` apply them):

**Retests of one coin: alpha spending (a Bonferroni bound over an infinite sequence).** Each day a fresh challenger
of the coin is shadow-traded on ``[D - S, D]``, which shares all but one day with yesterday's window, and its edge
is tested again. Testing each retest at a fixed level (90% confidence) makes a false promotion of a zero-edge coin
a matter of time: in a year of daily retests almost every coin gets one. So the coin's retests are counted since
its last promotion (``trial`` k = 1, 2, ...; the count lives in the champion pointer, reset by a promotion) and
retest k is run at the level

    alpha_k = alpha * g_k,   g_k = F(k - 1) - F(k),   F(k) = h / (h + k)   (F(0) = 1, F(k) -> 0),

so ``sum_k alpha_k = alpha * (1 - F(K)) <= alpha`` after any number K of retests (the sum telescopes, no
truncation). ``F(k)`` is the share of alpha still unspent after k retests (an alpha-spending function in the
sense of Lan & DeMets 1983, with the retest count as information time); ``h`` (``spending_half_tests``) retests
spend half of it (``g_k = h / ((h + k - 1)(h + k))``: about ``1/h`` per retest early on, then ``~h / k^2``).
By the union (Bonferroni) bound, P(some retest of a zero-edge coin promotes it before its next promotion)
``<= sum_k alpha_k <= alpha`` whatever the dependence between retests: overlapping windows and near-identical
consecutive challengers make the retests strongly and unknowably correlated, and the bound needs no model of
that correlation (it is conservative because of it). This is the alpha-spending / alpha-wealth view of an
unbounded stream of tests (Foster & Stine 2008, alpha-investing, without reinvestment). A coin that never
had a pointer starts at k = 1.

**Coins of one day: Benjamini-Hochberg with per-coin caps.** On day D, m coins are decided together. Each
coin ``i`` has the one-sided p-value ``p_i`` of its edge test (set to 1 when another gate already refuses it),
and its cap ``c_i = alpha_k(i)`` from the spending above. The step-up

    r* = max{ r : #{ i : p_i <= min(c_i, q r / m) } >= r }   (0 if none),   reject { i : p_i <= min(c_i, q r* / m) }

is Benjamini & Hochberg (1995) at level ``q`` (``fdr_q``) when every cap is 1, and
``scipy.stats.false_discovery_control`` agrees with it. With caps, the rejected set is still *self-consistent*
(every rejected ``p_i <= q |R| / m``; here ``|R| = r*``) and shrinks when a p-value grows, which is what
Blanchard & Roquain (2008) need for ``FDR <= q m0 / m`` under independence or positive regression dependence
(PRDS; Benjamini & Yekutieli 2001) of the coins' p-values. And since every rejected ``p_i <= c_i``, the
per-coin bound above holds too: a coin is promoted only when it passes both.

References:
- Y. Benjamini, Y. Hochberg (1995), Controlling the false discovery rate: a practical and powerful approach to
  multiple testing. J. R. Stat. Soc. B 57(1), 289-300.
- Y. Benjamini, D. Yekutieli (2001), The control of the false discovery rate in multiple testing under
  dependency. Ann. Statist. 29(4), 1165-1188.
- G. Blanchard, E. Roquain (2008), Two simple sufficient conditions for FDR control. Electron. J. Statist. 2,
  963-992.
- K. K. G. Lan, D. L. DeMets (1983), Discrete sequential boundaries for clinical trials. Biometrika 70(3),
  659-663.
- D. P. Foster, R. A. Stine (2008), alpha-investing: a procedure for sequential control of expected false
  discoveries. J. R. Stat. Soc. B 70(2), 429-444.
- D. H. Bailey, M. López de Prado (2014), The deflated Sharpe ratio: correcting for selection bias, backtest
  overfitting and non-normality. J. Portfolio Management 40(5), 94-107 (the DSR gate's trials, see gates.py).

Caveats: a p-value is a valid level-alpha test conditionally on the past only approximately (yesterday's refusal
is informative about today's overlapping window); the union bound does not care, the FDR statement does. A coin
whose pointer chain breaks (a failed day, a pointer written before the count existed) restarts at k = 1.

Pure: numpy and math only, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


# ------------------------------------------------------------------------------------------------ the count
def _check_count(name: str, value: object, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    return int(value)


def next_trial(tests_since_promotion: int | None) -> int:
    """The number k of today's retest since the coin's last promotion: the pointer of D-1 holds how many retests
    were spent since then (0 right after a promotion); a coin without a previous pointer (None) starts at 1."""
    if tests_since_promotion is None:
        return 1
    return _check_count("tests_since_promotion", tests_since_promotion, 0) + 1


def retests_after(trial: int, promoted: bool) -> int:
    """What the pointer of D carries: 0 after a promotion (the next retest is number 1 against the new champion),
    else the retests spent so far, today's included."""
    _check_count("trial", trial, 1)
    return 0 if promoted else int(trial)


# ------------------------------------------------------------------------------------------------ spending
def unspent_share(tests: int, half_tests: float) -> float:
    """``F(k) = h / (h + k)``: the share of alpha not yet spent after ``tests`` retests."""
    _check_count("tests", tests, 0)
    if not (math.isfinite(half_tests) and half_tests > 0):
        raise ValueError(f"half_tests must be finite and > 0, got {half_tests!r}")
    return half_tests / (half_tests + tests)


def spending_weight(trial: int, half_tests: float) -> float:
    """``g_k = F(k - 1) - F(k) = h / ((h + k - 1)(h + k))``: the share of alpha retest ``k`` may spend
    (``sum_k g_k = 1``)."""
    k = _check_count("trial", trial, 1)
    unspent_share(0, half_tests)  # validates h
    return half_tests / ((half_tests + k - 1) * (half_tests + k))


def retest_level(trial: int, alpha: float, half_tests: float, ceiling: float = 1.0) -> float:
    """The level of retest ``trial``: ``min(ceiling, alpha * g_k)``; the levels of all retests sum to <= alpha."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    return min(float(ceiling), alpha * spending_weight(trial, half_tests))


# ------------------------------------------------------------------------------------------------ BH
@dataclass(frozen=True)
class StepUp:
    """The day's Benjamini-Hochberg outcome, one entry per coin in input order."""

    q: float
    rejections: int  # r*
    rejected: tuple[bool, ...]
    thresholds: tuple[float, ...]  # min(cap_i, q max(r*, 1) / m): the level each coin was tested at today
    ranks: tuple[int, ...]  # 1 = the smallest p-value (ties in input order)

    @property
    def m(self) -> int:
        return len(self.rejected)


def bh_step_up(p_values: Sequence[float], q: float, caps: Sequence[float] | None = None) -> StepUp:
    """Benjamini-Hochberg step-up at level ``q`` over ``p_values``, each coin's threshold capped at ``caps[i]``
    (None: no caps, plain BH). A NaN p-value counts as 1 (tested, never rejected). See the module docstring."""
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q must be in (0, 1], got {q!r}")
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    m = p.size
    if m == 0:
        return StepUp(float(q), 0, (), (), ())
    p = np.where(np.isnan(p), 1.0, p)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("p-values must be in [0, 1]")
    c = np.ones(m) if caps is None else np.asarray(caps, dtype=np.float64).reshape(-1)
    if c.size != m or np.isnan(c).any() or (c < 0).any():
        raise ValueError(f"caps must be {m} numbers >= 0")
    r = np.arange(1, m + 1, dtype=np.float64)
    # m x m: coin i passes at r when p_i <= min(c_i, q r / m); a few hundred coins a day make this small
    passes = p[None, :] <= np.minimum(c[None, :], q * r[:, None] / m)
    ok = np.flatnonzero(passes.sum(axis=1) >= r)
    r_star = int(ok[-1]) + 1 if ok.size else 0
    thresholds = np.minimum(c, q * max(r_star, 1) / m)
    rejected = (p <= thresholds) if r_star else np.zeros(m, dtype=bool)
    ranks = np.empty(m, dtype=np.int64)
    ranks[np.argsort(p, kind="stable")] = np.arange(1, m + 1)
    return StepUp(
        float(q),
        r_star,
        tuple(bool(x) for x in rejected),
        tuple(float(x) for x in thresholds),
        tuple(int(x) for x in ranks),
    )
