"""The truncation canary in production wiring: the challenger op rebuilds a coin's training frame from raw candles
cut at the window's end (features -> regimes -> labels -> meta weights -> engine signals, the assets' own pure
functions) and compares it with the frame built from the stored assets.

On clean real data the two are identical for every coin. Then a stored feature is replaced by the next 24 h
return (a leak a buggy asset or a tampered store could plant): the walk-forward loves it, and the canary must
fail, in the bundle, the report and the asset check, so the model is not promotable."""

import json
from datetime import timedelta

import polars as pl
import pytest
from dagster import AssetKey

from huracan_assets.core.market_data.candles import date_range
from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.specs import recipe_for
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import bytes_to_frame, data_key, frame_to_bytes
from huracan_assets_tests.defs.helpers import defs_for
from huracan_assets_tests.integration.history import FIRST, WINDOWS, history_settings
from huracan_assets_tests.integration.history import LAST as DAY

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("replay_history")]  # one history build
COINS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]  # checked by name (the history holds more)
LEAKY = "ETHUSDT"


def _materialize_challengers(defs, instance, symbols):
    return defs.resolve_job_def("symbol_day_job").execute_in_process(
        instance=instance,
        tags=range_tags(DAY, DAY, symbols),
        asset_selection=[AssetKey("challenger_model"), AssetKey("walk_forward_report")],
        raise_on_error=False,
    )


def _bundle_metrics(store, symbol: str) -> dict:
    """metrics.json of the bundle the last materialization of challenger_model[DAY|symbol] names."""
    row = bytes_to_frame(store.get(data_key("challenger_model", f"{DAY.isoformat()}|{symbol}"))).row(0, named=True)
    return json.loads(store.get(row["bundle_path"] + "metrics.json"))


def _plant_future_return(store, settings, symbol: str, column: str) -> dict[str, bytes]:
    """Overwrite ``column`` of the stored features of ``symbol`` with the next 24 h log return (look-ahead);
    returns the original objects."""
    days = date_range(FIRST, DAY)
    keys = [f"{d.isoformat()}|{symbol}" for d in days]
    candles = pl.concat(
        [bytes_to_frame(store.get(data_key("candles", k))) for k in keys if store.exists(data_key("candles", k))]
    ).sort("ts")
    horizon = settings.labels.horizon_minutes // settings.bar_minutes
    future = candles.select("ts", (pl.col("close").shift(-horizon) / pl.col("close")).log().alias("_future"))
    planted = {}
    for key in keys:
        path = data_key("features", key)
        if not store.exists(path):
            continue
        planted[path] = store.get(path)
        feats = bytes_to_frame(planted[path])
        leaky = feats.join(future, on="ts", how="left").with_columns(pl.col("_future").alias(column)).drop("_future")
        store.put(path, frame_to_bytes(leaky.select(feats.columns)))
    return planted


def _leak_auc(store, column: str) -> float:
    """AUC of the stored (planted) column against the long's outcome, over the coin's stored days."""
    from sklearn.metrics import roc_auc_score

    feats = pl.concat([bytes_to_frame(store.get(p)) for p in store.list(f"features/{LEAKY}/")])
    labels = pl.concat([bytes_to_frame(store.get(p)) for p in store.list(f"labels/{LEAKY}/")])
    joined = feats.select("ts", column).join(labels.select("ts", "ret"), on="ts").drop_nulls()
    return float(roc_auc_score((joined["ret"] > 0).to_numpy(), joined[column].to_numpy()))


def test_truncation_canary_passes_on_real_data_and_fails_on_a_stored_leak(home, replay_history):
    """On the session's replay history (its data assets through DAY), every coin of DAY sampled."""
    settings = history_settings(replay_history.home, validation={"n_folds": 3, "truncation_canary_coins": 0})
    defs = defs_for(settings)
    instance = replay_history.instance()
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    store = LocalObjectStore(settings.store_root)

    clean = _materialize_challengers(defs, instance, symbols)
    assert clean.success
    checks = {c.check_name: c for c in clean.get_asset_check_evaluations()}
    assert checks["walk_forward_canaries_pass"].passed, checks["walk_forward_canaries_pass"].metadata
    for symbol in COINS:
        metrics = _bundle_metrics(store, symbol)
        truncation = metrics["canaries"]["truncation"]
        assert truncation["passed"] is True and truncation["n_diff"] == 0, (symbol, truncation)
        assert truncation["shape"][0] >= settings.models.min_train_rows
        assert metrics["promotable"] is True

    # plant the leak in the stored features of one coin: a recipe column becomes the next 24 h return
    column = recipe_for(settings).names[0]
    originals = _plant_future_return(store, settings, LEAKY, column)
    assert len(originals) > 14
    leaky = _materialize_challengers(defs, instance, symbols)
    assert leaky.success
    metrics = _bundle_metrics(store, LEAKY)
    assert _leak_auc(store, column) > 0.7  # the planted column really predicts the label
    truncation = metrics["canaries"]["truncation"]
    assert truncation["passed"] is False and column in truncation["columns"], truncation
    assert metrics["canaries"]["passed"] is False and metrics["promotable"] is False
    # the whole date is suspect: the other coins' models are not promotable either
    for symbol in set(COINS) - {LEAKY}:
        other = _bundle_metrics(store, symbol)
        assert other["canaries"]["truncation"]["passed"] is False and other["promotable"] is False
    checks = {c.check_name: c for c in leaky.get_asset_check_evaluations()}
    assert not checks["walk_forward_canaries_pass"].passed
    offending = checks["walk_forward_canaries_pass"].metadata["offending_keys"].value
    assert f"{DAY.isoformat()}|{LEAKY}" in offending and "truncation" in offending[f"{DAY.isoformat()}|{LEAKY}"]

    # a canary that cannot run says so, and that coin is not promotable: SOL's candles of the window are gone
    for path, data in originals.items():
        store.put(path, data)
    span = WINDOWS["training_days"] + WINDOWS["shadow_days"]
    window = date_range(DAY - timedelta(days=span), DAY - timedelta(days=5))  # the whole training window
    for d in window:
        path = data_key("candles", f"{d.isoformat()}|SOLUSDT")
        if store.exists(path):
            store.delete(path)
    blind = _materialize_challengers(defs, instance, symbols)
    assert blind.success
    sol = _bundle_metrics(store, "SOLUSDT")
    assert (
        sol["canaries"]["truncation"]["passed"] is None and "could not run" in sol["canaries"]["truncation"]["reason"]
    )
    assert sol["promotable"] is False and sol["canaries"]["passed"] is False
    for symbol in ("BTCUSDT", LEAKY):
        assert _bundle_metrics(store, symbol)["canaries"]["truncation"]["passed"] is True
        assert _bundle_metrics(store, symbol)["promotable"] is True
    check = {c.check_name: c for c in blind.get_asset_check_evaluations()}["walk_forward_canaries_pass"]
    assert not check.passed and list(check.metadata["offending_keys"].value) == [f"{DAY.isoformat()}|SOLUSDT"]
