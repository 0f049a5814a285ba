"""The champion pointer rows and the day's decisions: the global kill switch, publication and carry-forward."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.promotion.gates import Decision, ShadowStats
from huracan_assets.core.promotion.pointer import (
    GLOBAL_KILL_REASON,
    POINTER_SCHEMA,
    Published,
    carried_row,
    decide_pairs,
    decided_row,
)
from huracan_assets.core.shadow.ledger import Ledger
from huracan_assets.core.shadow.pair import ShadowPair
from huracan_assets.core.shadow.trader import ShadowResult
from huracan_assets.settings import load_settings
from huracan_assets.specs import promotion_spec

D = date(2024, 8, 6)
SPEC = promotion_spec(load_settings("local"))


def _pair(symbol: str, drawdown: float, edge_bps: float = 40.0, previous: dict | None = None) -> ShadowPair:
    rng = np.random.default_rng(len(symbol))
    net = rng.normal(edge_bps, 30.0, 120)
    stats = ShadowStats(f"{symbol}-new", net, rng.normal(0.006, 0.003, 30), drawdown, True, 0, 0)
    result = ShadowResult(pl.DataFrame(), pl.DataFrame(), {}, {"max_drawdown": drawdown, "n_trades": 120,
                          "net_bps_per_trade": float(net.mean()), "total_return": 0.03}, {})  # fmt: skip
    row = {"model_id": f"{symbol}-new", "bundle_path": f"challengers/{symbol}/x/", "sha256": "ab" * 32}
    ledgers = {"challenger": Ledger("challenger", since=D), "champion": None}
    return ShadowPair(row, result, stats, None, ledgers, previous)


def test_strong_challengers_are_promoted_and_the_global_kill_switch_stops_them_all():
    calm = {f"{i}|C{i}": _pair(f"C{i}", 0.05) for i in range(4)}
    decided = decide_pairs(calm, SPEC, global_kill_share=0.5)
    assert all(d.promote for d in decided.decisions.values()) and not decided.stop_all
    stormy = {**calm, **{f"{i}|K{i}": _pair(f"K{i}", 0.6) for i in range(5)}}
    decided = decide_pairs(stormy, SPEC, global_kill_share=0.5)
    assert decided.stop_all and sorted(decided.killed) == sorted(k for k in stormy if "|K" in k)
    assert not any(d.promote for d in decided.decisions.values())
    assert {d.reason for k, d in decided.decisions.items() if k in calm} == {GLOBAL_KILL_REASON}


def test_a_promotion_needs_its_publication_and_moves_the_champion():
    pair = _pair("ETH", 0.05)
    promote = Decision(True, "gates passed", {}, False)
    with pytest.raises(ValueError, match="publication"):
        decided_row(D, pair, promote, 1, None)
    published = Published("ETH-new", "models/ETH/x/", "cd" * 32, True)
    row = decided_row(D, pair, promote, 3, published).row(0, named=True)
    assert row["champion_model_id"] == "ETH-new" and row["champion_as_of"] == D and row["latest_moved"]
    assert row["tests_since_promotion"] == 0 and row["champion_ledger"] is None  # a new champion's ledger: D+1
    with pytest.raises(ValueError, match="publication"):
        decided_row(D, pair, Decision(False, "no", {}, False), 1, published)


def test_a_refusal_keeps_the_champion_and_counts_the_retest():
    previous = {"champion_model_id": "ETH-old", "bucket_path": "models/ETH/old/", "sha256": "ef" * 32,
                "champion_as_of": D - timedelta(days=9), "tests_since_promotion": 4}  # fmt: skip
    pair = _pair("ETH", 0.05, previous=previous)
    row = decided_row(D, pair, Decision(False, "margin", {}, False), 5, None).row(0, named=True)
    assert row["champion_model_id"] == "ETH-old" and row["bucket_path"] == "models/ETH/old/"
    assert row["tests_since_promotion"] == 5 and not row["latest_moved"] and row["challenger_trades"] == 120


def test_a_day_without_a_decision_carries_the_champion_and_spends_no_retest():
    previous = {"champion_model_id": "ETH-old", "bucket_path": "models/ETH/old/", "sha256": "ef" * 32,
                "champion_as_of": D - timedelta(days=9), "tests_since_promotion": 4}  # fmt: skip
    frame = carried_row(previous, "no challenger: failed", {"champion": None, "challenger": None})
    assert frame.schema == pl.Schema(POINTER_SCHEMA)
    row = frame.row(0, named=True)
    assert row["champion_model_id"] == "ETH-old" and row["tests_since_promotion"] == 4
    assert row["reason"] == "no decision: no challenger: failed" and row["promoted"] is False
