"""Daily spreads from the finest bars and the square-root impact (issue 14): the estimators on 5m against 1h bars
of the same real days, the trailing daily spread (hand cases, causality with a planted-leak twin), the tick, Roll,
and the impact term against hand-computed values.

Data: ``huracan_assets_tests/data/spreads`` (real Binance spot 5m and 1h candles, 2024-03-01..14; README.md).
"""

import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.costs import (
    DAY_MS,
    SPREAD_SCHEMA,
    CostModel,
    FeeSchedule,
    day_spread_frame,
    tick_bps,
    trailing_day_spreads,
)
from huracan_assets.core.spreads import pooled_spread_bps, roll_bps, roll_pairs
from huracan_assets_tests.causality import causality_violations, cuts_in_day

SPREADS = Path(__file__).resolve().parents[1] / "data" / "spreads"
EPOCH = date(1970, 1, 1)
D = date(2024, 3, 10)  # eight days of history before it in the slice
H = 3_600_000


def _bars(coin: str, timeframe: str) -> pl.DataFrame:
    return pl.read_parquet(SPREADS / timeframe / f"{coin}_USDT.parquet")


def _daily(bars: pl.DataFrame, minutes: int, estimator: str = "abdi_ranaldo") -> pl.DataFrame:
    """One ``spreads`` row per UTC day of ``bars``, as the asset stores them."""
    days = bars.with_columns(d=pl.col("ts") // DAY_MS)
    rows = [
        day_spread_frame(g.drop("d"), EPOCH + timedelta(days=int(d)), estimator, minutes)
        for (d,), g in days.group_by(["d"], maintain_order=True)
    ]
    return pl.concat(rows) if rows else pl.DataFrame(schema=SPREAD_SCHEMA)


def _hourly(bars_5m: pl.DataFrame) -> pl.DataFrame:
    """The 1h bars of the 5m bars (for BTC the exchange's own 1h bars, volumes to float rounding)."""
    return (
        bars_5m.group_by((pl.col("ts") // H * H).alias("ts"), maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .sort("ts")
    )


def _model(**kw) -> CostModel:
    return CostModel.from_config({"venue": "binance_spot", **kw})


# --------------------------------------------------------------------------------------- 5m against 1h, real bars


def test_btc_spread_from_5m_is_small_and_does_not_grow_with_the_bar():
    btc_5m, btc_1h = _bars("BTC", "5m"), _bars("BTC", "1h")
    hourly = _hourly(btc_5m)  # the same days, two bar sizes: the 5m bars add up to the exchange's 1h bars
    assert hourly.select("ts", "open", "high", "low", "close").equals(btc_1h.select(hourly.columns[:5]))
    np.testing.assert_allclose(hourly["volume"], btc_1h["volume"], rtol=1e-9)
    fine, coarse = _daily(btc_5m, 5), _daily(btc_1h, 60)
    assert fine.height == coarse.height == 14
    assert fine["n_bars"].to_list() == [288] * 14 and fine["n_pairs"].to_list() == [287] * 14
    # measured: median day 1.05 bps on 5m (true quoted spread: one tick, 0.0015 bp); 9.7 bps on 1h
    assert float(fine["spread_bps"].median()) < 3.0
    assert float(coarse["spread_bps"].median()) > 3 * float(fine["spread_bps"].median())  # the daily noise grows
    # the estimator's centre does not: its terms pooled over the 14 days are negative on both (0 bps), whereas
    # Corwin-Schultz quadruples (6.2 -> 26.0 bps: volatility over a longer bar)
    pooled = {
        (est, tf): pooled_spread_bps(est, b["high"], b["low"], b["close"])[0]
        for est in ("abdi_ranaldo", "corwin_schultz")
        for tf, b in (("5m", btc_5m), ("1h", btc_1h))
    }
    assert pooled[("abdi_ranaldo", "5m")] < 1.0 and pooled[("abdi_ranaldo", "1h")] <= pooled[("abdi_ranaldo", "5m")] + 1
    assert pooled[("corwin_schultz", "5m")] == pytest.approx(6.24, abs=0.01)
    assert pooled[("corwin_schultz", "1h")] > 3.5 * pooled[("corwin_schultz", "5m")]
    # the tick: BTC/USDT moves by 0.01 USDT, about 0.0015 bp at 68k
    assert fine["tick_bps"].to_numpy() == pytest.approx(0.01 / btc_5m["close"].median() * 1e4, rel=0.15)


def test_production_round_trip_on_real_bars_btc_near_the_fees_and_the_thin_coin_dearer():
    """1h training bars, spreads from 5m bars of the days before: BTC's round trip is the fees plus about 1 bp
    (target: within 5 bps of the 20 bps of fees); the thin JUV/USDT pays a wider spread and more impact."""
    model = _model()
    start = (date(2024, 3, 1) - EPOCH).days * DAY_MS + 8 * DAY_MS  # after a week of spreads
    out = {}
    for coin in ("BTC", "JUV"):
        costs = model.round_trip_bps(_bars(coin, "1h"), 1000.0, 60, spreads=_daily(_bars(coin, "5m"), 5))
        out[coin] = costs.filter(pl.col("ts") >= start)
        assert out[coin].height == 6 * 24 and not out[coin]["total_bps"].is_nan().any()
    btc, juv = out["BTC"], out["JUV"]
    assert (btc["fee_bps"] == 20.0).all()
    assert (btc["spread_bps"] == 1.0).all()  # the 7-day median is below the floor: the floor (1 bp > one tick)
    assert btc["slippage_bps"].max() < 0.5  # 1,000 USDT against ~100M USDT an hour: 0.2-0.4 bp round trip
    assert btc["total_bps"].max() < 25.0
    # measured: JUV spread 9.3 bps (tick 3.6 bps), impact 18.6 bps round trip, total 48 bps (median bar)
    assert juv["spread_bps"].median() > 5 * btc["spread_bps"].median()
    assert juv["spread_bps"].min() >= juv["spread_bps"].min() >= 3.0  # at least one tick of JUV
    assert juv["slippage_bps"].median() > 20 * btc["slippage_bps"].median()
    # the old per-bar estimate on the 1h bars (no daily spreads) charges BTC several times more spread
    legacy = model.round_trip_bps(_bars("BTC", "1h"), 1000.0, 60).filter(pl.col("ts") >= start)
    assert legacy["spread_bps"].median() > 3 * btc["spread_bps"].median()


# --------------------------------------------------------------------------------------- the trailing daily spread


def _rows(values: dict[int, tuple[float, float]]) -> pl.DataFrame:
    """Spreads rows for day offsets from D: {offset: (spread_bps, tick_bps)}."""
    return pl.DataFrame(
        {
            "day": [D + timedelta(days=k) for k in values],
            "spread_bps": [v[0] for v in values.values()],
            "tick_bps": [v[1] for v in values.values()],
        },
        schema={"day": pl.Date, "spread_bps": pl.Float64, "tick_bps": pl.Float64},
    )


def _ts(day: date, hour: int = 0) -> int:
    return (day - EPOCH).days * DAY_MS + hour * H


def test_trailing_day_spread_by_hand():
    rows = _rows({-5: (4.0, 0.5), -4: (0.0, 0.5), -3: (6.0, 0.7), -2: (2.0, 0.9), -1: (9.0, 0.9), 0: (500.0, 9.0)})
    ts = [_ts(D), _ts(D, 23), _ts(D + timedelta(days=1)), _ts(D - timedelta(days=2)), _ts(D - timedelta(days=3))]
    spread, tick = trailing_day_spreads(pl.Series(ts), rows, 3)
    # bars of D read D-3..D-1: median(6, 2, 9) = 6, ticks median(0.7, 0.9, 0.9); D's own 500 never
    # D+1 reads D-2..D: median(2, 9, 500) = 9; D-2 reads D-5..D-3: median(4, 0, 6) = 4
    # D-3 reads D-6..D-4: two of three days known (>= ceil(3/2)): median(4, 0) = 2
    np.testing.assert_array_equal(spread, [6.0, 6.0, 9.0, 4.0, 2.0])
    np.testing.assert_array_equal(tick, [0.9, 0.9, 0.9, 0.5, 0.5])
    # a single known day of three is too few: undefined; no day at all: undefined tick too
    one, tick_one = trailing_day_spreads(pl.Series([_ts(D)]), _rows({-3: (6.0, 0.7)}), 3)
    assert np.isnan(one).all() and tick_one.tolist() == [0.7]
    none, tick_none = trailing_day_spreads(pl.Series([_ts(D)]), _rows({0: (6.0, 0.7), 1: (5.0, 0.7)}), 3)
    assert np.isnan(none).all() and np.isnan(tick_none).all()
    with pytest.raises(ValueError, match="days"):
        trailing_day_spreads(pl.Series([_ts(D)]), rows, 0)


def test_model_floors_the_daily_spread_at_the_tick_and_the_minimum_and_caps_the_unknown():
    frame = pl.DataFrame({"ts": [_ts(D, h) for h in range(3)], "high": 1.0, "low": 1.0, "close": 1.0})
    model = replace_model(spread_days=3, min_spread_bps=1.0, max_spread_bps=400.0)
    zero = _rows({-3: (0.0, 2.5), -2: (0.0, 2.5), -1: (0.0, 3.0)})  # spread below resolution, a coarse tick
    assert model.spread_bps(frame, zero).tolist() == [2.5] * 3  # one tick (2.5 > the 1 bp minimum)
    fine_tick = _rows({-3: (0.0, 0.01), -2: (0.4, 0.01), -1: (0.2, 0.01)})
    assert model.spread_bps(frame, fine_tick).tolist() == [1.0] * 3  # the minimum
    wide = _rows({-3: (7.0, 0.01), -2: (900.0, 0.01), -1: (800.0, 0.01)})
    assert model.spread_bps(frame, wide).tolist() == [400.0] * 3  # the cap
    nan_tick = _rows({-2: (3.0, float("nan")), -1: (5.0, float("nan"))})
    assert model.spread_bps(frame, nan_tick).tolist() == [4.0] * 3  # no tick known: the minimum alone
    assert model.spread_bps(frame, pl.DataFrame(schema=SPREAD_SCHEMA)).tolist() == [400.0] * 3  # nothing known
    # the round trip carries the same columns either way, the spread from the daily rows
    out = model.round_trip_bps(frame.with_columns(volume=pl.lit(1.0)), 0.0, 60, spreads=zero)
    assert out.columns == ["ts", "fee_bps", "spread_bps", "slippage_bps", "funding_bps", "total_bps"]
    assert out["spread_bps"].to_list() == [2.5] * 3


def replace_model(**kw) -> CostModel:
    return CostModel(fees=FeeSchedule(maker_bps=10.0, taker_bps=10.0), **kw)


def _costs_from_5m(bars_5m: pl.DataFrame, leak: bool = False) -> pl.DataFrame:
    """The production path on one coin: 1h training bars and daily spreads, both from the 5m bars; the cost per
    1h bar with the time its last 5m bar opened (``known``). ``leak`` plants a look-ahead: each day's row is
    dated the day before, so the bars of D read D's own full-day estimate."""
    spreads = _daily(bars_5m, 5)
    if leak:
        spreads = spreads.with_columns(pl.col("day") - pl.duration(days=1))
    out = _model().round_trip_bps(_hourly(bars_5m), 1000.0, 60, spreads=spreads)
    return out.with_columns(known=pl.col("ts") + H - 300_000)


@pytest.mark.parametrize("coin", ["BTC", "JUV"])
def test_a_bars_cost_never_reads_its_own_days_later_bars(coin):
    """Perturb the 5m bars after cuts inside D (which changes D's own spread estimate and the later 1h bars):
    every hourly cost whose bars all closed by the cut is bit-identical. The twin with D's own estimate leaks
    (JUV: its spread is above the floor, so the day's estimate shows)."""
    bars = _bars(coin, "5m")
    start, end = _ts(D), _ts(D + timedelta(days=1))
    cuts = cuts_in_day(bars, start, end, n=4)
    columns = ["spread_bps", "slippage_bps", "total_bps"]
    found = causality_violations(_costs_from_5m, bars, cuts, columns, known_at="known", min_rows=24 * 8)
    assert found == [], "\n".join(map(str, found))
    if coin == "JUV":  # the comparison is sensitive: with D's own estimate the bars of D before the cut move
        leaks = causality_violations(
            lambda b: _costs_from_5m(b, leak=True), bars, cuts, ["spread_bps"], known_at="known"
        )
        # the cuts inside the day are caught (at 00:00 no bar of D is known yet; perturbing only the last bar
        # rarely moves the median; a volume-only change, "thick", leaves the range estimate alone)
        assert {v.column for v in leaks} == {"spread_bps"} and {v.cut for v in leaks} == set(cuts[1:-1])
        assert {v.perturbation for v in leaks} >= {"shuffle", "thin", "drop"}


# --------------------------------------------------------------------------------------- pieces by hand


def test_tick_and_day_row_by_hand():
    frame = pl.DataFrame(
        {
            "ts": [0, 300_000, 600_000],
            "open": [100.00, 100.02, 100.05],
            "high": [100.03, 100.05, 100.09],
            "low": [99.98, 100.01, 100.04],
            "close": [100.02, 100.05, 100.06],
            "volume": [1.0, 2.0, 3.0],
        }
    )
    # distinct prices 99.98, 100.00, 100.01, 100.02, 100.03, 100.04, 100.05, 100.06, 100.09: smallest step 0.01
    assert tick_bps(frame) == pytest.approx(0.01 / 100.05 * 1e4, rel=1e-9)
    assert math.isnan(tick_bps(frame.head(0)))
    flat = frame.with_columns(pl.lit(5.0).alias(c) for c in ("open", "high", "low", "close"))
    assert math.isnan(tick_bps(flat))  # one price only
    row = day_spread_frame(frame, D, "corwin_schultz", 5, coarse=True, note="no 5m bars: test")
    assert row.schema == pl.Schema(SPREAD_SCHEMA)
    assert row.select("day", "estimator", "bar_minutes", "n_bars", "n_pairs", "coarse", "note").row(0) == (
        D,
        "corwin_schultz",
        5,
        3,
        2,
        True,
        "no 5m bars: test",
    )
    with pytest.raises(ValueError, match="spread_estimator"):
        day_spread_frame(frame, D, "hasbrouck", 5)
    assert math.isnan(day_spread_frame(frame.head(2), D, "abdi_ranaldo", 5)["spread_bps"][0])  # one pair


def test_roll_by_hand():
    # log closes 0, 0.002, 0, 0.003, 0.001: returns +0.002, -0.002, +0.003, -0.002
    closes = [100 * math.exp(x) for x in (0.0, 0.002, 0.0, 0.003, 0.001)]
    terms = roll_pairs(closes)
    assert np.isnan(terms[:2]).all()
    np.testing.assert_allclose(terms[2:], [4 * 0.002 * 0.002, 4 * 0.002 * 0.003, 4 * 0.003 * 0.002], rtol=1e-6)
    # window 3 at the last bar: sqrt(mean(1.6e-5, 2.4e-5, 2.4e-5)) = 46.19 bps
    assert roll_bps(closes, 3)[4] == pytest.approx(math.sqrt((1.6e-5 + 2.4e-5 + 2.4e-5) / 3) * 1e4, rel=1e-6)
    # a trend (positive autocovariance) is no spread: 0
    assert roll_bps([100 * math.exp(0.001 * i) for i in range(6)], 3)[5] == 0.0
    model = _model(spread_estimator="roll", spread_window=3)
    frame = pl.DataFrame({"ts": range(5), "high": closes, "low": closes, "close": closes})
    assert model.spread_bps(frame)[4] == pytest.approx(46.188, abs=1e-3)


def test_impact_is_the_square_root_law_by_hand():
    """Returns alternate +-0.5%: the sample std of four of them is 0.005 x sqrt(4/3) = 57.735 bps; every bar
    trades 100,000 USDT. A 1,000 USDT order is 1% of a bar's turnover: Y x 57.735 x sqrt(0.01) per side."""
    closes = 100 * np.exp(np.cumsum([0.0, 0.005, -0.005, 0.005, -0.005]))
    frame = pl.DataFrame({"ts": np.arange(5) * H, "close": closes, "volume": 100_000.0 / closes})
    sigma_bar = 0.005 * math.sqrt(4 / 3) * 1e4
    assert sigma_bar == pytest.approx(57.735, abs=1e-3)
    for y in (1.0, 0.5):
        model = replace_model(vol_window=4, impact_y=y)
        slip = model.slippage_bps(frame, 1_000.0)
        assert slip[4] == pytest.approx(y * sigma_bar * 0.1, rel=1e-9)  # 5.7735 bps at Y = 1
        # the same in daily units: sigma_daily = sigma_bar sqrt(24), V_daily = 24 x 100,000 on 1h bars
        assert slip[4] == pytest.approx(y * sigma_bar * math.sqrt(24) * math.sqrt(1_000 / (24 * 100_000)), rel=1e-9)
    model = replace_model(vol_window=4)
    assert model.slippage_bps(frame, 4_000.0)[4] == pytest.approx(2 * model.slippage_bps(frame, 1_000.0)[4])
    # the uncalibrated volatility term adds coef x sigma_bar when switched on, and is off by default
    on = replace_model(vol_window=4, slippage_vol_coef=0.1).slippage_bps(frame, 1_000.0)[4]
    assert on == pytest.approx(5.7735 + 5.7735, abs=1e-3)
    assert replace_model(vol_window=4).slippage_bps(frame, 0.0)[4] == 0.0
