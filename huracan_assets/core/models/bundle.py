"""Model bundles: the four files a trained per-coin model is stored as, content-addressed and verifiable.

A bundle is exactly :data:`BUNDLE_FILES`:

- ``model.bin``: :meth:`Model.to_bytes` (LightGBM model string, or the torch payload);
- ``config.json``: what was trained and how (:data:`REQUIRED_CONFIG` at least: ``as_of`` ``YYYY-MM-DD``,
  ``symbol``, ``recipe`` (the feature recipe's dict), ``recipe_hash``, ``model`` (:meth:`ModelSpec.to_dict`),
  ``seed``, ``windows`` (the data windows, any dict) and ``library_versions``);
- ``metrics.json``: the evaluation numbers (any JSON object);
- ``sha256.txt``: ``"<sha256>  <name>\\n"`` for ``model.bin``, ``config.json``, ``metrics.json``, in that order
  (the ``sha256sum`` format, so ``sha256sum -c sha256.txt`` checks a downloaded bundle).

The JSON files are canonical (``sort_keys``, ``indent=2``, ASCII, a final newline, NaN and ±inf written as
``null``), so identical inputs give byte-identical bundles: nothing time-dependent is added here. The
**content hash** is the sha256 of ``sha256.txt`` (so it covers the three other files) and the bundle id is
``f"{as_of}-{content_hash[:12]}"``. The files are checksummed, not signed: anyone who can rewrite a file *and*
``sha256.txt`` makes a new valid bundle, with a new id.

Nothing machine-dependent is hashed: the thread budget of the fit is a run-time argument (``ModelSpec.threads``),
absent from ``config.json``'s ``model`` (a new bundle that names it is refused) and from ``model.bin``, so the same
inputs and seed give the same bundle id on any core count. Older bundles whose ``model`` holds ``threads`` (and
whose LightGBM string holds their ``num_threads``) still verify and load; their ids are what they were.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from huracan_assets.core.market_data.candles import DAY_MS
from huracan_assets.core.models.base import KINDS, Model, ModelSpec, load_model

BUNDLE_FILES = ("model.bin", "config.json", "metrics.json", "sha256.txt")
HASHED_FILES = BUNDLE_FILES[:3]
REQUIRED_CONFIG = ("as_of", "symbol", "recipe", "recipe_hash", "model", "seed", "windows", "library_versions")
_SHA_LINE = re.compile(r"^([0-9a-f]{64})  (\S+)$")
_AS_OF = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PATH_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


class BundleError(ValueError):
    """A bundle is incomplete, corrupted or not the one the caller expects."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Any, where: str = "") -> Any:
    """A JSON-ready copy: NaN/±inf to None, numpy scalars and arrays to Python, tuples to lists."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise BundleError(f"JSON object keys must be strings, got {bad!r} in {where or 'the document'}")
        return {k: _canonical(v, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    raise BundleError(f"{where or 'value'}: {type(value).__name__} is not JSON-serializable")


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a JSON object (the form of ``config.json`` and ``metrics.json``)."""
    text = json.dumps(_canonical(document), sort_keys=True, indent=2, allow_nan=False, ensure_ascii=True)
    return (text + "\n").encode("ascii")


def _check_config(config: Mapping[str, Any]) -> ModelSpec:
    """Checks ``config.json``'s required keys and their shapes; returns its model spec."""
    missing = [k for k in REQUIRED_CONFIG if k not in config]
    if missing:
        raise BundleError(f"config lacks required keys {missing}")
    as_of = config["as_of"]
    try:
        ok = isinstance(as_of, str) and bool(_AS_OF.match(as_of)) and dt.date.fromisoformat(as_of) is not None
    except ValueError:
        ok = False
    if not ok:
        raise BundleError(f"config as_of must be a YYYY-MM-DD date, got {as_of!r}")
    if not isinstance(config["symbol"], str) or not _PATH_SAFE.match(config["symbol"]):
        raise BundleError(f"config symbol must be a non-empty [A-Za-z0-9._-] string, got {config['symbol']!r}")
    for key in ("recipe", "model", "windows", "library_versions"):
        if not isinstance(config[key], Mapping):
            raise BundleError(f"config {key} must be a JSON object, got {type(config[key]).__name__}")
    if not isinstance(config["recipe_hash"], str) or not config["recipe_hash"]:
        raise BundleError("config recipe_hash must be a non-empty string")
    if config["model"].get("kind") not in KINDS:
        raise BundleError(f"config model kind {config['model'].get('kind')!r} is not one of {sorted(KINDS)}")
    try:
        spec = ModelSpec.from_dict(config["model"])
    except (ValueError, TypeError) as exc:
        raise BundleError(f"config model is not a valid model spec: {exc}") from exc
    if config["seed"] != spec.seed or isinstance(config["seed"], bool):
        raise BundleError(f"config seed {config['seed']!r} differs from the model spec's seed {spec.seed}")
    return spec


@dataclass(frozen=True)
class ModelBundle:
    """The four files of a bundle (use :func:`make_bundle` or :func:`verify_bundle` to obtain one)."""

    files: dict[str, bytes]

    def __post_init__(self) -> None:
        missing = [n for n in BUNDLE_FILES if n not in self.files]
        if missing:
            raise BundleError(f"bundle lacks files {missing}")
        extra = sorted(set(self.files) - set(BUNDLE_FILES))
        if extra:
            raise BundleError(f"bundle has unexpected files {extra}; a bundle is exactly {list(BUNDLE_FILES)}")
        object.__setattr__(self, "files", {n: bytes(self.files[n]) for n in BUNDLE_FILES})

    @property
    def content_hash(self) -> str:
        return _sha256(self.files["sha256.txt"])

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.files["config.json"])

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads(self.files["metrics.json"])

    def bundle_id(self) -> str:
        return f"{self.config['as_of']}-{self.content_hash[:12]}"

    def prefix(self, symbol: str | None = None, root: str = "challengers") -> str:
        """The storage prefix ``f"{root}/{symbol}/{bundle_id}/"``; ``symbol`` defaults to (and must equal) the
        config's."""
        own = self.config["symbol"]
        symbol = own if symbol is None else symbol
        if symbol != own:
            raise BundleError(f"bundle is for {own!r}, not {symbol!r}")
        parts = root.split("/")
        if not root or any(p in ("", ".", "..") for p in parts) or not all(_PATH_SAFE.match(p) for p in parts):
            raise BundleError(f"invalid root {root!r}")
        return f"{root}/{symbol}/{self.bundle_id()}/"


@dataclass(frozen=True)
class BundleConfig:
    """The typed view of the ``config.json`` fields the graph and the live side read from a verified bundle."""

    as_of: dt.date
    symbol: str
    recipe_hash: str
    feature_names: tuple[str, ...]
    training_start: dt.date  # the training window [training_start, training_end)
    training_end: dt.date
    canaries_passed: bool  # from metrics.json: the walk-forward's canaries (False when absent)

    @classmethod
    def of(cls, bundle: ModelBundle) -> BundleConfig:
        config = bundle.config
        window = config["windows"].get("training")
        try:
            start, end = (dt.date.fromisoformat(part.strip()) for part in str(window).strip("[)").split(","))
        except ValueError as exc:
            raise BundleError(f"config windows.training must read '[YYYY-MM-DD, YYYY-MM-DD)', got {window!r}") from exc
        return cls(
            as_of=dt.date.fromisoformat(config["as_of"]),
            symbol=config["symbol"],
            recipe_hash=config["recipe_hash"],
            feature_names=tuple(config.get("feature_names") or ()),
            training_start=start,
            training_end=end,
            canaries_passed=bool(bundle.metrics.get("canaries", {}).get("passed", False)),
        )

    @property
    def training_end_ms(self) -> int:
        """The end of the training window (exclusive), as UTC epoch ms: the model has seen no bar from here on."""
        return (self.training_end - dt.date(1970, 1, 1)).days * DAY_MS


def make_bundle(model: Model, config: Mapping[str, Any], metrics: Mapping[str, Any]) -> ModelBundle:
    """Build the bundle of ``model``. ``config`` must hold :data:`REQUIRED_CONFIG` and its ``model`` must describe
    ``model`` (same kind, seed and resolved params) without the machine's thread budget."""
    if not isinstance(config, Mapping) or not isinstance(metrics, Mapping):
        raise BundleError("config and metrics must be mappings")
    config_bytes = canonical_json(config)
    metrics_bytes = canonical_json(metrics)
    document = json.loads(config_bytes)
    spec = _check_config(document)
    if isinstance(document["model"], Mapping) and "threads" in document["model"]:
        raise BundleError(
            "config model names the thread budget, which depends on the machine and would change the bundle id: "
            "use ModelSpec.to_dict()"
        )
    if not spec.same_model_as(model.spec):
        raise BundleError(f"config model {spec.to_dict()} does not describe the model ({model.spec.to_dict()})")
    names = config.get("feature_names")
    if names is not None and tuple(names) != tuple(model.feature_names):
        raise BundleError("config feature_names differ from the model's feature names")
    files = {"model.bin": model.to_bytes(), "config.json": config_bytes, "metrics.json": metrics_bytes}
    files["sha256.txt"] = "".join(f"{_sha256(files[n])}  {n}\n" for n in HASHED_FILES).encode("ascii")
    return verify_bundle(files)


def _check_checksums(files: Mapping[str, bytes]) -> None:
    try:
        text = bytes(files["sha256.txt"]).decode("ascii")
    except UnicodeDecodeError as exc:
        raise BundleError("sha256.txt malformed: not ASCII") from exc
    lines = text.split("\n")
    if lines[-1] != "" or len(lines) != len(HASHED_FILES) + 1:
        raise BundleError(f"sha256.txt malformed: expected {len(HASHED_FILES)} newline-terminated lines")
    for line, name in zip(lines[:-1], HASHED_FILES, strict=True):
        match = _SHA_LINE.match(line)
        if match is None or match.group(2) != name:
            raise BundleError(f"sha256.txt malformed: expected '<sha256>  {name}', got {line!r}")
        if match.group(1) != _sha256(bytes(files[name])):
            raise BundleError(f"sha256 mismatch for {name}: the file does not match sha256.txt")


def _load_json(files: Mapping[str, bytes], name: str) -> dict[str, Any]:
    try:
        document = json.loads(bytes(files[name]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{name} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise BundleError(f"{name} must hold a JSON object")
    if canonical_json(document) != bytes(files[name]):
        raise BundleError(f"{name} is not in canonical form (sorted keys, indent 2, final newline)")
    return document


def verify_bundle(files: Mapping[str, bytes], expected_recipe_hash: str | None = None) -> ModelBundle:
    """Check a bundle's files and return it; raises :class:`BundleError` naming the problem (a missing or
    unexpected file, a malformed ``sha256.txt``, a checksum mismatch, a bad config, another recipe hash)."""
    bundle = ModelBundle(files=dict(files))
    _check_checksums(bundle.files)
    config = _load_json(bundle.files, "config.json")
    _load_json(bundle.files, "metrics.json")
    _check_config(config)
    if expected_recipe_hash is not None and config["recipe_hash"] != expected_recipe_hash:
        raise BundleError(
            f"recipe hash mismatch: bundle has {config['recipe_hash']!r}, expected {expected_recipe_hash!r}"
        )
    return bundle


def load_bundle_model(bundle: ModelBundle, *, threads: int = 1) -> Model:
    """The bundle's model (``load_model(config["model"]["kind"], model.bin)``), checked against the config; it
    predicts with up to ``threads`` CPU threads."""
    config = bundle.config
    spec = _check_config(config)
    try:
        model = load_model(spec.kind, bundle.files["model.bin"], threads=threads)
    except ValueError as exc:
        raise BundleError(f"model.bin does not load as a {spec.kind} model: {exc}") from exc
    if not model.spec.same_model_as(spec):
        raise BundleError(f"model.bin's spec {model.spec.to_dict()} differs from config model {spec.to_dict()}")
    names = config.get("feature_names")
    if names is not None and tuple(names) != model.feature_names:
        raise BundleError("model.bin's feature names differ from config feature_names")
    return model
