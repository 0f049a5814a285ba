"""Engine contracts: ``BaseEngine``, ``EngineInput``, ``EngineOutput`` and the ``EngineRegistry``.

An engine is one small, explainable rule over a coin's bars. It is one class in one file under
``core/engines/library/``, registered with :func:`register_engine`, and computes its raw **direction** for every
bar of a frame at once (vectorized numpy / polars / numba, never a Python loop over bars):

- ``+1`` buy, ``-1`` sell, ``0`` wait, and ``NaN`` where the engine is not defined yet (its warm-up, or missing
  inputs). After warm-up on complete data an engine never returns NaN.
- Causal: the value at bar ``t`` reads only bars ``<= t`` of the frame (the no-look-ahead canary checks it).

The engine itself never states how much it expects to make. Its ``edge_bps_before_costs`` and
``confidence_0_1`` come from :mod:`huracan_assets.core.engines.calibration`: the conditional forward return of
its past signals, measured on labels that were resolved before the bar being scored.

``EngineInput.frame`` columns: ``ts`` (Int64, UTC ms of the bar open), ``open``, ``high``, ``low``, ``close``,
``volume`` (Float64), ``ref_close`` (the reference coin's close, as-of backward; null when unknown) and the
columns of the shared feature recipe (Float64, null during their warm-up).
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import polars as pl

from huracan_assets.core.features.recipe import FeatureRecipe, build_features, default_recipe

BUY, WAIT, SELL = 1, 0, -1
DIRECTION_NAMES = {BUY: "buy", WAIT: "wait", SELL: "sell"}
DIRECTION_ENUM = pl.Enum(["sell", "wait", "buy"])
CANDLE_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class EngineInput:
    """A coin's bars (oldest first, unique ``ts``) with reference closes and the shared features."""

    frame: pl.DataFrame
    bar_minutes: int

    def __post_init__(self) -> None:
        missing = [c for c in (*CANDLE_COLUMNS, "ref_close") if c not in self.frame.columns]
        if missing:
            raise ValueError(f"engine input lacks columns {missing}")

    @property
    def n(self) -> int:
        return self.frame.height

    def np(self, column: str) -> np.ndarray:
        """A float64 copy of a column, null as NaN."""
        return self.frame[column].cast(pl.Float64).to_numpy().astype(np.float64, copy=True)

    def bars(self, minutes: float) -> int:
        """A duration in bars of this frame (at least 1)."""
        return max(1, round(minutes / self.bar_minutes))


def engine_input(
    candles: pl.DataFrame,
    bar_minutes: int,
    reference: pl.DataFrame | None = None,
    recipe: FeatureRecipe | None = None,
    features: pl.DataFrame | None = None,
) -> EngineInput:
    """Build an :class:`EngineInput` from candles: joins the reference close (as-of backward, never a later bar)
    and the shared features (built here from ``candles`` unless ``features`` with a ``ts`` column are given)."""
    frame = candles.select(pl.col("ts").cast(pl.Int64), *[pl.col(c).cast(pl.Float64) for c in CANDLE_COLUMNS[1:]])
    frame = frame.sort("ts")
    if reference is not None and reference.height:
        ref = (
            reference.select(pl.col("ts").cast(pl.Int64), pl.col("close").cast(pl.Float64).alias("ref_close"))
            .unique("ts", keep="last")
            .sort("ts")
        )
        frame = frame.join_asof(ref, on="ts", strategy="backward")
    else:
        frame = frame.with_columns(ref_close=pl.lit(None, dtype=pl.Float64))
    if features is None:
        features = build_features(frame.select(CANDLE_COLUMNS), recipe or default_recipe(), reference)
    extra = [c for c in features.columns if c != "ts" and c not in frame.columns]
    frame = frame.join(features.select("ts", *extra), on="ts", how="left")
    return EngineInput(frame, bar_minutes)


class BaseEngine(ABC):
    """One signal engine. Subclasses set ``name``, ``family``, ``defaults`` and implement :meth:`directions`.

    ``params`` are ``defaults`` overridden by config (unknown keys are refused), and are part of
    :meth:`describe`, which the bundle's config and the UI show.
    """

    name: ClassVar[str]
    family: ClassVar[str]  # trend | reversion | breakout | volume | volatility | pattern | cross_asset
    defaults: ClassVar[Mapping[str, Any]] = {}
    # shared-recipe feature columns the engine reads from EngineInput.frame (none: it works from OHLCV alone)
    feature_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(f"engine {self.name}: unknown parameters {unknown}")
        self.params: dict[str, Any] = {**self.defaults, **params}

    @abstractmethod
    def directions(self, inp: EngineInput) -> np.ndarray:
        """Float64 array of length ``inp.n``: +1 buy, -1 sell, 0 wait, NaN not defined (warm-up only)."""

    @abstractmethod
    def warmup_bars(self, bar_minutes: int) -> int:
        """Bars of history the engine needs before its first defined value."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "params": dict(self.params)}


_CATALOG: dict[str, type[BaseEngine]] = {}


def register_engine(cls: type[BaseEngine]) -> type[BaseEngine]:
    """Class decorator: adds an engine class to the catalog the registry picks from."""
    if not getattr(cls, "name", None) or (cls.name in _CATALOG and _CATALOG[cls.name] is not cls):
        raise ValueError(f"engine name {getattr(cls, 'name', None)!r} is missing or taken")
    _CATALOG[cls.name] = cls
    return cls


def catalog() -> dict[str, type[BaseEngine]]:
    """Every registered engine class, after importing the whole ``library`` package."""
    from huracan_assets.core.engines import library

    for module in pkgutil.iter_modules(library.__path__):
        importlib.import_module(f"{library.__name__}.{module.name}")
    return dict(_CATALOG)


@dataclass(frozen=True)
class EngineOutput:
    """An engine's output per bar: the seeds' contract, as arrays aligned with the input frame."""

    engine: str
    direction: np.ndarray  # int8: +1 buy, -1 sell, 0 wait
    edge_bps_before_costs: np.ndarray  # float64, calibrated conditional forward return of the direction
    confidence_0_1: np.ndarray  # float64 in [0, 1]
    horizon_minutes: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, pl.Series]:
        p = self.engine
        return {
            f"{p}__direction": pl.Series(f"{p}__direction", self.direction, dtype=pl.Int8),
            f"{p}__edge_bps": pl.Series(f"{p}__edge_bps", self.edge_bps_before_costs, dtype=pl.Float64),
            f"{p}__confidence": pl.Series(f"{p}__confidence", self.confidence_0_1, dtype=pl.Float64),
        }


class EngineRegistry:
    """The configured, ordered set of engine instances."""

    def __init__(self, engines: Iterable[BaseEngine]) -> None:
        self.engines: tuple[BaseEngine, ...] = tuple(engines)
        names = [e.name for e in self.engines]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate engines in {names}")

    @classmethod
    def default(
        cls, enabled: Iterable[str] | None = None, params: Mapping[str, Mapping[str, Any]] | None = None
    ) -> EngineRegistry:
        """The configured registry: ``enabled`` names (None: every engine of the catalog, in name order) and
        per-engine parameter overrides. Unknown names are refused."""
        known = catalog()
        names = sorted(known) if enabled is None else list(enabled)
        unknown = sorted(set(names) - set(known)) + sorted(set(params or {}) - set(known))
        if unknown:
            raise ValueError(f"unknown engines {unknown}; known: {sorted(known)}")
        return cls(known[n](**dict((params or {}).get(n, {}))) for n in names)

    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.engines)

    def __len__(self) -> int:
        return len(self.engines)

    def __getitem__(self, name: str) -> BaseEngine:
        for engine in self.engines:
            if engine.name == name:
                return engine
        raise KeyError(name)

    def warmup_bars(self, bar_minutes: int) -> int:
        return max((e.warmup_bars(bar_minutes) for e in self.engines), default=0)

    def feature_columns(self) -> tuple[str, ...]:
        """The shared-recipe columns any engine reads (the assets load stored features only if needed)."""
        return tuple(dict.fromkeys(c for e in self.engines for c in e.feature_columns))

    def directions(self, inp: EngineInput) -> pl.DataFrame:
        """``ts`` and one Float64 column per engine (raw directions, NaN in warm-up)."""
        cols = {"ts": inp.frame["ts"]}
        for engine in self.engines:
            values = np.asarray(engine.directions(inp), dtype=np.float64)
            if values.shape != (inp.n,):
                raise ValueError(f"engine {engine.name} returned shape {values.shape}, expected ({inp.n},)")
            bad = np.isfinite(values) & ~np.isin(values, (-1.0, 0.0, 1.0))
            if bad.any():
                raise ValueError(f"engine {engine.name} returned values other than -1, 0, 1 and NaN")
            cols[engine.name] = pl.Series(engine.name, values, dtype=pl.Float64)
        return pl.DataFrame(cols)

    def describe(self) -> list[dict[str, Any]]:
        return [e.describe() for e in self.engines]
