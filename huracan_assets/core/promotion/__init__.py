"""Champion promotion: pure gates deciding whether a challenger replaces a coin's champion."""

from huracan_assets.core.promotion.gates import (
    GATE_ORDER,
    Decision,
    PromotionSpec,
    ShadowStats,
    decide,
    lower_bound_one_sample,
    t_cdf,
    t_ppf,
    welch_lower_bound,
)

__all__ = [
    "GATE_ORDER",
    "Decision",
    "PromotionSpec",
    "ShadowStats",
    "decide",
    "lower_bound_one_sample",
    "t_cdf",
    "t_ppf",
    "welch_lower_bound",
]
