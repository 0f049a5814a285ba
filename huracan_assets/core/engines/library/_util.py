"""Small vectorized helpers shared by engines (trailing windows only: the value at t reads bars <= t)."""

from __future__ import annotations

import numpy as np
import polars as pl


def rolling_max(x: np.ndarray, window: int) -> np.ndarray:
    return pl.Series(x).rolling_max(window).to_numpy().astype(np.float64)


def rolling_min(x: np.ndarray, window: int) -> np.ndarray:
    return pl.Series(x).rolling_min(window).to_numpy().astype(np.float64)


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    return pl.Series(x).rolling_mean(window).to_numpy().astype(np.float64)


def rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    return pl.Series(x).rolling_std(window).to_numpy().astype(np.float64)


def rolling_sum(x: np.ndarray, window: int) -> np.ndarray:
    return pl.Series(x).rolling_sum(window).to_numpy().astype(np.float64)


def lag(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted k bars into the past (NaN for the first k)."""
    out = np.full_like(x, np.nan, dtype=np.float64)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


def ema(x: np.ndarray, span: int) -> np.ndarray:
    """Recursive EMA (adjust=False), NaN until ``span`` values are in; NaN inputs carry the last value."""
    return (
        pl.Series(x)
        .fill_nan(None)
        .ewm_mean(span=span, adjust=False, min_samples=span, ignore_nulls=True)
        .to_numpy()
        .astype(np.float64)
    )


def sign_or_wait(condition_buy: np.ndarray, condition_sell: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """+1 where buy, -1 where sell (buy wins ties never: both true is wait), 0 otherwise, NaN where undefined."""
    out = np.where(condition_buy & ~condition_sell, 1.0, np.where(condition_sell & ~condition_buy, -1.0, 0.0))
    return np.where(defined, out, np.nan)


def log_returns(close: np.ndarray) -> np.ndarray:
    out = np.full_like(close, np.nan, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:] = np.log(close[1:] / close[:-1])
    return out


def wilder(x: np.ndarray, period: int) -> np.ndarray:
    """Wilder's recursive smoothing (alpha = 1 / period), NaN until ``period`` values are in; NaN inputs skipped."""
    s = pl.Series(x).fill_nan(None)
    return s.ewm_mean(alpha=1.0 / period, adjust=False, min_samples=period, ignore_nulls=True).to_numpy().astype(float)


def hold_events(events: np.ndarray, hold: int) -> np.ndarray:
    """Each nonzero event (+1 / -1; NaN counts as none) repeated for ``hold`` more bars, or until a newer event."""
    e = np.nan_to_num(np.asarray(events, dtype=np.float64), nan=0.0)
    idx = np.arange(e.shape[0])
    last = np.maximum.accumulate(np.where(e != 0.0, idx, -1))
    held = e[np.maximum(last, 0)]
    return np.where((last >= 0) & (idx - last <= hold), held, 0.0)
