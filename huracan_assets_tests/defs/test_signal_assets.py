"""engine_signals and meta_weights through Dagster: checks, the D-1 chain, cold start and the gate cadence."""

from datetime import date, timedelta

import polars as pl
import pytest

from huracan_assets.core.engines.signals import MetaState, recombine
from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.defs.signals import signal_spec, weights_markdown
from huracan_assets.registry.client import Registry
from huracan_assets.runner import run_prelude
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import PartitionWindow
from huracan_assets_tests.defs.helpers import defs_for, local_settings, sqlite_instance

FIRST, LAST = date(2024, 3, 1), date(2024, 3, 14)
COINS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "XRPUSDT"]


@pytest.mark.slow
def test_signals_and_weights_chain_day_by_day(home, tmp_path, test_data_dir):
    # short windows so that 14 days of data reach calibrated edges and a refreshed gate
    settings = local_settings(
        test_data_dir,
        symbols=",".join(COINS),
        engines={"calibration_days": 4, "min_samples": 5},
        gate={"window_days": 3, "refresh_days": 2, "min_samples": 3},
    )
    defs = defs_for(settings)
    instance = sqlite_instance(tmp_path)
    run_prelude(defs, instance, FIRST, LAST)
    symbols = instance.get_dynamic_partitions(SYMBOLS)
    assert sorted(symbols) == sorted(COINS)
    result = defs.resolve_job_def("symbol_day_job").execute_in_process(
        instance=instance, tags=range_tags(FIRST, LAST, symbols)
    )
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    for name in (
        "engine_signals_all_symbols_ok",
        "engine_signals_respect_net_edge_floor",
        "gated_engines_do_not_contribute",
        "meta_weights_all_symbols_ok",
        "meta_weights_are_finite_and_sum_to_one",
    ):
        assert checks[name].passed, (name, checks[name].metadata)

    store = LocalObjectStore(settings.store_root)
    spec = signal_spec(settings)
    days = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
    mw = PartitionWindow(store, "meta_weights", [f"{d}|ETHUSDT" for d in days])
    es = PartitionWindow(store, "engine_signals", [f"{d}|ETHUSDT" for d in days])
    ok_mw = [k for k in mw if mw.status(k).status == "ok"]
    ok_es = [k for k in es if es.status(k).status == "ok"]
    # features start after 9 warm-up days; meta_weights[D] needs D-1's features
    assert ok_es[0] == "2024-03-10|ETHUSDT" and ok_mw[0] == "2024-03-11|ETHUSDT"
    assert mw.status("2024-03-10|ETHUSDT").reason.startswith("D-1: features of 2024-03-09")

    registry = Registry(f"sqlite:///{settings.sqlite_path}")
    rows = {(r["as_of"], r["symbol"]): r["detail"] for r in registry.select("symbol_status", asset="meta_weights")}
    assert rows[(date(2024, 3, 11), "ETHUSDT")]["cold_start"] is True
    assert rows[(date(2024, 3, 12), "ETHUSDT")]["cold_start"] is False
    # the gate is computed on the first day and every refresh_days (2) after, carried in between
    as_of = {k: mw[k]["gate_as_of"][0] for k in ok_mw}
    assert as_of["2024-03-11|ETHUSDT"] == date(2024, 3, 11)
    assert as_of["2024-03-12|ETHUSDT"] == date(2024, 3, 11)
    assert as_of["2024-03-13|ETHUSDT"] == date(2024, 3, 13)
    assert as_of["2024-03-14|ETHUSDT"] == date(2024, 3, 13)
    for key in ok_mw:
        state = MetaState.from_frame(mw[key])
        assert state.state["weight"].sum() == pytest.approx(1.0) and state.state.height == 23
        assert state.gate.height == 23 * 4
    # EMAs moved by the outcomes of D-1's signals: updates accumulate day after day
    n_updates = [MetaState.from_frame(mw[k]).state["n_updates"].sum() for k in ok_mw]
    assert n_updates == sorted(n_updates) and n_updates[-1] > 0

    # engine_signals[D] is exactly the combination with meta_weights[D-1] (no cycle, no look-ahead)
    assert len(ok_es) == 5
    for key in ok_es[2:]:  # 03-12.. have meta_weights[D-1]
        day = date.fromisoformat(key.split("|")[0])
        frame = es[key]
        assert frame.height == 24 and frame["ts"].min() == day_bounds_ms(day)[0]
        prev = MetaState.from_frame(mw[f"{day - timedelta(days=1)}|ETHUSDT"])
        again = recombine(frame, prev.state, prev.gate, spec)
        assert again["combined_score"].equals(frame["combined_score"])
        assert again["combined_direction"].equals(frame["combined_direction"])
    # a cold-start day (no meta_weights[D-1]): every engine gated off, the combination waits
    for key in ok_es[:2]:
        cold = es[key]
        assert not cold.select(pl.col("^.*__gated$")).to_numpy().any()
        assert set(cold["combined_direction"]) == {"wait"}
    # the calibrated edges are real numbers from past labels, not placeholders
    late = es["2024-03-14|ETHUSDT"]
    edges = late.select(pl.col("^.*__edge_bps$")).to_numpy()
    assert (edges != 0).any()
    md = weights_markdown(MetaState.from_frame(mw["2024-03-14|ETHUSDT"]))
    assert md.count("\n| ") >= 23 and "gate computed 2024-03-13" in md
