"""Folds fitted at once (``FoldFits``): the budget is split, the fits really overlap, and nothing in the report or
the models depends on it."""

import threading
import time

import numpy as np
import pytest

from huracan_assets.core.models.base import ModelSpec
from huracan_assets.core.training.challenger import FoldFits, TrainingTimeout
from huracan_assets.core.validation.walk_forward import WalkForwardConfig, canaries, walk_forward
from huracan_assets_tests.core.validation.test_walk_forward import Coin

NAMES = ("signal", "noise_a", "noise_b")
SMALL = {"num_boost_round": 40, "num_leaves": 15}


def _spec(threads: int, kind: str = "lightgbm") -> ModelSpec:
    return ModelSpec(kind, SMALL if kind == "lightgbm" else {"epochs": 2}, seed=3, threads=threads)


@pytest.fixture(scope="module")
def coin() -> Coin:
    return Coin(n=3000, seed=4)


def _validated(coin: Coin, threads: int) -> tuple[dict, dict, list]:
    fits = FoldFits(_spec(threads), NAMES)
    config = WalkForwardConfig()
    wf = walk_forward(*coin.args(), fits, config, **coin.short, fold_map=fits.fold_map)
    can = canaries(*coin.args(), fits, config, **coin.short, fold_map=fits.fold_map)
    return wf.to_dict(), can, wf.oos["p"].to_list()


def test_folds_at_once_give_exactly_the_report_of_folds_in_turn(coin):
    at_once = _validated(coin, threads=2)  # two folds in flight, one thread each
    in_turn = _validated(coin, threads=1)
    assert at_once[2] == in_turn[2]  # every out-of-sample probability, bit for bit
    assert at_once[0] == in_turn[0] and at_once[1] == in_turn[1]
    assert at_once[0]["overall"]["auc"] > 0.55 and at_once[1]["passed"] is True


def test_the_budget_is_split_among_the_folds_in_flight_and_the_fits_overlap():
    fits = FoldFits(_spec(threads=2), NAMES)
    seen, inside, peak, lock = [], [0], [0], threading.Lock()

    def fold(i: int) -> float:
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
            seen.append((threading.current_thread().name, fits.current_threads()))
        time.sleep(0.1 + 0.05 * (3 - i))  # later folds finish first: the order must not come from finishing
        with lock:
            inside[0] -= 1
        return i

    assert fits.fold_map(fold, [0, 1, 2, 3]) == [0, 1, 2, 3]  # in the folds' order
    assert peak[0] == 2  # two at once, never more than the budget
    assert {t for _, t in seen} == {1}  # each on its share: 2 fits x 1 thread
    assert len({name for name, _ in seen}) == 2
    lone = []
    assert fits.fold_map(lambda i: lone.append(fits.current_threads()) or i, [7]) == [7]
    assert lone == [2]  # a lone fold keeps the whole budget


@pytest.mark.parametrize("spec", [_spec(1), _spec(4, "torch_mlp")], ids=["one-thread", "torch"])
def test_no_folds_at_once_on_one_thread_nor_for_torch(spec):
    fits = FoldFits(spec, NAMES)
    names = []
    fits.fold_map(lambda i: names.append(threading.current_thread().name), [0, 1, 2])
    assert set(names) == {threading.current_thread().name}


def test_a_fit_past_the_deadline_stops_the_folds_in_flight(coin):
    fits = FoldFits(_spec(threads=2), NAMES, deadline=time.monotonic() - 1)
    with pytest.raises(TrainingTimeout):
        walk_forward(*coin.args(), fits, WalkForwardConfig(), **coin.short, fold_map=fits.fold_map)


def test_on_real_candles_folds_at_once_equal_folds_in_turn():
    """Real SOL 1h candles, real triple-barrier labels, the default LightGBM: the reports are the same bytes."""
    import polars as pl

    from huracan_assets.core.labels.triple_barrier import BarrierSpec, triple_barrier
    from huracan_assets.core.validation.metrics import TradeCosts
    from huracan_assets.settings import SAMPLE_DATA_DIR

    bars = pl.read_parquet(SAMPLE_DATA_DIR / "1h" / "SOL_USDT.parquet").sort("ts").head(3000)
    h = 3_600_000
    labels = triple_barrier(bars, int(bars["ts"][60]), int(bars["ts"][-30]), BarrierSpec(max_holding_bars=24), h)
    labels = labels.filter(pl.col("label").is_not_null())
    r = bars.with_columns(pl.col("close").log().diff().alias("r"))
    feats = r.select(
        "ts",
        *[pl.col("r").shift(k).alias(f"r_{k}") for k in range(6)],
        pl.col("r").rolling_std(24).alias("vol_24"),
        (pl.col("volume") / pl.col("volume").rolling_mean(24)).alias("volume_24"),
    )
    rows = labels.join(feats, on="ts", how="inner").drop_nulls()
    names = tuple(c for c in feats.columns if c != "ts")
    x = rows.select(names).to_numpy()
    t0 = rows["ts"].to_numpy()
    args = (x, (rows["label"] > 0).cast(pl.Int8).to_numpy(), t0, rows["touch_ts"].to_numpy() + h,
            rows["ret"].to_numpy() * 1e4, TradeCosts.from_parts({"fee": np.full(len(rows), 8.0)}))  # fmt: skip
    short = {"ret_short_bps": rows["ret_short"].to_numpy() * 1e4, "t1_short": rows["touch_ts_short"].to_numpy() + h}
    reports = []
    for threads in (2, 1):
        fits = FoldFits(ModelSpec("lightgbm", {"num_boost_round": 60}, seed=5, threads=threads), names)
        wf = walk_forward(*args, fits, WalkForwardConfig(), **short, fold_map=fits.fold_map)
        reports.append((wf.to_dict(), wf.oos["p"].to_list()))
    assert len(rows) > 2000
    assert reports[0] == reports[1]
