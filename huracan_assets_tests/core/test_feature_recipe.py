"""The shared FeatureRecipe / FeatureBuilder on real candles (1h, 2024-03-01..14, BTC as the reference).

- every feature against the plain-pandas references in ``huracan_assets_tests/reference_features.py``
  (1e-9 relative to the value or to the column's median magnitude, whichever is larger; nulls identical);
- the indicators ``ta`` has (RSI, ATR, MACD, ADX, Bollinger, Keltner, stochastic, MFI) against ``ta``;
- hash stability, parameters, round trip; the no-look-ahead canary (and that it can fail); live parity.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import date

import numpy as np
import pandas as pd
import polars as pl
import pytest
import ta

from huracan_assets.core.features import recipe as recipe_module
from huracan_assets.core.features.canary import lookahead_violations
from huracan_assets.core.features.recipe import (
    BUILDER_VERSION,
    FEATURE_KINDS,
    FeatureRecipe,
    FeatureSpec,
    build_features,
    default_recipe,
    ema_window,
    features_for_window,
    live_features,
    wilder_window,
)
from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets_tests.conftest import TEST_DATA
from huracan_assets_tests.reference_features import reference_features

HOUR = 3_600_000
COINS = ("ETH", "BTC", "SOL", "JUV", "TRX", "WIF", "DOGE", "STRK")  # WIF lists mid-slice; JUV is thin
RECIPE = default_recipe()
CROSS_ASSET = ("rel_strength", "beta_ref", "corr_ref")


@pytest.fixture(scope="module")
def candles() -> dict[str, pl.DataFrame]:
    return {c: pl.read_parquet(TEST_DATA / "1h" / f"{c}_USDT.parquet") for c in COINS}


@pytest.fixture(scope="module")
def btc(candles) -> pl.DataFrame:
    return candles["BTC"]


def _specs(recipe: FeatureRecipe):
    return [(s.name, s.kind, s.param_dict) for s in recipe.specs]


def _assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float, what: str, atol: float = 0.0) -> None:
    """Nulls identical; |a - b| <= rtol * max(|b|, median |b|) + atol."""
    a, b = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    assert np.array_equal(nan_a, nan_b), f"{what}: null mismatch at rows {np.flatnonzero(nan_a != nan_b)[:10]}"
    if nan_a.all():
        return
    a, b = a[~nan_a], b[~nan_b]
    scale = np.maximum(np.abs(b), np.median(np.abs(b)))
    err = np.abs(a - b) - rtol * scale - atol
    assert err.max() <= 0, f"{what}: max |diff| {np.abs(a - b).max():.3g} at value {b[err.argmax()]:.6g}"


# ----------------------------------------------------------------------------------------- the recipe


def test_default_recipe_shape():
    assert len(RECIPE.names) >= 60
    assert len(set(RECIPE.names)) == len(RECIPE.names)
    assert RECIPE.warmup_bars == 200 == max(s.warmup_bars for s in RECIPE.specs)
    assert RECIPE.uses_reference
    assert {s.kind for s in RECIPE.specs} == set(FEATURE_KINDS)  # every kind is in the default recipe
    for spec in RECIPE.specs:
        assert list(spec.params) == sorted(spec.params)
        hash(spec)
    assert len(RECIPE.hash) == 16 and int(RECIPE.hash, 16) >= 0
    windows = {s.name: s.param_dict.get("window") for s in RECIPE.specs}
    # finite kernels: 8 e-folds, at most 200 bars (documented in the recipe module)
    assert (windows["close_ema_12"], windows["close_ema_26"], windows["close_ema_50"], windows["close_ema_100"]) == (
        48, 104, 200, 200)  # fmt: skip
    assert (windows["rsi_14"], windows["rsi_28"], windows["atr_pct_28"], windows["adx_14"]) == (108, 199, 199, 100)


def test_hash_is_identical_in_fresh_processes():
    code = "from huracan_assets.core.features.recipe import default_recipe; print(default_recipe().hash)"
    hashes = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()}
    hashes.add(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip())
    assert hashes == {RECIPE.hash}


def _bumped(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5
    return None


def test_hash_changes_with_every_parameter(monkeypatch):
    seen = {RECIPE.hash}
    for i, spec in enumerate(RECIPE.specs):
        for key, value in spec.params:
            new = _bumped(value)
            if new is None:  # an "output" choice: swap it for another allowed one
                allowed = recipe_module._KINDS[spec.kind].outputs
                new = next(o for o in allowed if o != value)
            changed = FeatureSpec(spec.name, spec.kind, {**spec.param_dict, key: new})
            variant = FeatureRecipe((*RECIPE.specs[:i], changed, *RECIPE.specs[i + 1 :]))
            assert variant.hash not in seen, (spec.name, key)
            seen.add(variant.hash)
    renamed = FeatureRecipe((FeatureSpec("other", "log_return", {"lag": 1}), *RECIPE.specs[1:]))
    assert renamed.hash != RECIPE.hash
    assert FeatureRecipe(RECIPE.specs, "a label").hash == RECIPE.hash  # the recipe's name is only a label
    monkeypatch.setattr(recipe_module, "BUILDER_VERSION", BUILDER_VERSION + "x")
    assert FeatureRecipe(RECIPE.specs).hash != RECIPE.hash


def test_params_are_normalized_and_validated():
    a = FeatureSpec("x", "macd", {"output": "line", "fast": 12, "slow": 26, "signal": 9, "fast_window": 48,
                                  "slow_window": 104, "signal_window": 36})  # fmt: skip
    b = FeatureSpec.make("x", "macd", signal_window=36, slow_window=104, fast_window=48, signal=9, slow=26, fast=12,
                         output="line")  # fmt: skip
    assert a == b and hash(a) == hash(b) and a.params == tuple(sorted(a.params))
    with pytest.raises(ValueError, match="unknown feature kind"):
        FeatureSpec.make("x", "nope", window=3)
    with pytest.raises(ValueError, match="takes parameters"):
        FeatureSpec.make("x", "rsi", period=14)
    with pytest.raises(ValueError, match="output"):
        FeatureSpec.make("x", "bollinger", window=20, k=2.0, output="middle")
    with pytest.raises(ValueError, match="positive int"):
        FeatureSpec.make("x", "vol_close", window=0)
    with pytest.raises(ValueError, match="duplicate"):
        FeatureRecipe((FeatureSpec.make("x", "log_range"), FeatureSpec.make("x", "close_location")))


def test_to_dict_round_trip():
    data = json.loads(json.dumps(RECIPE.to_dict()))
    back = FeatureRecipe.from_dict(data)
    assert back == RECIPE and back.hash == RECIPE.hash and back.names == RECIPE.names
    assert data["hash"] == RECIPE.hash and data["builder_version"] == BUILDER_VERSION
    tampered = {**data, "specs": [{**data["specs"][0], "params": {"lag": 2}}, *data["specs"][1:]]}
    with pytest.raises(ValueError, match="hash mismatch"):
        FeatureRecipe.from_dict(tampered)
    with pytest.raises(ValueError, match="feature builder"):
        FeatureRecipe.from_dict({**data, "builder_version": "0"})


# ----------------------------------------------------------------------------------------- values


def test_every_feature_matches_the_pandas_reference(candles, btc):
    for coin, frame in candles.items():
        ours = build_features(frame, RECIPE, btc)
        assert ours.columns == ["ts", *RECIPE.names] and ours.height == frame.height
        assert ours.schema["ts"] == pl.Int64 and all(ours.schema[n] == pl.Float64 for n in RECIPE.names)
        ref = reference_features(frame.to_pandas(), _specs(RECIPE), btc.to_pandas())
        assert (ours["ts"].to_numpy() == ref["ts"].to_numpy()).all()
        for name in RECIPE.names:
            _assert_close(ours[name].to_numpy(), ref[name].to_numpy(), 1e-9, f"{coin} {name}")
        defined = ours.slice(RECIPE.warmup_bars - 1).drop("ts")
        if coin in ("ETH", "SOL", "BTC"):  # liquid coins: everything is defined once warmed up
            assert defined.null_count().sum_horizontal().item() == 0


def test_cross_asset_features_against_btc(candles, btc):
    ours = build_features(btc, RECIPE, btc)  # BTC against itself
    for lag in (6, 24, 72):
        assert ours[f"rs_ref_{lag}"].drop_nulls().abs().max() == 0.0
    np.testing.assert_allclose(ours["beta_ref_72"].drop_nulls().to_numpy(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ours["corr_ref_72"].drop_nulls().to_numpy(), 1.0, rtol=1e-12)
    no_ref = build_features(candles["ETH"], RECIPE, None)
    with_ref = build_features(candles["ETH"], RECIPE, btc)
    cross = [s.name for s in RECIPE.specs if s.kind in CROSS_ASSET]
    assert no_ref.select(cross).null_count().row(0) == (no_ref.height,) * len(cross)
    assert no_ref.drop(cross).equals(with_ref.drop(cross))


def test_missing_reference_bars_use_the_last_known_close(candles, btc):
    eth = candles["ETH"]
    holes = btc.filter(~pl.col("ts").is_in(btc["ts"].gather(list(range(100, 336, 7))).implode()))
    ours = build_features(eth, RECIPE, holes)
    filled = (
        eth.select("ts")
        .join(holes.select("ts", "close"), on="ts", how="left")
        .with_columns(pl.col("close").forward_fill())
    )
    expected = build_features(eth, RECIPE, filled)
    assert ours.equals(expected)
    # a future reference bar is never used: moving every reference bar one hour later changes the values
    late = holes.with_columns(pl.col("ts") + HOUR)
    assert not build_features(eth, RECIPE, late)["rs_ref_6"].equals(ours["rs_ref_6"])


def test_known_answers_on_synthetic_bars():
    n = 260
    ts = np.arange(n, dtype=np.int64) * HOUR + 1_704_067_200_000  # 2024-01-01 00:00 UTC, a Monday
    flat = pl.DataFrame({"ts": ts, "open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0, "volume": 0.0})
    out = build_features(flat, RECIPE).row(n - 1, named=True)
    zero = ("ret_1", "ret_48", "vol_cc_96", "vol_pk_12", "vol_gk_24", "atr_pct_14", "adx_14", "plus_di_14",
            "bb_width_20", "kc_width_20", "dist_high_96", "cs_spread_24", "log_range", "clv")  # fmt: skip
    assert all(out[k] == 0.0 for k in zero), {k: out[k] for k in zero}
    assert all(abs(out[k]) < 1e-14 for k in ("macd_line", "macd_hist", "close_ema_100", "ema_12_26"))  # EMA = price
    assert out["rsi_14"] == out["rsi_28"] == 50.0  # no price change at all: neutral by convention
    undefined = ("vol_ratio_24_96", "bb_pctb_20", "kc_pos_20", "zscore_close_20", "volume_z_50", "rel_volume_20",
                 "amihud_24", "stoch_k_14", "mfi_14", "vwap_dist_24")  # fmt: skip
    assert all(out[k] is None for k in undefined), {k: out[k] for k in undefined}
    first = build_features(flat, RECIPE).row(0, named=True)
    assert first["tod_sin"] == 0.0 and first["tod_cos"] == 1.0 and first["dow_sin"] == 0.0  # Monday 00:00
    six_pm = build_features(flat, RECIPE).row(18, named=True)
    assert six_pm["tod_sin"] == pytest.approx(-1.0) and abs(six_pm["tod_cos"]) < 1e-12


def test_finite_exponential_kernel_is_the_direct_weighted_sum():
    rng = np.random.default_rng(3)
    x = rng.normal(100.0, 5.0, 400)
    x[150] = np.nan  # a gap restarts the kernel
    out = recipe_module._fir_ema(x, 0.1, 30)
    weights = 0.9 ** np.arange(30)
    for t in range(len(x)):
        window = x[t - 29 : t + 1] if t >= 29 else np.array([np.nan])
        expected = np.dot(window[::-1], weights) / weights.sum() if not np.isnan(window).any() else np.nan
        if np.isnan(expected):
            assert np.isnan(out[t]), t
        else:
            assert out[t] == pytest.approx(expected, rel=1e-13), t


def _ta_recipe() -> FeatureRecipe:
    """The ta-shared indicators with long kernels (e^-16 to e^-9 of weight dropped), so that the finite
    kernels converge to ta's infinite recursions within the 336 bars of test data."""
    s, ef = FeatureSpec.make, -math.log(1e-7)
    macd = {"fast": 12, "slow": 26, "signal": 9, "fast_window": ema_window(12, ef, None),
            "slow_window": ema_window(26, ef, None), "signal_window": ema_window(9, ef, None)}  # fmt: skip
    kc = {"ema_span": 20, "ema_window": ema_window(20, ef, None), "atr_period": 10,
          "atr_window": wilder_window(10, ef, None), "multiplier": 2.0}  # fmt: skip
    return FeatureRecipe(
        (
            s("rsi_14", "rsi", period=14, window=wilder_window(14, ef, None)),
            s("rsi_28", "rsi", period=28, window=300),
            s("atr_14", "atr", period=14, window=wilder_window(14, ef, None)),
            s("atr_28", "atr", period=28, window=300),
            *[s(f"macd_{o}", "macd", output=o, **macd) for o in ("line", "signal", "hist")],
            *[s(o, "adx", output=o, period=14, window=150) for o in ("adx", "plus_di", "minus_di")],
            *[s(f"bb_{o}", "bollinger", output=o, window=20, k=2.0) for o in ("width", "pctb")],
            *[s(f"kc_{o}", "keltner", output=o, **kc) for o in ("width", "pos")],
            s("stoch", "stochastic", window=14),
            s("mfi", "mfi", window=14),
        ),
        "ta-check",
    )


# ta's smoothing conventions differ from the finite kernels only in the dropped tail of the weights (and in
# ta's seeding, long forgotten after 250+ bars): relative tolerances per indicator, measured worst case x ~3.
# Exact definitions (Bollinger: SMA and population std; stochastic %K; MFI) agree to rounding.
TA_RTOL = {
    "rsi_14": 1e-6, "rsi_28": 5e-5, "atr_14": 1e-6, "atr_28": 5e-5, "macd_line": 3e-5, "macd_signal": 3e-5,
    "macd_hist": 1e-5, "adx": 2e-4, "plus_di": 2e-4, "minus_di": 2e-4, "bb_width": 1e-9, "bb_pctb": 1e-9,
    "kc_width": 1e-6, "kc_pos": 1e-5, "stoch": 1e-12, "mfi": 1e-12,
}  # fmt: skip


def _ta_values(frame: pd.DataFrame) -> dict[str, pd.Series]:
    h, low, c, v = frame["high"], frame["low"], frame["close"], frame["volume"]
    macd = ta.trend.MACD(c, 26, 12, 9)
    adx = ta.trend.ADXIndicator(h, low, c, 14)
    bb = ta.volatility.BollingerBands(c, 20, 2)
    kc = ta.volatility.KeltnerChannel(h, low, c, 20, 10, original_version=False, multiplier=2)
    return {
        "rsi_14": ta.momentum.RSIIndicator(c, 14).rsi(),
        "rsi_28": ta.momentum.RSIIndicator(c, 28).rsi(),
        "atr_14": ta.volatility.AverageTrueRange(h, low, c, 14).average_true_range() / c,
        "atr_28": ta.volatility.AverageTrueRange(h, low, c, 28).average_true_range() / c,
        "macd_line": macd.macd() / c,
        "macd_signal": macd.macd_signal() / c,
        "macd_hist": macd.macd_diff() / c,
        "adx": adx.adx(),
        "plus_di": adx.adx_pos(),
        "minus_di": adx.adx_neg(),
        "bb_width": bb.bollinger_wband() / 100.0,
        "bb_pctb": bb.bollinger_pband(),
        "kc_width": kc.keltner_channel_wband() / 100.0,
        "kc_pos": kc.keltner_channel_pband(),
        "stoch": ta.momentum.StochasticOscillator(h, low, c, 14).stoch(),
        "mfi": ta.volume.MFIIndicator(h, low, c, v, 14).money_flow_index(),
    }


def test_indicators_agree_with_ta(candles):
    recipe = _ta_recipe()
    for coin in ("ETH", "BTC", "SOL", "DOGE"):
        frame = candles[coin]
        ours = build_features(frame, recipe)
        theirs = _ta_values(frame.to_pandas())
        pdf = frame.to_pandas()
        hlc = pdf["high"] + pdf["low"] + pdf["close"]
        # ta reads the typical price's direction from tp / 3 with float noise; we call |change| <= 1e-9 a tie
        tie = (hlc.diff().abs() <= 1e-9 * hlc).astype(float).rolling(14).max().to_numpy() > 0
        compared = 0
        for spec in recipe.specs:
            a = ours[spec.name].to_numpy().astype(float)[:-1]  # ta's ADX/DI loops leave the last bar at 0
            b = theirs[spec.name].to_numpy()[:-1]
            keep = ~np.isnan(a)
            if spec.name == "mfi":
                keep &= ~tie[:-1]
            assert keep.sum() >= 30, (coin, spec.name)
            _assert_close(a[keep], b[keep], TA_RTOL[spec.name], f"{coin} {spec.name} vs ta")
            compared += int(keep.sum())
        assert compared > 16 * 30


def test_default_kernels_stay_close_to_the_classic_indicators(candles):
    """The default recipe's kernels (8 e-folds, at most 200 bars) against ta's infinite recursions."""
    frame = candles["ETH"]
    ours = build_features(frame, RECIPE).slice(RECIPE.warmup_bars, frame.height - RECIPE.warmup_bars - 1)
    theirs = {k: v.iloc[RECIPE.warmup_bars : -1].to_numpy() for k, v in _ta_values(frame.to_pandas()).items()}
    for name, theirs_name, tol in (("rsi_14", "rsi_14", 0.2), ("rsi_28", "rsi_28", 0.5), ("adx_14", "adx", 0.5)):
        assert np.abs(ours[name].to_numpy() - theirs[theirs_name]).max() < tol, name  # RSI/ADX points
    for name, theirs_name in (("atr_pct_14", "atr_14"), ("macd_line", "macd_line"), ("kc_width_20", "kc_width")):
        diff = np.abs(ours[name].to_numpy() - theirs[theirs_name])
        assert diff.max() < 0.05 * np.median(np.abs(theirs[theirs_name])), name


# ----------------------------------------------------------------------------------------- causality


def _day_build(recipe, day, reference):
    start, end = day_bounds_ms(day)

    def build(c: pl.DataFrame) -> pl.DataFrame:
        return features_for_window(c, recipe, start, end, reference=reference)

    return build


def test_no_lookahead_exhaustively_for_one_coin_day(candles, btc):
    day = date(2024, 3, 13)
    start, end = day_bounds_ms(day)
    frame = candles["ETH"]
    day_ts = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))["ts"].to_list()
    assert len(day_ts) == 24
    build = _day_build(RECIPE, day, btc)
    assert build(frame).height == 24
    assert lookahead_violations(build, frame, day_ts) == []


def test_no_lookahead_on_sampled_timestamps(candles, btc):
    rng = np.random.default_rng(11)
    for coin in ("SOL", "JUV", "WIF"):
        frame = candles[coin]
        cuts = sorted(rng.choice(frame["ts"].to_numpy()[1:-1], size=8, replace=False).tolist())

        def build(c: pl.DataFrame) -> pl.DataFrame:
            return build_features(c, RECIPE, btc)

        assert lookahead_violations(build, frame, cuts) == [], coin


def test_the_canary_catches_injected_leaks(candles, btc):
    frame = candles["ETH"]
    day = date(2024, 3, 13)
    start, _ = day_bounds_ms(day)
    honest = _day_build(RECIPE, day, btc)
    cuts = [start + h * HOUR for h in (3, 11, 19)]
    leaks = {
        "next close": pl.col("close").shift(-1) / pl.col("close"),
        "centred window": pl.col("close").rolling_mean(5, center=True),
        "whole-window z-score": (pl.col("close") - pl.col("close").mean()) / pl.col("close").std(),
    }
    for what, leak in leaks.items():

        def leaky(c: pl.DataFrame, _leak=leak) -> pl.DataFrame:
            out = honest(c)
            extra = c.sort("ts").select("ts", _leak.alias("leak"))
            return out.join(extra, on="ts", how="left")

        assert lookahead_violations(leaky, frame, cuts) == cuts, what
    # a tolerance does not hide a real leak either
    assert lookahead_violations(leaky, frame, cuts, atol=1e-9) == cuts


def test_features_for_window_returns_the_day_and_ignores_later_bars(candles, btc):
    day = date(2024, 3, 12)
    start, end = day_bounds_ms(day)
    frame = candles["SOL"]
    out = features_for_window(frame, RECIPE, start, end, btc)
    assert out["ts"].to_list() == list(range(start, end, HOUR))
    assert out.columns == ["ts", *RECIPE.names]
    assert out.equals(features_for_window(frame.filter(pl.col("ts") < end), RECIPE, start, end, btc))
    assert out.drop("ts").null_count().sum_horizontal().item() == 0


def test_gaps_and_bad_input():
    ts = np.arange(300, dtype=np.int64) * HOUR
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    frame = pl.DataFrame({"ts": ts, "open": close, "high": close * 1.01, "low": close * 0.99, "close": close,
                          "volume": rng.exponential(10, 300)})  # fmt: skip
    gappy = frame.filter(~pl.col("ts").is_in(list(ts[50:60])))
    out = build_features(gappy, RECIPE)
    assert out.height == gappy.height  # windows count bars; a gap is not filled
    with pytest.raises(ValueError, match="sorted"):
        build_features(frame.reverse(), RECIPE)
    with pytest.raises(ValueError, match="lack columns"):
        build_features(frame.drop("volume"), RECIPE)
    empty = build_features(frame.head(0), RECIPE)
    assert empty.height == 0 and empty.columns == ["ts", *RECIPE.names]


# ----------------------------------------------------------------------------------------- live parity


def _assert_parity(live: pl.DataFrame, expected: pl.DataFrame, what: str) -> None:
    assert live.columns == expected.columns and live.height == expected.height == 1, what
    assert live["ts"].item() == expected["ts"].item(), what
    a = live.drop("ts").to_numpy()[0].astype(float)
    b = expected.drop("ts").to_numpy()[0].astype(float)
    assert np.array_equal(np.isnan(a), np.isnan(b)), what
    ok = ~np.isnan(a)
    np.testing.assert_allclose(a[ok], b[ok], rtol=1e-12, atol=1e-12, err_msg=what)


def test_live_features_equal_the_window_features(candles, btc):
    worst = 0.0
    for coin in ("ETH", "JUV", "WIF"):
        frame = candles[coin]
        full = build_features(frame, RECIPE, btc)
        first = RECIPE.warmup_bars
        for end in [*range(first, frame.height + 1, 5), frame.height]:
            history = frame.head(end)
            live = live_features(
                history.tail(RECIPE.warmup_bars), RECIPE, btc.filter(pl.col("ts") <= history["ts"][-1])
            )
            expected = full.slice(end - 1, 1)
            _assert_parity(live, expected, f"{coin} bar {end - 1}")
            a, b = live.drop("ts").to_numpy()[0], expected.drop("ts").to_numpy()[0]
            worst = max(worst, float(np.nanmax(np.abs(a - b))))
    assert worst < 1e-12


def test_live_features_for_the_last_bar_of_a_day(candles, btc):
    day = date(2024, 3, 14)
    start, end = day_bounds_ms(day)
    frame = candles["ETH"]
    window = features_for_window(frame, RECIPE, start, end, btc)
    history = frame.filter(pl.col("ts") < end)
    live = live_features(history.tail(RECIPE.warmup_bars), RECIPE, btc.tail(RECIPE.warmup_bars))
    _assert_parity(live, window.tail(1), "last bar of the day")
    longer = live_features(history, RECIPE, btc)  # more bars than needed: only the last warmup_bars are used
    assert longer.equals(live)
    with pytest.raises(ValueError, match="need the last 200 bars"):
        live_features(history.tail(RECIPE.warmup_bars - 1), RECIPE, btc)
