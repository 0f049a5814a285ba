"""The per-coin meta combiner: EMA weights of engines by realized accuracy and net edge, gated by regime.

**State** (one row per engine, the ``meta_weights`` asset): ``ema_hit`` (share of signals that went the
right way), ``ema_net_bps`` (mean outcome of the signal's own side after round-trip costs: a buy on the long's
return, a sell on the short's own, never ``-ret``), ``redundancy`` (from the gate) and
the resulting ``weight``. Each day the state is updated with the outcomes resolved during that day; with
``k`` signals resolved for an engine, the EMA moves by ``1 - (1 - alpha)**k`` toward the day's mean.
**Cold start**: ``ema_hit = 0.5``, ``ema_net_bps = 0`` and uniform weights; the gate is computed from
whatever history exists, and with too little of it every engine is off (the combined signal waits).

**Weights**: ``score = max(ema_net_bps, 0) x ema_hit / redundancy``, then scaled and clipped into
``[min_weight, max_weight]`` so that they sum to 1. An engine that keeps losing after costs has score 0 and
ends at ``min_weight``; two engines that always agree each have redundancy 2, so together they weigh what
one of them would alone. With no positive score anywhere the weights are uniform.

**Combined signal** per bar, over the engines the gate enables in that bar's regime (soft gate ``g``):
``v_i = w_i g_i conf_i``, ``score = sum(v_i dir_i) / sum(w_i g_i)`` in [-1, 1]. The direction is the sign of
the score when ``|score|`` reaches the regime's threshold, else wait. Its edge is the v-weighted calibrated
edge of the voters, signed to that direction; ``net_edge = edge - round-trip costs``, and anything below the
net-edge floor waits. A disabled engine has ``g = 0`` and cannot move any of this.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from huracan_assets.core.engines.base import DIRECTION_ENUM, DIRECTION_NAMES, EngineOutput
from huracan_assets.core.engines.gate import REGIMES

STATE_SCHEMA = {
    "engine": pl.String,
    "ema_hit": pl.Float64,
    "ema_net_bps": pl.Float64,
    "n_updates": pl.Int64,
    "redundancy": pl.Float64,
    "weight": pl.Float64,
}
DEFAULT_THRESHOLDS = {"TREND": 0.10, "RANGE": 0.15, "PANIC": 0.25, "ILLIQUID": math.inf}


@dataclass(frozen=True)
class MetaSpec:
    alpha: float = 0.1
    min_weight: float = 0.005
    max_weight: float = 0.25
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1 or not 0 <= self.min_weight <= self.max_weight <= 1:
            raise ValueError(f"bad meta spec {self}")
        unknown = set(self.thresholds) - set(REGIMES)
        if unknown:
            raise ValueError(f"thresholds for unknown regimes {sorted(unknown)}")


def cold_start(engines: list[str]) -> pl.DataFrame:
    n = len(engines)
    return pl.DataFrame(
        {
            "engine": engines,
            "ema_hit": [0.5] * n,
            "ema_net_bps": [0.0] * n,
            "n_updates": [0] * n,
            "redundancy": [1.0] * n,
            "weight": [1.0 / n] * n if n else [],
        },
        schema=STATE_SCHEMA,
    )


def project_weights(scores: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Weights proportional to ``scores`` as far as the bounds allow: ``clip(c x score, lo, hi)`` with ``c``
    found by bisection so they sum to 1. Bounds that cannot sum to 1 for this many engines are relaxed."""
    n = scores.shape[0]
    if n == 0:
        return scores.astype(np.float64)
    lo, hi = min(lo, 1.0 / n), max(hi, 1.0 / n)
    s = np.where(np.isfinite(scores), np.maximum(scores, 0.0), 0.0)
    if s.sum() <= 0:
        return np.full(n, 1.0 / n)
    a, b = 0.0, 1.0
    while np.clip(b * s, lo, hi).sum() < 1.0:
        b *= 2.0
        if b > 1e300:
            break
    for _ in range(200):
        c = 0.5 * (a + b)
        if np.clip(c * s, lo, hi).sum() < 1.0:
            a = c
        else:
            b = c
    w = np.clip(b * s, lo, hi)
    return w / w.sum()


def update_state(
    state: pl.DataFrame, observations: pl.DataFrame, redundancy: Mapping[str, float] | None, spec: MetaSpec
) -> pl.DataFrame:
    """The next state from the day's resolved signals ``observations`` (engine, hit (bool), net_bps)."""
    day = observations.group_by("engine").agg(
        pl.len().cast(pl.Int64).alias("k"),
        pl.col("hit").cast(pl.Float64).mean().alias("day_hit"),
        pl.col("net_bps").mean().alias("day_net"),
    )
    merged = state.join(day, on="engine", how="left").with_columns(pl.col("k").fill_null(0))
    step = 1.0 - (1.0 - spec.alpha) ** pl.col("k").cast(pl.Float64)
    merged = merged.with_columns(
        pl.when(pl.col("k") > 0)
        .then(pl.col("ema_hit") + step * (pl.col("day_hit") - pl.col("ema_hit")))
        .otherwise(pl.col("ema_hit"))
        .alias("ema_hit"),
        pl.when(pl.col("k") > 0)
        .then(pl.col("ema_net_bps") + step * (pl.col("day_net") - pl.col("ema_net_bps")))
        .otherwise(pl.col("ema_net_bps"))
        .alias("ema_net_bps"),
        (pl.col("n_updates") + pl.col("k")).alias("n_updates"),
    )
    if redundancy is not None:
        merged = merged.with_columns(
            pl.col("engine").replace_strict(dict(redundancy), default=1.0, return_dtype=pl.Float64).alias("redundancy")
        )
    return with_weights(merged.select(STATE_SCHEMA.keys()), spec)


def with_weights(state: pl.DataFrame, spec: MetaSpec) -> pl.DataFrame:
    score = (state["ema_net_bps"].clip(0.0, None) * state["ema_hit"] / state["redundancy"].clip(1.0, None)).to_numpy()
    w = project_weights(score.astype(np.float64), spec.min_weight, spec.max_weight)
    return state.with_columns(pl.Series("weight", w, dtype=pl.Float64)).cast(STATE_SCHEMA)


def observations(
    outputs: Mapping[str, EngineOutput], ts: np.ndarray, outcomes: pl.DataFrame, cost_bps: np.ndarray
) -> pl.DataFrame:
    """engine, hit, net_bps of every non-wait signal at ``ts`` with a resolved outcome (ts, ret_bps,
    ret_short_bps): a buy scored on the long's trade, a sell on the short's own."""
    frames = []
    base = pl.DataFrame({"ts": ts, "cost_bps": cost_bps}).join(
        outcomes.select("ts", "ret_bps", "ret_short_bps"), on="ts", how="inner"
    )
    index = {int(t): i for i, t in enumerate(ts)}
    rows = np.array([index[int(t)] for t in base["ts"]], dtype=np.int64)
    ret_long, ret_short = base["ret_bps"].to_numpy(), base["ret_short_bps"].to_numpy()
    for name, out in outputs.items():
        d = out.direction[rows].astype(np.float64)
        mask = d != 0
        if not mask.any():
            continue
        signed = np.where(d > 0, ret_long, ret_short)[mask]
        frames.append(
            pl.DataFrame(
                {"engine": name, "hit": signed > 0, "net_bps": signed - base["cost_bps"].to_numpy()[mask]},
                schema={"engine": pl.String, "hit": pl.Boolean, "net_bps": pl.Float64},
            )
        )
    if not frames:
        return pl.DataFrame(schema={"engine": pl.String, "hit": pl.Boolean, "net_bps": pl.Float64})
    return pl.concat(frames)


def gate_matrix(gate: pl.DataFrame, engines: list[str], regimes: np.ndarray) -> np.ndarray:
    """Soft gate per (bar, engine): 0 where the engine is off in the bar's regime (or the regime is unknown)."""
    soft = {(r["engine"], r["regime"]): (r["soft"] if r["enabled"] else 0.0) for r in gate.iter_rows(named=True)}
    out = np.zeros((regimes.shape[0], len(engines)))
    for j, engine in enumerate(engines):
        for regime in REGIMES:
            out[regimes == regime, j] = soft.get((engine, regime), 0.0)
    return out


def combine(
    outputs: Mapping[str, EngineOutput],
    regimes: np.ndarray,
    weights: Mapping[str, float],
    gate: pl.DataFrame,
    cost_bps: np.ndarray,
    spec: MetaSpec,
    net_edge_floor_bps: float,
) -> pl.DataFrame:
    """The combined signal per bar (see the module docstring). ``regimes`` is a string array per bar."""
    engines = list(outputs)
    n = regimes.shape[0]
    g = gate_matrix(gate, engines, regimes)
    w = np.array([weights.get(e, 0.0) for e in engines])
    direction = (
        np.column_stack([outputs[e].direction.astype(np.float64) for e in engines]) if engines else np.zeros((n, 0))
    )
    edge = np.column_stack([outputs[e].edge_bps_before_costs for e in engines]) if engines else np.zeros((n, 0))
    conf = np.column_stack([outputs[e].confidence_0_1 for e in engines]) if engines else np.zeros((n, 0))
    wg = w[None, :] * g
    v = wg * conf * (direction != 0)
    denom = wg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(denom > 0, (v * direction).sum(axis=1) / denom, 0.0)
        vsum = v.sum(axis=1)
        mean_edge = np.where(vsum > 0, (v * direction * edge).sum(axis=1) / vsum, 0.0)
    thr = np.array([spec.thresholds.get(r, math.inf) for r in regimes], dtype=np.float64)
    raw = np.where(np.abs(score) >= thr, np.sign(score), 0.0)
    edge_bps = raw * mean_edge
    net = np.where(raw != 0, edge_bps - cost_bps, np.nan)
    trade = (raw != 0) & np.isfinite(net) & (net >= net_edge_floor_bps)
    final = np.where(trade, raw, 0.0).astype(np.int8)
    return pl.DataFrame(
        {
            "combined_score": score,
            "combined_voters": (v > 0).sum(axis=1).astype(np.int32),
            "combined_raw_direction": raw.astype(np.int8),
            "combined_direction": pl.Series([DIRECTION_NAMES[int(d)] for d in final], dtype=DIRECTION_ENUM),
            "combined_confidence": np.abs(score),
            "combined_edge_bps": edge_bps,
            "combined_net_edge_bps": net,
            "should_trade": trade,
        }
    )
