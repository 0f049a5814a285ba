"""A small client for the live side: a coin's champion, loaded and verified, predicting through the graph's path.

``Champion.from_service(url, symbol, token, recipe_hash)`` downloads it through the presigned URLs of
``huracan serve`` (``GET /model/{symbol}``); ``Champion.load(store, symbol, recipe_hash)`` reads
``champion/SYMBOL/latest.json`` and the bundle it names from the Engine's object store (a local folder or S3:
``storage/object_store.py``). Both verify every file's sha256, the pointer's content hash and the feature recipe.
``predict_candles`` builds the model's input rows from raw candles with
:func:`huracan_assets.core.inference.model_inputs`, the rows the graph builds bit for bit, so the live probability
of a bar equals the one the graph logged (``shadow_logs/predictions/D.parquet``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import polars as pl

from huracan_assets.core.engines.signals import MetaState
from huracan_assets.core.inference import check_inputs, model_inputs, predict_loaded
from huracan_assets.core.models.base import Model
from huracan_assets.core.models.bundle import BUNDLE_FILES, BundleError, ModelBundle, load_bundle_model, verify_bundle
from huracan_assets.core.pipeline.replay import ReplaySpec
from huracan_assets.publishing.champion import ChampionPointer, load_champion
from huracan_assets.storage.object_store import ObjectStore


@dataclass(frozen=True)
class Champion:
    pointer: ChampionPointer
    bundle: ModelBundle
    recipe_hash: str

    @classmethod
    def load(cls, store: ObjectStore, symbol: str, recipe_hash: str) -> Champion:
        pointer, bundle = load_champion(store, symbol, recipe_hash)
        return cls(pointer, bundle, recipe_hash)

    @classmethod
    def from_service(
        cls, base_url: str, symbol: str, token: str, recipe_hash: str, timeout: float = 30.0, http=None
    ) -> Champion:
        """The champion as ``huracan serve`` publishes it: ``GET /model/{symbol}`` gives the pointer and presigned
        URLs; the four files are downloaded from them (no store credentials needed) and verified: every file
        against ``sha256.txt``, the content hash against the pointer's, the recipe against ``recipe_hash``.
        ``http``: an ``httpx.Client`` to use (default: a new connection per call)."""
        import httpx

        http = http or httpx
        headers = {"Authorization": f"Bearer {token}"}
        answer = http.get(f"{base_url.rstrip('/')}/model/{symbol}", headers=headers, timeout=timeout)
        answer.raise_for_status()
        doc = answer.json()
        pointer = ChampionPointer.from_dict(doc["pointer"])
        files = {name: _download(doc["urls"][name], timeout) for name in BUNDLE_FILES}
        bundle = verify_bundle(files, recipe_hash)
        if bundle.content_hash != pointer.sha256:
            raise BundleError(f"the downloaded bundle is {bundle.content_hash}, the pointer says {pointer.sha256}")
        return cls(pointer, bundle, recipe_hash)

    @property
    def model_id(self) -> str:
        return self.pointer.model_id

    @cached_property
    def model(self) -> Model:
        """The bundle's booster, loaded once (one thread: a live side predicts a bar at a time)."""
        return load_bundle_model(self.bundle, threads=1)

    def predict(self, rows: pl.DataFrame) -> pl.DataFrame:
        """P(y = 1) (``ts``, ``p``) at each row of model inputs."""
        check_inputs(self.bundle, rows, self.recipe_hash)
        return predict_loaded(self.model, self.bundle, rows)

    def predict_candles(
        self,
        candles: Mapping[date, pl.DataFrame],
        reference: Mapping[date, pl.DataFrame],
        meta_state: MetaState | None,
        day: date,
        spec: ReplaySpec,
        spreads: Mapping[date, pl.DataFrame] | None = None,
    ) -> pl.DataFrame:
        """P(y = 1) at each bar of ``day`` from raw candles (:func:`~huracan_assets.core.inference.model_inputs`)."""
        return self.predict(model_inputs(candles, reference, meta_state, day, spec, spreads))


def _download(url: str, timeout: float) -> bytes:
    """A presigned URL's bytes: ``https?://`` (S3) through httpx, ``file://`` (a local store) from the disk."""
    if url.startswith("file://"):
        from pathlib import Path
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(url).path)).read_bytes()
    import httpx

    answer = httpx.get(url, timeout=timeout)
    answer.raise_for_status()
    return answer.content
