"""Champion promotion: pure gates deciding whether a challenger replaces a coin's champion, with the multiple
testing of daily retests (alpha spending per coin, Benjamini–Hochberg across the coins of a day)."""

from huracan_assets.core.promotion.gates import (
    GATE_ORDER,
    Candidate,
    Decision,
    EdgeTest,
    PromotionSpec,
    ShadowStats,
    decide,
    decide_day,
    edge_test,
    lower_bound_one_sample,
    t_cdf,
    t_isf,
    t_ppf,
    welch_lower_bound,
)
from huracan_assets.core.promotion.multiplicity import (
    StepUp,
    bh_step_up,
    next_trial,
    retest_level,
    retests_after,
    spending_weight,
    unspent_share,
)

__all__ = [
    "GATE_ORDER",
    "Candidate",
    "Decision",
    "EdgeTest",
    "PromotionSpec",
    "ShadowStats",
    "StepUp",
    "bh_step_up",
    "decide",
    "decide_day",
    "edge_test",
    "lower_bound_one_sample",
    "next_trial",
    "retest_level",
    "retests_after",
    "spending_weight",
    "t_cdf",
    "t_isf",
    "t_ppf",
    "unspent_share",
    "welch_lower_bound",
]
