"""A model's input rows and probabilities for a coin and day, from raw candles: the live side's path.

A champion's inputs are not only the recipe's features: they also hold the 23 engines' directions, the combined
score under the meta weights of D-1 and the regime code, which the graph builds asset by asset. Here the same
rows are built from what the live side has: the coin's recent candles (by UTC day), the reference coin's closes,
the daily spreads and the stored meta state of D-1 (``meta_weights[D-1]``). :func:`model_inputs` replays the
assets' own pure functions (:class:`~huracan_assets.core.pipeline.replay.CoinReplay`: features, regimes, labels
for the engines' calibration, engine signals) and ends in :func:`~huracan_assets.core.training.dataset.
inference_frame`, the function that also gives the graph's shadow stage its rows from the stored assets: the
same rows, bit for bit (``integration/test_inference_parity.py``). :func:`predict` verifies a bundle against the
recipe and scores the rows.

Pure: polars, numpy and core; the caller reads the candles, the meta state and the bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import polars as pl

from huracan_assets.core.engines.signals import MetaState
from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets.core.models.base import Model
from huracan_assets.core.models.bundle import ModelBundle, load_bundle_model
from huracan_assets.core.pipeline.replay import CoinReplay, ReplaySpec
from huracan_assets.core.training.dataset import inference_frame, matrix


class InferenceError(ValueError):
    """The inputs cannot give the model's rows (too few bars, a bundle of another recipe, a missing input)."""


def model_inputs(
    candles: Mapping[date, pl.DataFrame],
    reference: Mapping[date, pl.DataFrame],
    meta_state: MetaState | None,
    day: date,
    spec: ReplaySpec,
    spreads: Mapping[date, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """The model's input rows for the bars of ``day`` (``ts`` and the feature columns of a bundle's
    ``feature_names``), from ``candles`` (the coin's bars by UTC day: ``day`` and the days before it that the
    features, regimes, engine warm-up and calibration read), ``reference`` (the reference coin's ``ts``/``close``
    by day), ``meta_state`` (the coin's ``meta_weights`` of the day before ``day``; None: cold) and ``spreads``
    (the daily spread rows by day; None: the cost model's per-bar estimate)."""
    replay = CoinReplay(candles, reference, spec, (day - timedelta(days=1), meta_state), spreads)
    features = replay.features(day)
    if features is None:
        raise InferenceError(
            f"too few bars: the features of {day} need every day of [{day - timedelta(days=spec.feature_warmup_days)}"
            f", {day}]"
        )
    signals = replay.signals(day)
    if signals is None:
        raise InferenceError(f"too few bars: the regimes or engine inputs of {day} cannot be built")
    start, end = day_bounds_ms(day)
    return inference_frame(features, signals, start, end, spec.recipe.names, list(spec.registry.names()))


def predict(bundle: ModelBundle, rows: pl.DataFrame, recipe_hash: str, threads: int = 1) -> pl.DataFrame:
    """The bundle's probability P(y = 1) at each row (``ts``, ``p``). Refused when the bundle was trained on
    another feature recipe or needs inputs the rows do not have."""
    check_inputs(bundle, rows, recipe_hash)
    return predict_loaded(load_bundle_model(bundle, threads=threads), bundle, rows)


def check_inputs(bundle: ModelBundle, rows: pl.DataFrame, recipe_hash: str) -> None:
    """InferenceError unless the bundle is of ``recipe_hash`` and the rows hold every input it was trained on."""
    if bundle.config.get("recipe_hash") != recipe_hash:
        raise InferenceError(f"the bundle's recipe {bundle.config.get('recipe_hash')} is not this recipe {recipe_hash}")
    missing = [c for c in bundle.config["feature_names"] if c not in rows.columns]
    if missing:
        raise InferenceError(f"the rows lack the model's inputs {missing[:5]}")


def predict_loaded(model: Model, bundle: ModelBundle, rows: pl.DataFrame) -> pl.DataFrame:
    """:func:`predict` with the bundle's model already loaded (a service keeps it); the rows checked by
    :func:`check_inputs`."""
    names = list(bundle.config["feature_names"])
    return pl.DataFrame({"ts": rows["ts"], "p": model.predict_proba(matrix(rows, names))})
