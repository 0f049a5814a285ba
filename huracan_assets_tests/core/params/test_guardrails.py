"""Guardrails of the parameter controller under adversarial outcomes: the daily change limit and the hysteresis hold
whatever the rewards do, a position keeps its config for its life, the kill switch falls back to the safe preset;
config ids are stable; the controller is deterministic and its state survives JSON."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from huracan_assets.core.params import (
    ArmPosterior,
    BanditSpec,
    Controller,
    ControllerSpec,
    ControllerState,
    GuardrailSpec,
    load_schema,
    params_hash,
    parse_config_id,
    prob_beats,
    update,
)

REPO = Path(__file__).resolve().parents[3]
SCHEMA = load_schema(REPO / "config" / "strategy_schemas" / "momentum_breakout.yaml")
TREND = {"regime_trend": 0.9, "regime_range": 0.1, "regime_panic": 0.0, "volatility": 0.01}
RANGE = {"regime_trend": 0.1, "regime_range": 0.9, "regime_panic": 0.0, "volatility": 0.01}
T0 = datetime(2024, 3, 1, tzinfo=UTC)
NO_KILL = 1e12


def _controller(policy: str = "egreedy", *, epsilon: float = 0.0, seed: int = 0, **guardrails) -> Controller:
    bandit = BanditSpec(policy=policy, exploration=30.0, epsilon=epsilon)
    return Controller(SCHEMA, ControllerSpec(bandit=bandit, guardrails=GuardrailSpec(**guardrails), seed=seed))


def _changes_per_day(decisions) -> Counter:
    """Changes of the preset in force between consecutive decisions, by the UTC day of the decision."""
    out: Counter = Counter()
    for before, after in itertools.pairwise(decisions):
        if after.preset_id != before.preset_id:
            out[after.at.date()] += 1
    return out


@pytest.mark.parametrize("policy", ["egreedy", "lints"])
def test_the_daily_limit_holds_when_the_rewards_flip_the_best_preset_every_round(policy):
    """After every decision the adversary punishes the preset in force and rewards another (in turn), so the
    bandit wants a change every round; over 3 days of half-hourly decisions no UTC day sees more than 2 changes,
    the limit binds, and it resets at midnight."""
    ctl = _controller(policy, margin=0.0, confidence=0.55, max_changes_per_day=2, kill_drawdown=NO_KILL)
    state = ctl.initial_state("BTCUSDT")
    arms, decisions = sorted(ctl.presets), []
    for t in range(3 * 48):
        decision, state = ctl.decide(state, TREND, T0 + timedelta(minutes=30 * t))
        decisions.append(decision)
        other = [a for a in arms if a != decision.preset_id][t % 2]
        state = ctl.observe(state, decision.preset_id, TREND, -500.0)
        state = ctl.observe(state, other, TREND, 500.0)
    per_day = _changes_per_day(decisions)
    assert max(per_day.values()) <= 2
    assert per_day == {T0.date() + timedelta(days=d): 2 for d in range(3)}  # the limit is reached each day
    reasons = Counter(d.reason for d in decisions)
    assert reasons["daily-limit"] >= 60  # the bandit wanted a change far more often than the limit allowed
    assert state.changes_today == 2 and state.day == (T0 + timedelta(minutes=30 * 143)).date()


def _flip_reward(ctl: Controller, state: ControllerState, arm: str, target: float) -> float:
    """The reward that puts ``arm``'s posterior mean at TREND exactly at ``target`` (the mean is linear in it)."""
    x = SCHEMA.context(TREND)
    post = state.posteriors[arm]
    m0, m1 = (float(x @ update(post, x, r).mean()) for r in (0.0, 1.0))
    return (target - m0) / (m1 - m0)


def _adversarial_flips(ctl: Controller, rounds: int, lead: float) -> list:
    """Every round, the adversary lifts the trailing one of safe and wide ``lead`` bps above the other, so that the
    argmax of the posterior means flips every round; fast stays far behind."""
    state = ctl.initial_state("BTCUSDT")
    state = ctl.observe(state, "fast", TREND, -300.0)
    state = ctl.observe(state, "safe", TREND, 10.0)
    decisions = []
    for t in range(rounds):
        decision, state = ctl.decide(state, TREND, T0 + timedelta(minutes=10 * t))
        decisions.append(decision)
        means = decision.means
        trailing, leader = sorted(("safe", "wide"), key=lambda a: means[a])
        state = ctl.observe(state, trailing, TREND, _flip_reward(ctl, state, trailing, means[leader] + lead))
    return decisions


def test_hysteresis_holds_when_the_argmax_flips_every_round_by_less_than_the_margin():
    ctl = _controller(margin=2.0, confidence=0.9, max_changes_per_day=1000, kill_drawdown=NO_KILL)
    decisions = _adversarial_flips(ctl, 300, lead=1.0)
    greedy = [max(d.means, key=d.means.get) for d in decisions]
    assert sum(a != b for a, b in itertools.pairwise(greedy)) >= 290  # the argmax did flip every round
    assert {d.preset_id for d in decisions} == {"safe"}  # ... and the preset in force never did
    assert Counter(d.reason for d in decisions)["hysteresis-hold"] >= 140
    assert all(d.p_beats < 0.9 for d in decisions if d.reason == "hysteresis-hold")


def test_without_the_hysteresis_the_same_adversary_makes_it_flip():
    """The control of the test above: with no margin and a coin-flip confidence the same outcomes change the preset
    nearly every round, so the hold above is the hysteresis' doing."""
    ctl = _controller(margin=0.0, confidence=0.5, max_changes_per_day=1000, kill_drawdown=NO_KILL)
    decisions = _adversarial_flips(ctl, 300, lead=1.0)
    assert sum(_changes_per_day(decisions).values()) >= 250


def _repeated(x: np.ndarray, reward: float, n: int) -> ArmPosterior:
    """The posterior after n observations of ``reward`` at ``x`` (λ = 1), in closed form."""
    return ArmPosterior(np.eye(x.size) + n * np.outer(x, x), n * reward * x, n)


def _established(ctl: Controller, better: float, n: int = 5000):
    """fast in force with n observations of 10 bps (safe: n of 0 bps); wide with n observations of 10 + better.
    With n = 5,000 the posterior sd of a mean is 30 / sqrt(n) = 0.42 bps: a 1 bps lead is nearly sure (P = 0.95)
    but not by the 2 bps margin (P = 0.05), so only the margin holds it back."""
    x = SCHEMA.context(TREND)
    state = ctl.initial_state("BTCUSDT")
    state = replace(state, posteriors={**state.posteriors, "fast": _repeated(x, 10.0, n), "safe": _repeated(x, 0.0, n)})
    decision, state = ctl.decide(state, TREND, T0)
    assert decision.preset_id == "fast"
    return replace(state, posteriors={**state.posteriors, "wide": _repeated(x, 10.0 + better, n)})


def test_a_marginally_better_preset_does_not_replace_the_current_one_but_a_clearly_better_one_does():
    ctl = _controller(margin=2.0, confidence=0.9, max_changes_per_day=5, kill_drawdown=NO_KILL)
    state = _established(ctl, better=1.0)
    for t in range(1, 50):
        decision, state = ctl.decide(state, TREND, T0 + timedelta(hours=t))
        assert (decision.preset_id, decision.reason, decision.candidate) == ("fast", "hysteresis-hold", "wide")
        assert decision.means["wide"] > decision.means["fast"]
        assert decision.p_beats < 0.1
        assert prob_beats(state.posteriors["wide"], state.posteriors["fast"], SCHEMA.context(TREND), 0.0, 30.0) > 0.9
    state = _established(ctl, better=20.0)
    decision, state = ctl.decide(state, TREND, T0 + timedelta(hours=1))
    assert (decision.preset_id, decision.reason) == ("wide", "exploit")
    assert decision.p_beats >= 0.9 and state.changes_today == 2  # safe -> fast, fast -> wide


def test_a_position_keeps_its_config_for_its_life_and_new_presets_apply_to_new_positions():
    ctl = _controller(margin=0.0, confidence=0.55, max_changes_per_day=10, kill_drawdown=NO_KILL)
    state = ctl.observe(ctl.initial_state("ETHUSDT"), "fast", TREND, 100.0)
    first, state = ctl.decide(state, TREND, T0, position_id="pos-1")
    assert first.preset_id == "fast" and state.positions["pos-1"].config_id == first.config_id
    for _ in range(5):  # wide becomes far better: the next new position gets it
        state = ctl.observe(state, "wide", TREND, 400.0)
    second, state = ctl.decide(state, TREND, T0 + timedelta(minutes=5), position_id="pos-2")
    assert second.preset_id == "wide" and state.current == "wide"
    again, state = ctl.decide(state, RANGE, T0 + timedelta(minutes=10), position_id="pos-1")
    assert (again.preset_id, again.config_id, again.reason) == ("fast", first.config_id, "position-pinned")
    # settling pos-1 teaches fast at pos-1's decision context (TREND), not at the later one, and releases the pin
    before = state.posteriors["fast"]
    state = ctl.settle(state, "pos-1", -20.0)
    x = SCHEMA.context(TREND)
    assert state.posteriors["fast"] == update(before, x, -20.0)
    assert "pos-1" not in state.positions and "pos-2" in state.positions
    fresh, state = ctl.decide(state, TREND, T0 + timedelta(minutes=15), position_id="pos-1")
    assert fresh.reason != "position-pinned" and fresh.preset_id == "wide"
    with pytest.raises(ValueError, match="has no open config"):
        ctl.settle(state, "pos-9", 1.0)


def test_the_kill_switch_returns_the_safe_preset_after_a_drawdown_until_reset():
    ctl = _controller(margin=2.0, confidence=0.9, max_changes_per_day=1, kill_drawdown=100.0)
    state = ctl.initial_state("SOLUSDT")
    for _ in range(30):
        state = ctl.observe(state, "fast", TREND, 100.0)
    decision, state = ctl.decide(state, TREND, T0)
    assert decision.preset_id == "fast" and state.changes_today == 1  # the day's only change
    for reward in (-60.0, -39.5):  # drawdown 99.5 < 100: still trading
        state = ctl.observe(state, "wide", TREND, reward)
    decision, state = ctl.decide(state, TREND, T0 + timedelta(minutes=1))
    assert decision.preset_id == "fast" and not state.killed and state.drawdown == pytest.approx(99.5)
    state = ctl.observe(state, "wide", TREND, -0.5)  # drawdown 100: killed
    assert state.killed
    decision, state = ctl.decide(state, TREND, T0 + timedelta(minutes=2), position_id="p")
    assert (decision.preset_id, decision.reason) == ("safe", "kill-switch")  # the daily limit does not block it
    assert decision.config_id == ctl.config_id("SOLUSDT", "safe") == state.positions["p"].config_id
    for _ in range(20):  # recovery does not lift it: only a reset does
        state = ctl.observe(state, "fast", TREND, 500.0)
    decision, state = ctl.decide(state, TREND, T0 + timedelta(days=1))
    assert (decision.preset_id, decision.reason) == ("safe", "kill-switch")
    state = ctl.reset_kill(state)
    assert state.drawdown == 0 and not state.killed
    decision, state = ctl.decide(state, TREND, T0 + timedelta(days=1, minutes=1))
    assert (decision.preset_id, decision.reason) == ("fast", "exploit")


def test_config_ids_are_stable_and_identify_strategy_instrument_preset_and_params():
    a, b = _controller(seed=1), _controller(seed=2, margin=5.0)
    cid = a.config_id("BTCUSDT", "fast")
    assert (
        cid
        == b.config_id("BTCUSDT", "fast")
        == f"momentum_breakout:BTCUSDT:fast:{params_hash(SCHEMA.presets['fast'])[:12]}"
    )
    assert cid == "momentum_breakout:BTCUSDT:fast:" + params_hash(dict(reversed(SCHEMA.presets["fast"].items())))[:12]
    assert len({a.config_id(i, p) for i in ("BTCUSDT", "ETHUSDT") for p in SCHEMA.presets}) == 6
    assert parse_config_id(cid)[:3] == ("momentum_breakout", "BTCUSDT", "fast")
    perp = a.config_id("BTC/USDT:USDT", "wide")
    assert parse_config_id(perp)[:3] == ("momentum_breakout", "BTC/USDT:USDT", "wide")
    new = {**SCHEMA.presets["fast"], "pt_mult": 3.5}
    c = Controller(SCHEMA, registered={"fast_wider": new})
    assert c.config_id("BTCUSDT", "fast_wider").endswith(params_hash(new)[:12])
    assert "fast_wider" in c.initial_state("BTCUSDT").posteriors
    with pytest.raises(ValueError, match="not a config_id"):
        parse_config_id("momentum_breakout:fast")


def _run(ctl: Controller, rounds: int = 120) -> tuple[list, ControllerState]:
    rng = np.random.default_rng(42)  # the outcomes: fixed
    state, decisions = ctl.initial_state("BTCUSDT"), []
    for t in range(rounds):
        features = TREND if rng.uniform() < 0.5 else RANGE
        decision, state = ctl.decide(state, features, T0 + timedelta(hours=t), position_id=f"p{t}")
        decisions.append(decision)
        state = ctl.settle(state, f"p{t}", float(rng.normal(20 if decision.preset_id == "fast" else 0, 30)))
        for arm in ctl.presets:  # a replay of every preset's shadow trades
            state = ctl.observe(state, arm, features, float(rng.normal({"fast": 15, "wide": 5, "safe": 0}[arm], 30)))
    return decisions, state


def test_the_controller_is_deterministic_and_its_state_survives_json():
    ctl = _controller("lints", margin=2.0, confidence=0.8, max_changes_per_day=3, kill_drawdown=5000.0)
    d1, s1 = _run(ctl)
    d2, s2 = _run(_controller("lints", margin=2.0, confidence=0.8, max_changes_per_day=3, kill_drawdown=5000.0))
    assert d1 == d2 and s1 == s2
    assert {d.preset_id for d in d1} >= {"fast", "safe"}  # it did move
    back = ControllerState.from_dict(json.loads(json.dumps(s1.to_dict())))
    assert back == s1
    at, seq = T0 + timedelta(days=30), s1.decisions
    assert ctl.decide(back, RANGE, at) == ctl.decide(s1, RANGE, at)
    other_seed = _run(
        _controller("lints", seed=9, margin=2.0, confidence=0.8, max_changes_per_day=3, kill_drawdown=5000.0)
    )
    assert [d.scores for d in other_seed[0][:5]] != [d.scores for d in d1[:5]]
    assert seq == 120


def test_bad_calls_are_refused():
    ctl = _controller()
    state = ctl.initial_state("BTCUSDT")
    _, state = ctl.decide(state, TREND, T0)
    with pytest.raises(ValueError, match="is before the previous one"):
        ctl.decide(state, TREND, T0 - timedelta(seconds=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        ctl.decide(state, TREND, datetime(2024, 3, 2))
    with pytest.raises(ValueError, match="has no preset 'turbo'"):
        ctl.observe(state, "turbo", TREND, 1.0)
    with pytest.raises(ValueError, match="instrument must be"):
        ctl.initial_state("")
    other = Controller(load_schema(REPO / "config" / "strategy_schemas" / "mean_reversion.yaml"))
    with pytest.raises(ValueError, match="given to the 'mean_reversion' controller"):
        other.decide(state, TREND, T0)
    with pytest.raises(ValueError, match="confidence"):
        GuardrailSpec(confidence=1.0)


def test_a_draw_from_an_unobserved_preset_does_not_block_a_well_evidenced_better_one():
    """LinTS draws wildly for a preset with no data, and the hysteresis rightly holds that candidate; the preset of
    the largest posterior mean, clearly better than the current one, then takes over (reason exploit)."""
    ctl = Controller(SCHEMA, ControllerSpec(seed=3))  # LinTS, v = 100 bps
    at = datetime(2024, 8, 10, tzinfo=UTC)
    features = dict.fromkeys(SCHEMA.feature_names, 0.2)
    state = ctl.initial_state("BTCUSDT")
    observed = sorted(set(ctl.presets) - {SCHEMA.safe_preset})[0]
    for _ in range(40):  # one preset and the safe one are measured; the others never are
        state = ctl.observe(state, observed, features, 60.0)
        state = ctl.observe(state, SCHEMA.safe_preset, features, -10.0)
    reasons = []
    for i in range(20):
        decision, state = ctl.decide(state, features, at + timedelta(minutes=i))
        reasons.append((decision.candidate, decision.preset_id, decision.reason))
    drawn = [r for r in reasons if r[0] not in (observed, SCHEMA.safe_preset)]
    assert drawn  # unobserved presets were drawn, and never stood in the way of the measured better one
    assert all(r[1] == observed for r in drawn) and drawn[0][2] == "exploit", reasons
    assert state.current == observed
