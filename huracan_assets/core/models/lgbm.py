"""LightGBM binary classifier, the default model kind (``"lightgbm"``), trained with the native ``lgb.train``.

Pinned on every fit, never taken from ``ModelSpec.params``: ``num_threads = spec.threads`` (the run-time budget),
``deterministic`` and ``force_row_wise`` (no timing-based choice of the histogram layout), ``seed = spec.seed`` and
the derived ``bagging_seed``, ``feature_fraction_seed``, ``data_random_seed`` (``seed + 1``, ``+ 2``, ``+ 3``).
LightGBM documents that ``deterministic`` (CPU) gives the same results for the same data and parameters with a
different ``num_threads``, and asks for ``force_row_wise`` or ``force_col_wise`` with it against numerical
instability; other LightGBM versions, compilers or systems may still differ.

``model.bin`` is ``booster.model_to_string()`` encoded UTF-8: the trees, the feature names and LightGBM's full
parameter list, with its ``num_threads`` entry written as ``0`` (LightGBM's "default"), so the bytes do not depend
on the thread budget either. It holds no time stamp and no path. The fitted model predicts through a booster
re-read from those bytes, so a loaded model predicts exactly like the fitted one (each row's prediction is a sum
over the trees in a fixed order, whatever the threads). Model strings of older bundles carry the thread count of
the machine that trained them; they load, and predict with the caller's threads.

NaN in ``X`` is LightGBM's missing value (``use_missing``); feature names must be LightGBM-safe
(letters, digits and ``_ . : -``), so they survive the model string unchanged.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np

from huracan_assets.core.models.base import ModelSpec, TrainSet, check_features, coerce_param

KIND = "lightgbm"

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "num_boost_round": 200,
    "verbose": -1,
    # LightGBM's own defaults, listed so they may be tuned (and are recorded explicitly):
    "lambda_l1": 0.0,
    "max_depth": -1,
    "min_gain_to_split": 0.0,
    "min_sum_hessian_in_leaf": 1e-3,
    "max_bin": 255,
    "extra_trees": False,
    "path_smooth": 0.0,
    "scale_pos_weight": 1.0,
}
OBJECTIVES = ("binary", "cross_entropy")
# names in LightGBM's parameter list (the model string) that differ from ours
_LGB_NAMES = {"num_boost_round": "num_iterations", "verbose": "verbosity"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.:\-]+$")
_FRACTIONS = ("feature_fraction", "bagging_fraction")
_NON_NEGATIVE = ("lambda_l1", "lambda_l2", "min_gain_to_split", "min_sum_hessian_in_leaf", "path_smooth")
_THREADS_ENTRY = re.compile(r"^\[num_threads: -?\d+\]$", re.MULTILINE)
STORED_THREADS_ENTRY = "[num_threads: 0]"


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: coerce_param(KIND, k, v, DEFAULT_PARAMS[k]) for k, v in params.items()}
    merged = {**DEFAULT_PARAMS, **out}
    if merged["objective"] not in OBJECTIVES:
        raise ValueError(f"lightgbm objective must be one of {OBJECTIVES}, got {merged['objective']!r}")
    for name in _FRACTIONS:
        if not 0.0 < merged[name] <= 1.0:
            raise ValueError(f"lightgbm {name} must be in (0, 1], got {merged[name]}")
    for name in _NON_NEGATIVE:
        if merged[name] < 0:
            raise ValueError(f"lightgbm {name} must be >= 0, got {merged[name]}")
    checks = {
        "learning_rate": merged["learning_rate"] > 0,
        "num_leaves": merged["num_leaves"] >= 2,
        "min_data_in_leaf": merged["min_data_in_leaf"] >= 1,
        "num_boost_round": merged["num_boost_round"] >= 1,
        "bagging_freq": merged["bagging_freq"] >= 0,
        "max_bin": merged["max_bin"] >= 2,
        "scale_pos_weight": merged["scale_pos_weight"] > 0,
    }
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"lightgbm params out of range: {[(k, merged[k]) for k in bad]}")
    return out


def train_params(spec: ModelSpec) -> tuple[dict[str, Any], int]:
    """The ``lgb.train`` parameters (resolved params plus the pinned ones) and the number of rounds."""
    params = spec.resolved_params()
    rounds = params.pop("num_boost_round")
    params.update(
        num_threads=spec.threads,
        deterministic=True,
        force_row_wise=True,
        seed=spec.seed,
        bagging_seed=spec.seed + 1,
        feature_fraction_seed=spec.seed + 2,
        data_random_seed=spec.seed + 3,
    )
    return params, rounds


@dataclass(frozen=True)
class LightGBMModel:
    """A fitted LightGBM booster (re-read from its model string) with its spec and feature names."""

    spec: ModelSpec
    feature_names: tuple[str, ...]
    model_str: str = field(repr=False)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    kind: str = KIND

    def __post_init__(self) -> None:
        object.__setattr__(self, "_booster", lgb.Booster(model_str=self.model_str))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        arr = check_features(X, len(self.feature_names))
        if arr.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        out = self._booster.predict(arr, num_threads=self.spec.threads)  # type: ignore[attr-defined]
        return np.ascontiguousarray(out, dtype=np.float64)

    def to_bytes(self) -> bytes:
        return self.model_str.encode("utf-8")


class BinnedCache:
    """LightGBM's binned training sets, kept for fits on the very same training rows with other labels.

    Binning (``Dataset.construct``: the bin edges of every feature, then each value's bin) depends on the feature
    matrix and the parameters only, never on the labels; it is a good part of a fit on a few tens of thousands of
    rows. The walk-forward and the block-shuffle canary fit each fold's training rows twice, with the true and the
    shuffled labels: with a cache the second fit reuses the first one's bins and only swaps the labels
    (``set_label``), and trains exactly the model a fresh Dataset gives (a test compares the model strings).

    The key is the training matrix's bytes (BLAKE2b), its shape, the feature names, the weights and the binning
    parameters, so nothing is shared between different rows: bins never see rows outside the fit's own training
    set (binning on the whole window would tell every fold the distribution of its test rows). At most
    ``max_entries`` sets are kept (the oldest goes first)."""

    def __init__(self, max_entries: int = 8) -> None:
        self.max_entries = max_entries
        self._sets: dict[tuple, lgb.Dataset] = {}
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()  # fits of different folds may run at once (``FoldFits``)

    @staticmethod
    def key(train: TrainSet, params: Mapping[str, Any]) -> tuple:
        x = np.ascontiguousarray(train.X, dtype=np.float64)
        digest = hashlib.blake2b(x.tobytes(), digest_size=16).hexdigest()
        weight = None if train.weight is None else hashlib.blake2b(np.ascontiguousarray(train.weight).tobytes(),
                                                                      digest_size=16).hexdigest()  # fmt: skip
        binning = tuple(sorted((k, str(v)) for k, v in params.items() if k in _BINNING_PARAMS))
        return x.shape, digest, tuple(train.feature_names), weight, binning

    def dataset(self, train: TrainSet, params: Mapping[str, Any]) -> lgb.Dataset:
        key = self.key(train, params)
        label = train.y.astype(np.float64)
        with self._lock:  # a set is used by one fit at a time: its rows are one fold's, fitted in turn
            found = self._sets.get(key)
            if found is not None:
                self.hits += 1
                found.set_label(label)
                return found
            self.misses += 1
            dataset = _dataset(train, free_raw_data=False)  # binned by lgb.train, with the fit's parameters
            if len(self._sets) >= self.max_entries:
                self._sets.pop(next(iter(self._sets)))
            self._sets[key] = dataset
            return dataset


# LightGBM parameters that change the binning (a cached set is reused only under the same ones)
_BINNING_PARAMS = frozenset({"max_bin", "min_data_in_bin", "bin_construct_sample_cnt", "data_random_seed",
                             "use_missing", "zero_as_missing", "feature_pre_filter", "min_data_in_leaf",
                             "linear_tree", "max_bin_by_feature", "force_row_wise", "force_col_wise"})  # fmt: skip


def _dataset(train: TrainSet, free_raw_data: bool = True) -> lgb.Dataset:
    return lgb.Dataset(
        train.X,
        label=train.y.astype(np.float64),
        weight=train.weight,
        feature_name=list(train.feature_names),
        free_raw_data=free_raw_data,
    )


def fit(train: TrainSet, spec: ModelSpec, cache: BinnedCache | None = None) -> LightGBMModel:
    bad = [n for n in train.feature_names if not _SAFE_NAME.match(n)]
    if bad:
        raise ValueError(f"feature names not allowed in a LightGBM model (use letters, digits, _ . : -): {bad}")
    params, rounds = train_params(spec)
    dataset = cache.dataset(train, params) if cache is not None else _dataset(train)
    booster = lgb.train(params, dataset, num_boost_round=rounds, keep_training_booster=False)
    model_str = without_thread_count(booster.model_to_string())
    metadata = {"device": "cpu", "num_trees": booster.num_trees()}
    return LightGBMModel(spec=spec, feature_names=train.feature_names, model_str=model_str, metadata=metadata)


def without_thread_count(model_str: str) -> str:
    """The model string with its ``num_threads`` parameter entry written as ``0``: the thread budget of the fit
    is not part of the model."""
    stored, n = _THREADS_ENTRY.subn(STORED_THREADS_ENTRY, model_str)
    if n != 1:
        raise ValueError(f"expected one num_threads entry in the LightGBM model string, found {n}")
    return stored


def _spec_from_booster(booster: lgb.Booster, threads: int) -> ModelSpec:
    loaded = booster.params
    params = {}
    for name, default in DEFAULT_PARAMS.items():
        value = loaded.get(_LGB_NAMES.get(name, name), default)
        value = coerce_param(KIND, name, value, default)
        if value != default:
            params[name] = value
    return ModelSpec(kind=KIND, params=params, seed=int(loaded["seed"]), threads=threads)


def load(data: bytes, threads: int = 1) -> LightGBMModel:
    try:
        model_str = data.decode("utf-8")
        booster = lgb.Booster(model_str=model_str)
    except (UnicodeDecodeError, lgb.basic.LightGBMError) as exc:
        raise ValueError(f"not a LightGBM model string: {exc}") from exc
    spec = _spec_from_booster(booster, threads)
    metadata = {"device": "cpu", "num_trees": booster.num_trees()}
    return LightGBMModel(spec=spec, feature_names=tuple(booster.feature_name()), model_str=model_str, metadata=metadata)
