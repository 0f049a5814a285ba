"""``models.publish_refit``: the validated challenger decides, the refit through D is what gets published.

Three coins x two dates on real 1h candles (replay_long) after the session's replay history, relaxed gates so that
every coin is promoted. Checks:
- each challenger has a refit bundle under ``refits/`` trained on ``[D + 1 - W, D + 1)`` with the same spec and
  seed, registered as kind ``refit`` with the challenger as parent, whose ``metrics.json`` names the validated
  model (id, path, sha256, window) and carries its walk-forward evidence;
- the refit's training set never reaches past the end of D: a world whose candles stop at the end of D builds
  byte-identical refits (a truncated-future canary);
- promotion publishes the refit (``latest.json`` names it), the history snapshot says which model was validated;
- on the next day the champion (the published refit) trades only that day's bars, in its forward ledger, which
  starts the day after its promotion: bars the refit has never seen; the challengers' ledger runs day after day;
- the pointer counts the retests since the last promotion (``tests_since_promotion``): 0 after each promotion,
  and 1 then 2 when the same dates are decided again under the default gates, which refuse them; the gates JSON
  records the retest number, the p-value, the level and the Benjamini-Hochberg outcome over the day's coins.
"""

import base64
import io
import json
import shutil
from datetime import date, timedelta

import polars as pl
import pytest
from dagster import AssetKey, AssetRecordsFilter

from huracan_assets.client import Champion
from huracan_assets.core.engines.signals import MetaState
from huracan_assets.core.market_data.candles import date_range, day_bounds_ms
from huracan_assets.core.models.bundle import BUNDLE_FILES, BundleError, load_bundle_model, verify_bundle
from huracan_assets.core.shadow.ledger import Ledger
from huracan_assets.core.training.dataset import inference_frame, matrix
from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.names import CHAMPION_ASSETS, join_key
from huracan_assets.publishing.champion import NoChampion, check_pointer, read_pointer
from huracan_assets.publishing.decisions import read_decisions
from huracan_assets.registry.client import Registry
from huracan_assets.settings import PromotionSettings
from huracan_assets.specs import build_specs, recipe_for, replay_lead_days
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import bytes_to_frame, data_key, reference_closes
from huracan_assets_tests.defs.helpers import defs_for
from huracan_assets_tests.integration.history import (
    PUBLISHED_COINS,
    PUBLISHED_DATES,
    WINDOWS,
    run_published,
    world,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("replay_history")]  # one history build
DATES = list(PUBLISHED_DATES)
W, S = WINDOWS["training_days"], WINDOWS["shadow_days"]


def _run(golden, tmp_path, data, last: date, name: str):
    published = run_published(golden, tmp_path / name, data, last)
    settings = published.settings()
    return settings, LocalObjectStore(settings.store_root), published.outcomes, published.history.instance()


def test_refit_is_published_and_the_validated_model_decides(home, tmp_path, golden_history, published_history):
    settings = published_history.settings()
    store, outcomes = LocalObjectStore(settings.store_root), published_history.outcomes
    instance = published_history.history.instance()
    assert all(o.summary["failed"] == {} for o in outcomes), [o.summary for o in outcomes]
    registry = Registry(f"sqlite:///{settings.sqlite_path}")
    recipe_hash = recipe_for(settings).hash
    models = registry.select("models", as_of=DATES)
    challengers = {(m["as_of"], m["symbol"]): m for m in models if m["kind"] == "challenger"}
    refits = {(m["as_of"], m["symbol"]): m for m in models if m["kind"] == "refit"}
    assert len(challengers) == len(PUBLISHED_COINS) * len(DATES) and refits.keys() == challengers.keys()

    for (day, symbol), refit in refits.items():
        validated = challengers[(day, symbol)]
        assert refit["parent_id"] == validated["model_id"] and refit["s3_path"].startswith(f"refits/{symbol}/")
        bundle = verify_bundle({n: store.get(refit["s3_path"] + n) for n in BUNDLE_FILES}, recipe_hash)
        twin = verify_bundle({n: store.get(validated["s3_path"] + n) for n in BUNDLE_FILES}, recipe_hash)
        assert bundle.content_hash == refit["sha256"] != validated["sha256"]
        assert bundle.config["model"] == twin.config["model"] and bundle.config["seed"] == twin.config["seed"]
        start, end = day + timedelta(days=1 - W), day + timedelta(days=1)
        assert bundle.config["windows"]["training"] == f"[{start}, {end})"
        assert twin.config["windows"]["training"] == f"[{day - timedelta(days=S + W)}, {day - timedelta(days=S + 1)})"
        named = bundle.metrics["validated_model"]
        assert named["this_bundle"] is False and twin.metrics["validated_model"]["this_bundle"] is True
        assert (named["model_id"], named["bundle_path"], named["sha256"]) == (
            validated["model_id"], validated["s3_path"], validated["sha256"])  # fmt: skip
        assert named["training"] == twin.config["windows"]["training"]
        assert bundle.metrics["walk_forward"] == twin.metrics["walk_forward"]
        # W days without the embargo and the shadow gap: more resolved events than the validated window
        assert bundle.metrics["refit"]["rows"] > twin.metrics["rows"] >= 200

    # promotion published the refit; the snapshot says which model was validated
    for symbol in {s for _, s in refits}:
        pointer = read_pointer(store, symbol)
        refit = refits[(DATES[-1], symbol)]
        assert pointer.as_of == DATES[-1] and pointer.sha256 == refit["sha256"]
        assert pointer.model_id == refit["model_id"] and check_pointer(store, symbol, recipe_hash)[0]
        published = pointer.snapshot["published"]
        assert published["model"] == "refit" and published["refit_model_id"] == refit["model_id"]
        assert published["validated_model_id"] == challengers[(DATES[-1], symbol)]["model_id"]

    # day 2: the champion is the published refit of day 1, and its forward ledger starts on day 2: it trades only
    # bars after its promotion (which it has never seen), and the decision's champion stats are that ledger
    log = pl.read_parquet(io.BytesIO(store.get(f"shadow_logs/trades/{DATES[1]}.parquet")))
    champion = log.filter(pl.col("role") == "champion")
    assert set(champion["model_id"]) <= {refits[(DATES[0], s)]["model_id"] for _, s in refits}
    day2 = day_bounds_ms(DATES[1])
    assert champion.filter(pl.col("time").dt.epoch("ms") < day2[0]).height == 0  # nothing before its promotion
    assert log.filter(pl.col("exit_time").dt.epoch("ms") >= day2[1]).height == 0  # only trades closed on day 2
    for symbol in {s for _, s in refits}:
        snapshot = json.loads(store.get(f"champion/{symbol}/history/{DATES[1]}.json"))["snapshot"]
        mine = champion.filter(pl.col("symbol") == symbol)
        assert snapshot["champion"]["n_trades"] == mine.height and snapshot["champion"]["since"] == str(DATES[1])
        row = _pointer(store, symbol, DATES[1])
        assert row["champion_ledger"] is None  # promoted again on day 2: the next champion starts on day 3
        rolling = Ledger.from_json(row["challenger_ledger"])  # the challengers' ledger: one day after another
        assert rolling.days == (DATES[0], DATES[1]) and rolling.n_trades == sum(rolling.daily_trade_counts)
    equity = registry.select("daily_equity", date=[DATES[1]])
    roles = {(e["symbol"], e["role"]) for e in equity}
    assert {(s, "champion") for _, s in refits} <= roles and {(s, "challenger") for _, s in refits} <= roles
    _check_predictions(store, settings, refits, challengers, day2)

    # the UI's plots, per key: each coin-day's materialization carries its own numbers and its own inline PNGs
    _check_key_charts(instance, [join_key(DATES[1], s) for s in sorted({s for _, s in refits})])

    symbols = sorted({s for _, s in refits})
    _check_decision_log(store, registry, symbols, "promotion")
    _check_retest_count(settings, store, instance, symbols)
    _check_decision_log(store, registry, symbols, None)  # decided again: the graph's lines replaced, not added

    # truncated future: a world whose candles end with D makes byte-identical refits of D (world "a" held the
    # partitions of D + 1 when it trained D)
    _, store_b, _, _ = _run(golden_history, tmp_path, world(tmp_path / "cut", DATES[0]), DATES[0], "b")
    for (day, symbol), refit in refits.items():
        if day == DATES[0]:
            again = {n: store_b.get(refit["s3_path"] + n) for n in BUNDLE_FILES}
            assert verify_bundle(again).content_hash == refit["sha256"], symbol
    shutil.rmtree(tmp_path / "cut")


def _check_predictions(store, settings, refits, challengers, day2) -> None:
    """``shadow_logs/predictions/D.parquet`` holds each role's probability at every bar of D, and it is exactly
    what the stored bundle predicts from the stored inputs of that bar."""
    preds = pl.read_parquet(io.BytesIO(store.get(f"shadow_logs/predictions/{DATES[1]}.parquet")))
    assert (
        preds["ts"].min() >= day2[0]
        and preds["ts"].max() < day2[1]
        and set(preds["role"]) == {"champion", "challenger"}
    )
    symbols = sorted({s for _, s in refits})
    for symbol in symbols:
        mine = preds.filter(pl.col("symbol") == symbol)
        owners = {r: set(mine.filter(pl.col("role") == r)["model_id"]) for r in ("champion", "challenger")}
        assert owners == {"champion": {refits[(DATES[0], symbol)]["model_id"]},
                          "challenger": {challengers[(DATES[1], symbol)]["model_id"]}}  # fmt: skip
        assert mine.filter(pl.col("role") == "champion").height == 24 and mine["p"].null_count() == 0
    # the champion's logged probabilities, recomputed from its published bundle and D's stored inputs
    symbol = symbols[0]
    bundle = verify_bundle({n: store.get(refits[(DATES[0], symbol)]["s3_path"] + n) for n in BUNDLE_FILES})
    key = f"{DATES[1].isoformat()}|{symbol}"
    feats, sigs = (bytes_to_frame(store.get(data_key(a, key))) for a in ("features", "engine_signals"))
    specs = build_specs(settings)
    rows = inference_frame(feats, sigs, *day2, specs.recipe.names, specs.engines)
    p = load_bundle_model(bundle).predict_proba(matrix(rows, bundle.config["feature_names"]))
    logged = preds.filter((pl.col("symbol") == symbol) & (pl.col("role") == "champion")).sort("ts")
    assert logged["ts"].to_list() == rows["ts"].to_list() and logged["p"].to_list() == p.tolist()

    # the live side's client: today's champion (the refit promoted on D2), verified, predicting from raw candles
    # through core/inference.py gives what the champion predicts from the graph's stored rows, bit for bit
    champion = Champion.load(store, symbol, specs.recipe.hash)
    assert champion.model_id == refits[(DATES[1], symbol)]["model_id"]
    days = date_range(DATES[1] - timedelta(days=replay_lead_days(settings)), DATES[1])
    candles = {d: bytes_to_frame(store.get(data_key("candles", f"{d}|{symbol}"))) for d in days
               if store.exists(data_key("candles", f"{d}|{symbol}"))}  # fmt: skip
    spreads = {d: bytes_to_frame(store.get(data_key("spreads", f"{d}|{symbol}"))) for d in days
               if store.exists(data_key("spreads", f"{d}|{symbol}"))}  # fmt: skip
    meta = MetaState.from_frame(bytes_to_frame(store.get(data_key("meta_weights", f"{DATES[0]}|{symbol}"))))
    reference = reference_closes(store, settings.universe.reference_symbol, days)
    live = champion.predict_candles(candles, reference, meta, DATES[1], specs.replay, spreads)
    assert live["p"].to_list() == champion.predict(rows)["p"].to_list() and live.height == 24
    with pytest.raises(NoChampion):
        Champion.load(store, "XRPUSDT", specs.recipe.hash)  # in the history, never trained here
    with pytest.raises(BundleError):
        Champion.load(store, symbol, "0" * 16)  # a client on another recipe refuses the bundle


def _check_decision_log(store, registry, symbols: list[str], kind: str | None) -> None:
    """``decisions/D.jsonl`` and the registry's ``decisions``: one line per coin decided on D, with its kind, reason,
    models, retest number and gate values, equal to the pointer's decision; the daily summary lists them."""
    for day in DATES:
        lines = read_decisions(store, day)
        assert sorted(line["symbol"] for line in lines) == symbols, (day, lines)
        for line in lines:
            row = _pointer(store, line["symbol"], day)
            expected = kind or ("promotion" if row["promoted"] else "refusal")
            assert line["kind"] == expected and line["reason"] == row["reason"] and line["source"] == "graph"
            assert line["model_id"] == row["challenger_model_id"] and line["document"]["gates"]
            gates = json.loads(row["gates"])["gates"]
            assert line["trial"] == (gates.get("absolute_edge") or gates["champion_margin"])["trial"]
        logged = registry.select("decisions", date=[day])
        assert sorted((r["symbol"], r["kind"]) for r in logged) == sorted((x["symbol"], x["kind"]) for x in lines)
    if kind is not None:
        summary = json.loads(store.get(f"summaries/daily/{DATES[-1]}.json"))
        assert [(d["symbol"], d["kind"]) for d in summary["decisions"]] == [(s, kind) for s in symbols]


def _pointer(store, symbol: str, day: date) -> dict:
    return pl.read_parquet(io.BytesIO(store.get(f"champion_pointer/{symbol}/{day}.parquet"))).row(0, named=True)


def _check_retest_count(settings, store, instance, symbols: list[str]) -> None:
    # relaxed gates promoted every coin on both dates: each decision was retest 1 and reset the count to 0
    for day in DATES:
        for symbol in symbols:
            row = _pointer(store, symbol, day)
            gates = json.loads(row["gates"])["gates"]
            edge = gates["absolute_edge" if day == DATES[0] else "champion_margin"]
            assert row["promoted"] and row["tests_since_promotion"] == 0, (day, symbol)
            assert edge["trial"] == 1 and edge["passed"] and edge["p_value"] <= edge["level"]
            assert gates["dsr"]["trials"] == settings.validation.dsr_trials
            fdr = gates["fdr"]
            assert fdr["passed"] and fdr["coins"] == len(symbols) and fdr["rejections"] == len(symbols)
            assert fdr["value"] == edge["p_value"] and fdr["threshold"] <= edge["level"]
    # the same dates decided again in one ranged run under the default gates: the first date has no earlier
    # pointer (retest 1), the second reads the first's count (retest 2 unless the first promoted)
    strict = defs_for(settings.model_copy(update={"promotion": PromotionSettings()}))
    result = strict.resolve_job_def("symbol_day_job").execute_in_process(
        instance=instance,
        tags=range_tags(DATES[0], DATES[-1], instance.get_dynamic_partitions(SYMBOLS)),
        asset_selection=[AssetKey(a) for a in CHAMPION_ASSETS],
    )
    assert result.success
    counts = {}
    for symbol in symbols:
        expected = 0
        for day in DATES:
            row = _pointer(store, symbol, day)
            trial = expected + 1
            expected = 0 if row["promoted"] else trial
            assert row["tests_since_promotion"] == expected, (day, symbol, row["reason"])
            gates = json.loads(row["gates"])["gates"]
            edge = gates.get("absolute_edge") or gates["champion_margin"]
            assert edge["trial"] == trial and gates["dsr"]["trials"] == settings.validation.dsr_trials * trial
            assert edge["level"] == pytest.approx(PromotionSettings().alpha * 30 / ((29 + trial) * (30 + trial)))
            assert gates["fdr"]["coins"] == len(symbols)
            counts[(day, symbol)] = row["tests_since_promotion"]
    assert 2 in counts.values(), counts  # the default gates refuse 4-day windows: the count went 1, 2


def _check_key_charts(instance, keys: list[str]) -> None:
    """shadow_trades (the ledgers' equity) and challenger_model (the walk-forward folds): every key has its own
    chart, drawn for that key, and its own numbers; champion_pointer says what was decided for the key."""
    for asset, entry in (("shadow_trades", "equity"), ("challenger_model", "walk_forward_folds")):
        charts = {}
        for key in keys:
            meta = _latest(instance, asset, key)
            text = charts[key] = meta[entry].value
            data = base64.b64decode(text.split("data:image/png;base64,", 1)[1].split(")", 1)[0])
            assert data.startswith(b"\x89PNG") and len(data) > 200, (asset, key)
            assert meta["status"].value == "ok", (asset, key)
            number = "auc" if asset == "challenger_model" else "shadow_trades"
            assert isinstance(meta[number].value, int | float), (asset, key)
        assert len(set(charts.values())) == len(keys), f"{asset}: keys share a chart"
        if asset == "shadow_trades":
            assert all(f"**{k}**" in charts[k] for k in keys)
    for key in keys:
        meta = _latest(instance, "champion_pointer", key)
        assert meta["promoted"].value is True and meta["champion_model_id"].value.startswith(key.split("|")[1])


def _latest(instance, asset: str, key: str) -> dict:
    """The metadata of the latest materialization of ``asset`` for ``key``."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[key]), limit=1
    ).records
    return records[0].asset_materialization.metadata
