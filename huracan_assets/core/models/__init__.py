"""Per-coin models: one small interface (``fit`` / ``predict`` / ``load_model``) over LightGBM and a torch MLP,
and the model bundles (``model.bin``, ``config.json``, ``metrics.json``, ``sha256.txt``) the registry stores."""

from huracan_assets.core.models.base import (
    KINDS,
    Model,
    ModelSpec,
    TrainSet,
    fit,
    library_versions,
    load_model,
    predict,
)
from huracan_assets.core.models.bundle import (
    BUNDLE_FILES,
    BundleError,
    ModelBundle,
    load_bundle_model,
    make_bundle,
    verify_bundle,
)

__all__ = [
    "BUNDLE_FILES",
    "KINDS",
    "BundleError",
    "Model",
    "ModelBundle",
    "ModelSpec",
    "TrainSet",
    "fit",
    "library_versions",
    "load_bundle_model",
    "load_model",
    "make_bundle",
    "predict",
    "verify_bundle",
]
