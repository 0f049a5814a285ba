"""Purged walk-forward splits against hand-computed index sets, the embargo rule, and input validation."""

import numpy as np
import pytest

from huracan_assets.core.validation.splits import WalkForwardSpec, purge_train, purged_splits

H = 3_600_000
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC


def _hourly(n: int, horizon_h: int = 2) -> tuple[np.ndarray, np.ndarray]:
    t0 = T0 + np.arange(n, dtype=np.int64) * H
    return t0, t0 + horizon_h * H


def _rows(a: int, b: int) -> list[int]:
    return list(range(a, b + 1))


def _as_lists(folds):
    return [(f.train.tolist(), f.test.tolist(), f.purged, f.embargoed) for f in folds]


# 20 events at hourly t0 (row i at hour i), t1 = t0 + 2 h; n_folds 2, min_train_fraction 0.5:
# rows 0-9 are never tested; fold 0 tests rows 10-14 (interval [10 h, 16 h]), fold 1 rows 15-19 ([15 h, 21 h]).
# A training row i before a fold overlaps it iff t1 = i + 2 h >= the fold's first t0:
#   fold 0: i + 2 >= 10  -> rows 8, 9 purged;   fold 1: i + 2 >= 15 -> rows 13, 14 purged.
def test_expanding_hand_computed():
    t0, t1 = _hourly(20)
    folds = purged_splits(t0, t1, WalkForwardSpec(n_folds=2, scheme="expanding", min_train_fraction=0.5))
    assert _as_lists(folds) == [
        (_rows(0, 7), _rows(10, 14), 2, 0),
        (_rows(0, 12), _rows(15, 19), 2, 0),
    ]
    assert [f.index for f in folds] == [0, 1]
    assert all(f.train.dtype == np.int64 and f.test.dtype == np.int64 for f in folds)


def test_sliding_hand_computed():
    # sliding: 10 candidate rows (the first train block's size) ending before the fold: 0-9, then 5-14.
    t0, t1 = _hourly(20)
    folds = purged_splits(t0, t1, WalkForwardSpec(n_folds=2, scheme="sliding", min_train_fraction=0.5))
    assert _as_lists(folds) == [
        (_rows(0, 7), _rows(10, 14), 2, 0),
        (_rows(5, 12), _rows(15, 19), 2, 0),
    ]


def test_a_long_horizon_far_back_is_purged_and_touching_counts():
    # Row 3 has a 12 h horizon: t1 = 15 h. It overlaps fold 0 ([10 h, 16 h]) and touches fold 1's first entry (15 h):
    #   fold 0 purges rows 3, 8, 9; fold 1 (expanding) purges rows 3, 13, 14 - closed intervals, so t1 == 15 h counts.
    t0, t1 = _hourly(20)
    t1[3] = t0[3] + 12 * H
    expanding = purged_splits(t0, t1, WalkForwardSpec(n_folds=2, min_train_fraction=0.5))
    assert _as_lists(expanding) == [
        ([0, 1, 2, 4, 5, 6, 7], _rows(10, 14), 3, 0),
        ([0, 1, 2, *_rows(4, 12)], _rows(15, 19), 3, 0),
    ]
    sliding = purged_splits(t0, t1, WalkForwardSpec(n_folds=2, scheme="sliding", min_train_fraction=0.5))
    assert _as_lists(sliding)[1] == (_rows(5, 12), _rows(15, 19), 2, 0)  # row 3 is outside the window


def test_embargo_drops_rows_after_the_test_fold():
    # Test rows 5-7: interval [5 h, 9 h]. Train on both sides: 0-4 and 8-19.
    # Purged: before, t1 >= 5 h -> rows 3, 4; after, t0 <= 9 h -> rows 8, 9.
    # Embargo 3 h: t0 in (9 h, 12 h] -> rows 10, 11, 12.
    t0, t1 = _hourly(20)
    train = np.array([*_rows(0, 4), *_rows(8, 19)])
    kept, purged, embargoed = purge_train(t0, t1, train, np.array([5, 6, 7]), embargo_ms=3 * H)
    assert (kept.tolist(), purged, embargoed) == ([0, 1, 2, *_rows(13, 19)], 4, 3)
    kept, purged, embargoed = purge_train(t0, t1, train, np.array([5, 6, 7]), embargo_ms=0)
    assert (kept.tolist(), purged, embargoed) == ([0, 1, 2, *_rows(10, 19)], 4, 0)
    # the boundary: t0 exactly test_end + embargo is embargoed, one ms later is not
    kept, _, embargoed = purge_train(t0, t1, train, np.array([5, 6, 7]), embargo_ms=3 * H - 1)
    assert embargoed == 2 and 12 in kept.tolist()


def test_embargo_is_a_no_op_in_walk_forward():
    # Walk-forward never trains on rows after the test fold, so the embargo drops nothing there.
    t0, t1 = _hourly(20)
    for scheme in ("expanding", "sliding"):
        plain = purged_splits(t0, t1, WalkForwardSpec(n_folds=2, scheme=scheme, min_train_fraction=0.5))
        embargoed = purged_splits(
            t0, t1, WalkForwardSpec(n_folds=2, scheme=scheme, min_train_fraction=0.5, embargo_ms=5 * H)
        )
        assert _as_lists(plain) == _as_lists(embargoed)
        assert all(f.embargoed == 0 for f in embargoed)


def test_uneven_folds_and_rounding():
    # 22 rows x 0.5 = 11 rows before the first test fold; 11 test rows -> folds of 6 and 5 (first folds larger).
    t0, t1 = _hourly(22, horizon_h=0)
    folds = purged_splits(t0, t1, WalkForwardSpec(n_folds=2, min_train_fraction=0.5))
    assert [f.test.tolist() for f in folds] == [_rows(11, 16), _rows(17, 21)]
    # zero-length labels (t1 == t0) only overlap themselves: nothing before the fold is purged
    assert [(f.train.tolist(), f.purged) for f in folds] == [(_rows(0, 10), 0), (_rows(0, 16), 0)]
    # 0.3 of 21 = 6.3 -> 6; 0.5 of 21 = 10.5 -> 11 (half up)
    t0, t1 = _hourly(21, horizon_h=0)
    assert purged_splits(t0, t1, WalkForwardSpec(n_folds=3, min_train_fraction=0.3))[0].test[0] == 6
    assert purged_splits(t0, t1, WalkForwardSpec(n_folds=3, min_train_fraction=0.5))[0].test[0] == 11


def test_folds_are_read_only():
    t0, t1 = _hourly(20)
    fold = purged_splits(t0, t1, WalkForwardSpec(n_folds=2, min_train_fraction=0.5))[0]
    with pytest.raises(ValueError):
        fold.train[0] = 5


@pytest.mark.parametrize(
    ("t0", "t1", "message"),
    [
        (np.array([0, 2, 1, 3]), np.array([0, 2, 2, 3]), "sorted"),
        (np.array([0, 1, 2, 3]), np.array([0, 0, 2, 3]), "t1 must be >= t0"),
        (np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0, 3.0]), "integer"),
        (np.array([0, 1, 2, 3]), np.array([0, 1, 2]), "same length"),
        (np.array([[0, 1], [2, 3]]), np.array([[0, 1], [2, 3]]), "1-D"),
    ],
)
def test_invalid_event_times_raise(t0, t1, message):
    with pytest.raises(ValueError, match=message):
        purged_splits(t0, t1, WalkForwardSpec(n_folds=1, min_train_fraction=0.5))


def test_too_few_rows_raise():
    t0, t1 = _hourly(6, horizon_h=0)
    with pytest.raises(ValueError, match="not enough rows"):
        purged_splits(t0, t1, WalkForwardSpec(n_folds=5, min_train_fraction=0.5))  # 3 test rows for 5 folds
    with pytest.raises(ValueError, match="not enough rows"):
        purged_splits(t0[:1], t1[:1], WalkForwardSpec(n_folds=1, min_train_fraction=0.3))  # 0 rows before


def test_a_fold_purged_empty_raises():
    t0, t1 = _hourly(20, horizon_h=48)  # every label spans the whole data: nothing is left to train on
    with pytest.raises(ValueError, match="no training rows left"):
        purged_splits(t0, t1, WalkForwardSpec(n_folds=2, min_train_fraction=0.5))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_folds": 0},
        {"n_folds": 2.0},
        {"scheme": "rolling"},
        {"min_train_fraction": 0.0},
        {"min_train_fraction": 1.0},
        {"embargo_ms": -1},
        {"embargo_ms": 1.5},
    ],
)
def test_invalid_spec_raises(kwargs):
    with pytest.raises(ValueError, match="WalkForwardSpec"):
        WalkForwardSpec(**kwargs)
