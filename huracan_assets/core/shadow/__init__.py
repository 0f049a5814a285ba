"""Shadow (paper) trading: the numba bar loop ``simulate`` and its plain-Python oracle ``reference_simulate``."""

from huracan_assets.core.shadow.trader import (
    RISK_PRESETS,
    SKIP_REASONS,
    RiskPreset,
    ShadowResult,
    ShadowSpec,
    ShadowState,
    reference_simulate,
    simulate,
)

__all__ = [
    "RISK_PRESETS",
    "SKIP_REASONS",
    "RiskPreset",
    "ShadowResult",
    "ShadowSpec",
    "ShadowState",
    "reference_simulate",
    "simulate",
]
