"""``challenger_model`` and ``walk_forward_report`` (symbol x day): one model per coin, validated honestly.

One op produces both assets, so each coin's training window is read once. Per coin, in turn (lazily, so
memory stays flat in the number of coins): the training set of ``[D - S - W, D - S - embargo)``, a purged,
embargoed walk-forward with the leakage canaries, the final fit on the whole window, and the bundle, written
under ``challengers/SYMBOL/`` and registered as soon as that coin is done. A coin that fails or times out is
marked failed for the day; the others carry on.
"""

import json
import time
from datetime import date, timedelta

import numpy as np
import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    BackfillPolicy,
    MetadataValue,
    Output,
    multi_asset,
)

from huracan_assets.core.features.recipe import FeatureRecipe
from huracan_assets.core.market_data.candles import date_range
from huracan_assets.core.models.base import ModelSpec, TrainSet, fit, library_versions
from huracan_assets.core.models.bundle import make_bundle
from huracan_assets.core.training.dataset import Windows, matrix, signal_feature_names, training_frame
from huracan_assets.core.validation.splits import WalkForwardSpec
from huracan_assets.core.validation.walk_forward import WalkForwardConfig, canaries, walk_forward
from huracan_assets.defs.derived import recipe_for
from huracan_assets.defs.market_data import SYMBOL_DAY_TAG
from huracan_assets.defs.partitions import symbol_day_partitions, window_mapping
from huracan_assets.defs.per_symbol import check_result, run_keys, summarize
from huracan_assets.defs.resources import ObjectStoreResource, RegistryResource
from huracan_assets.defs.signals import engine_registry
from huracan_assets.settings import Settings
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome

GPU_K8S_TAG = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}


def training_tags(settings: Settings) -> dict:
    """Tags of the training step: the lane, the accelerator it can use, and (when configured) the Kubernetes
    run launcher's GPU request."""
    accelerator = "gpu" if settings.models.kind == "torch_mlp" else "cpu"
    tags: dict = {**SYMBOL_DAY_TAG, "huracan/accelerator": accelerator}
    if settings.models.gpu_request:
        tags.update(GPU_K8S_TAG)
    return tags


def model_spec(settings: Settings) -> ModelSpec:
    m = settings.models
    return ModelSpec(m.kind, dict(m.params), m.seed, settings.execution.thread_budget)


def walk_forward_config(settings: Settings) -> WalkForwardConfig:
    v = settings.validation
    embargo_ms = settings.windows.embargo_days * 86_400_000
    bars = max(1, v.shuffle_block_hours * 60 // settings.bar_minutes)
    return WalkForwardConfig(
        splits=WalkForwardSpec(v.n_folds, v.scheme, v.min_train_fraction, embargo_ms),
        threshold=v.threshold,
        dsr_trials=v.dsr_trials,
        shuffle_block=bars,
        canary_sigmas=v.canary_sigmas,
        leak_min_auc=v.leak_min_auc,
        seed=settings.models.seed,
    )


class TrainingTimeout(TimeoutError):
    pass


def _fit_predict(spec: ModelSpec, names: tuple[str, ...], deadline: float):
    def run(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        if time.monotonic() > deadline:
            raise TrainingTimeout("training exceeded models.timeout_seconds")
        cols = names + tuple(f"canary_extra_{i}" for i in range(x_train.shape[1] - len(names)))  # the leak control
        model = fit(TrainSet(x_train, y_train.astype(np.int8), cols), spec)
        return model.predict_proba(x_test)

    return run


def _cut_labels(labels: pl.DataFrame, end_ms: int, bar_ms: int) -> pl.DataFrame:
    """The labels a world that ends at ``end_ms`` would hold: events resolving later are unresolved."""
    known = (pl.col("touch_ts") + bar_ms) <= end_ms
    return labels.filter(pl.col("ts") < end_ms).with_columns(
        pl.when(known).then(pl.col("label")).alias("label"),
        pl.when(known).then(pl.col("touch_ts")).alias("touch_ts"),
        pl.when(known).then(pl.col("ret")).alias("ret"),
    )


def _fill_costs(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Rows without a cost estimate (no engine_signals that day) take the window's median cost."""
    missing = frame["cost_bps"].null_count()
    median = frame["cost_bps"].median()
    return frame.with_columns(pl.col("cost_bps").fill_null(median if median is not None else 0.0)), missing


def _report_rows(model_id: str, sha: str, wf: dict, passed: bool) -> pl.DataFrame:
    rows = []
    for name, m in [*((f"wf_fold_{f['fold']}", f) for f in wf["folds"]), ("wf_overall", wf["overall"])]:
        rows.append(
            {
                "model_id": model_id,
                "window": name,
                "auc": m.get("auc"),
                "log_loss": m.get("log_loss"),
                "hit_rate": m.get("hit_rate"),
                "net_bps": m.get("net_bps_per_trade"),
                "cost_bps": m.get("cost_bps_per_trade"),
                "sharpe": m.get("sharpe"),
                "psr": m.get("psr"),
                "dsr": m.get("dsr"),
                "drawdown": m.get("max_drawdown"),
                "turnover": m.get("turnover_per_day"),
                "n_trades": m.get("n_trades"),
                "n_test": m.get("n_test", m.get("n_oos")),
                "canaries_passed": passed,
                "promoted": False,
                "sha256": sha,
                "detail": m,
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)


def _day(ms) -> str:
    return "" if ms is None else (date(1970, 1, 1) + timedelta(milliseconds=int(ms))).isoformat()


def fold_chart(wf: dict) -> str:
    """The walk-forward folds as a markdown chart: each fold's test span, AUC and net bps as bars."""
    lines = ["| fold | test span | rows train/test | AUC | net bps/trade | trades |", "|---|---|---|---|---|---:|"]
    for f in [*wf["folds"], {**wf["overall"], "fold": "all"}]:
        auc, net = f.get("auc"), f.get("net_bps_per_trade")
        auc_bar = "█" * round(max(0.0, (auc or 0.5) - 0.4) * 50) if auc is not None else ""
        net_bar = ("▮" if (net or 0) >= 0 else "▯") * min(20, int(abs(net or 0) // 5))
        span = f"{_day(f.get('test_start_ms'))} → {_day(f.get('test_end_ms'))}" if f["fold"] != "all" else "all folds"
        lines.append(
            f"| {f['fold']} | {span} | {f.get('n_train', '')}/{f.get('n_test', f.get('n_oos', ''))} | "
            f"{'' if auc is None else f'{auc:.3f}'} {auc_bar} | {'' if net is None else f'{net:+.1f}'} {net_bar} | "
            f"{f.get('n_trades', '')} |"
        )
    return "\n".join(lines)


def build_model_assets(settings: Settings) -> list:
    return [_challenger_asset(settings)]


def _challenger_asset(settings: Settings):
    w = settings.windows
    span = w.shadow_days + w.training_days
    recipe: FeatureRecipe = recipe_for(settings)
    engines = list(engine_registry(settings).names())
    names = tuple(recipe.names) + tuple(signal_feature_names(engines))
    bar_ms = settings.bar_minutes * 60_000
    spec, wf_config = model_spec(settings), walk_forward_config(settings)
    mcfg = settings.models

    @multi_asset(
        partitions_def=symbol_day_partitions(settings.partitions.start_date),
        outs={
            "challenger_model": AssetOut(
                io_manager_key="parquet_io_manager",
                group_name="models",
                description="A LightGBM (or torch MLP) model per coin trained on [D-S-W, D-S-embargo); its bundle "
                "(model.bin, config.json, metrics.json, sha256.txt) under challengers/SYMBOL/.",
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
        },
        check_specs=[
            AssetCheckSpec("challenger_all_symbols_ok", asset="challenger_model"),
            AssetCheckSpec("walk_forward_canaries_pass", asset="walk_forward_report"),
        ],
        backfill_policy=BackfillPolicy.single_run(),
        op_tags=training_tags(settings),
    )
    def challenger_model(
        context: AssetExecutionContext,
        features: PartitionWindow,
        engine_signals: PartitionWindow,
        labels: PartitionWindow,
        object_store: ObjectStoreResource,
        registry: RegistryResource,
    ):
        store, reg = object_store.get_store(), registry.get_registry()
        reports: dict[str, object] = {}
        canary_failures: dict[str, str] = {}
        charts: list[tuple[str, str]] = []

        def one(day: date, symbol: str):
            win = Windows.for_day(day, w.training_days, w.shadow_days, w.embargo_days)
            days = date_range(day - timedelta(days=span), day)
            feats, _ = features.days(symbol, days)
            sigs, _ = engine_signals.days(symbol, days)
            labs, _ = labels.days(symbol, days[1:])
            if feats is None or labs is None:
                return SymbolOutcome.skipped("short history: no features or labels in the training window")
            frame = training_frame(
                feats, sigs, labs, win.training_start_ms, win.training_end_ms, bar_ms, recipe.names, engines
            )
            if frame.height < mcfg.min_train_rows:
                return SymbolOutcome.skipped(f"short history: {frame.height} events < {mcfg.min_train_rows}")
            frame, no_cost = _fill_costs(frame)
            x = matrix(frame, names)

            def cut_matrix() -> np.ndarray:
                before = pl.col("ts") < win.training_end_ms
                cut = training_frame(
                    feats.filter(before),
                    sigs.filter(before) if sigs is not None else None,
                    _cut_labels(labs, win.training_end_ms, bar_ms),
                    win.training_start_ms,
                    win.training_end_ms,
                    bar_ms,
                    recipe.names,
                    engines,
                )
                return matrix(cut, names)

            cols = [frame[c].to_numpy() for c in ("y", "t0", "t1", "ret_bps", "cost_bps")]
            y, t0, t1, ret, cost = cols[0].astype(np.int8), *[c for c in cols[1:]]
            run = _fit_predict(spec, names, time.monotonic() + mcfg.timeout_seconds)
            wf = walk_forward(x, y, t0, t1, ret, cost, run, wf_config).to_dict()
            can = canaries(x, y, t0, t1, ret, cost, run, wf_config, lambda: x, cut_matrix)
            final = fit(TrainSet(x, y, names), spec)
            metrics = {
                "validated_model": "walk-forward folds of the training window; model.bin is the final fit on the "
                "whole window with the same spec and seed",
                "walk_forward": wf,
                "canaries": can,
                "promotable": bool(can["passed"]),
                "rows": frame.height,
                "rows_without_cost_estimate": no_cost,
            }
            config = {
                "as_of": day.isoformat(),
                "symbol": symbol,
                "timeframe": settings.timeframe,
                "recipe": recipe.to_dict(),
                "recipe_hash": recipe.hash,
                "model": spec.to_dict(),
                "seed": spec.seed,
                "feature_names": list(names),
                "engines": engines,
                "windows": win.to_dict(),
                "label": settings.labels.model_dump(),
                "library_versions": library_versions(),
            }
            bundle = make_bundle(final, config, metrics)
            prefix = bundle.prefix(symbol)
            for name, data in bundle.files.items():  # early write: this coin's bundle lands now
                store.put(prefix + name, data, "application/json" if name.endswith(".json") else None)
            model_id = f"{symbol}-{bundle.bundle_id()}"
            reg.upsert(
                "models",
                [
                    {
                        "model_id": model_id,
                        "parent_id": None,
                        "kind": "challenger",
                        "created_at": _now(),
                        "s3_path": prefix,
                        "features_used": list(names),
                        "params": spec.to_dict(),
                        "symbol": symbol,
                        "sha256": bundle.content_hash,
                        "as_of": day,
                        "timeframe": settings.timeframe,
                    }
                ],
            )
            if not can["passed"]:
                canary_failures[f"{day}|{symbol}"] = _canary_reason(can)
            key = f"{day.isoformat()}|{symbol}"
            reports[key] = _report_rows(model_id, bundle.content_hash, wf, bool(can["passed"]))
            if not charts or symbol == "BTCUSDT":
                charts[:] = [(key, fold_chart(wf))]
            overall = wf["overall"]
            return pl.DataFrame(
                {
                    "model_id": [model_id],
                    "bundle_path": [prefix],
                    "sha256": [bundle.content_hash],
                    "kind": [spec.kind],
                    "rows": [frame.height],
                    "auc": [overall.get("auc")],
                    "net_bps_per_trade": [overall.get("net_bps_per_trade")],
                    "dsr": [overall.get("dsr")],
                    "canaries_passed": [bool(can["passed"])],
                },
                schema_overrides={"auc": pl.Float64, "net_bps_per_trade": pl.Float64, "dsr": pl.Float64},
            )

        results = run_keys(context, one, label="challenger_model")
        s = summarize(results)
        report_values = {k: reports.get(k, v if isinstance(v, SymbolOutcome) else None) for k, v in results.items()}
        meta = {"keys_ok": len(s["ok"]), "keys_failed": len(s["failed"]), "keys_skipped": len(s["skipped"])}
        if charts:
            meta["example_key"] = charts[0][0]
            meta["walk_forward_folds"] = MetadataValue.md(charts[0][1])
        if s["skipped"]:
            meta["skipped"] = MetadataValue.json(dict(sorted(s["skipped"].items())[:100]))
        yield Output(results, output_name="challenger_model", metadata=meta)
        yield Output(report_values, output_name="walk_forward_report", metadata={"keys_reported": len(reports)})
        yield check_result("challenger_all_symbols_ok", s["failed"], AssetCheckSeverity.WARN, "challenger_model")
        yield AssetCheckResult(
            check_name="walk_forward_canaries_pass",
            asset_key="walk_forward_report",
            passed=not canary_failures,
            severity=AssetCheckSeverity.ERROR,
            metadata={"offending_keys": MetadataValue.json(canary_failures), "checked": len(reports)},
        )

    return challenger_model


def _canary_reason(can: dict) -> str:
    bad = [name for name, c in can.items() if isinstance(c, dict) and c.get("passed") is False]
    return "canaries failed: " + ", ".join(bad) + " " + json.dumps({k: can[k] for k in bad}, default=str)[:300]


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)
