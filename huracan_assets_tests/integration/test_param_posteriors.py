"""``param_posteriors`` in the daily graph, on the published replay history (three coins, D1 and D2 decided, every
coin promoted on D1): each strategy preset learns from the day's replayed shadow trades, D's posterior is D-1's
moved by D's outcomes, the daily summary and the key's metadata name tomorrow's preset and why, and nothing stored
after D moves the posterior of D."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest
from dagster import AssetKey, AssetRecordsFilter

from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.names import PARAM_POSTERIORS
from huracan_assets.registry.client import Registry, sqlite_url
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets_tests.defs.helpers import defs_for
from huracan_assets_tests.integration.history import PUBLISHED_COINS, PUBLISHED_DATES

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("replay_history")]

D1, D2 = PUBLISHED_DATES
COINS = [c.replace("_", "") for c in PUBLISHED_COINS]


def _frame(store, asset: str, symbol: str, day) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(store.get(f"{asset}/{symbol}/{day}.parquet")))


def _write(store, path: str, frame: pl.DataFrame) -> None:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    store.put(path, buf.getvalue())


def _materialize(published, day) -> None:
    settings = published.settings()
    defs = defs_for(settings)
    instance = published.history.instance()
    result = defs.resolve_job_def("symbol_day_job").execute_in_process(
        instance=instance,
        tags=range_tags(day, day, instance.get_dynamic_partitions(SYMBOLS)),
        asset_selection=[AssetKey(PARAM_POSTERIORS)],
    )
    assert result.success
    instance.dispose()


def test_presets_learn_from_the_days_shadow_trades_and_the_summary_names_tomorrows(published_history):
    settings = published_history.settings()
    store = LocalObjectStore(settings.store_root)
    learned = 0
    for symbol in COINS:
        first, second = _frame(store, PARAM_POSTERIORS, symbol, D1), _frame(store, PARAM_POSTERIORS, symbol, D2)
        assert set(first["strategy"]) == {"momentum_breakout", "trend_following", "mean_reversion"}
        assert set(first.filter(pl.col("in_force"))["preset_id"]) == {"safe"}  # a new coin: the safe presets
        # D2's posterior is D1's moved by D2's learned trades, preset by preset
        joined = first.select("strategy", "preset_id", n1="n").join(
            second.select("strategy", "preset_id", "n", "learned"), on=["strategy", "preset_id"]
        )
        assert joined.height == first.height
        assert (joined["n"] == joined["n1"] + joined["learned"]).all()
        learned += int(second["learned"].sum()) + int(first["learned"].sum())
        # D2 replays the champion promoted on D1 (the model in force on D2); D1 had none, so the challenger
        assert set(first["model_role"]) == {"challenger"} and set(second["model_role"]) == {"champion"}
        champion = _frame(store, "champion_pointer", symbol, D1)["champion_model_id"][0]
        assert set(second["model_id"]) == {champion}
        # tomorrow's preset is the state's current one, and the summary names it with the reason
        summary = json.loads(store.get(f"summaries/daily/{D2}.json"))
        for strategy, rows in second.group_by("strategy"):
            chosen = rows.filter(pl.col("chosen")).row(0, named=True)
            assert json.loads(chosen["state"])["current"] == chosen["preset_id"]
            item = summary["presets"][symbol][strategy[0]]
            assert (item["preset"], item["reason"]) == (chosen["preset_id"], chosen["reason"])
    assert learned > 0  # the replays traded: the posteriors learned something
    # the evidence huracan serve adds to its live posteriors: D2's posteriors, as stored in the asset
    registry = Registry(sqlite_url(settings.sqlite_path))
    rows = registry.select("param_evidence", instrument=COINS)
    assert {r["as_of"] for r in rows} == {D2} and len(rows) == sum(
        _frame(store, PARAM_POSTERIORS, s, D2).height for s in COINS
    )
    for r in rows:
        frame = _frame(store, PARAM_POSTERIORS, r["instrument"], D2)
        row = frame.filter((pl.col("strategy") == r["strategy"]) & (pl.col("preset_id") == r["preset_id"]))
        assert r["n"] == row["n"][0] and r["model_id"] == row["model_id"][0]
    registry.dispose()


def test_the_keys_metadata_shows_tomorrows_preset(published_history):
    instance = published_history.history.instance()
    key = f"{D2}|{COINS[0]}"  # one key's own materialization (the latest of the run may be another key's)
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(PARAM_POSTERIORS), asset_partitions=[key]), limit=1
    ).records
    metadata = records[0].asset_materialization.metadata
    assert {"momentum_breakout_preset", "trend_following_reason", "plan"} <= set(metadata)
    assert "| strategy | tomorrow |" in metadata["plan"].value
    instance.dispose()


def test_nothing_stored_after_d_moves_the_posterior_of_d(published_history):
    """Rewrite D2's candles, regimes, costs and model probabilities, then rematerialize D1: the same bytes. The
    control: rematerializing D2 itself on the rewritten inputs changes it."""
    settings = published_history.settings()
    store = LocalObjectStore(settings.store_root)
    before = {s: _frame(store, PARAM_POSTERIORS, s, D1) for s in COINS}
    before_d2 = {s: _frame(store, PARAM_POSTERIORS, s, D2) for s in COINS}
    for symbol in COINS:
        candles = _frame(store, "candles", symbol, D2)
        swing = pl.Series([1.0 + 0.03 * ((i % 5) - 2) for i in range(candles.height)])
        _write(store, f"candles/{symbol}/{D2}.parquet", candles.with_columns(
            open=pl.col("open") * swing, close=pl.col("close") * swing.reverse(),
            high=pl.max_horizontal(pl.col("open") * swing, pl.col("close") * swing.reverse()) * 1.05,
            low=pl.min_horizontal(pl.col("open") * swing, pl.col("close") * swing.reverse()) * 0.95,
        ))  # fmt: skip
        regimes = _frame(store, "regimes", symbol, D2)
        _write(store, f"regimes/{symbol}/{D2}.parquet", regimes.with_columns(regime=pl.lit("PANIC")))
        signals = _frame(store, "engine_signals", symbol, D2)
        _write(store, f"engine_signals/{symbol}/{D2}.parquet", signals.with_columns(spread_bps=pl.lit(1.0)))
    log = pl.read_parquet(io.BytesIO(store.get(f"shadow_logs/predictions/{D2}.parquet")))
    _write(store, f"shadow_logs/predictions/{D2}.parquet", log.with_columns(p=1.0 - pl.col("p")))

    _materialize(published_history, D1)
    for symbol in COINS:
        assert _frame(store, PARAM_POSTERIORS, symbol, D1).equals(before[symbol]), symbol
    registry = Registry(sqlite_url(settings.sqlite_path))
    assert {r["as_of"] for r in registry.select("param_evidence")} == {D2}  # the older date did not replace D2's
    registry.dispose()
    _materialize(published_history, D2)
    assert any(not _frame(store, PARAM_POSTERIORS, s, D2).equals(before_d2[s]) for s in COINS)
