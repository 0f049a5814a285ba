"""Promotion gates: every gate can refuse on its own, the reason names it, the bounds are the textbook ones."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from huracan_assets.core.promotion import (
    PromotionSpec,
    ShadowStats,
    decide,
    lower_bound_one_sample,
    t_cdf,
    t_ppf,
    welch_lower_bound,
)
from huracan_assets.core.validation.metrics import deflated_sharpe_ratio, max_drawdown

DAY = 86_400_000
CUTOFF = 1_722_470_400_000  # 2024-08-01: both models trained until at most this
SPEC = PromotionSpec()
LEVEL_1 = 0.05 / 31  # the first retest's level: alpha x h / ((h + 0)(h + 1)), h = 30


def _exact(mean: float, sd: float, n: int, seed: int) -> np.ndarray:
    """n values with exactly this sample mean and sample std (ddof 1)."""
    z = np.random.default_rng(seed).normal(size=n)
    return mean + sd * (z - z.mean()) / z.std(ddof=1)


def _good_daily(n: int = 365, seed: int = 0) -> np.ndarray:
    """A steady daily series: per-day Sharpe 0.3, tiny drawdown."""
    return _exact(0.003, 0.01, n, seed)


def _stats(
    model_id: str = "challenger",
    trades: np.ndarray | None = None,
    daily: np.ndarray | None = None,
    dd: float = 0.05,
    canaries: bool = True,
    trained_until: int = CUTOFF,
    compared_from: int = CUTOFF + DAY,
) -> ShadowStats:
    return ShadowStats(
        model_id=model_id,
        trade_net_bps=_exact(12.0, 10.0, 60, 1) if trades is None else trades,
        daily_returns=_good_daily() if daily is None else daily,
        max_drawdown=dd,
        canaries_passed=canaries,
        trained_until_ms=trained_until,
        compared_from_ms=compared_from,
    )


def _champion(trades: np.ndarray | None = None, **kw) -> ShadowStats:
    kw.setdefault("trained_until", CUTOFF - 30 * DAY)
    return _stats("champion", _exact(5.0, 10.0, 60, 2) if trades is None else trades, **kw)


def _refused_by(decision, gate: str) -> None:
    assert not decision.promote
    assert decision.reason.startswith(f"refused by {gate}:"), decision.reason
    assert not decision.gates[gate]["passed"]


# --------------------------------------------------------------------------------------------- first champion
def test_first_champion_passes_the_absolute_gates():
    d = decide(_stats(), None, SPEC)
    assert d.promote and not d.kill_switch
    assert d.reason.startswith("promote challenger: all gates passed; absolute_edge")
    assert set(d.gates) == {"kill_switch", "canaries", "min_trades", "max_drawdown", "dsr", "absolute_edge", "fdr"}
    assert all(g["passed"] for g in d.gates.values())
    # the bound is the one-sided Student t bound at the first retest's level: mean - t(1 - level, n-1) s / sqrt(n)
    gate = d.gates["absolute_edge"]
    assert gate["level"] == pytest.approx(LEVEL_1) and gate["trial"] == 1
    expected = 12.0 - stats.t.isf(LEVEL_1, 59) * 10.0 / math.sqrt(60)
    assert gate["value"] == pytest.approx(expected, rel=1e-9)
    assert gate["threshold"] == 0.0
    assert gate["p_value"] == pytest.approx(stats.t.sf(12.0 / (10.0 / math.sqrt(60)), 59), rel=1e-6)


def test_first_champion_fails_the_absolute_gates():
    noisy = _exact(1.0, 30.0, 60, 3)  # positive mean, but not with 90% confidence
    _refused_by(decide(_stats(trades=noisy), None, SPEC), "absolute_edge")
    losing = _exact(-3.0, 5.0, 60, 3)
    _refused_by(decide(_stats(trades=losing), None, SPEC), "absolute_edge")
    # the threshold is first_min_net_bps: a sure 12 bps/trade passes 10 and fails 13
    sure = _exact(12.0, 1.0, 60, 4)
    assert decide(_stats(trades=sure), None, PromotionSpec(first_min_net_bps=10.0)).promote
    _refused_by(decide(_stats(trades=sure), None, PromotionSpec(first_min_net_bps=13.0)), "absolute_edge")


def test_a_tiny_sample_is_refused():
    great = _exact(50.0, 5.0, 19, 5)
    d = decide(_stats(trades=great), None, SPEC)
    _refused_by(d, "min_trades")
    assert d.gates["min_trades"] == {"passed": False, "value": 19, "threshold": 20, "detail": "19 trades < 20"}
    assert decide(_stats(trades=_exact(50.0, 5.0, 20, 5)), None, SPEC).promote


# --------------------------------------------------------------------------------------------- vs champion
def test_a_tiny_noisy_improvement_is_refused():
    champ = _champion(_exact(5.0, 30.0, 40, 6))
    challenger = _stats(trades=_exact(8.0, 30.0, 40, 7))  # +3 bps beats the 2 bps margin, but only on average
    d = decide(challenger, champ, SPEC)
    _refused_by(d, "champion_margin")
    gate = d.gates["champion_margin"]
    assert gate["mean_bps"] - gate["baseline_bps"] == pytest.approx(3.0) and gate["value"] < 2.0
    # without the confidence requirement (a 50% bound is the point estimate, no retest control) the same data pass
    assert decide(challenger, champ, PromotionSpec(confidence=0.5, alpha=None, fdr_q=None)).promote


def test_a_large_consistent_improvement_is_accepted():
    champ = _champion(_exact(5.0, 5.0, 40, 8))
    d = decide(_stats(trades=_exact(25.0, 5.0, 40, 9)), champ, SPEC)
    assert d.promote and d.reason.startswith("promote challenger: all gates passed; champion_margin")
    assert "absolute_edge" not in d.gates
    # Welch: difference minus t(1 - level, Welch–Satterthwaite df) x standard error (equal sizes and sds: df = 78)
    se = math.sqrt(25 / 40 + 25 / 40)
    assert d.gates["champion_margin"]["df"] == pytest.approx(78.0)
    assert d.gates["champion_margin"]["value"] == pytest.approx(20.0 - stats.t.isf(LEVEL_1, 78) * se, rel=1e-9)
    assert d.gates["champion_margin"]["p_value"] == pytest.approx(stats.t.sf((20.0 - 2.0) / se, 78), rel=1e-6)
    # the margin is the threshold: a 20 bps gain does not clear a 25 bps margin
    _refused_by(
        decide(_stats(trades=_exact(25.0, 5.0, 40, 9)), champ, PromotionSpec(margin_bps=25.0)), "champion_margin"
    )


def test_welch_bound_matches_scipy_with_unequal_samples():
    a, b = _exact(10.0, 12.0, 25, 10), _exact(4.0, 3.0, 70, 11)
    bound, df, q = welch_lower_bound(a, b, 0.95)
    va, vb = 144 / 25, 9 / 70
    df_ref = (va + vb) ** 2 / (va**2 / 24 + vb**2 / 69)
    assert df == pytest.approx(df_ref)
    assert q == pytest.approx(stats.t.ppf(0.95, df_ref), rel=1e-9)
    assert bound == pytest.approx(6.0 - stats.t.ppf(0.95, df_ref) * math.sqrt(va + vb), rel=1e-9)
    assert math.isnan(welch_lower_bound(a, b[:1], 0.9)[0])
    assert math.isnan(lower_bound_one_sample(a[:1], 0.9)[0])


def test_a_champion_with_fewer_than_two_trades_counts_as_zero_bps():
    challenger = _stats(trades=_exact(6.0, 10.0, 60, 12))
    for champ_trades in (np.array([80.0]), np.array([])):
        d = decide(challenger, _champion(champ_trades), SPEC)
        gate = d.gates["champion_margin"]
        assert gate["baseline_bps"] == 0.0
        assert "0 net bps" in gate["detail"] and f"{champ_trades.size} trade(s) < 2" in d.reason
        assert gate["value"] == pytest.approx(6.0 - stats.t.isf(LEVEL_1, 59) * 10.0 / math.sqrt(60), rel=1e-9)
        assert d.promote  # 6 bps/trade, lower bound 2.04 > the 2 bps margin over 0
    _refused_by(decide(_stats(trades=_exact(3.0, 10.0, 60, 12)), _champion(np.array([80.0])), SPEC), "champion_margin")


# --------------------------------------------------------------------------------------------- DSR, drawdown, kill
def test_dsr_refuses_a_high_sharpe_over_few_days_when_trials_are_many():
    few = _exact(0.01, 0.017, 8, 13)  # per-day Sharpe 0.59 (annualized 11) over 8 days
    d = decide(_stats(daily=few), None, SPEC)
    _refused_by(d, "dsr")
    assert d.gates["dsr"]["value"] == pytest.approx(deflated_sharpe_ratio(few, 30, 1 / 7))
    assert d.gates["dsr"]["trials_sharpe_var"] == pytest.approx(1 / 7)
    # a single trial: the same 8 days pass (PSR ~ 0.9), so it is the multiple testing that refused them
    assert decide(_stats(daily=few), None, PromotionSpec(dsr_trials=1)).promote
    # the same Sharpe over a year passes with 30 trials
    assert decide(_stats(daily=_exact(0.01, 0.017, 365, 13)), None, SPEC).promote
    # an explicit trials' Sharpe variance overrides the null estimate
    assert decide(_stats(daily=few), None, PromotionSpec(trials_sharpe_var=1e-4)).promote


def test_dsr_of_an_undefined_sharpe_is_a_refusal():
    for daily in (np.zeros(30), np.array([0.01])):
        d = decide(_stats(daily=daily), None, SPEC)
        _refused_by(d, "dsr")
        assert d.gates["dsr"]["value"] is None


def test_drawdown_gate():
    d = decide(_stats(dd=0.30), None, SPEC)
    _refused_by(d, "max_drawdown")
    assert not d.kill_switch and d.gates["max_drawdown"]["value"] == pytest.approx(0.30)
    # the daily series' own drawdown counts when it is larger than the reported one
    daily = _good_daily()
    daily[100:110] = -0.03  # ~26% down
    d = decide(_stats(daily=daily, dd=0.0), None, SPEC)
    _refused_by(d, "max_drawdown")
    assert d.gates["max_drawdown"]["value"] == pytest.approx(max_drawdown(daily)) and max_drawdown(daily) > 0.26


def test_kill_switch():
    d = decide(_stats(dd=0.40), None, SPEC)
    assert d.kill_switch and not d.promote
    assert d.reason.startswith("kill switch: challenger challenger drawdown 40.0% > 35.0%")
    assert "promotions stopped" in d.reason
    # a champion bleeding past the kill switch also stops promotions, even for a fine challenger
    d = decide(_stats(trades=_exact(40.0, 5.0, 60, 14)), _champion(dd=0.5), SPEC)
    assert d.kill_switch and not d.promote and d.reason.startswith("kill switch: champion champion drawdown 50.0%")
    # below the kill switch but above the gate: refused, no kill switch
    d = decide(_stats(dd=0.30), None, SPEC)
    assert not d.kill_switch and d.gates["kill_switch"]["passed"]
    # the kill switch decides even when other gates fail too
    d = decide(_stats(dd=0.40, canaries=False, trades=_exact(1.0, 1.0, 5, 1)), None, SPEC)
    assert d.kill_switch and d.reason.startswith("kill switch")


def test_failed_canaries_never_promote():
    d = decide(_stats(trades=_exact(100.0, 1.0, 500, 15), canaries=False), _champion(), SPEC)
    _refused_by(d, "canaries")
    assert [name for name, g in d.gates.items() if not g["passed"]] == ["canaries", "fdr"]
    assert d.gates["fdr"]["tested"] is False and d.gates["fdr"]["value"] == 1.0  # entered BH with p = 1
    assert d.gates["champion_margin"]["passed"]  # the edge itself is fine: the canaries alone refused it
    assert "leakage" in d.reason


def test_stats_covering_in_sample_bars_are_refused():
    late_champion = _champion(trained_until=CUTOFF + 5 * DAY)  # trained after the window starts
    with pytest.raises(ValueError, match=r"champion champion: its stats start .* before its training cutoff"):
        decide(_stats(), late_champion, SPEC)
    with pytest.raises(ValueError, match="challenger challenger"):
        decide(_stats(compared_from=CUTOFF - DAY), None, SPEC)
    # starting exactly at the cutoff is fine: decided (p 0.004 does not clear the first retest's level 0.0016)
    d = decide(_stats(), _champion(compared_from=CUTOFF - 30 * DAY), SPEC)
    assert d.gates["champion_margin"]["p_value"] == pytest.approx(stats.t.sf(5.0 / math.sqrt(200 / 60), 118))
    assert decide(_stats(), _champion(compared_from=CUTOFF - 30 * DAY), PromotionSpec(alpha=None)).promote


@pytest.mark.parametrize(
    ("kwargs", "gate"),
    [
        ({"canaries": False}, "canaries"),
        ({"trades": _exact(30.0, 5.0, 10, 0)}, "min_trades"),
        ({"dd": 0.3}, "max_drawdown"),
        ({"daily": _exact(0.01, 0.017, 8, 13)}, "dsr"),
        ({"trades": _exact(0.5, 30.0, 60, 0)}, "absolute_edge"),
    ],
)
def test_the_reason_names_the_deciding_gate(kwargs, gate):
    d = decide(_stats(**kwargs), None, SPEC)
    _refused_by(d, gate)
    assert gate in d.reason and "also failing" not in d.reason


def test_the_reason_lists_the_other_failing_gates():
    d = decide(_stats(canaries=False, trades=_exact(-5.0, 5.0, 10, 0)), None, SPEC)
    assert d.reason.startswith("refused by canaries:")
    assert d.reason.endswith("(also failing: min_trades, absolute_edge)")


# --------------------------------------------------------------------------------------------- output, inputs
def test_gates_are_json_serializable_and_decisions_deterministic():
    cases = [
        (_stats(), None),
        (_stats(), _champion()),
        (_stats(trades=np.array([5.0]), daily=np.zeros(3)), _champion(np.array([]))),  # NaN bounds and DSR
        (_stats(dd=0.9), _champion(dd=0.2)),
    ]
    for challenger, champion in cases:
        d = decide(challenger, champion, SPEC)
        text = json.dumps(d.gates, allow_nan=False)
        assert json.loads(text) == d.gates
        for gate in d.gates.values():
            assert {"passed", "value", "threshold"} <= set(gate) and isinstance(gate["passed"], bool)
        assert decide(challenger, champion, SPEC) == d


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError, match="finite"):
        _stats(trades=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="max_drawdown"):
        _stats(dd=-0.1)
    with pytest.raises(ValueError, match="min_trades"):
        PromotionSpec(min_trades=1)
    with pytest.raises(ValueError, match="confidence"):
        PromotionSpec(confidence=1.0)


def test_student_t_wrappers_conventions():
    # closed forms: df = 1 (Cauchy) and df = 2, written without cancellation so the far tails are exact too
    for x in (0.1, 2.0, 40.0, 1e3, 1e8):
        assert t_cdf(-x, 1.0) == pytest.approx(math.atan(1 / x) / math.pi, rel=1e-12)
        r = math.sqrt(2 + x * x)
        assert t_cdf(-x, 2.0) == pytest.approx(1 / (r * (r + x)), rel=1e-12)
        assert t_cdf(x, 2.0) == pytest.approx(1 - 1 / (r * (r + x)), rel=1e-15)
    assert t_cdf(0.0, 3.7) == 0.5 and t_cdf(1.3, math.inf) == pytest.approx(0.5 * math.erfc(-1.3 / math.sqrt(2)))
    for q in (0.75, 0.9, 0.999):
        assert t_ppf(q, 1.0) == pytest.approx(math.tan(math.pi * (q - 0.5)), rel=1e-12)
        assert t_cdf(t_ppf(q, 57.3), 57.3) == pytest.approx(q, rel=1e-12)
    assert t_ppf(0.5, 4.0) == 0.0 and t_ppf(0.9, 1) == pytest.approx(3.077684, abs=1e-6)  # the table value
    assert t_ppf(0.95, math.inf) == pytest.approx(1.6448536269514722, rel=1e-14)  # the normal's
    with pytest.raises(ValueError, match="q in"):
        t_ppf(0.4, 5.0)
    with pytest.raises(ValueError, match="q in"):
        t_ppf(1.0, 5.0)
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="df"):
            t_cdf(1.0, bad)
        with pytest.raises(ValueError, match="df"):
            t_ppf(0.9, bad)
