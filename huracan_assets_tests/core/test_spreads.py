"""The spread-estimator module (``huracan_assets/core/spreads.py``) and its users agree on real candles.

- the polars expression form of the Corwin-Schultz pair estimate (the feature recipe's) equals the numpy form,
  undefined on the same rows (missing, non-positive, inverted bars), values to float rounding;
- the recipe's ``cs_spread_*`` features are the trailing means of those pairs;
- the universe's ``spread_estimate_bps`` and the replay exchange's ``corwin_schultz_spread`` are the mean of the
  module's defined pairs (times 1e4; capped at ``MAX_SPREAD``), and equal the textbook formula on real candles.

The estimators' hand-computed values and causality are tested in ``test_costs.py`` and ``test_costs_spreads.py``.
"""

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.features.recipe import FeatureRecipe, FeatureSpec, build_features
from huracan_assets.core.market_data.universe import spread_estimate_bps
from huracan_assets.core.spreads import corwin_schultz_bps, corwin_schultz_pairs, corwin_schultz_pairs_expr
from huracan_assets.exchange.replay.market import MAX_SPREAD, corwin_schultz_spread

OHLCV = Path(__file__).resolve().parents[1] / "data" / "ohlcv" / "1h"
COINS = ("ETH", "BTC", "JUV", "WIF", "TRX")  # liquid, thin (JUV), listed mid-slice (WIF), a low price (TRX)
ATOL = 1e-14  # the two forms round differently (ln(H / L) vs ln H - ln L): about 4e-15 at most on these candles


@pytest.fixture(scope="module")
def candles() -> dict[str, pl.DataFrame]:
    return {c: pl.read_parquet(OHLCV / f"{c}_USDT.parquet") for c in COINS}


def _textbook_pairs(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Corwin & Schultz (2012), eq. (14)-(18) as printed, for valid bars: the pair (t-1, t) at t - 1."""
    k = 3.0 - 2.0 * math.sqrt(2.0)
    hl = np.log(high / low) ** 2
    beta = hl[:-1] + hl[1:]
    gamma = np.log(np.maximum(high[:-1], high[1:]) / np.minimum(low[:-1], low[1:])) ** 2
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    return np.maximum(2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha)), 0.0)


def _expr_pairs(frame: pl.DataFrame) -> np.ndarray:
    out = frame.select(corwin_schultz_pairs_expr(pl.col("high"), pl.col("low")).alias("cs"))["cs"]
    assert out.dtype == pl.Float64 and out.is_nan().sum() == 0  # undefined is null, never NaN
    return out.to_numpy()


def _damaged(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with a NaN high, a missing low, a zero low and two inverted bars (high < low)."""
    high, low = frame["high"].to_numpy().copy(), frame["low"].to_numpy().copy()
    high[40] = np.nan
    low[80] = 0.0
    high[120], low[120] = low[120], high[120]
    high[121], low[121] = low[121], high[121]
    out = frame.with_columns(high=pl.Series(high), low=pl.Series(low))
    return out.with_columns(low=pl.when(pl.int_range(pl.len()) == 160).then(None).otherwise(pl.col("low")))


# ----------------------------------------------------------------------------------- expression vs numpy


def test_expression_form_equals_the_numpy_form_on_real_candles(candles):
    for coin, frame in candles.items():
        expr = _expr_pairs(frame)
        ref = corwin_schultz_pairs(frame["high"], frame["low"])
        assert np.array_equal(np.isnan(expr), np.isnan(ref)), coin
        assert np.isnan(ref).sum() == 1  # bar 0 only: the test candles are clean
        np.testing.assert_allclose(expr[1:], ref[1:], rtol=0, atol=ATOL, err_msg=coin)
        assert (expr[1:] == 0.0).any() and (expr[1:] > 0).any()  # both branches of the clipping are exercised


def test_expression_form_is_undefined_where_the_numpy_form_is(candles):
    frame = _damaged(candles["ETH"])
    expr = _expr_pairs(frame)
    ref = corwin_schultz_pairs(frame["high"], frame["low"])
    undefined = np.flatnonzero(np.isnan(ref))
    # bar 0, and both pairs of each damaged bar (the two inverted bars share a pair)
    assert undefined.tolist() == [0, 40, 41, 80, 81, 120, 121, 122, 160, 161]
    assert np.array_equal(np.isnan(expr), np.isnan(ref))
    np.testing.assert_allclose(expr[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=0, atol=ATOL)


def test_recipe_cs_feature_is_the_trailing_mean_of_the_pairs(candles):
    recipe = FeatureRecipe((FeatureSpec.make("cs", "corwin_schultz", window=24),))
    for coin, frame in {"ETH": candles["ETH"], "damaged": _damaged(candles["ETH"])}.items():
        feature = build_features(frame, recipe)["cs"].to_numpy()
        # the recipe needs all 24 pairs of the window defined
        ref = corwin_schultz_bps(frame["high"], frame["low"], 24, min_periods=24) / 1e4
        assert np.array_equal(np.isnan(feature), np.isnan(ref)), coin
        ok = ~np.isnan(ref)
        assert ok.sum() > 100, coin
        np.testing.assert_allclose(feature[ok], ref[ok], rtol=0, atol=ATOL, err_msg=coin)


# ----------------------------------------------------------------------------------- universe and replay


def _mean_defined(pairs: np.ndarray) -> float:
    return float(pairs[~np.isnan(pairs)].mean())


def _windows(frame: pl.DataFrame, size: int, step: int):
    for start in range(0, frame.height - 1, step):
        yield frame.slice(start, size)


def test_universe_spread_is_the_mean_of_the_module_pairs(candles):
    for coin, frame in candles.items():
        for bars in _windows(frame, 7 * 24, 23):
            pairs = corwin_schultz_pairs(bars["high"], bars["low"])
            expected = _mean_defined(pairs) * 1e4
            assert spread_estimate_bps(bars) == expected, coin
            textbook = float(_textbook_pairs(bars["high"].to_numpy(), bars["low"].to_numpy()).mean() * 1e4)
            assert spread_estimate_bps(bars) == pytest.approx(textbook, rel=1e-12), coin
            assert spread_estimate_bps(bars.reverse()) == expected  # the bars are sorted by ts first


def test_universe_spread_edge_cases(candles):
    assert math.isnan(spread_estimate_bps(candles["ETH"].head(1)))
    damaged = _damaged(candles["ETH"]).slice(118, 6)  # bars 118..123: 120 and 121 inverted
    pairs = corwin_schultz_pairs(damaged["high"], damaged["low"])
    assert np.isnan(pairs).sum() == 4  # bar 0 of the slice and the three pairs touching an inverted bar
    assert spread_estimate_bps(damaged) == _mean_defined(pairs) * 1e4  # the inverted bars' pairs left out
    inverted = pl.DataFrame({"ts": [0, 1], "high": [100.0, 100.0], "low": [101.0, 101.0]})
    assert math.isnan(spread_estimate_bps(inverted))  # no defined pair


def test_replay_spread_is_the_mean_of_the_module_pairs(candles):
    for coin, frame in candles.items():
        for bars in _windows(frame, 24, 7):
            high, low = bars["high"].to_numpy(), bars["low"].to_numpy()
            pairs = corwin_schultz_pairs(high, low)
            expected = min(_mean_defined(pairs), MAX_SPREAD)
            assert corwin_schultz_spread(high, low) == expected, coin
            assert corwin_schultz_spread(high, low) == pytest.approx(_textbook_pairs(high, low).mean(), rel=1e-12)
            assert spread_estimate_bps(bars) == expected * 1e4 or expected == MAX_SPREAD  # the universe's, in bps


def test_replay_spread_filtering_cap_and_fallback(candles):
    bars = candles["JUV"].head(24)
    high, low = bars["high"].to_numpy().copy(), bars["low"].to_numpy().copy()
    # bars with a non-positive or missing price are dropped before pairing: their neighbours form a pair
    high[5], low[9], high[12] = 0.0, -1.0, np.nan
    keep = np.ones(24, bool)
    keep[[5, 9, 12]] = False
    assert corwin_schultz_spread(high, low) == _mean_defined(corwin_schultz_pairs(high[keep], low[keep]))
    assert corwin_schultz_spread(high[:1], low[:1]) == 0.0
    assert corwin_schultz_spread(np.array([100.0, 100.0]), np.array([101.0, 101.0])) == 0.0  # inverted: no pair
    assert corwin_schultz_spread(np.array([10.0, 10.0, 10.0]), np.array([1.0, 1.0, 1.0])) == MAX_SPREAD
