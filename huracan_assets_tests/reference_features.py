"""Plain pandas references for the FeatureRecipe kinds: the tests' oracle and the benchmark's baseline.

Written independently of ``huracan_assets.core.features`` (nothing is imported from it): straightforward
pandas (``rolling``, ``ewm``, ``shift``) on float64 Series. Definitions, as documented in the recipe module:

- bars are rows: windows count rows; a feature is NaN until its window is full;
- finite exponential kernel of ``window`` bars with decay ``beta = 1 - alpha``:
  ``sum_{k<window} beta^k x[t-k] / sum_{k<window} beta^k``. Computed here in closed form from pandas' own
  (infinite, ``adjust=True``) EWM: with ``S_t = sum_{k<=t} beta^k x[t-k] = ewm_mean_t * sum_{k<=t} beta^k``,
  the finite kernel is ``(S_t - beta^window S_{t-window}) / sum_{k<window} beta^k`` - a different algorithm
  from the package's O(1) recursion, which is the point of a reference;
- undefined values (zero denominators) are NaN, except the documented conventions: RSI 50 when the window
  has no price change, +DI/-DI 0 when the smoothed true range is 0, DX 0 when +DI + -DI is 0, close
  location 0 when high == low, a kernel over a window of zeros is exactly 0.

``reference_features(candles, specs, reference)`` takes the specs as ``(name, kind, params)`` triples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

LN2 = math.log(2.0)
DAY_MS = 86_400_000


def fir_ema(x: pd.Series, alpha: float, window: int) -> pd.Series:
    """Finite exponential mean of the last ``window`` values (NaN values may only lead the series)."""
    values = x.to_numpy(dtype=float)
    out = np.full(len(values), np.nan)
    valid = np.flatnonzero(~np.isnan(values))
    if len(valid) == 0:
        return pd.Series(out, index=x.index)
    first = valid[0]
    y = pd.Series(values[first:])
    if y.isna().any():
        raise ValueError("the reference kernel supports leading NaNs only")
    beta = 1.0 - alpha
    j = np.arange(len(y))
    total = y.ewm(alpha=alpha, adjust=True).mean().to_numpy() * (1.0 - beta ** (j + 1)) / alpha
    lagged = np.concatenate([np.zeros(window), total[:-window]])[: len(total)]
    fir = (total - beta**window * lagged) / ((1.0 - beta**window) / alpha)
    zero_window = y.ne(0.0).astype(float).rolling(window).sum().to_numpy() == 0
    fir[zero_window] = 0.0
    fir[: window - 1] = np.nan
    out[first:] = fir
    return pd.Series(out, index=x.index)


def true_range(h: pd.Series, low: pd.Series, c: pd.Series) -> pd.Series:
    pc = c.shift(1)
    return pd.concat([h - low, (h - pc).abs(), (low - pc).abs()], axis=1).max(axis=1, skipna=False)


def _nan_where(values: pd.Series, condition: pd.Series) -> pd.Series:
    return values.where(~condition, np.nan)


class _Frame:
    """Candles as pandas Series plus lazily computed shared intermediates."""

    def __init__(self, candles: pd.DataFrame, reference: pd.DataFrame | None):
        self.ts = candles["ts"].astype("int64")
        self.o, self.h, self.l, self.c, self.v = (
            candles[k].astype(float) for k in ("open", "high", "low", "close", "volume")
        )
        self.r = np.log(self.c / self.c.shift(1))
        if reference is not None:
            ref = reference[["ts", "close"]].rename(columns={"close": "ref"}).sort_values("ts")
            merged = pd.merge_asof(
                candles[["ts"]].astype("int64"), ref.astype({"ts": "int64"}), on="ts", direction="backward"
            )
            self.ref = merged["ref"].astype(float).set_axis(candles.index)
        else:
            self.ref = pd.Series(np.nan, index=candles.index)
        self.tr = true_range(self.h, self.l, self.c)


def _vol_close(f: _Frame, w: int) -> pd.Series:
    return f.r.rolling(w).std()


def _ema_close(f: _Frame, span: int, window: int) -> pd.Series:
    return fir_ema(f.c, 2.0 / (span + 1), window)


def _dmi(f: _Frame, period: int, window: int) -> tuple[pd.Series, pd.Series, pd.Series]:
    up = f.h - f.h.shift(1)
    down = f.l.shift(1) - f.l
    pdm = up.where((up > down) & (up > 0), 0.0)
    mdm = down.where((down > up) & (down > 0), 0.0)
    pdm.iloc[0] = mdm.iloc[0] = np.nan
    a = 1.0 / period
    tr_s, pdm_s, mdm_s = fir_ema(f.tr, a, window), fir_ema(pdm, a, window), fir_ema(mdm, a, window)
    pdi = (100.0 * pdm_s / tr_s).where(tr_s != 0, 0.0).where(tr_s.notna())
    mdi = (100.0 * mdm_s / tr_s).where(tr_s != 0, 0.0).where(tr_s.notna())
    total = pdi + mdi
    dx = (100.0 * (pdi - mdi).abs() / total).where(total != 0, 0.0).where(total.notna())
    return pdi, mdi, fir_ema(dx, a, window)


def _macd(f: _Frame, p: Mapping[str, Any]) -> pd.Series:
    line = _ema_close(f, p["fast"], p["fast_window"]) - _ema_close(f, p["slow"], p["slow_window"])
    if p["output"] == "line":
        return line / f.c
    signal = fir_ema(line, 2.0 / (p["signal"] + 1), p["signal_window"])
    return (signal if p["output"] == "signal" else line - signal) / f.c


def _bollinger(f: _Frame, p: Mapping[str, Any]) -> pd.Series:
    w, k = p["window"], p["k"]
    mid = f.c.rolling(w).mean()
    sd = f.c.rolling(w).std(ddof=0)
    sd = sd.where(f.c.rolling(w).max() > f.c.rolling(w).min(), 0.0).where(sd.notna())
    upper, lower = mid + k * sd, mid - k * sd
    if p["output"] == "width":
        return (upper - lower) / mid
    return _nan_where((f.c - lower) / (upper - lower), sd == 0)


def _keltner(f: _Frame, p: Mapping[str, Any]) -> pd.Series:
    mid = _ema_close(f, p["ema_span"], p["ema_window"])
    atr = fir_ema(f.tr, 1.0 / p["atr_period"], p["atr_window"])
    upper, lower = mid + p["multiplier"] * atr, mid - p["multiplier"] * atr
    if p["output"] == "width":
        return (upper - lower) / mid
    return _nan_where((f.c - lower) / (upper - lower), atr == 0)


def _rsi(f: _Frame, p: Mapping[str, Any]) -> pd.Series:
    d = f.c.diff()
    gain, loss = d.clip(lower=0.0), (-d).clip(lower=0.0)
    a = 1.0 / p["period"]
    g, lo = fir_ema(gain, a, p["window"]), fir_ema(loss, a, p["window"])
    return (100.0 * g / (g + lo)).where((g + lo) != 0, 50.0).where(g.notna())


def _corwin_schultz(f: _Frame, w: int) -> pd.Series:
    k = 3.0 - 2.0 * math.sqrt(2.0)
    hl = np.log(f.h / f.l) ** 2
    beta = hl + hl.shift(1)
    high2 = pd.concat([f.h, f.h.shift(1)], axis=1).max(axis=1, skipna=False)
    low2 = pd.concat([f.l, f.l.shift(1)], axis=1).min(axis=1, skipna=False)
    gamma = np.log(high2 / low2) ** 2
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    spread = (2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha))).clip(lower=0.0)
    return spread.rolling(w).mean()


def _amihud(f: _Frame, p: Mapping[str, Any]) -> pd.Series:
    w = p["window"]
    qv = f.c * f.v
    illiq = (f.r.abs() / qv).where(qv > 0)
    out = illiq.rolling(w, min_periods=1).mean() * p["scale"]
    out.iloc[:w] = np.nan
    return out


def _mfi(f: _Frame, w: int) -> pd.Series:
    hlc = f.h + f.l + f.c
    dtp = hlc.diff()  # direction of the typical price; |change| <= 1e-9 x price is a tie (rounding noise)
    dtp = dtp.where(dtp.abs() > 1e-9 * hlc, 0.0).where(dtp.notna())
    flow = hlc / 3.0 * f.v
    pos, neg = flow.where(dtp > 0, 0.0), flow.where(dtp < 0, 0.0)
    pos.iloc[0] = neg.iloc[0] = np.nan
    p_sum, n_sum = pos.rolling(w).sum(), neg.rolling(w).sum()
    return _nan_where(100.0 * p_sum / (p_sum + n_sum), (pos + neg).rolling(w).max() == 0)


def _vwap_dist(f: _Frame, w: int) -> pd.Series:
    tp = (f.h + f.l + f.c) / 3.0
    vwap = (tp * f.v).rolling(w).sum() / f.v.rolling(w).sum()
    return _nan_where(np.log(f.c / vwap), f.v.rolling(w).max() == 0)


def _beta_corr(f: _Frame, w: int, kind: str) -> pd.Series:
    rb = np.log(f.ref / f.ref.shift(1))
    flat_b = rb.rolling(w).max() == rb.rolling(w).min()
    if kind == "beta_ref":
        return _nan_where(f.r.rolling(w).cov(rb) / rb.rolling(w).var(), flat_b)
    flat_r = f.r.rolling(w).max() == f.r.rolling(w).min()
    return _nan_where(f.r.rolling(w).corr(rb), flat_b | flat_r)


def _time(f: _Frame, kind: str, output: str) -> pd.Series:
    if kind == "time_of_day":
        phase = (f.ts % DAY_MS) / DAY_MS
    else:  # Monday 00:00 UTC is phase 0; the epoch (1970-01-01) was a Thursday
        phase = ((f.ts + 3 * DAY_MS) % (7 * DAY_MS)) / (7 * DAY_MS)
    angle = 2.0 * np.pi * phase.astype(float)
    return np.sin(angle) if output == "sin" else np.cos(angle)


def _zscore(x: pd.Series, w: int) -> pd.Series:
    sd = x.rolling(w).std()
    return _nan_where((x - x.rolling(w).mean()) / sd, x.rolling(w).max() == x.rolling(w).min())


def reference_feature(f: _Frame, kind: str, p: Mapping[str, Any]) -> pd.Series:  # noqa: C901 - a dispatch table
    w = p.get("window")
    simple = {
        "log_return": lambda: np.log(f.c / f.c.shift(p["lag"])),
        "vol_close": lambda: _vol_close(f, w),
        "vol_parkinson": lambda: np.sqrt((np.log(f.h / f.l) ** 2).rolling(w).mean() / (4.0 * LN2)),
        "vol_ratio": lambda: _vol_close(f, p["short"]) / _vol_close(f, p["long"]),
        "atr": lambda: fir_ema(f.tr, 1.0 / p["period"], w) / f.c,
        "zscore_close": lambda: _zscore(f.c, w),
        "volume_zscore": lambda: _zscore(f.v, w),
        "relative_volume": lambda: _nan_where(f.v / f.v.rolling(w).mean(), f.v.rolling(w).max() == 0),
        "dist_high": lambda: np.log(f.c / f.h.rolling(w).max()),
        "dist_low": lambda: np.log(f.c / f.l.rolling(w).min()),
        "ema_ratio": lambda: f.c / _ema_close(f, p["span"], w) - 1.0,
        "corwin_schultz": lambda: _corwin_schultz(f, w),
        "log_range": lambda: np.log(f.h / f.l),
        "stochastic": lambda: 100.0 * (f.c - f.l.rolling(w).min()) / (f.h.rolling(w).max() - f.l.rolling(w).min()),
        "mfi": lambda: _mfi(f, w),
        "vwap_dist": lambda: _vwap_dist(f, w),
    }
    if kind in simple:
        return simple[kind]()
    if kind == "vol_garman_klass":
        bar = 0.5 * np.log(f.h / f.l) ** 2 - (2.0 * LN2 - 1.0) * np.log(f.c / f.o) ** 2
        return np.sqrt(bar.rolling(w).mean().clip(lower=0.0))
    if kind == "rsi":
        return _rsi(f, p)
    if kind == "macd":
        return _macd(f, p)
    if kind == "adx":
        pdi, mdi, adx = _dmi(f, p["period"], w)
        return {"adx": adx, "plus_di": pdi, "minus_di": mdi}[p["output"]]
    if kind == "bollinger":
        return _bollinger(f, p)
    if kind == "keltner":
        return _keltner(f, p)
    if kind == "ema_cross":
        return _ema_close(f, p["fast"], p["fast_window"]) / _ema_close(f, p["slow"], p["slow_window"]) - 1.0
    if kind == "amihud":
        return _amihud(f, p)
    if kind in ("time_of_day", "day_of_week"):
        return _time(f, kind, p["output"])
    if kind == "rel_strength":
        k = p["lag"]
        return np.log(f.c / f.c.shift(k)) - np.log(f.ref / f.ref.shift(k))
    if kind in ("beta_ref", "corr_ref"):
        return _beta_corr(f, w, kind)
    if kind == "close_location":
        rng = f.h - f.l
        return (((f.c - f.l) - (f.h - f.c)) / rng).where(rng > 0, 0.0)
    raise KeyError(f"no reference for feature kind {kind!r}")


def reference_features(
    candles: pd.DataFrame,
    specs: Iterable[tuple[str, str, Mapping[str, Any]]],
    reference: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``ts`` and one float64 column per spec; non-finite values become NaN."""
    candles = candles.reset_index(drop=True)
    f = _Frame(candles, reference)
    out = {"ts": f.ts}
    for name, kind, params in specs:
        values = reference_feature(f, kind, params).astype(float)
        out[name] = values.where(np.isfinite(values))
    return pd.DataFrame(out)
