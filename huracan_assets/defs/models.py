"""``challenger_model`` and ``walk_forward_report`` (symbol x day): one model per coin, validated honestly.

One op produces both assets, so each coin's training window is read once. Per coin, in turn (lazily, so
memory stays flat in the number of coins): the training set of ``[D - S - W, D - S - embargo)``, a purged,
embargoed walk-forward with the leakage canaries, the final fit on the whole window, and the bundle, written
under ``challengers/SYMBOL/`` and registered as soon as that coin is done. A coin that fails or times out is
marked failed for the day; the others carry on.
"""

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetIn,
    AssetOut,
    BackfillPolicy,
    DynamicOut,
    DynamicOutput,
    In,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    RetryPolicy,
    graph_multi_asset,
    op,
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
from huracan_assets.defs.partitions import day_of_symbol_day, symbol_day_partitions, window_mapping
from huracan_assets.defs.per_symbol import check_result, key_metadata, run_keys, run_metadata, summarize
from huracan_assets.defs.replay import candle_days_needed, coin_replay, compare_frames, spread_days_needed
from huracan_assets.k8s import gpu_tags
from huracan_assets.names import ACCELERATOR_TAG, SYMBOL_DAY_TAG, join_key, split_key
from huracan_assets.settings import Settings
from huracan_assets.specs import EngineSpecs
from huracan_assets.storage.object_store import content_type_for
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome


def wants_gpu(settings: Settings) -> bool:
    """A torch model wants a GPU; ``models.gpu_request`` asks for one for any kind."""
    return settings.models.kind == "torch_mlp" or settings.models.gpu_request


def training_tags(settings: Settings) -> dict:
    """Tags of the training step: the lane, the accelerator it uses, and when it wants a GPU, the Kubernetes
    executor's GPU limit, node selector and tolerations (``k8s.gpu_tags``; other executors ignore them)."""
    tags: dict = {**SYMBOL_DAY_TAG, ACCELERATOR_TAG: "gpu" if wants_gpu(settings) else "cpu"}
    if wants_gpu(settings):
        tags.update(gpu_tags(settings))
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
            self.store.put(prefix + name, data, content_type_for(name))
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


@dataclass(frozen=True)
class TrainingShard:
    """The coins one training step trains: its partition keys and the truncation canary's results of their dates."""

    keys: tuple[str, ...]
    truncation: dict[str, dict[str, dict]]


@dataclass
class ShardResult:
    """What one training step produced, per key: the challenger rows (or why none), the walk-forward reports, each
    key's own metadata and the canary failures."""

    results: dict[str, object] = field(default_factory=dict)
    reports: dict[str, object] = field(default_factory=dict)
    per_key: dict[str, dict] = field(default_factory=dict)
    canary_failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def merge(self, other: "ShardResult") -> None:
        self.results.update(other.results)
        self.reports.update(other.reports)
        self.per_key.update(other.per_key)
        self.canary_failures.update(other.canary_failures)


def train(context, run: "_Training", keys: list[str], label: str) -> ShardResult:
    """Train, validate and bundle ``keys`` one after the other (``run.one``; one coin's failure is its outcome)."""
    results = run_keys(context, run.one, keys=keys, label=label)
    return ShardResult(results, run.reports, run.per_key, run.canary_failures, round(results.seconds, 3))


def missing_keys(keys: list[str], results: dict) -> list[str]:
    """The run's keys no training step brought back. Every key the plan deals out comes back from its shard with an
    outcome (trained, skipped or failed), so a missing key means a shard's output never reached the collect step:
    the run was killed after the plan succeeded and before the shard started (Dagster's re-execution from failure
    then starts the collect step, whose inputs are missing, but not the mapped shard that never started)."""
    return [k for k in keys if k not in results]


def shard_keys(keys: list[str], shards: int) -> list[tuple[str, ...]]:
    """``keys`` dealt round-robin (in date then symbol order) into at most ``shards`` non-empty shards: balanced
    within one coin, and the same split for the same keys."""
    ordered = sorted(keys, key=lambda k: (split_key(k)[0], str(k)))
    n = max(1, min(shards, len(ordered)))
    return [tuple(ordered[i::n]) for i in range(n)] if ordered else [()]


def training_shards(settings: Settings) -> int:
    """``execution.training_shards``, or (0, auto) one per worker of the executor."""
    e = settings.execution
    return e.training_shards or e.workers


def _challenger_asset(settings: Settings, specs: EngineSpecs):
    w = settings.windows
    span = w.shadow_days + w.training_days
    data_ins = ("features", "engine_signals", "labels", "candles", "spreads", "meta_weights")
    shards = training_shards(settings)

    def training_run(context: OpExecutionContext, values: tuple) -> _Training:
        """The I/O of one training step: the store, the registry and the six input windows."""
        store, registry = context.resources.object_store.get_store(), context.resources.registry.get_registry()
        return _Training(settings, specs, store, registry, dict(zip(data_ins, values, strict=True)))

    @op(
        name="challenger_plan",
        ins={"reference_candles": In(Nothing)},
        out=DynamicOut(TrainingShard),
        tags=SYMBOL_DAY_TAG,
        required_resource_keys={"object_store", "registry"},
    )
    def challenger_plan(
        context: OpExecutionContext,
        features: PartitionWindow,
        engine_signals: PartitionWindow,
        labels: PartitionWindow,
        candles: PartitionWindow,
        spreads: PartitionWindow,
        meta_weights: PartitionWindow,
    ):
        """The truncation canary of each date (before any coin trains, so every bundle of the date carries its
        result), then the date's coins dealt into ``execution.training_shards`` steps."""
        started = time.monotonic()
        run = training_run(context, (features, engine_signals, labels, candles, spreads, meta_weights))
        keys = sorted(str(k) for k in context.partition_keys)
        run.check_truncation(context, keys)
        seconds = round(time.monotonic() - started, 3)  # the truncation canary's rebuilds: our code
        for i, part in enumerate(shard_keys(keys, shards)):
            days = {k.split("|")[0] for k in part}
            truncation = {d: r for d, r in run.truncation.items() if d in days}
            meta = {"keys": len(part), "compute_seconds": 0.0 if i else seconds}  # counted once
            yield DynamicOutput(TrainingShard(part, truncation), mapping_key=f"shard_{i}", metadata=meta)

    @op(
        name="challenger_shard",
        tags=training_tags(settings),
        retry_policy=RetryPolicy(max_retries=settings.execution.shard_retries),
        required_resource_keys={"object_store", "registry"},
    )
    def challenger_shard(
        context: OpExecutionContext,
        shard: TrainingShard,
        features: PartitionWindow,
        engine_signals: PartitionWindow,
        labels: PartitionWindow,
        candles: PartitionWindow,
        spreads: PartitionWindow,
        meta_weights: PartitionWindow,
    ) -> Output[ShardResult]:
        """Train, validate and bundle the shard's coins, each in turn; one coin's failure is that coin's outcome.
        An exception out of here is the infrastructure's (a coin's own error never leaves ``run_keys``), so the
        step is retried."""
        run = training_run(context, (features, engine_signals, labels, candles, spreads, meta_weights))
        run.truncation = dict(shard.truncation)
        part = train(context, run, list(shard.keys), f"challenger_model {context.op_handle}")
        return Output(part, metadata={"keys": len(part.results), "compute_seconds": part.seconds})

    check_all = check_spec("challenger_all_symbols_ok", asset="challenger_model")
    check_canaries = check_spec("walk_forward_canaries_pass", asset="walk_forward_report")

    @op(
        name="challenger_collect",
        out={
            "challenger_model": Out(io_manager_key="parquet_io_manager"),
            "walk_forward_report": Out(io_manager_key="table_io_manager"),
            check_all.get_python_identifier(): Out(),  # the check evaluations are yielded as AssetCheckResult
            check_canaries.get_python_identifier(): Out(),
        },
        tags=SYMBOL_DAY_TAG,
        required_resource_keys={"object_store", "registry"},
    )
    def challenger_collect(
        context: OpExecutionContext,
        parts: list,
        features: PartitionWindow,
        engine_signals: PartitionWindow,
        labels: PartitionWindow,
        candles: PartitionWindow,
        spreads: PartitionWindow,
        meta_weights: PartitionWindow,
    ):
        """The shards' results as the two assets, each key's own metadata and the two checks. A key no shard
        brought back is trained here (see :func:`missing_keys`), never dropped."""
        merged = ShardResult()
        for part in parts:
            merged.merge(part)
        keys = sorted(str(k) for k in context.partition_keys)
        missing = missing_keys(keys, merged.results)
        if missing:
            context.log.warning(f"{len(missing)} keys came back from no training step, e.g. {missing[:3]}: a step "
                                "that never ran (a run killed between the plan and its shards, which Dagster's "
                                "re-execution from failure does not start again); training them here")  # fmt: skip
            run = training_run(context, (features, engine_signals, labels, candles, spreads, meta_weights))
            days = {k.split("|")[0] for k in missing}
            run.check_truncation(context, [k for k in keys if k.split("|")[0] in days])  # the plan's, date by date
            merged.merge(train(context, run, missing, "challenger_model (collect)"))
        results = dict(sorted(merged.results.items()))
        s = summarize(results)
        reports = merged.reports
        report_values = {k: reports.get(k, v if isinstance(v, SymbolOutcome) else None) for k, v in results.items()}
        numbers = {k: {n: v for n, v in m.items() if n != "walk_forward_folds"} for k, m in merged.per_key.items()}
        key_metadata(context, results, merged.per_key, asset_key="challenger_model")
        key_metadata(context, report_values, numbers, asset_key="walk_forward_report")
        yield Output(results, output_name="challenger_model",
                     metadata={**run_metadata(results), "run_training_steps": len(parts),
                               "run_keys_trained_in_collect": len(missing)})  # fmt: skip
        yield Output(report_values, output_name="walk_forward_report", metadata={"run_keys_reported": len(reports)})
        failed = check_result("challenger_all_symbols_ok", s["failed"], AssetCheckSeverity.WARN, "challenger_model")
        yield failed
        canaries = AssetCheckResult(
            check_name="walk_forward_canaries_pass",
            asset_key="walk_forward_report",
            passed=not merged.canary_failures,
            severity=AssetCheckSeverity.ERROR,
            metadata={"offending_keys": MetadataValue.json(merged.canary_failures), "checked": len(reports)},
        )
        yield canaries

    @graph_multi_asset(
        name="challenger_model",
        group_name="models",
        partitions_def=symbol_day_partitions(settings.partitions),
        backfill_policy=BackfillPolicy.single_run(),
        outs={
            "challenger_model": AssetOut(
                io_manager_key="parquet_io_manager",
                description="A LightGBM (or torch MLP) model per coin trained on [D-S-W, D-S-embargo); its bundle "
                "(model.bin, config.json, metrics.json, sha256.txt) under challengers/SYMBOL/. With "
                "models.publish_refit, also a refit through D (same spec and seed) under refits/SYMBOL/. "
                "Trained in execution.training_shards steps of the date's run (challenger_shard).",
            ),
            "walk_forward_report": AssetOut(
                io_manager_key="table_io_manager",
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
            # read by the truncation canary's rebuild through the store; ordered, not loaded
            "reference_candles": AssetIn(partition_mapping=day_of_symbol_day(), dagster_type=Nothing),
        },
        check_specs=[check_all, check_canaries],
    )
    def challenger_model(features, engine_signals, labels, candles, spreads, meta_weights, reference_candles):
        values = (features, engine_signals, labels, candles, spreads, meta_weights)
        plan = challenger_plan(*values, reference_candles=reference_candles)
        parts = plan.map(lambda shard: challenger_shard(shard, *values))
        model, report, all_ok, canaries = challenger_collect(parts.collect(), *values)
        return {
            "challenger_model": model,
            "walk_forward_report": report,
            check_all.get_python_identifier(): all_ok,
            check_canaries.get_python_identifier(): canaries,
        }

    return challenger_model
