"""The contextual bandit of the parameter controller: linear Thompson sampling (LinTS) or ε-greedy over the presets
of one (strategy, instrument), with a Gaussian posterior per preset (arm).

**Model.** The expected reward of arm ``i`` at context ``x`` (``[1, features...]``, :meth:`StrategySchema.context`)
is linear, ``E[r | x, i] = xᵀθ_i``, with Gaussian noise of scale ``v``. With the prior ``θ_i ~ N(0, (v² / λ) I)``
the posterior after the arm's observations ``(x_t, r_t)`` is Gaussian (Bayesian ridge regression):

    A_i = λ I + Σ_t x_t x_tᵀ,   b_i = Σ_t r_t x_t,   θ_i | data ~ N(A_i⁻¹ b_i, v² A_i⁻¹).

``λ`` (``prior_precision``) is the prior precision in units of the noise; ``v`` (``exploration``) scales the
posterior covariance: the reward's noise scale, or more to explore more (Agrawal & Goyal 2013 use
``v = R sqrt(24 d ln(1/δ) / ε)`` for their regret bound; the posterior itself is ``v = R``, the noise sd). Rewards
are in the caller's unit (the controller's: net bps of a trade), and ``v`` must be in that unit.

**Policies** (:func:`choose`): ``lints`` draws ``θ̃_i`` from each arm's posterior and picks the largest ``xᵀθ̃_i``;
``egreedy`` picks the largest posterior mean ``xᵀθ̂_i``, except with probability ``ε`` a uniformly random arm. Arms
are taken in sorted id order and ties go to the first, so a choice does not depend on the mapping's order.

**Numerics.** ``A`` is symmetric positive definite (λ > 0); it is never inverted. The mean solves ``A θ̂ = b``
through its Cholesky factor ``A = L Lᵀ`` (``scipy.linalg.cho_factor`` / ``cho_solve``), and a draw is
``θ̃ = θ̂ + v L⁻ᵀ z`` with ``z ~ N(0, I)`` (one triangular solve): its covariance is ``v² L⁻ᵀ L⁻¹ = v² A⁻¹``.
The predictive variance ``v² xᵀA⁻¹x = v² ‖L⁻¹x‖²`` is one triangular solve too. Updates are rank one
(``A + x xᵀ``), so ``A`` stays exactly symmetric.

**Determinism.** :func:`decision_rng` derives each decision's generator from ``(seed, strategy, instrument,
counter)`` through ``numpy.random.SeedSequence``: the strategy and instrument enter as the first 8 bytes of their
SHA-256 (not Python's salted ``hash``), the counter is the (strategy, instrument)'s decision number. The same seed
and the same sequence of decisions and outcomes therefore give the same choices, in any process, whatever else the
process did in between; another seed gives independent draws. Each decision draws from its own generator, in
sorted arm order.

**Hysteresis.** :func:`prob_beats` is the posterior probability that arm i's expected reward at ``x`` beats arm j's
by ``margin``: the posteriors of two arms are independent, so ``xᵀθ_i - xᵀθ_j ~ N(m_i - m_j, s_i² + s_j²)`` with
``m = xᵀθ̂`` and ``s² = v² xᵀA⁻¹x``, and the probability is ``P(N > margin)`` (``scipy.stats.norm.sf``).

**Serialization.** :func:`posterior_to_dict` / :func:`posterior_from_dict` map an :class:`ArmPosterior` to and from
a plain JSON-able dict (lists of Python floats: JSON round-trips a float64 exactly).

References: S. Agrawal, N. Goyal (2013), Thompson sampling for contextual bandits with linear payoffs, ICML;
L. Li, W. Chu, J. Langford, R. Schapire (2010), A contextual-bandit approach to personalized news article
recommendation, WWW (the ridge posterior ``A``, ``b``).

Pure: numpy and scipy, no I/O.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.stats import norm

POSTERIOR_VERSION = 1  # format of posterior_to_dict


@dataclass(frozen=True)
class BanditSpec:
    """The policy and its parameters (module docstring)."""

    policy: Literal["lints", "egreedy"] = "lints"
    prior_precision: float = 1.0  # λ
    exploration: float = 1.0  # v, in reward units
    epsilon: float = 0.1  # egreedy: share of uniformly random choices

    def __post_init__(self) -> None:
        if self.policy not in ("lints", "egreedy"):
            raise ValueError(f"BanditSpec.policy must be 'lints' or 'egreedy', got {self.policy!r}")
        for name in ("prior_precision", "exploration"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"BanditSpec.{name} must be a finite number > 0, got {value!r}")
        if not _is_real(self.epsilon) or not 0 <= self.epsilon <= 1:
            raise ValueError(f"BanditSpec.epsilon must be in [0, 1], got {self.epsilon!r}")


def _is_real(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.float64, copy=True)
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class ArmPosterior:
    """One arm's Gaussian posterior: precision ``A`` (d x d, λI + Σ x xᵀ), ``b`` (Σ r x) and ``n`` observations.
    A value: the arrays are read-only copies and :func:`update` returns a new posterior."""

    A: np.ndarray
    b: np.ndarray
    n: int = 0

    def __post_init__(self) -> None:
        a, b = _frozen(self.A), _frozen(self.b)
        if b.ndim != 1 or b.size < 1 or a.shape != (b.size, b.size):
            raise ValueError(f"ArmPosterior: A must be d x d and b of length d, got {a.shape} and {b.shape}")
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ValueError("ArmPosterior: A and b must be finite")
        if not np.array_equal(a, a.T):
            raise ValueError("ArmPosterior: A must be symmetric")
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 0:
            raise ValueError(f"ArmPosterior.n must be an int >= 0, got {self.n!r}")
        object.__setattr__(self, "A", a)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "n", int(self.n))

    @classmethod
    def prior(cls, dim: int, prior_precision: float) -> ArmPosterior:
        """No observation yet: ``A = λ I``, ``b = 0``."""
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        if not _is_real(prior_precision) or not math.isfinite(prior_precision) or prior_precision <= 0:
            raise ValueError(f"prior_precision must be a finite number > 0, got {prior_precision!r}")
        return cls(float(prior_precision) * np.eye(dim), np.zeros(dim), 0)

    @property
    def dim(self) -> int:
        return self.b.size

    def _chol(self) -> tuple[np.ndarray, bool]:
        return cho_factor(self.A, lower=True, check_finite=False)

    def mean(self) -> np.ndarray:
        """The posterior mean ``θ̂ = A⁻¹ b``."""
        return cho_solve(self._chol(), self.b, check_finite=False)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArmPosterior):
            return NotImplemented
        return self.n == other.n and np.array_equal(self.A, other.A) and np.array_equal(self.b, other.b)

    __hash__ = None  # type: ignore[assignment]


def _check_x(x: np.ndarray, dim: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (dim,) or not np.isfinite(x).all():
        raise ValueError(f"the context must be {dim} finite numbers, got {x!r}")
    return x


def update(post: ArmPosterior, x: np.ndarray, reward: float) -> ArmPosterior:
    """The posterior after one more observation ``(x, reward)`` of this arm."""
    x = _check_x(x, post.dim)
    if not _is_real(reward) or not math.isfinite(reward):
        raise ValueError(f"the reward must be a finite number, got {reward!r}")
    return ArmPosterior(post.A + np.outer(x, x), post.b + float(reward) * x, post.n + 1)


def combine(live: ArmPosterior, evidence: ArmPosterior, prior_precision: float) -> ArmPosterior:
    """The posterior from both data sets: two posteriors of the same prior ``λI`` hold the sums of their own
    observations, so the joint one is ``A = A_live + A_evidence - λI``, ``b = b_live + b_evidence``, exactly the
    posterior of every observation of both (the prior counted once)."""
    if live.dim != evidence.dim:
        raise ValueError(f"cannot combine posteriors of dimensions {live.dim} and {evidence.dim}")
    a = live.A + evidence.A - float(prior_precision) * np.eye(live.dim)
    return ArmPosterior(a, live.b + evidence.b, live.n + evidence.n)


def predictive(post: ArmPosterior, x: np.ndarray, exploration: float) -> tuple[float, float]:
    """Mean and standard deviation of the arm's expected reward ``xᵀθ`` at ``x`` under its posterior."""
    x = _check_x(x, post.dim)
    c, lower = post._chol()
    mean = float(x @ cho_solve((c, lower), post.b, check_finite=False))
    w = solve_triangular(c, x, lower=lower, check_finite=False)  # L⁻¹x: xᵀA⁻¹x = ‖L⁻¹x‖²
    return mean, float(exploration) * float(np.sqrt(w @ w))


def sample_theta(post: ArmPosterior, exploration: float, rng: np.random.Generator) -> np.ndarray:
    """One draw ``θ̃ ~ N(A⁻¹b, v² A⁻¹)``: ``θ̂ + v L⁻ᵀ z``."""
    c, lower = post._chol()
    mean = cho_solve((c, lower), post.b, check_finite=False)
    z = rng.standard_normal(post.dim)
    return mean + float(exploration) * solve_triangular(c, z, lower=lower, trans="T", check_finite=False)


def posterior_means(posteriors: Mapping[str, ArmPosterior], x: np.ndarray) -> dict[str, float]:
    """Each arm's posterior mean reward ``xᵀθ̂`` at ``x``, in sorted arm order."""
    return {arm: float(_check_x(x, post.dim) @ post.mean()) for arm, post in sorted(posteriors.items())}


def greedy_arm(scores: Mapping[str, float]) -> str:
    """The arm of the largest score; ties to the first in sorted order."""
    arms = sorted(scores)
    return arms[int(np.argmax([scores[a] for a in arms]))]


def choose(
    posteriors: Mapping[str, ArmPosterior], x: np.ndarray, rng: np.random.Generator, spec: BanditSpec
) -> tuple[str, dict[str, float]]:
    """The policy's arm at ``x`` and its scores: LinTS's sampled rewards ``xᵀθ̃_i``, or ε-greedy's posterior means
    (module docstring)."""
    if not posteriors:
        raise ValueError("choose needs at least one arm")
    arms = sorted(posteriors)
    if spec.policy == "lints":
        scores = {
            arm: float(_check_x(x, posteriors[arm].dim) @ sample_theta(posteriors[arm], spec.exploration, rng))
            for arm in arms
        }
        return greedy_arm(scores), scores
    scores = posterior_means(posteriors, x)
    if rng.random() < spec.epsilon:
        return arms[int(rng.integers(len(arms)))], scores
    return greedy_arm(scores), scores


def prob_beats(post_i: ArmPosterior, post_j: ArmPosterior, x: np.ndarray, margin: float, exploration: float) -> float:
    """Posterior probability that arm i's expected reward at ``x`` exceeds arm j's by more than ``margin``."""
    m_i, s_i = predictive(post_i, x, exploration)
    m_j, s_j = predictive(post_j, x, exploration)
    return float(norm.sf(float(margin), loc=m_i - m_j, scale=math.hypot(s_i, s_j)))


def _text_key(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def decision_rng(seed: int, strategy: str, instrument: str, counter: int) -> np.random.Generator:
    """The generator of the (strategy, instrument)'s decision number ``counter`` (module docstring)."""
    for name, value in (("seed", seed), ("counter", counter)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    entropy = [int(seed), _text_key(strategy), _text_key(instrument), int(counter)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def posterior_to_dict(post: ArmPosterior) -> dict[str, Any]:
    """A JSON-able dict: ``A`` as rows of floats, ``b`` as floats, ``n``, and the format ``version``."""
    return {"A": post.A.tolist(), "b": post.b.tolist(), "n": post.n, "version": POSTERIOR_VERSION}


def posterior_from_dict(data: Mapping[str, Any]) -> ArmPosterior:
    """The inverse of :func:`posterior_to_dict` (a missing version is the current one)."""
    version = data.get("version", POSTERIOR_VERSION)
    if version != POSTERIOR_VERSION:
        raise ValueError(f"posterior format version {version!r} is not {POSTERIOR_VERSION}")
    return ArmPosterior(np.asarray(data["A"], dtype=np.float64), np.asarray(data["b"], dtype=np.float64), data["n"])
