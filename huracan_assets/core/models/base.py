"""The per-coin model interface: ``ModelSpec``, ``TrainSet``, ``Model`` and the registry of model kinds.

Every model kind answers one question per bar: P(y = 1), the probability that the realized triple-barrier
return is positive. A kind is one module exposing three module-level names:

- ``DEFAULT_PARAMS``: its hyperparameters and their defaults (the only accepted ``ModelSpec.params`` keys);
- ``check_params(params) -> dict``: validates and normalizes overrides (types coerced to the defaults' types);
- ``fit(train, spec) -> Model`` and ``load(data, threads=1) -> Model``.

The registry (:data:`KINDS`) names the modules and imports them on first use, so ``torch`` is imported only when
the ``torch_mlp`` kind is used: the production install may lack it (``pip install '.[torch]'``).

Determinism: for the same ``TrainSet``, ``ModelSpec`` and library versions, :func:`fit` returns a model whose
:meth:`Model.to_bytes` is byte-identical from one process to the next (the tests check it in fresh processes), and
whatever the thread budget: ``spec.threads`` is a run-time argument (how many CPU threads the fit and the
predictions may use), never part of what is stored or hashed (:meth:`ModelSpec.to_dict`, ``model.bin``), so the
same model trained on a machine with another core count gets the same bytes and the same bundle id.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

import numpy as np

MAX_SEED = 2**31 - 16  # LightGBM seeds are int32; derived seeds add small offsets
_SPEC_KEYS = ("kind", "params", "seed")
_LEGACY_SPEC_KEYS = ("threads",)  # written by older bundles (the machine's thread budget): accepted, ignored


@dataclass(frozen=True)
class _Kind:
    module: str
    extra: str | None = None  # the pip extra that installs the kind's library, when it is optional


KINDS: dict[str, _Kind] = {
    "lightgbm": _Kind("huracan_assets.core.models.lgbm"),
    "torch_mlp": _Kind("huracan_assets.core.models.mlp", extra="torch"),
}


def _kind_module(kind: str) -> ModuleType:
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; known kinds: {sorted(KINDS)}")
    return importlib.import_module(KINDS[kind].module)


def _plain(value: Any) -> Any:
    """Tuples become lists, numpy scalars Python numbers: params survive a JSON round trip unchanged."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class ModelSpec:
    """Which model kind, its hyperparameter overrides and the seed; plus the run-time CPU thread budget.

    ``params`` holds overrides only, merged over the kind's defaults by :meth:`resolved_params`; it is stored as
    a plain dict sorted by key, values normalized by the kind (ints given for float parameters become floats,
    tuples become lists). Unknown kinds and unknown parameters are refused at construction.

    ``threads`` is how many CPU threads fitting and predicting may use on this machine. It is not part of the
    model: equality, :meth:`same_model_as`, the hash and :meth:`to_dict` leave it out, and the kinds keep their
    results independent of it.
    """

    kind: str = "lightgbm"
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 7
    threads: int = field(default=1, compare=False)

    def __post_init__(self) -> None:
        module = _kind_module(self.kind)
        if not isinstance(self.params, Mapping):
            raise ValueError(f"ModelSpec.params must be a mapping, got {type(self.params).__name__}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int | np.integer):
            raise ValueError(f"ModelSpec.seed must be an int, got {self.seed!r}")
        if not 0 <= int(self.seed) <= MAX_SEED:
            raise ValueError(f"ModelSpec.seed must be in [0, {MAX_SEED}], got {self.seed}")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int | np.integer) or self.threads < 1:
            raise ValueError(f"ModelSpec.threads must be an int >= 1, got {self.threads!r}")
        known = set(module.DEFAULT_PARAMS)
        unknown = sorted(set(self.params) - known)
        if unknown:
            raise ValueError(f"unknown {self.kind} params {unknown}; known params: {sorted(known)}")
        checked = module.check_params({k: _plain(v) for k, v in self.params.items()})
        object.__setattr__(self, "params", dict(sorted(checked.items())))
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "threads", int(self.threads))

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def resolved_params(self) -> dict[str, Any]:
        """The kind's defaults with this spec's overrides, sorted by key."""
        module = _kind_module(self.kind)
        return dict(sorted({**module.DEFAULT_PARAMS, **self.params}.items()))

    def same_model_as(self, other: ModelSpec) -> bool:
        """True when both specs train the same model (same kind, seed and resolved params; threads do not count)."""
        return (self.kind, self.seed, self.resolved_params()) == (other.kind, other.seed, other.resolved_params())

    def to_dict(self) -> dict[str, Any]:
        """What the model is (bundle ``config.json``, registry): no thread budget, which depends on the machine."""
        return {"kind": self.kind, "params": dict(self.params), "seed": self.seed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], threads: int = 1) -> ModelSpec:
        """The spec of :meth:`to_dict`, run with ``threads``. An older bundle's ``threads`` (the budget of the
        machine that trained it) is accepted and ignored."""
        unknown = sorted(set(d) - set(_SPEC_KEYS) - set(_LEGACY_SPEC_KEYS))
        if unknown:
            raise ValueError(f"unknown ModelSpec keys {unknown}; expected {list(_SPEC_KEYS)}")
        return cls(**{k: d[k] for k in _SPEC_KEYS if k in d}, threads=threads)


# --------------------------------------------------------------------------------------------- data


def check_features(X: np.ndarray, n_features: int | None = None, what: str = "X") -> np.ndarray:
    """``X`` as a C-contiguous float64 (n, k) array; NaN allowed (missing), ±inf refused."""
    arr = np.ascontiguousarray(np.asarray(X, dtype=np.float64))
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (rows, features), got shape {arr.shape}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{what} has {arr.shape[1]} features, the model expects {n_features}")
    if np.isinf(arr).any():
        raise ValueError(f"{what} holds ±inf; pass missing values as NaN")
    return arr


@dataclass(frozen=True, eq=False)
class TrainSet:
    """A training sample: ``X`` float64 (n, k), NaN allowed; ``y`` 0/1 (stored as int8); optional weights."""

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    weight: np.ndarray | None = None

    def __post_init__(self) -> None:
        X = check_features(self.X)
        names = tuple(self.feature_names)
        if len(names) != X.shape[1]:
            raise ValueError(f"X has {X.shape[1]} columns but {len(names)} feature names")
        if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise ValueError("feature names must be unique non-empty strings")
        y = np.asarray(self.y)
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(f"y must be 1-D with one value per row of X ({X.shape[0]}), got shape {y.shape}")
        if y.size and not np.isin(y, (0, 1)).all():
            raise ValueError("y must hold only 0 and 1")
        weight = self.weight
        if weight is not None:
            weight = np.ascontiguousarray(np.asarray(weight, dtype=np.float64))
            if weight.shape != y.shape:
                raise ValueError(f"weight must have shape {y.shape}, got {weight.shape}")
            if not np.isfinite(weight).all() or (weight < 0).any() or not weight.sum() > 0:
                raise ValueError("weight must be finite, non-negative and not all zero")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", np.ascontiguousarray(y.astype(np.int8)))
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "weight", weight)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])


# --------------------------------------------------------------------------------------------- model


@runtime_checkable
class Model(Protocol):
    """A fitted model. ``metadata`` holds facts about the fit that are not part of the model bytes (device)."""

    kind: str
    spec: ModelSpec
    feature_names: tuple[str, ...]
    metadata: Mapping[str, Any]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(y = 1) for each row of ``X`` (float64, shape (n,))."""
        ...

    def to_bytes(self) -> bytes:
        """The ``model.bin`` content: deterministic for the same training inputs."""
        ...


def fit(train: TrainSet, spec: ModelSpec, cache: object | None = None) -> Model:
    """Fit a model of ``spec.kind`` on ``train``. Refuses an empty sample and a single-class ``y``. ``cache``: a
    kind's reusable training structures (LightGBM: ``lgbm.BinnedCache``, the binned training sets); kinds without
    one ignore it."""
    if not isinstance(train, TrainSet):
        raise TypeError(f"fit expects a TrainSet, got {type(train).__name__}")
    if train.n == 0:
        raise ValueError("cannot fit on an empty TrainSet")
    classes = np.unique(train.y)
    if classes.size < 2:
        raise ValueError(f"y holds a single class ({int(classes[0])}): both 0 and 1 are needed to fit")
    module = _kind_module(spec.kind)
    if cache is not None and spec.kind == "lightgbm":
        return module.fit(train, spec, cache=cache)
    return module.fit(train, spec)


def predict(model: Model, X: np.ndarray) -> np.ndarray:
    """P(y = 1) for each row of ``X`` (columns in ``model.feature_names`` order)."""
    return model.predict_proba(check_features(X, len(model.feature_names)))


def load_model(kind: str, data: bytes, *, threads: int = 1) -> Model:
    """Rebuild a model from its ``model.bin`` bytes; it predicts exactly like the model that wrote them, with up
    to ``threads`` CPU threads."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"model data must be bytes, got {type(data).__name__}")
    return _kind_module(kind).load(bytes(data), threads=threads)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a model's bytes: numpy, polars, lightgbm, torch (if installed)."""
    out = {"python": platform.python_version()}
    for name in ("lightgbm", "numpy", "polars", "torch"):
        if importlib.util.find_spec(name) is None:
            continue
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = getattr(importlib.import_module(name), "__version__", "unknown")
    return dict(sorted(out.items()))


def coerce_param(kind: str, name: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (an int is accepted for a float), or a ValueError."""
    bad = ValueError(f"{kind} param {name!r} must be {type(default).__name__}, got {value!r}")
    if isinstance(default, bool):
        if not isinstance(value, bool | np.bool_):
            raise bad
        return bool(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise bad
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise bad
        if not math.isfinite(float(value)):
            raise ValueError(f"{kind} param {name!r} must be finite, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(default, list):
        if not isinstance(value, list | tuple):
            raise bad
        return [_plain(v) for v in value]
    raise TypeError(f"unsupported default type for {kind} param {name!r}")  # pragma: no cover
