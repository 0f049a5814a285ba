"""The contextual bandit: LinTS learns the context-dependent best preset, ε-greedy too, choices are reproducible from
the seed (in another process too), the posterior is the ridge regression's and its draws have the right law, and
posteriors survive JSON exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from huracan_assets.core.params import (
    ArmPosterior,
    BanditSpec,
    choose,
    decision_rng,
    posterior_from_dict,
    posterior_means,
    posterior_to_dict,
    predictive,
    prob_beats,
    sample_theta,
    update,
)
from huracan_assets_tests.benchmarks.bench_param_bandit import REGIMES, make_env, run

REPO = Path(__file__).resolve().parents[3]


def _awkward_posterior(seed: int = 0, dim: int = 5, n: int = 40) -> ArmPosterior:
    rng = np.random.default_rng(seed)
    post = ArmPosterior.prior(dim, 0.7)
    for _ in range(n):
        x = np.concatenate([[1.0], rng.uniform(size=dim - 1) / 3])
        post = update(post, x, float(rng.normal(5, 30)))
    return post


@pytest.mark.parametrize("seed", [0, 1])
def test_lints_converges_to_the_best_preset_of_each_context(seed):
    """2,000 rounds of the simulated environment (fast best in TREND, wide in RANGE, safe in PANIC, Gaussian noise
    of 30 bps): in the last 200 rounds LinTS picks the best preset for the drawn context at least 90 % of the time."""
    env = make_env(2000, 1000 + seed)
    best_by_regime = {
        REGIMES[r]: {b for b, rr in zip(env_best(env), env.regimes, strict=True) if rr == r} for r in range(3)
    }
    assert best_by_regime == {"TREND": {"fast"}, "RANGE": {"wide"}, "PANIC": {"safe"}}  # the best depends on x
    result = run("lints", env, seed)
    assert result.best_share(200) >= 0.90
    assert {c for c, r in zip(result.choices[-200:], env.regimes[-200:], strict=True) if r == 0} >= {"fast"}
    uniform = run("uniform", env, seed)
    assert result.cumulative_regret < 0.2 * uniform.cumulative_regret


def env_best(env) -> list[str]:
    out = []
    for features in env.features:
        expected = env.expected(features)
        out.append(max(env.arms, key=lambda a: expected[a]))
    return out


def test_epsilon_greedy_learns_too():
    env = make_env(2000, 1000)
    result = run("egreedy", env, 0)
    assert result.best_share(200) >= 0.85  # ε = 0.1 over 3 arms: about 93 % at best
    assert result.cumulative_regret < 0.25 * run("uniform", env, 0).cumulative_regret


def test_same_seed_and_outcomes_give_the_same_choices_and_another_seed_other_early_choices():
    env = make_env(300, 7)
    a, b = run("lints", env, 11), run("lints", env, 11)
    assert a.choices == b.choices and np.array_equal(a.regret, b.regret)
    c = run("lints", env, 12)
    assert a.choices[:30] != c.choices[:30]
    e1, e2 = run("egreedy", env, 11), run("egreedy", env, 11)
    assert e1.choices == e2.choices
    assert e1.choices[:100] != run("egreedy", env, 12).choices[:100]


def test_the_decision_generator_depends_on_seed_strategy_instrument_and_counter_only():
    draws = {
        key: decision_rng(*key).standard_normal(3).tolist()
        for key in [(1, "s", "BTCUSDT", 0), (2, "s", "BTCUSDT", 0), (1, "t", "BTCUSDT", 0), (1, "s", "ETHUSDT", 0),
                    (1, "s", "BTCUSDT", 1)]
    }  # fmt: skip
    assert len({tuple(v) for v in draws.values()}) == len(draws)
    assert decision_rng(1, "s", "BTCUSDT", 0).standard_normal(3).tolist() == draws[(1, "s", "BTCUSDT", 0)]
    # another process with another string-hash salt draws the same numbers (no Python hash() in the derivation)
    code = (
        "from huracan_assets.core.params import decision_rng\n"
        "print(decision_rng(1, 's', 'BTCUSDT', 0).standard_normal(3).tolist())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout) == draws[(1, "s", "BTCUSDT", 0)]


def test_the_posterior_is_the_ridge_regression_of_the_arm_observations():
    rng = np.random.default_rng(3)
    lam, xs = 2.0, np.column_stack([np.ones(50), rng.uniform(size=(50, 3))])
    rewards = xs @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.normal(0, 0.1, 50)
    post = ArmPosterior.prior(4, lam)
    for x, r in zip(xs, rewards, strict=True):
        post = update(post, x, r)
    assert post.n == 50
    ridge = np.linalg.solve(xs.T @ xs + lam * np.eye(4), xs.T @ rewards)
    np.testing.assert_allclose(post.mean(), ridge, rtol=1e-10)
    np.testing.assert_allclose(post.A, xs.T @ xs + lam * np.eye(4), rtol=1e-12)
    assert np.array_equal(post.A, post.A.T)


def test_draws_have_the_posterior_mean_and_covariance():
    """θ̃ ~ N(A⁻¹b, v² A⁻¹): the sample moments of 12,000 draws match (a transposed Cholesky factor would not)."""
    post, v, n = _awkward_posterior(), 2.5, 12_000
    rng = np.random.default_rng(0)
    draws = np.array([sample_theta(post, v, rng) for _ in range(n)])
    cov = v**2 * np.linalg.inv(post.A)
    np.testing.assert_allclose(
        draws.mean(axis=0), np.linalg.solve(post.A, post.b), atol=4 * np.sqrt(cov.diagonal().max() / n)
    )
    np.testing.assert_allclose(np.cov(draws.T), cov, rtol=0.08, atol=0.04 * np.abs(cov).max())
    x = np.array([1.0, 0.2, 0.3, 0.1, 0.9])
    mean, sd = predictive(post, x, v)
    assert mean == pytest.approx(x @ np.linalg.solve(post.A, post.b), rel=1e-12)
    assert sd == pytest.approx(v * np.sqrt(x @ np.linalg.solve(post.A, x)), rel=1e-12)


def test_prob_beats_is_the_gaussian_probability_of_the_difference():
    a, b = _awkward_posterior(1), _awkward_posterior(2)
    x, v, margin = np.array([1.0, 0.5, 0.1, 0.2, 0.3]), 30.0, 2.0
    (ma, sa), (mb, sb) = predictive(a, x, v), predictive(b, x, v)
    expected = 1 - stats.norm.cdf(margin, loc=ma - mb, scale=np.hypot(sa, sb))
    assert prob_beats(a, b, x, margin, v) == pytest.approx(expected, rel=1e-12)
    rng = np.random.default_rng(5)
    mc = np.mean([x @ sample_theta(a, v, rng) - x @ sample_theta(b, v, rng) > margin for _ in range(5_000)])
    assert mc == pytest.approx(expected, abs=0.025)
    assert prob_beats(a, a, x, 0.0, v) == pytest.approx(0.5)
    assert prob_beats(a, b, x, margin, v) + prob_beats(b, a, x, -margin, v) == pytest.approx(1.0)


def test_choices_do_not_depend_on_the_mapping_order():
    posts = {k: _awkward_posterior(i) for i, k in enumerate(["c", "a", "b"])}
    x = np.array([1.0, 0.1, 0.2, 0.3, 0.4])
    spec = BanditSpec(exploration=30.0)
    reordered = dict(sorted(posts.items()))
    for counter in range(20):
        assert choose(posts, x, decision_rng(0, "s", "i", counter), spec) == choose(
            reordered, x, decision_rng(0, "s", "i", counter), spec
        )
    greedy = BanditSpec(policy="egreedy", epsilon=0.0)
    means = posterior_means(posts, x)
    assert choose(posts, x, decision_rng(0, "s", "i", 0), greedy) == (max(means, key=means.get), means)


def test_serialization_round_trip_is_exact():
    post = _awkward_posterior(4)
    data = json.loads(json.dumps(posterior_to_dict(post)))
    back = posterior_from_dict(data)
    assert back == post and back.n == post.n
    assert np.array_equal(back.A, post.A) and np.array_equal(back.b, post.b)
    assert back.A.tobytes() == post.A.tobytes()
    x = np.array([1.0, 0.3, 0.3, 0.3, 0.1])
    assert (
        sample_theta(back, 30.0, decision_rng(0, "s", "i", 0)).tolist()
        == sample_theta(post, 30.0, decision_rng(0, "s", "i", 0)).tolist()
    )
    assert predictive(back, x, 1.0) == predictive(post, x, 1.0)
    with pytest.raises(ValueError, match="format version"):
        posterior_from_dict({**data, "version": 99})


def test_posteriors_are_values_and_refuse_bad_input():
    post = ArmPosterior.prior(3, 1.0)
    with pytest.raises(ValueError, match="read-only"):
        post.A[0, 0] = 5.0
    x = np.array([1.0, 0.5, 0.5])
    new = update(post, x, 1.0)
    assert post.n == 0 and np.array_equal(post.A, np.eye(3)) and new.n == 1
    with pytest.raises(ValueError, match="3 finite numbers"):
        update(post, np.array([1.0, np.nan, 0.0]), 1.0)
    with pytest.raises(ValueError, match="3 finite numbers"):
        update(post, np.array([1.0, 0.0]), 1.0)
    with pytest.raises(ValueError, match="reward must be a finite number"):
        update(post, x, float("inf"))
    with pytest.raises(ValueError, match="symmetric"):
        ArmPosterior(np.array([[1.0, 0.1], [0.0, 1.0]]), np.zeros(2))
    with pytest.raises(ValueError, match="epsilon"):
        BanditSpec(epsilon=1.5)
    with pytest.raises(ValueError, match="exploration"):
        BanditSpec(exploration=0.0)


def test_combined_posteriors_are_the_posterior_of_both_data_sets():
    from huracan_assets.core.params.bandit import combine

    rng = np.random.default_rng(11)
    prior = ArmPosterior.prior(4, 2.0)
    live, replayed, both = prior, prior, prior
    for i in range(60):
        x, r = np.r_[1.0, rng.uniform(size=3)], float(rng.normal(5, 30))
        if i % 3:
            replayed = update(replayed, x, r)
        else:
            live = update(live, x, r)
        both = update(both, x, r)
    joint = combine(live, replayed, 2.0)
    assert joint.n == both.n == 60
    np.testing.assert_allclose(joint.A, both.A, rtol=1e-12)
    np.testing.assert_allclose(joint.b, both.b, rtol=1e-12)
    np.testing.assert_allclose(joint.mean(), both.mean(), rtol=1e-9)
    with pytest.raises(ValueError, match="dimensions"):
        combine(live, ArmPosterior.prior(3, 2.0), 2.0)
