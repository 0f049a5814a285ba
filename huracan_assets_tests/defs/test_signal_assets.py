"""engine_signals and meta_weights: checks, the D-1 chain, cold start and the gate cadence through Dagster, and
no look-ahead: engine_signals[D] holds still when labels[D] and the bars after D change."""

from datetime import date, timedelta

import polars as pl
import pytest
from dagster import AssetKey

from huracan_assets.core.engines.signals import MetaState, day_signals, recombine, update_meta
from huracan_assets.core.features.recipe import features_for_window
from huracan_assets.core.labels.triple_barrier import triple_barrier
from huracan_assets.core.market_data.candles import date_range, day_bounds_ms
from huracan_assets.core.regime.classifier import classify_rules
from huracan_assets.defs.partitions import SYMBOLS, range_tags
from huracan_assets.defs.signals import _Inputs, _labels_between, weights_markdown
from huracan_assets.registry.client import Registry
from huracan_assets.runner import run_prelude
from huracan_assets.specs import (
    barrier_spec,
    engine_registry,
    engine_warmup_days,
    recipe_for,
    regime_rules,
    signal_spec,
)
from huracan_assets.storage.object_store import LocalObjectStore
from huracan_assets.storage.partitioned import PartitionWindow, write_frame
from huracan_assets_tests.causality import compare_before, perturb_after
from huracan_assets_tests.defs.helpers import defs_for, local_settings, sqlite_instance
from huracan_assets_tests.defs.test_definitions import describe_mapping

FIRST, LAST = date(2024, 3, 1), date(2024, 3, 14)
COINS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "XRPUSDT"]
SHORT_WINDOWS = {
    "engines": {"calibration_days": 4, "min_samples": 5},
    "gate": {"window_days": 3, "refresh_days": 2, "min_samples": 3},
}


@pytest.mark.slow
def test_signals_and_weights_chain_day_by_day(home, tmp_path, test_data_dir):
    # short windows so that 14 days of data reach calibrated edges and a refreshed gate
    settings = local_settings(test_data_dir, symbols=",".join(COINS), **SHORT_WINDOWS)
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

    # engine_signals[D] is exactly the combination with meta_weights[D-1] (no cycle; look-ahead: the test below)
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


# ----------------------------------------------------------------------------------- no look-ahead, asset inputs

COIN, REF, D = "DOGEUSDT", "BTCUSDT", date(2024, 3, 12)  # DOGE: meta_weights[D-1] has voters on D


def _keys(symbol: str, first: date, last: date) -> list[str]:
    return [f"{d.isoformat()}|{symbol}" for d in date_range(first, last)]


class _Store:
    """candles, features, labels and regimes of COIN (and REF in reference_candles) per day, as their assets store
    them."""

    def __init__(self, root, settings, data_dir):
        self.settings, self.store = settings, LocalObjectStore(root)
        self.bar_ms = settings.bar_minutes * 60_000
        self.barrier = barrier_spec(settings)  # the labels asset's own spec (entry lag included)
        self.ref = pl.read_parquet(data_dir / "1h" / "BTC_USDT.parquet").sort("ts")
        self.write_candles(REF, self.ref)
        self.write_candles(COIN, pl.read_parquet(data_dir / "1h" / f"{COIN[:-4]}_USDT.parquet").sort("ts"))

    def write_candles(self, symbol: str, candles: pl.DataFrame) -> None:
        """Store the days of ``candles``; for COIN also every day's features, labels and regimes from them."""
        for day in date_range(FIRST, LAST):
            start, end = day_bounds_ms(day)
            bars = candles.filter(pl.col("ts").is_between(start, end - 1))
            if symbol == REF:  # the day-only reference_candles asset: every reference coin, a symbol column
                write_frame(self.store, "reference_candles", day.isoformat(), bars.with_columns(symbol=pl.lit(REF)))
                continue
            write_frame(self.store, "candles", f"{day}|{symbol}", bars)
            if symbol != COIN:
                continue
            history = candles.filter(pl.col("ts") < end)
            reference = self.ref.select("ts", "close")
            feats = features_for_window(history, recipe_for(self.settings), start, end, reference=reference)
            write_frame(self.store, "features", f"{day}|{symbol}", feats)
            regimes = classify_rules(history, regime_rules(self.settings), start, end)
            write_frame(self.store, "regimes", f"{day}|{symbol}", regimes)
            if day > FIRST:  # labels[day]: the events of day - 1, resolved by the end of day
                labels = triple_barrier(history, *day_bounds_ms(day - timedelta(days=1)), self.barrier, self.bar_ms)
                write_frame(self.store, "labels", f"{day}|{symbol}", labels)

    def window(self, asset: str, first: date, last: date) -> PartitionWindow:
        return PartitionWindow(self.store, asset, _keys(COIN, first, last))


def _warm_meta(st: _Store, registry, spec) -> MetaState:
    """meta_weights[D-1] as its asset builds it from nothing (cold previous state, gate due): bars up to D-2."""
    settings = st.settings
    day, yday = D - timedelta(days=1), D - timedelta(days=2)
    warm, gate_days = engine_warmup_days(settings), settings.gate.window_days
    first = yday - timedelta(days=gate_days + warm)
    inputs = _Inputs(settings, st.store, st.window("candles", first, yday), st.window("features", first, yday))
    labels = st.window("labels", day - timedelta(days=gate_days - 1), day)
    g0 = yday - timedelta(days=gate_days - 1)
    regimes, _ = st.window("regimes", g0, yday).days(COIN, date_range(g0, yday))
    gate = ((day_bounds_ms(g0)[0], day_bounds_ms(yday)[1]), _labels_between(labels, COIN, g0 + timedelta(days=1), day))
    state, _ = update_meta(
        registry,
        None,
        day,
        inputs.build(COIN, first, yday, yday),
        day_bounds_ms(yday),
        _labels_between(labels, COIN, day, day),
        *gate,
        regimes,
        spec,
    )
    return state


def test_engine_signals_of_d_ignore_labels_of_d_and_bars_after_d(tmp_path, test_data_dir):
    """engine_signals[D] from the asset's own input builders (``_Inputs``, ``_labels_between``) and its windows:
    the bars of D and before, labels up to D-1 (events up to D-2), regimes[D], meta_weights[D-1]. Then labels[D]
    (the outcomes resolved during D) and the bars of D+1 and D+2 are rewritten, handed to the same code as if the
    windows reached them, and the signals of D must not move; a rewritten labels[D-1] must move them."""
    settings = local_settings(test_data_dir, **SHORT_WINDOWS)
    registry, spec = engine_registry(settings), signal_spec(settings)
    warm, calib = engine_warmup_days(settings), settings.engines.calibration_days
    # the asset's windows: candles and features up to D, labels up to D-1, regimes of D, meta_weights of D-1
    graph = defs_for(settings).resolve_asset_graph()
    node = graph.get(AssetKey("engine_signals"))
    mappings = {
        p.to_user_string(): describe_mapping(graph.get_partition_mapping(node.key, p)) for p in node.parent_keys
    }
    assert mappings == {
        "candles": f"date:window[{-(calib + warm)},0] symbol:identity",
        "features": f"date:window[{-(calib + warm)},0] symbol:identity",
        "labels": f"date:window[{-(calib - 1)},-1] symbol:identity",
        "meta_weights": "date:window[-1,-1] symbol:identity",
        "regimes": "identity",
        "spreads": f"date:window[{-settings.costs.spread_days},-1] symbol:identity",  # never spreads[D]
        "reference_candles": "dimension(None)",  # the market series, universe.reference_symbol (read over the window)
    }

    st = _Store(tmp_path / "store", settings, test_data_dir)
    first = D - timedelta(days=calib + warm)
    start, end = day_bounds_ms(D)
    regimes = st.window("regimes", D, D)[f"{D}|{COIN}"]

    def signals(meta: MetaState, labels_last: date, candles_last: date) -> pl.DataFrame:
        candles, features = st.window("candles", first, candles_last), st.window("features", first, candles_last)
        inp = _Inputs(settings, st.store, candles, features).build(COIN, first, candles_last, D)
        labels = st.window("labels", D - timedelta(days=calib - 1), labels_last)
        outcomes = _labels_between(labels, COIN, D - timedelta(days=calib - 1), labels_last)
        if candles_last > D:
            assert inp.frame["ts"].max() >= end + 24 * st.bar_ms - st.bar_ms  # the later bars really are in
        if labels_last == D:
            assert outcomes.filter(pl.col("ts") >= start - 86_400_000).height >= 20  # labels[D] really is in
        out, _ = day_signals(registry, inp, start, end, outcomes, regimes, meta.state, meta.gate, spec)
        return out

    metas = {"cold": MetaState.cold(list(registry.names())), "warm": _warm_meta(st, registry, spec)}
    base = {name: signals(meta, D - timedelta(days=1), D) for name, meta in metas.items()}
    assert base["cold"].height == 24 and (base["cold"].select(pl.col("^.*__edge_bps$")).to_numpy() != 0).any()
    assert base["warm"]["combined_voters"].sum() > 0

    # rewrite labels[D] (opposite, shuffled outcomes) and the bars of D+1, D+2 (scaled, thinned)
    labels_d = st.window("labels", D, D)[f"{D}|{COIN}"]
    flipped = labels_d.with_columns(  # both sides' outcomes: a leak through a sell's calibration shows too
        pl.col("ret", "net_ret", "ret_short", "net_ret_short").shuffle(seed=1) * -3.0, -pl.col("label")
    )
    write_frame(st.store, "labels", f"{D}|{COIN}", flipped)
    bars, _ = st.window("candles", FIRST, LAST).days(COIN, date_range(FIRST, LAST))
    later = perturb_after(perturb_after(bars, end - 1, "scale", seed=3), end + 12 * 3_600_000, "thin", seed=4)
    st.write_candles(COIN, later)
    assert st.window("candles", D, D)[f"{D}|{COIN}"].equals(bars.filter(pl.col("ts").is_between(start, end - 1)))
    for name, meta in metas.items():
        leaked = signals(meta, D, D + timedelta(days=2))
        assert compare_before(base[name], leaked, end, [c for c in base[name].columns if c != "ts"]) == [], name

    # the check can fail: labels[D-1] (events of D-2, known before D) do move the edges
    prev = f"{D - timedelta(days=1)}|{COIN}"
    labels_p = st.window("labels", D - timedelta(days=1), D - timedelta(days=1))[prev]
    write_frame(st.store, "labels", prev, labels_p.with_columns(pl.col("ret", "ret_short") * -3.0, -pl.col("label")))
    moved = signals(metas["cold"], D - timedelta(days=1), D)
    assert compare_before(base["cold"], moved, end, [c for c in moved.columns if c.endswith("__edge_bps")])
