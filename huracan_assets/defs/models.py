"""``challenger_model`` and ``walk_forward_report`` (symbol x day): one model per coin, validated honestly.

One op produces both assets, so each coin's training window is read once. Per coin, in turn (lazily, so
memory stays flat in the number of coins): the training set of ``[D - S - W, D - S - embargo)``, a purged,
embargoed walk-forward with the leakage canaries, the final fit on the whole window, and the bundle, written
under ``challengers/SYMBOL/`` and registered as soon as that coin is done. A coin that fails or times out is
marked failed for the day; the others carry on.
"""

import random
import time
from datetime import UTC, date, datetime, timedelta

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    MetadataValue,
    Output,
)

from huracan_assets.core.market_data.candles import DAY_MS, date_range
from huracan_assets.core.models.bundle import ModelBundle, make_bundle
from huracan_assets.core.reporting.folds import fold_chart
from huracan_assets.core.reporting.keys import challenger_values
from huracan_assets.core.training.challenger import (
    Skipped,
    TrainingSpec,
    bundle_config,
    canary_reason,
    refit_challenger,
    report_rows,
    train_challenger,
    training_set,
)
from huracan_assets.core.training.dataset import Windows
from huracan_assets.defs.checks import check_spec
from huracan_assets.defs.partitions import symbol_day_multi_asset, window_mapping
from huracan_assets.defs.per_symbol import check_result, key_metadata, run_keys, run_metadata, summarize
from huracan_assets.defs.replay import candle_days_needed, coin_replay, compare_frames, spread_days_needed
from huracan_assets.defs.resources import ObjectStoreResource, RegistryResource
from huracan_assets.names import ACCELERATOR_TAG, SYMBOL_DAY_TAG, join_key, split_key
from huracan_assets.settings import Settings
from huracan_assets.specs import EngineSpecs
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome

GPU_K8S_TAG = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}


def training_tags(settings: Settings) -> dict:
    """Tags of the training step: the lane, the accelerator it can use, and (when configured) the Kubernetes
    run launcher's GPU request."""
    accelerator = "gpu" if settings.models.kind == "torch_mlp" else "cpu"
    tags: dict = {**SYMBOL_DAY_TAG, ACCELERATOR_TAG: accelerator}
    if settings.models.gpu_request:
        tags.update(GPU_K8S_TAG)
    return tags


def build_model_assets(settings: Settings, specs: EngineSpecs) -> list:
    return [_challenger_asset(settings, specs)]


NO_REFIT = {"refit_model_id": None, "refit_path": None, "refit_sha256": None, "refit_note": None}


class _Training:
    """The I/O of one run of the challenger op: the stored windows it reads, the truncation canary's rebuilds,
    the bundles it writes and registers. The training itself is ``core/training/challenger.py``."""

    def __init__(self, settings: Settings, specs: EngineSpecs, store, reg, inputs: dict[str, PartitionWindow]):
        self.settings, self.store, self.reg, self.inputs = settings, store, reg, inputs
        self.spec: TrainingSpec = specs.training
        self.w = settings.windows
        self.span = self.w.shadow_days + self.w.training_days
        self.reports: dict[str, object] = {}
        self.canary_failures: dict[str, str] = {}
        self.per_key: dict[str, dict] = {}  # key -> its own metadata (numbers and the folds' chart)
        self.truncation: dict[str, dict[str, dict]] = {}

    def windows(self, day: date) -> Windows:
        return Windows.for_day(day, self.w.training_days, self.w.shadow_days, self.w.embargo_days)

    def stored(self, day: date, symbol: str) -> tuple | None:
        """(features, engine signals, labels) of the coin over the training and shadow span, from the stores."""
        days = date_range(day - timedelta(days=self.span), day)
        feats, _ = self.inputs["features"].days(symbol, days)
        sigs, _ = self.inputs["engine_signals"].days(symbol, days)
        labs, _ = self.inputs["labels"].days(symbol, days[1:])
        return None if feats is None or labs is None else (feats, sigs, labs)

    # ----------------------------------------------------------------------------------- truncation canary
    def truncation_one(self, day: date, symbol: str) -> dict:
        """The coin's stored training frame against the one rebuilt from candles cut at the window's end."""
        win = self.windows(day)
        stored = self.stored(day, symbol)
        if stored is None:
            return {"passed": None, "reason": "no stored features or labels in the training window"}
        frame = training_set(*stored, win, self.spec)
        if frame.height < self.spec.min_train_rows:
            return {"passed": None, "reason": f"short history: {frame.height} events"}
        inputs = self.inputs
        replay = coin_replay(
            self.settings, self.store, inputs["candles"], inputs["meta_weights"], inputs["spreads"], symbol, win
        )
        first = win.training_start_ms // DAY_MS
        days = [date(1970, 1, 1) + timedelta(days=i) for i in range(first, win.training_end_ms // DAY_MS)]
        rebuilt = (replay.frames("features", days), replay.frames("signals", days), replay.frames("labels", days[1:]))
        if rebuilt[0] is None or rebuilt[2] is None:
            return {"passed": None, "reason": "the stored candles of the window rebuild no features or labels"}
        return compare_frames(frame, training_set(*rebuilt, win, self.spec))

    def check_truncation(self, context, keys: list[str]) -> None:
        """Per date, the truncation canary on a seeded sample of the date's coins (``validation.truncation_canary_
        coins``; 0: every coin), before any coin trains, so every bundle of the date carries its result."""
        n = self.settings.validation.truncation_canary_coins
        for day in sorted({k.split("|")[0] for k in keys}):
            features = self.inputs["features"]  # the coins traded on D: the ones that get a model (``one``)
            day_keys = sorted(k for k in keys if k.startswith(day) and features.status(k).status == "ok")
            sample = day_keys if n == 0 or n >= len(day_keys) else sorted(random.Random(day).sample(day_keys, n))
            results = {}
            for key in sample:
                d, symbol = split_key(key)
                try:
                    results[key] = self.truncation_one(d, symbol)
                except Exception as exc:  # a canary that cannot run says so; nobody is promoted on it
                    results[key] = {"passed": None, "reason": f"{type(exc).__name__}: {exc}"[:300]}
                context.log.info(f"truncation canary {key}: {results[key]}")
            self.truncation[day] = results

    # ------------------------------------------------------------------------------------------- training
    def one(self, day: date, symbol: str):
        """Train, validate and bundle one coin of day D (and its refit when configured)."""
        key = join_key(day, symbol)
        today = self.inputs["features"].status(key)
        if today.status != "ok":  # not in the universe of D, or D's data failed: no model for a coin not traded today
            return SymbolOutcome.skipped(f"features of {day} {today.status}: {today.reason}")
        stored = self.stored(day, symbol)
        if stored is None:
            return SymbolOutcome.skipped("short history: no features or labels in the training window")
        deadline = time.monotonic() + self.spec.timeout_seconds
        samples = self.truncation.get(day.isoformat(), {})
        result = train_challenger(*stored, self.windows(day), self.spec, samples, key, deadline)
        if isinstance(result, Skipped):
            return SymbolOutcome.skipped(result.reason)
        bundle, model_id = self.publish(day, symbol, result.model, result.windows, result.metrics, "challengers", None)
        refit = NO_REFIT
        if self.settings.models.publish_refit:
            refit = self.try_refit(day, symbol, stored, (bundle, model_id, result.metrics), deadline)
        can, wf = result.canaries, result.walk_forward
        if not result.promotable:
            self.canary_failures[key] = canary_reason(can)
        self.reports[key] = report_rows(model_id, bundle.content_hash, wf, result.promotable)
        overall = wf["overall"]
        row = {
            "model_id": model_id,
            "bundle_path": bundle.prefix(symbol),
            "sha256": bundle.content_hash,
            "kind": self.spec.model.kind,
            "rows": result.rows,
            "auc": overall.get("auc"),
            "net_bps_per_trade": overall.get("net_bps_per_trade"),
            "dsr": overall.get("dsr"),
            "canaries_passed": result.promotable,
            **refit,
        }
        self.per_key[key] = challenger_values(row, wf)
        if not result.promotable:
            self.per_key[key]["canaries"] = self.canary_failures[key]
        self.per_key[key]["walk_forward_folds"] = MetadataValue.md(fold_chart(wf))
        floats = dict.fromkeys(("auc", "net_bps_per_trade", "dsr"), pl.Float64)
        return pl.DataFrame([row], schema_overrides={**floats, **dict.fromkeys(NO_REFIT, pl.String)})

    def publish(self, day: date, symbol: str, model, windows: dict, metrics: dict, root: str, parent: str | None):
        """The bundle of ``model``, written now under ``root/SYMBOL/`` (early write) and registered in ``models``."""
        label = self.settings.labels.model_dump()
        config = bundle_config(day, symbol, self.settings.timeframe, self.spec, windows, label)
        bundle = make_bundle(model, config, metrics)
        prefix = bundle.prefix(symbol, root=root)
        for name, data in bundle.files.items():
            self.store.put(prefix + name, data, "application/json" if name.endswith(".json") else None)
        model_id = f"{symbol}-{bundle.bundle_id()}"
        row = {
            "model_id": model_id,
            "parent_id": parent,
            "kind": "challenger" if parent is None else "refit",
            "created_at": datetime.now(UTC),
            "s3_path": prefix,
            "features_used": list(self.spec.names),
            "params": self.spec.model.to_dict(),
            "symbol": symbol,
            "sha256": bundle.content_hash,
            "as_of": day,
            "timeframe": self.settings.timeframe,
        }
        self.reg.upsert("models", [row])
        return bundle, model_id

    def try_refit(self, day: date, symbol: str, data: tuple, validated: tuple, deadline: float) -> dict:
        """The refit's columns, or why there is none: the validated model is then what a promotion publishes.
        A refit that fails or runs out of time never costs the coin its validated challenger."""
        if not validated[2]["promotable"]:
            return {**NO_REFIT, "refit_note": "no refit: the canaries failed, the challenger cannot be promoted"}
        if time.monotonic() > deadline:
            return {**NO_REFIT, "refit_note": "no refit: models.timeout_seconds reached before it"}
        try:
            return self.refit(day, symbol, data, *validated)
        except Exception as exc:  # reported in the row; the challenger stands
            return {**NO_REFIT, "refit_note": f"no refit: {type(exc).__name__}: {exc}"[:500]}

    def refit(self, day: date, symbol: str, data: tuple, validated: ModelBundle, validated_id: str, evidence: dict):
        """The refit through D (``refit_challenger``), published under ``refits/SYMBOL/``."""
        about = {"model_id": validated_id, "bundle_path": validated.prefix(symbol), "sha256": validated.content_hash,
                 "training": validated.config["windows"]["training"]}  # fmt: skip
        result = refit_challenger(*data, day, self.w.training_days, self.spec, about, evidence)
        if isinstance(result, Skipped):
            return {**NO_REFIT, "refit_note": f"no refit ({result.reason}): the validated model is published"}
        bundle, model_id = self.publish(day, symbol, result.model, result.windows, result.metrics, "refits",
                                        validated_id)  # fmt: skip
        return {
            "refit_model_id": model_id,
            "refit_path": bundle.prefix(symbol, root="refits"),
            "refit_sha256": bundle.content_hash,
            "refit_note": f"published on promotion in place of the validated {validated_id}",
        }


def _challenger_asset(settings: Settings, specs: EngineSpecs):
    w = settings.windows
    span = w.shadow_days + w.training_days

    @symbol_day_multi_asset(
        settings.partitions,
        outs={
            "challenger_model": AssetOut(
                io_manager_key="parquet_io_manager",
                group_name="models",
                description="A LightGBM (or torch MLP) model per coin trained on [D-S-W, D-S-embargo); its bundle "
                "(model.bin, config.json, metrics.json, sha256.txt) under challengers/SYMBOL/. With "
                "models.publish_refit, also a refit through D (same spec and seed) under refits/SYMBOL/.",
            ),
            "walk_forward_report": AssetOut(
                io_manager_key="table_io_manager",
                group_name="models",
                metadata={"table": "model_metrics"},
                description="Purged, embargoed walk-forward metrics per fold and overall (out of sample, net of "
                "costs) and the leakage canaries; rows of the registry's model_metrics table.",
            ),
        },
        ins={
            "features": AssetIn(partition_mapping=window_mapping(span)),
            "engine_signals": AssetIn(partition_mapping=window_mapping(span)),
            "labels": AssetIn(partition_mapping=window_mapping(span - 1)),
            # the truncation canary: raw candles up to the training window's end, and the meta weights of the
            # day before the window (the start of the chain it replays)
            "candles": AssetIn(partition_mapping=window_mapping(*candle_days_needed(settings))),
            "spreads": AssetIn(partition_mapping=window_mapping(*spread_days_needed(settings))),
            "meta_weights": AssetIn(partition_mapping=window_mapping(span + 1, -(span + 1))),
        },
        deps=["reference_candles"],
        check_specs=[
            check_spec("challenger_all_symbols_ok", asset="challenger_model"),
            check_spec("walk_forward_canaries_pass", asset="walk_forward_report"),
        ],
        op_tags=training_tags(settings),
    )
    def challenger_model(
        context: AssetExecutionContext,
        features: PartitionWindow,
        engine_signals: PartitionWindow,
        labels: PartitionWindow,
        candles: PartitionWindow,
        meta_weights: PartitionWindow,
        spreads: PartitionWindow,
        object_store: ObjectStoreResource,
        registry: RegistryResource,
    ):
        inputs = {"features": features, "engine_signals": engine_signals, "labels": labels, "candles": candles,
                  "meta_weights": meta_weights, "spreads": spreads}  # fmt: skip
        run = _Training(settings, specs, object_store.get_store(), registry.get_registry(), inputs)
        run.check_truncation(context, sorted(str(k) for k in context.partition_keys))
        results = run_keys(context, run.one, label="challenger_model")
        s = summarize(results)
        reports = run.reports
        report_values = {k: reports.get(k, v if isinstance(v, SymbolOutcome) else None) for k, v in results.items()}
        numbers = {k: {n: v for n, v in m.items() if n != "walk_forward_folds"} for k, m in run.per_key.items()}
        key_metadata(context, results, run.per_key, asset_key="challenger_model")
        key_metadata(context, report_values, numbers, asset_key="walk_forward_report")
        yield Output(results, output_name="challenger_model", metadata=run_metadata(results))
        yield Output(report_values, output_name="walk_forward_report", metadata={"run_keys_reported": len(reports)})
        yield check_result("challenger_all_symbols_ok", s["failed"], AssetCheckSeverity.WARN, "challenger_model")
        yield AssetCheckResult(
            check_name="walk_forward_canaries_pass",
            asset_key="walk_forward_report",
            passed=not run.canary_failures,
            severity=AssetCheckSeverity.ERROR,
            metadata={"offending_keys": MetadataValue.json(run.canary_failures), "checked": len(reports)},
        )

    return challenger_model
