"""Per-coin models: both kinds learn a learnable problem and not noise, are deterministic in fresh processes,
round-trip through their bytes exactly, accept NaN, and refuse bad input.

AUC is sklearn's ``roc_auc_score`` (scikit-learn is installed with hmmlearn), cross-checked once against the
Mann–Whitney rank formula.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from huracan_assets.core.models import ModelSpec, TrainSet, fit, library_versions, load_model, predict
from huracan_assets.core.models import lgbm as lgbm_kind

REPO = Path(__file__).resolve().parents[3]
KINDS = ("lightgbm", "torch_mlp")
SMALL = {"lightgbm": {}, "torch_mlp": {"epochs": 15}}  # torch fits kept short


def _spec(kind: str, seed: int = 7, threads: int = 1, **params) -> ModelSpec:
    return ModelSpec(kind=kind, params={**SMALL[kind], **params}, seed=seed, threads=threads)


def _problem(seed: int = 0, n: int = 3000, k: int = 8, noise_y: bool = False, nan_frac: float = 0.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    signal = X[:, 0] - 0.8 * X[:, 1] + 0.7 * rng.normal(size=n)
    y = (rng.random(n) < 0.5) if noise_y else (signal > 0)
    if nan_frac:
        X[rng.random(X.shape) < nan_frac] = np.nan
    return X, y.astype(np.int8), tuple(f"f{i}" for i in range(k))


def _halves(X, y, names):
    h = len(y) // 2
    return TrainSet(X[:h], y[:h], names), X[h:], y[h:]


def _mann_whitney_auc(y: np.ndarray, p: np.ndarray) -> float:
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    for v in np.unique(p):  # average ranks of ties
        tie = p == v
        ranks[tie] = ranks[tie].mean()
    n1 = int(y.sum())
    n0 = len(y) - n1
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# --------------------------------------------------------------------------------------------- learning


@pytest.mark.parametrize("kind", KINDS)
def test_learns_a_learnable_problem_out_of_sample(kind):
    train, X_test, y_test = _halves(*_problem())
    model = fit(train, _spec(kind))
    p = predict(model, X_test)
    assert p.dtype == np.float64 and p.shape == (len(y_test),)
    assert ((p > 0) & (p < 1)).all()
    auc = roc_auc_score(y_test, p)
    assert auc > 0.7, auc
    assert _mann_whitney_auc(y_test, p) == pytest.approx(auc, abs=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_pure_noise_gives_chance_auc(kind):
    train, X_test, y_test = _halves(*_problem(seed=1, noise_y=True))
    auc = roc_auc_score(y_test, predict(fit(train, _spec(kind)), X_test))
    assert 0.4 < auc < 0.6, auc


def test_auc_formula_can_fail():
    y = np.array([0, 0, 1, 1])
    assert _mann_whitney_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert _mann_whitney_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert _mann_whitney_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


# --------------------------------------------------------------------------------------------- determinism

_SCRIPT = """
import hashlib, numpy as np
from huracan_assets.core.models import ModelSpec, TrainSet, fit
rng = np.random.default_rng(3)
X = rng.normal(size=(1200, 6)); X[rng.random(X.shape) < 0.05] = np.nan
y = ((np.nan_to_num(X[:, 0]) + rng.normal(size=1200)) > 0).astype(np.int8)
train = TrainSet(X, y, tuple(f"f{{i}}" for i in range(6)))
for seed in (7, 8):
    model = fit(train, ModelSpec(kind={kind!r}, params={params!r}, seed=seed, threads={threads}))
    print(hashlib.sha256(model.to_bytes()).hexdigest())
"""


def _hashes_in_fresh_process(kind: str, params: dict, threads: int) -> list[str]:
    code = textwrap.dedent(_SCRIPT.format(kind=kind, params=params, threads=threads))
    # passive OpenMP waiting: spinning threads make a 2-thread LightGBM fit ~10x slower on a busy 2-CPU machine
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    hashes = out.stdout.split()
    assert len(hashes) == 2 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), out.stdout
    return hashes


@pytest.mark.parametrize(
    ("kind", "params", "threads"),
    [("lightgbm", {"num_boost_round": 60}, 2), ("torch_mlp", {"epochs": 4, "batch_size": 256}, 1)],
)
def test_bytes_are_identical_in_fresh_processes_and_depend_on_the_seed(kind, params, threads):
    first = _hashes_in_fresh_process(kind, params, threads)
    second = _hashes_in_fresh_process(kind, params, threads)
    assert first == second  # same seed, two processes: same bytes
    assert first[0] != first[1]  # another seed: other bytes


def test_lightgbm_bytes_hold_no_path_nor_time_stamp():
    train, _, _ = _halves(*_problem(n=800))
    text = fit(train, _spec("lightgbm", num_boost_round=5)).to_bytes().decode("utf-8")
    assert str(REPO) not in text and str(Path.home()) not in text
    assert re.search(r"\b(19|20)\d\d-\d\d-\d\d\b", text) is None
    assert re.search(r"\d\d:\d\d:\d\d", text) is None
    assert "[num_threads: 0]" in text and "[deterministic: 1]" in text and "[force_row_wise: 1]" in text  # no budget
    assert "[seed: 7]" in text and "[bagging_seed: 8]" in text and "[data_random_seed: 10]" in text


def test_lightgbm_pins_threads_and_seeds():
    params, rounds = lgbm_kind.train_params(ModelSpec(params={"num_boost_round": 20}, seed=11, threads=3))
    assert rounds == 20 and "num_boost_round" not in params
    assert params["num_threads"] == 3 and params["deterministic"] is True and params["force_row_wise"] is True
    assert (params["seed"], params["bagging_seed"], params["feature_fraction_seed"], params["data_random_seed"]) == (
        11,
        12,
        13,
        14,
    )
    assert params["objective"] == "binary" and params["learning_rate"] == 0.05 and params["verbose"] == -1


# --------------------------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("kind", KINDS)
def test_load_model_predicts_exactly_the_same(kind):
    X, y, names = _problem(seed=2, n=1000, nan_frac=0.05)
    train, X_test, _ = _halves(X, y, names)
    model = fit(train, _spec(kind, num_leaves=15) if kind == "lightgbm" else _spec(kind, hidden=[16, 8]))
    loaded = load_model(kind, model.to_bytes())
    assert loaded.kind == kind and loaded.feature_names == names
    assert loaded.spec.same_model_as(model.spec)
    assert np.array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    assert loaded.to_bytes() == model.to_bytes()
    assert predict(loaded, X_test[:1]).shape == (1,)


def test_torch_payload_loads_with_weights_only():
    import torch

    train, _, _ = _halves(*_problem(n=600))
    model = fit(train, _spec("torch_mlp", epochs=2))
    payload = torch.load(io.BytesIO(model.to_bytes()), weights_only=True)
    assert payload["feature_names"] == list(train.feature_names)
    assert payload["hidden"] == [64, 32] and payload["spec"] == model.spec.to_dict()
    assert {"median", "mean", "std", "state_dict"} <= set(payload)
    assert model.metadata["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def test_torch_fit_restores_global_torch_state():
    import torch

    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train, _, _ = _halves(*_problem(n=600))
    fit(train, _spec("torch_mlp", epochs=1, threads=threads + 1))
    assert torch.equal(torch.rand(3), expected)  # the caller's RNG stream is untouched
    assert torch.get_num_threads() == threads and torch.are_deterministic_algorithms_enabled() == det


# --------------------------------------------------------------------------------------------- NaN, weights


@pytest.mark.parametrize("kind", KINDS)
def test_nan_in_x_is_handled(kind):
    X, y, names = _problem(seed=4, n=1200, nan_frac=0.2)
    X[:, 5] = np.nan  # an all-NaN column too
    train, X_test, y_test = _halves(X, y, names)
    model = fit(train, _spec(kind))
    p = predict(model, X_test)
    assert np.isfinite(p).all() and ((p > 0) & (p < 1)).all()
    assert roc_auc_score(y_test, p) > 0.65
    all_nan = predict(model, np.full((2, len(names)), np.nan))
    assert np.isfinite(all_nan).all() and all_nan[0] == all_nan[1]


def test_sample_weights_change_the_model():
    X, y, names = _problem(seed=5, n=1000)
    w = np.where(np.arange(1000) % 2 == 0, 1.0, 3.0)
    plain = fit(TrainSet(X, y, names), _spec("lightgbm", num_boost_round=20))
    weighted = fit(TrainSet(X, y, names, weight=w), _spec("lightgbm", num_boost_round=20))
    assert plain.to_bytes() != weighted.to_bytes()


# --------------------------------------------------------------------------------------------- spec


def test_spec_defaults_and_round_trip():
    spec = ModelSpec(params={"num_leaves": 15, "lambda_l2": 2, "learning_rate": 0.1})
    assert list(spec.params) == ["lambda_l2", "learning_rate", "num_leaves"]
    assert spec.params["lambda_l2"] == 2.0 and isinstance(spec.params["lambda_l2"], float)
    resolved = spec.resolved_params()
    assert resolved["num_leaves"] == 15 and resolved["min_data_in_leaf"] == 50 and resolved["num_boost_round"] == 200
    assert list(resolved) == sorted(resolved)
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    mlp = ModelSpec("torch_mlp", params={"hidden": (32, 16)}, seed=3, threads=2)
    assert mlp.params["hidden"] == [32, 16]
    assert ModelSpec.from_dict(json.loads(json.dumps(mlp.to_dict()))) == mlp
    assert mlp.resolved_params() == {
        "batch_size": 512,
        "device": "auto",
        "dropout": 0.1,
        "epochs": 30,
        "hidden": [32, 16],
        "lr": 1e-3,
        "weight_decay": 1e-4,
    }


def test_library_versions():
    versions = library_versions()
    assert {"python", "numpy", "polars", "lightgbm", "torch"} <= set(versions)
    assert versions["lightgbm"] == "4.7.0"


# --------------------------------------------------------------------------------------------- refusals


def test_refuses_unknown_kind_and_params():
    with pytest.raises(ValueError, match="unknown model kind 'xgboost'"):
        ModelSpec(kind="xgboost")
    with pytest.raises(ValueError, match="unknown model kind"):
        load_model("xgboost", b"")
    with pytest.raises(ValueError, match=r"unknown lightgbm params \['n_estimators'\]"):
        ModelSpec(params={"n_estimators": 10})
    with pytest.raises(ValueError, match=r"unknown lightgbm params \['num_threads'\]"):
        ModelSpec(params={"num_threads": 8})  # pinned: use ModelSpec.threads
    with pytest.raises(ValueError, match=r"unknown torch_mlp params \['num_leaves'\]"):
        ModelSpec(kind="torch_mlp", params={"num_leaves": 8})
    with pytest.raises(ValueError, match="num_leaves"):
        ModelSpec(params={"num_leaves": "many"})
    with pytest.raises(ValueError, match="hidden"):
        ModelSpec(kind="torch_mlp", params={"hidden": [0]})
    with pytest.raises(ValueError, match="unknown ModelSpec keys"):
        ModelSpec.from_dict({"kind": "lightgbm", "colour": "red"})
    with pytest.raises(ValueError, match="threads"):
        ModelSpec(threads=0)


@pytest.mark.parametrize("kind", KINDS)
def test_refuses_single_class_y(kind):
    X, _, names = _problem(n=200)
    with pytest.raises(ValueError, match="single class"):
        fit(TrainSet(X, np.ones(200, dtype=np.int8), names), _spec(kind))


def test_refuses_shape_mismatches_and_bad_values():
    X, y, names = _problem(n=200)
    with pytest.raises(ValueError, match="one value per row"):
        TrainSet(X, y[:-1], names)
    with pytest.raises(ValueError, match="feature names"):
        TrainSet(X, y, names[:-1])
    with pytest.raises(ValueError, match="2-D"):
        TrainSet(X[:, 0], y, names[:1])
    with pytest.raises(ValueError, match="only 0 and 1"):
        TrainSet(X, np.where(y == 1, 1, -1), names)
    with pytest.raises(ValueError, match="inf"):
        TrainSet(np.where(X > 2, np.inf, X), y, names)
    with pytest.raises(ValueError, match="weight"):
        TrainSet(X, y, names, weight=np.ones(199))
    with pytest.raises(ValueError, match="empty"):
        fit(TrainSet(X[:0], y[:0], names), ModelSpec())
    model = fit(TrainSet(X, y, names), _spec("lightgbm", num_boost_round=5))
    with pytest.raises(ValueError, match="the model expects 8"):
        predict(model, X[:, :7])
    with pytest.raises(ValueError, match="feature names not allowed"):
        fit(TrainSet(X, y, (*names[:-1], "bad name")), ModelSpec())


def test_torch_is_imported_only_when_the_torch_kind_is_used():
    code = (
        "import sys; from huracan_assets.core.models import ModelSpec, library_versions; "
        "ModelSpec('torch_mlp').resolved_params(); library_versions(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_torch_missing_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    spec = ModelSpec(kind="torch_mlp")  # the spec itself needs no torch
    assert spec.resolved_params()["epochs"] == 30
    X, y, names = _problem(n=200)
    with pytest.raises(ImportError, match=re.escape("pip install '.[torch]'")):
        fit(TrainSet(X, y, names), spec)


def test_a_binned_cache_trains_the_same_model_as_a_fresh_dataset():
    """The block-shuffle canary refits each fold's rows with other labels: with the cache it reuses their bins and
    gets the very model a fresh Dataset gives (byte for byte); other rows or other binning never share bins."""
    from huracan_assets.core.models.lgbm import BinnedCache

    X, y, names = _problem(seed=3, n=4000, nan_frac=0.02)
    shuffled = np.random.default_rng(5).permutation(y)
    spec = _spec("lightgbm")
    cache = BinnedCache()
    fresh = [fit(TrainSet(X, labels, names), spec).to_bytes() for labels in (y, shuffled, y)]
    cached = [fit(TrainSet(X, labels, names), spec, cache=cache).to_bytes() for labels in (y, shuffled, y)]
    assert cached == fresh and fresh[0] != fresh[1]
    assert (cache.hits, cache.misses) == (2, 1)  # binned once, relabelled twice
    fit(TrainSet(X[:-1], y[:-1], names), spec, cache=cache)  # other rows: their own bins
    fit(TrainSet(X, y, names), _spec("lightgbm", max_bin=63), cache=cache)  # other binning: its own bins
    assert cache.misses == 3
