"""Engines, batch B: support/resistance, range stochastic, session opening range, liquidity sweep, candle
patterns, volatility regime, relative strength and lead-lag against BTC, Ornstein-Uhlenbeck, Kalman trend,
Amihud shock.

- each engine on a crafted series whose answer is known (exact directions at exact bars);
- each on real 1h candles (ETH, JUV; BTC as the reference): no NaN after ``warmup_bars``, only -1 / 0 / 1,
  not constant;
- the no-look-ahead canary on ~600 real bars and 5 cut points.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.engines.base import BaseEngine, EngineInput, EngineRegistry, engine_input
from huracan_assets.core.engines.library.amihud_shock import AmihudShock
from huracan_assets.core.engines.library.btc_lead_lag import BtcLeadLag
from huracan_assets.core.engines.library.candle_pattern import CandlePattern
from huracan_assets.core.engines.library.kalman_trend import KalmanTrend
from huracan_assets.core.engines.library.liquidity_sweep_reversal import LiquiditySweepReversal
from huracan_assets.core.engines.library.ou_reversion import OuReversion
from huracan_assets.core.engines.library.range_stochastic import RangeStochastic
from huracan_assets.core.engines.library.relative_strength_btc import RelativeStrengthBtc
from huracan_assets.core.engines.library.session_open_range_breakout import SessionOpenRangeBreakout
from huracan_assets.core.engines.library.sr_bounce import SrBounce
from huracan_assets.core.engines.library.vol_regime_switch import VolRegimeSwitch
from huracan_assets.core.features.canary import lookahead_violations

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
SAMPLE = Path(__file__).resolve().parents[3] / "huracan_assets" / "sample_data" / "ohlcv" / "1h"
ENGINES: tuple[type[BaseEngine], ...] = (
    SrBounce,
    RangeStochastic,
    SessionOpenRangeBreakout,
    LiquiditySweepReversal,
    CandlePattern,
    VolRegimeSwitch,
    RelativeStrengthBtc,
    BtcLeadLag,
    OuReversion,
    KalmanTrend,
    AmihudShock,
)


# ------------------------------------------------------------------------------------------------ helpers


def _candles(close, open_=None, high=None, low=None, volume=None, start: int = T0) -> pl.DataFrame:
    """1h candles from arrays; open defaults to the previous close, high / low to the body +- 0.01%."""
    close = np.asarray(close, dtype=np.float64)
    n = close.size
    if open_ is None:
        open_ = np.concatenate([[close[0]], close[:-1]])
    open_ = np.asarray(open_, dtype=np.float64)
    high = np.maximum(open_, close) * 1.0001 if high is None else np.asarray(high, dtype=np.float64)
    low = np.minimum(open_, close) * 0.9999 if low is None else np.asarray(low, dtype=np.float64)
    volume = np.full(n, 1000.0) if volume is None else np.broadcast_to(np.asarray(volume, dtype=np.float64), (n,))
    return pl.DataFrame(
        {
            "ts": pl.Series(start + HOUR * np.arange(n), dtype=pl.Int64),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


def _ref(close, start: int = T0) -> pl.DataFrame:
    close = np.asarray(close, dtype=np.float64)
    return pl.DataFrame({"ts": pl.Series(start + HOUR * np.arange(close.size), dtype=pl.Int64), "close": close})


def _run(engine: BaseEngine, candles: pl.DataFrame, reference: pl.DataFrame | None = None) -> np.ndarray:
    return engine.directions(engine_input(candles, 60, reference=reference))


def _alternating(n: int, sigma: float, drift: float = 0.0) -> np.ndarray:
    """1-bar log returns drift +- sigma, alternating (a deterministic 'noise' of std ~sigma)."""
    return drift + sigma * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def _prices(returns: np.ndarray, p0: float = 100.0) -> np.ndarray:
    return p0 * np.exp(np.cumsum(returns))


@pytest.fixture(scope="module")
def btc() -> pl.DataFrame:
    return pl.read_parquet(SAMPLE / "BTC_USDT.parquet")


@pytest.fixture(scope="module")
def real_inputs(btc) -> dict[str, EngineInput]:
    return {
        coin: engine_input(pl.read_parquet(SAMPLE / f"{coin}_USDT.parquet").head(2400), 60, reference=btc)
        for coin in ("ETH", "JUV")
    }


# --------------------------------------------------------------------------------------------- crafted series


def test_sr_bounce_buys_at_support_and_sells_at_resistance():
    t = np.arange(60)
    close = 105.0 + 4.0 * np.sin(2 * np.pi * t / 12)  # a 100..110 range (wicks 1 beyond the bodies)
    open_ = np.concatenate([[close[0]], close[:-1]])
    high, low = np.maximum(open_, close) + 1.0, np.minimum(open_, close) - 1.0
    tail = {  # bar: (open, high, low, close)
        60: (101.0, 103.0, 100.1, 102.5),  # tests support (100) and closes bullish -> buy
        61: (105.0, 106.0, 104.5, 105.5),  # mid-range -> wait
        62: (109.0, 109.9, 107.5, 108.0),  # tests resistance (110) and closes bearish -> sell
        63: (104.0, 106.5, 103.8, 106.0),  # bullish but far from support -> wait
        64: (108.0, 109.8, 107.9, 109.5),  # at resistance but closes bullish -> wait
        65: (101.0, 101.2, 96.5, 97.0),  # breaks support, closes below it -> wait
    }
    o, h, lo, c = (np.array([v[i] for v in tail.values()]) for i in range(4))
    frame = _candles(np.r_[close, c], np.r_[open_, o], np.r_[high, h], np.r_[low, lo])
    d = _run(SrBounce(), frame)
    assert np.isnan(d[:48]).all() and np.isfinite(d[49:]).all()
    assert d[60:66].tolist() == [1.0, 0.0, -1.0, 0.0, 0.0, 0.0]


def test_range_stochastic_fades_extremes_in_a_range_and_waits_in_a_trend():
    t = np.arange(120)
    sine = _candles(100.0 * np.exp(0.02 * np.sin(2 * np.pi * t / 24)))
    d = _run(RangeStochastic(), sine)
    troughs, peaks = np.arange(42, 120, 24), np.arange(30, 120, 24)  # sin(2 pi t / 24) = -1 / +1
    assert (d[troughs] == 1.0).all() and (d[troughs + 1] == 1.0).all()
    assert (d[peaks] == -1.0).all() and (d[peaks + 1] == -1.0).all()
    assert (d[troughs - 6] == 0.0).all()  # mid-range, falling
    # a steady uptrend with a small zigzag: %K is high but the efficiency ratio says trend -> never sells
    trend = _candles(_prices(_alternating(120, 0.001, drift=0.004)))
    d = _run(RangeStochastic(), trend)
    assert (d[21:] == 0.0).all()
    assert (_run(RangeStochastic(er_max=1.01), trend)[21:] == -1.0).any()  # the filter is what holds it back


def test_session_open_range_breakout_follows_the_first_break_until_the_session_ends():
    close = np.full(60, 100.0)
    close[[5, 6]] = 103.0  # day 1, 05:00: close above the 00:00-02:00 range high (101) -> buy, held
    close[12] = 96.0  # 12:00: close below the range low (99) -> sell, held to the end of the day
    close[26] = 103.0  # day 2, 02:00: the first bar after the range breaks up
    close[24] = 104.0  # ... but that is inside day 2's range (its high is 105 now) -> wait
    frame = _candles(close, close, close + 1.0, close - 1.0)
    d = _run(SessionOpenRangeBreakout(), frame)
    assert d[:5].tolist() == [0.0] * 5
    assert (d[5:12] == 1.0).all() and (d[12:24] == -1.0).all()
    assert d[24:].tolist() == [0.0] * 36
    # a frame that starts at 20:00 has no full opening range for its first session: NaN until midnight
    late = _candles(close, close, close + 1.0, close - 1.0, start=T0 + 20 * HOUR)
    d = _run(SessionOpenRangeBreakout(), late)
    assert np.isnan(d[:4]).all() and np.isfinite(d[4:]).all()
    assert d[4:6].tolist() == [0.0, 0.0]  # 00:00, 01:00: the new range (low 99, high 104) is forming
    assert (d[6:12] == 0.0).all() and (d[12:28] == -1.0).all()  # close 96 at 08:00 breaks down, held to 23:00
    assert d[28] == 0.0  # the next session
    # a 1-hour range with a session starting 01:00 UTC
    d = _run(SessionOpenRangeBreakout(range_minutes=60, session_offset_minutes=60), frame)
    assert np.isnan(d[0]) and d[1] == 0.0 and d[5] == 1.0


def test_liquidity_sweep_reversal_fades_a_failed_break():
    n = 50
    close = np.full(n, 100.0)
    high, low = np.full(n, 101.0), np.full(n, 99.0)
    high[26], close[26] = 102.0, 101.8  # a real breakout (closes above the prior high 101) -> no signal
    high[30], close[30] = 103.0, 100.5  # sweeps the prior high 102 but closes back below it -> sell
    low[40], close[40] = 97.0, 99.5  # sweeps the prior low 99 but closes back above it -> buy
    frame = _candles(close, close, high, low)
    d = _run(LiquiditySweepReversal(), frame)
    assert np.isnan(d[:24]).all() and np.isfinite(d[24:]).all()
    assert (d[24:30] == 0.0).all()
    assert d[30:34].tolist() == [-1.0, -1.0, -1.0, 0.0]  # held for 3 bars
    assert d[40:44].tolist() == [1.0, 1.0, 1.0, 0.0]
    assert np.flatnonzero(d[24:]).tolist() == [6, 7, 8, 16, 17, 18]
    assert (_run(LiquiditySweepReversal(hold=1), frame)[[30, 31, 40, 41]] == [-1.0, 0.0, 1.0, 0.0]).all()


def _trend_bars(o0: float, n: int, step: float) -> list[tuple[float, float, float, float]]:
    """n marubozu-like bars moving by ``step`` each (body 80% of step, wicks 0.1)."""
    bars = []
    for i in range(n):
        o = o0 + i * step
        c = o + 0.8 * step
        bars.append((o, max(o, c) + 0.1, min(o, c) - 0.1, c))
    return bars


def test_candle_pattern_finds_engulfing_hammer_and_shooting_star_after_a_move():
    bars = _trend_bars(110.0, 10, -1.0)  # 0-9 decline
    o9, c9 = bars[-1][0], bars[-1][3]
    bars.append((c9 - 0.1, o9 + 0.4, c9 - 0.2, o9 + 0.3))  # 10 bullish engulfing -> buy
    bars += _trend_bars(bars[-1][3], 10, 1.0)  # 11-20 rise
    o20, c20 = bars[-1][0], bars[-1][3]
    bars.append((c20 + 0.1, c20 + 0.2, o20 - 0.4, o20 - 0.3))  # 21 bearish engulfing -> sell
    bars += _trend_bars(bars[-1][3], 10, -1.0)  # 22-31 decline
    x = bars[-1][3]
    bars.append((x, x + 0.1, x - 2.0, x + 0.05))  # 32 hammer -> buy
    bars += _trend_bars(bars[-1][3], 10, 1.0)  # 33-42 rise
    x = bars[-1][3]
    bars.append((x, x + 2.0, x - 0.1, x - 0.05))  # 43 shooting star -> sell
    bars += _trend_bars(bars[-1][3], 6, 1.0)  # 44-49 rise
    x = bars[-1][3]
    bars.append((x, x + 0.1, x - 2.0, x + 0.05))  # 50 a hammer after a rise (hanging man) -> wait
    o, h, lo, c = (np.array([b[i] for b in bars]) for i in range(4))
    d = _run(CandlePattern(), _candles(c, o, h, lo))
    assert np.isnan(d[:6]).all() and np.isfinite(d[7:]).all()
    assert np.flatnonzero(d[7:] != 0.0).tolist() == [3, 14, 25, 36]
    assert d[[10, 21, 32, 43, 50]].tolist() == [1.0, -1.0, 1.0, -1.0, 0.0]
    # without the context filter the hanging man counts as a hammer
    assert _run(CandlePattern(context_bars=0), _candles(c, o, h, lo))[50] == 1.0


def test_vol_regime_switch_follows_calm_trends_and_fades_wild_moves():
    # turbulent flat market, then a calm rise: short vol << long vol -> follow the rise (buy)
    calm_up = _prices(np.r_[_alternating(200, 0.02), _alternating(100, 0.002, drift=0.003)])
    d = _run(VolRegimeSwitch(), _candles(calm_up))
    assert np.isnan(d[:168]).all() and np.isfinite(d[169:]).all()
    assert (d[190:200] == 0.0).all()  # flat, turbulent: no trend to follow or fade
    assert (d[260:300] == 1.0).all()
    calm_down = _prices(np.r_[_alternating(200, 0.02), _alternating(100, 0.002, drift=-0.003)])
    assert (_run(VolRegimeSwitch(), _candles(calm_down))[260:300] == -1.0).all()
    # calm flat market, then a violent rise: short vol >> long vol -> fade it (sell)
    wild_up = _prices(np.r_[_alternating(200, 0.002), _alternating(30, 0.02, drift=0.01)])
    d = _run(VolRegimeSwitch(), _candles(wild_up))
    assert (d[190:200] == 0.0).all()
    assert (d[215:230] == -1.0).all()
    wild_down = _prices(np.r_[_alternating(200, 0.002), _alternating(30, 0.02, drift=-0.01)])
    assert (_run(VolRegimeSwitch(), _candles(wild_down))[215:230] == 1.0).all()


def test_relative_strength_btc_buys_outperformance_and_needs_the_reference():
    ref_r = _alternating(300, 0.005)
    own = 0.002 * np.where(np.arange(300) % 3 == 0, 1.0, -0.5)  # the coin's own zero-mean noise
    extra = np.zeros(300)
    extra[200:224] = 0.004  # 24 bars of outperformance
    extra[250:274] = -0.004  # 24 bars of underperformance
    ref = _ref(_prices(ref_r, 40000.0))
    coin = _candles(_prices(ref_r + own + extra, 10.0))
    d = _run(RelativeStrengthBtc(), coin, ref)
    assert np.isnan(d[:168]).all() and np.isfinite(d[169:]).all()
    assert (d[169:200] == 0.0).all()
    assert (d[212:230] == 1.0).all()
    assert (d[262:280] == -1.0).all()
    # the reference against itself: the spread is 0, always wait
    assert (_run(RelativeStrengthBtc(), _candles(_prices(ref_r, 40000.0)), ref)[169:] == 0.0).all()
    # no reference: not defined; a reference that starts at bar 50: not defined before 50 + warm-up
    assert np.isnan(_run(RelativeStrengthBtc(), coin)).all()
    d = _run(RelativeStrengthBtc(), coin, ref.slice(50))
    assert np.isnan(d[: 50 + 168]).all() and np.isfinite(d[50 + 169 :]).all()


def test_btc_lead_lag_trades_a_coin_that_has_not_followed_the_reference_yet():
    n = 230
    base = _alternating(n, 0.004)
    own = 0.001 * np.where(np.arange(n) % 3 == 0, 1.0, -0.5)
    jump = np.zeros(n)
    jump[[200, 201, 202]] = 0.02  # BTC rallies 6% in 3 bars
    ref = _ref(_prices(base + jump, 40000.0))
    lagging = _candles(_prices(base + own, 10.0))  # the coin does not follow (yet)
    d = _run(BtcLeadLag(), lagging, ref)
    assert np.isnan(d[:171]).all() and np.isfinite(d[172:]).all()
    assert (d[172:200] == 0.0).all()
    assert (d[200:203] == 1.0).all()
    following = _candles(_prices(base + own + jump, 10.0))  # the coin moved with BTC: nothing to catch up
    assert (_run(BtcLeadLag(), following, ref)[172:] == 0.0).all()
    drop = _ref(_prices(base - jump, 40000.0))  # BTC dumps, the coin has not -> sell
    assert (_run(BtcLeadLag(), lagging, drop)[200:203] == -1.0).all()
    assert (_run(BtcLeadLag(), _candles(_prices(base + jump, 40000.0)), ref)[172:] == 0.0).all()  # BTC itself


def test_ou_reversion_fades_deviations_from_the_equilibrium():
    t = np.arange(240)
    x = 0.01 * np.sin(2 * np.pi * t / 12)  # AR(1) fit: b = cos(30 deg), half-life 4.8 bars, peak z = sqrt(2)
    sine = _candles(100.0 * np.exp(x))
    d = _run(OuReversion(entry_z=1.2), sine)
    assert np.isnan(d[:96]).all() and np.isfinite(d[97:]).all()
    peaks, troughs = np.arange(99, 240, 12), np.arange(105, 240, 12)
    assert (d[peaks] == -1.0).all() and (d[troughs] == 1.0).all()
    assert (d[peaks + 3] == 0.0).all()  # at the mean
    assert (_run(OuReversion(), sine)[97:] == 0.0).all()  # sqrt(2) < 1.5: no trade at the default threshold
    spiked = x.copy()
    spiked[[150, 200]] = [0.05, -0.05]  # one-bar dislocations of 5 amplitudes
    d = _run(OuReversion(), _candles(100.0 * np.exp(spiked)))
    assert d[150] == -1.0 and d[200] == 1.0
    # a steady trend is no mean reversion (b = 1): wait
    assert (_run(OuReversion(), _candles(_prices(np.full(240, 0.002))))[97:] == 0.0).all()
    # a slower cycle reverts too slowly for the half-life cap
    slow = _candles(100.0 * np.exp(0.01 * np.sin(2 * np.pi * np.arange(400) / 96)))
    assert (_run(OuReversion(entry_z=1.2), slow)[97:] == 0.0).all()


def test_kalman_trend_follows_a_significant_slope():
    r = np.r_[_alternating(250, 0.004), _alternating(200, 0.004, drift=0.003), _alternating(200, 0.004, drift=-0.003)]
    d = _run(KalmanTrend(), _candles(_prices(r)))
    w = KalmanTrend().warmup_bars(60)
    assert np.isnan(d[: w - 1]).all() and np.isfinite(d[w:]).all()
    assert (d[w:250] == 0.0).all()  # no drift: the slope is not significant
    assert (d[320:450] == 1.0).all()
    assert (d[520:650] == -1.0).all()
    # a frozen price (zero variance) stays defined and waits
    assert (_run(KalmanTrend(), _candles(np.full(300, 5.0)))[w:] == 0.0).all()


def test_amihud_shock_fades_moves_made_on_thin_volume():
    r = _alternating(260, 0.002)
    volume = np.full(260, 1000.0)
    r[200], volume[200] = 0.02, 100.0  # +2% on a tenth of the usual volume -> sell
    r[210], volume[210] = -0.02, 100.0  # -2% on thin volume -> buy
    r[220], volume[220] = 0.02, 20000.0  # +2% on 20x volume: informed flow, not illiquidity -> wait
    r[230], volume[230] = 0.002, 50.0  # illiquid but a normal-size move -> wait
    d = _run(AmihudShock(), _candles(_prices(r), volume=volume))
    assert np.isnan(d[:169]).all() and np.isfinite(d[170:]).all()
    assert np.flatnonzero(d[170:]).tolist() == [30, 40]
    assert d[[200, 210, 220, 230]].tolist() == [-1.0, 1.0, 0.0, 0.0]


# ------------------------------------------------------------------------------------------------- real data


@pytest.mark.parametrize("engine_cls", ENGINES, ids=lambda c: c.name)
@pytest.mark.parametrize("coin", ["ETH", "JUV"])
def test_engine_on_real_candles(engine_cls, coin, real_inputs):
    engine = engine_cls()
    assert engine.name == engine_cls.__module__.rsplit(".", 1)[-1]
    assert engine.family in {"trend", "reversion", "breakout", "volume", "volatility", "pattern", "cross_asset"}
    inp = real_inputs[coin]
    d = engine.directions(inp)
    assert d.dtype == np.float64 and d.shape == (inp.n,)
    w = engine.warmup_bars(60)
    after = d[w:]
    assert np.isfinite(after).all()
    assert set(np.unique(after).tolist()) <= {-1.0, 0.0, 1.0}
    assert len(np.unique(after[-2000:])) >= 2


@pytest.mark.parametrize("engine_cls", ENGINES, ids=lambda c: c.name)
def test_engine_has_no_lookahead(engine_cls, btc):
    candles = pl.read_parquet(SAMPLE / "ETH_USDT.parquet").slice(1000, 600)
    cuts = candles["ts"].to_list()[250:600:70]

    def build(c: pl.DataFrame) -> pl.DataFrame:
        return EngineRegistry([engine_cls()]).directions(engine_input(c, 60, reference=btc))

    assert len(cuts) == 5
    assert lookahead_violations(build, candles, cuts) == []
