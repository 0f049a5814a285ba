"""Model bundles: canonical bytes, verification that names the broken file, and the model round trip."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from huracan_assets.core.features.recipe import default_recipe
from huracan_assets.core.models import (
    BUNDLE_FILES,
    BundleError,
    ModelSpec,
    TrainSet,
    fit,
    library_versions,
    load_bundle_model,
    make_bundle,
    verify_bundle,
)
from huracan_assets.core.models.bundle import REQUIRED_CONFIG


def _train(seed: int = 0, n: int = 800, k: int = 6) -> tuple[TrainSet, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = ((np.nan_to_num(X[:, 0]) + rng.normal(size=n)) > 0).astype(np.int8)
    return TrainSet(X, y, tuple(f"f{i}" for i in range(k))), rng.normal(size=(50, k))


def _config(spec: ModelSpec, **overrides) -> dict:
    recipe = default_recipe()
    config = {
        "as_of": "2024-05-01",
        "symbol": "BTCUSDT",
        "recipe": recipe.to_dict(),
        "recipe_hash": recipe.hash,
        "model": spec.to_dict(),
        "seed": spec.seed,
        "windows": {"train": ["2023-05-01", "2024-04-24"], "embargo_bars": 24},
        "library_versions": library_versions(),
    }
    config.update(overrides)
    return config


METRICS = {"auc": 0.61, "brier": np.float64(0.24), "n_test": np.int64(500), "sharpe": float("nan"), "ic": [0.1, None]}


@pytest.fixture(scope="module")
def lgbm_model():
    train, X_test = _train()
    return fit(train, ModelSpec(params={"num_boost_round": 30}, seed=7, threads=1)), X_test


@pytest.fixture(scope="module")
def bundle(lgbm_model):
    model, _ = lgbm_model
    return make_bundle(model, _config(model.spec), METRICS)


def test_round_trip_and_format(bundle, lgbm_model):
    model, _ = lgbm_model
    assert tuple(bundle.files) == BUNDLE_FILES
    again = verify_bundle(dict(bundle.files), expected_recipe_hash=default_recipe().hash)
    assert again.files == bundle.files and again.content_hash == bundle.content_hash
    assert bundle.files["model.bin"] == model.to_bytes()
    lines = bundle.files["sha256.txt"].decode().splitlines()
    assert lines == [f"{hashlib.sha256(bundle.files[n]).hexdigest()}  {n}" for n in BUNDLE_FILES[:3]]
    assert bundle.content_hash == hashlib.sha256(bundle.files["sha256.txt"]).hexdigest()
    assert bundle.config["model"] == model.spec.to_dict() and bundle.config["symbol"] == "BTCUSDT"
    assert bundle.metrics == {"auc": 0.61, "brier": 0.24, "ic": [0.1, None], "n_test": 500, "sharpe": None}
    text = bundle.files["metrics.json"].decode()
    assert text.endswith("}\n") and "NaN" not in text and list(json.loads(text)) == sorted(json.loads(text))


def test_identical_inputs_give_identical_bundles(bundle):
    train, _ = _train()
    model = fit(train, ModelSpec(params={"num_boost_round": 30}, seed=7, threads=1))  # refitted from scratch
    config = _config(model.spec)
    again = make_bundle(model, dict(reversed(list(config.items()))), dict(reversed(list(METRICS.items()))))
    assert again.files == bundle.files and again.content_hash == bundle.content_hash
    other = make_bundle(model, config, {**METRICS, "auc": 0.62})
    assert other.content_hash != bundle.content_hash


def test_bundle_id_and_prefix(bundle):
    assert re.fullmatch(r"2024-05-01-[0-9a-f]{12}", bundle.bundle_id())
    assert bundle.bundle_id().endswith(bundle.content_hash[:12])
    assert bundle.prefix("BTCUSDT") == f"challengers/BTCUSDT/{bundle.bundle_id()}/"
    assert bundle.prefix(root="champions") == f"champions/BTCUSDT/{bundle.bundle_id()}/"
    with pytest.raises(BundleError, match="not 'ETHUSDT'"):
        bundle.prefix("ETHUSDT")
    with pytest.raises(BundleError, match="invalid root"):
        bundle.prefix(root="../x")


def test_load_bundle_model_predicts_like_the_original(bundle, lgbm_model):
    model, X_test = lgbm_model
    loaded = load_bundle_model(verify_bundle(bundle.files))
    assert loaded.feature_names == model.feature_names
    assert np.array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))


def test_torch_bundle_round_trip():
    train, X_test = _train(seed=1, n=500)
    model = fit(train, ModelSpec(kind="torch_mlp", params={"epochs": 3, "hidden": [16]}, seed=5))
    bundle = make_bundle(model, _config(model.spec, feature_names=list(model.feature_names)), {"auc": 0.5})
    loaded = load_bundle_model(verify_bundle(bundle.files))
    assert loaded.kind == "torch_mlp" and loaded.spec == model.spec
    assert np.array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))


# --------------------------------------------------------------------------------------------- refusals


def test_a_flipped_byte_in_model_bin_is_refused(bundle):
    files = dict(bundle.files)
    data = bytearray(files["model.bin"])
    data[len(data) // 2] ^= 0x01
    files["model.bin"] = bytes(data)
    with pytest.raises(BundleError, match=r"sha256 mismatch for model\.bin"):
        verify_bundle(files)


def test_a_tampered_config_is_refused(bundle):
    files = dict(bundle.files)
    files["config.json"] = files["config.json"].replace(b'"BTCUSDT"', b'"ETHUSDT"')
    assert files["config.json"] != bundle.files["config.json"]
    with pytest.raises(BundleError, match=r"sha256 mismatch for config\.json"):
        verify_bundle(files)
    # rewriting sha256.txt as well makes a *different* bundle (checksums, not signatures): a new id
    lines = bundle.files["sha256.txt"].decode().splitlines()
    lines[1] = f"{hashlib.sha256(files['config.json']).hexdigest()}  config.json"
    files["sha256.txt"] = ("\n".join(lines) + "\n").encode()
    rehashed = verify_bundle(files)
    assert rehashed.bundle_id() != bundle.bundle_id()


@pytest.mark.parametrize("name", BUNDLE_FILES)
def test_a_missing_file_is_refused(bundle, name):
    files = {k: v for k, v in bundle.files.items() if k != name}
    with pytest.raises(BundleError, match=re.escape(f"lacks files ['{name}']")):
        verify_bundle(files)


def test_an_extra_file_is_refused(bundle):
    with pytest.raises(BundleError, match="unexpected files"):
        verify_bundle({**bundle.files, "notes.txt": b"hi"})


def test_a_wrong_recipe_hash_is_refused(bundle):
    with pytest.raises(BundleError, match="recipe hash mismatch"):
        verify_bundle(bundle.files, expected_recipe_hash="0" * 16)


@pytest.mark.parametrize(
    "sha_text",
    [
        b"",
        b"not a checksum line\n",
        b"%s  config.json\n%s  model.bin\n%s  metrics.json\n" % (b"0" * 64, b"0" * 64, b"0" * 64),
    ],
)
def test_a_malformed_sha256_txt_is_refused(bundle, sha_text):
    with pytest.raises(BundleError, match=r"sha256\.txt malformed"):
        verify_bundle({**bundle.files, "sha256.txt": sha_text})


def test_a_non_canonical_json_is_refused(bundle):
    config = json.dumps(json.loads(bundle.files["config.json"])).encode()  # same content, other bytes
    lines = bundle.files["sha256.txt"].decode().splitlines()
    lines[1] = f"{hashlib.sha256(config).hexdigest()}  config.json"
    files = {**bundle.files, "config.json": config, "sha256.txt": ("\n".join(lines) + "\n").encode()}
    with pytest.raises(BundleError, match="canonical"):
        verify_bundle(files)


@pytest.mark.parametrize("key", REQUIRED_CONFIG)
def test_make_bundle_refuses_a_config_missing_a_required_key(lgbm_model, key):
    model, _ = lgbm_model
    config = _config(model.spec)
    del config[key]
    with pytest.raises(BundleError, match=re.escape(f"config lacks required keys ['{key}']")):
        make_bundle(model, config, METRICS)


def test_make_bundle_refuses_a_config_that_does_not_describe_the_model(lgbm_model):
    model, _ = lgbm_model
    with pytest.raises(BundleError, match="does not describe the model"):
        make_bundle(model, _config(ModelSpec(params={"num_boost_round": 31})), METRICS)
    with pytest.raises(BundleError, match="seed"):
        make_bundle(model, _config(model.spec, seed=8), METRICS)
    with pytest.raises(BundleError, match="as_of"):
        make_bundle(model, _config(model.spec, as_of="2024-13-01"), METRICS)
    with pytest.raises(BundleError, match="symbol"):
        make_bundle(model, _config(model.spec, symbol="BTC/USDT"), METRICS)
    with pytest.raises(BundleError, match="feature_names"):
        make_bundle(model, _config(model.spec, feature_names=["a", "b"]), METRICS)
    with pytest.raises(BundleError, match="not JSON-serializable"):
        make_bundle(model, _config(model.spec), {"when": object()})
