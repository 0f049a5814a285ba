"""The publishing tests' fixtures: real LightGBM bundles, and a store on a local directory or on SeaweedFS."""

from __future__ import annotations

import pytest

from huracan_assets.core.models import ModelBundle
from huracan_assets.storage.object_store import LocalObjectStore, ObjectStore
from huracan_assets_tests.publishing.test_champion import make_bundles


@pytest.fixture(scope="module")
def bundles() -> dict[str, ModelBundle]:
    return make_bundles()


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.integration)])
def store(request, tmp_path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    return request.getfixturevalue("s3_store")
