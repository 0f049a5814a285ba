"""The no-look-ahead canary: cutting the future off must not change the past.

``lookahead_violations`` rebuilds a frame from the candles truncated after each cut timestamp and compares
every row at or before the cut with the build from the full candles. A feature (or regime, or signal) that
reads a later bar - a ``shift(-1)``, a centred window, a z-score over the whole window - changes there and
the cut is reported. The daily ``features`` asset runs it on a random sample of timestamps every run; the
tests run it exhaustively on a coin-day and prove it catches an injected leak.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import polars as pl


def _identical(a: pl.DataFrame, b: pl.DataFrame, atol: float) -> bool:
    if a.columns != b.columns or a.height != b.height:
        return False
    if atol == 0.0:
        return a.equals(b, null_equal=True)
    for name in a.columns:
        x, y = a[name], b[name]
        if not x.dtype.is_float() or not y.dtype.is_float():
            if not x.equals(y, null_equal=True):
                return False
            continue
        xa, ya = x.to_numpy().astype(np.float64), y.to_numpy().astype(np.float64)
        if not np.array_equal(np.isnan(xa), np.isnan(ya)):
            return False
        finite = ~np.isnan(xa)
        if np.any(np.abs(xa[finite] - ya[finite]) > atol):
            return False
    return True


def lookahead_violations(
    build: Callable[[pl.DataFrame], pl.DataFrame],
    candles: pl.DataFrame,
    cut_ts: Sequence[int],
    *,
    atol: float = 0.0,
) -> list[int]:
    """The cut timestamps at which removing every bar after the cut changed any value at or before it.

    ``build`` maps candles (with a ``ts`` column) to a frame with a ``ts`` column, e.g.
    ``lambda c: features_for_window(c, recipe, start, end, reference)``. Comparison is exact (bit for bit,
    nulls equal) unless ``atol`` > 0. An empty list means no look-ahead was detected.
    """
    full = build(candles)
    bad: list[int] = []
    for cut in cut_ts:
        truncated = build(candles.filter(pl.col("ts") <= cut))
        before_full = full.filter(pl.col("ts") <= cut)
        before_cut = truncated.filter(pl.col("ts") <= cut)
        if not _identical(before_full, before_cut, atol):
            bad.append(int(cut))
    return bad
