"""Calibration: an engine's edge is its own past conditional forward return, never a number it invents.

For every engine and direction (buy, sell) the calibration table holds the outcomes of the engine's past
signals, each scored on **its own side's trade**: a buy on the long's return ``ret_bps``, a sell on the short's
``ret_short_bps``, both simple returns in bps of a position opened at the signal bar's close and closed at that
side's own triple-barrier touch (the ``labels`` asset; horizon <= 1 day). A sell is never scored as ``-ret``:
the short has its own barriers and a bar that touches both barriers stops it out too, so ``-ret`` would credit
it with the long's stop as a profit-take. Only events whose outcome was known before the scored day enter the
table: for day D that is ``labels`` up to D-1 (the events that started by D-2), and the asset passes nothing
else.

- Outcomes of signals on neighbouring bars overlap (a one-day horizon spans many bars), so they are not
  independent. The effective sample ``n_eff`` counts the distinct horizon-long time buckets that hold a
  signal, never more than ``n``.
- ``edge_bps`` is the mean outcome (``signed_bps``), shrunk toward zero by ``n_eff / (n_eff + shrinkage)`` so a
  handful of lucky trades does not look like an edge. Below ``min_samples`` signals the edge is 0.
- ``confidence`` comes from the sample size and the dispersion: ``n_eff / (n_eff + shrinkage)`` times
  ``2 Phi(t) - 1`` for the t-statistic ``t = mean / (std / sqrt(n_eff))`` of a positive mean, 0 otherwise.
  A large, consistent sample with a clearly positive mean approaches 1.
- Outcomes are winsorized at ``clip_bps`` so one bad print cannot dominate a thin coin's table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from huracan_assets.core.engines.base import BUY, SELL, EngineOutput
from huracan_assets.core.labels.triple_barrier import long_return_bps, short_return_bps

CALIBRATION_SCHEMA = {
    "engine": pl.String,
    "direction": pl.Int8,
    "n": pl.Int64,
    "n_eff": pl.Int64,
    "mean_bps": pl.Float64,
    "std_bps": pl.Float64,
    "hit_rate": pl.Float64,
    "edge_bps": pl.Float64,
    "confidence": pl.Float64,
}


@dataclass(frozen=True)
class CalibrationSpec:
    min_samples: int = 20
    shrinkage: float = 10.0
    clip_bps: float = 2000.0

    def __post_init__(self) -> None:
        if self.min_samples < 2 or self.shrinkage < 0 or self.clip_bps <= 0:
            raise ValueError(f"bad calibration spec {self}")


OUTCOME_SCHEMA = {"ts": pl.Int64, "ret_bps": pl.Float64, "ret_short_bps": pl.Float64}


def outcomes_from_labels(labels: pl.DataFrame) -> pl.DataFrame:
    """``ts``, ``ret_bps`` (the long's trade) and ``ret_short_bps`` (the short's own trade) of the resolved events
    of a labels frame of ``side`` 0, as simple returns in bps (unresolved events never count)."""
    if labels.height == 0:
        return pl.DataFrame(schema=OUTCOME_SCHEMA)
    return (
        labels.filter(pl.col("label").is_not_null() & pl.col("ret").is_finite() & pl.col("ret_short").is_finite())
        .select(
            pl.col("ts").cast(pl.Int64),
            long_return_bps("ret").alias("ret_bps"),
            short_return_bps("ret_short").alias("ret_short_bps"),
        )
        .unique("ts", keep="last")
        .sort("ts")
    )


def side_outcome_bps(direction: pl.Expr) -> pl.Expr:
    """The outcome of a signal's own trade: the long's ``ret_bps`` for a buy, the short's ``ret_short_bps`` for a
    sell (null for a wait)."""
    return pl.when(direction > 0).then(pl.col("ret_bps")).when(direction < 0).then(pl.col("ret_short_bps"))


def signed_outcomes(directions: pl.DataFrame, outcomes: pl.DataFrame, engines: list[str]) -> pl.DataFrame:
    """Long table (ts, engine, direction, signed_bps) of every non-wait signal that has a resolved outcome;
    ``signed_bps`` is the outcome of the signal's own side (:func:`side_outcome_bps`)."""
    joined = directions.select("ts", *engines).join(outcomes.select(list(OUTCOME_SCHEMA)), on="ts", how="inner")
    if joined.height == 0 or not engines:
        return pl.DataFrame(
            schema={"ts": pl.Int64, "engine": pl.String, "direction": pl.Int8, "signed_bps": pl.Float64}
        )
    long = joined.unpivot(
        index=["ts", "ret_bps", "ret_short_bps"], on=engines, variable_name="engine", value_name="direction"
    )
    return long.filter(pl.col("direction").is_finite() & (pl.col("direction") != 0)).select(
        "ts",
        "engine",
        pl.col("direction").cast(pl.Int8),
        side_outcome_bps(pl.col("direction")).alias("signed_bps"),
    )


def _confidence(mean: float, std: float, n: int, n_eff: int, spec: CalibrationSpec) -> float:
    if n < spec.min_samples or not math.isfinite(mean) or mean <= 0:
        return 0.0
    size = n_eff / (n_eff + spec.shrinkage)
    if not math.isfinite(std) or std <= 0:
        return size
    t = mean / (std / math.sqrt(n_eff))
    return size * math.erf(t / math.sqrt(2.0))  # 2 Phi(t) - 1


def calibrate(
    directions: pl.DataFrame,
    outcomes: pl.DataFrame,
    engines: list[str],
    spec: CalibrationSpec,
    horizon_minutes: int = 1440,
) -> pl.DataFrame:
    """The calibration table (``CALIBRATION_SCHEMA``): one row per engine x direction (buy, sell).

    ``directions``: ts + one raw-direction column per engine; ``outcomes``: ts, ret_bps, ret_short_bps (from
    :func:`outcomes_from_labels`). The caller passes only outcomes known before the day being scored.
    """
    long = signed_outcomes(directions, outcomes, engines).with_columns(
        pl.col("signed_bps").clip(-spec.clip_bps, spec.clip_bps)
    )
    stats = long.group_by("engine", "direction").agg(
        pl.len().cast(pl.Int64).alias("n"),
        (pl.col("ts") // (horizon_minutes * 60_000)).n_unique().cast(pl.Int64).alias("n_eff"),
        pl.col("signed_bps").mean().alias("mean_bps"),
        pl.col("signed_bps").std().alias("std_bps"),
        (pl.col("signed_bps") > 0).mean().alias("hit_rate"),
    )
    grid = pl.DataFrame(
        {"engine": [e for e in engines for _ in (BUY, SELL)], "direction": [BUY, SELL] * len(engines)},
        schema={"engine": pl.String, "direction": pl.Int8},
    )
    table = grid.join(stats, on=["engine", "direction"], how="left").with_columns(pl.col("n", "n_eff").fill_null(0))
    rows = []
    for r in table.iter_rows(named=True):
        n, n_eff, mean, std = r["n"], r["n_eff"], r["mean_bps"], r["std_bps"]
        calibrated = n >= spec.min_samples and mean is not None
        edge = mean * n_eff / (n_eff + spec.shrinkage) if calibrated else 0.0
        conf = _confidence(mean if mean is not None else float("nan"), std or float("nan"), n, n_eff, spec)
        rows.append({**r, "edge_bps": edge, "confidence": conf})
    return pl.DataFrame(rows, schema=CALIBRATION_SCHEMA) if rows else pl.DataFrame(schema=CALIBRATION_SCHEMA)


def apply_calibration(directions: pl.DataFrame, table: pl.DataFrame, horizon_minutes: int) -> dict[str, EngineOutput]:
    """Each engine's :class:`EngineOutput` on the bars of ``directions`` (warm-up NaN becomes wait)."""
    lookup = {
        (r["engine"], r["direction"]): (r["edge_bps"], r["confidence"], r["n"]) for r in table.iter_rows(named=True)
    }
    outputs = {}
    for engine in [c for c in directions.columns if c != "ts"]:
        raw = directions[engine].to_numpy().astype(np.float64)
        direction = np.where(np.isfinite(raw), raw, 0.0).astype(np.int8)
        edge, conf = np.zeros(direction.shape[0]), np.zeros(direction.shape[0])
        meta = {}
        for d in (BUY, SELL):
            e, c, n = lookup.get((engine, d), (0.0, 0.0, 0))
            mask = direction == d
            edge[mask], conf[mask] = e, c
            meta[f"n_{'buy' if d == BUY else 'sell'}"] = n
        outputs[engine] = EngineOutput(engine, direction, edge, conf, horizon_minutes, meta)
    return outputs
