"""The walk-forward books exactly the trades the shadow trader books: same entries, same fills, same exits, same P&L
per trade, longs and shorts, on real candles, under the execution rules of production: a fill at the next bar's
open (latency 1; also 0 and 2), each leg's cost from its own bar (the fill bar in, the exit bar out) and the stop
slippage on the exit bar's half-spread.

Labels from real 1h candles (``triple_barrier`` with ``entry_lag_bars``, ``pt_mult != sl_mult`` so the short's
barriers are not the long's mirror), the training frame (``training_frame``, per-bar costs from
``CostModel.round_trip_bps`` through the ``engine_signals`` columns ``fee_bps``, ``spread_bps``, ``slippage_bps``;
``trade_costs`` for each side's round trip), then ``walk_forward`` with a model that returns fixed probabilities: a
strong long or short signal on most rows, and always the side that gets stopped out on the rows whose exit bar
touches both of that side's barriers. The shadow trader (``simulate``) gets the same probabilities on the same
bars, the same per-bar costs, barriers, latency and stop slippage, and no guardrail (``ShadowSpec``: no net-edge
floor, spread cap, cooldown, dedup, meta or daily limits). Both take one position at a time, so the walk-forward
must also wait for the exit of the side it took."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.costs import CostModel
from huracan_assets.core.execution import StopSlippage
from huracan_assets.core.labels.triple_barrier import BarrierSpec, triple_barrier
from huracan_assets.core.shadow.trader import RiskPreset, ShadowSpec, simulate
from huracan_assets.core.training.dataset import COST_COLUMNS, matrix, trade_costs, training_frame
from huracan_assets.core.validation.splits import WalkForwardSpec
from huracan_assets.core.validation.walk_forward import WalkForwardConfig, walk_forward

H = 3_600_000
DATA = Path(__file__).resolve().parents[2] / "data" / "replay_long" / "1h"
BARRIER = BarrierSpec(pt_mult=1.0, sl_mult=1.5, max_holding_bars=12, vol_window=48, entry_lag_bars=1)
COSTS = CostModel.from_config({"venue": "binance_spot"})
STOP = StopSlippage(half_spreads=1.0, fixed_bps=2.0)
THRESHOLD = 0.05
NO_GUARDRAILS = ShadowSpec(
    threshold=THRESHOLD,
    net_edge_floor_bps=-1e12,
    max_spread_bps=1e12,
    cooldown_bars=0,  # the exit bar itself never re-enters; the walk-forward's next event is the bar after too
    dedup_bars=0,
    respect_meta=False,
    pt_mult=BARRIER.pt_mult,
    sl_mult=BARRIER.sl_mult,
    max_holding_bars=BARRIER.max_holding_bars,
    vol_window=BARRIER.vol_window,
    min_vol=BARRIER.min_vol,
    risk=RiskPreset("unlimited", 1.0, 10**9, 1e12),
    latency_bars=BARRIER.entry_lag_bars,
    stop_slippage=STOP,
)


def _double_touch(labels: pl.DataFrame, candles: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per event: did the long's / the short's exit bar touch both of that side's barriers (opening inside)?"""
    bars = candles.select(pl.col("ts").alias("exit_ts"), "open", "high", "low")

    def both(touch: str, upper: pl.Expr, lower: pl.Expr) -> np.ndarray:
        joined = labels.join(bars, left_on=touch, right_on="exit_ts", how="left")
        flag = (
            (pl.col("high") >= upper) & (pl.col("low") <= lower) & (pl.col("open") < upper) & (pl.col("open") > lower)
        )
        return joined.select(flag.fill_null(False)).to_series().to_numpy()

    entry, vol = pl.col("entry"), pl.col("vol")
    long_both = both("touch_ts", pl.col("pt_price"), pl.col("sl_price"))
    short_both = both("touch_ts_short", entry * (BARRIER.sl_mult * vol).exp(), entry * (-(BARRIER.pt_mult * vol)).exp())
    return long_both, short_both


def _walk_forward_and_shadow(symbol: str, seed: int, latency: int = 1):
    barrier = dataclasses.replace(BARRIER, entry_lag_bars=latency)
    candles = pl.read_parquet(DATA / f"{symbol}_USDT.parquet")
    assert (candles["ts"].diff().drop_nulls() == H).all()  # gap-free: both use the same vertical barrier
    first, last = int(candles["ts"][0]), int(candles["ts"][-1])
    labels = triple_barrier(candles, first, last + 1, barrier, H)
    costs = COSTS.round_trip_bps(candles, 1000.0, barrier.max_holding_bars * 60)
    assert (costs["funding_bps"] == 0).all()  # spot: the shadow trader's cost is fee + spread + slippage
    signals = costs.select("ts", "fee_bps", "spread_bps", "slippage_bps").with_columns(
        regime=pl.lit("RANGE"), combined_score=pl.lit(0.0)
    )
    features = candles.select("ts", pl.int_range(pl.len()).cast(pl.Float64).alias("bar"))
    frame = training_frame(features, signals, labels, first, last + H, H, ["bar"], [], horizon_ms=barrier.horizon_ms(H))
    # the first bars have no slippage estimate yet (nor does the signal bar to fall back on)
    frame = frame.filter(pl.all_horizontal(pl.col(COST_COLUMNS).is_not_null()))
    names = ["bar", "combined_score", "regime_code"]
    x = matrix(frame, names)
    bar_of = x[:, 0].astype(np.int64)

    # probabilities per bar: 35 % long, 35 % short, 30 % no signal; the losing side wherever a side's exit bar
    # touches both of its barriers (the bars the old scoring got wrong)
    long_both, short_both = _double_touch(labels, candles)
    lab_bar = np.searchsorted(candles["ts"].to_numpy(), labels["ts"].to_numpy())
    u = np.random.default_rng(seed).random(candles.height)
    p_bar = np.where(u < 0.35, 0.9, np.where(u < 0.7, 0.1, 0.5))
    p_bar[lab_bar[long_both]] = 0.9
    p_bar[lab_bar[short_both]] = 0.1

    def fixed(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        return p_bar[x_test[:, 0].astype(np.int64)]

    config = WalkForwardConfig(splits=WalkForwardSpec(n_folds=4), threshold=THRESHOLD)
    cols = {c: frame[c].to_numpy() for c in ("y", "t0", "t1", "ret_bps", "ret_short_bps", "t1_short")}
    wf = walk_forward(
        x, cols["y"], cols["t0"], cols["t1"], cols["ret_bps"], trade_costs(frame, STOP), fixed, config,
        ret_short_bps=cols["ret_short_bps"], t1_short=cols["t1_short"],
    )  # fmt: skip

    # the shadow trader: the same probabilities on the walk-forward's out-of-sample bars, no signal elsewhere
    oos_bars = bar_of[np.concatenate([f.test for f in wf.splits])]
    p_shadow = np.full(candles.height, 0.5)
    p_shadow[oos_bars] = p_bar[oos_bars]
    shadow = simulate(
        candles["ts"], candles["open"], candles["high"], candles["low"], candles["close"], p_shadow, None,
        costs["fee_bps"], costs["spread_bps"], costs["slippage_bps"], first, last + 1,
        dataclasses.replace(NO_GUARDRAILS, latency_bars=latency), H,
    )  # fmt: skip
    flags = pl.DataFrame({"entry_ts": labels["ts"], "long_both": long_both, "short_both": short_both})
    return wf, shadow, flags


@pytest.mark.parametrize(("symbol", "seed", "latency"), [("BTC", 1, 1), ("UNI", 2, 1), ("WIF", 3, 1), ("BTC", 4, 0),
                                                      ("SOL", 5, 2)])  # fmt: skip
def test_walk_forward_pnl_per_trade_equals_the_shadow_traders(symbol, seed, latency):
    wf, shadow, flags = _walk_forward_and_shadow(symbol, seed, latency)
    ours = (
        wf.oos.filter(pl.col("side") != 0)
        .select(
            pl.col("t0").alias("signal_ts"),
            "side",
            pl.when(pl.col("side") > 0).then("t1").otherwise("t1_short").alias("exit_close_ms"),
            "gross_bps",
            "cost_bps",
            "pnl_bps",
            "ret_bps",
            "ret_short_bps",
        )
        .join(flags.rename({"entry_ts": "signal_ts"}), on="signal_ts", how="left")
    )
    theirs = shadow.trades
    # no guardrail but the cooldown of the exit bar (where the walk-forward's position is still open too)
    assert {k for k, n in shadow.skipped.items() if n} == {"no_signal", "cooldown"}
    assert (theirs["exit_reason"] != "mark").all()
    # the same signals, in the same order, on the same side, filled after the latency, leaving at the same bar
    assert ours["signal_ts"].to_list() == theirs["signal_ts"].to_list()
    assert ours["side"].to_list() == theirs["side"].to_list()
    assert ((theirs["entry_ts"] - theirs["signal_ts"]) == latency * H).all()
    assert ours["exit_close_ms"].to_list() == (theirs["exit_ts"] + H).to_list()
    # ... with the same gross, cost and P&L per trade
    for mine, its in (("gross_bps", "gross_bps"), ("cost_bps", "cost_bps"), ("pnl_bps", "net_bps")):
        np.testing.assert_allclose(ours[mine].to_numpy(), theirs[its].to_numpy(), rtol=0, atol=1e-9)
    # the comparison covers what the old scoring got wrong: shorts, both-touch exits on either side, and shorts
    # whose own outcome is not the long's mirror
    longs, shorts = ours.filter(pl.col("side") > 0), ours.filter(pl.col("side") < 0)
    assert longs.height > 20 and shorts.height > 20
    assert longs["long_both"].sum() > 0 and shorts["short_both"].sum() > 0
    mirror = -shorts["ret_bps"]
    assert (shorts["ret_short_bps"] - mirror).abs().max() > 10.0
    # ... and the new execution rules matter: stops pay their slippage, and on many trades the exit bar's costs
    # differ from the fill bar's (with the fill bar's costs out too, the P&L would differ beyond the tolerance)
    stops = theirs.filter(pl.col("exit_reason") == "sl")
    assert stops.height > 10 and (stops["stop_slippage_bps"] >= STOP.fixed_bps).all()
    fill_side = theirs.join(shadow_costs(symbol), left_on="entry_ts", right_on="ts", how="left")["per_side"]
    exit_side = theirs["cost_bps"] - theirs["stop_slippage_bps"] - fill_side
    assert ((exit_side - fill_side).abs() > 0.01).sum() >= 20
    assert wf.overall["n_trades"] == theirs.height
    assert wf.overall["net_bps_per_trade"] == pytest.approx(float(theirs["net_bps"].mean()), rel=1e-9, abs=1e-9)
    assert wf.overall["stop_slippage_bps_per_trade"] == pytest.approx(
        float(theirs["stop_slippage_bps"].mean()), rel=1e-9, abs=1e-9
    )
    assert math.isfinite(wf.overall["dsr"])


def shadow_costs(symbol: str) -> pl.DataFrame:
    """The per-side cost of each bar (half of fee + spread + slippage), as the trader pays it on its fill bar."""
    candles = pl.read_parquet(DATA / f"{symbol}_USDT.parquet")
    costs = COSTS.round_trip_bps(candles, 1000.0, BARRIER.max_holding_bars * 60)
    return costs.select("ts", (pl.col("fee_bps") * 0.5 + pl.col("spread_bps") * 0.5 + pl.col("slippage_bps") * 0.5)
                        .alias("per_side"))  # fmt: skip
