"""Every core spec built from the settings, with no Dagster: the assets, the benchmarks and the CLI build them the
same way, and the definitions build them all at load (:func:`build_specs`), so a bad parameter (an unknown
LightGBM param, an engine that does not exist) fails when the code location loads, naming the settings field,
instead of at the first training run.

The labels' barrier, the stop slippage and the shadow trader's spec share the execution rules (latency, stop
slippage), so the walk-forward and the paper trader can never disagree on how a trade fills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from huracan_assets.core.costs import CostModel
from huracan_assets.core.engines.base import EngineRegistry
from huracan_assets.core.engines.calibration import CalibrationSpec
from huracan_assets.core.engines.combiner import MetaSpec
from huracan_assets.core.engines.gate import GateSpec
from huracan_assets.core.engines.signals import SignalSpec
from huracan_assets.core.execution import StopSlippage
from huracan_assets.core.features.recipe import FeatureRecipe, default_recipe
from huracan_assets.core.labels.triple_barrier import BarrierSpec
from huracan_assets.core.market_data.candles import DAY_MS, bars_per_day
from huracan_assets.core.market_data.cleaning import CleaningPolicy
from huracan_assets.core.market_data.ingest import QualityThresholds
from huracan_assets.core.market_data.universe import UniverseRules
from huracan_assets.core.models.base import ModelSpec
from huracan_assets.core.pipeline.replay import ReplaySpec
from huracan_assets.core.promotion.gates import PromotionSpec
from huracan_assets.core.regime.classifier import RegimeRules, RegimeSpec
from huracan_assets.core.shadow.trader import RISK_PRESETS, ShadowSpec
from huracan_assets.core.training.challenger import TrainingSpec
from huracan_assets.core.validation.splits import WalkForwardSpec
from huracan_assets.core.validation.walk_forward import WalkForwardConfig
from huracan_assets.settings import Settings

RECIPES = {"default": default_recipe}  # features.recipe: the named recipes


class SpecError(ValueError):
    """A setting that loads as YAML but cannot build its core spec; the message names the field."""


def cleaning_policy(settings: Settings) -> CleaningPolicy:
    """How raw bars are cleaned (``candles:``), at the configured bar size."""
    q = settings.candles
    return CleaningPolicy(
        bar_minutes=settings.bar_minutes,
        fill_gaps=q.fill_gaps,
        max_gap_fill_bars=q.max_gap_fill_bars,
        extreme_move_sigma=q.extreme_move_sigma,
    )


def quality_thresholds(settings: Settings) -> QualityThresholds:
    """The thresholds of the candle checks (``candles:``)."""
    q = settings.candles
    return QualityThresholds(
        min_completeness=q.min_completeness,
        warn_completeness=q.warn_completeness,
        max_lag_bars=q.max_lag_bars,
        max_spread_bps=q.max_spread_bps,
        max_zero_volume_share=q.max_zero_volume_share,
        min_day_quote_volume=q.min_day_quote_volume,
    )


def universe_rules(settings: Settings) -> UniverseRules:
    """The ranking filters of the universe (``universe:``); named coins bypass them."""
    u = settings.universe
    return UniverseRules(
        max_symbols=u.max_symbols,
        min_history_days=u.min_history_days,
        min_quote_volume=u.min_quote_volume,
        max_spread_bps=u.max_spread_bps,
    )


def recipe_for(settings: Settings) -> FeatureRecipe:
    return RECIPES[settings.features.recipe]()


def days_for_bars(bars: int, bar_minutes: int) -> int:
    return math.ceil(bars / bars_per_day(bar_minutes))


def feature_warmup_days(settings: Settings) -> int:
    return max(settings.windows.warmup_days, days_for_bars(recipe_for(settings).warmup_bars, settings.bar_minutes))


def label_vol_days(settings: Settings) -> int:
    return days_for_bars(settings.labels.vol_window + 1, settings.bar_minutes)


def regime_rules(settings: Settings) -> RegimeRules:
    """The rules for the configured bar size, with the thin-book thresholds of ``candles:`` applied per bar over
    the trailing day (the candles' ``thin_book`` flag describes a whole day and is never a per-bar input)."""
    c = settings.candles
    return RegimeRules.for_bar_minutes(
        settings.bar_minutes,
        thin_min_quote_volume=c.min_day_quote_volume,
        thin_max_zero_volume_share=c.max_zero_volume_share,
        thin_max_spread_bps=c.max_spread_bps,
    )


def regime_spec(settings: Settings) -> RegimeSpec:
    r = settings.regimes
    return RegimeSpec(r.method, regime_rules(settings), r.hmm_states, r.hmm_seed)


def regime_days(settings: Settings) -> int:
    rules = regime_rules(settings)
    needed = days_for_bars(rules.warmup_bars, settings.bar_minutes)
    return max(needed, settings.regimes.hmm_fit_days) if settings.regimes.method == "hmm" else needed


def engine_registry(settings: Settings) -> EngineRegistry:
    ecfg = settings.engines
    return EngineRegistry.default(ecfg.enabled, ecfg.params)


def engine_warmup_days(settings: Settings) -> int:
    """Days of bars before the first scored day: the longest engine warm-up, doubled so recursive filters
    (EMAs, Kalman) have forgotten their start, and at least one day."""
    bars = engine_registry(settings).warmup_bars(settings.bar_minutes)
    return max(1, math.ceil(2 * bars / bars_per_day(settings.bar_minutes)))


def signal_spec(settings: Settings) -> SignalSpec:
    e, g, m, c = settings.engines, settings.gate, settings.meta, settings.costs
    thresholds = {k: (math.inf if v is None else v) for k, v in m.thresholds.items()}
    return SignalSpec(
        calibration=CalibrationSpec(e.min_samples, e.shrinkage, e.clip_bps),
        gate=GateSpec(g.window_days, g.refresh_days, g.min_samples, g.soft_scale_bps),
        meta=MetaSpec(m.alpha, m.min_weight, m.max_weight, thresholds),
        costs=CostModel.from_config(c.model_config_mapping()),
        horizon_minutes=settings.labels.horizon_minutes,
        order_notional=c.order_notional,
    )


def model_spec(settings: Settings) -> ModelSpec:
    m = settings.models
    return ModelSpec(m.kind, dict(m.params), m.seed, settings.execution.thread_budget)


def walk_forward_config(settings: Settings) -> WalkForwardConfig:
    v = settings.validation
    embargo_ms = settings.windows.embargo_days * DAY_MS
    bars = max(1, v.shuffle_block_hours * 60 // settings.bar_minutes)
    return WalkForwardConfig(
        splits=WalkForwardSpec(v.n_folds, v.scheme, v.min_train_fraction, embargo_ms),
        threshold=v.threshold,
        dsr_trials=v.dsr_trials,
        shuffle_block=bars,
        canary_sigmas=v.canary_sigmas,
        leak_min_auc=v.leak_min_auc,
        leak_canary_folds=v.leak_canary_folds,
        seed=settings.models.seed,
    )


def training_spec(settings: Settings) -> TrainingSpec:
    """A coin's training (``core/training/challenger.py``): the recipe, engines, model, walk-forward and the
    labels' execution rules."""
    bar_ms = settings.bar_minutes * 60_000
    return TrainingSpec(
        recipe=recipe_for(settings),
        engines=tuple(engine_registry(settings).names()),
        model=model_spec(settings),
        walk_forward=walk_forward_config(settings),
        stop_slippage=stop_slippage(settings),
        bar_ms=bar_ms,
        horizon_ms=barrier_spec(settings).horizon_ms(bar_ms),
        min_train_rows=settings.models.min_train_rows,
        timeout_seconds=float(settings.models.timeout_seconds),
    )


def replay_spec(settings: Settings) -> ReplaySpec:
    """The rebuild of a coin's products from raw candles (the truncation canary, the live inference path)."""
    return ReplaySpec(
        recipe=recipe_for(settings),
        feature_warmup_days=feature_warmup_days(settings),
        barrier=barrier_spec(settings),
        label_vol_days=label_vol_days(settings),
        regimes=regime_spec(settings),
        regime_days=regime_days(settings),
        registry=engine_registry(settings),
        signals=signal_spec(settings),
        engine_warmup_days=engine_warmup_days(settings),
        calibration_days=settings.engines.calibration_days,
        gate_days=settings.gate.window_days,
        bar_minutes=settings.bar_minutes,
    )


def replay_lead_days(settings: Settings) -> int:
    """Days before the training window's first day whose products the window's signals read (calibration,
    gate and engine warm-up), plus the candle history those products need themselves."""
    e, g = settings.engines.calibration_days, settings.gate.window_days
    products = max(e, g + 1) + engine_warmup_days(settings) + 1
    candles = max(feature_warmup_days(settings), regime_days(settings), label_vol_days(settings) + 1)
    return products + candles


def promotion_spec(settings: Settings) -> PromotionSpec:
    p = settings.promotion
    return PromotionSpec(
        min_trades=p.min_trades,
        margin_bps=p.margin_bps,
        confidence=p.confidence,
        min_dsr=p.min_dsr,
        dsr_trials=settings.validation.dsr_trials,
        max_drawdown=p.max_drawdown,
        first_min_net_bps=p.first_min_net_bps,
        kill_switch_drawdown=p.kill_switch_drawdown,
        alpha=p.alpha,
        spending_half_tests=float(p.spending_half_tests),
        fdr_q=p.fdr_q,
    )


def barrier_spec(settings: Settings) -> BarrierSpec:
    """The triple barrier of the ``labels`` asset (and of everything that rebuilds or scores its events); its
    entry latency is the shadow trader's too (``labels.entry_lag_bars``)."""
    lcfg = settings.labels
    return BarrierSpec(
        pt_mult=lcfg.pt_mult,
        sl_mult=lcfg.sl_mult,
        max_holding_bars=lcfg.horizon_minutes // settings.bar_minutes,
        vol_window=lcfg.vol_window,
        side=lcfg.side,
        cost_bps=lcfg.cost_bps,
        entry_lag_bars=lcfg.entry_lag_bars,
    )


def stop_slippage(settings: Settings) -> StopSlippage:
    """A stop's extra cost, for the walk-forward's scoring and the shadow trader alike (``labels:`` in config)."""
    lcfg = settings.labels
    return StopSlippage(lcfg.stop_slippage_half_spreads, lcfg.stop_slippage_bps)


def shadow_spec(settings: Settings) -> ShadowSpec:
    s, lab = settings.shadow, settings.labels
    return ShadowSpec(
        threshold=s.threshold,
        net_edge_floor_bps=settings.costs.net_edge_floor_bps,
        max_spread_bps=s.max_spread_bps,
        cooldown_bars=s.cooldown_bars,
        dedup_bars=s.dedup_bars,
        respect_meta=s.respect_meta,
        pt_mult=lab.pt_mult,
        sl_mult=lab.sl_mult,
        max_holding_bars=lab.horizon_minutes // settings.bar_minutes,
        vol_window=lab.vol_window,
        risk=RISK_PRESETS[s.risk_preset],
        latency_bars=lab.entry_lag_bars,  # the labels' latency and stop slippage: the walk-forward's rules
        stop_slippage=stop_slippage(settings),
    )


@dataclass(frozen=True)
class EngineSpecs:
    """Every core spec of one settings, built once (at load)."""

    recipe: FeatureRecipe
    registry: EngineRegistry
    engines: tuple[str, ...]
    barrier: BarrierSpec
    stop_slippage: StopSlippage
    shadow: ShadowSpec
    promotion: PromotionSpec
    model: ModelSpec
    walk_forward: WalkForwardConfig
    training: TrainingSpec
    replay: ReplaySpec
    regime: RegimeSpec
    signals: SignalSpec
    bar_ms: int
    vol_days: int


_BUILDERS = (  # (settings field, what it builds): a failure names the field
    ("candles", cleaning_policy),
    ("candles", quality_thresholds),
    ("universe", universe_rules),
    ("features", recipe_for),
    ("engines", engine_registry),
    ("labels", barrier_spec),
    ("labels", stop_slippage),
    ("shadow", shadow_spec),
    ("promotion", promotion_spec),
    ("models", model_spec),
    ("validation", walk_forward_config),
    ("models / validation", training_spec),
    ("regimes", regime_spec),
    ("features / labels / regimes / engines", replay_spec),
    ("engines / gate / meta / costs", signal_spec),
)


def build_specs(settings: Settings) -> EngineSpecs:
    """All specs of ``settings``; raises :class:`SpecError` naming the settings field whose spec does not build."""
    built = {}
    for field_name, builder in _BUILDERS:
        try:
            built[builder.__name__] = builder(settings)
        except (ValueError, TypeError, KeyError) as exc:
            raise SpecError(f"settings {field_name}: {exc}") from exc
    registry = built["engine_registry"]
    return EngineSpecs(
        recipe=built["recipe_for"], registry=registry, engines=tuple(registry.names()),
        barrier=built["barrier_spec"], stop_slippage=built["stop_slippage"], shadow=built["shadow_spec"],
        promotion=built["promotion_spec"], model=built["model_spec"], walk_forward=built["walk_forward_config"],
        training=built["training_spec"], replay=built["replay_spec"], regime=built["regime_spec"],
        signals=built["signal_spec"],
        bar_ms=settings.bar_minutes * 60_000, vol_days=label_vol_days(settings),
    )  # fmt: skip
