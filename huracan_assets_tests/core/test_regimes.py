"""Regime classifier: known answers on synthetic paths, the Aug 5 2024 crash, the per-bar thin book, and
no-look-ahead canaries (the causality harness, thin book included) that are shown to catch planted leaks."""

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets.core.market_data.cleaning import CleaningReport
from huracan_assets.core.market_data.ingest import QualityThresholds, assess
from huracan_assets.core.regime.classifier import (
    DEFAULT_RULES,
    HMM_FEATURES,
    INPUT_COLUMNS,
    REGIMES,
    Regime,
    RegimeRules,
    classify_rules,
    fit_hmm,
    forward_filter,
    hmm_features,
    hmm_filtered_regimes,
    liquidity_inputs,
    regime_inputs,
    regime_shares,
)
from huracan_assets_tests.causality import causality_violations

HOUR = 3_600_000
REPLAY = Path(__file__).resolve().parents[1] / "data" / "replay_aug" / "1h"
CRASH_DAY = date(2024, 8, 5)
CALM_DAY = date(2024, 8, 10)
COINS = ("BTC", "ETH", "SOL")
CUT_HOURS = (1, 4, 7, 10, 13, 16, 19, 22)
THRESHOLDS = QualityThresholds()  # the candles' day-level thin-book thresholds (the defaults of candles:)
THIN_RULES = replace(
    DEFAULT_RULES,
    thin_min_quote_volume=THRESHOLDS.min_day_quote_volume,
    thin_max_zero_volume_share=THRESHOLDS.max_zero_volume_share,
    thin_max_spread_bps=THRESHOLDS.max_spread_bps,
)


def _candles(log_close: np.ndarray, volume: np.ndarray | float = 100.0, t0: int = 1_700_000_000_000 // HOUR * HOUR):
    close = 100.0 * np.exp(log_close)
    open_ = np.concatenate([[close[0]], close[:-1]])
    vol = np.broadcast_to(np.asarray(volume, dtype=float), close.shape)
    return pl.DataFrame(
        {
            "ts": t0 + HOUR * np.arange(close.size, dtype=np.int64),
            "open": open_,
            "high": np.maximum(open_, close) * 1.0005,
            "low": np.minimum(open_, close) * 0.9995,
            "close": close,
            "volume": vol,
        }
    )


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def replay() -> dict[str, pl.DataFrame]:
    return {c: pl.read_parquet(REPLAY / f"{c}_USDT.parquet").sort("ts") for c in (*COINS, "JUV")}


def _warm(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("warmed_up"))


# ---------------------------------------------------------------------------------------------
# Synthetic paths with known answers
# ---------------------------------------------------------------------------------------------


def test_steady_uptrend_is_trend():
    steps = 0.002 + _rng(1).normal(0, 0.002, 400)
    out = _warm(classify_rules(_candles(np.cumsum(steps))))
    assert out.height > 150
    assert (out["regime"] == Regime.TREND).all()
    assert (out["efficiency_ratio"] > 0).all()  # the sign keeps the direction


def test_flat_noisy_range_is_range():
    out = _warm(classify_rules(_candles(_rng(2).normal(0, 0.003, 400))))
    assert out.height > 150
    assert (out["regime"] == Regime.RANGE).all()


def test_crash_after_calm_is_panic():
    calm = np.cumsum(_rng(3).normal(0, 0.002, 300))
    crash_start = 250
    steps = np.diff(calm, prepend=0.0)
    steps[crash_start : crash_start + 4] = np.log(0.9) / 4  # -10% over 4 bars
    candles = _candles(np.cumsum(steps))
    out = classify_rules(candles)
    regime = out["regime"].to_list()
    assert Regime.PANIC not in regime[:crash_start]
    # the first crash bar (-2.6%) is not yet a -4% drawdown; from the second one on it is PANIC
    assert regime[crash_start + 1 : crash_start + 4] == [Regime.PANIC] * 3
    crash_rows = out.slice(crash_start + 1, 3)
    assert (crash_rows["vol_pct"] >= DEFAULT_RULES.panic_vol_pct).all()
    assert (crash_rows["drawdown"] <= DEFAULT_RULES.panic_drawdown).all()


def test_zero_volume_is_illiquid():
    path = _rng(4).normal(0, 0.003, 300)
    volume = np.full(300, 100.0)
    volume[200:230] = 0.0
    out = classify_rules(_candles(path, volume))
    share = DEFAULT_RULES.illiquid_zero_volume_share * DEFAULT_RULES.liquidity_window
    first = 200 + int(np.ceil(share)) - 1  # the bar where the trailing zero-volume share reaches the threshold
    regime = out["regime"].to_list()
    assert Regime.ILLIQUID not in regime[:first]
    assert regime[first:230] == [Regime.ILLIQUID] * (230 - first)
    assert not out["thin_book"].any()  # the thin-book thresholds are off by default


def test_thin_book_is_per_bar_over_the_trailing_day():
    """Traded value of 100 x ~100 per bar (~240k a day) against a 100k floor: 60 bars of volume 1 make the book
    thin once most of the trailing day is quiet, and it stays thin until most of the day has traded again."""
    steps = _rng(4).normal(0, 0.001, 400)
    steps[240:244] = np.log(0.9) / 4  # a crash inside the quiet stretch: ILLIQUID wins (ILLIQUID > PANIC)
    volume = np.full(400, 100.0)
    volume[200:260] = 1.0
    rules = replace(DEFAULT_RULES, thin_min_quote_volume=100_000.0)
    out = classify_rules(_candles(np.cumsum(steps), volume), rules)
    thin, regime = out["thin_book"].to_list(), out["regime"].to_list()
    assert not any(thin[24:205])  # a few quiet bars are not a thin day
    assert all(thin[220:265]) and regime[220:265] == [Regime.ILLIQUID] * 45
    assert not any(thin[275:])  # a day later, trading again
    assert Regime.PANIC in classify_rules(_candles(np.cumsum(steps), 100.0), rules)["regime"][240:250].to_list()
    assert out["zero_volume_share"].max() == 0.0  # this ILLIQUID comes from the thin book alone
    # the first day of the frame has no whole trailing day: no flag and no inputs, whatever the thresholds
    always = classify_rules(_candles(np.cumsum(steps), volume), replace(rules, thin_min_quote_volume=1e12))
    assert always["thin_book"].to_list() == [False] * 24 + [True] * 376
    assert always["trailing_quote_volume"].head(24).null_count() == 24 and not always["warmed_up"][23]


@pytest.mark.parametrize(
    ("source", "minutes", "span"),
    [("ohlcv/1h/JUV_USDT", 60, 1440), ("replay_aug/1h/BTC_USDT", 60, 1440), ("special/JUV_USDT_5m_2024-02-03", 5, 120)],
)
def test_thin_book_is_the_day_level_definition_over_the_trailing_window(source, minutes, span):
    """At every formed bar, the inputs and the flag equal ``assess`` (the candles' thin-book flag) run on the bars
    of the trailing window alone: the same definitions, only trailing. JUV March is thin on some days and not on
    others; the zero-volume day of JUV (5m) is checked over 2h windows."""
    frame = pl.read_parquet(Path(__file__).resolve().parents[1] / "data" / f"{source}.parquet").sort("ts")
    bar, span_ms = minutes * 60_000, span * 60_000
    out = liquidity_inputs(frame, replace(THIN_RULES, thin_book_minutes=span))
    flags = []
    for i in range(span // minutes, frame.height, 5):
        t = int(frame["ts"][i])
        window = frame.filter((pl.col("ts") > t - span_ms) & (pl.col("ts") <= t))
        day = assess(window, CleaningReport(expected_bars=span // minutes), t + bar, bar, THRESHOLDS).detail
        row = out.row(i, named=True)
        assert row["thin_book"] == day["thin_book"], (t, row, day)
        assert row["trailing_quote_volume"] == pytest.approx(day["quote_volume"], abs=0.006)
        assert row["trailing_zero_volume_share"] == pytest.approx(day["zero_volume_share"], abs=1e-6)
        assert row["trailing_spread_bps"] == pytest.approx(day["spread_bps"], abs=6e-4)
        flags.append(row["thin_book"])
    assert len(flags) > 40
    if source.startswith("ohlcv"):
        assert 0 < sum(flags) < len(flags)  # both answers occur: the comparison is not vacuous


def test_missing_volume_counts_as_zero_volume():
    candles = _candles(_rng(5).normal(0, 0.003, 100)).with_columns(volume=pl.lit(None, dtype=pl.Float64))
    assert (classify_rules(candles)["regime"] == Regime.ILLIQUID).all()


def test_rules_defaults_scale_with_bar_size():
    assert RegimeRules.for_bar_minutes(60) == DEFAULT_RULES
    r15 = RegimeRules.for_bar_minutes(15)
    assert r15.trend_window == 4 * DEFAULT_RULES.trend_window
    assert r15.vol_rank_window == 4 * DEFAULT_RULES.vol_rank_window
    assert r15.panic_drawdown == DEFAULT_RULES.panic_drawdown
    assert r15.trend_strength_min == pytest.approx(DEFAULT_RULES.trend_strength_min / 2)
    r4h = RegimeRules.for_bar_minutes(240, panic_drawdown=-0.06)
    assert r4h.drawdown_window == 6 and r4h.panic_drawdown == -0.06
    assert DEFAULT_RULES.warmup_bars == DEFAULT_RULES.vol_window + DEFAULT_RULES.vol_rank_window
    with pytest.raises(ValueError):
        RegimeRules(panic_drawdown=0.04)


def test_vol_percentile_is_trailing_rank():
    candles = _candles(_rng(6).normal(0, 0.003, 300))
    rules = RegimeRules(vol_rank_window=50, vol_rank_min_samples=10)
    inputs = regime_inputs(candles, rules)
    vol = inputs["realized_vol"].to_numpy()
    got = inputs["vol_pct"].to_numpy()
    for i in (30, 100, 299):
        past = vol[max(0, i - 50) : i]
        past = past[np.isfinite(past)]
        expected = ((past < vol[i]).sum() + 0.5 * (past == vol[i]).sum()) / past.size if past.size >= 10 else np.nan
        assert got[i] == pytest.approx(expected, nan_ok=True)
    assert list(inputs.columns) == ["ts", *INPUT_COLUMNS]


def test_regime_shares():
    frame = pl.DataFrame({"regime": ["TREND", "TREND", "PANIC", "RANGE"]})
    assert regime_shares(frame) == {"TREND": 0.5, "RANGE": 0.25, "PANIC": 0.25, "ILLIQUID": 0.0}
    assert regime_shares(frame.clear()) == dict.fromkeys(REGIMES, 0.0)


# ---------------------------------------------------------------------------------------------
# Real data: the Aug 5 2024 crash, a calm day, the 14-day distribution
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("coin", COINS)
def test_aug_5_2024_crash_is_panic(replay, coin):
    start, end = day_bounds_ms(CRASH_DAY)
    out = classify_rules(replay[coin].filter(pl.col("ts") < end), DEFAULT_RULES, start, end)
    assert out.height == 24 and out["warmed_up"].all()
    morning = out.filter(pl.col("ts") < start + 12 * HOUR)
    n_panic = int((morning["regime"] == Regime.PANIC).sum())
    print(
        f"{coin} PANIC bars 2024-08-05 00-12 UTC: {n_panic}/12, whole day: {int((out['regime'] == 'PANIC').sum())}/24"
    )
    assert n_panic >= 3


@pytest.mark.parametrize("coin", COINS)
def test_calm_day_is_not_panic(replay, coin):
    start, end = day_bounds_ms(CALM_DAY)
    out = classify_rules(replay[coin].filter(pl.col("ts") < end), DEFAULT_RULES, start, end)
    assert out.height == 24
    assert regime_shares(out)["PANIC"] <= 0.1


@pytest.mark.parametrize("coin", COINS)
def test_fourteen_day_distribution_is_not_degenerate(replay, coin):
    frame = replay[coin]
    out = _warm(classify_rules(frame))
    assert out.height >= 11 * 24
    shares = regime_shares(out)
    assert max(shares.values()) <= 0.95, shares
    assert shares["PANIC"] > 0 and shares["TREND"] > 0 and shares["RANGE"] > 0


# ---------------------------------------------------------------------------------------------
# No-look-ahead canaries: changing or cutting the bars after t leaves every row <= t identical
# (huracan_assets_tests/causality.py: scaled, shuffled, thinned, thickened, dropped); leaks are caught
# ---------------------------------------------------------------------------------------------


def _cut_changes_past(fn, frame: pl.DataFrame, start: int, end: int) -> list:
    """The rows at or before a cut of D that change once the bars after the cut change or go (empty: causal)."""
    assert fn(frame, start, end).height == 24
    cuts = [start + h * HOUR for h in CUT_HOURS]
    return causality_violations(lambda c: fn(c, start, end), frame, cuts)


def _rules(frame, start, end):
    return classify_rules(frame, THIN_RULES, start, end)


def _centered_rules(frame, start, end):
    """A classic leak: smoothing prices with a centered window before classifying."""
    smoothed = frame.sort("ts").with_columns(close=pl.col("close").rolling_mean(5, center=True, min_samples=1))
    return classify_rules(smoothed, THIN_RULES, start, end)


_trailing_liquidity = liquidity_inputs


def _whole_day_liquidity(candles: pl.DataFrame, rules: RegimeRules) -> pl.DataFrame:
    """The defect of the review: the candles' thin_book flag of day D (``assess`` over all of D's bars) applied to
    every bar of D, as the regimes asset used to read it from the registry."""
    out = _trailing_liquidity(candles, rules)
    frame = candles.sort("ts").with_columns(day=pl.col("ts") // (24 * HOUR))
    flags = {
        int(d): assess(part.drop("day"), CleaningReport(expected_bars=24), 0, HOUR, THRESHOLDS).detail["thin_book"]
        for (d,), part in frame.group_by("day")
    }
    return out.with_columns(thin_book=frame["day"].replace_strict(flags, return_dtype=pl.Boolean))


@pytest.mark.parametrize("day", [CRASH_DAY, CALM_DAY])
@pytest.mark.parametrize("coin", [*COINS, "JUV"])
def test_rules_are_causal(replay, coin, day):
    start, end = day_bounds_ms(day)
    if coin == "JUV":  # a thin coin: the thin-book condition decides its regimes
        assert classify_rules(replay[coin], THIN_RULES, start, end)["thin_book"].all()
    assert not _cut_changes_past(_rules, replay[coin], start, end)


def test_juv_morning_regimes_ignore_the_afternoon_volume(replay, monkeypatch):
    """The review's case: JUV with only the volume of the bars after 12:00 changed (x100). The regimes of
    00:00-12:00 stay ILLIQUID (their trailing day is thin); with the old whole-day flag they turned RANGE."""
    from huracan_assets.core.regime import classifier

    start, end = day_bounds_ms(date(2024, 8, 9))
    noon = start + 12 * HOUR
    frame = replay["JUV"]
    busy = frame.with_columns(volume=pl.when(pl.col("ts") > noon).then(pl.col("volume") * 100).otherwise("volume"))

    def morning(candles: pl.DataFrame) -> pl.DataFrame:
        return classify_rules(candles, THIN_RULES, start, end).filter(pl.col("ts") <= noon)

    assert (morning(frame)["regime"] == Regime.ILLIQUID).all()
    assert morning(busy).equals(morning(frame))
    assert not classify_rules(busy, THIN_RULES, start, end)["thin_book"][-1]  # the busy afternoon does count later
    monkeypatch.setattr(classifier, "liquidity_inputs", _whole_day_liquidity)
    assert (morning(frame)["regime"] == Regime.ILLIQUID).all()
    assert Regime.ILLIQUID not in morning(busy)["regime"].to_list()


@pytest.mark.parametrize("coin", ["JUV", "BTC"])
def test_rules_canary_catches_the_whole_day_thin_book(replay, monkeypatch, coin):
    """Planting the old flag back (a whole-day thin book on every bar of D) fails the causality check: on JUV a
    busier afternoon clears the flag of the morning, on BTC a thinner one sets it."""
    from huracan_assets.core.regime import classifier

    start, end = day_bounds_ms(CRASH_DAY)
    assert not _cut_changes_past(_rules, replay[coin], start, end)
    monkeypatch.setattr(classifier, "liquidity_inputs", _whole_day_liquidity)
    assert _cut_changes_past(_rules, replay[coin], start, end)


def test_rules_canary_catches_a_centered_window(replay):
    start, end = day_bounds_ms(CRASH_DAY)
    assert _cut_changes_past(_centered_rules, replay["BTC"], start, end)


def test_rules_canary_catches_a_whole_window_percentile(replay, monkeypatch):
    """The pitfall of ENGINEERING.md: a vol percentile over the whole frame instead of a trailing one."""
    from huracan_assets.core.regime import classifier

    def whole_window_rank(values, window, min_samples):
        finite = values[np.isfinite(values)]
        return np.array([(finite < v).mean() if np.isfinite(v) else np.nan for v in values])

    start, end = day_bounds_ms(CRASH_DAY)
    assert not _cut_changes_past(_rules, replay["ETH"], start, end)
    monkeypatch.setattr(classifier, "_trailing_rank", whole_window_rank)
    assert _cut_changes_past(_rules, replay["ETH"], start, end)


@pytest.fixture(scope="module")
def crash_models(replay):
    start, _ = day_bounds_ms(CRASH_DAY)
    pre_d = {c: replay[c].filter(pl.col("ts") < start) for c in (*COINS, "JUV")}
    return {c: fit_hmm(frame, n_states=3, seed=7, rules=THIN_RULES) for c, frame in pre_d.items()}


def _smoothed_hmm(model):
    """The leak the docs warn about: hmmlearn's forward-backward posteriors (and Viterbi states)."""

    def run(frame, start, end):
        out = hmm_filtered_regimes(model, frame, start, end)
        feats = hmm_features(frame, model.rules).drop_nulls(list(HMM_FEATURES))
        x = (feats.select(HMM_FEATURES).to_numpy() - model.feature_mean) / model.feature_std
        post = model.hmm.predict_proba(x)
        leaked = feats.select("ts").with_columns(
            state=pl.Series(model.hmm.predict(x), dtype=pl.Int64),
            **{f"p_state_{k}": pl.Series(post[:, k]) for k in range(model.n_states)},
        )
        return out.select("ts", "regime").join(leaked, on="ts", how="left")

    return run


@pytest.mark.parametrize("coin", [*COINS, "JUV"])
def test_hmm_forward_filter_is_causal(replay, crash_models, coin):
    start, end = day_bounds_ms(CRASH_DAY)
    model = crash_models[coin]
    assert model.fit_end_ts < start

    def filtered(frame, lo, hi):
        return hmm_filtered_regimes(model, frame, lo, hi)

    assert not _cut_changes_past(filtered, replay[coin], start, end)
    assert _cut_changes_past(_smoothed_hmm(model), replay[coin], start, end)


def test_hmm_canary_catches_the_whole_day_thin_book(replay, crash_models, monkeypatch):
    from huracan_assets.core.regime import classifier

    start, end = day_bounds_ms(CRASH_DAY)
    model = crash_models["JUV"]

    def filtered(frame, lo, hi):
        return hmm_filtered_regimes(model, frame, lo, hi)

    assert (filtered(replay["JUV"], start, end)["regime"] == Regime.ILLIQUID).all()
    assert not _cut_changes_past(filtered, replay["JUV"], start, end)
    monkeypatch.setattr(classifier, "liquidity_inputs", _whole_day_liquidity)
    assert _cut_changes_past(filtered, replay["JUV"], start, end)


def test_forward_filter_matches_the_last_smoothed_row_of_each_prefix(replay, crash_models):
    """p(s_t | x_0..x_t) equals hmmlearn's posterior of the last row of the prefix x_0..x_t."""
    model = crash_models["ETH"]
    feats = hmm_features(replay["ETH"], model.rules).drop_nulls(list(HMM_FEATURES))
    x = (feats.select(HMM_FEATURES).to_numpy() - model.feature_mean) / model.feature_std
    filtered = np.exp(forward_filter(model, x))
    np.testing.assert_allclose(filtered.sum(axis=1), 1.0, atol=1e-9)
    for t in (0, 5, 60, 100, 200, x.shape[0] - 1):
        np.testing.assert_allclose(filtered[t], model.hmm.predict_proba(x[: t + 1])[-1], atol=1e-8)


def test_hmm_is_fitted_before_d_and_deterministic(replay):
    start, end = day_bounds_ms(CRASH_DAY)
    frame = replay["SOL"]
    pre_d = frame.filter(pl.col("ts") < start)
    a = fit_hmm(pre_d, n_states=3, seed=7)
    b = fit_hmm(pre_d, n_states=3, seed=7)
    with_future = fit_hmm(frame, n_states=3, seed=7, before_ms=start)  # D and later rows are dropped
    for other in (b, with_future):
        for attr in ("startprob_", "transmat_", "means_", "covars_"):
            assert np.array_equal(getattr(a.hmm, attr), getattr(other.hmm, attr))
        assert other.state_regimes == a.state_regimes and other.fit_end_ts == a.fit_end_ts < start
    window = frame.filter(pl.col("ts") < end)
    out = hmm_filtered_regimes(a, window, start, end)
    assert out.equals(hmm_filtered_regimes(with_future, window, start, end))
    assert out.height == 24 and set(out["regime"]) <= set(REGIMES)
    assert out.columns == ["ts", "regime", "state", "p_state_0", "p_state_1", "p_state_2"]
    probs = out.select(pl.sum_horizontal(pl.col("^p_state_.*$")))
    np.testing.assert_allclose(probs.to_series().to_numpy(), 1.0, atol=1e-9)
    # a model that saw D would differ: the API really has to be given pre-D data
    leaky = fit_hmm(frame, n_states=3, seed=7)
    assert not np.array_equal(leaky.hmm.means_, a.hmm.means_)


def test_hmm_states_map_to_regimes_and_liquidity_overrides(replay):
    start, end = day_bounds_ms(date(2024, 8, 8))
    frame = replay["BTC"]
    model = fit_hmm(frame, n_states=3, seed=7, before_ms=start)
    stats = {s.state: s for s in model.state_stats}
    assert Regime.ILLIQUID not in model.state_regimes
    for state, regime in enumerate(model.state_regimes):
        if regime is Regime.PANIC:
            assert stats[state].mean_log_vol == max(s.mean_log_vol for s in stats.values())
            assert stats[state].mean_log_ret < 0
        if regime is Regime.TREND:
            assert stats[state].drift_to_vol >= DEFAULT_RULES.hmm_trend_min_drift_to_vol
            ranges = [stats[k] for k, r in enumerate(model.state_regimes) if r is Regime.RANGE]
            assert all(stats[state].drift_to_vol > s.drift_to_vol for s in ranges)
    # a floor no BTC day reaches: every formed bar has a thin book, and ILLIQUID overrides the states
    thin_model = replace(model, rules=replace(model.rules, thin_min_quote_volume=1e15))
    thin = hmm_filtered_regimes(thin_model, frame.filter(pl.col("ts") < end), start, end)
    assert (thin["regime"] == Regime.ILLIQUID).all()
    # the 7 days after the fit window, filtered bar by bar: not one regime throughout
    # (7 days of fit data is little; production fits on `hmm_fit_days` = 30)
    out = hmm_filtered_regimes(model, frame, start, None)
    assert out.height == 7 * 24
    assert max(regime_shares(out).values()) <= 0.95, regime_shares(out)
