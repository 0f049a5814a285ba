"""Purged walk-forward evaluation of a probability model, and the leakage canaries that check the harness.

``walk_forward`` fits one model per fold (``purged_splits``) through a caller-supplied
``fit_predict(X_train, y_train, X_test) -> p_test`` (so any model family plugs in) and measures every fold and
the concatenated out-of-sample predictions: AUC, log loss and the trading metrics of ``metrics``. Every number
it reports is out of sample: a row's prediction comes from a model that never trained on it or on any row whose
label interval overlaps its fold.

**Each side is scored on its own outcome and its own cost.** A row carries the long's trade (``ret_long_bps``,
exit ``t1``) and the short's (``ret_short_bps``, exit ``t1_short``), each with its own barriers, and each side's
round-trip cost by part (:class:`~huracan_assets.core.validation.metrics.TradeCosts`: the fill bar's half in, the
side's own exit bar's half out, the stop slippage when that side was stopped); a long earns ``ret_long_bps -
cost_long``, a short ``ret_short_bps - cost_short``, and one-position-at-a-time waits for the exit of the side
taken. So the per-trade P&L is the shadow trader's on the same entries, with the same latency, exit-bar costs and
stop slippage (a short is never credited with ``-ret_long_bps``, which on a bar touching both barriers would turn
the short's stop into a profit-take). ``y`` and the purging use ``t1``: the label is the long's outcome.

**Deflated Sharpe.** The DSR needs the number of strategies tried and the variance of their Sharpe ratios.
The number is ``config.dsr_trials`` (the caller's honest count of the model / feature / threshold variants
tried, default 30). The variance is estimated from the folds: the fold Sharpes are the out-of-sample Sharpes of
the same procedure on disjoint periods, so their dispersion is an in-run proxy for how much a Sharpe varies by
luck. ``trials_sharpe_var_folds`` is the sample variance (ddof 1) of the finite annualized fold Sharpes divided
by 365, i.e. in per-period units like the DSR itself; NaN with fewer than two finite fold Sharpes. The overall
Sharpe is measured over all the out-of-sample days, and the sampling variance of a Sharpe shrinks like
1 / length, so by default (``dsr_scale_var_to_length``) the overall DSR scales it by ``mean fold days / overall
days``: the variance the trials would show over the overall length (unscaled, five folds make the benchmark
~sqrt(5) too high and the DSR of any real edge ~0).

A handful of fold Sharpes (``n_folds - 1`` degrees of freedom: 3 with 4 folds) is a noisy variance estimate that
can land near 0 by chance, and a variance near 0 deflates nothing. But unskilled trials differ by luck at least as
much as the sampling noise of a Sharpe: a per-period Sharpe of ``T`` daily returns with no edge has variance
``1 / (T - 1)`` (``metrics.null_sharpe_var``, the ``sqrt(n - 1)`` of the PSR). So every DSR uses the **larger**
of that null variance, ``T`` being the number of daily returns of the series being deflated (the fold's days for
a fold's DSR, all out-of-sample days for the overall one), and the trials' variance above (the null alone when
the trials' variance is NaN). A fold record reports its ``trials_sharpe_var``; ``overall`` reports
``trials_sharpe_var_folds``, ``trials_sharpe_var_null`` and the ``trials_sharpe_var`` used.

**Trades across folds.** Fold metrics select trades inside the fold's rows; the overall metrics select them on
the concatenated out-of-sample rows (one position at a time across fold boundaries, as a live trader would), so
a trade at a fold boundary may differ. The ``oos`` frame carries the overall selection.

**Canaries** (``canaries``): (1) a block-shuffled label must give a chance AUC, (2) a feature matrix built from
data cut at the window's end must equal the one built from all data, (3) a control: an injected leak (the
future return as a feature) must be detected, else the harness itself is broken.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from huracan_assets.core.validation.metrics import (
    DAY_MS,
    PERIODS_PER_YEAR,
    TradeCosts,
    auc,
    auc_null_sigma,
    log_loss,
    metrics_from_trades,
    null_sharpe_var,
    select_trades,
    side_return_bps,
    trading_metrics,
)
from huracan_assets.core.validation.splits import Fold, WalkForwardSpec, purged_splits, validate_event_times

FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
MatrixBuilder = Callable[[], np.ndarray]
# ``fold_map(fn, folds)``: ``[fn(fold) for fold in folds]`` in the folds' order, however it schedules the calls
FoldMap = Callable[[Callable[[Fold], np.ndarray], list[Fold]], list[np.ndarray]]


def in_turn(fn: Callable[[Fold], np.ndarray], folds: list[Fold]) -> list[np.ndarray]:
    """The default ``fold_map``: one fold after the other."""
    return [fn(fold) for fold in folds]


@dataclass(frozen=True)
class WalkForwardConfig:
    """Walk-forward layout, trade threshold, DSR trial count and canary settings."""

    splits: WalkForwardSpec = field(default_factory=WalkForwardSpec)
    threshold: float = 0.05  # long at p >= 0.5 + threshold, short at p <= 0.5 - threshold
    dsr_trials: int = 30  # N of the deflated Sharpe ratio: strategy variants tried
    shuffle_block: int = 24  # rows per block of the block-shuffled label canary
    canary_sigmas: float = 3.0  # block-shuffle bound: |AUC - 0.5| <= canary_sigmas x null sigma
    leak_min_auc: float = 0.75  # the injected-leak control must reach this AUC
    leak_canary_folds: int = 1  # the injected-leak control fits the last this many folds (0: every fold)
    seed: int = 7
    dsr_scale_var_to_length: bool = True  # overall DSR: fold Sharpe variance x (mean fold days / overall days)

    def __post_init__(self) -> None:
        if not isinstance(self.splits, WalkForwardSpec):
            raise ValueError(f"WalkForwardConfig.splits must be a WalkForwardSpec, got {type(self.splits).__name__}")
        if not 0.0 <= self.threshold < 0.5:
            raise ValueError(f"WalkForwardConfig.threshold must be in [0, 0.5), got {self.threshold!r}")
        lf = self.leak_canary_folds
        if not isinstance(lf, int | np.integer) or isinstance(lf, bool) or lf < 0:
            raise ValueError(f"WalkForwardConfig.leak_canary_folds must be an int >= 0, got {lf!r}")
        for name in ("dsr_trials", "shuffle_block"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ValueError(f"WalkForwardConfig.{name} must be an int >= 1, got {value!r}")
        if not self.canary_sigmas > 0:
            raise ValueError(f"WalkForwardConfig.canary_sigmas must be > 0, got {self.canary_sigmas!r}")
        if not 0.5 < self.leak_min_auc <= 1.0:
            raise ValueError(f"WalkForwardConfig.leak_min_auc must be in (0.5, 1], got {self.leak_min_auc!r}")


@dataclass(frozen=True, eq=False)
class WalkForwardResult:
    """Per-fold records, the overall out-of-sample record, the out-of-sample rows and the folds' indices."""

    folds: list[dict[str, Any]]
    overall: dict[str, Any]
    # t0, t1, t1_short, fold, y, p, side (0: no trade), gross_bps, cost_bps, pnl_bps (the trade's, of the side
    # taken; null: no trade), ret_bps (the long's), ret_short_bps, cost_long_bps, cost_short_bps (each side's round
    # trip)
    oos: pl.DataFrame
    splits: list[Fold]
    config: WalkForwardConfig

    def to_dict(self) -> dict[str, Any]:
        """``config``, ``folds`` and ``overall`` as plain JSON-safe Python (NaN and inf become ``None``).

        The ``oos`` rows and the fold indices are left out (they are data, not a report)."""
        return _json_safe({"config": asdict(self.config), "folds": self.folds, "overall": self.overall})


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


# ----------------------------------------------------------------------------------------------- inputs
def _validate(X, y, t0, t1, ret_bps, costs, ret_short_bps, t1_short):
    t0, t1 = validate_event_times(t0, t1)
    _, t1_short = validate_event_times(t0, t1_short)
    n = t0.size
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] != n:
        raise ValueError(f"X must be 2-D with one row per event ({n}), got shape {X.shape}")
    y = np.asarray(y)
    if y.shape != (n,) or not np.all((y == 0) | (y == 1)):
        raise ValueError(f"y must be 1-D with {n} values, each 0 or 1")
    out = []
    for name, arr in (("ret_long_bps", ret_bps), ("ret_short_bps", ret_short_bps)):
        arr = np.asarray(arr, dtype=np.float64)
        if arr.shape != (n,) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be 1-D with {n} finite values")
        out.append(arr)
    if not isinstance(costs, TradeCosts):
        raise TypeError(f"costs must be TradeCosts (each side's round trip by part), got {type(costs).__name__}")
    if len(costs) != n or not (np.isfinite(costs.long).all() and np.isfinite(costs.short).all()):
        raise ValueError(f"costs must hold {n} rows of finite values")
    return X, y.astype(np.int8), t0, t1, out[0], costs, out[1], t1_short


def _predict_fold(fit_predict: FitPredict, X: np.ndarray, y: np.ndarray, fold: Fold) -> np.ndarray:
    p = np.asarray(fit_predict(X[fold.train], y[fold.train], X[fold.test]), dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if p.shape != (fold.test.size,):
        raise ValueError(f"fold {fold.index}: fit_predict returned shape {p.shape}, expected ({fold.test.size},)")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"fold {fold.index}: fit_predict must return probabilities in [0, 1]")
    return p


# ----------------------------------------------------------------------------------------------- walk-forward
def _trials_sharpe_var(fold_base: list[dict[str, Any]]) -> tuple[float, float]:
    """Variance (ddof 1) of the finite annualized fold Sharpes in per-period units, and the mean length (days)
    of those folds; ``(nan, nan)`` below two finite Sharpes."""
    finite = [m for m in fold_base if math.isfinite(m["sharpe"])]
    if len(finite) < 2:
        return math.nan, math.nan
    var = float(np.var([m["sharpe"] for m in finite], ddof=1)) / PERIODS_PER_YEAR
    return var, float(np.mean([m["n_days"] for m in finite]))


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _floored_var(trials_var: float, n_days: int) -> float:
    """The larger of the trials' Sharpe variance and the null variance ``1 / (T - 1)`` (module docstring)."""
    null = null_sharpe_var(n_days)
    if math.isnan(trials_var):
        return null
    return trials_var if math.isnan(null) else max(trials_var, null)


def _fold_record(fold, p, y, t0, t1, ret, cost, ret_s, t1_s, config, trials_var, n_days) -> dict[str, Any]:
    test, train = fold.test, fold.train
    yt = y[test]
    trials_var = _floored_var(trials_var, n_days)
    record: dict[str, Any] = {
        "fold": fold.index,
        "n_train": int(train.size),
        "n_test": int(test.size),
        "purged": fold.purged,
        "embargoed": fold.embargoed,
        "train_start_ms": int(t0[train].min()),
        "train_end_ms": int(t1[train].max()),
        "test_start_ms": int(t0[test].min()),
        "test_end_ms": max(int(t1[test].max()), int(t1_s[test].max())),
        "n_pos": int(yt.sum()),
        "n_neg": int(yt.size - yt.sum()),
        "auc": auc(yt, p),
        "log_loss": log_loss(yt, p),
        "trials_sharpe_var": trials_var,
    }
    record.update(_fold_trading(test, p, t0, t1, ret, cost, ret_s, t1_s, config, config.dsr_trials, trials_var))
    return record


def _fold_trading(test, p, t0, t1, ret, cost, ret_s, t1_s, config, n_trials=1, trials_var=0.0) -> dict[str, Any]:
    """A fold's trading metrics on its test rows (the DSR with the given trials)."""
    return trading_metrics(
        t0[test],
        t1[test],
        p,
        ret[test],
        cost.take(test),
        config.threshold,
        ret_short_bps=ret_s[test],
        t1_short=t1_s[test],
        n_trials=n_trials,
        trials_sharpe_var=trials_var,
    )


def walk_forward(
    X: np.ndarray,
    y: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    ret_long_bps: np.ndarray,
    costs: TradeCosts,
    fit_predict: FitPredict,
    config: WalkForwardConfig | None = None,
    *,
    ret_short_bps: np.ndarray,
    t1_short: np.ndarray,
    last_folds: int = 0,
    fold_map: FoldMap = in_turn,
) -> WalkForwardResult:
    """Fit and predict every purged walk-forward fold; measure the folds and the pooled out-of-sample rows.

    Per row: ``t1`` and ``ret_long_bps`` are the long trade's exit and return, ``t1_short`` and ``ret_short_bps``
    the short trade's (its own barriers: never ``-ret_long_bps``); ``costs`` the round trip of each side, by part
    (``training.dataset.trade_costs``). ``last_folds`` > 0: only the last that many folds of the same splits are
    fitted and measured (the injected-leak control, ``canaries``). ``fold_map`` schedules the folds' fits (they
    are independent: e.g. several at once, ``training.challenger.FoldFits``); the result must not depend on it."""
    config = WalkForwardConfig() if config is None else config
    X, y, t0, t1, ret, cost, ret_s, t1_s = _validate(X, y, t0, t1, ret_long_bps, costs, ret_short_bps, t1_short)
    splits = purged_splits(t0, t1, config.splits)
    if last_folds:
        splits = splits[-last_folds:]
    preds = list(fold_map(lambda fold: _predict_fold(fit_predict, X, y, fold), splits))
    if len(preds) != len(splits):
        raise ValueError(f"fold_map returned {len(preds)} predictions for {len(splits)} folds")

    fold_base = [  # the folds' metrics before the DSR
        _fold_trading(f.test, p, t0, t1, ret, cost, ret_s, t1_s, config) for f, p in zip(splits, preds, strict=True)
    ]
    fold_var, fold_days = _trials_sharpe_var(fold_base)
    folds = [
        _fold_record(f, p, y, t0, t1, ret, cost, ret_s, t1_s, config, fold_var, base["n_days"])
        for f, p, base in zip(splits, preds, fold_base, strict=True)
    ]
    oos_idx = np.concatenate([f.test for f in splits])
    p_oos = np.concatenate(preds)
    fold_of = np.concatenate([np.full(f.test.size, f.index, dtype=np.int32) for f in splits])
    ot0, ot1, oy, oret, ocost = t0[oos_idx], t1[oos_idx], y[oos_idx], ret[oos_idx], cost.take(oos_idx)
    oret_s, ot1_s = ret_s[oos_idx], t1_s[oos_idx]
    trade_idx, trade_side = select_trades(ot0, ot1, p_oos, config.threshold, ot1_s)
    last_ms = max(int(ot1.max()), int(ot1_s.max()))
    overall: dict[str, Any] = {
        "n_folds": len(splits),
        "n_oos": int(oos_idx.size),
        "n_pos": int(oy.sum()),
        "n_neg": int(oy.size - oy.sum()),
        "test_start_ms": int(ot0.min()),
        "test_end_ms": last_ms,
        "auc": auc(oy, p_oos),
        "log_loss": log_loss(oy, p_oos),
        "auc_fold_mean": _finite_mean([f["auc"] for f in folds]),
        "dsr_trials": int(config.dsr_trials),
        "trials_sharpe_var_folds": fold_var,
    }
    n_days = last_ms // DAY_MS - int(ot0.min()) // DAY_MS + 1
    trials_var = fold_var * fold_days / n_days if config.dsr_scale_var_to_length else fold_var
    overall["trials_sharpe_var_null"] = null_sharpe_var(n_days)
    overall["trials_sharpe_var"] = _floored_var(trials_var, n_days)
    gross = side_return_bps(trade_side, oret[trade_idx], oret_s[trade_idx])
    exits = np.where(trade_side > 0, ot1[trade_idx], ot1_s[trade_idx])
    trade_costs = ocost.of_trades(trade_idx, trade_side)
    overall.update(
        metrics_from_trades(
            trade_side,
            gross,
            trade_costs,
            exits,
            int(ot0.min()),
            last_ms,
            n_trials=config.dsr_trials,
            trials_sharpe_var=overall["trials_sharpe_var"],
        )
    )
    side = np.zeros(oos_idx.size, dtype=np.int8)
    side[trade_idx] = trade_side
    traded = {name: np.full(oos_idx.size, np.nan) for name in ("gross_bps", "cost_bps", "pnl_bps")}
    cost_long, cost_short = ocost.totals()
    traded["gross_bps"][trade_idx] = gross
    traded["cost_bps"][trade_idx] = np.where(trade_side > 0, cost_long[trade_idx], cost_short[trade_idx])
    traded["pnl_bps"][trade_idx] = gross - traded["cost_bps"][trade_idx]
    oos = pl.DataFrame(
        {
            "t0": pl.Series(ot0, dtype=pl.Int64),
            "t1": pl.Series(ot1, dtype=pl.Int64),
            "t1_short": pl.Series(ot1_s, dtype=pl.Int64),
            "fold": pl.Series(fold_of, dtype=pl.Int32),
            "y": pl.Series(oy, dtype=pl.Int8),
            "p": pl.Series(p_oos, dtype=pl.Float64),
            "side": pl.Series(side, dtype=pl.Int8),
            **{k: pl.Series(v, dtype=pl.Float64, nan_to_null=True) for k, v in traded.items()},
            "ret_bps": pl.Series(oret, dtype=pl.Float64),
            "ret_short_bps": pl.Series(oret_s, dtype=pl.Float64),
            "cost_long_bps": pl.Series(cost_long, dtype=pl.Float64),
            "cost_short_bps": pl.Series(cost_short, dtype=pl.Float64),
        }
    )
    return WalkForwardResult(folds=folds, overall=overall, oos=oos, splits=splits, config=config)


# ----------------------------------------------------------------------------------------------- canaries
def block_shuffle_labels(y: np.ndarray, block: int, seed: int) -> np.ndarray:
    """``y`` with its contiguous blocks of ``block`` rows (the last may be shorter) put in a seeded random order.

    Within a block the labels keep their order, so the autocorrelation of overlapping labels survives while
    their relation to the features is destroyed."""
    y = np.asarray(y)
    starts = np.arange(0, y.size, block)
    order = np.random.default_rng(seed).permutation(starts.size)
    return np.concatenate([y[starts[k] : starts[k] + block] for k in order]) if y.size else y.copy()


def _block_shuffle_canary(X, y, t0, t1, ret, cost, ret_s, t1_s, fit_predict, config, fold_map) -> dict[str, Any]:
    shuffled = block_shuffle_labels(y, config.shuffle_block, config.seed)
    overall = walk_forward(X, shuffled, t0, t1, ret, cost, fit_predict, config, ret_short_bps=ret_s, t1_short=t1_s,
                           fold_map=fold_map)  # fmt: skip
    overall = overall.overall
    sigma = auc_null_sigma(overall["n_pos"], overall["n_neg"], block=config.shuffle_block)
    bound = config.canary_sigmas * sigma
    value = overall["auc"]
    passed = bool(math.isfinite(value) and math.isfinite(bound) and abs(value - 0.5) <= bound)
    return {"passed": passed, "auc": value, "bound": bound, "sigma": sigma, "block": config.shuffle_block}


def _truncation_canary(build_full: MatrixBuilder | None, build_cut: MatrixBuilder | None) -> dict[str, Any]:
    if build_full is None and build_cut is None:
        return {"passed": None, "reason": "not run"}
    if build_full is None or build_cut is None:
        raise ValueError("the truncation canary needs both build_matrix_full and build_matrix_cut (or neither)")
    full = np.asarray(build_full(), dtype=np.float64)
    cut = np.asarray(build_cut(), dtype=np.float64)
    if full.shape != cut.shape:
        return {"passed": False, "reason": f"shapes differ: {full.shape} vs {cut.shape}", "n_diff": None}
    differ = ~((full == cut) | (np.isnan(full) & np.isnan(cut)))
    n_diff = int(differ.sum())
    return {"passed": bool(np.array_equal(full, cut, equal_nan=True)), "n_diff": n_diff, "shape": list(full.shape)}


def _injected_leak_canary(X, y, t0, t1, ret, cost, ret_s, t1_s, fit_predict, config, fold_map) -> dict[str, Any]:
    """The control on the last ``leak_canary_folds`` folds (``canaries``: why one fold is as strong as all)."""
    leaky = np.column_stack([np.asarray(X, dtype=np.float64), np.asarray(ret, dtype=np.float64)])
    result = walk_forward(leaky, y, t0, t1, ret, cost, fit_predict, config, ret_short_bps=ret_s, t1_short=t1_s,
                          last_folds=config.leak_canary_folds, fold_map=fold_map)  # fmt: skip
    value = result.overall["auc"]
    passed = bool(math.isfinite(value) and value >= config.leak_min_auc)
    return {"passed": passed, "auc": value, "min_auc": config.leak_min_auc, "folds": len(result.splits),
            "n_oos": result.overall["n_oos"]}  # fmt: skip


def canaries(
    X: np.ndarray,
    y: np.ndarray,
    t0: np.ndarray,
    t1: np.ndarray,
    ret_long_bps: np.ndarray,
    costs: TradeCosts,
    fit_predict: FitPredict,
    config: WalkForwardConfig | None = None,
    build_matrix_full: MatrixBuilder | None = None,
    build_matrix_cut: MatrixBuilder | None = None,
    *,
    ret_short_bps: np.ndarray,
    t1_short: np.ndarray,
    fold_map: FoldMap = in_turn,
) -> dict[str, Any]:
    """Run the leakage canaries; ``"passed"`` is True iff every canary that ran passed. The outcome arrays and
    ``fold_map`` are :func:`walk_forward`'s.

    * ``block_shuffle``: ``y`` block-shuffled (``shuffle_block`` rows, ``seed``), walk-forward rerun; passed iff
      ``|AUC - 0.5| <= canary_sigmas x auc_null_sigma(n_pos, n_neg, block=shuffle_block)`` on the pooled
      out-of-sample rows. A failure means the harness finds signal where there is none (leaky splits, a
      feature that encodes the row's position, ...).
    * ``truncation``: only with both builders (zero-argument callables returning the training matrix of the
      same window, built from all data / from data cut at the window's end); passed iff the matrices are
      identical (NaN equal NaN). ``{"passed": None, "reason": "not run"}`` without them.
    * ``injected_leak`` (a control): ``ret_long_bps`` (what ``y`` is made of) appended to ``X`` as a feature,
      walk-forward rerun on the last ``leak_canary_folds`` folds (default 1; 0: every fold); passed iff their
      pooled AUC >= ``leak_min_auc``. A failure means the harness cannot see even a blatant leak.

    **Why the control needs one fold and the block shuffle needs them all** (the fits that matter):

    * The injected feature *is* the label's return, so a sound harness scores near-perfect AUC (> 0.95 in the tests,
      against a bar of 0.75) on any fold of more than a few hundred rows: the control's margin is not statistical.
      What it guards is the wiring every fold shares (the fit sees the columns it is given, predictions are
      aligned with the test rows, the scorer reads them), and a fault there (a dropped column, shuffled or
      constant predictions) shows on the last fold as on every fold; a constant score gives 0.5 on any subset. The
      last fold is also the one closest to the final fit (the largest training set). Which folds exist is the
      splits' own business, tested apart (``splits.py``). So fitting three more folds buys no power: 3 of a coin's
      13 fits are saved.
    * The block shuffle is a statistical test: its bound is ``canary_sigmas`` null sigmas of the pooled AUC, and the
      sigma grows like ``1 / sqrt(rows)``. On the last of 4 folds (a quarter of the out-of-sample rows) the smallest
      AUC shift it flags with 99 % power would double (``(3 + 2.33) sigma``), so a leak half as strong would pass
      unseen. It keeps every fold.
    """
    config = WalkForwardConfig() if config is None else config
    X, y, t0, t1, ret, cost, ret_s, t1_s = _validate(X, y, t0, t1, ret_long_bps, costs, ret_short_bps, t1_short)
    truncation = _truncation_canary(build_matrix_full, build_matrix_cut)  # first: cheap, and may reject misuse
    report: dict[str, Any] = {
        "block_shuffle": _block_shuffle_canary(X, y, t0, t1, ret, cost, ret_s, t1_s, fit_predict, config, fold_map),
        "truncation": truncation,
        "injected_leak": _injected_leak_canary(X, y, t0, t1, ret, cost, ret_s, t1_s, fit_predict, config, fold_map),
    }
    report["passed"] = all(c["passed"] for c in report.values() if c["passed"] is not None)
    return report
