"""The parameter controller as a service: the pure controller (``core/params``) over the registry (``store.py``).

Each call loads the (strategy, instrument)'s state, applies one pure step and saves the new state, under a lock
per (strategy, instrument): two requests for the same instrument never interleave, so no decision or outcome is
lost and the decision counter (which seeds the draws) stays one sequence. One process serves; the lock does not
span processes (run one ``huracan serve`` per registry).

* :meth:`ParamService.choose`: the preset for a new order (``GET /param``), its ``config_id`` and why;
* :meth:`ParamService.learn`: a realised reward (``POST /learn/outcome``), either for an open position (its preset
  and decision context are the pinned ones; the pin is released) or for a preset at a given context;
* :meth:`ParamService.register`: a new preset, validated against the schema (``POST /preset/register``, admin);
* :meth:`ParamService.presets`: the presets of an instrument, with each one's posterior mean and observations.

With ``replay_evidence`` (settings ``params.replay_evidence``) a decision also uses what the Engine learned from its
replayed shadow trades (``param_evidence``, the latest ``param_posteriors`` of the instrument): each preset's
posterior given both the live outcomes and the replay's (``Controller.decide(evidence=...)``). The live state keeps
its own outcomes only; the evidence is read afresh at each decision.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from huracan_assets.core.params import (
    BanditSpec,
    ControllerSpec,
    ControllerState,
    GuardrailSpec,
    StrategySchema,
    load_schemas,
)
from huracan_assets.params.store import ParamStore


class UnknownStrategy(LookupError):
    """No schema of that name (404)."""


class OutcomeRefused(ValueError):
    """An outcome that cannot be learned from: an unknown position, a preset that is not offered (409)."""


def controller_spec(cfg) -> ControllerSpec:
    """``ControllerSpec`` from the settings' ``params`` section."""
    bandit = BanditSpec(
        policy=cfg.policy, prior_precision=cfg.prior_precision, exploration=cfg.exploration, epsilon=cfg.epsilon
    )
    guardrails = GuardrailSpec(
        margin=cfg.margin_bps,
        confidence=cfg.confidence,
        max_changes_per_day=cfg.max_changes_per_day,
        kill_drawdown=cfg.kill_drawdown_bps,
    )
    return ControllerSpec(bandit=bandit, guardrails=guardrails, seed=cfg.seed)


class ParamService:
    def __init__(
        self,
        registry_factory: Callable[[], object],
        schemas: Mapping[str, StrategySchema],
        spec: ControllerSpec,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        replay_evidence: bool = True,
    ) -> None:
        self.registry_factory, self.schemas, self.spec, self.clock = registry_factory, dict(schemas), spec, clock
        self.replay_evidence = replay_evidence
        self._store: ParamStore | None = None
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    @classmethod
    def from_folder(cls, registry_factory, folder, spec: ControllerSpec, **kwargs) -> ParamService:
        return cls(registry_factory, load_schemas(folder), spec, **kwargs)

    # -- plumbing ---------------------------------------------------------------------------------
    def store(self) -> ParamStore:
        with self._guard:
            if self._store is None:
                self._store = ParamStore(self.registry_factory())
                for schema in self.schemas.values():  # the schemas' presets, recorded once
                    self._store.save_schema_presets(schema)
            return self._store

    def schema(self, strategy: str) -> StrategySchema:
        if strategy not in self.schemas:
            raise UnknownStrategy(f"no strategy {strategy!r}; known: {', '.join(sorted(self.schemas))}")
        return self.schemas[strategy]

    def _lock(self, strategy: str, instrument: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((strategy, instrument), threading.Lock())

    def _load(self, schema: StrategySchema, instrument: str):
        store = self.store()
        controller = store.controller(schema, instrument, self.spec)
        state = store.load_state(schema.strategy, instrument) or controller.initial_state(instrument)
        return store, controller, state

    # -- the endpoints ----------------------------------------------------------------------------
    def choose(
        self, strategy: str, instrument: str, features: Mapping[str, float], position_id: str | None = None
    ) -> dict[str, Any]:
        """The preset for a new order of ``instrument``; the decision is recorded with its inputs."""
        schema = self.schema(strategy)
        with self._lock(strategy, instrument):
            store, controller, state = self._load(schema, instrument)
            evidence, as_of = self._evidence(store, strategy, instrument)
            decision, state = controller.decide(state, features, self.clock(), position_id, evidence=evidence)
            store.save_state(state)
            store.record_decision(decision)
        return {
            "strategy": strategy,
            "instrument": instrument,
            "config_id": decision.config_id,
            "preset_id": decision.preset_id,
            "params": dict(controller.presets[decision.preset_id]),
            "reason": decision.reason,
            "decision_id": decision.decision_id,
            "position_id": position_id,
            "candidate": decision.candidate,
            "p_beats": decision.p_beats,
            "means": dict(decision.means),
            "killed": state.killed,
            "evidence_as_of": None if as_of is None else as_of.isoformat(),
        }

    def _evidence(self, store: ParamStore, strategy: str, instrument: str):
        """The Engine's replay evidence of (strategy, instrument) and its date, when the service uses it."""
        if not self.replay_evidence:
            return {}, None
        return store.load_evidence(strategy, instrument)

    def learn(
        self,
        strategy: str,
        instrument: str,
        preset_id: str,
        reward: float,
        features: Mapping[str, float] | None = None,
        position_id: str | None = None,
    ) -> dict[str, Any]:
        """A realised reward (net bps) of ``preset_id``: for ``position_id`` (opened with that preset) or at the
        context of ``features``."""
        schema = self.schema(strategy)
        with self._lock(strategy, instrument):
            store, controller, state = self._load(schema, instrument)
            if preset_id not in controller.presets:
                raise OutcomeRefused(f"strategy {strategy!r} offers no preset {preset_id!r} for {instrument}")
            if position_id is not None:
                pin = state.positions.get(position_id)
                if pin is None:
                    raise OutcomeRefused(f"position {position_id!r} of {strategy}/{instrument} has no open config")
                if pin.preset_id != preset_id:
                    raise OutcomeRefused(
                        f"position {position_id!r} was opened with preset {pin.preset_id!r}, not {preset_id!r}"
                    )
                state = controller.settle(state, position_id, reward)
            elif features is None:
                raise ValueError("an outcome needs the position_id it settles, or the features of its context")
            else:
                state = controller.observe(state, preset_id, features, reward)
            store.save_state(state)
        return _summary(state, preset_id)

    def register(self, strategy: str, instrument: str, preset_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """A new preset for ``instrument`` (``*``: every instrument), validated against the schema."""
        schema = self.schema(strategy)
        with self._lock(strategy, instrument):
            normalised = self.store().register_preset(schema, preset_id, params, instrument=instrument)
        return {"strategy": strategy, "instrument": instrument, "preset_id": preset_id, "params": normalised}

    def presets(self, strategy: str, instrument: str) -> dict[str, Any]:
        """Every preset offered for ``instrument``, its config_id and observations, the one in force and why."""
        schema = self.schema(strategy)
        with self._lock(strategy, instrument):
            store, controller, state = self._load(schema, instrument)
            evidence, as_of = self._evidence(store, strategy, instrument)
        return {
            "strategy": strategy,
            "instrument": instrument,
            "safe_preset": schema.safe_preset,
            "current": state.current,
            "killed": state.killed,
            "decisions": state.decisions,
            "features": list(schema.feature_names),
            "evidence_as_of": None if as_of is None else as_of.isoformat(),
            "presets": {
                preset_id: {
                    "params": dict(params),
                    "config_id": controller.config_id(instrument, preset_id),
                    "observations": int(state.posteriors[preset_id].n) if preset_id in state.posteriors else 0,
                    "replay_observations": int(evidence[preset_id].n) if preset_id in evidence else 0,
                }
                for preset_id, params in sorted(controller.presets.items())
            },
        }


def _summary(state: ControllerState, preset_id: str) -> dict[str, Any]:
    post = state.posteriors[preset_id]
    return {
        "strategy": state.strategy,
        "instrument": state.instrument,
        "preset_id": preset_id,
        "observations": int(post.n),
        "cum_reward": state.cum_reward,
        "killed": state.killed,
        "open_positions": len(state.positions),
    }
