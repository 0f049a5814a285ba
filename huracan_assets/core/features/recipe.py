"""The shared FeatureRecipe and its FeatureBuilder: one definition of the features for training and live.

A :class:`FeatureRecipe` is an ordered tuple of :class:`FeatureSpec` (output name, kind, parameters). Its
:attr:`FeatureRecipe.hash` identifies exactly what the builder computes; model bundles store
:meth:`FeatureRecipe.to_dict` and live inference rebuilds the recipe with :meth:`FeatureRecipe.from_dict`.

Time semantics (ARCHITECTURE "Time semantics"): every feature is causal. Its value at bar t is a function of
the bars ``t - warmup + 1 .. t`` of the given frame only (trailing windows of rows, counted in bars: a gap
in ``ts`` is not filled), and of the reference coin's last close at or before each of those bars. Nothing
is normalized over a whole window of days; there are no centred windows and no shifts into the future.

**Finite exponential kernels (exact live parity).** A textbook EMA or Wilder average depends on its whole
history, so a live engine holding the last N bars could never reproduce the value computed from years of
history. Here every exponential average is a *finite* kernel: the weighted mean of the last ``window`` bars
with weights ``beta**k`` (``k = 0`` for the newest bar, ``beta = 1 - alpha``; ``alpha = 2 / (span + 1)`` for
EMAs, ``1 / period`` for Wilder's smoothing), normalized by the sum of the weights. ``window`` is an explicit
parameter of each spec (so it is in the hash). The default recipe keeps 8 e-folds (``ceil(8 / -ln(beta))``
bars, dropping ``e**-8`` = 0.03% of an infinite EMA's weight) capped at 200 bars, the recipe's warm-up:
EMA(12) 48 bars, EMA(26) 104, EMA(50) 200, EMA(100) 200 (4 e-folds), Wilder(14) 108, Wilder(28) 199,
ADX's two smoothings 100 each. Every feature is therefore a pure function of its last ``warmup`` bars, and
:func:`live_features` on the last :attr:`FeatureRecipe.warmup_bars` bars equals :func:`features_for_window`
on the full history to floating-point rounding (tested at 1e-12, measured ~1e-15): the O(1) kernel
recursion ``s_t = beta s_{t-1} + x_t - beta**window x_{t-window}`` accumulates rounding that decays with
``beta``; price-level window statistics (close z-score, Bollinger) sum each window directly (two-pass) and
are bit-identical. With long windows the kernels converge to the classic recursive indicators: the tests
check RSI, ATR, MACD, ADX and Keltner against the ``ta`` library that way (default windows: RSI within
~0.1 point, MACD within ~1.5% of ``ta``).

Conventions, all documented per kind in :data:`KIND_DOCS`: a value is null until the feature's window is
full (the first ``warmup - 1`` rows of the frame), and whenever it is undefined (a zero denominator, no
trade in the window); non-finite results are returned as null, never NaN or inf. Output columns are Float64.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from huracan_assets.core.market_data.candles import DAY_MS
from huracan_assets.core.spreads import corwin_schultz_pairs_expr

BUILDER_VERSION = "1"
EXP_EFOLDS = 8.0  # finite exponential kernels of the default recipe keep 8 e-folds (dropped weight e^-8 = 0.03%) ...
MAX_KERNEL_BARS = 200  # ... but at most 200 bars, the recipe's warm-up (EMA(100) keeps 4 e-folds, Wilder(28) 7.3)
WEEK_MS = 7 * DAY_MS
MONDAY_OFFSET_MS = 3 * DAY_MS  # 1970-01-01 was a Thursday: (ts + 3 days) % week == 0 on Mondays 00:00 UTC
TIE_EPS = 1e-9  # relative price change treated as "unchanged" where a direction is read (MFI)
CANDLE_COLUMNS = ("ts", "open", "high", "low", "close", "volume")

ParamValue = int | float | str | bool


# --------------------------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class _Kind:
    params: tuple[str, ...]
    warmup: Callable[[Mapping[str, Any]], int]
    doc: str
    outputs: tuple[str, ...] = ()  # allowed values of the "output" parameter, if any
    uses_reference: bool = False


def _macd_warmup(p: Mapping[str, Any]) -> int:
    line = max(p["fast_window"], p["slow_window"])
    return line if p["output"] == "line" else line + p["signal_window"] - 1


_KINDS: dict[str, _Kind] = {
    "log_return": _Kind(("lag",), lambda p: p["lag"] + 1, "ln(close_t / close_{t-lag})"),
    "vol_close": _Kind(("window",), lambda p: p["window"] + 1, "sample std (ddof=1) of 1-bar log returns"),
    "vol_parkinson": _Kind(("window",), lambda p: p["window"], "sqrt(mean(ln(h/l)^2) / (4 ln 2))"),
    "vol_garman_klass": _Kind(
        ("window",), lambda p: p["window"], "sqrt(max(0, mean(0.5 ln(h/l)^2 - (2 ln 2 - 1) ln(c/o)^2)))"
    ),
    "vol_ratio": _Kind(
        ("long", "short"), lambda p: max(p["long"], p["short"]) + 1, "vol_close(short) / vol_close(long)"
    ),
    "atr": _Kind(("period", "window"), lambda p: p["window"] + 1, "Wilder ATR (finite kernel) / close"),
    "rsi": _Kind(
        ("period", "window"), lambda p: p["window"] + 1, "100 G / (G + L), Wilder-smoothed gains/losses; 50 if flat"
    ),
    "macd": _Kind(
        ("fast", "fast_window", "output", "signal", "signal_window", "slow", "slow_window"),
        _macd_warmup,
        "EMA(fast) - EMA(slow) (line), its EMA(signal) (signal), line - signal (hist); each / close",
        outputs=("line", "signal", "hist"),
    ),
    "adx": _Kind(
        ("output", "period", "window"),
        lambda p: 2 * p["window"] if p["output"] == "adx" else p["window"] + 1,
        "Wilder +DI/-DI (0 when the smoothed true range is 0) and ADX = smoothed DX (DX = 0 when +DI + -DI = 0)",
        outputs=("adx", "plus_di", "minus_di"),
    ),
    "bollinger": _Kind(
        ("k", "output", "window"),
        lambda p: p["window"],
        "SMA and population std (ddof=0) of close: width = 2k std / SMA, pctb = (close - lower) / (upper - lower)",
        outputs=("width", "pctb"),
    ),
    "keltner": _Kind(
        ("atr_period", "atr_window", "ema_span", "ema_window", "multiplier", "output"),
        lambda p: max(p["ema_window"], p["atr_window"] + 1),
        "EMA(close) -+ multiplier ATR: width = 2 m ATR / EMA, pos = (close - lower) / (upper - lower)",
        outputs=("width", "pos"),
    ),
    "zscore_close": _Kind(("window",), lambda p: p["window"], "(close - SMA) / std (ddof=1) of close"),
    "volume_zscore": _Kind(("window",), lambda p: p["window"], "(volume - mean) / std (ddof=1) of volume"),
    "relative_volume": _Kind(("window",), lambda p: p["window"], "volume / mean volume (window includes t)"),
    "dist_high": _Kind(("window",), lambda p: p["window"], "ln(close / max(high))"),
    "dist_low": _Kind(("window",), lambda p: p["window"], "ln(close / min(low))"),
    "ema_ratio": _Kind(("span", "window"), lambda p: p["window"], "close / EMA(span) - 1"),
    "ema_cross": _Kind(
        ("fast", "fast_window", "slow", "slow_window"),
        lambda p: max(p["fast_window"], p["slow_window"]),
        "EMA(fast) / EMA(slow) - 1",
    ),
    "amihud": _Kind(
        ("scale", "window"),
        lambda p: p["window"] + 1,
        "scale x mean(|ln ret| / (close x volume)) over the window's bars that traded; null if none did",
    ),
    "corwin_schultz": _Kind(
        ("window",), lambda p: p["window"] + 1, "mean of the 2-bar Corwin-Schultz spread (negatives set to 0)"
    ),
    "time_of_day": _Kind(("output",), lambda p: 1, "sin/cos of 2 pi (ts mod day) / day (UTC)", outputs=("sin", "cos")),
    "day_of_week": _Kind(
        ("output",), lambda p: 1, "sin/cos of the phase in the UTC week (Monday 00:00 = 0)", outputs=("sin", "cos")
    ),
    "rel_strength": _Kind(
        ("lag",), lambda p: p["lag"] + 1, "ln return of the coin minus the reference's over lag", uses_reference=True
    ),
    "beta_ref": _Kind(
        ("window",), lambda p: p["window"] + 1, "cov(r, r_ref) / var(r_ref) of 1-bar log returns", uses_reference=True
    ),
    "corr_ref": _Kind(
        ("window",), lambda p: p["window"] + 1, "corr(r, r_ref) of 1-bar log returns", uses_reference=True
    ),
    "log_range": _Kind((), lambda p: 1, "ln(high / low) of the bar"),
    "close_location": _Kind((), lambda p: 1, "((c - l) - (h - c)) / (h - l); 0 when h == l"),
    "stochastic": _Kind(("window",), lambda p: p["window"], "100 (close - min low) / (max high - min low)"),
    "mfi": _Kind(("window",), lambda p: p["window"] + 1, "money flow index: 100 P / (P + N) of typical price x volume"),
    "vwap_dist": _Kind(("window",), lambda p: p["window"], "ln(close / rolling VWAP of the typical price)"),
}
FEATURE_KINDS: tuple[str, ...] = tuple(_KINDS)
KIND_DOCS: dict[str, str] = {k: v.doc for k, v in _KINDS.items()}


# --------------------------------------------------------------------------------------------- specs


def _normalize_params(params: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> tuple[tuple[str, ParamValue], ...]:
    items = params.items() if isinstance(params, Mapping) else params
    out = []
    for key, value in items:
        if not isinstance(key, str) or not isinstance(value, int | float | str | bool):
            raise TypeError(f"feature parameters are str -> int | float | str | bool, got {key!r}: {value!r}")
        out.append((key, value))
    return tuple(sorted(out))


@dataclass(frozen=True)
class FeatureSpec:
    """One output column: its name, the kind of computation (:data:`FEATURE_KINDS`) and its parameters.

    ``params`` is normalized to a tuple of (key, value) pairs sorted by key, so specs are hashable and
    compare equal whatever order the parameters were given in.
    """

    name: str
    kind: str
    params: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", _normalize_params(self.params))
        kind = _KINDS.get(self.kind)
        if kind is None:
            raise ValueError(f"{self.name}: unknown feature kind {self.kind!r} (known: {', '.join(FEATURE_KINDS)})")
        keys = tuple(k for k, _ in self.params)
        if keys != kind.params:
            raise ValueError(f"{self.name}: kind {self.kind!r} takes parameters {kind.params}, got {keys}")
        p = self.param_dict
        if kind.outputs and p["output"] not in kind.outputs:
            raise ValueError(f"{self.name}: output must be one of {kind.outputs}, got {p['output']!r}")
        for key in ("lag", "window", "period", "span", "fast", "slow", "signal", "short", "long"):
            if key in p and key != "output" and (not isinstance(p[key], int) or p[key] < 1):
                raise ValueError(f"{self.name}: {key} must be a positive int, got {p[key]!r}")
        for key in ("fast_window", "slow_window", "signal_window", "ema_window", "atr_window"):
            if key in p and (not isinstance(p[key], int) or p[key] < 1):
                raise ValueError(f"{self.name}: {key} must be a positive int, got {p[key]!r}")

    @classmethod
    def make(cls, name: str, kind: str, **params: ParamValue) -> FeatureSpec:
        return cls(name, kind, tuple(params.items()))

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def warmup_bars(self) -> int:
        """Bars of history, the current bar included, the feature needs to be fully defined."""
        return int(_KINDS[self.kind].warmup(self.param_dict))

    @property
    def uses_reference(self) -> bool:
        return _KINDS[self.kind].uses_reference

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "params": self.param_dict}


@dataclass(frozen=True)
class FeatureRecipe:
    """The ordered, parameterized list of features and its stable hash (ARCHITECTURE "Contracts")."""

    specs: tuple[FeatureSpec, ...]
    name: str = "default"

    def __post_init__(self) -> None:
        object.__setattr__(self, "specs", tuple(self.specs))
        if not self.specs:
            raise ValueError("a recipe needs at least one feature")
        names = [s.name for s in self.specs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {dupes}")
        if "ts" in names:
            raise ValueError("'ts' is reserved for the bar timestamp")

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    @cached_property
    def hash(self) -> str:
        """First 16 hex chars of sha256 over a canonical JSON of BUILDER_VERSION and every spec (name, kind,
        params). The recipe's own ``name`` is a label and not part of the hash."""
        payload = {"builder_version": BUILDER_VERSION, "specs": [s.to_dict() for s in self.specs]}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
        return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]

    @cached_property
    def warmup_bars(self) -> int:
        """The most bars of history (current bar included) any feature needs to be fully defined."""
        return max(s.warmup_bars for s in self.specs)

    @cached_property
    def uses_reference(self) -> bool:
        return any(s.uses_reference for s in self.specs)

    def subset(self, names: Iterable[str], name: str | None = None) -> FeatureRecipe:
        wanted = set(names)
        return FeatureRecipe(tuple(s for s in self.specs if s.name in wanted), name or f"{self.name}-subset")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "builder_version": BUILDER_VERSION,
            "hash": self.hash,
            "warmup_bars": self.warmup_bars,
            "specs": [s.to_dict() for s in self.specs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureRecipe:
        """Inverse of :meth:`to_dict`. Refuses a recipe written by another BUILDER_VERSION or whose stored
        hash does not match (the features would not be the ones the model was trained on)."""
        version = data.get("builder_version", BUILDER_VERSION)
        if version != BUILDER_VERSION:
            raise ValueError(f"recipe was written by feature builder {version!r}, this is {BUILDER_VERSION!r}")
        specs = tuple(FeatureSpec(s["name"], s["kind"], tuple(dict(s["params"]).items())) for s in data["specs"])
        recipe = cls(specs, data.get("name", "default"))
        stored = data.get("hash")
        if stored is not None and stored != recipe.hash:
            raise ValueError(f"recipe hash mismatch: stored {stored}, rebuilt {recipe.hash}")
        return recipe


def exp_window(alpha: float, efolds: float = EXP_EFOLDS, cap: int | None = MAX_KERNEL_BARS) -> int:
    """Bars of a finite exponential kernel with decay ``1 - alpha``: ``efolds`` e-folds, at most ``cap``."""
    bars = math.ceil(efolds / -math.log1p(-alpha) - 1e-9)
    return bars if cap is None else min(bars, cap)


def ema_window(span: int, efolds: float = EXP_EFOLDS, cap: int | None = MAX_KERNEL_BARS) -> int:
    return exp_window(2.0 / (span + 1), efolds, cap)


def wilder_window(period: int, efolds: float = EXP_EFOLDS, cap: int | None = MAX_KERNEL_BARS) -> int:
    return exp_window(1.0 / period, efolds, cap)


def default_recipe() -> FeatureRecipe:
    """The shared recipe: 63 causal features, warm-up 200 bars (EMA(100), RSI(28), ATR(28) and ADX(14))."""
    s = FeatureSpec.make
    specs: list[FeatureSpec] = [s(f"ret_{k}", "log_return", lag=k) for k in (1, 3, 6, 12, 24, 48)]
    for w in (12, 24, 96):
        specs += [
            s(f"vol_cc_{w}", "vol_close", window=w),
            s(f"vol_pk_{w}", "vol_parkinson", window=w),
            s(f"vol_gk_{w}", "vol_garman_klass", window=w),
        ]
    specs.append(s("vol_ratio_24_96", "vol_ratio", short=24, long=96))
    cap = MAX_KERNEL_BARS - 1  # ATR and RSI smooth bar-to-bar changes: one more bar of warm-up
    specs += [s(f"atr_pct_{n}", "atr", period=n, window=wilder_window(n, cap=cap)) for n in (14, 28)]
    specs += [s(f"rsi_{n}", "rsi", period=n, window=wilder_window(n, cap=cap)) for n in (14, 28)]
    macd = {"fast": 12, "slow": 26, "signal": 9, "fast_window": ema_window(12), "slow_window": ema_window(26)}
    specs += [s(f"macd_{o}", "macd", output=o, signal_window=ema_window(9), **macd) for o in ("line", "signal", "hist")]
    adx_window = wilder_window(14, cap=MAX_KERNEL_BARS // 2)  # ADX smooths twice: 2 x 100 bars of warm-up
    specs += [s(f"{o}_14", "adx", output=o, period=14, window=adx_window) for o in ("adx", "plus_di", "minus_di")]
    specs += [s(f"bb_{o}_20", "bollinger", output=o, window=20, k=2.0) for o in ("width", "pctb")]
    kc = {"ema_span": 20, "ema_window": ema_window(20), "atr_period": 10, "atr_window": wilder_window(10)}
    specs += [s(f"kc_{o}_20", "keltner", output=o, multiplier=2.0, **kc) for o in ("width", "pos")]
    specs += [s(f"zscore_close_{w}", "zscore_close", window=w) for w in (20, 50)]
    specs += [s(f"volume_z_{w}", "volume_zscore", window=w) for w in (20, 50)]
    specs += [s(f"rel_volume_{w}", "relative_volume", window=w) for w in (20, 50)]
    for w in (24, 96):
        specs += [s(f"dist_high_{w}", "dist_high", window=w), s(f"dist_low_{w}", "dist_low", window=w)]
    specs += [s(f"close_ema_{n}", "ema_ratio", span=n, window=ema_window(n)) for n in (12, 26, 50, 100)]
    specs.append(s("ema_12_26", "ema_cross", fast=12, slow=26, fast_window=ema_window(12), slow_window=ema_window(26)))
    specs += [s(f"amihud_{w}", "amihud", window=w, scale=1e6) for w in (24, 96)]
    specs += [s(f"cs_spread_{w}", "corwin_schultz", window=w) for w in (24, 96)]
    specs += [s(f"tod_{o}", "time_of_day", output=o) for o in ("sin", "cos")]
    specs += [s(f"dow_{o}", "day_of_week", output=o) for o in ("sin", "cos")]
    specs += [s(f"rs_ref_{k}", "rel_strength", lag=k) for k in (6, 24, 72)]
    specs += [s("beta_ref_72", "beta_ref", window=72), s("corr_ref_72", "corr_ref", window=72)]
    specs += [
        s("log_range", "log_range"),
        s("clv", "close_location"),
        s("stoch_k_14", "stochastic", window=14),
        s("mfi_14", "mfi", window=14),
        s("vwap_dist_24", "vwap_dist", window=24),
    ]
    return FeatureRecipe(tuple(specs), "default")


# --------------------------------------------------------------------------------------------- kernels


@njit(nogil=True)
def _fir_ema(x: np.ndarray, alpha: float, window: int) -> np.ndarray:  # pragma: no cover - numba
    """Finite exponential mean: sum_{k<window} beta^k x[t-k] / sum_{k<window} beta^k, beta = 1 - alpha.

    O(1) per bar: s_t = beta s_{t-1} + x_t - beta^window x_{t-window}; rounding errors decay with beta^k.
    NaN until ``window`` consecutive non-NaN values; a NaN restarts it. A window of zeros gives exactly 0.
    """
    n = x.shape[0]
    out = np.full(n, np.nan)
    beta = 1.0 - alpha
    norm = 0.0
    weight = 1.0
    for _ in range(window):
        norm += weight
        weight *= beta
    tail = weight  # beta ** window
    s = 0.0
    run = 0
    nonzero = 0
    for i in range(n):
        xi = x[i]
        if np.isnan(xi):
            s = 0.0
            run = 0
            nonzero = 0
            continue
        s = beta * s + xi
        run += 1
        if xi != 0.0:
            nonzero += 1
        if run > window:
            old = x[i - window]
            s -= tail * old
            if old != 0.0:
                nonzero -= 1
        if run >= window:
            out[i] = s / norm if nonzero > 0 else 0.0
    return out


@njit(nogil=True)
def _window_mean_ss(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - numba
    """Two-pass mean and sum of squared deviations over each trailing window, summed directly.

    Used for price-level statistics (close z-score, Bollinger), where running sums would lose digits to
    cancellation: each window is summed on its own, so the result does not depend on earlier bars at all.
    A constant window gives its value and exactly 0. NaN when the window is short or holds a NaN.
    """
    n = x.shape[0]
    mean = np.full(n, np.nan)
    ss = np.full(n, np.nan)
    for i in range(window - 1, n):
        total = 0.0
        lo = x[i]
        hi = x[i]
        bad = False
        for k in range(i - window + 1, i + 1):
            v = x[k]
            if np.isnan(v):
                bad = True
                break
            total += v
            lo = min(lo, v)
            hi = max(hi, v)
        if bad:
            continue
        if lo == hi:
            mean[i] = lo
            ss[i] = 0.0
            continue
        m = total / window
        acc = 0.0
        for k in range(i - window + 1, i + 1):
            d = x[k] - m
            acc += d * d
        mean[i] = m
        ss[i] = acc
    return mean, ss


# --------------------------------------------------------------------------------------------- builder


def _prepare(candles: pl.DataFrame) -> pl.DataFrame:
    missing = [col for col in CANDLE_COLUMNS if col not in candles.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}")
    frame = candles.select(
        pl.col("ts").cast(pl.Int64), *[pl.col(col).cast(pl.Float64) for col in CANDLE_COLUMNS if col != "ts"]
    )
    if frame.height > 1 and not (frame["ts"].diff().drop_nulls() > 0).all():
        raise ValueError("candles must be sorted by ts with unique timestamps")
    return frame


def _join_reference(frame: pl.DataFrame, reference: pl.DataFrame | None) -> pl.DataFrame:
    """Adds ``_ref`` (the reference close at or before each bar: as-of backward, never a later bar)."""
    if reference is None:
        return frame.with_columns(_ref=pl.lit(None, dtype=pl.Float64))
    ref = (
        reference.select(pl.col("ts").cast(pl.Int64), pl.col("close").cast(pl.Float64).alias("_ref"))
        .filter(pl.col("_ref").is_not_null())
        .unique("ts", keep="last")
        .sort("ts")
    )
    return frame.join_asof(ref, on="ts", strategy="backward", check_sortedness=False)


class _Context:
    """Memoized intermediates of one build: helper columns (polars) and finite kernels (numpy/numba)."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame
        self.arrays: dict[str, np.ndarray] = {}  # extra columns, added to the frame before the final select
        self._np: dict[str, np.ndarray] = {}
        self._memo: dict[tuple, np.ndarray] = {}

    def np(self, col: str) -> np.ndarray:
        if col not in self._np:
            self._np[col] = self.frame[col].to_numpy(allow_copy=True).astype(np.float64, copy=False)
        return self._np[col]

    def ema(self, col: str, alpha: float, window: int) -> np.ndarray:
        key = ("ema", col, alpha, window)
        if key not in self._memo:
            self._memo[key] = _fir_ema(np.ascontiguousarray(self.np(col)), alpha, window)
        return self._memo[key]

    def ema_of(self, name: str, values: np.ndarray, alpha: float, window: int) -> np.ndarray:
        key = ("ema_of", name, alpha, window)
        if key not in self._memo:
            self._memo[key] = _fir_ema(np.ascontiguousarray(values), alpha, window)
        return self._memo[key]

    def close_stats(self, window: int) -> tuple[np.ndarray, np.ndarray]:
        key = ("stats", window)
        if key not in self._memo:
            self._memo[key] = _window_mean_ss(np.ascontiguousarray(self.np("close")), window)
        return self._memo[key]

    def put(self, name: str, values: np.ndarray) -> pl.Expr:
        col = f"__np_{name}"
        self.arrays[col] = values
        return pl.col(col)

    def dmi(self, period: int, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = ("dmi", period, window)
        if key not in self._memo:
            a = 1.0 / period
            tr, pdm, mdm = self.ema("_tr", a, window), self.ema("_pdm", a, window), self.ema("_mdm", a, window)
            with np.errstate(divide="ignore", invalid="ignore"):
                pdi = 100.0 * pdm / tr
                mdi = 100.0 * mdm / tr
                pdi[tr == 0.0] = 0.0
                mdi[tr == 0.0] = 0.0
                total = pdi + mdi
                dx = 100.0 * np.abs(pdi - mdi) / total
                dx[total == 0.0] = 0.0
            self._memo[key] = (pdi, mdi, self.ema_of(f"dx_{period}_{window}", dx, a, window))
        return self._memo[key]


_LN2 = math.log(2.0)

# column shorthands for the formulas below
c, o, h, lo, v, ts = (pl.col(n) for n in ("close", "open", "high", "low", "volume", "ts"))


def _helper_exprs() -> dict[str, pl.Expr]:
    """Per-bar helper columns; each uses the bar and the one before it at most."""
    r = (c / c.shift(1)).log()
    hl = (h / lo).log()
    pc = c.shift(1)
    first = pl.when(pc.is_not_null()).then(pl.lit(0.0))  # added to columns that need the previous bar
    up, down = h - h.shift(1), lo.shift(1) - lo
    hlc = h + lo + c
    tp = hlc / 3.0
    # direction of the typical price; a change within rounding noise (1e-9 relative, far below any tick)
    # is a tie, so equal decimal prices never flip the money flow's sign through float rounding
    dtp = hlc - hlc.shift(1)
    dtp = pl.when(dtp.abs() > TIE_EPS * hlc).then(dtp).otherwise(0.0)
    qv = c * v
    return {
        "_r": r,
        "_hl2": hl.pow(2),
        "_gk": 0.5 * hl.pow(2) - (2.0 * _LN2 - 1.0) * (c / o).log().pow(2),
        "_tr": pl.max_horizontal(h - lo, (h - pc).abs(), (lo - pc).abs()) + first,
        "_pdm": pl.when((up > down) & (up > 0)).then(up).otherwise(0.0) + first,
        "_mdm": pl.when((down > up) & (down > 0)).then(down).otherwise(0.0) + first,
        "_gain": (c - pc).clip(lower_bound=0.0),
        "_loss": (pc - c).clip(lower_bound=0.0),
        "_mf_pos": pl.when(dtp > 0).then(tp * v).otherwise(0.0) + first,
        "_mf_neg": pl.when(dtp < 0).then(tp * v).otherwise(0.0) + first,
        "_tpv": tp * v,
        "_illiq": pl.when(qv > 0).then(r.abs() / qv),
        "_cs": corwin_schultz_pairs_expr(h, lo),  # huracan_assets.core.spreads
        "_rb": (pl.col("_ref") / pl.col("_ref").shift(1)).log(),
    }


_KIND_HELPERS: dict[str, tuple[str, ...]] = {
    "vol_close": ("_r",),
    "vol_ratio": ("_r",),
    "vol_parkinson": ("_hl2",),
    "vol_garman_klass": ("_gk",),
    "atr": ("_tr",),
    "keltner": ("_tr",),
    "adx": ("_tr", "_pdm", "_mdm"),
    "rsi": ("_gain", "_loss"),
    "amihud": ("_illiq",),
    "corwin_schultz": ("_cs",),
    "beta_ref": ("_r", "_rb"),
    "corr_ref": ("_r", "_rb"),
    "mfi": ("_mf_pos", "_mf_neg"),
    "vwap_dist": ("_tpv",),
}


def _feature_expr(ctx: _Context, spec: FeatureSpec) -> pl.Expr:  # noqa: C901 - a dispatch table
    p = spec.param_dict
    kind = spec.kind
    w = p.get("window")
    if kind == "log_return":
        return (c / c.shift(p["lag"])).log()
    if kind == "vol_close":
        return pl.col("_r").rolling_std(w)
    if kind == "vol_parkinson":
        return (pl.col("_hl2").rolling_mean(w) / (4.0 * _LN2)).sqrt()
    if kind == "vol_garman_klass":
        return pl.col("_gk").rolling_mean(w).clip(lower_bound=0.0).sqrt()
    if kind == "vol_ratio":
        return pl.col("_r").rolling_std(p["short"]) / pl.col("_r").rolling_std(p["long"])
    if kind == "atr":
        return ctx.put(spec.name, ctx.ema("_tr", 1.0 / p["period"], w) / ctx.np("close"))
    if kind == "rsi":
        a = 1.0 / p["period"]
        gain, loss = ctx.ema("_gain", a, w), ctx.ema("_loss", a, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            rsi = 100.0 * gain / (gain + loss)
        rsi[(gain + loss) == 0.0] = 50.0
        return ctx.put(spec.name, rsi)
    if kind == "macd":
        return ctx.put(spec.name, _macd(ctx, p))
    if kind == "adx":
        pdi, mdi, adx = ctx.dmi(p["period"], w)
        return ctx.put(spec.name, {"adx": adx, "plus_di": pdi, "minus_di": mdi}[p["output"]])
    if kind == "bollinger":
        mean, ss = ctx.close_stats(w)
        sd = np.sqrt(ss / w)
        with np.errstate(divide="ignore", invalid="ignore"):
            if p["output"] == "width":
                out = 2.0 * p["k"] * sd / mean
            else:
                out = (ctx.np("close") - (mean - p["k"] * sd)) / (2.0 * p["k"] * sd)
        return ctx.put(spec.name, out)
    if kind == "keltner":
        mid = ctx.ema("close", 2.0 / (p["ema_span"] + 1), p["ema_window"])
        atr = ctx.ema("_tr", 1.0 / p["atr_period"], p["atr_window"])
        band = 2.0 * p["multiplier"] * atr
        with np.errstate(divide="ignore", invalid="ignore"):
            if p["output"] == "width":
                out = band / mid
            else:
                out = (ctx.np("close") - (mid - p["multiplier"] * atr)) / band
        return ctx.put(spec.name, out)
    if kind == "zscore_close":
        mean, ss = ctx.close_stats(w)
        with np.errstate(divide="ignore", invalid="ignore"):
            return ctx.put(spec.name, (ctx.np("close") - mean) / np.sqrt(ss / (w - 1)))
    if kind == "volume_zscore":
        z = (v - v.rolling_mean(w)) / v.rolling_std(w)
        return pl.when(v.rolling_max(w) > v.rolling_min(w)).then(z)
    if kind == "relative_volume":
        return pl.when(v.rolling_max(w) > 0).then(v / v.rolling_mean(w))
    if kind == "dist_high":
        return (c / h.rolling_max(w)).log()
    if kind == "dist_low":
        return (c / lo.rolling_min(w)).log()
    if kind == "ema_ratio":
        return ctx.put(spec.name, ctx.np("close") / ctx.ema("close", 2.0 / (p["span"] + 1), w) - 1.0)
    if kind == "ema_cross":
        fast = ctx.ema("close", 2.0 / (p["fast"] + 1), p["fast_window"])
        slow = ctx.ema("close", 2.0 / (p["slow"] + 1), p["slow_window"])
        return ctx.put(spec.name, fast / slow - 1.0)
    if kind == "amihud":
        return pl.col("_illiq").rolling_mean(w, min_samples=1) * p["scale"]
    if kind == "corwin_schultz":
        return pl.col("_cs").rolling_mean(w)
    if kind in ("time_of_day", "day_of_week"):
        period, offset = (DAY_MS, 0) if kind == "time_of_day" else (WEEK_MS, MONDAY_OFFSET_MS)
        angle = ((ts + offset) % period).cast(pl.Float64) * (2.0 * math.pi / period)
        return angle.sin() if p["output"] == "sin" else angle.cos()
    if kind == "rel_strength":
        k = p["lag"]
        return (c / c.shift(k)).log() - (pl.col("_ref") / pl.col("_ref").shift(k)).log()
    if kind in ("beta_ref", "corr_ref"):
        rb = pl.col("_rb")
        moving = rb.rolling_max(w) > rb.rolling_min(w)
        if kind == "beta_ref":
            return pl.when(moving).then(pl.rolling_cov("_r", "_rb", window_size=w) / rb.rolling_var(w))
        r = pl.col("_r")
        return pl.when(moving & (r.rolling_max(w) > r.rolling_min(w))).then(pl.rolling_corr("_r", "_rb", window_size=w))
    if kind == "log_range":
        return (h / lo).log()
    if kind == "close_location":
        return pl.when(h > lo).then(((c - lo) - (h - c)) / (h - lo)).otherwise(0.0)
    if kind == "stochastic":
        low = lo.rolling_min(w)
        return 100.0 * (c - low) / (h.rolling_max(w) - low)
    if kind == "mfi":
        pos, neg = pl.col("_mf_pos").rolling_sum(w), pl.col("_mf_neg").rolling_sum(w)
        return pl.when((pl.col("_mf_pos") + pl.col("_mf_neg")).rolling_max(w) > 0).then(100.0 * pos / (pos + neg))
    if kind == "vwap_dist":
        return pl.when(v.rolling_max(w) > 0).then((c / (pl.col("_tpv").rolling_sum(w) / v.rolling_sum(w))).log())
    raise AssertionError(f"unhandled kind {kind}")  # pragma: no cover - FeatureSpec validates kinds


def _macd(ctx: _Context, p: Mapping[str, Any]) -> np.ndarray:
    fast = ctx.ema("close", 2.0 / (p["fast"] + 1), p["fast_window"])
    slow = ctx.ema("close", 2.0 / (p["slow"] + 1), p["slow_window"])
    line = fast - slow
    close = ctx.np("close")
    if p["output"] == "line":
        return line / close
    key = f"macd_{p['fast']}_{p['fast_window']}_{p['slow']}_{p['slow_window']}"
    signal = ctx.ema_of(key, line, 2.0 / (p["signal"] + 1), p["signal_window"])
    return (signal if p["output"] == "signal" else line - signal) / close


def build_features(candles: pl.DataFrame, recipe: FeatureRecipe, reference: pl.DataFrame | None = None) -> pl.DataFrame:
    """``ts`` and the recipe's features (Float64, in ``recipe.names`` order), one row per candle row.

    ``candles``: ts (Int64 UTC ms of the bar open), open, high, low, close, volume; sorted, unique ts, gaps
    allowed (windows count rows, not minutes). ``reference``: ts and close of the reference coin (BTC); it
    is joined as-of backward, so a missing reference bar takes the last known reference close, never a
    later one. When ``reference`` is None, the cross-asset features (``rel_strength``, ``beta_ref``,
    ``corr_ref``) are all null; every other feature is unaffected.

    No value depends on a later bar. A feature is null on the first ``warmup - 1`` rows of the frame and
    wherever it is undefined; non-finite values are returned as null.
    """
    frame = _prepare(candles)
    schema = {"ts": pl.Int64, **dict.fromkeys(recipe.names, pl.Float64)}
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    frame = _join_reference(frame, reference if recipe.uses_reference else None)
    helpers = _helper_exprs()
    needed = dict.fromkeys(n for spec in recipe.specs for n in _KIND_HELPERS.get(spec.kind, ()))
    frame = frame.with_columns([helpers[n].alias(n) for n in needed])
    ctx = _Context(frame)
    exprs = [_feature_expr(ctx, spec).cast(pl.Float64).alias(spec.name) for spec in recipe.specs]
    if ctx.arrays:
        frame = frame.with_columns([pl.Series(name, arr, dtype=pl.Float64) for name, arr in ctx.arrays.items()])
    raw = frame.select(ts, *exprs)
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    masked = [
        pl.when((row >= spec.warmup_bars - 1) & pl.col(spec.name).is_finite()).then(pl.col(spec.name)).alias(spec.name)
        for spec in recipe.specs
    ]
    return raw.select(ts, *masked)


def features_for_window(
    candles: pl.DataFrame,
    recipe: FeatureRecipe,
    start_ms: int,
    end_ms: int,
    reference: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Features of the bars with ts in ``[start_ms, end_ms)``, built over every given bar before ``end_ms``
    (warm-up + the day). Bars at or after ``end_ms`` are dropped before building, reference bars too."""
    frame = candles.filter(pl.col("ts") < end_ms)
    ref = None if reference is None else reference.filter(pl.col("ts") < end_ms)
    out = build_features(frame, recipe, ref)
    return out.filter(pl.col("ts") >= start_ms)


def live_features(
    last_bars: pl.DataFrame, recipe: FeatureRecipe, reference_last_bars: pl.DataFrame | None = None
) -> pl.DataFrame:
    """The features of the LAST bar of ``last_bars`` (a one-row frame: ts + ``recipe.names``).

    Uses exactly the last ``recipe.warmup_bars`` bars (more may be given; fewer raise ValueError), so the
    result is the same whatever history the live engine holds, and equals :func:`features_for_window`'s row
    for that bar computed from the full history (to <= 1e-12; see the module doc on finite kernels).
    ``reference_last_bars`` are the reference coin's recent bars (ts, close), joined as-of backward.
    """
    frame = _prepare(last_bars)
    if frame.height < recipe.warmup_bars:
        raise ValueError(f"live features need the last {recipe.warmup_bars} bars, got {frame.height}")
    frame = frame.tail(recipe.warmup_bars)
    ref = None
    if reference_last_bars is not None:
        ref = reference_last_bars.filter(pl.col("ts") <= frame["ts"][-1])
    return build_features(frame, recipe, ref).tail(1)
