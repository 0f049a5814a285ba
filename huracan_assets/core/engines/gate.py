"""The regime gate: which engine may speak in which regime, from its net edge after costs.

The **leaderboard** scores every past signal of every engine that has a resolved outcome: the return of its
own side's trade (a buy: the long's ``ret_bps``; a sell: the short's ``ret_short_bps``, never ``-ret``; see
:mod:`calibration`) minus the round-trip cost of that bar, grouped by the regime the bar was in. The **gate
table** turns it into switches and weights per engine x regime:

- *hard gate*: the engine is off in a regime where its mean net edge is <= 0, or where it has fewer than
  ``min_samples`` scored signals (no evidence is not evidence of an edge);
- *soft gate*: where it is on, its weight is scaled by ``min(1, mean_net_bps / soft_scale_bps)``, so a
  barely positive engine counts for little.

The table is recomputed every ``refresh_days`` over the trailing ``window_days`` (the seeds say weekly) and
carried forward unchanged in between; ``gate_as_of`` says when it was computed. ``redundancy`` measures how
much each engine repeats the others (sum of its positive signal correlations, itself included), which the
combiner uses so that similar engines do not double-count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from huracan_assets.core.engines.calibration import signed_outcomes
from huracan_assets.core.regime.classifier import Regime

REGIMES: tuple[str, ...] = tuple(r.value for r in Regime)
GATE_SCHEMA = {
    "engine": pl.String,
    "regime": pl.String,
    "n": pl.Int64,
    "hit_rate": pl.Float64,
    "mean_net_bps": pl.Float64,
    "enabled": pl.Boolean,
    "soft": pl.Float64,
    "reason": pl.String,
}


@dataclass(frozen=True)
class GateSpec:
    window_days: int = 30
    refresh_days: int = 7
    min_samples: int = 20
    soft_scale_bps: float = 20.0

    def __post_init__(self) -> None:
        if self.window_days < 1 or self.refresh_days < 1 or self.min_samples < 1 or self.soft_scale_bps <= 0:
            raise ValueError(f"bad gate spec {self}")

    def due(self, last_as_of: date | None, day: date) -> bool:
        return last_as_of is None or (day - last_as_of).days >= self.refresh_days


def leaderboard(
    directions: pl.DataFrame,
    outcomes: pl.DataFrame,
    regimes: pl.DataFrame,
    costs: pl.DataFrame,
    engines: list[str],
) -> pl.DataFrame:
    """engine, regime, n, hit_rate, mean_net_bps over the given signals (ts-aligned frames; ``outcomes`` has ts,
    ret_bps, ret_short_bps; ``regimes`` has ts, regime; ``costs`` has ts, cost_bps). Signals on bars without a
    regime or a cost are not scored."""
    long = signed_outcomes(directions, outcomes, engines)
    long = long.join(regimes.select("ts", "regime"), on="ts", how="inner").join(
        costs.select("ts", "cost_bps"), on="ts", how="inner"
    )
    return long.group_by("engine", "regime").agg(
        pl.len().cast(pl.Int64).alias("n"),
        (pl.col("signed_bps") > 0).mean().alias("hit_rate"),
        (pl.col("signed_bps") - pl.col("cost_bps")).mean().alias("mean_net_bps"),
    )


def gate_table(board: pl.DataFrame, engines: list[str], spec: GateSpec) -> pl.DataFrame:
    """Hard and soft gates for every engine x regime (``GATE_SCHEMA``); missing cells are off."""
    grid = pl.DataFrame(
        {"engine": [e for e in engines for _ in REGIMES], "regime": list(REGIMES) * len(engines)},
        schema={"engine": pl.String, "regime": pl.String},
    )
    table = grid.join(board, on=["engine", "regime"], how="left").with_columns(pl.col("n").fill_null(0))
    few = pl.col("n") < spec.min_samples
    losing = pl.col("mean_net_bps").is_null() | (pl.col("mean_net_bps") <= 0)
    enabled = ~few & ~losing
    return table.select(
        "engine",
        "regime",
        "n",
        "hit_rate",
        "mean_net_bps",
        enabled.alias("enabled"),
        pl.when(enabled)
        .then((pl.col("mean_net_bps") / spec.soft_scale_bps).clip(0.0, 1.0))
        .otherwise(0.0)
        .alias("soft"),
        pl.when(few)
        .then(pl.format("{} signals < {}", pl.col("n"), pl.lit(spec.min_samples)))
        .when(losing)
        .then(pl.lit("net edge <= 0"))
        .otherwise(pl.lit("on"))
        .alias("reason"),
    ).cast(GATE_SCHEMA)


def redundancy(directions: pl.DataFrame, engines: list[str]) -> dict[str, float]:
    """Per engine, 1 + the sum of its positive signal correlations with the other engines.

    Two engines that always agree get 2 each; an engine unlike all others gets 1. A constant engine has no
    correlation with anyone (1)."""
    if not engines:
        return {}
    x = np.nan_to_num(directions.select(engines).to_numpy().astype(np.float64), nan=0.0)
    if x.shape[0] < 3:
        return dict.fromkeys(engines, 1.0)
    x = x - x.mean(axis=0)
    norm = np.sqrt((x * x).sum(axis=0))
    live = norm > 0
    corr = np.zeros((len(engines), len(engines)))
    xs = x[:, live] / norm[live]
    corr[np.ix_(live, live)] = xs.T @ xs
    np.fill_diagonal(corr, 1.0)
    red = np.clip(corr, 0.0, 1.0).sum(axis=1)
    return {e: float(r) for e, r in zip(engines, red, strict=True)}
