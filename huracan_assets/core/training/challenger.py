"""One coin's challenger for day D, trained from scratch and validated honestly; and its refit through D.

:func:`train_challenger` is the whole of it, from the stored features, engine signals and labels of the coin:

1. the training set of ``[D - S - W, D - S - embargo)`` (:func:`training_set`: events whose vertical barrier
   falls inside the window, the median cost where a bar had none);
2. the arrays the validation reads (:func:`training_arrays`: X, y, each side's outcome and its own round trip);
3. the purged, embargoed walk-forward and the leakage canaries (block-shuffled labels, an injected leak), every
   fit through :func:`fit_predict` (which enforces the deadline); the truncation canary is the caller's (it
   rebuilds from raw candles) and comes in as ``truncation``, merged by :func:`with_truncation`;
4. the final fit on the whole window with the same spec and seed, and the ``metrics.json`` document.

:func:`refit_challenger` fits the same spec and seed on ``[D + 1 - W, D + 1)`` (every event resolved by the end
of D), published on promotion in place of the validated model, never evaluated on its own data.
:func:`bundle_config` is the ``config.json`` of either. Pure: polars, numpy and the model kinds; the graph
(``defs/models.py``), the benchmarks and any worker call these same functions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from huracan_assets.core.execution import StopSlippage
from huracan_assets.core.features.recipe import FeatureRecipe
from huracan_assets.core.models.base import Model, ModelSpec, TrainSet, fit, library_versions
from huracan_assets.core.training.dataset import (
    Windows,
    fill_missing_costs,
    matrix,
    signal_feature_names,
    trade_costs,
    training_frame,
)
from huracan_assets.core.validation.metrics import TradeCosts
from huracan_assets.core.validation.splits import Fold
from huracan_assets.core.validation.walk_forward import WalkForwardConfig, canaries, in_turn, walk_forward


class TrainingTimeout(TimeoutError):
    """A coin's training ran past its deadline (``models.timeout_seconds``)."""


@dataclass(frozen=True)
class TrainingSpec:
    """Everything a coin's training reads besides its data (built from the settings at load, ``specs.py``)."""

    recipe: FeatureRecipe
    engines: tuple[str, ...]
    model: ModelSpec
    walk_forward: WalkForwardConfig
    stop_slippage: StopSlippage
    bar_ms: int
    horizon_ms: int  # the label's vertical barrier: an event belongs to a window when its barrier falls inside
    min_train_rows: int
    timeout_seconds: float

    @property
    def names(self) -> tuple[str, ...]:
        """The model's inputs, in order: the recipe's features, then the engine directions, score and regime."""
        return tuple(self.recipe.names) + tuple(signal_feature_names(self.engines))


@dataclass(frozen=True)
class TrainingArrays:
    x: np.ndarray
    y: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    ret_bps: np.ndarray  # the long's outcome
    cost: TradeCosts  # each side's own round trip, by part
    ret_short_bps: np.ndarray  # the short's own outcome (its own barriers, never -ret_bps)
    t1_short: np.ndarray

    def args(self) -> tuple:
        return self.x, self.y, self.t0, self.t1, self.ret_bps, self.cost

    def short(self) -> dict[str, np.ndarray]:
        return {"ret_short_bps": self.ret_short_bps, "t1_short": self.t1_short}


@dataclass(frozen=True)
class Skipped:
    """Why a coin has no model today (not an error: too little history)."""

    reason: str


@dataclass(frozen=True)
class ChallengerResult:
    model: Model  # the final fit on the whole window
    windows: dict[str, str]  # Windows.to_dict()
    walk_forward: dict[str, Any]
    canaries: dict[str, Any]
    metrics: dict[str, Any]  # the bundle's metrics.json
    rows: int
    rows_without_cost_estimate: int

    @property
    def promotable(self) -> bool:
        return bool(self.canaries["passed"])


@dataclass(frozen=True)
class RefitResult:
    model: Model
    windows: dict[str, str]
    metrics: dict[str, Any]


def training_set(
    features: pl.DataFrame, signals: pl.DataFrame | None, labels: pl.DataFrame, win: Windows, spec: TrainingSpec
) -> pl.DataFrame:
    """The window's events with their inputs and outcomes (costs not yet filled)."""
    return training_frame(
        features, signals, labels, win.training_start_ms, win.training_end_ms, spec.bar_ms, spec.recipe.names,
        list(spec.engines), horizon_ms=spec.horizon_ms,
    )  # fmt: skip


def training_arrays(frame: pl.DataFrame, spec: TrainingSpec) -> TrainingArrays:
    """X in :attr:`TrainingSpec.names` order, the label and each side's outcome and costs (costs filled)."""
    cols = [frame[c].to_numpy() for c in ("y", "t0", "t1", "ret_bps", "ret_short_bps", "t1_short")]
    return TrainingArrays(
        matrix(frame, spec.names), cols[0].astype(np.int8), cols[1], cols[2], cols[3],
        trade_costs(frame, spec.stop_slippage), cols[4], cols[5],
    )  # fmt: skip


def new_cache(spec: ModelSpec):
    """The fits' reusable structures for one coin's validation (LightGBM: its binned training sets), or None."""
    if spec.kind != "lightgbm":
        return None
    from huracan_assets.core.models.lgbm import BinnedCache

    return BinnedCache()


class FoldFits:
    """One coin's validation fits: the ``fit_predict`` and the ``fold_map`` of the walk-forward and the canaries.

    Each call fits afresh (extra columns: the canaries' leak control) and returns the probabilities on the test
    rows; past ``deadline`` (``time.monotonic()``) it raises :class:`TrainingTimeout`. The block-shuffle canary
    refits each walk-forward fold's rows, so a LightGBM fit reuses the fold's bins (``new_cache``).

    **Folds at once.** The folds of one walk-forward are independent fits, so ``fold_map`` fits up to ``threads``
    of them at once (LightGBM only), each on ``threads // k`` of the budget (``k`` in flight); a lone fold (the
    leak control's) keeps the whole budget. LightGBM on a few tens of thousands of rows uses a second thread for
    well under twice the speed, while two one-thread fits side by side nearly double the throughput
    (``bench_daily_loop``). The models do not depend on it: LightGBM's ``deterministic`` mode gives the same trees
    for any thread count (``core/models/lgbm.py``), and the folds come back in their order
    (``test_challenger``: byte-identical reports and bundles). ``threads`` stays the process's budget: with
    ``workers`` processes of ``cores // workers`` threads, the machine is never oversubscribed."""

    def __init__(self, spec: ModelSpec, names: Sequence[str], deadline: float | None = None) -> None:
        self.spec = spec
        self.names = tuple(names)
        self.deadline = deadline
        self.cache = new_cache(spec)
        self.parallel = spec.threads if spec.kind == "lightgbm" else 1  # torch's thread count is process-wide
        self._local = threading.local()

    def fit_predict(self, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TrainingTimeout("training exceeded models.timeout_seconds")
        cols = self.names + tuple(f"canary_extra_{i}" for i in range(x_train.shape[1] - len(self.names)))
        threads = self.current_threads()
        spec = self.spec if threads == self.spec.threads else replace(self.spec, threads=threads)
        model = fit(TrainSet(x_train, y_train.astype(np.int8), cols), spec, cache=self.cache)
        return model.predict_proba(x_test)

    __call__ = fit_predict

    def current_threads(self) -> int:
        """The threads of a fit started on this thread now: its share inside ``fold_map``, else the budget."""
        return getattr(self._local, "threads", self.spec.threads)

    def fold_map(self, fn: Callable[[Fold], np.ndarray], folds: list[Fold]) -> list[np.ndarray]:
        k = min(self.parallel, len(folds))
        if k <= 1:
            return [fn(fold) for fold in folds]
        share = max(1, self.spec.threads // k)

        def one(fold: Fold) -> np.ndarray:
            self._local.threads = share
            return fn(fold)

        # the largest training sets first (longest processing time first): the last fits to start are the short
        # ones, so the slots finish together (expanding folds: about 10 % off the walk-forward's wall time)
        order = sorted(range(len(folds)), key=lambda i: -_train_rows(folds[i]))
        with ThreadPoolExecutor(max_workers=k, thread_name_prefix="fold-fit") as pool:
            futures = {i: pool.submit(one, folds[i]) for i in order}
            return [futures[i].result() for i in range(len(folds))]


def _train_rows(fold: object) -> int:
    train = getattr(fold, "train", None)
    return 0 if train is None else len(train)


def fit_predict(spec: ModelSpec, names: Sequence[str], deadline: float | None = None) -> FoldFits:
    """The fits of one coin's validation, one fold after another or several at once (:class:`FoldFits`)."""
    return FoldFits(spec, names, deadline)


def validate(
    arrays: TrainingArrays, spec: TrainingSpec, run: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The walk-forward report and the per-coin canaries, every fit through ``run`` (a :class:`FoldFits` also
    schedules the folds)."""
    fold_map = run.fold_map if isinstance(run, FoldFits) else in_turn
    wf = walk_forward(*arrays.args(), run, spec.walk_forward, **arrays.short(), fold_map=fold_map).to_dict()
    can = canaries(*arrays.args(), run, spec.walk_forward, **arrays.short(), fold_map=fold_map)
    return wf, can


def with_truncation(can: Mapping[str, Any], samples: Mapping[str, Mapping[str, Any]], key: str) -> dict[str, Any]:
    """``can`` with the date's truncation canary (``samples``: sampled coin key -> its rebuild's result, ``passed``
    True / False / None for "could not run"). A failure on any sampled coin fails every coin of the date (a leak in
    the pipeline is rarely one coin's); a sampled coin is judged on its own rebuild, and one whose rebuild could
    not run is not promotable; a coin outside the sample takes the sample's result, and without any rebuild that
    ran, nobody is promotable."""
    failed = {k: r for k, r in samples.items() if r["passed"] is False}
    ran = [k for k, r in samples.items() if r["passed"] is True]
    sampled = sorted(samples)
    if failed:
        first = next(iter(failed))
        trunc = {"passed": False, "reason": f"failed on {first}: {failed[first].get('reason')}"}
        trunc = {**(samples[key] if key in failed else {}), **trunc, "sampled": sampled}
    elif key in samples:
        own = samples[key]
        trunc = {**own, "sampled": sampled}
        if own["passed"] is None:
            trunc["reason"] = f"could not run: {own.get('reason')}; not promotable"
    elif ran:
        trunc = {"passed": True, "reason": f"not sampled; passed on the date's sample {ran}", "sampled": sampled}
    else:
        why = "; ".join(f"{k}: {r.get('reason')}" for k, r in samples.items()) or "no coin sampled"
        trunc = {"passed": None, "reason": f"could not run ({why}); not promotable", "sampled": sampled}
    others = [c["passed"] for name, c in can.items() if isinstance(c, dict) and name != "truncation"]
    return {**can, "truncation": trunc, "passed": bool(trunc["passed"] is True and all(o is not False for o in others))}


def canary_reason(can: Mapping[str, Any]) -> str:
    """One line on why a coin's canaries did not pass."""
    bad = [name for name, c in can.items() if isinstance(c, dict) and c.get("passed") is False]
    if not bad and can.get("truncation", {}).get("passed") is None:
        return "canaries incomplete: truncation " + str(can["truncation"].get("reason"))[:300]
    return "canaries failed: " + ", ".join(bad) + " " + json.dumps({k: can[k] for k in bad}, default=str)[:300]


def train_challenger(
    features: pl.DataFrame,
    signals: pl.DataFrame | None,
    labels: pl.DataFrame,
    win: Windows,
    spec: TrainingSpec,
    truncation: Mapping[str, Mapping[str, Any]] | None = None,
    key: str = "",
    deadline: float | None = None,
) -> ChallengerResult | Skipped:
    """Train, validate and fit one coin's challenger on ``win`` (module docstring). ``truncation``: the date's
    truncation canary samples (:func:`with_truncation`; None: not run, so the coin is not promotable)."""
    frame = training_set(features, signals, labels, win, spec)
    if frame.height < spec.min_train_rows:
        return Skipped(f"short history: {frame.height} events < {spec.min_train_rows}")
    frame, no_cost = fill_missing_costs(frame)
    arrays = training_arrays(frame, spec)
    deadline = time.monotonic() + spec.timeout_seconds if deadline is None else deadline
    wf, can = validate(arrays, spec, fit_predict(spec.model, spec.names, deadline))
    can = with_truncation(can, truncation or {}, key)
    metrics = {
        "validated_model": {
            "this_bundle": True,
            "what": "the walk-forward folds and canaries validate this spec and seed on the training window; "
            "model.bin is the final fit on the whole window with the same spec and seed",
        },
        "walk_forward": wf,
        "canaries": can,
        "promotable": bool(can["passed"]),
        "rows": frame.height,
        "rows_without_cost_estimate": no_cost,
    }
    final = fit(TrainSet(arrays.x, arrays.y, spec.names), spec.model)
    return ChallengerResult(final, win.to_dict(), wf, can, metrics, frame.height, no_cost)


def refit_challenger(
    features: pl.DataFrame,
    signals: pl.DataFrame | None,
    labels: pl.DataFrame,
    day: date,
    training_days: int,
    spec: TrainingSpec,
    validated: Mapping[str, Any],
    evidence: Mapping[str, Any],
) -> RefitResult | Skipped:
    """The same spec and seed fitted on ``[D + 1 - W, D + 1)``. ``validated``: the validated bundle's model id,
    path, sha256 and training window; ``evidence``: its metrics (walk-forward, canaries, promotable), which the
    refit's metrics.json carries as the evidence (a refit is never evaluated on its own data)."""
    win = Windows.refit_for_day(day, training_days)
    frame = training_set(features, signals, labels, win, spec)
    if frame.height < spec.min_train_rows:
        return Skipped(f"{frame.height} events < {spec.min_train_rows}")
    frame, no_cost = fill_missing_costs(frame)
    y = frame["y"].to_numpy().astype(np.int8)
    model = fit(TrainSet(matrix(frame, spec.names), y, spec.names), spec.model)
    windows = win.to_dict()
    metrics = {
        "validated_model": {
            "this_bundle": False,
            **{k: validated[k] for k in ("model_id", "bundle_path", "sha256", "training")},
            "what": "walk_forward and canaries are the validated model's; this bundle is a refit through as_of "
            "with the same spec and seed, never evaluated on its own data",
        },
        "refit": {"training": windows["training"], "rows": frame.height, "rows_without_cost_estimate": no_cost},
        **{k: evidence[k] for k in ("walk_forward", "canaries", "promotable")},
        "rows": frame.height,
    }
    return RefitResult(model, windows, metrics)


def bundle_config(
    day: date, symbol: str, timeframe: str, spec: TrainingSpec, windows: Mapping[str, str], label: Mapping[str, Any]
) -> dict[str, Any]:
    """The bundle's ``config.json``: what was trained on what, and how (``label``: the labels' settings)."""
    return {
        "as_of": day.isoformat(),
        "symbol": symbol,
        "timeframe": timeframe,
        "recipe": spec.recipe.to_dict(),
        "recipe_hash": spec.recipe.hash,
        "model": spec.model.to_dict(),
        "seed": spec.model.seed,
        "feature_names": list(spec.names),
        "engines": list(spec.engines),
        "windows": dict(windows),
        "label": dict(label),
        "library_versions": library_versions(),
    }


def report_rows(model_id: str, sha: str, wf: Mapping[str, Any], passed: bool) -> pl.DataFrame:
    """The walk-forward report as registry ``model_metrics`` rows: one per fold and one overall."""
    rows = []
    for name, m in [*((f"wf_fold_{f['fold']}", f) for f in wf["folds"]), ("wf_overall", wf["overall"])]:
        rows.append(
            {
                "model_id": model_id,
                "window": name,
                "auc": m.get("auc"),
                "log_loss": m.get("log_loss"),
                "hit_rate": m.get("hit_rate"),
                "net_bps": m.get("net_bps_per_trade"),
                "cost_bps": m.get("cost_bps_per_trade"),
                "sharpe": m.get("sharpe"),
                "psr": m.get("psr"),
                "dsr": m.get("dsr"),
                "drawdown": m.get("max_drawdown"),
                "turnover": m.get("turnover_per_day"),
                "n_trades": m.get("n_trades"),
                "n_test": m.get("n_test", m.get("n_oos")),
                "canaries_passed": passed,
                "promoted": False,
                "sha256": sha,
                "detail": m,
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)
