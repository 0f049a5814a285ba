"""Guardrails of the parameter controller, and the pure controller that combines them with the bandit.

A live engine asks which preset of a strategy's parameters to use for an instrument (:meth:`Controller.decide`),
tags its order with the returned ``config_id`` and posts the realised reward when the trade settles
(:meth:`Controller.settle`); a replay of shadow trades posts rewards without positions (:meth:`Controller.observe`).
Everything is a value: each call takes a :class:`ControllerState` and returns a new one, which the caller persists
(``huracan_assets/params/store.py``).

**Reward unit.** Rewards are the realised net return of a trade in bps (the shadow trader's ``net_bps``, after
costs). The defaults are in that unit: ``exploration`` (the bandit's ``v``) 100 bps, about the per-trade sd of net
returns (``benchmarks/RESULTS.md``, "Promotions under daily retests": 104 bps); ``margin`` 2 bps, the promotion
gate's ``margin_bps``; ``kill_drawdown`` 2,000 bps of summed trade returns, about 10 % of equity at the balanced
risk preset's half-equity positions.

**The decision**, in this order (the first that applies gives the ``reason``):

1. ``position-pinned``: the position already has a config (a ``position_id`` seen before and not settled): the
   same preset and ``config_id`` again. A config, once issued for a position, is stable for the life of that
   position; new presets apply to new positions only.
2. ``kill-switch``: the drawdown of the cumulative reward path (running peak minus current sum, over every
   realised reward of the (strategy, instrument); a replay's counterfactual rewards of the presets not in force
   teach their posteriors only) reached ``kill_drawdown``: the schema's safe preset, until
   :meth:`Controller.reset_kill`. The move to the safe preset is not subject to the daily limit (safety first), but
   it is counted as a change of its day.
3. The bandit proposes a candidate (:func:`~huracan_assets.core.params.bandit.choose`: a LinTS draw or ε-greedy).
   A candidate equal to the current preset keeps it. Otherwise the candidate replaces the current preset only if
   both of these hold; if not, the current preset stays, with the reason of the first that fails:

   - its posterior expected reward at ``x`` beats the current preset's by ``margin`` with posterior probability at
     least ``confidence`` (:func:`~huracan_assets.core.params.bandit.prob_beats`); else ``hysteresis-hold``;
   - fewer than ``max_changes_per_day`` changes were made on the decision's UTC day; else ``daily-limit``.

   A candidate held by the hysteresis (a draw from an arm with little data, typically) does not block evidence:
   the arm of the largest posterior mean at ``x`` is then put to the same two tests, and replaces the current
   preset if it passes them (reason ``exploit``).

   The reason of a decision that keeps or changes to the bandit's preset is ``exploit`` when the preset is also
   the arm of the largest posterior mean at ``x``, ``explore`` otherwise.

**Start.** A new (strategy, instrument) starts on the schema's safe preset (:meth:`Controller.initial_state`; so
does a state whose current preset is no longer offered), and leaves it only through step 3: without evidence, the
safe settings. The hysteresis makes the live controller conservative by design: an arm with little data cannot
beat another by the margin with 90 % posterior probability, so live exploration is rare, and the posteriors are
meant to learn mostly from replays of every preset's shadow trades (:meth:`Controller.observe`), where every arm
is observed.

**config_id** (:func:`config_id`): ``"<strategy>:<instrument>:<preset_id>:<h>"`` with ``h`` the first 12 hex
characters of the SHA-256 of the preset's canonical parameters (:func:`~huracan_assets.core.params.schema.
params_hash`). It is a function of those four alone: the same preset of the same instrument has the same id in
every process and every day, and a preset id whose parameters changed (which registration refuses) would get
another id. Strategy and preset ids cannot hold ``:`` and the hash is hex, so the instrument is whatever lies
between the first ``:`` and the last two (:func:`parse_config_id`).

**Determinism.** Decision number ``k`` of a (strategy, instrument) draws from ``decision_rng(seed, strategy,
instrument, k)``; every :meth:`Controller.decide` call counts, pinned ones included. Times must not go backwards
(the day's change count would otherwise restart).

Pure: no I/O; the caller supplies the time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any

import numpy as np

from huracan_assets.core.params.bandit import (
    ArmPosterior,
    BanditSpec,
    choose,
    combine,
    decision_rng,
    greedy_arm,
    posterior_from_dict,
    posterior_means,
    posterior_to_dict,
    prob_beats,
    update,
)
from huracan_assets.core.params.schema import (
    PARAMS_HASH_CHARS,
    ParamValue,
    StrategySchema,
    params_hash,
    validate_new_preset,
)

REASONS = ("explore", "exploit", "hysteresis-hold", "daily-limit", "kill-switch", "position-pinned")
STATE_VERSION = 1


def _real(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float | np.integer | np.floating)


@dataclass(frozen=True)
class GuardrailSpec:
    """Hysteresis, daily change limit and kill switch (module docstring; reward units: bps)."""

    margin: float = 2.0
    confidence: float = 0.9
    max_changes_per_day: int = 2
    kill_drawdown: float = 2000.0

    def __post_init__(self) -> None:
        if not _real(self.margin) or not math.isfinite(self.margin) or self.margin < 0:
            raise ValueError(f"GuardrailSpec.margin must be a finite number >= 0, got {self.margin!r}")
        if not _real(self.confidence) or not 0 < self.confidence < 1:
            raise ValueError(f"GuardrailSpec.confidence must be in (0, 1), got {self.confidence!r}")
        if isinstance(self.max_changes_per_day, bool) or not isinstance(self.max_changes_per_day, int):
            raise ValueError(f"GuardrailSpec.max_changes_per_day must be an int, got {self.max_changes_per_day!r}")
        if self.max_changes_per_day < 0:
            raise ValueError(f"GuardrailSpec.max_changes_per_day must be >= 0, got {self.max_changes_per_day!r}")
        if not _real(self.kill_drawdown) or not math.isfinite(self.kill_drawdown) or self.kill_drawdown <= 0:
            raise ValueError(f"GuardrailSpec.kill_drawdown must be a finite number > 0, got {self.kill_drawdown!r}")


DEFAULT_BANDIT = BanditSpec(exploration=100.0)  # v = 100 bps: about the per-trade sd of net returns
DEFAULT_GUARDRAILS = GuardrailSpec()


@dataclass(frozen=True)
class ControllerSpec:
    """The bandit, the guardrails and the seed of the decisions' generators."""

    bandit: BanditSpec = DEFAULT_BANDIT
    guardrails: GuardrailSpec = DEFAULT_GUARDRAILS
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"ControllerSpec.seed must be an int >= 0, got {self.seed!r}")


@dataclass(frozen=True)
class Pin:
    """An open position's config, and the context it was decided at (its reward updates the posterior there)."""

    preset_id: str
    config_id: str
    x: tuple[float, ...]


@dataclass(frozen=True)
class ControllerState:
    """Everything the controller remembers for one (strategy, instrument); read-only mappings."""

    strategy: str
    instrument: str
    posteriors: Mapping[str, ArmPosterior] = field(default_factory=dict)
    current: str | None = None  # the preset in force for new positions
    decisions: int = 0  # decisions made so far: the next one's generator number
    last_at: datetime | None = None
    day: date | None = None  # UTC day of changes_today
    changes_today: int = 0
    cum_reward: float = 0.0  # sum of the rewards posted
    peak_reward: float = 0.0  # its running peak (0 at the start, reset by reset_kill)
    killed: bool = False
    positions: Mapping[str, Pin] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "posteriors", MappingProxyType(dict(self.posteriors)))
        object.__setattr__(self, "positions", MappingProxyType(dict(self.positions)))

    @property
    def drawdown(self) -> float:
        return self.peak_reward - self.cum_reward

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (floats as Python floats, times as ISO strings)."""
        return {
            "version": STATE_VERSION,
            "strategy": self.strategy,
            "instrument": self.instrument,
            "posteriors": {arm: posterior_to_dict(post) for arm, post in sorted(self.posteriors.items())},
            "current": self.current,
            "decisions": self.decisions,
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
            "day": None if self.day is None else self.day.isoformat(),
            "changes_today": self.changes_today,
            "cum_reward": self.cum_reward,
            "peak_reward": self.peak_reward,
            "killed": self.killed,
            "positions": {
                pid: {"preset_id": pin.preset_id, "config_id": pin.config_id, "x": list(pin.x)}
                for pid, pin in sorted(self.positions.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ControllerState:
        """The inverse of :meth:`to_dict`."""
        if data.get("version", STATE_VERSION) != STATE_VERSION:
            raise ValueError(f"controller state version {data.get('version')!r} is not {STATE_VERSION}")
        return cls(
            strategy=data["strategy"],
            instrument=data["instrument"],
            posteriors={arm: posterior_from_dict(post) for arm, post in data["posteriors"].items()},
            current=data["current"],
            decisions=int(data["decisions"]),
            last_at=None if data["last_at"] is None else datetime.fromisoformat(data["last_at"]),
            day=None if data["day"] is None else date.fromisoformat(data["day"]),
            changes_today=int(data["changes_today"]),
            cum_reward=float(data["cum_reward"]),
            peak_reward=float(data["peak_reward"]),
            killed=bool(data["killed"]),
            positions={
                pid: Pin(pin["preset_id"], pin["config_id"], tuple(float(v) for v in pin["x"]))
                for pid, pin in data["positions"].items()
            },
        )


@dataclass(frozen=True)
class Decision:
    """One answer of the controller: the preset and its config_id, why, and what it was decided on."""

    seq: int  # the (strategy, instrument)'s decision number
    at: datetime
    strategy: str
    instrument: str
    preset_id: str
    config_id: str
    reason: str  # one of REASONS
    position_id: str | None
    features: Mapping[str, float]
    candidate: str | None  # the bandit's proposal (None when pinned or killed)
    scores: Mapping[str, float]  # the policy's scores (LinTS draws or posterior means); empty when pinned or killed
    means: Mapping[str, float]  # posterior mean rewards at x
    p_beats: float | None  # P(candidate beats current by margin), when a change was considered

    @property
    def decision_id(self) -> str:
        """Unique per (strategy, instrument, decision number)."""
        return f"{self.strategy}:{self.instrument}:{self.seq}"


def _check_instrument(instrument: object) -> str:
    if not isinstance(instrument, str) or not instrument or instrument != instrument.strip():
        raise ValueError(f"instrument must be a non-empty string without surrounding spaces, got {instrument!r}")
    return instrument


def config_id(strategy: str, instrument: str, preset_id: str, params: Mapping[str, ParamValue]) -> str:
    """The stable id of a preset of an instrument (module docstring)."""
    _check_instrument(instrument)
    return f"{strategy}:{instrument}:{preset_id}:{params_hash(params)[:PARAMS_HASH_CHARS]}"


def parse_config_id(value: str) -> tuple[str, str, str, str]:
    """``(strategy, instrument, preset_id, hash prefix)`` of a :func:`config_id`."""
    strategy, _, rest = value.partition(":")
    parts = rest.rsplit(":", 2)
    if len(parts) != 3 or not all((strategy, *parts)):
        raise ValueError(f"not a config_id: {value!r}")
    instrument, preset_id, digest = parts
    return strategy, instrument, preset_id, digest


@dataclass(frozen=True)
class _Step:
    """What one decision does: the preset in force and the day's changes after it, the answer and its reason."""

    current: str | None
    changes: int
    preset_id: str = ""
    reason: str = ""
    config_id: str | None = None
    candidate: str | None = None
    scores: Mapping[str, float] = field(default_factory=dict)
    p_beats: float | None = None


class Controller:
    """The bandit and the guardrails of one strategy (its schema's presets plus any registered ones), for any of its
    instruments; pure: every method returns a new state."""

    def __init__(
        self,
        schema: StrategySchema,
        spec: ControllerSpec | None = None,
        registered: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.schema = schema
        self.spec = spec or ControllerSpec()
        presets: dict[str, dict[str, ParamValue]] = dict(schema.presets)
        for preset_id, params in sorted((registered or {}).items()):
            presets[preset_id] = validate_new_preset(schema, preset_id, params)
        self.presets: Mapping[str, Mapping[str, ParamValue]] = MappingProxyType(presets)

    @property
    def strategy(self) -> str:
        return self.schema.strategy

    def config_id(self, instrument: str, preset_id: str) -> str:
        return config_id(self.strategy, instrument, preset_id, self.presets[preset_id])

    def initial_state(self, instrument: str) -> ControllerState:
        """Every preset at its prior, the safe preset in force, no decision yet."""
        _check_instrument(instrument)
        prior = ArmPosterior.prior(self.schema.dim, self.spec.bandit.prior_precision)
        posteriors = dict.fromkeys(self.presets, prior)
        return ControllerState(self.strategy, instrument, posteriors=posteriors, current=self.schema.safe_preset)

    def _arms(
        self, state: ControllerState, evidence: Mapping[str, ArmPosterior] | None = None
    ) -> dict[str, ArmPosterior]:
        """The posteriors of the controller's presets (a preset registered after the state was saved: its prior),
        each combined with its ``evidence`` when given (:meth:`decide`)."""
        prior = ArmPosterior.prior(self.schema.dim, self.spec.bandit.prior_precision)
        arms = {arm: state.posteriors.get(arm, prior) for arm in self.presets}
        for arm, post in (evidence or {}).items():
            if arm in arms and post.dim == self.schema.dim:
                arms[arm] = combine(arms[arm], post, self.spec.bandit.prior_precision)
        return arms

    def evidence_arms(
        self, state: ControllerState, evidence: Mapping[str, ArmPosterior] | None
    ) -> dict[str, ArmPosterior]:
        """The posteriors a decision uses: the state's, each with its evidence (:meth:`decide`)."""
        return self._arms(state, evidence)

    def _check_state(self, state: ControllerState) -> None:
        if state.strategy != self.strategy:
            raise ValueError(f"a state of strategy {state.strategy!r} given to the {self.strategy!r} controller")

    def decide(
        self,
        state: ControllerState,
        features: Mapping[str, float],
        at: datetime,
        position_id: str | None = None,
        evidence: Mapping[str, ArmPosterior] | None = None,
    ) -> tuple[Decision, ControllerState]:
        """The preset for a new order of ``state.instrument`` at ``at`` (module docstring), and the new state.

        ``evidence``: posteriors of the same presets learned elsewhere from the same prior (the Engine's replay of
        its shadow trades, ``core/params/replay.py``); the decision uses each preset's posterior given both its own
        observations and the evidence (:func:`~huracan_assets.core.params.bandit.combine`). The state keeps its
        own observations only, so evidence replaced the next day is never counted twice."""
        self._check_state(state)
        if not isinstance(at, datetime) or at.tzinfo is None:
            raise ValueError(f"at must be a timezone-aware datetime, got {at!r}")
        if state.last_at is not None and at < state.last_at:
            raise ValueError(f"decision at {at.isoformat()} is before the previous one at {state.last_at.isoformat()}")
        x = self.schema.context(features)
        day = at.astimezone(UTC).date()
        changes = state.changes_today if day == state.day else 0
        arms = self._arms(state, evidence)
        means = posterior_means(arms, x)
        if position_id is not None and position_id in state.positions:
            pin = state.positions[position_id]
            step = _Step(state.current, changes, pin.preset_id, "position-pinned", config_id=pin.config_id)
        elif state.killed:
            safe = self.schema.safe_preset
            step = _Step(safe, changes + int(state.current != safe), safe, "kill-switch")
        else:
            step = self._bandit_step(state, arms, x, means, changes)
        decision = Decision(
            seq=state.decisions,
            at=at,
            strategy=self.strategy,
            instrument=state.instrument,
            preset_id=step.preset_id,
            config_id=step.config_id or self.config_id(state.instrument, step.preset_id),
            reason=step.reason,
            position_id=position_id,
            features=MappingProxyType({k: float(features[k]) for k in self.schema.feature_names}),
            candidate=step.candidate,
            scores=MappingProxyType(step.scores),
            means=MappingProxyType(means),
            p_beats=step.p_beats,
        )
        positions = state.positions
        if position_id is not None and step.reason != "position-pinned":
            pin = Pin(decision.preset_id, decision.config_id, tuple(float(v) for v in x))
            positions = {**positions, position_id: pin}
        new = replace(
            state,
            current=step.current,
            decisions=state.decisions + 1,
            last_at=at,
            day=day,
            changes_today=step.changes,
            positions=positions,
        )
        return decision, new

    def _bandit_step(
        self,
        state: ControllerState,
        arms: Mapping[str, ArmPosterior],
        x: np.ndarray,
        means: Mapping[str, float],
        changes: int,
    ) -> _Step:
        """The bandit's candidate through the hysteresis and the daily limit (module docstring, step 3)."""
        rng = decision_rng(self.spec.seed, self.strategy, state.instrument, state.decisions)
        candidate, scores = choose(arms, x, rng, self.spec.bandit)
        current, reason, p = state.current, None, None
        if current is None or current not in arms:  # none yet, or a preset no longer offered: the safe one
            current = self.schema.safe_preset
        if candidate != current:
            current, changes, reason, p = self._move(arms, x, current, candidate, changes)
            greedy = greedy_arm(means)
            if reason == "hysteresis-hold" and greedy not in (candidate, current):
                moved = self._move(arms, x, current, greedy, changes)
                if moved[2] != "hysteresis-hold":  # it moved, or only the daily limit stopped it
                    current, changes, reason, p = moved
        if reason is None:  # the bandit's preset is in force: kept or changed to
            reason = "exploit" if current == greedy_arm(means) else "explore"
        return _Step(current, changes, current, reason, candidate=candidate, scores=scores, p_beats=p)

    def _move(
        self, arms: Mapping[str, ArmPosterior], x: np.ndarray, current: str, candidate: str, changes: int
    ) -> tuple[str, int, str | None, float]:
        """(preset in force, changes, the reason it was held or None when it moved, P(candidate beats current))."""
        g = self.spec.guardrails
        p = prob_beats(arms[candidate], arms[current], x, g.margin, self.spec.bandit.exploration)
        if p < g.confidence:
            return current, changes, "hysteresis-hold", p
        if changes >= g.max_changes_per_day:
            return current, changes, "daily-limit", p
        return candidate, changes + 1, None, p

    def observe(
        self,
        state: ControllerState,
        preset_id: str,
        features: Mapping[str, float],
        reward: float,
        *,
        realised: bool = True,
    ) -> ControllerState:
        """The state after a reward of ``preset_id`` at the context of ``features``. ``realised``: the reward was
        earned (a live trade, or a replayed trade of the preset in force); a counterfactual one (a replayed trade of
        another preset) teaches its posterior only and leaves the reward path, so the kill switch, alone."""
        self._check_state(state)
        return self._observe(state, preset_id, self.schema.context(features), reward, realised=realised)

    def settle(self, state: ControllerState, position_id: str, reward: float) -> ControllerState:
        """The state after a position's realised reward: its preset learns at the position's decision context, and
        the position's pin is released."""
        self._check_state(state)
        pin = state.positions.get(position_id)
        if pin is None:
            raise ValueError(f"position {position_id!r} of {state.strategy}/{state.instrument} has no open config")
        new = self._observe(state, pin.preset_id, np.asarray(pin.x), reward)
        return replace(new, positions={k: v for k, v in new.positions.items() if k != position_id})

    def _observe(
        self, state: ControllerState, preset_id: str, x: np.ndarray, reward: float, *, realised: bool = True
    ) -> ControllerState:
        if preset_id not in self.presets:
            raise ValueError(f"strategy {self.strategy!r} has no preset {preset_id!r}")
        arms = {**state.posteriors, **{k: v for k, v in self._arms(state).items() if k not in state.posteriors}}
        arms[preset_id] = update(arms[preset_id], x, reward)
        if not realised:
            return replace(state, posteriors=arms)
        cum = state.cum_reward + float(reward)
        peak = max(state.peak_reward, cum)
        killed = state.killed or peak - cum >= self.spec.guardrails.kill_drawdown
        return replace(state, posteriors=arms, cum_reward=cum, peak_reward=peak, killed=killed)

    def reset_kill(self, state: ControllerState) -> ControllerState:
        """Lift the kill switch: the drawdown restarts from the current reward sum."""
        self._check_state(state)
        return replace(state, killed=False, peak_reward=state.cum_reward)
