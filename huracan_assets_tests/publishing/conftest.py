"""The publishing tests' fixtures: real LightGBM bundles, and a store on a local directory or on SeaweedFS."""

from __future__ import annotations

import numpy as np
import pytest

from huracan_assets.core.models import ModelBundle, ModelSpec, TrainSet, fit, library_versions, make_bundle
from huracan_assets.storage.object_store import LocalObjectStore, ObjectStore
from huracan_assets_tests.publishing.test_champion import RECIPE, SYMBOL


@pytest.fixture(scope="module")
def bundles() -> dict[str, ModelBundle]:
    """Three real LightGBM bundles of BTCUSDT, trained as of different dates (so with different ids)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(np.int8)
    model = fit(TrainSet(X, y, ("f0", "f1", "f2")), ModelSpec(params={"num_boost_round": 5}))
    out = {}
    for as_of in ("2024-08-01", "2024-08-07", "2024-08-09"):
        config = {
            "as_of": as_of,
            "symbol": SYMBOL,
            "recipe": RECIPE.to_dict(),
            "recipe_hash": RECIPE.hash,
            "model": model.spec.to_dict(),
            "seed": model.spec.seed,
            "windows": {"train": ["2023-08-01", as_of]},
            "library_versions": library_versions(),
        }
        out[as_of] = make_bundle(model, config, {"auc": 0.55})
    return out


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request, tmp_path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    return request.getfixturevalue("s3_store")
