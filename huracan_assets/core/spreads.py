"""The bid-ask spread estimators from bar prices: Corwin-Schultz (2012), Abdi-Ranaldo (2017) and Roll (1984).

Pure numpy / polars; no I/O. Each estimator is built on terms of pairs of consecutive bars (t-1, t), stored at
the later bar t, so a value at bar t reads bars ``<= t`` only (causal):

* pair terms: :func:`corwin_schultz_pairs` (the spread of the pair, a fraction, negatives set to 0),
  :func:`abdi_ranaldo_pairs` and :func:`roll_pairs` (signed squared-spread terms);
* trailing per-bar estimates in bps over a window of pairs: :func:`corwin_schultz_bps`,
  :func:`abdi_ranaldo_bps`, :func:`roll_bps`;
* one estimate from all the pairs of a set of bars: :func:`pooled_spread_bps` (one coin-day of the ``spreads``
  asset, :func:`huracan_assets.core.costs.day_spread_frame`);
* :func:`corwin_schultz_pairs_expr`: the Corwin-Schultz pair estimate as a polars expression, for the feature
  recipe (``corwin_schultz`` kind).

A pair with a missing, non-positive or inverted (high < low) bar is undefined (NaN; null in the expression
form), and so is bar 0 (no pair).

Users: the cost model (:mod:`huracan_assets.core.costs`: per-bar spreads and the daily ``spreads`` asset), the
universe ranking and the ingest thin-book flag (:func:`huracan_assets.core.market_data.universe.spread_estimate_bps`),
the regime classifier's trailing spread (:func:`huracan_assets.core.regime.classifier.liquidity_inputs`), the
feature recipe's ``corwin_schultz`` kind (:mod:`huracan_assets.core.features.recipe`) and the replay exchange's
ticker spread (:func:`huracan_assets.exchange.replay.market.corwin_schultz_spread`). Which estimator measures the
spread rather than volatility, on which bars: the module doc of :mod:`huracan_assets.core.costs`.

Window minimum: the per-bar estimators need ``min_periods`` defined values in their window (default
``max(2, ceil(window / 2))``, at most ``window``; the same convention as the triple-barrier volatility); the
mean is taken over the defined values only.

References:

* Roll, R. (1984), "A Simple Implicit Measure of the Effective Bid-Ask Spread in an Efficient Market",
  *Journal of Finance* 39(4), 1127-1139.
* Corwin, S. A. & Schultz, P. (2012), "A Simple Way to Estimate Bid-Ask Spreads from Daily High and Low
  Prices", *Journal of Finance* 67(2), 719-760.
* Abdi, F. & Ranaldo, A. (2017), "A Simple Estimation of Bid-Ask Spreads from Daily Close, High, and Low
  Prices", *Review of Financial Studies* 30(12), 4437-4480.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

BPS = 1e4
SPREAD_ESTIMATORS = ("corwin_schultz", "abdi_ranaldo", "roll")
_CS_K = 3.0 - 2.0 * math.sqrt(2.0)  # 3 - 2√2, the constant of the Corwin-Schultz alpha


# ------------------------------------------------------------------------------------------ helpers


def _as_float(values: Any) -> np.ndarray:
    """1-D float64 array; polars nulls become NaN."""
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64).to_numpy()
    return np.asarray(values, dtype=np.float64)


def _check_window(window: int, min_periods: int | None, least: int = 1) -> int:
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < least:
        raise ValueError(f"window must be an int >= {least}, got {window!r}")
    if min_periods is None:
        return min(int(window), max(least, 2, math.ceil(window / 2)))
    if not 1 <= min_periods <= window:
        raise ValueError(f"min_periods must be in [1, window={window}], got {min_periods}")
    return max(int(min_periods), least)


def _windows(x: np.ndarray, window: int) -> np.ndarray:
    """Row t = x[t - window + 1 .. t] (NaN before the start): a read-only view of shape (n, window)."""
    padded = np.concatenate([np.full(window - 1, np.nan), x])
    return sliding_window_view(padded, window)


def _trailing_mean(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """Mean of the defined (non-NaN) values of the trailing window ending at t; NaN below min_periods."""
    if x.size == 0:
        return x.copy()
    view = _windows(x, window)
    count = np.sum(~np.isnan(view), axis=1)
    total = np.nansum(view, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count >= min_periods, total / count, np.nan)


def _log_prices(*columns: np.ndarray) -> list[np.ndarray]:
    """Logs of positive prices; NaN where a price is missing, non-positive, or the bar has high < low."""
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = [np.where(c > 0, np.log(np.where(c > 0, c, 1.0)), np.nan) for c in columns]
    bad = ~(columns[0] >= columns[1])  # columns are (high, low, ...) in every caller
    for lg in logs:
        lg[bad] = np.nan
    return logs


# ------------------------------------------------------------------------------------------ estimators


def corwin_schultz_pairs(high: Any, low: Any) -> np.ndarray:
    """Corwin-Schultz (2012) spread of each pair of consecutive bars (t-1, t), as a fraction, stored at t.

    With ``H``, ``L`` the high and low, for the pair of bars (t-1, t)::

        beta  = ln(H[t-1] / L[t-1])² + ln(H[t] / L[t])²
        gamma = ln(max(H[t-1], H[t]) / min(L[t-1], L[t]))²
        alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2))
        S     = 2 (exp(alpha) - 1) / (1 + exp(alpha))

    Negative pair estimates are set to 0 (the paper's choice). Bar 0 has no pair (NaN); a pair with a missing,
    non-positive or inverted (high < low) bar is NaN. No overnight-gap adjustment: crypto trades 24/7 and
    consecutive bars join. Pairs are stored at their *later* bar, so the value at t reads bars t-1 and t only.
    """
    lh, ll = _log_prices(_as_float(high), _as_float(low))
    out = np.full(lh.size, np.nan)
    if lh.size < 2:
        return out
    beta = (lh[:-1] - ll[:-1]) ** 2 + (lh[1:] - ll[1:]) ** 2
    gamma = (np.maximum(lh[:-1], lh[1:]) - np.minimum(ll[:-1], ll[1:])) ** 2
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / _CS_K - np.sqrt(gamma / _CS_K)
    spread = 2.0 * np.expm1(alpha) / (1.0 + np.exp(alpha))
    out[1:] = np.where(np.isnan(spread), np.nan, np.maximum(spread, 0.0))
    return out


def corwin_schultz_bps(high: Any, low: Any, window: int, *, min_periods: int | None = None) -> np.ndarray:
    """Corwin & Schultz (2012) high-low spread estimate in bps, averaged over a trailing window (causal).

    The value at bar t is the mean of the pair estimates (:func:`corwin_schultz_pairs`, negative pairs set to
    0) of the ``window`` pairs ending at t, i.e. it reads bars ``t - window .. t``; defined pairs only, NaN with
    fewer than ``min_periods`` of them (default ``max(2, ceil(window / 2))``, at most ``window``). Times 1e4.

    On bars of 1h and more the range is mostly volatility and this is an upper-ish estimate (module doc of
    :mod:`huracan_assets.core.costs`).
    """
    minp = _check_window(window, min_periods)
    return _trailing_mean(corwin_schultz_pairs(high, low), int(window), minp) * BPS


def abdi_ranaldo_pairs(high: Any, low: Any, close: Any) -> np.ndarray:
    """Abdi-Ranaldo (2017) squared-spread terms of consecutive bars (t-1, t), stored at t (fractions², signed).

    With ``c`` the log close and ``eta = (ln H + ln L) / 2`` the log mid-range, the paper's estimator is
    ``s² = 4 E[(c[t] - eta[t]) (c[t] - eta[t+1])]``. To stay causal the pair is taken backwards,
    ``4 (c[t-1] - eta[t-1]) (c[t-1] - eta[t])``, stored at t. Single terms are often negative; only their mean
    is meaningful. Bar 0 and pairs with a missing / non-positive / inverted bar are NaN.
    """
    lh, ll, lc = _log_prices(_as_float(high), _as_float(low), _as_float(close))
    out = np.full(lh.size, np.nan)
    if lh.size < 2:
        return out
    eta = 0.5 * (lh + ll)
    out[1:] = 4.0 * (lc[:-1] - eta[:-1]) * (lc[:-1] - eta[1:])
    return out


def abdi_ranaldo_bps(high: Any, low: Any, close: Any, window: int, *, min_periods: int | None = None) -> np.ndarray:
    """Abdi & Ranaldo (2017) close-high-low spread estimate in bps over a trailing window (causal).

    ``s[t] = sqrt(max(0, mean of the window's terms 4 (c[k-1] - eta[k-1]) (c[k-1] - eta[k]), k = t-window+1..t))``
    (:func:`abdi_ranaldo_pairs`), times 1e4: the mean is over the defined terms, NaN with fewer than
    ``min_periods`` of them (default ``max(2, ceil(window / 2))``, at most ``window``); a negative mean gives
    0 (the paper's choice for negative estimates). Reads bars ``t - window .. t``.

    On bars of 1h and more the range is mostly volatility and this is an upper-ish estimate (module doc of
    :mod:`huracan_assets.core.costs`).
    """
    minp = _check_window(window, min_periods)
    mean = _trailing_mean(abdi_ranaldo_pairs(high, low, close), int(window), minp)
    return np.sqrt(np.where(np.isnan(mean), np.nan, np.maximum(mean, 0.0))) * BPS


def roll_pairs(close: Any) -> np.ndarray:
    """Roll (1984) squared-spread terms ``-4 r[t-1] r[t]`` of consecutive log close returns, stored at t (signed).

    Under Roll's model the bid-ask bounce makes consecutive price changes negatively correlated,
    ``cov(r[t-1], r[t]) = -s^2 / 4``; the mean of these terms is ``s^2`` (returns taken as zero-mean, which
    intraday bars are to well under a basis point). Reads closes ``t-2 .. t``: bars 0 and 1 and terms touching a
    missing or non-positive close are NaN. Single terms are often negative; only their mean is meaningful.
    """
    c = _as_float(close)
    out = np.full(c.size, np.nan)
    if c.size < 3:
        return out
    with np.errstate(invalid="ignore", divide="ignore"):
        lc = np.where(c > 0, np.log(np.where(c > 0, c, 1.0)), np.nan)
    r = np.diff(lc)
    out[2:] = -4.0 * r[:-1] * r[1:]
    return out


def roll_bps(close: Any, window: int, *, min_periods: int | None = None) -> np.ndarray:
    """Roll (1984) spread estimate in bps over a trailing window (causal): ``sqrt(max(0, mean of the window's
    terms))`` (:func:`roll_pairs`), times 1e4; NaN with fewer than ``min_periods`` defined terms (default
    ``max(2, ceil(window / 2))``, at most ``window``); a positive autocovariance (negative mean) gives 0.
    Reads closes ``t - window - 1 .. t``.
    """
    minp = _check_window(window, min_periods)
    mean = _trailing_mean(roll_pairs(close), int(window), minp)
    return np.sqrt(np.where(np.isnan(mean), np.nan, np.maximum(mean, 0.0))) * BPS


def _pair_terms(estimator: str, high: Any, low: Any, close: Any) -> np.ndarray:
    if estimator == "corwin_schultz":
        return corwin_schultz_pairs(high, low)
    if estimator == "abdi_ranaldo":
        return abdi_ranaldo_pairs(high, low, close)
    if estimator == "roll":
        return roll_pairs(close)
    raise ValueError(f"spread_estimator must be one of {SPREAD_ESTIMATORS}, got {estimator!r}")


def pooled_spread_bps(estimator: str, high: Any, low: Any, close: Any) -> tuple[float, int]:
    """One spread estimate (bps) from all the pair terms of the given bars, and the number of defined terms.

    Corwin-Schultz: the mean of the pair spreads (negative pairs set to 0). Abdi-Ranaldo and Roll: the square
    root of the mean of the signed squared-spread terms, 0 when that mean is negative (the papers' choice).
    NaN with fewer than 2 defined terms.
    """
    terms = _pair_terms(estimator, high, low, close)
    defined = terms[~np.isnan(terms)]
    if defined.size < 2:
        return math.nan, int(defined.size)
    mean = float(defined.mean())
    value = mean if estimator == "corwin_schultz" else math.sqrt(max(mean, 0.0))
    return value * BPS, int(defined.size)


# ------------------------------------------------------------------------------------------ polars form


def corwin_schultz_pairs_expr(high: pl.Expr, low: pl.Expr) -> pl.Expr:
    """:func:`corwin_schultz_pairs` as a polars expression over the rows of a frame sorted by time: the
    Corwin-Schultz spread of the pair of rows (t-1, t), a fraction, negatives set to 0, at row t.

    Null at row 0 and where either bar of the pair is missing, non-positive or inverted (high < low), as the
    numpy form is NaN there. The operations are the feature recipe's (``ln(H / L)``, ``exp(alpha) - 1``), whose
    values are pinned, where the numpy form takes ``ln H - ln L`` and ``expm1``: the two agree to float
    rounding (about 1e-12 relative on real candles), not bit for bit.
    """
    hl = (high / low).log()
    beta = hl.pow(2) + hl.shift(1).pow(2)
    gamma = (pl.max_horizontal(high, high.shift(1)) / pl.min_horizontal(low, low.shift(1))).log().pow(2)
    alpha = ((2.0 * beta).sqrt() - beta.sqrt()) / _CS_K - (gamma / _CS_K).sqrt()
    spread = (2.0 * (alpha.exp() - 1.0) / (1.0 + alpha.exp())).clip(lower_bound=0.0)
    valid = (low > 0) & (high >= low)
    return pl.when(valid & valid.shift(1)).then(spread).fill_nan(None)
