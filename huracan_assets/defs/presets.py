"""``param_posteriors`` (symbol x day): the parameter controller learns each strategy's presets from the Engine's
own shadow trades, and says which preset each coin would use tomorrow and why.

Time semantics: ``param_posteriors[D]`` = ``param_posteriors[D-1]`` moved by the outcomes of D's bars (every
preset replayed by the shadow trader on D's bars with the probabilities ``shadow_trades`` logged for D, its own
trader state carried from D-1; rewards are the trades that closed within D), then the decision for D+1 at D's
close. It reads candles of D and the trader's volatility days before, D's engine signals (per-bar costs and the
meta direction), the regimes of D-1 and D (the trailing day's shares) and ``shadow_logs/predictions/D.parquet``:
nothing after D. A position still open at D's end carries its signal bar's context to the day it closes. The
pure step is ``core/params/replay.py``.

The probabilities are those of the model in force on D: the champion as of D-1 when the coin has one, else the
day's challenger (its shadow window is unseen by it). Only the schemas' presets are replayed (a preset registered
through the API is learned from live outcomes). Each coin's posteriors are recorded in the registry as the evidence
``huracan serve`` adds to its live posteriors (``param_evidence``; ``params/store.py``).
"""

import io
from datetime import date, timedelta

import polars as pl
from dagster import AssetCheckSeverity, AssetExecutionContext, AssetIn, MetadataValue

from huracan_assets.core.market_data.candles import date_range
from huracan_assets.core.params import Controller, load_schemas
from huracan_assets.core.params.replay import (
    bar_context,
    check_features,
    evidence,
    replay_bars,
    replay_day,
    tomorrow,
)
from huracan_assets.core.reporting.keys import preset_markdown, preset_values
from huracan_assets.defs.checks import check_spec
from huracan_assets.defs.partitions import symbol_day_asset, window_mapping
from huracan_assets.defs.per_symbol import check_result, outputs_with_check, run_keys
from huracan_assets.defs.resources import ObjectStoreResource, RegistryResource
from huracan_assets.names import PARAM_POSTERIORS, SHADOW_TRADES, join_key
from huracan_assets.params.service import controller_spec
from huracan_assets.params.store import ParamStore
from huracan_assets.settings import Settings, strategy_schemas_dir
from huracan_assets.specs import EngineSpecs
from huracan_assets.storage.object_store import ObjectNotFound
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome

ROLES = ("champion", "challenger")  # the model in force on D: the champion as of D-1, else the day's challenger


def build_param_assets(settings: Settings, specs: EngineSpecs) -> list:
    return [_param_posteriors_asset(settings, specs)]


def predictions_path(day: date) -> str:
    return f"shadow_logs/predictions/{day.isoformat()}.parquet"


def model_probabilities(log: pl.DataFrame, symbol: str) -> tuple[pl.DataFrame, str, str] | None:
    """``(ts, p)`` of the model in force on D for ``symbol`` from the day's prediction log, its model id and role;
    None when no role has a probability for the coin."""
    mine = log.filter(pl.col("symbol") == symbol)
    for role in ROLES:
        rows = mine.filter((pl.col("role") == role) & pl.col("p").is_not_null())
        if rows.height:
            model_id = rows["model_id"][0]
            return rows.filter(pl.col("model_id") == model_id).select("ts", "p"), model_id, role
    return None


def _coin_inputs(
    day: date,
    symbol: str,
    log: pl.DataFrame | None,
    candles: PartitionWindow,
    engine_signals: PartitionWindow,
    regimes: PartitionWindow,
    vol_days: int,
):
    """``(bars, regimes, model_id, role)`` of a coin's replay of D, or the SymbolOutcome saying what is missing."""
    key = join_key(day, symbol)
    found = model_probabilities(log, symbol) if log is not None else None
    if found is None:
        return SymbolOutcome.skipped(f"no model probabilities of {symbol} on {day} ({predictions_path(day)})")
    p, model_id, role = found
    if engine_signals.status(key).status != "ok":
        return SymbolOutcome.skipped(f"engine_signals {engine_signals.status(key).status}")
    bars, _ = candles.days(symbol, date_range(day - timedelta(days=vol_days), day))
    regs, _ = regimes.days(symbol, [day - timedelta(days=1), day])
    if bars is None or regs is None:
        return SymbolOutcome.skipped("no candles" if bars is None else "no regimes")
    return replay_bars(bars, engine_signals[key], p), regs, model_id, role


def _param_posteriors_asset(settings: Settings, specs: EngineSpecs):
    schemas = load_schemas(strategy_schemas_dir(settings))
    check_features(schemas)  # a schema naming a feature the replay does not compute fails at load
    cspec = controller_spec(settings.params)
    controllers = {name: Controller(schema, cspec) for name, schema in schemas.items()}
    shadow, bar_ms, vol_days = specs.shadow, specs.bar_ms, specs.vol_days

    @symbol_day_asset(
        settings.partitions,
        group_name="params",
        ins={
            "candles": AssetIn(partition_mapping=window_mapping(vol_days)),
            "engine_signals": AssetIn(),
            "regimes": AssetIn(partition_mapping=window_mapping(1)),
            PARAM_POSTERIORS: AssetIn(partition_mapping=window_mapping(1, -1)),
        },
        deps=[SHADOW_TRADES],  # its probability log of D (shadow_logs/predictions/D.parquet)
        check_specs=[
            check_spec("param_posteriors_all_symbols_ok", asset=PARAM_POSTERIORS),
            check_spec("param_kill_switch", asset=PARAM_POSTERIORS),
        ],
        metadata={"strategies": ", ".join(sorted(schemas)), "policy": cspec.bandit.policy},
    )
    def param_posteriors(
        context: AssetExecutionContext,
        candles: PartitionWindow,
        engine_signals: PartitionWindow,
        regimes: PartitionWindow,
        param_posteriors: PartitionWindow,
        object_store: ObjectStoreResource,
        registry: RegistryResource,
    ):
        """Each strategy preset's posterior (LinTS, net bps per trade against regime shares, volatility,
        efficiency ratio and spread) after D's replayed shadow trades, and the preset each coin would use on D+1
        with the reason (hysteresis, daily limit, kill switch). Each coin's posteriors are also recorded as the
        evidence ``huracan serve`` adds to its live ones (registry ``param_evidence``, the latest date wins)."""
        store, params = object_store.get_store(), ParamStore(registry.get_registry())
        logs: dict[date, pl.DataFrame | None] = {}
        plans: dict[str, dict] = {}
        kills: dict[str, str] = {}
        cold: list[str] = []

        def log_of(day: date) -> pl.DataFrame | None:
            if day not in logs:
                try:
                    logs[day] = pl.read_parquet(io.BytesIO(store.get(predictions_path(day))))
                except ObjectNotFound:
                    logs[day] = None
            return logs[day]

        def one(day: date, symbol: str):
            key = join_key(day, symbol)
            inputs = _coin_inputs(day, symbol, log_of(day), candles, engine_signals, regimes, vol_days)
            if isinstance(inputs, SymbolOutcome):
                return inputs
            bars, regs, model_id, role = inputs
            ctx = bar_context(bars, regs, shadow.vol_window, shadow.min_vol, bar_ms)
            prev_key = join_key(day - timedelta(days=1), symbol)
            previous = None
            if prev_key in param_posteriors and param_posteriors.status(prev_key).status == "ok":
                previous = param_posteriors[prev_key]
            else:
                cold.append(key)
            frame = replay_day(controllers, symbol, previous, bars, ctx, day, shadow, bar_ms)
            params.publish_evidence(symbol, day, evidence(frame), model_id)
            plan = plans[key] = tomorrow(frame)
            killed = sorted(s for s, item in plan.items() if item["killed"])
            if killed:
                kills[key] = f"kill switch on {', '.join(killed)}: back to the safe preset"
            return frame.with_columns(
                date=pl.lit(day), symbol=pl.lit(symbol), model_id=pl.lit(model_id), model_role=pl.lit(role)
            )

        results = run_keys(context, one)
        per_key = {k: {**preset_values(plan), "plan": MetadataValue.md(preset_markdown(plan))}
                   for k, plan in plans.items()}  # fmt: skip
        chosen: dict[str, int] = {}
        for plan in plans.values():
            for strategy, item in plan.items():
                name = f"{strategy}:{item['preset']}"
                chosen[name] = chosen.get(name, 0) + 1
        extra = {"run_presets_tomorrow": MetadataValue.json(dict(sorted(chosen.items()))), "run_cold_starts": len(cold)}
        yield from outputs_with_check(context, results, "param_posteriors_all_symbols_ok", extra, per_key)
        yield check_result("param_kill_switch", kills, AssetCheckSeverity.WARN)

    return param_posteriors
