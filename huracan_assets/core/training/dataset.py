"""The training set of one coin for day D: events of the training window with features and engine signals.

Windows (ARCHITECTURE "Windows", lengths in days): training ``[D - S - W, D - S - embargo)``, shadow
``[D - S, D]``. A row is a triple-barrier event of the coin: signalled at the close of bar ``t0``, entered at its
fill (the labels' ``entry_ts``: the open of the next bar with the production latency of one bar) and resolved
at ``t1`` (the close of the barrier bar). A row belongs to the training set only if its whole life is
inside the window: ``t0 >= start`` and ``t1 <= end``. So no row depends on anything at or after the window's
end: not its features (causal at ``t0``), not its engine signals (``engine_signals`` of a day use labels
and weights known before that day), not its label. Rows whose outcome is unknown are never used.

Columns of the frame (``BASE_COLUMNS``), then the model inputs (the recipe's features, each engine's direction,
the combined score and a regime code):

* ``t0``; ``t1``, the close of the long's exit bar; ``y``: 1 if the long's realized return was positive;
* ``ret_bps``: the long trade's simple return ``(exit / entry - 1) x 1e4`` (labels ``ret``);
* ``ret_short_bps``: the short trade's simple return ``(1 - exit / entry) x 1e4`` from its *own* exit (labels
  ``ret_short``: with the short's barriers, and a bar touching both barriers a stop for the short too), never
  ``-ret_bps``; ``t1_short``: the close of the short's exit bar;
* the costs of each side's trade (``COST_COLUMNS``, bps of the notional, **per side**: half of the per-bar
  round-trip estimates ``fee_bps``, ``spread_bps``, ``slippage_bps`` of ``engine_signals``, as the shadow trader
  pays them, :mod:`huracan_assets.core.execution`): ``entry_*`` of the fill bar (shared by both sides),
  ``exit_*`` of the long's exit bar, ``exit_*_short`` of the short's; a bar without an estimate (NaN or no row)
  takes the signal bar's (``t0``), and a row whose ``t0`` has none either is null (:func:`fill_missing_costs`).
  ``stopped`` / ``stopped_short``: 1 when that side's exit was its stop (which pays the stop slippage on the
  exit bar's half-spread). :func:`trade_costs` turns them into each side's round trip by part, the
  walk-forward's input.

The returns are simple, not log: the P&L of one unit of notional, as the shadow trader books it, so the
walk-forward scores exactly the trades the shadow trader would make (a log return shaves ``r² / 2`` off a
long and adds it to a short). A row's life ends at its later exit, ``max(t1, t1_short)``, and both exits must
be in the window. ``t1`` stays the end of the row's label interval for purging: ``y`` is the long's outcome.

Why ``y`` stays the long's "return > 0": the model is one binary classifier whose ``p`` is read both ways
(long above ``0.5 + threshold``, short below ``0.5 - threshold``). "The short's trade wins" is not "the long's
loses" (a bar touching both barriers loses both ways, and with ``pt_mult != sl_mult`` both can win), so no single
binary target is honest for both sides; the honest fix is to score each side on its own outcome, which the
walk-forward does with ``ret_bps`` / ``ret_short_bps``. A target that serves a short better needs a second
model (or three classes), not a relabelling of this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from huracan_assets.core.execution import StopSlippage
from huracan_assets.core.labels.triple_barrier import long_return_bps, short_return_bps
from huracan_assets.core.market_data.candles import DAY_MS
from huracan_assets.core.regime.classifier import Regime
from huracan_assets.core.validation.metrics import TradeCosts

REGIME_CODES = {r.value: float(i) for i, r in enumerate(Regime)}
_PARTS = ("fee", "spread", "slippage")  # per-bar estimates: engine_signals' <part>_bps, round trips
_LEGS = (  # (the bar a leg is paid on, its columns by part): the fill, the long's exit, the short's exit
    ("_fill_ts", {part: f"entry_{part}_bps" for part in _PARTS}),
    ("_exit_ts", {part: f"exit_{part}_bps" for part in _PARTS}),
    ("_exit_ts_short", {part: f"exit_{part}_short_bps" for part in _PARTS}),
)
COST_COLUMNS = tuple(name for _, names in _LEGS for name in names.values())
STOP_COLUMNS = ("stopped", "stopped_short")
BASE_COLUMNS = ("t0", "t1", "y", "ret_bps", "ret_short_bps", "t1_short", *COST_COLUMNS, *STOP_COLUMNS)


@dataclass(frozen=True)
class Windows:
    """The training and shadow windows of day D, as UTC ms bounds (end exclusive)."""

    day: date
    training_start_ms: int
    training_end_ms: int
    shadow_start_ms: int
    shadow_end_ms: int

    @classmethod
    def for_day(cls, day: date, training_days: int, shadow_days: int, embargo_days: int) -> Windows:
        if training_days < 1 or shadow_days < 0 or embargo_days < 0:
            raise ValueError("training_days >= 1, shadow_days >= 0 and embargo_days >= 0 are required")
        return cls(
            day,
            _ms(day - timedelta(days=shadow_days + training_days)),
            _ms(day - timedelta(days=shadow_days + embargo_days)),
            _ms(day - timedelta(days=shadow_days)),
            _ms(day + timedelta(days=1)),
        )

    @classmethod
    def refit_for_day(cls, day: date, training_days: int) -> Windows:
        """The window of a refit through D: training ``[D + 1 - W, D + 1)``, the events whose outcome is known by
        the end of D (those that started by D-1: ``labels[D]`` holds the last of them), and no shadow window: a
        refit is never evaluated on its own data."""
        if training_days < 1:
            raise ValueError("training_days >= 1 is required")
        end = _ms(day + timedelta(days=1))
        return cls(day, _ms(day + timedelta(days=1 - training_days)), end, end, end)

    @property
    def is_refit(self) -> bool:
        return self.shadow_start_ms == self.shadow_end_ms

    def to_dict(self) -> dict[str, str]:
        def iso(ms: int) -> str:
            return (date(1970, 1, 1) + timedelta(days=ms // DAY_MS)).isoformat()

        shadow = f"[{iso(self.shadow_start_ms)}, {iso(self.shadow_end_ms)})"
        if self.is_refit:
            shadow = "none: a refit through as_of"
        return {
            "training": f"[{iso(self.training_start_ms)}, {iso(self.training_end_ms)})",
            "shadow": shadow,
            "as_of": self.day.isoformat(),
        }


def _ms(d: date) -> int:
    return (d - date(1970, 1, 1)).days * DAY_MS


def signal_feature_names(engines: Sequence[str]) -> list[str]:
    return [f"{e}__direction" for e in engines] + ["combined_score", "regime_code"]


def _signal_inputs(engines: Sequence[str]) -> list[pl.Expr]:
    """The model inputs taken from ``engine_signals``, in ``signal_feature_names`` order."""
    return [
        *[pl.col(f"{e}__direction").cast(pl.Float64) for e in engines],
        pl.col("combined_score").cast(pl.Float64),
        pl.col("regime").replace_strict(REGIME_CODES, default=None, return_dtype=pl.Float64).alias("regime_code"),
    ]


def training_frame(
    features: pl.DataFrame,
    signals: pl.DataFrame | None,
    labels: pl.DataFrame,
    start_ms: int,
    end_ms: int,
    bar_ms: int,
    feature_names: Sequence[str],
    engines: Sequence[str],
    *,
    horizon_ms: int,
) -> pl.DataFrame:
    """Rows of the events whose whole life is in ``[start_ms, end_ms)`` (see the module docstring).

    ``horizon_ms``: the labels' vertical barrier (``max_holding_bars x bar_ms``). An event enters only when its
    vertical bar closes inside the window (``ts + horizon_ms + bar_ms <= end_ms``), so whether it is in the set
    depends on its start alone. Keeping the events of the last horizon that happened to touch a barrier early
    (``t1 <= end`` only) would pick them by what happened after the window's end: a world cut there has them
    unresolved (the truncation canary rebuilds that world and found it).

    ``features``: ts + the recipe's columns; ``signals``: the ``engine_signals`` frames (ts, regime,
    ``<engine>__direction``, combined_score, fee_bps, spread_bps, slippage_bps) or None; ``labels``: the
    ``labels`` frames of ``side`` 0 (ts, entry_ts, touch_ts, barrier, ret, label, touch_ts_short, barrier_short,
    ret_short; labels without ``entry_ts`` were filled at the event's close: their ``ts``). Frames may hold rows
    outside the window: they are cut here (the fill and exit bars of a member are inside it).
    """
    fill_ts = pl.col("entry_ts") if "entry_ts" in labels.columns else pl.col("ts")
    events = labels.filter(
        pl.col("label").is_not_null()
        & pl.col("ret").is_finite()
        & pl.col("ret_short").is_finite()
        & (pl.col("ts") >= start_ms)
        & (pl.col("ts") + horizon_ms + bar_ms <= end_ms)
        & (pl.col("touch_ts") + bar_ms <= end_ms)
        & (pl.col("touch_ts_short") + bar_ms <= end_ms)
    ).select(
        pl.col("ts").cast(pl.Int64).alias("t0"),
        (pl.col("touch_ts") + bar_ms).cast(pl.Int64).alias("t1"),
        (pl.col("ret") > 0).cast(pl.Int8).alias("y"),
        long_return_bps("ret").alias("ret_bps"),
        short_return_bps("ret_short").alias("ret_short_bps"),
        (pl.col("touch_ts_short") + bar_ms).cast(pl.Int64).alias("t1_short"),
        (pl.col("barrier") == "sl").cast(pl.Int8).alias("stopped"),
        (pl.col("barrier_short") == "sl").cast(pl.Int8).alias("stopped_short"),
        fill_ts.cast(pl.Int64).alias("_fill_ts"),
        pl.col("touch_ts").cast(pl.Int64).alias("_exit_ts"),
        pl.col("touch_ts_short").cast(pl.Int64).alias("_exit_ts_short"),
    )
    feats = features.filter((pl.col("ts") >= start_ms) & (pl.col("ts") < end_ms)).select(
        pl.col("ts").cast(pl.Int64).alias("t0"), *[pl.col(c).cast(pl.Float64) for c in feature_names]
    )
    frame = events.unique("t0", keep="last").join(feats, on="t0", how="inner")
    sig_names = signal_feature_names(engines)
    if signals is not None and signals.height:
        sig = signals.filter((pl.col("ts") >= start_ms) & (pl.col("ts") < end_ms))
        frame = frame.join(sig.select(pl.col("ts").cast(pl.Int64).alias("t0"), *_signal_inputs(engines)), on="t0",
                           how="left")  # fmt: skip
        frame = _join_costs(frame, sig)
    else:
        frame = frame.with_columns(
            *[pl.lit(None, dtype=pl.Float64).alias(c) for c in COST_COLUMNS],
            *[pl.lit(None, dtype=pl.Float64).alias(c) for c in sig_names],
        )
    return frame.select(*BASE_COLUMNS, *feature_names, *sig_names).sort("t0")


def _join_costs(frame: pl.DataFrame, signals: pl.DataFrame) -> pl.DataFrame:
    """``COST_COLUMNS``: each leg's per-side estimates on the bar it is paid on, else on the signal bar ``t0``."""
    halves = signals.select(
        pl.col("ts").cast(pl.Int64).alias("_ts"),
        *[(pl.col(f"{part}_bps").cast(pl.Float64).fill_nan(None) * 0.5).alias(part) for part in _PARTS],
    )
    fallback = {part: f"_signal_{part}" for part in _PARTS}
    frame = frame.join(halves.rename(fallback), left_on="t0", right_on="_ts", how="left")
    for key, names in _LEGS:
        frame = frame.join(halves.rename(names), left_on=key, right_on="_ts", how="left")
        frame = frame.with_columns(pl.coalesce(name, fallback[part]).alias(name) for part, name in names.items())
    return frame


def fill_missing_costs(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """``frame`` with each null cost column (``COST_COLUMNS``: rows whose bars had no cost estimate, not even at
    ``t0``) filled with that column's median over the frame (0 without any), and the number of rows that had one."""
    missing = frame.select(pl.any_horizontal(pl.col(c).is_null() for c in COST_COLUMNS).sum()).item()
    medians = {c: frame[c].median() for c in COST_COLUMNS}
    filled = frame.with_columns(pl.col(c).fill_null(m if m is not None else 0.0) for c, m in medians.items())
    return filled, int(missing or 0)


def trade_costs(frame: pl.DataFrame, stop_slippage: StopSlippage) -> TradeCosts:
    """Each row's round trip of the long's and of the short's trade, by part (fee, spread, slippage: entry leg +
    that side's exit leg; stop slippage: ``stop_slippage.bps`` of the side's exit half-spread where ``stopped``),
    the walk-forward's costs: exactly what the shadow trader books (:mod:`huracan_assets.core.execution`)."""

    def col(name: str) -> np.ndarray:
        return frame[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()

    sides = {}
    for side, suffix, stopped in (("long", "", "stopped"), ("short", "_short", "stopped_short")):
        parts = {part: col(f"entry_{part}_bps") + col(f"exit_{part}{suffix}_bps") for part in _PARTS}
        stop = stop_slippage.bps(col(f"exit_spread{suffix}_bps"))
        parts["stop_slippage"] = np.where(frame[stopped].to_numpy() == 1, stop, 0.0)
        sides[side] = parts
    return TradeCosts.from_parts(sides["long"], sides["short"], n=frame.height)


def matrix(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """The model inputs as float64 (null -> NaN), in the given column order."""
    return frame.select([pl.col(c).cast(pl.Float64).fill_null(float("nan")) for c in columns]).to_numpy()


def inference_frame(
    features: pl.DataFrame,
    signals: pl.DataFrame | None,
    start_ms: int,
    end_ms: int,
    feature_names: Sequence[str],
    engines: Sequence[str],
) -> pl.DataFrame:
    """Every bar of ``[start_ms, end_ms)`` with the model inputs of :func:`training_frame` (no label needed):
    ``ts`` and the same columns, in the same order, so a bundle's model scores the bars it never saw."""
    feats = features.filter((pl.col("ts") >= start_ms) & (pl.col("ts") < end_ms)).select(
        pl.col("ts").cast(pl.Int64), *[pl.col(c).cast(pl.Float64) for c in feature_names]
    )
    sig_names = signal_feature_names(engines)
    if signals is not None and signals.height:
        feats = feats.join(signals.select(pl.col("ts").cast(pl.Int64), *_signal_inputs(engines)), on="ts", how="left")
    else:
        feats = feats.with_columns([pl.lit(None, dtype=pl.Float64).alias(c) for c in sig_names])
    return feats.select("ts", *feature_names, *sig_names).sort("ts")
