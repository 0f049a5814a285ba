"""``challenger_model`` and ``walk_forward_report`` (symbol x day): one model per coin, validated honestly.

One op produces both assets, so each coin's training window is read once. Per coin, in turn (lazily, so
memory stays flat in the number of coins): the training set of ``[D - S - W, D - S - embargo)``, a purged,
embargoed walk-forward with the leakage canaries, the final fit on the whole window, and the bundle, written
under ``challengers/SYMBOL/`` and registered as soon as that coin is done. A coin that fails or times out is
marked failed for the day; the others carry on.
"""

import json
import random
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
from huracan_assets.core.models.bundle import ModelBundle, make_bundle
from huracan_assets.core.reporting.charts import bar_chart, markdown_image, png
from huracan_assets.core.training.dataset import (
    Windows,
    fill_missing_costs,
    matrix,
    signal_feature_names,
    trade_costs,
    training_frame,
)
from huracan_assets.core.validation.splits import WalkForwardSpec
from huracan_assets.core.validation.walk_forward import WalkForwardConfig, canaries, walk_forward
from huracan_assets.defs.derived import recipe_for
from huracan_assets.defs.market_data import SYMBOL_DAY_TAG
from huracan_assets.defs.partitions import symbol_day_partitions, window_mapping
from huracan_assets.defs.per_symbol import check_result, run_keys, summarize
from huracan_assets.defs.replay import candle_days_needed, coin_replay, compare_frames, spread_days_needed
from huracan_assets.defs.resources import ObjectStoreResource, RegistryResource
from huracan_assets.defs.signals import engine_registry
from huracan_assets.settings import Settings
from huracan_assets.specs import barrier_spec, stop_slippage
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome

DAY_MS = 86_400_000
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


def _fill_costs(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Rows without a cost estimate (no engine_signals on their bars nor at t0) take the window's median costs."""
    return fill_missing_costs(frame)


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
    nets = [f.get("net_bps_per_trade") for f in wf["folds"]]
    if any(n is not None for n in nets):
        image = png(bar_chart([np.nan if n is None else float(n) for n in nets]))
        lines += ["", "net bps per trade by fold, out of sample (green: >= 0, red: < 0)", "",
                  markdown_image(image, "walk-forward folds")]  # fmt: skip
    return "\n".join(lines)


def build_model_assets(settings: Settings) -> list:
    return [_challenger_asset(settings)]


NO_REFIT = {"refit_model_id": None, "refit_path": None, "refit_sha256": None, "refit_note": None}


class _Training:
    """One run of the challenger op: the settings it trains with, and what it has produced so far."""

    def __init__(self, settings: Settings, store, reg, inputs: dict[str, PartitionWindow]):
        self.settings, self.store, self.reg, self.inputs = settings, store, reg, inputs
        self.w, self.mcfg = settings.windows, settings.models
        self.span = self.w.shadow_days + self.w.training_days
        self.recipe: FeatureRecipe = recipe_for(settings)
        self.engines = list(engine_registry(settings).names())
        self.names = tuple(self.recipe.names) + tuple(signal_feature_names(self.engines))
        self.bar_ms = settings.bar_minutes * 60_000
        self.spec, self.wf_config = model_spec(settings), walk_forward_config(settings)
        self.reports: dict[str, object] = {}
        self.canary_failures: dict[str, str] = {}
        self.charts: list[tuple[str, str]] = []
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
        frame = self.frame(stored, win)
        if frame.height < self.mcfg.min_train_rows:
            return {"passed": None, "reason": f"short history: {frame.height} events"}
        inputs = self.inputs
        replay = coin_replay(
            self.settings, self.store, inputs["candles"], inputs["meta_weights"], inputs["spreads"], symbol, win
        )
        first = win.training_start_ms // DAY_MS
        days = [date(1970, 1, 1) + timedelta(days=i) for i in range(first, win.training_end_ms // DAY_MS)]
        rebuilt_inputs = (
            replay.frames("features", days),
            replay.frames("signals", days),
            replay.frames("labels", days[1:]),
        )
        if rebuilt_inputs[0] is None or rebuilt_inputs[2] is None:
            return {"passed": None, "reason": "the stored candles of the window rebuild no features or labels"}
        return compare_frames(frame, self.frame(rebuilt_inputs, win))

    def check_truncation(self, context, keys: list[str]) -> None:
        """Per date, the truncation canary on a seeded sample of the date's coins (``validation.truncation_canary_
        coins``; 0: every coin), before any coin trains, so every bundle of the date carries its result."""
        n = self.settings.validation.truncation_canary_coins
        for day in sorted({k.split("|")[0] for k in keys}):
            day_keys = sorted(k for k in keys if k.startswith(day))
            sample = day_keys if n == 0 or n >= len(day_keys) else sorted(random.Random(day).sample(day_keys, n))
            results = {}
            for key in sample:
                d, symbol = date.fromisoformat(key.split("|")[0]), key.split("|")[1]
                try:
                    results[key] = self.truncation_one(d, symbol)
                except Exception as exc:  # a canary that cannot run says so; nobody is promoted on it
                    results[key] = {"passed": None, "reason": f"{type(exc).__name__}: {exc}"[:300]}
                context.log.info(f"truncation canary {key}: {results[key]}")
            self.truncation[day] = results

    def with_truncation(self, can: dict, day: date, symbol: str) -> dict:
        """``can`` with the date's truncation canary. A failure on any sampled coin fails every coin of the date (a
        leak in the pipeline is rarely one coin's); a sampled coin is judged on its own rebuild, and one whose
        rebuild could not run is not promotable; a coin outside the sample takes the sample's result, and
        without any rebuild that ran, nobody is promotable."""
        samples = self.truncation.get(day.isoformat(), {})
        key = f"{day.isoformat()}|{symbol}"
        failed = {k: r for k, r in samples.items() if r["passed"] is False}
        ran = [k for k, r in samples.items() if r["passed"] is True]
        sampled = sorted(samples)
        if failed:
            first = next(iter(failed))
            trunc = {"passed": False, "reason": f"failed on {first}: {failed[first].get('reason')}"}
            trunc = {**(samples[key] if key in failed else {}), **trunc, "sampled": sampled}
        elif key in samples:
            own = samples[key]
            trunc = {**own, "sampled": sampled}
            if own["passed"] is None:
                trunc["reason"] = f"could not run: {own.get('reason')}; not promotable"
        elif ran:
            trunc = {"passed": True, "reason": f"not sampled; passed on the date's sample {ran}", "sampled": sampled}
        else:
            why = "; ".join(f"{k}: {r.get('reason')}" for k, r in samples.items()) or "no coin sampled"
            trunc = {"passed": None, "reason": f"could not run ({why}); not promotable", "sampled": sampled}
        others = [c["passed"] for name, c in can.items() if isinstance(c, dict) and name != "truncation"]
        return {
            **can,
            "truncation": trunc,
            "passed": bool(trunc["passed"] is True and all(o is not False for o in others)),
        }

    def frame(self, data: tuple, win: Windows) -> pl.DataFrame:
        feats, sigs, labs = data
        return training_frame(
            feats, sigs, labs, win.training_start_ms, win.training_end_ms, self.bar_ms, self.recipe.names,
            self.engines, horizon_ms=barrier_spec(self.settings).horizon_ms(self.bar_ms),
        )  # fmt: skip

    def one(self, day: date, symbol: str):
        """Train, validate and bundle one coin of day D (and its refit when configured)."""
        mcfg, names = self.mcfg, self.names
        win = self.windows(day)
        stored = self.stored(day, symbol)
        if stored is None:
            return SymbolOutcome.skipped("short history: no features or labels in the training window")
        feats, sigs, labs = stored
        frame = self.frame(stored, win)
        if frame.height < mcfg.min_train_rows:
            return SymbolOutcome.skipped(f"short history: {frame.height} events < {mcfg.min_train_rows}")
        frame, no_cost = _fill_costs(frame)
        x = matrix(frame, names)

        cols = [frame[c].to_numpy() for c in ("y", "t0", "t1", "ret_bps", "ret_short_bps", "t1_short")]
        y, t0, t1, ret = cols[0].astype(np.int8), *[c for c in cols[1:4]]
        cost = trade_costs(frame, stop_slippage(self.settings))  # each side's own round trip, by part
        short = {"ret_short_bps": cols[4], "t1_short": cols[5]}  # each side scored on its own outcome
        deadline = time.monotonic() + mcfg.timeout_seconds
        run = _fit_predict(self.spec, names, deadline)
        wf = walk_forward(x, y, t0, t1, ret, cost, run, self.wf_config, **short).to_dict()
        can = self.with_truncation(canaries(x, y, t0, t1, ret, cost, run, self.wf_config, **short), day, symbol)
        metrics = {
            "validated_model": {
                "this_bundle": True,
                "what": "the walk-forward folds and canaries validate this spec and seed on the training window; "
                "model.bin is the final fit on the whole window with the same spec and seed",
            },
            "walk_forward": wf,
            "canaries": can,
            "promotable": bool(can["passed"]),
            "rows": frame.height,
            "rows_without_cost_estimate": no_cost,
        }
        final = fit(TrainSet(x, y, names), self.spec)
        bundle, model_id = self.publish(day, symbol, final, win.to_dict(), metrics, "challengers", None)
        refit = NO_REFIT
        if mcfg.publish_refit:
            refit = self.try_refit(day, symbol, (feats, sigs, labs), (bundle, model_id, metrics), deadline)
        key = f"{day.isoformat()}|{symbol}"
        if not can["passed"]:
            self.canary_failures[key] = _canary_reason(can)
        self.reports[key] = _report_rows(model_id, bundle.content_hash, wf, bool(can["passed"]))
        if not self.charts or symbol == "BTCUSDT":
            self.charts[:] = [(key, fold_chart(wf))]
        overall = wf["overall"]
        row = {
            "model_id": model_id,
            "bundle_path": bundle.prefix(symbol),
            "sha256": bundle.content_hash,
            "kind": self.spec.kind,
            "rows": frame.height,
            "auc": overall.get("auc"),
            "net_bps_per_trade": overall.get("net_bps_per_trade"),
            "dsr": overall.get("dsr"),
            "canaries_passed": bool(can["passed"]),
            **refit,
        }
        floats = dict.fromkeys(("auc", "net_bps_per_trade", "dsr"), pl.Float64)
        return pl.DataFrame([row], schema_overrides={**floats, **dict.fromkeys(NO_REFIT, pl.String)})

    def publish(self, day: date, symbol: str, model, windows: dict, metrics: dict, root: str, parent: str | None):
        """The bundle of ``model``, written now under ``root/SYMBOL/`` (early write) and registered in ``models``."""
        config = {
            "as_of": day.isoformat(),
            "symbol": symbol,
            "timeframe": self.settings.timeframe,
            "recipe": self.recipe.to_dict(),
            "recipe_hash": self.recipe.hash,
            "model": self.spec.to_dict(),
            "seed": self.spec.seed,
            "feature_names": list(self.names),
            "engines": self.engines,
            "windows": windows,
            "label": self.settings.labels.model_dump(),
            "library_versions": library_versions(),
        }
        bundle = make_bundle(model, config, metrics)
        prefix = bundle.prefix(symbol, root=root)
        for name, data in bundle.files.items():
            self.store.put(prefix + name, data, "application/json" if name.endswith(".json") else None)
        model_id = f"{symbol}-{bundle.bundle_id()}"
        row = {
            "model_id": model_id,
            "parent_id": parent,
            "kind": "challenger" if parent is None else "refit",
            "created_at": _now(),
            "s3_path": prefix,
            "features_used": list(self.names),
            "params": self.spec.to_dict(),
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
        """The same spec and seed fitted on ``[D + 1 - W, D + 1)``, every event resolved by the end of D. Published
        on promotion in place of the validated model; its metrics.json names the validated model, whose
        walk-forward and canaries are the evidence (a refit is never evaluated on its own data)."""
        win = Windows.refit_for_day(day, self.w.training_days)
        frame = self.frame(data, win)
        if frame.height < self.mcfg.min_train_rows:
            short = f"{frame.height} events < {self.mcfg.min_train_rows}"
            return {**NO_REFIT, "refit_note": f"no refit ({short}): the validated model is published"}
        frame, no_cost = _fill_costs(frame)
        model = fit(TrainSet(matrix(frame, self.names), frame["y"].to_numpy().astype(np.int8), self.names), self.spec)
        windows = win.to_dict()
        metrics = {
            "validated_model": {
                "this_bundle": False,
                "model_id": validated_id,
                "bundle_path": validated.prefix(symbol),
                "sha256": validated.content_hash,
                "training": validated.config["windows"]["training"],
                "what": "walk_forward and canaries are the validated model's; this bundle is a refit through as_of "
                "with the same spec and seed, never evaluated on its own data",
            },
            "refit": {"training": windows["training"], "rows": frame.height, "rows_without_cost_estimate": no_cost},
            **{k: evidence[k] for k in ("walk_forward", "canaries", "promotable")},
            "rows": frame.height,
        }
        bundle, model_id = self.publish(day, symbol, model, windows, metrics, "refits", validated_id)
        return {
            "refit_model_id": model_id,
            "refit_path": bundle.prefix(symbol, root="refits"),
            "refit_sha256": bundle.content_hash,
            "refit_note": f"published on promotion in place of the validated {validated_id}",
        }


def _challenger_asset(settings: Settings):
    w = settings.windows
    span = w.shadow_days + w.training_days

    @multi_asset(
        partitions_def=symbol_day_partitions(settings.partitions.start_date),
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
        candles: PartitionWindow,
        meta_weights: PartitionWindow,
        spreads: PartitionWindow,
        object_store: ObjectStoreResource,
        registry: RegistryResource,
    ):
        inputs = {"features": features, "engine_signals": engine_signals, "labels": labels, "candles": candles,
                  "meta_weights": meta_weights, "spreads": spreads}  # fmt: skip
        run = _Training(settings, object_store.get_store(), registry.get_registry(), inputs)
        run.check_truncation(context, sorted(str(k) for k in context.partition_keys))
        results = run_keys(context, run.one, label="challenger_model")
        s = summarize(results)
        reports = run.reports
        report_values = {k: reports.get(k, v if isinstance(v, SymbolOutcome) else None) for k, v in results.items()}
        meta = {"keys_ok": len(s["ok"]), "keys_failed": len(s["failed"]), "keys_skipped": len(s["skipped"])}
        if run.charts:
            meta["example_key"] = run.charts[0][0]
            meta["walk_forward_folds"] = MetadataValue.md(run.charts[0][1])
        if s["skipped"]:
            meta["skipped"] = MetadataValue.json(dict(sorted(s["skipped"].items())[:100]))
        yield Output(results, output_name="challenger_model", metadata=meta)
        yield Output(report_values, output_name="walk_forward_report", metadata={"keys_reported": len(reports)})
        yield check_result("challenger_all_symbols_ok", s["failed"], AssetCheckSeverity.WARN, "challenger_model")
        yield AssetCheckResult(
            check_name="walk_forward_canaries_pass",
            asset_key="walk_forward_report",
            passed=not run.canary_failures,
            severity=AssetCheckSeverity.ERROR,
            metadata={"offending_keys": MetadataValue.json(run.canary_failures), "checked": len(reports)},
        )

    return challenger_model


def _canary_reason(can: dict) -> str:
    bad = [name for name, c in can.items() if isinstance(c, dict) and c.get("passed") is False]
    if not bad and can.get("truncation", {}).get("passed") is None:
        return "canaries incomplete: truncation " + str(can["truncation"].get("reason"))[:300]
    return "canaries failed: " + ", ".join(bad) + " " + json.dumps({k: can[k] for k in bad}, default=str)[:300]


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)
