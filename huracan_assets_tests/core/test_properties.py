"""Property tests (hypothesis): the candle cleaner, the triple barrier and the promotion decision, on inputs no
one wrote by hand.

- The cleaner never crashes on frames of any shape of badness (unsorted, duplicated, misaligned, outside the
  window, NaN, inf, zero and negative prices, broken OHLC), returns a valid frame, and accounts for every input
  row: each is kept or counted under the reason it was dropped.
- The triple barrier: the touch comes after the entry and within the horizon, the label agrees with the return,
  and nothing is labelled without its full horizon in the data; the fast kernel equals the reference.
- The promotion decision is monotone where it must be: a better challenger, a worse champion, a looser spec or
  an earlier retest never turn a promotion into a refusal.
"""

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from huracan_assets.core.labels.triple_barrier import BarrierSpec, triple_barrier, triple_barrier_reference
from huracan_assets.core.market_data.cleaning import CleaningPolicy, clean_candles, validate_candles
from huracan_assets.core.promotion.gates import PromotionSpec, ShadowStats, decide

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
DAY = 24 * H
PRICES = ("open", "high", "low", "close")
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ----------------------------------------------------------------------------------------------- candle cleaner
price = st.one_of(
    st.floats(0.5, 200.0),
    st.sampled_from([0.0, -1.0, math.nan, math.inf, -math.inf, 1e-12]),
)
volume = st.one_of(st.floats(0.0, 1e6), st.sampled_from([-5.0, math.nan, math.inf]))
offset = st.one_of(
    st.integers(-3, 30).map(lambda h: h * H),  # on the grid, some outside the day
    st.integers(-3 * H, 30 * H),  # anywhere, mostly misaligned
)
row = st.tuples(offset, price, price, price, price, volume)


@st.composite
def candle_frames(draw) -> pl.DataFrame:
    rows = draw(st.lists(row, min_size=0, max_size=40))
    if draw(st.booleans()) and rows:  # some exact duplicates of a timestamp
        rows += draw(st.lists(st.sampled_from(rows), max_size=5))
    return pl.DataFrame(
        {
            "ts": [T0 + r[0] for r in rows],
            "open": [r[1] for r in rows],
            "high": [r[2] for r in rows],
            "low": [r[3] for r in rows],
            "close": [r[4] for r in rows],
            "volume": [r[5] for r in rows],
        },
        schema={"ts": pl.Int64, **{c: pl.Float64 for c in ("open", "high", "low", "close", "volume")}},
    )


@PROPERTY
@given(frame=candle_frames(), fill=st.sampled_from(["none", "ffill_flat"]))
def test_the_cleaner_keeps_or_accounts_for_every_row(frame, fill):
    out, report = clean_candles(frame, T0, T0 + DAY, CleaningPolicy(bar_minutes=60, fill_gaps=fill))
    assert validate_candles(out) == []
    ts = out["ts"].to_list()
    assert ts == sorted(set(ts)) and all(T0 <= t < T0 + DAY and (t - T0) % H == 0 for t in ts)
    dropped = (
        report.outside_window_dropped
        + report.misaligned_dropped
        + report.duplicates_dropped
        + report.nan_rows_dropped
        + report.non_positive_dropped
    )
    assert report.rows_in == frame.height
    assert report.rows_out == out.height == frame.height - dropped + report.gap_bars_filled
    # every valid input bar is in the output, at its own time; of duplicated ones the last copy is the bar
    last = frame.with_row_index("i").filter(pl.col("ts").is_between(T0, T0 + DAY - 1) & ((pl.col("ts") - T0) % H == 0))
    last = last.sort("i").unique("ts", keep="last")
    ok = last.filter(
        pl.all_horizontal(pl.col(PRICES).is_finite() & (pl.col(PRICES) > 0))
        & pl.col("volume").is_finite()
        & (pl.col("volume") >= 0)
    )
    assert set(ok["ts"].to_list()) <= set(ts)
    if not report.changed and fill == "none":
        kept = frame.filter(pl.col("ts").is_between(T0, T0 + DAY - 1)).sort("ts")
        assert kept["close"].to_list() == out["close"].to_list()


@PROPERTY
@given(frame=candle_frames())
def test_strict_mode_refuses_with_a_clear_error_or_cleans(frame):
    policy = CleaningPolicy(bar_minutes=60, drop_non_positive=False, repair_ohlc=False)
    try:
        out, _ = clean_candles(frame, T0, T0 + DAY, policy)
    except ValueError as exc:
        assert str(exc)  # refused, saying why
    else:
        assert validate_candles(out) == []


# ----------------------------------------------------------------------------------------------- triple barrier
@st.composite
def price_paths(draw) -> pl.DataFrame:
    n = draw(st.integers(30, 160))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    vol = draw(st.sampled_from([0.001, 0.01, 0.04]))
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.concatenate([[100.0], close[:-1]]) * np.exp(rng.normal(0.0, vol / 4, n))
    wick = np.abs(rng.normal(0.0, vol, (2, n)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    ts = T0 + np.arange(n, dtype=np.int64) * H
    holes = draw(st.lists(st.integers(1, n - 2), max_size=6, unique=True))  # missing bars
    keep = np.ones(n, dtype=bool)
    keep[holes] = False
    frame = pl.DataFrame({"ts": ts, "open": open_, "high": high, "low": low, "close": close})
    return frame.filter(pl.Series(keep))


barrier_specs = st.builds(
    BarrierSpec,
    pt_mult=st.sampled_from([0.5, 1.0, 2.0]),
    sl_mult=st.sampled_from([0.5, 1.0, 2.0]),
    max_holding_bars=st.integers(1, 12),
    vol_window=st.integers(2, 20),
    side=st.sampled_from([-1, 0, 1]),
    cost_bps=st.sampled_from([0.0, 10.0]),
    touch=st.sampled_from(["close", "high_low"]),
    entry_lag_bars=st.integers(0, 1),
)


@PROPERTY
@given(frame=price_paths(), spec=barrier_specs)
def test_triple_barrier_invariants(frame, spec):
    ts = frame["ts"].to_numpy()
    start, end = int(ts[0]), int(ts[-1]) + H
    out = triple_barrier(frame, start, end, spec, H)
    assert out.height == frame.height  # one row per event bar
    last_ts = int(ts[-1])
    for r in out.iter_rows(named=True):
        horizon_end = r["ts"] + spec.max_holding_bars * H
        if r["label"] is None:
            continue
        # labelled: the data reach the vertical barrier, the fill is at or after the event, the touch after both
        assert last_ts >= horizon_end
        assert r["entry_ts"] >= r["ts"] and r["entry_ts"] <= horizon_end
        assert r["touch_ts"] >= r["entry_ts"] and r["touch_ts"] <= horizon_end
        if spec.entry_lag_bars == 0:
            assert r["touch_ts"] > r["ts"]  # filled at the event's close: the touch is a later bar
        assert r["holding_bars"] == (r["touch_ts"] - r["ts"]) // H
        net = r["net_ret"]
        if spec.side != 0:  # meta-labels: 1 exactly when the side's trade nets a profit
            assert r["label"] == int(net > 0)
        else:
            if r["label"] == 1:
                assert net > 0
            if r["label"] == -1:
                assert r["net_ret_short"] > 0
            if r["label"] == 0:
                assert net <= 0 or r["net_ret_short"] <= 0 or r["touch_ts"] == r["touch_ts_short"]
    unresolved = out.filter(pl.col("ts") + spec.max_holding_bars * H > last_ts)
    assert unresolved["label"].null_count() == unresolved.height  # nothing labelled without its full horizon


@settings(max_examples=60, deadline=None)
@given(frame=price_paths(), spec=barrier_specs)
def test_triple_barrier_kernel_equals_the_reference(frame, spec):
    ts = frame["ts"].to_numpy()
    start, end = int(ts[0]), int(ts[-1]) + H
    fast = triple_barrier(frame, start, end, spec, H)
    slow = triple_barrier_reference(frame, start, end, spec, H)
    assert fast.equals(slow, null_equal=True)


# ----------------------------------------------------------------------------------------------- promotion
@st.composite
def shadow_pairs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_c, n_k = draw(st.integers(2, 120)), draw(st.one_of(st.just(0), st.integers(1, 80)))
    mean_c, mean_k = draw(st.floats(-10, 120)), draw(st.floats(-20, 120))
    sd = draw(st.floats(5, 40))
    days, daily_c, daily_k = draw(st.integers(5, 30)), draw(st.floats(-0.002, 0.01)), draw(st.floats(-0.002, 0.01))
    challenger = _stats("c", rng.normal(mean_c, sd, n_c), rng.normal(daily_c, 0.01, days))
    champion = None if n_k == 0 else _stats("k", rng.normal(mean_k, sd, n_k), rng.normal(daily_k, 0.01, days))
    return challenger, champion


def _stats(name: str, trades: np.ndarray, daily: np.ndarray, canaries: bool = True) -> ShadowStats:
    return ShadowStats(name, trades, daily, 0.05, canaries, T0, T0 + DAY)


def _shift(stats: ShadowStats | None, bps: float) -> ShadowStats | None:
    if stats is None:
        return None
    return _stats(stats.model_id, stats.trade_net_bps + bps, stats.daily_returns + bps / 1e4)


SPEC = PromotionSpec(min_trades=10)


@PROPERTY
@given(pair=shadow_pairs(), better=st.floats(1.0, 50.0), trial=st.integers(1, 40))
def test_a_better_challenger_is_never_refused_where_a_worse_one_is_promoted(pair, better, trial):
    challenger, champion = pair
    if not decide(challenger, champion, SPEC, trial).promote:
        return  # the property is about promotions (test_properties_are_not_vacuous: both outcomes occur)
    assert decide(_shift(challenger, better), champion, SPEC, trial).promote  # better trades and days
    if champion is not None:
        assert decide(challenger, _shift(champion, -better), SPEC, trial).promote  # a worse champion


@PROPERTY
@given(pair=shadow_pairs(), later=st.integers(1, 40), trial=st.integers(1, 40))
def test_a_later_retest_or_a_stricter_spec_never_promotes_what_was_refused(pair, later, trial):
    challenger, champion = pair
    if decide(challenger, champion, SPEC, trial).promote:
        return
    assert not decide(challenger, champion, SPEC, trial + later).promote
    stricter = PromotionSpec(min_trades=12, margin_bps=SPEC.margin_bps + 1, confidence=0.95, min_dsr=0.6)
    assert not decide(challenger, champion, stricter, trial).promote


@PROPERTY
@given(pair=shadow_pairs())
def test_failed_canaries_always_refuse(pair):
    challenger, champion = pair
    broken = _stats("c", challenger.trade_net_bps, challenger.daily_returns, canaries=False)
    decision = decide(broken, champion, SPEC, 1)
    assert not decision.promote and not decision.gates["canaries"]["passed"]


def test_properties_are_not_vacuous():
    """The monotonicity properties are about promotions (and refusals): the drawn pairs hold both, with and
    without a champion (``find`` raises when no drawn example satisfies the condition)."""
    quick = settings(max_examples=2000, deadline=None, database=None)
    for with_champion in (False, True):
        for promoted in (True, False):
            find(
                shadow_pairs(),
                lambda p, w=with_champion, want=promoted: (
                    (p[1] is not None) == w and decide(*p, SPEC, 1).promote == want
                ),
                settings=quick,
            )


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
