"""Purged, embargoed walk-forward splits over triple-barrier events (López de Prado, AFML ch. 7).

Each row is one event of one coin: ``t0`` (epoch ms) is the bar where the position would be entered (at its
close) and ``t1`` (epoch ms, ``>= t0``) the moment its outcome was known (the barrier touch). The label of a row
is a function of the prices in ``[t0, t1]``, so two rows whose intervals overlap share information. Rows are
sorted by ``t0``.

Walk-forward layout (``purged_splits``):

* The first ``n * min_train_fraction`` rows (rounded half up) are never tested. The remaining rows are cut into
  ``n_folds`` contiguous test folds of equal size (``np.array_split``: when the rows do not divide evenly, the
  first folds hold one row more).
* Training rows are taken only from the past of each test fold: ``expanding`` takes every row before the fold;
  ``sliding`` takes the same number of rows as the first training block (before purging),
  ending just before the fold.
* **Purging**: a training row is dropped when its label interval ``[t0, t1]`` overlaps the test fold's interval
  ``[min t0_test, max t1_test]`` (closed intervals: touching counts). For a training row before the fold this
  is exactly "its outcome was known at or after the first test entry" (``t1 >= min t0_test``): its label
  looked into the test period.
* **Embargo**: a training row whose ``t0`` lies in ``(max t1_test, max t1_test + embargo_ms]`` is dropped too.
  The embargo protects training rows *after* a test fold, whose features (trailing windows) may still read the
  test period's prices. Walk-forward never trains on rows after the test fold (in either scheme), so there it
  is a no-op by construction and ``Fold.embargoed`` is 0; it is applied anyway so the same rule
  (``purge_train``) stays correct for any train set, e.g. a combinatorial or k-fold layout with training rows
  on both sides of the test fold.

A fold whose training set is empty after purging is an error (``ValueError``), not a silently skipped fold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

_SCHEMES = ("expanding", "sliding")


@dataclass(frozen=True)
class WalkForwardSpec:
    """How the events are cut into walk-forward folds; see the module docstring for the exact rules."""

    n_folds: int = 5
    scheme: Literal["expanding", "sliding"] = "expanding"
    min_train_fraction: float = 0.3  # share of rows before the first test fold
    embargo_ms: int = 0  # training rows with t0 in (test_end, test_end + embargo] are dropped (test_end = max t1)

    def __post_init__(self) -> None:
        if not _is_int(self.n_folds) or self.n_folds < 1:
            raise ValueError(f"WalkForwardSpec.n_folds must be an int >= 1, got {self.n_folds!r}")
        if self.scheme not in _SCHEMES:
            raise ValueError(f"WalkForwardSpec.scheme must be one of {_SCHEMES}, got {self.scheme!r}")
        frac = self.min_train_fraction
        if not _is_real(frac) or not 0.0 < float(frac) < 1.0:
            raise ValueError(f"WalkForwardSpec.min_train_fraction must be in (0, 1), got {frac!r}")
        if not _is_int(self.embargo_ms) or self.embargo_ms < 0:
            raise ValueError(f"WalkForwardSpec.embargo_ms must be an int >= 0, got {self.embargo_ms!r}")


@dataclass(frozen=True, eq=False)
class Fold:
    """One walk-forward fold: int64 row indices (read-only, ascending) and how many rows purging/embargo dropped."""

    index: int
    train: np.ndarray
    test: np.ndarray
    purged: int
    embargoed: int


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def validate_event_times(t0: np.ndarray, t1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``t0``/``t1`` as int64 arrays, or a ``ValueError``: 1-D, same length, integer, t0 sorted, t1 >= t0."""
    t0 = np.asarray(t0)
    t1 = np.asarray(t1)
    if t0.ndim != 1 or t1.ndim != 1:
        raise ValueError(f"t0 and t1 must be 1-D arrays, got shapes {t0.shape} and {t1.shape}")
    if t0.shape != t1.shape:
        raise ValueError(f"t0 and t1 must have the same length, got {t0.size} and {t1.size}")
    for name, arr in (("t0", t0), ("t1", t1)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be an integer array of epoch ms, got dtype {arr.dtype}")
    t0 = t0.astype(np.int64, copy=False)
    t1 = t1.astype(np.int64, copy=False)
    if t0.size > 1 and np.any(np.diff(t0) < 0):
        first = int(np.flatnonzero(np.diff(t0) < 0)[0]) + 1
        raise ValueError(f"t0 must be sorted ascending; row {first} is earlier than row {first - 1}")
    if np.any(t1 < t0):
        first = int(np.flatnonzero(t1 < t0)[0])
        raise ValueError(f"t1 must be >= t0 for every row; row {first} has t1 {t1[first]} < t0 {t0[first]}")
    return t0, t1


def purge_train(
    t0: np.ndarray, t1: np.ndarray, train: np.ndarray, test: np.ndarray, embargo_ms: int = 0
) -> tuple[np.ndarray, int, int]:
    """Drop from ``train`` the rows that leak into the ``test`` rows: ``(kept, n_purged, n_embargoed)``.

    Purged: ``[t0, t1]`` overlaps ``[min t0[test], max t1[test]]``. Embargoed (counted among the rows not
    purged): ``t0`` in ``(max t1[test], max t1[test] + embargo_ms]``. ``train`` may hold rows on either side of
    the test rows; the order of ``train`` is kept.
    """
    train = np.asarray(train, dtype=np.int64)
    test = np.asarray(test, dtype=np.int64)
    if test.size == 0:
        raise ValueError("the test set is empty")
    test_start = t0[test].min()
    test_end = t1[test].max()
    overlaps = (t0[train] <= test_end) & (t1[train] >= test_start)
    embargoed = ~overlaps & (t0[train] > test_end) & (t0[train] <= test_end + embargo_ms)
    kept = train[~(overlaps | embargoed)]
    return kept, int(overlaps.sum()), int(embargoed.sum())


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(arr, dtype=np.int64)
    arr.flags.writeable = False
    return arr


def purged_splits(t0: np.ndarray, t1: np.ndarray, spec: WalkForwardSpec) -> list[Fold]:
    """The walk-forward folds of the events ``(t0, t1)`` (sorted by ``t0``), purged and embargoed."""
    t0, t1 = validate_event_times(t0, t1)
    n = t0.size
    first_test = math.floor(n * float(spec.min_train_fraction) + 0.5)
    if first_test < 1 or n - first_test < spec.n_folds:
        raise ValueError(
            f"not enough rows: {n} events give {first_test} rows before the first test fold and {n - first_test} "
            f"test rows for {spec.n_folds} folds (need >= 1 and >= n_folds)"
        )
    folds = []
    for k, test in enumerate(np.array_split(np.arange(first_test, n, dtype=np.int64), spec.n_folds)):
        start = int(test[0])
        lo = 0 if spec.scheme == "expanding" else start - first_test
        train, purged, embargoed = purge_train(t0, t1, np.arange(lo, start, dtype=np.int64), test, spec.embargo_ms)
        if train.size == 0:
            raise ValueError(
                f"fold {k} has no training rows left after purging {purged} and embargoing {embargoed} "
                f"(label horizons too long for {n} events, or too few rows before the fold)"
            )
        folds.append(Fold(index=k, train=_read_only(train), test=_read_only(test), purged=purged, embargoed=embargoed))
    return folds
