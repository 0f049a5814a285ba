"""The whole daily graph for several coins x several dates through the production path (ccxt against the replay
exchange, the registry on PostgreSQL): challengers, walk-forward reports, shadow trading, promotions, champion
pointers and the daily summary. The promotion gates are relaxed so that the publication path runs every day
(on 1h bars the models have no edge after costs, and the real gates rightly refuse them)."""

import io
import json
from datetime import date, timedelta

import polars as pl
import pytest

from huracan_assets.core.models.bundle import BUNDLE_FILES, BundleError, load_bundle_model, verify_bundle
from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.exchange.replay import running_replay_server
from huracan_assets.names import CHAMPION_ASSETS
from huracan_assets.registry.client import Registry
from huracan_assets.runner import backfill, daily_loop
from huracan_assets.settings import load_settings
from huracan_assets.specs import recipe_for
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets_tests.defs.helpers import defs_for, sqlite_instance
from huracan_assets_tests.integration.history import (
    COINS,
    LAST,
    RELAXED,
    REPLAY_LONG,
    WINDOWS,
    after,
    history_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("replay_history")]  # one history build
DATES = [date(2024, 8, 7), date(2024, 8, 8), date(2024, 8, 9)]  # the days after the replay history


@pytest.mark.parametrize("scale", ["small", pytest.param("full", marks=pytest.mark.full)])
def test_whole_graph_x_3_dates_on_replay_and_postgres(scale, home, tmp_path, pg_url, monkeypatch, request):
    """small: the session's replay history (6 coins, models of 20 rounds); full (``make test-all``): all 22 coins of
    the replay, the ranked universe and the configured models, with a history of its own."""
    monkeypatch.setenv("HURACAN_TEST_REGISTRY_URL", pg_url)
    postgres = {"kind": "postgres", "url_env": "HURACAN_TEST_REGISTRY_URL"}
    if scale == "small":
        history = request.getfixturevalue("replay_history")
        instance, first_clock = history.instance(), after(LAST)
    else:
        instance, first_clock = sqlite_instance(tmp_path), after(date(2024, 7, 1))
    with running_replay_server(REPLAY_LONG, now_ms=first_clock) as replay:
        if scale == "small":
            settings = history_settings(history.home, base_url=replay.url, registry=postgres, promotion=RELAXED)
        else:
            settings = load_settings(
                "local",
                partitions={"start_date": "2024-07-01"},
                exchange={"kind": "ccxt", "exchange_id": "binance", "base_url": replay.url, "rate_limit_ms": 1},
                registry=postgres,
                windows=WINDOWS,
                models={"min_train_rows": 200},
                validation={"n_folds": 3},
                promotion=RELAXED,
            )
        defs = defs_for(settings)
        clock = lambda d: replay.set_now(after(d))  # noqa: E731
        if scale == "full":
            backfill(defs, instance, date(2024, 7, 1), DATES[0] - timedelta(days=1), 40, with_summary=False,
                     clock=clock, job="symbol_day_data_job")  # fmt: skip
        store = LocalObjectStore(settings.store_root)
        outcomes = daily_loop(defs, instance, store, DATES[0], DATES[-1], clock=clock)

    symbols = instance.get_dynamic_partitions(SYMBOLS)
    assert len(symbols) == (len(COINS) if scale == "small" else 22)
    registry = Registry(pg_url)
    models = registry.select("models", as_of=DATES)
    by_day = {d: sorted(m["symbol"] for m in models if m["as_of"] == d) for d in DATES}
    for day, outcome in zip(DATES, outcomes, strict=True):
        assert len(by_day[day]) >= len(symbols) - 2, (day, outcome.summary)
        assert outcome.summary["failed"] == {}
    # TON lists on 2024-08-08 10:00: held out with a reason, never trained on a stub
    assert "TONUSDT" not in by_day[DATES[-1]]
    ton = registry.select("symbol_status", symbol="TONUSDT", as_of=DATES[-1])
    assert ton and all(r["status"] != "ok" for r in ton if r["asset"] in ("features", "challenger_model"))

    # every model has a verifiable bundle and out-of-sample rows in model_metrics (PostgreSQL)
    recipe_hash = recipe_for(settings).hash
    metrics = registry.select("model_metrics", as_of=DATES)
    windows = {(r["model_id"], r["window"]) for r in metrics}
    for m in models:
        assert (m["model_id"], "wf_overall") in windows and (m["model_id"], "wf_fold_0") in windows
        files = {name: store.get(m["s3_path"] + name) for name in BUNDLE_FILES}
        bundle = verify_bundle(files, expected_recipe_hash=recipe_hash)
        assert bundle.content_hash == m["sha256"] and m["s3_path"].startswith(f"challengers/{m['symbol']}/")
        config = bundle.config
        assert config["windows"]["training"] == _training(m["as_of"]) and config["recipe_hash"] == recipe_hash
        assert bundle.metrics["canaries"]["passed"] is True and bundle.metrics["promotable"] is True
    overall = [r for r in metrics if r["window"] == "wf_overall"]
    assert all(r["canaries_passed"] for r in overall)
    assert all(0.0 <= r["auc"] <= 1.0 and r["n_test"] > 0 for r in overall)
    assert any(r["n_trades"] for r in overall)
    # a bundle is refused for another recipe, and its model predicts from the bundle alone
    one = models[0]
    files = {name: store.get(one["s3_path"] + name) for name in BUNDLE_FILES}
    with pytest.raises(BundleError):
        verify_bundle(files, expected_recipe_hash="0" * 16)
    model = load_bundle_model(verify_bundle(files))
    assert len(model.feature_names) == len(json.loads(files["config.json"])["feature_names"])

    # the checks of each date's run: canaries passed and no coin failed
    for name in ("walk_forward_canaries_pass", "challenger_all_symbols_ok"):
        records = instance.event_log_storage.get_asset_check_execution_history(_check_key(name), limit=10)
        assert [r.status.value for r in records] == ["SUCCEEDED"] * len(DATES), name

    # rerunning a date rebuilds byte-identical bundles (same data, spec and seed)
    before = {m["model_id"]: m["sha256"] for m in models if m["as_of"] == DATES[-1]}
    rerun = defs.resolve_job_def("symbol_day_job").execute_in_process(
        instance=instance,
        tags=range_tags(DATES[-1], DATES[-1], symbols),
        asset_selection=[_key("challenger_model"), _key("walk_forward_report")],
    )
    assert rerun.success
    rebuilt = {m["model_id"]: m["sha256"] for m in registry.select("models", as_of=[DATES[-1]])}
    assert rebuilt == before
    frame = pl.DataFrame(registry.select("model_metrics", as_of=[DATES[-1]]))
    assert frame.filter(pl.col("window") == "wf_overall").height == len(before)

    _check_champions(store, registry, recipe_hash, by_day)
    _check_summary(store, by_day, len(symbols) - 2)

    # a backfill of an old date republishes its history but never moves latest.json back
    latest_before = {s: store.get(f"champion/{s}/latest.json") for s in by_day[DATES[-1]]}
    old = defs.resolve_job_def("symbol_day_job").execute_in_process(
        instance=instance,
        tags=range_tags(DATES[0], DATES[0], symbols),
        asset_selection=[_key(a) for a in CHAMPION_ASSETS],
    )
    assert old.success
    assert {s: store.get(f"champion/{s}/latest.json") for s in by_day[DATES[-1]]} == latest_before


def _check_champions(store, registry, recipe_hash, by_day) -> None:
    from huracan_assets.publishing.champion import check_pointer, read_pointer

    promotions = registry.select("promotions", as_of=DATES)
    for day in DATES:
        assert {p["symbol"] for p in promotions if p["as_of"] == day} == set(by_day[day])  # relaxed gates
        log = (
            pl.read_parquet(store.get_path(f"shadow_logs/trades/{day}.parquet"))
            if hasattr(store, "get_path")
            else (pl.read_parquet(io.BytesIO(store.get(f"shadow_logs/trades/{day}.parquet"))))
        )
        assert set(log["role"]) == ({"challenger"} if day == DATES[0] else {"challenger", "champion"})
    for symbol in by_day[DATES[-1]]:
        assert check_pointer(store, symbol, recipe_hash) == (True, check_pointer(store, symbol, recipe_hash)[1])
        pointer = read_pointer(store, symbol)
        assert pointer.as_of == DATES[-1] and pointer.bucket_path.startswith(f"models/{symbol}/")
        for day in DATES:
            assert store.exists(f"champion/{symbol}/history/{day}.json")
    trades = registry.select("shadow_trades", as_of=DATES)
    assert trades and {t["side"] for t in trades} <= {"buy", "sell"}
    equity = registry.select("daily_equity", date=DATES)
    assert any(e["symbol"] == "*" for e in equity)  # the portfolio row of the summary


def _check_summary(store, by_day, least_models: int) -> None:
    summary = json.loads(store.get(f"summaries/daily/{DATES[-1]}.json"))
    assert summary["symbols_done"] == len(by_day[DATES[-1]])
    assert set(summary["promotions"]) == set(by_day[DATES[-1]])
    assert summary["trades"]["challenger_trades"] > 0 and summary["trades"]["champion_trades"] > 0
    assert summary["top_engines"] and summary["top_coins"] and summary["walk_forward"]["models"] >= least_models
    assert "TONUSDT" in summary["skipped"]


def _training(day: date) -> str:
    return f"[{day - timedelta(days=24)}, {day - timedelta(days=4)})"


def _key(name: str):
    from dagster import AssetKey

    return AssetKey(name)


def _check_key(name: str):
    from dagster import AssetCheckKey

    asset = "walk_forward_report" if name == "walk_forward_canaries_pass" else "challenger_model"
    return AssetCheckKey(_key(asset), name)
