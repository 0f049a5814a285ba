"""The parameter controller's persistence: presets, posteriors, controller state and decisions in the registry.

The pure types live in :mod:`huracan_assets.core.params`; this maps them to and from the registry tables of
migration 0007 through :class:`~huracan_assets.registry.client.Registry` (``upsert`` / ``select``):

- ``presets``: one row per (strategy, instrument, preset): the schema's presets under instrument ``"*"`` (every
  instrument, ``source`` ``schema``), a preset registered for one instrument (or ``"*"``) with ``source`` ``admin``.
  Presets are immutable: registering an id that exists is refused (a ``config_id`` must keep its meaning).
- ``posteriors``: one row per (strategy, instrument, preset): ``A`` (rows of floats), ``b``, ``n`` and the format
  ``version`` of :func:`~huracan_assets.core.params.bandit.posterior_to_dict`.
- ``param_state``: one row per (strategy, instrument): the rest of :class:`ControllerState` (current preset,
  decision counter, the day's changes, the reward path and kill switch, the open positions' pins) as its
  ``to_dict()`` without the posteriors.
- ``param_decisions``: one row per decision (``Decision.decision_id``, so recording it twice leaves one row).
- ``param_evidence`` (migration 0008): per (strategy, instrument, preset), the posterior the Engine learned from its
  replayed shadow trades (asset ``param_posteriors``), the latest date only; the service adds it to the live
  posteriors when it decides.

Floats go through JSON as Python's shortest repr, which parses back to the same float64, so a state saved and
loaded is equal to the original bit for bit, and the next decision is the same (the tests check it across
processes). :meth:`ParamStore.save_state` writes the posteriors, then the state row (two transactions): a crash in
between leaves posteriors one step ahead of the counter, which the next save repairs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from huracan_assets.core.params.bandit import ArmPosterior, posterior_from_dict
from huracan_assets.core.params.guardrails import STATE_VERSION, Controller, ControllerSpec, ControllerState, Decision
from huracan_assets.core.params.schema import PresetError, StrategySchema, check_params, validate_new_preset
from huracan_assets.registry.client import Registry

ALL_INSTRUMENTS = "*"


class ParamStore:
    """Loads and saves the parameter controller's presets, state and decisions through one :class:`Registry`."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # -- presets --------------------------------------------------------------------------------
    def save_schema_presets(self, schema: StrategySchema, at: datetime | None = None) -> int:
        """Record the schema's presets (instrument ``"*"``, source ``schema``) that are not recorded yet; a recorded
        one whose parameters differ is refused. Returns how many were added."""
        known = {r["preset_id"]: r for r in self.registry.select("presets", strategy=schema.strategy)}
        rows = []
        for preset_id, params in schema.presets.items():
            row = known.get(preset_id)
            if row is not None:
                if dict(row["params"]) != params:
                    raise PresetError(
                        f"strategy {schema.strategy!r}, preset {preset_id!r}: recorded with {row['params']}, "
                        f"the schema now says {params} (presets are immutable: give it a new id)"
                    )
                continue
            rows.append(_preset_row(schema.strategy, ALL_INSTRUMENTS, preset_id, params, at, "schema"))
        return self.registry.upsert("presets", rows)

    def register_preset(
        self,
        schema: StrategySchema,
        preset_id: str,
        params: Mapping[str, Any],
        *,
        instrument: str = ALL_INSTRUMENTS,
        at: datetime | None = None,
        source: str = "admin",
    ) -> dict[str, int | float]:
        """Validate a new preset against the schema and record it (``POST /preset/register``); its normalised
        parameters, or :class:`PresetError` (out of bounds, unknown parameter, id taken for the strategy)."""
        normalised = validate_new_preset(schema, preset_id, params)
        taken = self.registry.select("presets", strategy=schema.strategy, preset_id=preset_id)
        if taken:
            raise PresetError(
                f"strategy {schema.strategy!r}, preset {preset_id!r}: the id is taken (presets are immutable)"
            )
        self.registry.upsert("presets", [_preset_row(schema.strategy, instrument, preset_id, normalised, at, source)])
        return normalised

    def registered_presets(self, schema: StrategySchema, instrument: str) -> dict[str, dict[str, int | float]]:
        """The presets registered beyond the schema's for ``instrument`` (its own and the ``"*"`` ones), checked
        against the schema again (bounds may have narrowed since)."""
        rows = self.registry.select("presets", strategy=schema.strategy, instrument=[instrument, ALL_INSTRUMENTS])
        return {
            r["preset_id"]: check_params(schema.strategy, schema.parameters, r["preset_id"], r["params"])
            for r in sorted(rows, key=lambda r: r["preset_id"])
            if r["preset_id"] not in schema.presets
        }

    def controller(self, schema: StrategySchema, instrument: str, spec: ControllerSpec | None = None) -> Controller:
        """The controller of ``schema`` with the presets registered for ``instrument``."""
        return Controller(schema, spec, registered=self.registered_presets(schema, instrument))

    # -- state ----------------------------------------------------------------------------------
    def save_state(self, state: ControllerState, at: datetime | None = None) -> None:
        """Write every posterior of the state and its other fields (module docstring)."""
        at = at or datetime.now(UTC)
        data = state.to_dict()
        posteriors = data.pop("posteriors")
        rows = [
            {
                "strategy": state.strategy,
                "instrument": state.instrument,
                "preset_id": preset_id,
                "A": post["A"],
                "b": post["b"],
                "n": post["n"],
                "updated_at": at,
                "version": post["version"],
            }
            for preset_id, post in posteriors.items()
        ]
        self.registry.upsert("posteriors", rows)
        self.registry.upsert(
            "param_state",
            [
                {
                    "strategy": state.strategy,
                    "instrument": state.instrument,
                    "state": data,
                    "updated_at": at,
                    "version": STATE_VERSION,
                }
            ],
        )

    def load_state(self, strategy: str, instrument: str) -> ControllerState | None:
        """The saved state of (strategy, instrument), or None if none was saved."""
        [row] = self.registry.select("param_state", strategy=strategy, instrument=instrument) or [None]
        if row is None:
            return None
        data = dict(row["state"])
        data["posteriors"] = {
            p["preset_id"]: {"A": p["A"], "b": p["b"], "n": p["n"], "version": p["version"]}
            for p in self.registry.select("posteriors", strategy=strategy, instrument=instrument)
        }
        return ControllerState.from_dict(data)

    def load_posteriors(self, strategy: str, instrument: str) -> dict[str, ArmPosterior]:
        """The saved posteriors of (strategy, instrument) by preset id."""
        return {
            p["preset_id"]: posterior_from_dict({"A": p["A"], "b": p["b"], "n": p["n"], "version": p["version"]})
            for p in self.registry.select("posteriors", strategy=strategy, instrument=instrument)
        }

    # -- the Engine's evidence --------------------------------------------------------------------
    def publish_evidence(
        self,
        instrument: str,
        as_of: date,
        posteriors: Mapping[str, Mapping[str, Mapping[str, Any]]],
        model_id: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Record ``param_posteriors[as_of]`` of ``instrument`` (strategy -> preset -> posterior dict) as the
        evidence of its presets. A strategy whose recorded evidence is of a later date keeps it (a backfill of an
        old date never replaces newer evidence). Returns the rows written."""
        rows = []
        for strategy, presets in sorted(posteriors.items()):
            recorded = self.registry.select("param_evidence", strategy=strategy, instrument=instrument)
            if any(r["as_of"] > as_of for r in recorded):
                continue
            for preset_id, post in sorted(presets.items()):
                checked = posterior_from_dict(post)  # a malformed posterior is refused here, not served
                rows.append(
                    {
                        "strategy": strategy,
                        "instrument": instrument,
                        "preset_id": preset_id,
                        "as_of": as_of,
                        "A": checked.A.tolist(),
                        "b": checked.b.tolist(),
                        "n": checked.n,
                        "model_id": model_id,
                        "updated_at": at or datetime.now(UTC),
                        "version": post.get("version", 1),
                    }
                )
        return self.registry.upsert("param_evidence", rows)

    def load_evidence(self, strategy: str, instrument: str) -> tuple[dict[str, ArmPosterior], date | None]:
        """The recorded evidence of (strategy, instrument) by preset, and its date (None: none recorded)."""
        rows = self.registry.select("param_evidence", strategy=strategy, instrument=instrument)
        posteriors = {
            r["preset_id"]: posterior_from_dict({"A": r["A"], "b": r["b"], "n": r["n"], "version": r["version"]})
            for r in rows
        }
        return posteriors, max((r["as_of"] for r in rows), default=None)

    # -- decisions ------------------------------------------------------------------------------
    def record_decision(self, decision: Decision) -> None:
        self.registry.upsert("param_decisions", [decision_row(decision)])

    def decisions(self, strategy: str, instrument: str) -> list[dict[str, Any]]:
        """The recorded decisions of (strategy, instrument), in decision order."""
        rows = self.registry.select("param_decisions", strategy=strategy, instrument=instrument)
        return sorted(rows, key=lambda r: int(r["decision_id"].rsplit(":", 1)[1]))


def _preset_row(
    strategy: str, instrument: str, preset_id: str, params: Mapping[str, Any], at: datetime | None, source: str
) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "instrument": instrument,
        "preset_id": preset_id,
        "params": dict(params),
        "registered_at": at or datetime.now(UTC),
        "source": source,
    }


def decision_row(decision: Decision) -> dict[str, Any]:
    """A ``param_decisions`` row: the scores column holds the policy's scores, the posterior means, the bandit's
    candidate, the hysteresis probability and the decision number."""
    return {
        "decision_id": decision.decision_id,
        "at": decision.at,
        "strategy": decision.strategy,
        "instrument": decision.instrument,
        "preset_id": decision.preset_id,
        "config_id": decision.config_id,
        "position_id": decision.position_id,
        "reason": decision.reason,
        "features": dict(decision.features),
        "scores": {
            "seq": decision.seq,
            "candidate": decision.candidate,
            "scores": dict(decision.scores),
            "means": dict(decision.means),
            "p_beats": decision.p_beats,
        },
    }
