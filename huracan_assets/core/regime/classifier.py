"""Market regime per bar: TREND / RANGE / PANIC / ILLIQUID, causal only (filtered, never smoothed).

Two methods share one output contract (``ts``, ``regime`` as a String column):

* **Rules** (:func:`classify_rules`): transparent thresholds over trailing-window inputs
  (:func:`regime_inputs`). Every input at bar t reads bars ``<= t`` only, so cutting the future
  never changes the past (the no-look-ahead canary in the tests checks exactly that).
* **HMM** (:func:`fit_hmm`, :func:`hmm_filtered_regimes`): a Gaussian HMM fitted on bars strictly
  before D, applied to D with *forward-filtered* state probabilities ``p(s_t | x_0..x_t)``. The
  forward recursion is implemented here in log space; hmmlearn's ``predict`` (Viterbi),
  ``predict_proba`` (forward-backward) and ``decode`` read future bars and are never called.

Precedence of the rules: **ILLIQUID > PANIC > TREND > RANGE**.

* ILLIQUID: the trailing share of zero-volume (or missing-volume) bars over ``liquidity_window``
  is ``>= illiquid_zero_volume_share``, or the bar's book is thin (``thin_book``): over the trailing
  ``thin_book_minutes`` (one day) of bars ending at t inclusive, the traded quote value
  ``sum(close * volume)`` is below ``thin_min_quote_volume``, or the zero-volume share is above
  ``thin_max_zero_volume_share``, or the Corwin-Schultz spread estimate (mean of the pair estimates
  ending in the window) is above ``thin_max_spread_bps``. These are the definitions of the candles'
  day-level ``thin_book`` flag (``core/market_data/ingest.py`` ``assess``), made trailing so that a bar's
  flag never depends on later bars of its day. A window is formed once the frame reaches a whole span
  back; before that a bar is not thin. The defaults switch the thin-book test off; the ``regimes``
  asset sets the thresholds from ``candles:`` in the config.
* PANIC: extreme volatility *and* a fast drawdown at the same bar: the causal volatility
  percentile is ``>= panic_vol_pct`` and the close is at least ``|panic_drawdown|`` below the
  highest close of the trailing ``drawdown_window`` bars.
* TREND: the trend strength (absolute Kaufman efficiency ratio over ``trend_window`` bars) is
  ``>= trend_strength_min``. The signed ratio is kept as ``efficiency_ratio`` (direction).
* RANGE: everything else, including bars whose inputs are still warming up (``warmed_up`` is
  False there; fetch ``RegimeRules.warmup_bars`` bars before D to avoid them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from huracan_assets.core.spreads import corwin_schultz_pairs

if TYPE_CHECKING:
    from hmmlearn.hmm import GaussianHMM


class Regime(StrEnum):
    """A bar's market regime; a ``str`` (``Regime.PANIC == "PANIC"``), stored as a String column."""

    TREND = "TREND"
    RANGE = "RANGE"
    PANIC = "PANIC"
    ILLIQUID = "ILLIQUID"


REGIMES = tuple(r.value for r in Regime)
INPUT_COLUMNS = (
    "efficiency_ratio",
    "trend_strength",
    "realized_vol",
    "vol_pct",
    "drawdown",
    "zero_volume_share",
    "trailing_quote_volume",
    "trailing_zero_volume_share",
    "trailing_spread_bps",
    "thin_book",
    "warmed_up",
)
LIQUIDITY_COLUMNS = INPUT_COLUMNS[INPUT_COLUMNS.index("zero_volume_share") : INPUT_COLUMNS.index("warmed_up")]
_WINDOW_FIELDS = ("trend_window", "vol_window", "vol_rank_window", "vol_rank_min_samples", "drawdown_window")
_BASE_BAR_MINUTES = 60


@dataclass(frozen=True)
class RegimeRules:
    """Thresholds of the rule classifier. Windows count bars; defaults are for 1h bars.

    ``vol_pct`` is causal: the rank of the current realized vol among the realized vols of the
    previous ``vol_rank_window`` bars (the current bar excluded, ties count half), computed once at
    least ``vol_rank_min_samples`` of them exist. It is never a percentile over a whole window.
    """

    trend_window: int = 24  # bars of the efficiency ratio
    trend_strength_min: float = 0.3  # |efficiency ratio| at or above which a bar is TREND
    vol_window: int = 12  # bars of realized vol (std of 1-bar log returns)
    vol_rank_window: int = 168  # trailing bars of vol history the current vol is ranked against
    vol_rank_min_samples: int = 48  # fewer trailing vols than this: no percentile yet
    panic_vol_pct: float = 0.95  # causal vol percentile at or above which PANIC is possible
    drawdown_window: int = 24  # bars of the trailing max close the drawdown is measured from
    panic_drawdown: float = -0.04  # drawdown at or below which (with high vol) a bar is PANIC
    liquidity_window: int = 24  # bars of the trailing zero-volume share
    illiquid_zero_volume_share: float = 0.25  # zero-volume share at or above which ILLIQUID
    # thin book, per bar over the trailing thin_book_minutes (a time span, not bars); the defaults turn it off
    thin_book_minutes: int = 1440  # one day, as the day-level thresholds of candles: are meant
    thin_min_quote_volume: float = 0.0  # trailing traded value sum(close * volume) below which a bar is thin
    thin_max_zero_volume_share: float = 1.0  # trailing zero-volume share above which a bar is thin
    thin_max_spread_bps: float = math.inf  # trailing Corwin-Schultz estimate above which a bar is thin
    hmm_trend_min_drift_to_vol: float = 0.1  # HMM only: per-bar |mean return| / return std of a TREND state

    def __post_init__(self) -> None:
        for name in (*_WINDOW_FIELDS, "liquidity_window"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2 bars, got {getattr(self, name)}")
        if self.vol_rank_min_samples > self.vol_rank_window:
            raise ValueError("vol_rank_min_samples must not exceed vol_rank_window")
        if not 0 < self.trend_strength_min <= 1:
            raise ValueError("trend_strength_min must be in (0, 1]")
        if not 0 < self.panic_vol_pct <= 1:
            raise ValueError("panic_vol_pct must be in (0, 1]")
        if not -1 < self.panic_drawdown < 0:
            raise ValueError("panic_drawdown must be a negative fraction, e.g. -0.04")
        if not 0 < self.illiquid_zero_volume_share <= 1:
            raise ValueError("illiquid_zero_volume_share must be in (0, 1]")
        if self.thin_book_minutes < 1:
            raise ValueError("thin_book_minutes must be positive")
        if not (self.thin_min_quote_volume >= 0 and 0 <= self.thin_max_zero_volume_share <= 1):
            raise ValueError("thin_min_quote_volume must be >= 0 and thin_max_zero_volume_share in [0, 1]")
        if not self.thin_max_spread_bps > 0:
            raise ValueError("thin_max_spread_bps must be > 0")
        if self.hmm_trend_min_drift_to_vol < 0:
            raise ValueError("hmm_trend_min_drift_to_vol must be >= 0")

    @classmethod
    def for_bar_minutes(cls, bar_minutes: int, **overrides: Any) -> RegimeRules:
        """Defaults rescaled to ``bar_minutes`` bars: every window keeps its span in time.

        Price thresholds (drawdown, percentiles, shares) are per time span and stay, and so do the thin-book
        span (minutes) and its thresholds. The efficiency
        ratio of a path with a given drift and volatility shrinks like ``1/sqrt(bars)`` over a fixed
        span, so ``trend_strength_min`` is scaled by ``sqrt(base bars / new bars)`` of the trend
        window; the per-bar drift-to-vol of an HMM state likewise scales with ``sqrt(bar_minutes / 60)``.
        ``overrides`` are applied last, unscaled.
        """
        if bar_minutes <= 0:
            raise ValueError("bar_minutes must be positive")
        base = cls()
        factor = _BASE_BAR_MINUTES / bar_minutes
        scaled = {name: max(2, round(getattr(base, name) * factor)) for name in (*_WINDOW_FIELDS, "liquidity_window")}
        scaled["vol_rank_min_samples"] = min(scaled["vol_rank_min_samples"], scaled["vol_rank_window"])
        strength = base.trend_strength_min * math.sqrt(base.trend_window / scaled["trend_window"])
        scaled["trend_strength_min"] = min(1.0, strength)
        scaled["hmm_trend_min_drift_to_vol"] = base.hmm_trend_min_drift_to_vol * math.sqrt(1 / factor)
        return replace(base, **{**scaled, **overrides})

    @property
    def warmup_bars(self) -> int:
        """Bars before the first classified bar needed for every input to be fully formed."""
        vol = self.vol_window + self.vol_rank_window
        return max(self.trend_window, vol, self.drawdown_window, self.liquidity_window)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


DEFAULT_RULES = RegimeRules()


# ---------------------------------------------------------------------------------------------
# Rule inputs and the rule classifier
# ---------------------------------------------------------------------------------------------


def _trailing_rank(values: np.ndarray, window: int, min_samples: int, chunk: int = 4096) -> np.ndarray:
    """Rank of ``values[i]`` among the finite ``values[i-window:i]`` (current excluded), in [0, 1].

    Ties count half. NaN where ``values[i]`` is NaN or fewer than ``min_samples`` finite history.
    Rows are processed in chunks so memory stays ``O(chunk * window)``.
    """
    n = values.shape[0]
    out = np.full(n, np.nan)
    padded = np.concatenate([np.full(window, np.nan), values])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)  # row i = values[i-window:i]
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        history = windows[lo:hi]
        current = values[lo:hi, None]
        valid = np.isfinite(history)
        count = valid.sum(axis=1)
        below = (valid & (history < current)).sum(axis=1)
        equal = (valid & (history == current)).sum(axis=1)
        ok = np.isfinite(values[lo:hi]) & (count >= min_samples)
        out[lo:hi][ok] = (below[ok] + 0.5 * equal[ok]) / count[ok]
    return out


def liquidity_inputs(candles: pl.DataFrame, rules: RegimeRules = DEFAULT_RULES) -> pl.DataFrame:
    """The liquidity inputs per bar, trailing windows ending at the bar inclusive; rows of ``candles`` by ``ts``.

    Columns: ``ts``; ``zero_volume_share`` (share of bars with zero or missing volume over the trailing
    ``liquidity_window`` bars, partial windows allowed); over the bars with ts in ``(t - thin_book_minutes,
    t]`` (the trailing day), exactly what ``core/market_data/ingest.py`` ``assess`` computes over a day's bars:
    ``trailing_quote_volume`` (``sum(close * volume)``, missing volume 0), ``trailing_zero_volume_share``
    and ``trailing_spread_bps`` (mean of the Corwin-Schultz estimates of the pairs of consecutive bars inside
    the window, :func:`huracan_assets.core.spreads.corwin_schultz_pairs`; null when none is defined). These
    three are null until the frame reaches a whole span back (its first bar at or before ``t - span``).
    ``thin_book`` is True when a formed window breaks a threshold of :class:`RegimeRules` with the day-level
    flag's comparisons (value ``<`` minimum, share ``>`` maximum, spread ``>`` maximum), else False.
    """
    frame = candles.sort("ts")
    span = rules.thin_book_minutes * 60_000
    window = f"{span}i"
    ts = frame["ts"].to_numpy()
    pairs = corwin_schultz_pairs(frame["high"], frame["low"]) * 1e4  # pair (t-1, t) stored at t
    # the pair stored at a window's first bar reaches the bar before the window: it is taken out again
    edge = pairs[np.searchsorted(ts, ts - span, side="right")] if ts.size else pairs
    zero = (pl.col("volume").fill_null(0.0) <= 0).cast(pl.Float64)
    formed = pl.col("ts") - pl.col("ts").min() >= span
    pair_n = pl.col("_pair").is_not_null().cast(pl.Float64).rolling_sum_by("ts", window) - pl.col("_edge").is_not_null()
    pair_sum = pl.col("_pair").rolling_sum_by("ts", window) - pl.col("_edge").fill_null(0.0)
    out = frame.with_columns(
        _pair=pl.Series(pairs, dtype=pl.Float64).fill_nan(None),
        _edge=pl.Series(edge, dtype=pl.Float64).fill_nan(None),
    ).select(
        "ts",
        zero_volume_share=zero.rolling_mean(rules.liquidity_window, min_samples=1),
        trailing_quote_volume=pl.when(formed).then(
            (pl.col("close") * pl.col("volume").fill_null(0.0)).rolling_sum_by("ts", window)
        ),
        trailing_zero_volume_share=pl.when(formed).then(zero.rolling_mean_by("ts", window)),
        trailing_spread_bps=pl.when(formed & (pair_n > 0)).then(pair_sum / pair_n),
    )
    thin = (
        (pl.col("trailing_quote_volume") < rules.thin_min_quote_volume)
        | (pl.col("trailing_zero_volume_share") > rules.thin_max_zero_volume_share)
        | (pl.col("trailing_spread_bps") > rules.thin_max_spread_bps)
    )
    return out.with_columns(thin_book=thin.fill_null(False))


def regime_inputs(candles: pl.DataFrame, rules: RegimeRules = DEFAULT_RULES) -> pl.DataFrame:
    """Causal inputs per bar (trailing windows only), for every row of ``candles`` sorted by ``ts``.

    Columns: ``ts``, ``efficiency_ratio`` (signed Kaufman ratio of log closes over ``trend_window``),
    ``trend_strength`` (its absolute value), ``realized_vol`` (std of 1-bar log returns over
    ``vol_window``), ``vol_pct`` (causal percentile, see :class:`RegimeRules`), ``drawdown`` (close
    over the max close of the trailing ``drawdown_window`` bars, minus 1; <= 0), the liquidity inputs of
    :func:`liquidity_inputs` (:data:`LIQUIDITY_COLUMNS`) and ``warmed_up`` (every input is formed,
    the thin-book window included).
    """
    frame = candles.sort("ts")
    log_close = pl.col("close").log()
    step = log_close.diff()
    n_trend = rules.trend_window
    out = frame.select(
        "ts",
        efficiency_ratio=(log_close - log_close.shift(n_trend)) / step.abs().rolling_sum(n_trend, min_samples=n_trend),
        realized_vol=step.rolling_std(rules.vol_window, min_samples=rules.vol_window),
        drawdown=pl.col("close") / pl.col("close").rolling_max(rules.drawdown_window, min_samples=1) - 1.0,
    ).with_columns(
        # a perfectly flat window has 0/0: no trend at all
        efficiency_ratio=pl.when(pl.col("efficiency_ratio").is_nan()).then(0.0).otherwise(pl.col("efficiency_ratio")),
    )
    vol = out["realized_vol"].to_numpy().astype(np.float64, copy=True)
    vol_pct = _trailing_rank(vol, rules.vol_rank_window, rules.vol_rank_min_samples)
    out = out.with_columns(
        trend_strength=pl.col("efficiency_ratio").abs(),
        vol_pct=pl.Series(vol_pct, dtype=pl.Float64).fill_nan(None),
    )
    out = pl.concat([out, liquidity_inputs(frame, rules).drop("ts")], how="horizontal")
    formed = ("efficiency_ratio", "realized_vol", "vol_pct", "drawdown", "trailing_zero_volume_share")
    out = out.with_columns(warmed_up=pl.all_horizontal(pl.col(c).is_not_null() for c in formed))
    return out.select("ts", *INPUT_COLUMNS)


def _illiquid_expr(rules: RegimeRules) -> pl.Expr:
    """ILLIQUID at a bar: its trailing zero-volume share, or its trailing thin-book flag."""
    return pl.col("thin_book") | (pl.col("zero_volume_share") >= rules.illiquid_zero_volume_share)


def classify_rules(
    candles: pl.DataFrame,
    rules: RegimeRules = DEFAULT_RULES,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pl.DataFrame:
    """Regime of the bars in ``[start_ms, end_ms)``, computed over all given rows (warm-up + D).

    Returns ``ts``, ``regime`` (String, one of :data:`REGIMES`) and the :data:`INPUT_COLUMNS`.
    Precedence ILLIQUID > PANIC > TREND > RANGE; bars with missing inputs fall through to RANGE
    unless the liquidity rule fires (a trailing zero-volume share, or the bar's trailing thin book).
    """
    inputs = regime_inputs(candles, rules)
    panic = (pl.col("vol_pct") >= rules.panic_vol_pct) & (pl.col("drawdown") <= rules.panic_drawdown)
    trend = pl.col("trend_strength") >= rules.trend_strength_min
    regime = (
        pl.when(_illiquid_expr(rules))
        .then(pl.lit(Regime.ILLIQUID.value))
        .when(panic.fill_null(False))
        .then(pl.lit(Regime.PANIC.value))
        .when(trend.fill_null(False))
        .then(pl.lit(Regime.TREND.value))
        .otherwise(pl.lit(Regime.RANGE.value))
    )
    out = inputs.with_columns(regime=regime.cast(pl.String))
    return _day(out, start_ms, end_ms).select("ts", "regime", *INPUT_COLUMNS)


def _day(frame: pl.DataFrame, start_ms: int | None, end_ms: int | None) -> pl.DataFrame:
    if start_ms is not None:
        frame = frame.filter(pl.col("ts") >= start_ms)
    if end_ms is not None:
        frame = frame.filter(pl.col("ts") < end_ms)
    return frame


# ---------------------------------------------------------------------------------------------
# HMM option: fitted before D, forward-filtered on D
# ---------------------------------------------------------------------------------------------

HMM_FEATURES = ("log_ret", "log_vol")


@dataclass(frozen=True)
class HmmStateStats:
    """Per-state statistics on the original scale, used to map states to regimes."""

    state: int
    mean_log_ret: float  # mean 1-bar log return
    ret_std: float  # std of the 1-bar log return within the state
    mean_log_vol: float  # mean log realized vol
    occupancy: float  # share of the training bars whose most likely filtered state is this one

    @property
    def drift_to_vol(self) -> float:
        return abs(self.mean_log_ret) / self.ret_std if self.ret_std > 0 else 0.0


@dataclass(frozen=True, eq=False)
class HmmRegimeModel:
    """A Gaussian HMM on standardized [log return, log realized vol], fitted on bars before D."""

    hmm: GaussianHMM
    feature_mean: np.ndarray  # standardization fitted on the training bars only
    feature_std: np.ndarray
    state_regimes: tuple[Regime, ...]  # regime of each hidden state
    state_stats: tuple[HmmStateStats, ...]
    rules: RegimeRules
    fit_end_ts: int  # last training bar's ts: the model knows nothing after it
    n_train: int
    seed: int

    @property
    def n_states(self) -> int:
        return len(self.state_regimes)


def hmm_features(candles: pl.DataFrame, rules: RegimeRules = DEFAULT_RULES) -> pl.DataFrame:
    """Causal HMM inputs: ``ts``, ``log_ret``, ``log_vol`` (log of the realized vol over ``rules.vol_window``)
    and the liquidity rule's inputs (:func:`liquidity_inputs`). Nulls where a window is not yet formed.
    """
    frame = candles.sort("ts")
    step = pl.col("close").log().diff()
    vol = step.rolling_std(rules.vol_window, min_samples=rules.vol_window)
    feats = frame.select(
        "ts",
        log_ret=step,
        log_vol=pl.when(vol > 0).then(vol.log()).otherwise(None),
    ).with_columns(pl.col(c).fill_nan(None) for c in HMM_FEATURES)
    return pl.concat([feats, liquidity_inputs(frame, rules).drop("ts")], how="horizontal")


def _state_regimes(stats: list[HmmStateStats], trend_min_drift_to_vol: float) -> tuple[Regime, ...]:
    """Map hidden states to regimes by their statistics.

    * PANIC: the state with the highest mean log vol, if its mean return is negative.
    * The other states are ranked by ``|mean return| / return std`` (drift per unit of noise):
      the lower half (rounded up) is RANGE; the rest is TREND if its drift-to-vol reaches
      ``trend_min_drift_to_vol``, else RANGE too. A single remaining state is RANGE.
    ILLIQUID is never a hidden state; the liquidity rule overlays it per bar.
    """
    regimes: dict[int, Regime] = {}
    rest = list(stats)
    most_volatile = max(stats, key=lambda s: (s.mean_log_vol, -s.state))
    if most_volatile.mean_log_ret < 0:
        regimes[most_volatile.state] = Regime.PANIC
        rest = [s for s in stats if s.state != most_volatile.state]
    rest.sort(key=lambda s: (s.drift_to_vol, s.state))
    n_range = math.ceil(len(rest) / 2)
    for i, s in enumerate(rest):
        trending = i >= n_range and s.drift_to_vol >= trend_min_drift_to_vol
        regimes[s.state] = Regime.TREND if trending else Regime.RANGE
    return tuple(regimes[s.state] for s in sorted(stats, key=lambda s: s.state))


def _log_emission(model: HmmRegimeModel, x: np.ndarray) -> np.ndarray:
    """Per-state Gaussian log densities of the standardized rows ``x`` (n, d) -> (n, k)."""
    means = model.hmm.means_
    covars = model.hmm.covars_  # always full (k, d, d) whatever the covariance_type
    n, d = x.shape
    out = np.empty((n, means.shape[0]))
    for k in range(means.shape[0]):
        chol = np.linalg.cholesky(covars[k])
        z = np.linalg.solve(chol, (x - means[k]).T)  # (d, n)
        log_det = 2.0 * np.log(np.diag(chol)).sum()
        out[:, k] = -0.5 * (d * np.log(2 * np.pi) + log_det + (z * z).sum(axis=0))
    return out


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    peak = np.max(a, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    return np.squeeze(peak, axis=axis) + np.log(np.sum(np.exp(a - peak), axis=axis))


def forward_filter(model: HmmRegimeModel, x: np.ndarray) -> np.ndarray:
    """Filtered log probabilities ``log p(s_t | x_0..x_t)`` (n, k) by the forward recursion.

    Row t reads rows ``<= t`` only. A row with a missing (non-finite) feature is a missing
    observation: the state distribution is propagated through the transition matrix only.
    """
    n = x.shape[0]
    k = model.n_states
    out = np.full((n, k), np.nan)
    if n == 0:
        return out
    with np.errstate(divide="ignore"):
        log_start = np.log(model.hmm.startprob_)
        log_trans = np.log(model.hmm.transmat_)
    observed = np.isfinite(x).all(axis=1)
    log_lik = np.zeros((n, k))
    if observed.any():
        log_lik[observed] = _log_emission(model, x[observed])
    log_alpha = log_start
    for t in range(n):
        if t > 0:
            log_alpha = _logsumexp(log_alpha[:, None] + log_trans, axis=0)
        if observed[t]:
            log_alpha = log_alpha + log_lik[t]
        log_alpha = log_alpha - _logsumexp(log_alpha, axis=0)
        out[t] = log_alpha
    return out


def fit_hmm(
    candles_before_d: pl.DataFrame,
    n_states: int = 3,
    seed: int = 7,
    rules: RegimeRules = DEFAULT_RULES,
    *,
    before_ms: int | None = None,
    covariance_type: str = "diag",
    n_iter: int = 200,
) -> HmmRegimeModel:
    """Fit a Gaussian HMM on [log return, log realized vol] of bars strictly before D.

    The caller passes the training bars explicitly; with ``before_ms`` (D's start) any row at or
    after it is dropped first, so appending future rows cannot change the model. Features are
    standardized with the training bars' mean and std (hmmlearn's ``min_covar`` would otherwise
    swamp the tiny variance of 1-bar returns). The fit is deterministic for a given ``seed``.
    """
    from hmmlearn.hmm import GaussianHMM

    train = candles_before_d if before_ms is None else candles_before_d.filter(pl.col("ts") < before_ms)
    feats = hmm_features(train, rules).drop_nulls(list(HMM_FEATURES))
    min_rows = 10 * n_states
    if feats.height < min_rows:
        raise ValueError(f"need {min_rows}+ bars with formed features to fit {n_states} states, got {feats.height}")
    raw = feats.select(HMM_FEATURES).to_numpy().astype(np.float64)
    mean = raw.mean(axis=0)
    std = raw.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x = (raw - mean) / std
    hmm = GaussianHMM(
        n_components=n_states, covariance_type=covariance_type, n_iter=n_iter, tol=1e-4, random_state=seed
    )
    hmm.fit(x)
    partial = HmmRegimeModel(
        hmm=hmm,
        feature_mean=mean,
        feature_std=std,
        state_regimes=(Regime.RANGE,) * n_states,
        state_stats=(),
        rules=rules,
        fit_end_ts=int(feats["ts"].max()),
        n_train=feats.height,
        seed=seed,
    )
    occupancy = np.bincount(np.argmax(forward_filter(partial, x), axis=1), minlength=n_states) / x.shape[0]
    covars = hmm.covars_
    stats = [
        HmmStateStats(
            state=k,
            mean_log_ret=float(hmm.means_[k, 0] * std[0] + mean[0]),
            ret_std=float(np.sqrt(covars[k, 0, 0]) * std[0]),
            mean_log_vol=float(hmm.means_[k, 1] * std[1] + mean[1]),
            occupancy=float(occupancy[k]),
        )
        for k in range(n_states)
    ]
    regimes = _state_regimes(stats, rules.hmm_trend_min_drift_to_vol)
    return replace(partial, state_regimes=regimes, state_stats=tuple(stats))


def hmm_filtered_regimes(
    model: HmmRegimeModel,
    candles_window: pl.DataFrame,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> pl.DataFrame:
    """Regimes of the bars in ``[start_ms, end_ms)`` from forward-filtered HMM state probabilities.

    The filter runs from the first row of ``candles_window`` (warm-up + D), starting at the model's
    ``startprob_``. Returns ``ts``, ``regime``, ``state`` (the most probable filtered state) and
    ``p_state_0`` .. ``p_state_{k-1}``. ILLIQUID still comes from the liquidity rule of
    ``model.rules`` (trailing zero-volume share or trailing thin book, per bar) and overrides the state's regime.
    """
    feats = hmm_features(candles_window, model.rules)
    raw = feats.select(HMM_FEATURES).to_numpy().astype(np.float64)  # nulls -> NaN: missing observations
    x = (raw - model.feature_mean) / model.feature_std
    prob = np.exp(forward_filter(model, x))
    state = np.argmax(prob, axis=1) if prob.shape[0] else np.zeros(0, dtype=np.int64)
    state_regime = np.array([r.value for r in model.state_regimes], dtype=object)[state]
    out = feats.select("ts", "zero_volume_share", "thin_book").with_columns(
        state_regime=pl.Series(state_regime.tolist(), dtype=pl.String),
        state=pl.Series(state, dtype=pl.Int64),
        **{f"p_state_{k}": pl.Series(prob[:, k], dtype=pl.Float64) for k in range(model.n_states)},
    )
    out = out.with_columns(
        regime=pl.when(_illiquid_expr(model.rules))
        .then(pl.lit(Regime.ILLIQUID.value))
        .otherwise(pl.col("state_regime"))
        .cast(pl.String)
    )
    probs = [f"p_state_{k}" for k in range(model.n_states)]
    return _day(out, start_ms, end_ms).select("ts", "regime", "state", *probs)


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------


def regime_shares(frame: pl.DataFrame) -> dict[str, float]:
    """Share of bars per regime (every regime listed, 0.0 when absent; all 0.0 for no bars)."""
    n = frame.height
    counts = dict(frame.group_by("regime").len().iter_rows()) if n else {}
    return {r: (counts.get(r, 0) / n if n else 0.0) for r in REGIMES}


@dataclass(frozen=True)
class RegimeSpec:
    method: str  # rules | hmm
    rules: RegimeRules
    hmm_states: int = 3
    hmm_seed: int = 7


def regimes_for_window(frame: pl.DataFrame, spec: RegimeSpec, start_ms: int, end_ms: int) -> pl.DataFrame:
    """The regimes of the bars in ``[start_ms, end_ms)`` from ``frame`` (the day and its trailing history)."""
    if spec.method == "hmm":
        model = fit_hmm(frame, spec.hmm_states, spec.hmm_seed, spec.rules, before_ms=start_ms)
        return hmm_filtered_regimes(model, frame, start_ms, end_ms)
    return classify_rules(frame, spec.rules, start_ms, end_ms)
