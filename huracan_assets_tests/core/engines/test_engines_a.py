"""Signal engines A: trend, breakout, reversion and volume rules on crafted series and real candles.

- crafted series where the answer is known (a clean trend, a sine wave, a step, a volume spike, a divergence):
  the expected direction at specific bars;
- real candles (BTC, JUV; BTC as the reference): defined after ``warmup_bars``, values in {-1, 0, 1}, not
  constant;
- the no-look-ahead canary on real bars for every engine, and proof that it catches a leaky engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import huracan_assets
from huracan_assets.core.engines.base import BaseEngine, EngineInput, EngineRegistry, catalog, engine_input
from huracan_assets.core.engines.library.adx_trend import AdxTrend
from huracan_assets.core.engines.library.bollinger_reversion import BollingerReversion
from huracan_assets.core.engines.library.donchian_breakout import DonchianBreakout
from huracan_assets.core.engines.library.macd_momentum import MacdMomentum
from huracan_assets.core.engines.library.obv_divergence import ObvDivergence
from huracan_assets.core.engines.library.rsi_reversal import RsiReversal
from huracan_assets.core.engines.library.short_term_reversal import ShortTermReversal
from huracan_assets.core.engines.library.squeeze_breakout import SqueezeBreakout
from huracan_assets.core.engines.library.ts_momentum import TsMomentum
from huracan_assets.core.engines.library.volume_spike_continuation import VolumeSpikeContinuation
from huracan_assets.core.engines.library.vwap_reversion import VwapReversion
from huracan_assets.core.features.canary import lookahead_violations

T0 = 1_704_067_200_000
HOUR = 3_600_000
OHLCV = Path(huracan_assets.__file__).parent / "sample_data" / "ohlcv" / "1h"
ENGINES: tuple[type[BaseEngine], ...] = (
    AdxTrend,
    DonchianBreakout,
    BollingerReversion,
    RsiReversal,
    MacdMomentum,
    TsMomentum,
    ShortTermReversal,
    SqueezeBreakout,
    VwapReversion,
    VolumeSpikeContinuation,
    ObvDivergence,
)
FAMILIES = {"trend", "reversion", "breakout", "volume", "volatility", "pattern", "cross_asset"}
BUY, WAIT, SELL = 1.0, 0.0, -1.0


def _candles(close, volume=None, spread: float = 0.001) -> pl.DataFrame:
    """1h candles from closes: open = previous close, high/low = the body widened by ``spread``."""
    close = np.asarray(close, dtype=np.float64)
    open_ = np.concatenate([close[:1], close[:-1]])
    volume = np.full(close.shape[0], 100.0) if volume is None else np.asarray(volume, dtype=np.float64)
    return pl.DataFrame(
        {
            "ts": pl.Series(T0 + HOUR * np.arange(close.shape[0]), dtype=pl.Int64),
            "open": open_,
            "high": np.maximum(open_, close) * (1.0 + spread),
            "low": np.minimum(open_, close) * (1.0 - spread),
            "close": close,
            "volume": volume,
        }
    )


def _run(engine: BaseEngine, candles: pl.DataFrame) -> np.ndarray:
    """Directions on candles alone (no features, no reference): the engines read OHLCV only."""
    frame = candles.with_columns(ref_close=pl.lit(None, dtype=pl.Float64))
    out = np.asarray(engine.directions(EngineInput(frame, 60)), dtype=np.float64)
    assert out.shape == (candles.height,)
    warm = engine.warmup_bars(60)
    assert not np.isnan(out[warm:]).any()
    return out


def _sine(n: int, period: int, amplitude: float = 0.05) -> np.ndarray:
    return 100.0 * (1.0 + amplitude * np.sin(2.0 * np.pi * np.arange(n) / period))


def _phase_bars(n: int, period: int, start: int, quarter: int) -> np.ndarray:
    """Bars from ``start`` on at a given quarter of the sine's period: 1 = peaks, 3 = troughs."""
    bars = np.arange(start, n)
    return bars[bars % period == quarter * period // 4]


def _walk(n: int, sigma: float, drift: float = 0.0, seed: int = 0) -> np.ndarray:
    return 100.0 * np.exp(np.cumsum(drift + np.random.default_rng(seed).normal(0.0, sigma, n)))


# --------------------------------------------------------------------------------------------- contract


def test_engines_are_registered_with_their_file_names():
    known = catalog()
    for cls in ENGINES:
        assert known[cls.name] is cls
        assert cls.__module__.rsplit(".", 1)[-1] == cls.name
        assert cls.family in FAMILIES
        assert cls.__doc__ and all(f"``{p}``" in cls.__doc__ for p in cls.defaults)
    assert set(EngineRegistry.default().names()) >= {cls.name for cls in ENGINES}


# --------------------------------------------------------------------------------------------- crafted: trend


def test_adx_trend_follows_a_clean_trend_and_waits_in_noise():
    t = np.arange(300)
    assert (_run(AdxTrend(), _candles(100.0 * np.exp(0.005 * t)))[-50:] == BUY).all()
    assert (_run(AdxTrend(), _candles(100.0 * np.exp(-0.005 * t)))[-50:] == SELL).all()
    noise = 100.0 * (1.0 + 0.01 * np.random.default_rng(1).normal(size=300))  # white noise: no trend
    assert (_run(AdxTrend(), _candles(noise))[-100:] == WAIT).all()
    # the same uptrend with a threshold ADX cannot reach is wait
    assert (_run(AdxTrend(threshold=100.0), _candles(100.0 * np.exp(0.005 * t)))[-50:] == WAIT).all()


def test_macd_momentum_buys_an_accelerating_trend_and_waits_once_it_is_steady():
    flat = np.full(100, 100.0)
    ramp = 100.0 * np.exp(0.005 * np.arange(1, 201))
    up = _run(MacdMomentum(), _candles(np.r_[flat, ramp]))
    assert (up[95:102] == WAIT).all()  # flat, then the first bars of the turn are inside the dead zone
    assert (up[102:130] == BUY).all()  # the trend accelerates away from the flat
    assert (up[-10:] == WAIT).all()  # a steady exponential trend: the histogram decays to ~0
    down = _run(MacdMomentum(), _candles(np.r_[flat, 100.0 * np.exp(-0.005 * np.arange(1, 201))]))
    assert (down[102:130] == SELL).all()
    assert (down[-10:] == WAIT).all()


def test_ts_momentum_follows_a_noisy_trend():
    up = _run(TsMomentum(), _candles(_walk(400, 0.005, drift=0.003, seed=1)))
    down = _run(TsMomentum(), _candles(_walk(400, 0.005, drift=-0.003, seed=1)))
    assert up[-1] == BUY and (up[-100:] >= WAIT).all() and (up[-100:] == BUY).mean() > 0.8
    assert down[-1] == SELL and (down[-100:] <= WAIT).all() and (down[-100:] == SELL).mean() > 0.8
    # the same drift is within the noise once k asks for a 10-sigma move
    assert (_run(TsMomentum(k=10.0), _candles(_walk(400, 0.005, drift=0.003, seed=1)))[-100:] == WAIT).all()


# --------------------------------------------------------------------------------------------- crafted: breakout


def test_donchian_breakout_fires_on_the_step_and_holds():
    wiggle = 100.0 + 0.2 * np.sin(np.arange(60))
    up = _run(DonchianBreakout(), _candles(np.r_[wiggle, np.full(40, 105.0)]))
    assert (up[50:60] == WAIT).all()
    assert (up[60:64] == BUY).all()  # the breakout bar and hold = 3 more bars
    assert (up[64:] == WAIT).all()  # flat at the new level: no new high
    down = _run(DonchianBreakout(hold=0), _candles(np.r_[wiggle, np.full(40, 95.0)]))
    assert down[60] == SELL and (down[61:] == WAIT).all() and (down[50:60] == WAIT).all()


def test_squeeze_breakout_needs_a_squeeze_before_the_break():
    wide, quiet = _sine(200, 24), np.full(40, 100.0)  # a wide oscillation, then a dead-flat range
    up = _run(SqueezeBreakout(), _candles(np.r_[wide, quiet, np.full(20, 103.0)]))
    down = _run(SqueezeBreakout(), _candles(np.r_[wide, quiet, np.full(20, 97.0)]))
    assert (up[150:240] == WAIT).all() and (down[150:240] == WAIT).all()
    assert up[240] == BUY and down[240] == SELL
    # the close stays outside the previous bar's band for a few bars, until the band has widened to it
    assert (up[241:244] == BUY).all() and (down[241:244] == SELL).all()
    assert (up[-10:] == WAIT).all() and (down[-10:] == WAIT).all()
    # an oscillation whose amplitude keeps growing is never in a squeeze: the same kind of jump is wait ...
    n = np.arange(240)
    growing = 100.0 * (1.0 + 0.0005 * np.exp(n / 40.0) * np.sin(2.0 * np.pi * n / 24.0))
    jump = _candles(np.r_[growing, np.full(20, 150.0)])  # the upper band at bar 239 is ~121
    assert (_run(SqueezeBreakout(), jump)[150:] == WAIT).all()
    # ... although it breaks the band: with every bar counted as a squeeze (pct = 1) it buys
    assert _run(SqueezeBreakout(pct=1.0), jump)[240] == BUY


# --------------------------------------------------------------------------------------------- crafted: reversion


def test_bollinger_reversion_fades_a_gap_and_the_sine_extremes():
    walk = _walk(100, 0.001, seed=0)
    drop, pop = walk.copy(), walk.copy()
    drop[60:] *= 0.97
    pop[60:] *= 1.03
    d, p = _run(BollingerReversion(), _candles(drop)), _run(BollingerReversion(), _candles(pop))
    assert d[59] == WAIT and (d[60:63] == BUY).all()
    assert p[59] == WAIT and (p[60:63] == SELL).all()
    # a sine's z-score peaks at sqrt(2) over a full period: bands at 1.3 std catch its peaks and troughs
    sine = _run(BollingerReversion(k=1.3), _candles(_sine(200, 20)))
    assert (sine[_phase_bars(200, 20, 40, 1)] == SELL).all()
    assert (sine[_phase_bars(200, 20, 40, 3)] == BUY).all()
    assert (sine[_phase_bars(200, 20, 40, 0)] == WAIT).all()  # mid-line crossings
    assert (_run(BollingerReversion(), _candles(_sine(200, 20)))[40:] == WAIT).all()  # 2 std: never reached


def test_rsi_reversal_fades_runs_and_the_sine_extremes():
    t = np.arange(200)
    assert (_run(RsiReversal(), _candles(100.0 * np.exp(0.005 * t)))[-20:] == SELL).all()  # RSI 100
    assert (_run(RsiReversal(), _candles(100.0 * np.exp(-0.005 * t)))[-20:] == BUY).all()  # RSI 0
    sine = _run(RsiReversal(), _candles(_sine(200, 40)))
    assert (sine[_phase_bars(200, 40, 40, 1)] == SELL).all()
    assert (sine[_phase_bars(200, 40, 40, 3)] == BUY).all()


def test_short_term_reversal_fades_a_crash_and_a_spike():
    base = _walk(150, 0.005, seed=3)
    crash, spike = base.copy(), base.copy()
    crash[120:] *= np.exp(-0.05)
    crash[121:] *= np.exp(-0.02)
    spike[120:] *= np.exp(0.05)
    spike[121:] *= np.exp(0.02)
    c, s = _run(ShortTermReversal(), _candles(crash)), _run(ShortTermReversal(), _candles(spike))
    plain = _run(ShortTermReversal(), _candles(base))
    assert (plain[115:130] == WAIT).all() and (plain[75:] != WAIT).mean() < 0.05  # a plain walk: rarely extreme
    assert (c[115:120] == WAIT).all() and (c[120:123] == BUY).all() and (c[123:130] == WAIT).all()
    assert (s[115:120] == WAIT).all() and (s[120:123] == SELL).all() and (s[123:130] == WAIT).all()


def test_vwap_reversion_sells_the_sine_peaks_and_buys_the_troughs():
    sine = _run(VwapReversion(), _candles(_sine(240, 48)))
    assert (sine[_phase_bars(240, 48, 96, 1)] == SELL).all()
    assert (sine[_phase_bars(240, 48, 96, 3)] == BUY).all()
    # a deviation of 5% is ~11 one-bar sigmas of this sine: a 20-sigma threshold waits everywhere
    assert (_run(VwapReversion(k=20.0), _candles(_sine(240, 48)))[96:] == WAIT).all()


# --------------------------------------------------------------------------------------------- crafted: volume


def test_volume_spike_continues_in_the_body_direction():
    rng = np.random.default_rng(2)
    close, volume = _walk(100, 0.003, seed=2), 100.0 + 10.0 * rng.normal(size=100)
    spike = volume.copy()
    spike[80] = 1000.0
    up, down = close.copy(), close.copy()
    up[80:] *= 1.02
    down[80:] *= 0.98
    u = _run(VolumeSpikeContinuation(), _candles(up, spike))
    d = _run(VolumeSpikeContinuation(), _candles(down, spike))
    assert (u[75:80] == WAIT).all() and (u[80:84] == BUY).all() and (u[84:] == WAIT).all()
    assert (d[75:80] == WAIT).all() and (d[80:84] == SELL).all() and (d[84:] == WAIT).all()
    assert (_run(VolumeSpikeContinuation(), _candles(close, spike))[48:] == WAIT).all()  # spike, small body
    assert (_run(VolumeSpikeContinuation(), _candles(up, volume))[48:] == WAIT).all()  # big body, usual volume


def test_obv_divergence_sells_a_new_high_on_thin_volume_and_buys_the_mirror():
    flat = 100.0 + 0.01 * np.random.default_rng(4).normal(size=30)
    rally, pullback, retest = np.linspace(100, 110, 31), np.linspace(110, 106, 11), np.linspace(106, 111, 13)
    price = np.r_[flat, rally[1:], pullback[1:], retest[1:]]  # 82 bars: new highs above 110 at bars 79, 80, 81
    thin = np.r_[np.full(70, 100.0), np.full(12, 10.0)]  # the retest trades a tenth of the rally's volume
    bear = _run(ObvDivergence(), _candles(price, thin))
    assert (bear[55:79] == WAIT).all() and (bear[79:] == SELL).all()
    bull = _run(ObvDivergence(), _candles(200.0 - price, thin))
    assert (bull[55:79] == WAIT).all() and (bull[79:] == BUY).all()
    heavy = np.r_[np.full(70, 100.0), np.full(12, 150.0)]  # volume confirms the retest: OBV makes a new high
    assert (_run(ObvDivergence(), _candles(price, heavy))[55:] == WAIT).all()
    trend = 100.0 * np.exp(0.002 * np.arange(100))  # every close a new high, and every OBV too
    assert (_run(ObvDivergence(), _candles(trend))[24:] == WAIT).all()


# --------------------------------------------------------------------------------------------- real candles


@pytest.fixture(scope="module")
def btc() -> pl.DataFrame:
    return pl.read_parquet(OHLCV / "BTC_USDT.parquet")


@pytest.fixture(scope="module")
def real_inputs(btc) -> dict[str, EngineInput]:
    coins = {"BTC": btc, "JUV": pl.read_parquet(OHLCV / "JUV_USDT.parquet")}
    return {name: engine_input(c.head(2000), 60, reference=btc) for name, c in coins.items()}


@pytest.mark.parametrize("cls", ENGINES, ids=lambda c: c.name)
@pytest.mark.parametrize("coin", ["BTC", "JUV"])
def test_real_candles_are_defined_after_warmup_and_not_constant(cls, coin, real_inputs):
    engine = cls()
    inp = real_inputs[coin]
    values = EngineRegistry([engine]).directions(inp)[engine.name].to_numpy()
    after = values[engine.warmup_bars(60) :]
    assert after.shape[0] > 1500
    assert not np.isnan(after).any()
    assert set(np.unique(after)) <= {-1.0, 0.0, 1.0}
    assert len(np.unique(after)) >= 2
    assert (after != WAIT).any()


# --------------------------------------------------------------------------------------------- look-ahead


def _cuts(candles: pl.DataFrame) -> list[int]:
    ts = candles["ts"].to_list()
    return [ts[i] for i in (240, 330, 420, 510, 590)]


@pytest.mark.parametrize("cls", ENGINES, ids=lambda c: c.name)
def test_no_lookahead(cls, btc):
    candles = pl.read_parquet(OHLCV / "JUV_USDT.parquet").slice(1000, 600)

    def build(c: pl.DataFrame) -> pl.DataFrame:
        return EngineRegistry([cls()]).directions(engine_input(c, 60, reference=btc))

    full = build(candles)[cls.name].to_numpy()
    assert (np.nan_to_num(full) != 0.0).any()  # the canary compares real signals, not a wall of waits
    assert lookahead_violations(build, candles, _cuts(candles)) == []


class _Leaky(BaseEngine):
    """Buys when the next bar closes higher: reads the future on purpose."""

    name = "leaky_test_engine"
    family = "trend"

    def warmup_bars(self, bar_minutes: int) -> int:
        return 0

    def directions(self, inp: EngineInput) -> np.ndarray:
        close = inp.np("close")
        nxt = np.r_[close[1:], np.nan]
        return np.where(np.isfinite(nxt), np.sign(nxt - close), 0.0)


def test_the_canary_catches_a_leaky_engine(btc):
    candles = pl.read_parquet(OHLCV / "JUV_USDT.parquet").slice(1000, 600)

    def build(c: pl.DataFrame) -> pl.DataFrame:
        return EngineRegistry([_Leaky()]).directions(engine_input(c, 60, reference=btc))

    cuts = _cuts(candles)
    assert lookahead_violations(build, candles, cuts) == cuts
    assert "leaky_test_engine" not in catalog()
