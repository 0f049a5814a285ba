"""Cumulative regret of the parameter controller's bandit: LinTS against ε-greedy and uniform random choice, on a
simulated contextual environment over a real strategy schema's presets.

Runs the REAL bandit of ``core/params/bandit.py`` (``choose``, ``update``, ``decision_rng``) on the presets and
features of ``config/strategy_schemas/momentum_breakout.yaml`` (``load_schema``, contexts from
``StrategySchema.context``). The guardrails are left out: they hold the current preset on purpose, and this measures
what the bandit learns.

The environment (:class:`ContextualEnv`; rewards in net bps per trade, the controller's unit):

- **Context.** A dominant regime is drawn (TREND 45 %, RANGE 40 %, PANIC 15 %); its share of the trailing day is
  U(0.7, 1), the rest split at random between the two others. The volatility is U(0.005, 0.02) per bar, U(0.02,
  0.05) in PANIC. Any other feature of the schema is drawn uniformly within its bounds and has no effect.
- **Expected reward** of a preset: its regime means weighted by the shares, plus a volatility term on the scaled
  volatility (``DEFAULT_MEANS``): ``fast`` wins in TREND, ``wide`` in RANGE, ``safe`` (trades little, small rewards
  either way) in PANIC. It is linear in the bandit's context, so the model is well specified.
- **Noise.** Gaussian, sd 30 bps (the mean of a few trades rather than one trade's ~100 bps, so that 2,000 rounds
  can tell gaps of a few bps apart). Contexts and the noise of every arm are drawn in advance from ``env_seed``: every
  policy faces the same rounds (common random numbers).

Regret of round t: the best preset's expected reward at the round's context minus the chosen one's. The bandit's
``v`` is the noise sd (30), ``λ`` 1, ε 0.1.

    python -m huracan_assets_tests.benchmarks.bench_param_bandit [--rounds 2000] [--seeds 0,1,2,3,4,5,6,7]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from huracan_assets.core.params.bandit import ArmPosterior, BanditSpec, choose, decision_rng, update
from huracan_assets.core.params.schema import StrategySchema, load_schema

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "strategy_schemas" / "momentum_breakout.yaml"
REGIMES = ("TREND", "RANGE", "PANIC")
REGIME_PROBS = (0.45, 0.40, 0.15)
# expected net bps per trade of each preset when the trailing day is all in one regime, and per unit of the scaled
# volatility (the volatility feature mapped to [0, 1] by its bounds)
DEFAULT_MEANS: dict[str, dict[str, float]] = {
    "fast": {"TREND": 30.0, "RANGE": -30.0, "PANIC": -60.0, "vol": 10.0},
    "wide": {"TREND": 5.0, "RANGE": 15.0, "PANIC": -30.0, "vol": 0.0},
    "safe": {"TREND": 2.0, "RANGE": 0.0, "PANIC": -5.0, "vol": 0.0},
}
POLICIES = ("lints", "egreedy", "uniform")
INSTRUMENT = "SIMUSDT"


@dataclass(frozen=True)
class ContextualEnv:
    """Pre-drawn rounds: ``features[t]`` (the schema's features) and ``noise[t, arm]``; rewards in bps."""

    schema: StrategySchema
    means: Mapping[str, Mapping[str, float]]
    features: tuple[dict[str, float], ...]
    regimes: np.ndarray  # dominant regime index of each round
    noise: np.ndarray  # rounds x arms, arms in sorted order
    noise_sd: float

    @property
    def arms(self) -> list[str]:
        return sorted(self.schema.presets)

    def expected(self, features: Mapping[str, float]) -> dict[str, float]:
        """Each preset's expected reward at a context (linear in the schema's context vector)."""
        x = self.schema.context(features)
        names = self.schema.feature_names
        shares = {r: x[1 + names.index(f"regime_{r.lower()}")] for r in REGIMES}
        vol = x[1 + names.index("volatility")]
        return {
            arm: sum(self.means[arm][r] * shares[r] for r in REGIMES) + self.means[arm]["vol"] * vol
            for arm in self.arms
        }

    def reward(self, t: int, arm: str) -> float:
        return self.expected(self.features[t])[arm] + float(self.noise[t, self.arms.index(arm)])


def make_env(
    rounds: int,
    env_seed: int,
    *,
    schema: StrategySchema | None = None,
    means: Mapping[str, Mapping[str, float]] | None = None,
    noise_sd: float = 30.0,
) -> ContextualEnv:
    """The environment of the module docstring, ``rounds`` rounds drawn from ``env_seed``."""
    schema = schema or load_schema(SCHEMA_PATH)
    means = means or DEFAULT_MEANS
    if set(means) != set(schema.presets):
        raise ValueError(f"means for {sorted(means)}, presets {sorted(schema.presets)}")
    rng = np.random.default_rng(env_seed)
    dominant = rng.choice(len(REGIMES), size=rounds, p=REGIME_PROBS)
    rows = []
    for r in dominant:
        share = rng.uniform(0.7, 1.0)
        split = rng.uniform()
        others = [i for i in range(len(REGIMES)) if i != r]
        shares = {r: share, others[0]: (1 - share) * split, others[1]: (1 - share) * (1 - split)}
        vol = rng.uniform(0.02, 0.05) if REGIMES[r] == "PANIC" else rng.uniform(0.005, 0.02)
        row = {f"regime_{REGIMES[i].lower()}": float(shares[i]) for i in range(len(REGIMES))}
        row["volatility"] = float(vol)
        for spec in schema.features:
            if spec.name not in row:
                row[spec.name] = float(rng.uniform(spec.min, spec.max)) if spec.min is not None else 0.0
        rows.append(row)
    noise = rng.normal(0.0, noise_sd, size=(rounds, len(schema.presets)))
    return ContextualEnv(schema, means, tuple(rows), dominant, noise, noise_sd)


@dataclass(frozen=True)
class RunResult:
    policy: str
    seed: int
    choices: tuple[str, ...]
    best: tuple[str, ...]  # the best preset of each round's context
    regret: np.ndarray  # per round
    seconds: float

    @property
    def cumulative_regret(self) -> float:
        return float(self.regret.sum())

    def best_share(self, last: int) -> float:
        """Share of the last ``last`` rounds where the best preset for the context was chosen."""
        pairs = list(zip(self.choices, self.best, strict=True))[-last:]
        return sum(c == b for c, b in pairs) / len(pairs)


def run(policy: str, env: ContextualEnv, seed: int, *, spec: BanditSpec | None = None) -> RunResult:
    """One policy over every round of ``env``: choose at the round's context, observe the chosen preset's reward."""
    schema = env.schema
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    spec = spec or BanditSpec(
        policy="egreedy" if policy == "egreedy" else "lints", prior_precision=1.0, exploration=env.noise_sd
    )
    posteriors = dict.fromkeys(env.arms, ArmPosterior.prior(schema.dim, spec.prior_precision))
    choices, best, regret = [], [], np.empty(len(env.features))
    start = time.perf_counter()
    for t, features in enumerate(env.features):
        x = schema.context(features)
        rng = decision_rng(seed, schema.strategy, INSTRUMENT, t)
        if policy == "uniform":
            arm = env.arms[int(rng.integers(len(env.arms)))]
        else:
            arm, _ = choose(posteriors, x, rng, spec)
        expected = env.expected(features)
        top = max(env.arms, key=lambda a: expected[a])
        posteriors[arm] = update(posteriors[arm], x, env.reward(t, arm))
        choices.append(arm)
        best.append(top)
        regret[t] = expected[top] - expected[arm]
    return RunResult(policy, seed, tuple(choices), tuple(best), regret, time.perf_counter() - start)


def table(results: Sequence[RunResult], last: int) -> str:
    """Markdown: per policy, the mean (sd) cumulative regret over the seeds, the regret and the best-preset share
    of the last rounds, and the time per round (the simulation's own work included)."""
    lines = [
        f"| policy | seeds | cumulative regret, bps (mean ± sd) | min–max | regret in the last {last} rounds |"
        f" best preset in the last {last} rounds | ms per round |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for policy in POLICIES:
        rows = [r for r in results if r.policy == policy]
        if not rows:
            continue
        reg = np.array([r.cumulative_regret for r in rows])
        share = np.mean([r.best_share(last) for r in rows])
        tail = np.mean([r.regret[-last:].sum() for r in rows])
        ms = 1e3 * sum(r.seconds for r in rows) / sum(len(r.choices) for r in rows)
        lines.append(
            f"| {policy} | {len(rows)} | {reg.mean():,.0f} ± {reg.std(ddof=1) if len(rows) > 1 else 0.0:,.0f} | "
            f"{reg.min():,.0f}–{reg.max():,.0f} | {tail:,.0f} | {share:.1%} | {ms:.3f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[RunResult]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7", help="comma-separated; seed s uses env seed 1000 + s")
    parser.add_argument("--last", type=int, default=200)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = []
    start = time.perf_counter()
    for seed in seeds:
        env = make_env(args.rounds, 1000 + seed)
        results += [run(policy, env, seed) for policy in POLICIES]
    print(f"# bandit regret: {args.rounds} rounds x {len(seeds)} seeds, schema {SCHEMA_PATH.stem}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, {time.perf_counter() - start:.1f} s")
    print()
    print(table(results, args.last))
    for policy in POLICIES:
        reg = np.mean([r.cumulative_regret for r in results if r.policy == policy])
        print(f"mean_regret_{policy}={reg:.1f}")
    return results


if __name__ == "__main__":
    main()
