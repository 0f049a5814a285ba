"""Folds fitted at once (``FoldFits``): the budget is split, the fits really overlap, and nothing in the report or
the models depends on it."""

import threading
import time

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
