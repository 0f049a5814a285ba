"""A small client for the live side: a coin's champion, loaded and verified, predicting through the graph's path.

``Champion.load(store, symbol, recipe_hash)`` reads ``champion/SYMBOL/latest.json`` and the bundle it names from
the Engine's object store (a local folder or S3: ``storage/object_store.py``) and verifies every file's sha256,
the pointer's content hash and the feature recipe. ``predict_candles`` builds the model's input rows from raw
candles with :func:`huracan_assets.core.inference.model_inputs`, the rows the graph builds bit for bit, so the
live probability of a bar equals the one the graph logged (``shadow_logs/predictions/D.parquet``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from huracan_assets.core.engines.signals import MetaState
from huracan_assets.core.inference import model_inputs, predict
from huracan_assets.core.models.bundle import ModelBundle
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

    @property
    def model_id(self) -> str:
        return self.pointer.model_id

    def predict(self, rows: pl.DataFrame, threads: int = 1) -> pl.DataFrame:
        """P(y = 1) (``ts``, ``p``) at each row of model inputs."""
        return predict(self.bundle, rows, self.recipe_hash, threads)

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
