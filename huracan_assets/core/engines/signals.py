"""A coin-day's engine signals and the meta update, as pure functions the two assets call.

``day_signals`` (the ``engine_signals`` asset of day D): raw directions of every engine over the given bars,
edges calibrated on the outcomes known before D, round-trip costs per bar, and the combined signal with the
weights and gate of ``meta_weights[D-1]``. ``update_meta`` (the ``meta_weights`` asset of D): yesterday's
state moved by the outcomes resolved during D of the signals of D-1, and the gate table refreshed on its
cadence. Neither reads anything after the end of D.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from huracan_assets.core.costs import CostModel
from huracan_assets.core.engines.base import EngineInput, EngineRegistry
from huracan_assets.core.engines.calibration import CalibrationSpec, apply_calibration, calibrate
from huracan_assets.core.engines.combiner import (
    STATE_SCHEMA,
    MetaSpec,
    cold_start,
    combine,
    gate_matrix,
    observations,
    update_state,
)
from huracan_assets.core.engines.gate import GATE_SCHEMA, GateSpec, gate_table, leaderboard, redundancy

COST_COLUMNS = ("fee_bps", "spread_bps", "slippage_bps", "funding_bps", "total_bps")


@dataclass(frozen=True)
class SignalSpec:
    calibration: CalibrationSpec
    gate: GateSpec
    meta: MetaSpec
    costs: CostModel
    horizon_minutes: int
    order_notional: float


def _costs(inp: EngineInput, spec: SignalSpec, spreads: pl.DataFrame | None = None) -> pl.DataFrame:
    """Round-trip costs per bar of the input; ``spreads``: the coin's daily spreads (the ``spreads`` asset), of
    which each bar reads only the days before its own (None: the per-bar estimate on the input's bars)."""
    return spec.costs.round_trip_bps(inp.frame, spec.order_notional, spec.horizon_minutes, spreads=spreads)


def _in(frame: pl.DataFrame, start_ms: int, end_ms: int) -> pl.DataFrame:
    return frame.filter((pl.col("ts") >= start_ms) & (pl.col("ts") < end_ms))


def day_signals(
    registry: EngineRegistry,
    inp: EngineInput,
    start_ms: int,
    end_ms: int,
    outcomes: pl.DataFrame,
    regimes: pl.DataFrame,
    state: pl.DataFrame,
    gate: pl.DataFrame,
    spec: SignalSpec,
    spreads: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(signals of the bars in ``[start_ms, end_ms)``, calibration table).

    ``inp`` holds the day and the history before it (engine warm-up and the calibration period). Only the
    outcomes (ts, ret_bps, ret_short_bps: :func:`outcomes_from_labels`) of events that started at least one
    horizon before ``start_ms`` are used, so each was resolved before D began (with ``labels`` up to D-1 that is
    all of them), and only signals of bars before ``start_ms``. Bars after ``end_ms`` cannot reach D's rows:
    every engine is causal. ``state``/``gate``: ``meta_weights[D-1]``. ``spreads``: the coin's daily spreads of
    days before D (:func:`_costs`).
    """
    engines = list(registry.names())
    directions = registry.directions(inp)
    past = directions.filter(pl.col("ts") < start_ms)
    known = outcomes.filter(pl.col("ts") < start_ms - spec.horizon_minutes * 60_000)  # resolved before D
    table = calibrate(past, known, engines, spec.calibration, spec.horizon_minutes)
    today = _in(directions, start_ms, end_ms)
    outputs = apply_calibration(today, table, spec.horizon_minutes)
    costs = _in(_costs(inp, spec, spreads), start_ms, end_ms)
    frame = (
        today.select("ts").join(regimes.select("ts", "regime"), on="ts", how="left").join(costs, on="ts", how="left")
    )
    frame = frame.with_columns(pl.col("regime").fill_null("UNKNOWN"))
    regime = frame["regime"].to_numpy().astype(str)
    weights = dict(zip(state["engine"], state["weight"], strict=True))
    total = frame["total_bps"].fill_null(float("nan")).to_numpy()
    combined = combine(outputs, regime, weights, gate, total, spec.meta, spec.costs.net_edge_floor_bps)
    gated = gate_matrix(gate, engines, regime) > 0
    cols = [s for out in outputs.values() for s in out.columns().values()]
    cols += [pl.Series(f"{e}__gated", gated[:, j]) for j, e in enumerate(engines)]
    out = pl.concat([frame, pl.DataFrame(cols), combined], how="horizontal").with_columns(
        horizon_minutes=pl.lit(spec.horizon_minutes, dtype=pl.Int32)
    )
    return out, table


def recombine(signals: pl.DataFrame, state: pl.DataFrame, gate: pl.DataFrame, spec: SignalSpec) -> pl.DataFrame:
    """The combined columns recomputed from a stored signals frame (used by the checks)."""
    from huracan_assets.core.engines.base import EngineOutput

    engines = list(state["engine"])
    outputs = {
        e: EngineOutput(
            e,
            signals[f"{e}__direction"].to_numpy().astype(np.int8),
            signals[f"{e}__edge_bps"].to_numpy().astype(np.float64),
            signals[f"{e}__confidence"].to_numpy().astype(np.float64),
            spec.horizon_minutes,
        )
        for e in engines
    }
    weights = dict(zip(state["engine"], state["weight"], strict=True))
    regime = signals["regime"].to_numpy().astype(str)
    total = signals["total_bps"].fill_null(float("nan")).to_numpy()
    return combine(outputs, regime, weights, gate, total, spec.meta, spec.costs.net_edge_floor_bps)


@dataclass(frozen=True)
class MetaState:
    state: pl.DataFrame  # STATE_SCHEMA, one row per engine
    gate: pl.DataFrame  # GATE_SCHEMA, one row per engine x regime
    gate_as_of: date | None

    def to_frame(self, as_of: date) -> pl.DataFrame:
        """The stored form: one row per engine x regime, state columns repeated per regime."""
        gate = self.gate.rename({c: f"gate_{c}" for c in self.gate.columns if c not in ("engine", "regime")})
        return (
            self.state.join(gate, on="engine", how="left")
            .with_columns(
                as_of=pl.lit(as_of, dtype=pl.Date),
                gate_as_of=pl.lit(self.gate_as_of, dtype=pl.Date),
            )
            .sort("engine", "regime")
        )

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> MetaState:
        state = frame.select(STATE_SCHEMA.keys()).unique("engine", keep="first").sort("engine")
        gate = frame.select(
            "engine", "regime", *[pl.col(f"gate_{c}").alias(c) for c in GATE_SCHEMA if c not in ("engine", "regime")]
        ).filter(pl.col("regime").is_not_null())
        as_of = frame["gate_as_of"].drop_nulls()
        return cls(state.cast(STATE_SCHEMA), gate.cast(GATE_SCHEMA), as_of[0] if as_of.len() else None)

    @classmethod
    def cold(cls, engines: list[str]) -> MetaState:
        return cls(cold_start(engines), gate_table(pl.DataFrame(schema=_BOARD_SCHEMA), engines, GateSpec()), None)


_BOARD_SCHEMA = {
    "engine": pl.String,
    "regime": pl.String,
    "n": pl.Int64,
    "hit_rate": pl.Float64,
    "mean_net_bps": pl.Float64,
}


def update_meta(
    registry: EngineRegistry,
    previous: MetaState | None,
    day: date,
    inp: EngineInput,
    prev_day_bounds: tuple[int, int],
    outcomes_today: pl.DataFrame,
    gate_window: tuple[int, int] | None,
    gate_outcomes: pl.DataFrame | None,
    regimes: pl.DataFrame | None,
    spec: SignalSpec,
    spreads: pl.DataFrame | None = None,
) -> tuple[MetaState, dict]:
    """``meta_weights[D]`` from ``meta_weights[D-1]`` (``previous``; None: cold start).

    ``inp``: bars up to the end of D-1 (never D's), with engine warm-up before the gate window or D-1.
    ``outcomes_today``: the outcomes resolved during D (``labels[D]``, events of D-1). When the gate is due,
    ``gate_window`` (ms bounds of the leaderboard's signal bars), ``gate_outcomes`` (their outcomes, known by
    the end of D) and ``regimes`` of those bars are given. ``spreads``: the coin's daily spreads before D-1
    (:func:`_costs`).
    """
    engines = list(registry.names())
    prev = previous or MetaState.cold(engines)
    if list(prev.state["engine"]) != engines:  # the configured engines changed: keep what matches
        merged = cold_start(engines).join(
            prev.state.select("engine", pl.exclude("engine").name.suffix("_p")), on="engine", how="left"
        )
        state = merged.select(
            "engine",
            *[pl.coalesce(f"{c}_p", c).alias(c) for c in STATE_SCHEMA if c != "engine"],
        )
        prev = MetaState(state.cast(STATE_SCHEMA), prev.gate.filter(pl.col("engine").is_in(engines)), prev.gate_as_of)
    directions = registry.directions(inp)
    costs = _costs(inp, spec, spreads)
    start, end = prev_day_bounds
    yday = _in(directions, start, end)
    table = calibrate(yday.head(0), outcomes_today.head(0), engines, spec.calibration)  # outcome-free outputs
    outputs = apply_calibration(yday, table, spec.horizon_minutes)
    yday_cost = _in(costs, start, end)["total_bps"].fill_null(float("nan")).to_numpy()
    obs = observations(outputs, yday["ts"].to_numpy(), outcomes_today, yday_cost)
    info: dict = {"signals_scored": obs.height, "gate_refreshed": False}
    red, gate, gate_as_of = None, prev.gate, prev.gate_as_of
    if gate_window is not None and gate_outcomes is not None and regimes is not None:
        window = _in(directions, *gate_window)
        board = leaderboard(
            window, gate_outcomes, regimes, costs.select("ts", pl.col("total_bps").alias("cost_bps")), engines
        )
        gate, gate_as_of = gate_table(board, engines, spec.gate), day
        red = redundancy(window, engines)
        info.update(gate_refreshed=True, gate_signals=int(board["n"].sum() or 0))
    state = update_state(prev.state, obs, red, spec.meta)
    return MetaState(state, gate.cast(GATE_SCHEMA), gate_as_of), info
