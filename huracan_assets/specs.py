"""Core specs built from the settings, with no Dagster: the assets and the benchmarks build them the same way.

The labels' barrier, the stop slippage and the shadow trader's spec share the execution rules (latency, stop
slippage), so the walk-forward and the paper trader can never disagree on how a trade fills.
"""

from huracan_assets.core.execution import StopSlippage
from huracan_assets.core.labels.triple_barrier import BarrierSpec
from huracan_assets.core.shadow.trader import RISK_PRESETS, ShadowSpec
from huracan_assets.settings import Settings


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
