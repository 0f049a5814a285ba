"""One coin's per-bar products rebuilt from raw candles, day by day, by the pure functions the assets call.

The truncation canary asks: would a world whose candles end at the training window's end have produced the
same training matrix as the one built from the stored assets? :class:`CoinReplay` answers the first half. It
is given only the coin's candles (and the reference coin's) of the days before the cut, and rebuilds, for any
day, what the daily assets store for it:

* ``features(d)``: :func:`features_for_window` over D and its ``feature_warmup_days`` (all of them usable, as
  the ``features`` asset requires), with the reference closes of the same days;
* ``labels(d)``: :func:`triple_barrier` of the events that start on D-1, over D-1, D and the volatility
  warm-up (``labels[D]``, the asset's convention);
* ``regimes(d)``: :func:`regimes_for_window` over D and its ``regime_days`` (all usable);
* ``meta(d)`` and ``signals(d)``: :func:`update_meta` and :func:`day_signals`, with the same windows and the
  same D-1 chain as ``meta_weights`` and ``engine_signals``; the chain starts from the state stored for the day
  before the first replayed one (``meta_seed``), which depends only on data up to that day. Their costs read
  the coin's daily ``spreads`` of the same windows (stored, days before the cut only; None: the per-bar
  estimate, as the pure functions do without spreads).

Each method returns None where the asset would have skipped the key. Nothing here reads a bar at or after the
cut, because nothing after it is given: a stored row that depends on later data cannot be rebuilt, and the
canary sees the difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypeVar

import polars as pl

from huracan_assets.core.costs import SPREAD_SCHEMA
from huracan_assets.core.engines.base import EngineRegistry, engine_input
from huracan_assets.core.engines.calibration import outcomes_from_labels
from huracan_assets.core.engines.signals import MetaState, SignalSpec, day_signals, update_meta
from huracan_assets.core.features.recipe import FeatureRecipe, features_for_window
from huracan_assets.core.labels.triple_barrier import BarrierSpec, triple_barrier
from huracan_assets.core.market_data.candles import date_range, day_bounds_ms
from huracan_assets.core.regime.classifier import RegimeSpec, regimes_for_window

T = TypeVar("T")


@dataclass(frozen=True)
class ReplaySpec:
    """Everything the daily assets of one coin use, and their windows in days (see ``defs``)."""

    recipe: FeatureRecipe
    feature_warmup_days: int
    barrier: BarrierSpec
    label_vol_days: int
    regimes: RegimeSpec
    regime_days: int
    registry: EngineRegistry
    signals: SignalSpec
    engine_warmup_days: int
    calibration_days: int
    gate_days: int
    bar_minutes: int


class CoinReplay:
    """The products of one coin rebuilt from ``candles`` (usable days only, every day before the cut)."""

    def __init__(
        self,
        candles: Mapping[date, pl.DataFrame],
        reference: Mapping[date, pl.DataFrame],
        spec: ReplaySpec,
        meta_seed: tuple[date, MetaState | None],
        spreads: Mapping[date, pl.DataFrame] | None = None,
    ) -> None:
        self.candles, self.spec = dict(candles), spec
        self.spreads = None if spreads is None else dict(spreads)
        self.reference = dict(reference)  # the reference coin's closes by day (features and engines alike)
        self.engines = list(spec.registry.names())
        self._meta_seed = meta_seed
        self._memo: dict[tuple[str, date], object] = {}
        self.bar_ms = spec.bar_minutes * 60_000

    # ------------------------------------------------------------------------------------------- helpers
    def _cached(self, name: str, day: date, build: Callable[[date], T]) -> T:
        key = (name, day)
        if key not in self._memo:
            self._memo[key] = build(day)
        return self._memo[key]  # type: ignore[return-value]

    def _span(self, source: Mapping[date, pl.DataFrame], days: list[date]) -> tuple[pl.DataFrame | None, list[date]]:
        """Like ``PartitionWindow.days``: the usable days concatenated in order, and the days missing."""
        frames = [source[d] for d in days if d in source]
        missing = [d for d in days if d not in source]
        return (pl.concat(frames, how="vertical_relaxed") if frames else None), missing

    def _window(self, day: date, days_before: int) -> pl.DataFrame | None:
        """D and all ``days_before`` days before it, or None when any is missing (the assets then skip)."""
        frame, missing = self._span(self.candles, date_range(day - timedelta(days=days_before), day))
        return None if missing or frame is None else frame

    def _spreads(self, first: date, last: date) -> pl.DataFrame | None:
        """The daily spreads of ``first..last`` as the signal assets pass them (empty frame when none)."""
        if self.spreads is None:
            return None
        frame, _ = self._span(self.spreads, date_range(first, last)) if first <= last else (None, [])
        return frame if frame is not None else pl.DataFrame(schema=SPREAD_SCHEMA)

    def _reference(self, source: Mapping[date, pl.DataFrame], days: list[date]) -> pl.DataFrame | None:
        frame, _ = self._span(source, days)
        return None if frame is None else frame.select("ts", "close").sort("ts")

    # ------------------------------------------------------------------------------------------ products
    def features(self, day: date) -> pl.DataFrame | None:
        def build(d: date) -> pl.DataFrame | None:
            warm = self.spec.feature_warmup_days
            frame = self._window(d, warm)
            if frame is None:
                return None
            ref = self._reference(self.reference, date_range(d - timedelta(days=warm), d))
            return features_for_window(frame, self.spec.recipe, *day_bounds_ms(d), reference=ref)

        return self._cached("features", day, build)

    def labels(self, day: date) -> pl.DataFrame | None:
        def build(d: date) -> pl.DataFrame | None:
            prev = d - timedelta(days=1)
            if d not in self.candles or prev not in self.candles:
                return None
            days = date_range(d - timedelta(days=self.spec.label_vol_days + 1), d)
            frame, _ = self._span(self.candles, days)
            return triple_barrier(frame, *day_bounds_ms(prev), self.spec.barrier, self.bar_ms)

        return self._cached("labels", day, build)

    def regimes(self, day: date) -> pl.DataFrame | None:
        def build(d: date) -> pl.DataFrame | None:
            frame = self._window(d, self.spec.regime_days)
            return None if frame is None else regimes_for_window(frame, self.spec.regimes, *day_bounds_ms(d))

        return self._cached("regimes", day, build)

    def _outcomes(self, first: date, last: date) -> pl.DataFrame:
        frames = [f for d in date_range(first, last) if (f := self.labels(d)) is not None] if first <= last else []
        return outcomes_from_labels(pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame())

    def _engine_input(self, first: date, last: date, required: date):
        """The ``EngineInput`` the signal assets build (``_Inputs.build``), or None where they skip."""
        days = date_range(first, last)
        candles, _ = self._span(self.candles, days)
        if required not in self.candles or candles is None or self.features(required) is None:
            return None
        columns = self.spec.registry.feature_columns()
        if columns:
            frames = [f for d in days if (f := self.features(d)) is not None]
            feats = pl.concat(frames, how="vertical_relaxed").select("ts", *columns)
        else:
            feats = pl.DataFrame(schema={"ts": pl.Int64})
        frame = candles.sort("ts").unique("ts", keep="last", maintain_order=True)
        reference = self._reference(self.reference, days)
        return engine_input(frame, self.spec.bar_minutes, reference, features=feats)

    def meta(self, day: date) -> MetaState | None:
        """``meta_weights[D]``: the seed day gives the stored state (None: the asset had none, a cold start); the
        chain is replayed forward from it, never before it."""
        seed_day, seed_state = self._meta_seed
        if day == seed_day:
            return seed_state
        if day < seed_day:
            return None

        def build(d: date) -> MetaState | None:
            s = self.spec
            yday = d - timedelta(days=1)
            previous = self.meta(yday)
            due = s.signals.gate.due(previous.gate_as_of if previous else None, d)
            first = yday - timedelta(days=(s.gate_days if due else 0) + s.engine_warmup_days)
            inp = self._engine_input(first, yday, yday)
            if inp is None:
                return None
            today = self._outcomes(d, d)
            gate_args: tuple = (None, None, None)
            if due:
                g0 = yday - timedelta(days=s.gate_days - 1)
                regs = [r for x in date_range(g0, yday) if (r := self.regimes(x)) is not None]
                if regs:
                    window = (day_bounds_ms(g0)[0], day_bounds_ms(yday)[1])
                    gate_args = (window, self._outcomes(g0 + timedelta(days=1), d), pl.concat(regs))
            spreads = self._spreads(
                d - timedelta(days=s.gate_days + s.signals.costs.spread_days), d - timedelta(days=2)
            )
            state, _info = update_meta(
                s.registry, previous, d, inp, day_bounds_ms(yday), today, *gate_args, s.signals, spreads
            )
            return state

        return self._cached("meta", day, build)

    def signals(self, day: date) -> pl.DataFrame | None:
        def build(d: date) -> pl.DataFrame | None:
            s = self.spec
            regimes = self.regimes(d)
            if regimes is None:
                return None
            inp = self._engine_input(d - timedelta(days=s.calibration_days + s.engine_warmup_days), d, d)
            if inp is None:
                return None
            outcomes = self._outcomes(d - timedelta(days=s.calibration_days - 1), d - timedelta(days=1))
            meta = self.meta(d - timedelta(days=1)) or MetaState.cold(self.engines)
            spreads = self._spreads(d - timedelta(days=s.signals.costs.spread_days), d - timedelta(days=1))
            out, _table = day_signals(
                s.registry, inp, *day_bounds_ms(d), outcomes, regimes, meta.state, meta.gate, s.signals, spreads
            )
            return out

        return self._cached("signals", day, build)

    def frames(self, name: str, days: list[date]) -> pl.DataFrame | None:
        """The product ``name`` (features, labels, regimes, signals) of ``days`` concatenated (None if none)."""
        method = getattr(self, name)
        frames = [f for d in days if (f := method(d)) is not None]
        return pl.concat(frames, how="vertical_relaxed") if frames else None
