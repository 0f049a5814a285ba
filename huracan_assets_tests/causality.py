"""One generic causality harness for every per-bar product (ARCHITECTURE "time semantics").

A per-bar row for bar t may use only what was known at t's close, so changing the bars AFTER a cut must leave
every row with ``ts <= cut`` bit for bit identical (NaN equals NaN, null equals null; -0.0 differs from 0.0).

``causality_violations(build, candles, cuts, columns)`` rebuilds ``build(candles)`` from perturbed copies of
the candles, one per cut and perturbation, and lists every cut, perturbation and column where a row at or
before the cut moved. The perturbations change only bars with ``ts > cut`` and keep every bar sane
(``low <= min(open, close) <= max(open, close) <= high``, prices > 0, volume >= 0):

- ``scale``: a random-walk price factor (open, high, low, close of a bar scaled together) and a log-normal
  volume factor per bar;
- ``shuffle``: the later bars' OHLCV rows permuted among themselves (timestamps kept);
- ``thin``: volume x 0.01 with 40% of the later bars at zero volume, ranges widened by 3% (a thin book);
- ``thick``: volume x 100 (a busy book);
- ``drop``: the later bars removed (the future cut off, as the live engine sees it).

A leak through any day-level aggregate (a flag or a z-score over the whole of D), a centred window or a
``shift(-1)`` moves rows before the cut under at least one of them; :func:`assert_causal` fails with the list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

PERTURBATIONS = ("scale", "shuffle", "thin", "thick", "drop")
PRICE_COLUMNS = ("open", "high", "low", "close")


def perturb_after(candles: pl.DataFrame, cut: int, how: str, seed: int = 0) -> pl.DataFrame:
    """A copy of ``candles`` (sorted by ts) whose bars with ``ts > cut`` are changed by ``how``; the others are
    returned untouched (same values, same dtypes)."""
    frame = candles.sort("ts")
    later = (frame["ts"] > cut).to_numpy()
    n = int(later.sum())
    if how == "drop":
        return frame.filter(~pl.Series(later))
    if n == 0:
        return frame
    rng = np.random.default_rng(seed)
    cols = {c: frame[c].to_numpy().astype(np.float64, copy=True) for c in (*PRICE_COLUMNS, "volume")}
    if how == "scale":
        factor = np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
        for c in PRICE_COLUMNS:
            cols[c][later] *= factor
        cols["volume"][later] *= np.exp(rng.normal(0.0, 1.5, n))
    elif how == "shuffle":
        order = rng.permutation(n)
        if n > 1 and (order == np.arange(n)).all():
            order = np.roll(order, 1)
        for c in cols:
            cols[c][later] = cols[c][later][order]
    elif how == "thin":
        cols["volume"][later] *= 0.01
        cols["volume"][np.flatnonzero(later)[rng.random(n) < 0.4]] = 0.0
        cols["high"][later] *= 1.03
        cols["low"][later] *= 0.97
    elif how == "thick":
        cols["volume"][later] *= 100.0
    else:
        raise ValueError(f"unknown perturbation {how!r}; one of {PERTURBATIONS}")
    out = frame.with_columns(pl.Series(c, v, dtype=frame[c].dtype) for c, v in cols.items())
    _check_sane(out.filter(pl.Series(later)))
    return out


def _check_sane(bars: pl.DataFrame) -> None:
    o, h, lo, c, v = (bars[x].to_numpy() for x in (*PRICE_COLUMNS, "volume"))
    ok = (lo > 0) & (lo <= np.minimum(o, c)) & (np.maximum(o, c) <= h) & ~(v < 0)
    if not ok.all():
        raise AssertionError(f"a perturbation made {int((~ok).sum())} insane bars")


def _same_bits(x: pl.Series, y: pl.Series) -> np.ndarray:
    """Per-row equality: nulls equal nulls, NaN equals NaN, floats compared bit for bit."""
    if x.dtype != y.dtype:
        return np.zeros(x.len(), dtype=bool)
    null_x, null_y = x.is_null().to_numpy(), y.is_null().to_numpy()
    if x.dtype.is_float():
        a = x.cast(pl.Float64).fill_null(0.0).to_numpy()
        b = y.cast(pl.Float64).fill_null(0.0).to_numpy()
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        bits = a.view(np.int64) == b.view(np.int64)
        same = np.where(nan_a | nan_b, nan_a & nan_b, bits)
    else:
        same = (x == y).fill_null(False).to_numpy()
    return np.where(null_x | null_y, null_x & null_y, same)


@dataclass(frozen=True)
class Violation:
    cut: int
    perturbation: str
    column: str
    rows: int  # rows at or before the cut that differ (or are missing on one side)
    first_ts: int | None

    def __str__(self) -> str:
        return (
            f"cut {self.cut} / {self.perturbation}: {self.column} differs on {self.rows} rows (first {self.first_ts})"
        )


def compare_before(
    full: pl.DataFrame,
    other: pl.DataFrame,
    cut: int,
    columns: Sequence[str],
    *,
    key: str = "ts",
    known_at: str | None = None,
    same_rows: bool = True,
) -> list[tuple[str, int, int | None]]:
    """(column, differing rows, first differing key) of the rows known by the cut (``known_at <= cut``; by
    default ``key <= cut``), matched on ``key``.

    ``same_rows``: the two frames must hold the same such rows (a missing or extra row is a difference,
    reported under the column ``<rows>``); otherwise only the keys present in both are compared.
    """
    known = pl.col(known_at or key) <= cut
    a = full.filter(known).select(key, *columns)
    b = other.filter(known).select(key, *columns)
    if a[key].n_unique() != a.height or b[key].n_unique() != b.height:
        raise ValueError(f"{key} must be unique in a built frame")
    out: list[tuple[str, int, int | None]] = []
    how = "full" if same_rows else "inner"
    joined = a.join(b, on=key, how=how, suffix="__other", coalesce=True).sort(key)
    if same_rows:
        only = joined.filter(~pl.Series(_row_in(joined[key], a[key]) & _row_in(joined[key], b[key])))
        if only.height:
            out.append(("<rows>", only.height, int(only[key][0])))
    for c in columns:
        same = _same_bits(joined[c], joined[f"{c}__other"])
        if not same.all():
            out.append((c, int((~same).sum()), int(joined[key].filter(pl.Series(~same))[0])))
    return out


def _row_in(values: pl.Series, keys: pl.Series) -> np.ndarray:
    return values.is_in(keys.implode()).to_numpy()


def causality_violations(
    build: Callable[[pl.DataFrame], pl.DataFrame],
    candles: pl.DataFrame,
    cuts: Sequence[int],
    columns: Sequence[str] | None = None,
    *,
    key: str = "ts",
    known_at: str | None = None,
    perturbations: Sequence[str] = PERTURBATIONS,
    same_rows: bool = True,
    min_rows: int = 1,
    seed: int = 0,
) -> list[Violation]:
    """Every (cut, perturbation, column) where a row with ``key <= cut`` changed when the bars after the cut
    changed. ``build`` maps candles to a frame with a unique ``key`` column; ``columns`` are those that must be
    causal (default: every other column). ``known_at`` names another column that decides which rows must hold
    still (e.g. a label's exit time: a row is final once ``known_at <= cut``). A cut with fewer than
    ``min_rows`` rows to compare is a violation too (column ``<no rows>``): a check comparing nothing proves
    nothing."""
    full = build(candles)
    cols = [c for c in full.columns if c != key] if columns is None else list(columns)
    found: list[Violation] = []
    for i, cut in enumerate(cuts):
        n_before = full.filter(pl.col(known_at or key) <= cut).height
        if n_before < min_rows:
            found.append(Violation(int(cut), "-", "<no rows>", n_before, None))
            continue
        for j, how in enumerate(perturbations):
            other = build(perturb_after(candles, int(cut), how, seed=seed + 1000 * i + j))
            diffs = compare_before(full, other, int(cut), cols, key=key, known_at=known_at, same_rows=same_rows)
            for column, rows, first in diffs:
                found.append(Violation(int(cut), how, column, rows, first))
    return found


def assert_causal(
    build: Callable[[pl.DataFrame], pl.DataFrame],
    candles: pl.DataFrame,
    cuts: Sequence[int],
    columns: Sequence[str] | None = None,
    **kwargs,
) -> None:
    bad = causality_violations(build, candles, cuts, columns, **kwargs)
    assert not bad, "look-ahead: rows at or before a cut moved when later bars changed:\n" + "\n".join(
        str(v) for v in bad[:20]
    )


def cuts_in_day(candles: pl.DataFrame, start_ms: int, end_ms: int, n: int = 5) -> list[int]:
    """``n`` bar timestamps spread over ``[start_ms, end_ms)``: the first bar of the day, the last but one, and
    evenly spaced ones between (the last bar has no later bar inside the day)."""
    ts = candles.filter((pl.col("ts") >= start_ms) & (pl.col("ts") < end_ms))["ts"].sort().to_numpy()
    if ts.size < 2:
        raise ValueError("need at least two bars in the day")
    idx = np.unique(np.linspace(0, ts.size - 2, n).round().astype(int))
    return [int(ts[i]) for i in idx]
