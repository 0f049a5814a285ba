"""Walk-forward and canaries on a synthetic coin: 4000 hourly events with 24 h labels, one feature carrying a weak
real signal about the future return (a noisy reading of the current drift) and two noise features.

The model is a ridge logistic regression in numpy (fast, deterministic); one test reruns the canaries with
LightGBM. Every canary is shown both passing and failing."""

import dataclasses
import json
import math

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.validation.metrics import (
    TradeCosts,
    auc,
    daily_returns,
    deflated_sharpe_ratio,
    log_loss,
    max_drawdown,
    probabilistic_sharpe_ratio,
    select_trades,
    sharpe,
    turnover,
)
from huracan_assets.core.validation.splits import WalkForwardSpec
from huracan_assets.core.validation.walk_forward import (
    WalkForwardConfig,
    block_shuffle_labels,
    canaries,
    walk_forward,
)

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HORIZON = 24
BARRIER_BPS = 200.0
N = 4000
CONFIG = WalkForwardConfig()  # 5 expanding folds after 30 % of the rows, threshold 0.05


class Coin:
    """Hourly log returns ``r`` (bps) = an AR(1) drift ``mu`` + noise; event i enters at bar i's close, so its
    24 h return is ``r[i + 1] + ... + r[i + 24]``. The signal feature is ``mu[i]`` + observation noise."""

    def __init__(self, n: int = N, seed: int = 0):
        rng = np.random.default_rng(seed)
        m = n + HORIZON + 1
        shocks = rng.normal(0.0, 1.0, m)
        mu = np.zeros(m)
        for k in range(1, m):
            mu[k] = 0.98 * mu[k - 1] + shocks[k]
        self.r = mu + rng.normal(0.0, 30.0, m)
        csum = np.concatenate(([0.0], np.cumsum(self.r)))
        i = np.arange(n)
        # triple barrier: the path's first close at or beyond +-BARRIER_BPS, else the 24th bar (vertical)
        paths = csum[i[:, None] + 1 + np.arange(1, HORIZON + 1)] - csum[i + 1][:, None]
        touched = np.abs(paths) >= BARRIER_BPS
        self.hold = np.where(touched.any(axis=1), touched.argmax(axis=1) + 1, HORIZON)
        self.ret = paths[i, self.hold - 1]
        self.X = np.column_stack([mu[:n] + rng.normal(0.0, 2.0, n), rng.normal(size=n), rng.normal(size=n)])
        self.y = (self.ret > 0).astype(np.int8)
        self.t0 = T0 + i.astype(np.int64) * H
        self.t1 = self.t0 + self.hold.astype(np.int64) * H
        self.cost = TradeCosts.from_parts({"fee": np.full(n, 8.0)})  # the same round trip for either side
        self.n = n

    def args(self, X=None, y=None):
        return (self.X if X is None else X, self.y if y is None else y, self.t0, self.t1, self.ret, self.cost)

    @property
    def short(self) -> dict[str, np.ndarray]:
        """The short's outcome: close-based touches of symmetric barriers, so exactly the long's mirror."""
        return {"ret_short_bps": -self.ret, "t1_short": self.t1}

    def centred_mean(self, upto: int | None = None) -> np.ndarray:
        """A leaky feature: the centred 49-bar mean of the hourly returns (reads 24 bars ahead), built from the
        returns up to bar ``upto`` (all of them by default)."""
        r = self.r if upto is None else self.r[: upto + 1]
        return pl.Series(r).rolling_mean(2 * HORIZON + 1, center=True, min_samples=1).to_numpy()[: self.n]

    def trailing_mean(self, upto: int | None = None) -> np.ndarray:
        """The honest version: the trailing 24-bar mean, ending at the event bar."""
        r = self.r if upto is None else self.r[: upto + 1]
        return pl.Series(r).rolling_mean(HORIZON, min_samples=1).to_numpy()[: self.n]


def logistic(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    """Ridge logistic regression (Newton steps) on standardized features."""
    mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-12
    A = np.column_stack([np.ones(len(X_train)), (X_train - mean) / std])
    B = np.column_stack([np.ones(len(X_test)), (X_test - mean) / std])
    ridge = np.eye(A.shape[1])
    ridge[0, 0] = 0.0
    w = np.zeros(A.shape[1])
    for _ in range(25):
        q = 1.0 / (1.0 + np.exp(-A @ w))
        hess = (A * (q * (1.0 - q))[:, None]).T @ A + ridge
        w -= np.linalg.solve(hess, A.T @ (q - y_train) + ridge @ w)
    return 1.0 / (1.0 + np.exp(-B @ w))


def constant(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    """A broken harness: ignores the features."""
    return np.full(len(X_test), 0.5)


@pytest.fixture(scope="module")
def coin() -> Coin:
    return Coin()


@pytest.fixture(scope="module")
def result(coin):
    return walk_forward(*coin.args(), logistic, CONFIG, **coin.short)


# ----------------------------------------------------------------------------------------------- walk-forward
def test_no_training_row_overlaps_its_test_interval(coin, result):
    assert len(result.splits) == 5
    for fold in result.splits:
        start, end = coin.t0[fold.test].min(), coin.t1[fold.test].max()
        train_t0, train_t1 = coin.t0[fold.train], coin.t1[fold.train]
        assert not np.any((train_t0 <= end) & (train_t1 >= start))
        # the training rows are exactly the earlier rows whose outcome was known before the first test entry
        before = np.arange(fold.test[0])
        assert fold.train.tolist() == before[coin.t1[before] < start].tolist()
        assert fold.purged == fold.test[0] - fold.train.size > 0 and fold.embargoed == 0
    assert result.splits[0].test[0] == 1200  # 30 % of 4000
    assert [f.test.size for f in result.splits] == [560] * 5


def test_the_model_sees_exactly_the_fold_rows(coin):
    seen = []

    def recording(X_train, y_train, X_test):
        seen.append((X_train.copy(), y_train.copy(), X_test.copy()))
        return logistic(X_train, y_train, X_test)

    res = walk_forward(*coin.args(), recording, CONFIG, **coin.short)
    for fold, (X_train, y_train, X_test) in zip(res.splits, seen, strict=True):
        assert np.array_equal(X_train, coin.X[fold.train]) and np.array_equal(y_train, coin.y[fold.train])
        assert np.array_equal(X_test, coin.X[fold.test])
        # every out-of-sample prediction is the fold model's
        p = res.oos.filter(pl.col("fold") == fold.index)["p"].to_numpy()
        assert np.array_equal(p, logistic(X_train, y_train, X_test))


def test_fold_records(coin, result):
    for record, fold in zip(result.folds, result.splits, strict=True):
        assert record["n_train"] == fold.train.size and record["n_test"] == fold.test.size
        assert record["test_start_ms"] == coin.t0[fold.test[0]]
        assert record["test_end_ms"] == coin.t1[fold.test].max() > coin.t0[fold.test[-1]]
        assert record["train_end_ms"] < record["test_start_ms"]
        assert record["auc"] == auc(coin.y[fold.test], result.oos.filter(pl.col("fold") == fold.index)["p"])
        assert record["n_trades"] > 0
    assert result.overall["auc"] > 0.6  # the weak signal is found out of sample


def test_overall_metrics_equal_the_metrics_recomputed_from_oos(result):
    oos, overall = result.oos, result.overall
    assert oos.columns == [
        "t0", "t1", "t1_short", "fold", "y", "p", "side", "gross_bps", "cost_bps", "pnl_bps", "ret_bps",
        "ret_short_bps", "cost_long_bps", "cost_short_bps",
    ]  # fmt: skip
    assert oos.height == overall["n_oos"] == 2800
    assert overall["auc"] == auc(oos["y"].to_numpy(), oos["p"].to_numpy())
    assert overall["log_loss"] == log_loss(oos["y"].to_numpy(), oos["p"].to_numpy())

    t0, t1, t1_short = (oos[c].to_numpy() for c in ("t0", "t1", "t1_short"))
    idx, side = select_trades(t0, t1, oos["p"].to_numpy(), CONFIG.threshold, t1_short)
    traded = oos.with_row_index("row").filter(pl.col("side") != 0)
    assert traded["row"].to_numpy().tolist() == idx.tolist()
    assert traded["side"].to_numpy().tolist() == side.tolist()
    assert oos.filter(pl.col("side") == 0)["pnl_bps"].null_count() == oos.height - traded.height

    pnl = traded["pnl_bps"].to_numpy()
    longs = traded["side"].to_numpy() > 0
    gross = np.where(longs, traded["ret_bps"].to_numpy(), traded["ret_short_bps"].to_numpy())
    np.testing.assert_allclose(pnl, gross - traded["cost_bps"].to_numpy(), rtol=0, atol=1e-9)
    assert traded["gross_bps"].to_list() == gross.tolist() and (traded["cost_bps"] == 8.0).all()
    assert oos.filter(pl.col("side") == 0)["cost_bps"].null_count() == oos.height - traded.height
    exits = np.where(longs, traded["t1"].to_numpy(), traded["t1_short"].to_numpy())
    daily = daily_returns(exits, pnl, oos["t0"].min(), max(oos["t1"].max(), oos["t1_short"].max()))
    fold_sharpes = [f["sharpe"] for f in result.folds]
    fold_var = np.var(fold_sharpes, ddof=1) / 365
    trials_var = max(fold_var * np.mean([f["n_days"] for f in result.folds]) / daily.size, 1 / (daily.size - 1))
    assert trials_var > 1 / (daily.size - 1)  # this coin's folds vary more than luck: the floor is not binding
    expected = {
        "n_trades": traded.height,
        "n_days": daily.size,
        "hit_rate": float(np.mean(pnl > 0)),
        "net_bps_per_trade": float(pnl.mean()),
        "gross_bps_per_trade": float(gross.mean()),
        "cost_bps_per_trade": float(traded["cost_bps"].mean()),
        "sharpe": sharpe(daily),
        "psr": probabilistic_sharpe_ratio(daily),
        "dsr": deflated_sharpe_ratio(daily, 30, trials_var),
        "max_drawdown": max_drawdown(daily),
        "turnover_per_day": turnover(side, daily.size),
        "trials_sharpe_var_folds": fold_var,
        "trials_sharpe_var_null": 1 / (daily.size - 1),
        "trials_sharpe_var": trials_var,
    }
    assert {k: overall[k] for k in expected} == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert 0 < overall["dsr"] < overall["psr"]  # 30 trials deflate


def test_the_unscaled_dsr_uses_the_fold_variance(coin, result):
    raw = walk_forward(*coin.args(), logistic, WalkForwardConfig(dsr_scale_var_to_length=False), **coin.short).overall
    assert raw["trials_sharpe_var"] == raw["trials_sharpe_var_folds"] == result.overall["trials_sharpe_var_folds"]
    assert raw["trials_sharpe_var"] > raw["trials_sharpe_var_null"]  # above the floor: the folds' variance as is
    assert raw["dsr"] < result.overall["dsr"]  # the fold-length variance is larger: a harsher benchmark


def test_a_short_is_scored_on_its_own_outcome_and_exit(coin):
    # the short's outcome differs from the long's mirror: every 7th event's exit bar touched both barriers (the
    # short stopped out too: it loses, where -ret would credit it with the long's loss), and every 5th short
    # exits 3 bars after the long
    rows = np.arange(coin.n)
    both = rows % 7 == 0
    ret_short = np.where(both, -np.abs(coin.ret), -coin.ret)
    t1_short = np.where(rows % 5 == 0, coin.t1 + 3 * H, coin.t1)
    res = walk_forward(*coin.args(), logistic, CONFIG, ret_short_bps=ret_short, t1_short=t1_short)
    oos = res.oos
    assert np.array_equal(oos["ret_short_bps"].to_numpy(), ret_short[oos["t0"].to_numpy() // H - T0 // H])
    traded = oos.filter(pl.col("side") != 0)
    longs, shorts = traded.filter(pl.col("side") > 0), traded.filter(pl.col("side") < 0)
    np.testing.assert_array_equal(longs["pnl_bps"], longs["ret_bps"] - longs["cost_bps"])
    np.testing.assert_array_equal(shorts["pnl_bps"], shorts["ret_short_bps"] - shorts["cost_bps"])
    assert (shorts["ret_short_bps"] != -shorts["ret_bps"]).sum() > 5  # the check is not vacuous
    assert res.overall["net_bps_per_trade"] == pytest.approx(traded["pnl_bps"].mean(), rel=1e-12)
    # one position at a time waits for the exit of the side taken
    t0, t1, p = (oos[c].to_numpy() for c in ("t0", "t1", "p"))
    idx, _ = select_trades(t0, t1, p, CONFIG.threshold, oos["t1_short"].to_numpy())
    assert oos.with_row_index("row").filter(pl.col("side") != 0)["row"].to_list() == idx.tolist()
    assert idx.tolist() != select_trades(t0, t1, p, CONFIG.threshold)[0].tolist()  # the short's exit matters
    # and the old scoring (a short earns -ret of the long) would have made these shorts look better
    old = -shorts["ret_bps"] - shorts["cost_bps"]
    assert old.sum() > shorts["pnl_bps"].sum()


def _cycle_events(days: int = 50):
    """Hourly events with instantaneous outcomes whose daily P&L repeats a 10-day cycle exactly: every 10-day
    fold of an always-long model has the same Sharpe, so the folds' Sharpe variance is 0."""
    cycle = np.array([5.0, -6.0, 8.0, -7.0, 2.0, -4.0, 6.0, -5.0, 3.0, -1.5])
    rows = np.arange(days * 24)
    ret = cycle[(rows // 24) % 10] + np.where(rows % 2 == 0, 1.0, -1.0)
    t0 = T0 + rows.astype(np.int64) * H
    X = rows.astype(np.float64)[:, None]
    return X, (ret > 0).astype(np.int8), t0, t0.copy(), ret, TradeCosts.from_parts({}, n=rows.size), -ret


def test_the_dsr_variance_is_floored_at_the_null_variance():
    X, y, t0, t1, ret, cost, ret_short = _cycle_events()
    always_long = lambda x_train, y_train, x_test: np.full(len(x_test), 0.9)  # noqa: E731
    # 10 days of training, then 4 test folds of exactly 10 days each (240 rows)
    config = WalkForwardConfig(splits=WalkForwardSpec(n_folds=4, min_train_fraction=0.2))
    res = walk_forward(X, y, t0, t1, ret, cost, always_long, config, ret_short_bps=ret_short, t1_short=t1)
    assert [f["n_days"] for f in res.folds] == [10] * 4
    assert len({f["sharpe"] for f in res.folds}) == 1 and res.overall["trials_sharpe_var_folds"] == 0.0
    for fold in res.folds:  # each fold's DSR: the null variance of its own 10 daily returns
        assert fold["trials_sharpe_var"] == 1 / 9
        daily = np.bincount(np.arange(10), weights=np.array([24 * c for c in (5, -6, 8, -7, 2, -4, 6, -5, 3, -1.5)]))
        assert fold["dsr"] == pytest.approx(deflated_sharpe_ratio(daily / 1e4, 30, 1 / 9), rel=1e-12)
        assert fold["dsr"] < fold["psr"]  # with the folds' variance (0) the DSR would be the PSR
    overall = res.overall
    assert overall["n_days"] == 40 and overall["trials_sharpe_var_null"] == 1 / 39
    assert overall["trials_sharpe_var"] == 1 / 39  # max(0 x 10 / 40, 1 / 39)
    oos = res.oos.filter(pl.col("side") != 0)
    daily = daily_returns(oos["t1"].to_numpy(), oos["pnl_bps"].to_numpy(), oos["t0"].min(), oos["t1"].max())
    assert daily.size == 40
    assert overall["dsr"] == pytest.approx(deflated_sharpe_ratio(daily, 30, 1 / 39), rel=1e-12)
    assert overall["dsr"] < deflated_sharpe_ratio(daily, 30, 0.0) == overall["psr"]
    # one fold: no variance across trials at all (NaN); the null variance alone still deflates
    one = WalkForwardConfig(splits=WalkForwardSpec(n_folds=1, min_train_fraction=0.2))
    single = walk_forward(X, y, t0, t1, ret, cost, always_long, one, ret_short_bps=ret_short, t1_short=t1).overall
    assert math.isnan(single["trials_sharpe_var_folds"]) and single["trials_sharpe_var"] == 1 / 39
    assert 0 < single["dsr"] == pytest.approx(overall["dsr"], rel=1e-12)


def test_to_dict_is_json_safe(coin):
    # a model without an opinion never trades: the per-trade means and the Sharpes are NaN -> None
    res = walk_forward(*coin.args(), constant, CONFIG, **coin.short)
    assert math.isnan(res.overall["net_bps_per_trade"])
    report = res.to_dict()
    json.dumps(report, allow_nan=False)
    assert report["overall"]["n_trades"] == 0 and report["overall"]["net_bps_per_trade"] is None
    assert report["overall"]["dsr"] is None and report["overall"]["auc"] == 0.5
    assert report["config"]["splits"]["n_folds"] == 5
    assert type(report["folds"][0]["n_train"]) is int
    report = walk_forward(*coin.args(), logistic, CONFIG, **coin.short).to_dict()
    json.dumps(report, allow_nan=False)
    assert isinstance(report["overall"]["dsr"], float)


def test_sliding_scheme_runs(coin):
    res = walk_forward(
        *coin.args(), logistic, WalkForwardConfig(splits=WalkForwardSpec(scheme="sliding")), **coin.short
    )
    for record, fold in zip(res.folds, res.splits, strict=True):
        window = np.arange(fold.test[0] - 1200, fold.test[0])
        assert fold.train.tolist() == window[coin.t1[window] < coin.t0[fold.test[0]]].tolist()
        assert record["n_train"] == fold.train.size < 1200


def test_bad_model_output_and_inputs_raise(coin):
    with pytest.raises(ValueError, match="fold 0: fit_predict returned shape"):
        walk_forward(*coin.args(), lambda a, b, c: np.full(3, 0.5), CONFIG, **coin.short)
    with pytest.raises(ValueError, match="probabilities"):
        walk_forward(*coin.args(), lambda a, b, c: np.full(len(c), 1.5), CONFIG, **coin.short)
    with pytest.raises(ValueError, match="X must be 2-D"):
        walk_forward(coin.X[:10], *coin.args()[1:], logistic, CONFIG, **coin.short)
    with pytest.raises(ValueError, match="threshold"):
        WalkForwardConfig(threshold=0.5)


# ----------------------------------------------------------------------------------------------- canaries
def test_block_shuffle_keeps_blocks():
    y = np.arange(100)
    shuffled = block_shuffle_labels(y, 7, seed=1)
    assert sorted(shuffled.tolist()) == y.tolist() and shuffled.tolist() != y.tolist()
    # every block of 7 (the last one: 98, 99) appears intact, in its order
    for start in range(0, 100, 7):
        at = int(np.flatnonzero(shuffled == start)[0])
        block = list(range(start, min(start + 7, 100)))
        assert shuffled[at : at + len(block)].tolist() == block
    assert np.array_equal(shuffled, block_shuffle_labels(y, 7, seed=1))  # seeded


def test_canaries_pass_on_honest_features(coin):
    report = canaries(*coin.args(), logistic, CONFIG, **coin.short)
    assert report["block_shuffle"]["passed"] is True
    assert abs(report["block_shuffle"]["auc"] - 0.5) <= report["block_shuffle"]["bound"]
    assert report["truncation"] == {"passed": None, "reason": "not run"}
    assert report["injected_leak"]["passed"] is True and report["injected_leak"]["auc"] > 0.95
    assert report["passed"] is True


def test_canaries_with_lightgbm(coin):
    lgb = pytest.importorskip("lightgbm")

    def lgbm(X_train, y_train, X_test):
        params = {
            "objective": "binary",
            "num_threads": 1,
            "deterministic": True,
            "force_col_wise": True,
            "seed": 1,
            "verbose": -1,
            "learning_rate": 0.05,
            "num_leaves": 15,
            "min_data_in_leaf": 50,
        }
        booster = lgb.train(params, lgb.Dataset(X_train, label=y_train), num_boost_round=50)
        return booster.predict(X_test)

    assert walk_forward(*coin.args(), lgbm, CONFIG, **coin.short).overall["auc"] > 0.6
    report = canaries(*coin.args(), lgbm, CONFIG, **coin.short)
    assert report["block_shuffle"]["passed"] and report["injected_leak"]["passed"] and report["passed"]


def test_the_block_shuffle_canary_can_fail(coin):
    # A harness bug that lets the model see the (shuffled) test labels: a row-id column and a model that
    # looks the labels up. The shuffled labels are then "predicted" perfectly -> the canary must fail.
    shuffled = block_shuffle_labels(coin.y, CONFIG.shuffle_block, CONFIG.seed)
    X = np.column_stack([coin.X, np.arange(coin.n)])

    def cheat(X_train, y_train, X_test):
        return 0.3 + 0.4 * shuffled[X_test[:, -1].astype(int)]

    report = canaries(*coin.args(X=X), cheat, CONFIG, **coin.short)
    assert report["block_shuffle"]["passed"] is False and report["block_shuffle"]["auc"] == 1.0
    assert report["passed"] is False


def test_a_leaky_feature_is_caught(coin):
    # The centred rolling mean reads 24 bars ahead: out of sample it looks like a great feature ...
    honest = walk_forward(*coin.args(), logistic, CONFIG, **coin.short).overall["auc"]
    leaky_X = np.column_stack([coin.X, coin.centred_mean()])
    leaky = walk_forward(*coin.args(X=leaky_X), logistic, CONFIG, **coin.short).overall["auc"]
    assert leaky - honest > 0.1
    # ... and the truncation canary catches it: cut the data at the end of a training window and rebuild.
    end = 2000

    def full():
        return np.column_stack([coin.X[: end + 1], coin.centred_mean()[: end + 1]])

    def cut():
        return np.column_stack([coin.X[: end + 1], coin.centred_mean(upto=end)])

    report = canaries(
        *coin.args(X=leaky_X), logistic, CONFIG, build_matrix_full=full, build_matrix_cut=cut, **coin.short
    )
    assert report["truncation"]["passed"] is False
    assert report["truncation"]["n_diff"] == HORIZON  # the last 24 rows read bars that the cut removed
    assert report["passed"] is False

    # the causal version of the same feature passes
    def full_ok():
        return np.column_stack([coin.X[: end + 1], coin.trailing_mean()[: end + 1]])

    def cut_ok():
        return np.column_stack([coin.X[: end + 1], coin.trailing_mean(upto=end)])

    report = canaries(*coin.args(), logistic, CONFIG, build_matrix_full=full_ok, build_matrix_cut=cut_ok, **coin.short)
    assert report["truncation"]["passed"] is True and report["truncation"]["n_diff"] == 0
    assert report["passed"] is True


def test_a_broken_harness_fails_the_injected_leak_control(coin):
    report = canaries(*coin.args(), constant, CONFIG, **coin.short)
    assert report["injected_leak"]["passed"] is False and report["injected_leak"]["auc"] == 0.5
    assert report["block_shuffle"]["passed"] is True  # a constant score is at chance, as it should be
    assert report["passed"] is False


def test_the_truncation_canary_needs_both_builders(coin):
    with pytest.raises(ValueError, match="both"):
        canaries(*coin.args(), logistic, CONFIG, build_matrix_full=lambda: coin.X, **coin.short)
    report = canaries(
        *coin.args(),
        logistic,
        CONFIG,
        build_matrix_full=lambda: coin.X,
        build_matrix_cut=lambda: coin.X[:-1],
        **coin.short,
    )
    assert report["truncation"]["passed"] is False and "shapes differ" in report["truncation"]["reason"]
    assert report["passed"] is False


def test_the_leak_control_fits_the_last_fold_only_and_still_catches_a_broken_harness(coin):
    """13 fits a coin-day became 10: the injected-leak control runs on the last fold (see ``canaries`` for why that
    costs it no power), the block shuffle on every fold."""
    calls = []

    def counting(X_train, y_train, X_test):
        calls.append(X_train.shape[1])
        return logistic(X_train, y_train, X_test)

    n_folds = len(walk_forward(*coin.args(), logistic, CONFIG, **coin.short).splits)
    report = canaries(*coin.args(), counting, CONFIG, **coin.short)
    width = coin.X.shape[1]
    assert calls.count(width) == n_folds and calls.count(width + 1) == 1  # shuffle: every fold; leak: one
    last = walk_forward(*coin.args(), logistic, CONFIG, **coin.short).splits[-1]
    assert report["injected_leak"]["folds"] == 1 and report["injected_leak"]["n_oos"] == last.test.size
    assert report["injected_leak"]["passed"] and report["injected_leak"]["auc"] > 0.95
    everywhere = canaries(*coin.args(), logistic, dataclasses.replace(CONFIG, leak_canary_folds=0), **coin.short)
    assert everywhere["injected_leak"]["folds"] == n_folds
    broken = canaries(*coin.args(), constant, CONFIG, **coin.short)  # a harness that ignores its inputs
    assert broken["injected_leak"]["passed"] is False and broken["injected_leak"]["auc"] == 0.5
