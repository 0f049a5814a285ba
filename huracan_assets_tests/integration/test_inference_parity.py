"""The live side's path (``core/inference.py``) gives the graph's model inputs, bit for bit: on the session's replay
history, the rows built from the stored raw candles, the reference closes, the daily spreads and meta_weights of
D-1 equal the rows the shadow stage builds from the stored features and engine signals of D; the same bundle then
scores both alike. Bad inputs get an InferenceError, never a wrong number."""

from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from huracan_assets.core.engines.signals import MetaState
from huracan_assets.core.inference import InferenceError, model_inputs, predict
from huracan_assets.core.market_data.candles import date_range, day_bounds_ms
from huracan_assets.core.models.base import ModelSpec, TrainSet, fit, library_versions
from huracan_assets.core.models.bundle import make_bundle
from huracan_assets.core.training.dataset import inference_frame
from huracan_assets.names import join_key
from huracan_assets.specs import build_specs, replay_lead_days
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import PartitionWindow, reference_closes
from huracan_assets_tests.integration.history import FIRST, LAST, history_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("replay_history")]
COINS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def _days(store, asset: str, symbol: str, days) -> dict:
    window = PartitionWindow(store, asset, [join_key(d, symbol) for d in days])
    return {d: window[join_key(d, symbol)] for d in days if window.status(join_key(d, symbol)).status == "ok"}


def test_rows_from_raw_candles_equal_the_graphs_rows(home, replay_history):
    settings = history_settings(replay_history.home)
    specs = build_specs(settings)
    store = LocalObjectStore(settings.store_root)
    day = LAST
    days = date_range(max(FIRST, day - timedelta(days=replay_lead_days(settings))), day)
    for symbol in COINS:
        candles = _days(store, "candles", symbol, days)
        spreads = _days(store, "spreads", symbol, days)
        meta = MetaState.from_frame(
            _days(store, "meta_weights", symbol, [day - timedelta(days=1)])[day - timedelta(days=1)]
        )
        reference = reference_closes(store, settings.universe.reference_symbol, days)
        live = model_inputs(candles, reference, meta, day, specs.replay, spreads)
        stored = {a: _days(store, a, symbol, [day])[day] for a in ("features", "engine_signals")}
        graph = inference_frame(stored["features"], stored["engine_signals"], *day_bounds_ms(day),
                                specs.recipe.names, specs.engines)  # fmt: skip
        assert live.height == 24 and live.drop("ts").null_count().sum_horizontal().item() < live.width * 24
        assert_frame_equal(live, graph, check_exact=True)
        assert live["combined_score"].abs().sum() > 0 or symbol != "BTCUSDT"  # a live meta state, not a cold one

    # the same bundle scores both alike; a bundle of another recipe and rows without its inputs are refused
    names = specs.training.names
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, len(names)))
    model = fit(TrainSet(x, (x[:, 0] > 0).astype(np.int8), names), ModelSpec("lightgbm", {"num_boost_round": 5}))
    config = {"as_of": day.isoformat(), "symbol": COINS[-1], "recipe": specs.recipe.to_dict(),
              "recipe_hash": specs.recipe.hash, "model": model.spec.to_dict(), "seed": model.spec.seed,
              "windows": {}, "feature_names": list(names), "library_versions": library_versions()}  # fmt: skip
    bundle = make_bundle(model, config, {})
    assert (
        predict(bundle, live, specs.recipe.hash)["p"].to_list()
        == predict(bundle, graph, specs.recipe.hash)["p"].to_list()
    )
    with pytest.raises(InferenceError, match="recipe"):
        predict(bundle, live, "0" * 16)
    with pytest.raises(InferenceError, match="lack"):
        predict(bundle, live.drop(names[0]), specs.recipe.hash)
    # too few bars: the warm-up days before D are missing
    with pytest.raises(InferenceError, match="too few bars"):
        model_inputs({day: candles[day]}, reference, meta, day, specs.replay, spreads)
    # the rows are of D only: a later day's candles change nothing
    later = {**candles, day + timedelta(days=1): candles[day].with_columns(pl.col("ts") + 86_400_000)}
    assert_frame_equal(model_inputs(later, reference, meta, day, specs.replay, spreads), live, check_exact=True)
