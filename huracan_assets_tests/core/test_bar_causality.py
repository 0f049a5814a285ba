"""Every per-bar product is causal on real candles: the bars after a cut inside D cannot move a row at or before it.

One harness (``huracan_assets_tests/causality.py``) for features, regimes (rules and HMM, the thin-book
condition included), labels (their entry fields; the outcome only once resolved), engine signals and the
training and inference matrices. Cuts are spread over D; the perturbations scale, shuffle, thin out, thicken
or drop the later bars (see the harness). Each product is also shown to fail the harness on a planted leak.
"""

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.costs import CostModel
from huracan_assets.core.engines.base import EngineInput, EngineRegistry, engine_input
from huracan_assets.core.engines.calibration import CalibrationSpec, outcomes_from_labels
from huracan_assets.core.engines.combiner import MetaSpec
from huracan_assets.core.engines.gate import GateSpec
from huracan_assets.core.engines.signals import MetaState, SignalSpec, day_signals, update_meta
from huracan_assets.core.features.recipe import default_recipe, features_for_window
from huracan_assets.core.labels.triple_barrier import BarrierSpec, triple_barrier
from huracan_assets.core.market_data.candles import day_bounds_ms
from huracan_assets.core.regime.classifier import RegimeRules, classify_rules, fit_hmm, hmm_filtered_regimes
from huracan_assets.core.training.dataset import (
    BASE_COLUMNS,
    inference_frame,
    matrix,
    signal_feature_names,
    training_frame,
)
from huracan_assets.settings import CandleQualitySettings
from huracan_assets_tests.causality import (
    PERTURBATIONS,
    assert_causal,
    causality_violations,
    cuts_in_day,
    perturb_after,
)

DATA = Path(__file__).resolve().parents[1] / "data"
H = 3_600_000
M5 = 300_000
DAY = 86_400_000
ENTRY_FIELDS = ("entry", "vol", "pt_price", "sl_price")


def _read(folder: str, coin: str) -> pl.DataFrame:
    return pl.read_parquet(DATA / folder / "1h" / f"{coin}_USDT.parquet").sort("ts")


def _special(name: str) -> pl.DataFrame:
    return pl.read_parquet(DATA / "special" / f"{name}.parquet").sort("ts")


def _thin_rules(bar_minutes: int, **overrides) -> RegimeRules:
    """The rules the ``regimes`` asset uses: thin-book thresholds of ``candles:`` (defaults of the settings)."""
    c = CandleQualitySettings()
    return RegimeRules.for_bar_minutes(
        bar_minutes,
        thin_min_quote_volume=c.min_day_quote_volume,
        thin_max_zero_volume_share=c.max_zero_volume_share,
        thin_max_spread_bps=c.max_spread_bps,
        **overrides,
    )


# (name, candles, day D, bar minutes): 1h slices of three folders, a thin coin, and 5m slices
CASES = {
    "BTC 1h crash": (lambda: _read("replay_aug", "BTC"), date(2024, 8, 5), 60),
    "JUV 1h aug": (lambda: _read("replay_aug", "JUV"), date(2024, 8, 9), 60),
    "JUV 1h march": (lambda: _read("ohlcv", "JUV"), date(2024, 3, 5), 60),
    "SOL 1h long": (lambda: _read("replay_long", "SOL"), date(2024, 8, 6), 60),
    "JUV 5m": (lambda: _special("JUV_USDT_5m_2024-08-19_21"), date(2024, 8, 21), 5),
    "BTC 5m": (lambda: _special("BTC_USDT_5m_2024-08-19_21"), date(2024, 8, 20), 5),
}


@pytest.fixture(scope="module")
def cases() -> dict[str, tuple[pl.DataFrame, date, int]]:
    return {name: (load(), day, minutes) for name, (load, day, minutes) in CASES.items()}


@pytest.fixture(scope="module")
def btc_aug() -> pl.DataFrame:
    return _read("replay_aug", "BTC").select("ts", "close")


# ------------------------------------------------------------------------------------------- the harness


def test_perturbations_change_only_later_bars_and_keep_them_sane(cases):
    candles, day, _ = cases["JUV 1h march"]
    cut = day_bounds_ms(day)[0] + 11 * H
    before = candles.filter(pl.col("ts") <= cut)
    for i, how in enumerate(PERTURBATIONS):
        out = perturb_after(candles, cut, how, seed=i)  # raises on an insane bar
        assert out.filter(pl.col("ts") <= cut).equals(before), how
        later, orig = out.filter(pl.col("ts") > cut), candles.filter(pl.col("ts") > cut)
        if how == "drop":
            assert later.height == 0
        else:
            assert later["ts"].equals(orig["ts"]) and not later.equals(orig), how


def test_the_harness_catches_planted_leaks(cases):
    """A ``shift(-1)``, a whole-day aggregate and a centred window all fail; the honest version passes."""
    candles, day, _ = cases["BTC 1h crash"]
    cuts = cuts_in_day(candles, *day_bounds_ms(day))

    def honest(c: pl.DataFrame) -> pl.DataFrame:
        return c.select("ts", ret=pl.col("close").log().diff(), vol=pl.col("volume").rolling_mean(24, min_samples=1))

    def next_bar(c: pl.DataFrame) -> pl.DataFrame:
        return honest(c).with_columns(ret=pl.col("ret").shift(-1))

    def day_share(c: pl.DataFrame) -> pl.DataFrame:
        share = c.select(pl.col("volume") / pl.col("volume").sum().over(pl.col("ts") // DAY)).to_series()
        return honest(c).with_columns(vol=share)

    def centred(c: pl.DataFrame) -> pl.DataFrame:
        return honest(c).with_columns(vol=c["volume"].rolling_mean(5, center=True, min_samples=1))

    assert causality_violations(honest, candles, cuts) == []
    for leaky in (next_bar, day_share, centred):
        bad = causality_violations(leaky, candles, cuts)
        assert {v.cut for v in bad} == set(cuts), leaky.__name__  # caught at every cut
    # a day-level traded-value flag (the old thin book), set just below D's value: thinning any later bar flips it
    start, end = day_bounds_ms(day)
    day_value = candles.filter((pl.col("ts") >= start) & (pl.col("ts") < end)).select(
        pl.col("close") * pl.col("volume")
    )
    floor = 0.9999 * day_value.to_series().sum()

    def day_flag(c: pl.DataFrame) -> pl.DataFrame:
        return c.select("ts", thin=(pl.col("volume") * pl.col("close")).sum().over(pl.col("ts") // DAY) < floor)

    flag = causality_violations(day_flag, candles, cuts)
    assert {v.cut for v in flag if v.perturbation == "thin"} == set(cuts)
    # a build that returns no row at or before the cut proves nothing: reported, not passed
    empty = causality_violations(lambda c: c.filter(pl.col("ts") > cuts[-1]).select("ts", "close"), candles, cuts)
    assert {v.column for v in empty} == {"<no rows>"}


# ------------------------------------------------------------------------------------------- features


@pytest.mark.parametrize("name", ["BTC 1h crash", "JUV 1h aug", "JUV 1h march", "SOL 1h long", "JUV 5m"])
def test_features_are_causal(cases, btc_aug, name):
    candles, day, _ = cases[name]
    start, end = day_bounds_ms(day)
    recipe = default_recipe()
    reference = btc_aug if name != "JUV 1h march" else _read("ohlcv", "BTC").select("ts", "close")
    if name in ("SOL 1h long", "JUV 5m"):
        reference = None

    def build(c: pl.DataFrame) -> pl.DataFrame:
        return features_for_window(c, recipe, start - DAY, end, reference=reference)

    assert_causal(build, candles, cuts_in_day(candles, start, end, n=4))


def test_cross_asset_features_are_causal_in_the_reference(cases, btc_aug):
    """The reference coin's later bars are perturbed instead: rel_strength, beta_ref, corr_ref hold still."""
    candles, day, _ = cases["JUV 1h aug"]
    start, end = day_bounds_ms(day)
    reference = _read("replay_aug", "BTC")

    def build(ref: pl.DataFrame) -> pl.DataFrame:
        return features_for_window(candles, default_recipe(), start, end, reference=ref.select("ts", "close"))

    assert_causal(build, reference, cuts_in_day(reference, start, end, n=4))


def test_the_feature_check_catches_a_leaky_recipe(cases):
    candles, day, _ = cases["BTC 1h crash"]
    start, end = day_bounds_ms(day)

    def leaky(c: pl.DataFrame) -> pl.DataFrame:  # a feature read one bar early
        out = features_for_window(c, default_recipe(), start, end)
        return out.with_columns(pl.col(out.columns[1]).shift(-1))

    assert causality_violations(leaky, candles, cuts_in_day(candles, start, end, n=3))


# ------------------------------------------------------------------------------------------- regimes


@pytest.mark.parametrize("name", list(CASES))
def test_rule_regimes_are_causal_with_the_thin_book(cases, name):
    candles, day, minutes = cases[name]
    start, end = day_bounds_ms(day)
    rules = _thin_rules(minutes)

    def build(c: pl.DataFrame) -> pl.DataFrame:
        return classify_rules(c, rules, start, end)

    assert_causal(build, candles, cuts_in_day(candles, start, end))


def test_thin_book_is_exercised_on_the_thin_coins(cases):
    """The causality tests above are not vacuous: JUV's bars are thin, BTC's are not, and March JUV is mixed."""
    share = {}
    for name in ("JUV 1h aug", "JUV 1h march", "JUV 5m", "BTC 1h crash"):
        candles, day, minutes = cases[name]
        out = classify_rules(candles, _thin_rules(minutes), *day_bounds_ms(day))
        share[name] = out["thin_book"].mean()
    assert share["JUV 1h aug"] == 1.0 and share["JUV 5m"] == 1.0 and share["BTC 1h crash"] == 0.0
    march = classify_rules(cases["JUV 1h march"][0], _thin_rules(60))
    assert 0.2 < march.filter(pl.col("warmed_up"))["thin_book"].mean() < 0.8


def test_zero_volume_day_is_causal_with_a_short_thin_window():
    """JUV 2024-02-03 (5m, 59 zero-volume bars): a single day, so the thin book runs over a 2h window."""
    candles = _special("JUV_USDT_5m_2024-02-03")
    start, end = day_bounds_ms(date(2024, 2, 3))
    rules = _thin_rules(5, thin_book_minutes=120)
    out = classify_rules(candles, rules, start, end)
    assert out["thin_book"].sum() > 200 and (out["trailing_zero_volume_share"] > 0).any()
    assert_causal(lambda c: classify_rules(c, rules, start, end), candles, cuts_in_day(candles, start + 3 * H, end))


@pytest.mark.parametrize("name", ["BTC 1h crash", "JUV 1h march", "SOL 1h long", "JUV 5m"])
def test_hmm_regimes_are_causal_with_the_thin_book(cases, name):
    """The HMM is fitted inside the build on the bars before D, then forward-filtered: both stages are checked."""
    candles, day, minutes = cases[name]
    start, end = day_bounds_ms(day)
    rules = _thin_rules(minutes)

    def build(c: pl.DataFrame) -> pl.DataFrame:
        model = fit_hmm(c, n_states=3, seed=7, rules=rules, before_ms=start)
        return hmm_filtered_regimes(model, c, start, end)

    assert_causal(build, candles, cuts_in_day(candles, start, end, n=3))


# ------------------------------------------------------------------------------------------- labels


LABEL_SPEC = BarrierSpec(pt_mult=2.0, sl_mult=2.0, max_holding_bars=24, vol_window=48)


@pytest.mark.parametrize("name", ["BTC 1h crash", "JUV 1h march", "SOL 1h long"])
def test_label_entry_fields_are_causal_and_resolved_outcomes_final(cases, name):
    """labels[D] and labels[D+1] (events of D-1 and D): the entry fields of an event at or before the cut never
    move; its outcome may (it resolves later by definition), unless it was already resolved by the cut."""
    candles, day, _ = cases[name]
    start, end = day_bounds_ms(day)

    def build(c: pl.DataFrame) -> pl.DataFrame:
        return triple_barrier(c, start - DAY, end, LABEL_SPEC, H)

    cuts = cuts_in_day(candles, start, end)
    assert_causal(build, candles, cuts, ENTRY_FIELDS)
    # "drop" is left out here: with the vertical barrier out of reach an event is unresolved by definition
    resolved = [p for p in PERTURBATIONS if p != "drop"]
    assert build(candles).filter(pl.col("touch_ts") <= cuts[1]).height > 5
    assert_causal(build, candles, cuts[1:], known_at="touch_ts", perturbations=resolved)


def test_the_label_check_catches_a_leaky_entry(cases):
    candles, day, _ = cases["BTC 1h crash"]
    start, end = day_bounds_ms(day)

    def leaky(c: pl.DataFrame) -> pl.DataFrame:  # entering at the NEXT bar's close
        out = triple_barrier(c, start - DAY, end, LABEL_SPEC, H)
        return out.with_columns(pl.col("entry").shift(-1))

    assert causality_violations(leaky, candles, cuts_in_day(candles, start, end, n=3), ENTRY_FIELDS)


# ------------------------------------------------------------------------------------------- engine signals

SIGNAL_DAY = date(2024, 8, 7)  # AVAX: the warm state has voters on D
CALIBRATION_DAYS = 10
ENGINE_WARMUP_DAYS = 10


def _signal_spec() -> SignalSpec:
    return SignalSpec(
        CalibrationSpec(min_samples=10),
        GateSpec(window_days=7, refresh_days=1, min_samples=5),
        MetaSpec(),
        CostModel.from_config({"venue": "binance_spot"}),
        1440,
        1000.0,
    )


@pytest.fixture(scope="module")
def long_avax():
    candles = _read("replay_long", "AVAX")
    reference = _read("replay_long", "BTC").select("ts", "close")
    return candles, reference


def _labels_before(candles: pl.DataFrame, day: date, days: int) -> pl.DataFrame:
    """labels[day - days + 1 .. day - 1]: the events of ``day - days .. day - 2`` (what the asset reads)."""
    first, _ = day_bounds_ms(day - timedelta(days=days))
    return triple_barrier(candles, first, day_bounds_ms(day - timedelta(days=1))[0], LABEL_SPEC, H)


def _day_signals_builder(reference: pl.DataFrame, day: date, meta: MetaState, registry: EngineRegistry):
    start, end = day_bounds_ms(day)
    first = day_bounds_ms(day - timedelta(days=CALIBRATION_DAYS + ENGINE_WARMUP_DAYS))[0]
    spec = _signal_spec()
    rules = _thin_rules(60)

    def build(c: pl.DataFrame) -> pl.DataFrame:
        # the bars after D are included on purpose: they must not reach D's rows either
        inp = engine_input(c.filter(pl.col("ts") >= first), 60, reference)
        outcomes = outcomes_from_labels(_labels_before(c, day, CALIBRATION_DAYS))
        regimes = classify_rules(c, rules, start, end)
        out, _ = day_signals(registry, inp, start, end, outcomes, regimes, meta.state, meta.gate, spec)
        return out

    return build


@pytest.fixture(scope="module")
def warm_meta(long_avax) -> MetaState:
    """meta_weights[D-1], built only from bars before D (as the asset of D-1 would have)."""
    candles, reference = long_avax
    registry = EngineRegistry.default()
    yday = SIGNAL_DAY - timedelta(days=1)
    y_start, y_end = day_bounds_ms(yday)
    past = candles.filter(pl.col("ts") < y_end)
    inp = engine_input(past.filter(pl.col("ts") >= y_start - 20 * DAY), 60, reference)
    labels = triple_barrier(past, y_start - 8 * DAY, y_start, LABEL_SPEC, H)
    outcomes = outcomes_from_labels(labels)
    regimes = classify_rules(past, _thin_rules(60))
    meta, _ = update_meta(
        registry,
        None,
        yday,
        EngineInput(inp.frame.filter(pl.col("ts") < y_start), 60),
        (y_start - DAY, y_start),
        outcomes.filter(pl.col("ts") >= y_start - DAY),
        (y_start - 7 * DAY, y_start - DAY),
        outcomes,
        regimes,
        _signal_spec(),
    )
    return meta


def test_engine_signals_are_causal_cold_and_warm(long_avax, warm_meta):
    candles, reference = long_avax
    registry = EngineRegistry.default()
    start, end = day_bounds_ms(SIGNAL_DAY)
    cuts = cuts_in_day(candles, start, end, n=3)
    assert warm_meta.gate["enabled"].any()  # the warm state really combines something
    for meta in (MetaState.cold(list(registry.names())), warm_meta):
        build = _day_signals_builder(reference, SIGNAL_DAY, meta, registry)
        out = build(candles)
        assert out.height == 24
        assert_causal(build, candles, cuts)
    assert out["combined_voters"].sum() > 0 and out["combined_score"].abs().sum() > 0  # warm: it combines


def test_the_signal_check_catches_a_leaky_engine(long_avax):
    candles, reference = long_avax
    registry = EngineRegistry.default()
    start, end = day_bounds_ms(SIGNAL_DAY)
    honest = _day_signals_builder(reference, SIGNAL_DAY, MetaState.cold(list(registry.names())), registry)

    def leaky(c: pl.DataFrame) -> pl.DataFrame:  # the costs of the next bar
        out = honest(c)
        return out.with_columns(pl.col("total_bps").shift(-1))

    assert causality_violations(leaky, candles, cuts_in_day(candles, start, end, n=2), perturbations=("scale",))


# ------------------------------------------------------------------------------------------- model matrices

ENGINES = list(EngineRegistry.default().names())
FEATURES = list(default_recipe().names)


def _products(c: pl.DataFrame, reference: pl.DataFrame, days: list[date], meta: MetaState):
    """features, engine_signals and labels of ``days`` built from candles ``c`` as the assets build them."""
    registry, spec, rules = EngineRegistry.default(), _signal_spec(), _thin_rules(60)
    first, _ = day_bounds_ms(days[0] - timedelta(days=CALIBRATION_DAYS + ENGINE_WARMUP_DAYS))
    _, last_end = day_bounds_ms(days[-1])
    inp = engine_input(c.filter((pl.col("ts") >= first) & (pl.col("ts") < last_end)), 60, reference)
    features = features_for_window(c, default_recipe(), day_bounds_ms(days[0])[0], last_end, reference)
    regimes = classify_rules(c, rules)
    signals = []
    for d in days:
        outcomes = outcomes_from_labels(_labels_before(c, d, CALIBRATION_DAYS))
        out, _ = day_signals(registry, inp, *day_bounds_ms(d), outcomes, regimes, meta.state, meta.gate, spec)
        signals.append(out)
    labels = triple_barrier(c, day_bounds_ms(days[0])[0], last_end, LABEL_SPEC, H)  # labels[days + 1]
    return features, pl.concat(signals), labels


def test_inference_matrix_is_causal(long_avax, warm_meta):
    candles, reference = long_avax
    start, end = day_bounds_ms(SIGNAL_DAY)

    def build(c: pl.DataFrame) -> pl.DataFrame:
        features, signals, _ = _products(c, reference, [SIGNAL_DAY], warm_meta)
        frame = inference_frame(features, signals, start, end, FEATURES, ENGINES)
        columns = [*FEATURES, *signal_feature_names(ENGINES)]
        return pl.DataFrame(matrix(frame, columns), schema=columns, orient="row").with_columns(ts=frame["ts"])

    assert_causal(build, candles, cuts_in_day(candles, start, end, n=3))


def test_training_matrix_is_causal_except_for_labels_that_resolve_later(long_avax, warm_meta):
    """Training window [D-2, D+1) with cuts inside D. A row at t0 <= cut keeps its model inputs (features, engine
    signals, the entry's cost: a fill at t0's close with these labels); its label may resolve differently, and the
    row may leave or join the window with it. A row resolved by the cut (t1 <= cut, its exit bar's close) keeps
    everything, its membership included."""
    candles, reference = long_avax
    days = [SIGNAL_DAY - timedelta(days=2), SIGNAL_DAY - timedelta(days=1), SIGNAL_DAY]
    lo, hi = day_bounds_ms(days[0])[0], day_bounds_ms(SIGNAL_DAY)[1]
    inputs = [*FEATURES, *signal_feature_names(ENGINES), "entry_fee_bps", "entry_spread_bps", "entry_slippage_bps"]

    def train(c: pl.DataFrame, leak: bool = False) -> pl.DataFrame:
        features, signals, labels = _products(c, reference, days, warm_meta)
        if leak:  # the features of the exit bar joined to the entry: knows the future
            exits = labels.select("ts", "touch_ts").drop_nulls()
            features = exits.join(features.rename({"ts": "touch_ts"}), on="touch_ts").drop("touch_ts")
        frame = training_frame(
            features, signals, labels, lo, hi, H, FEATURES, ENGINES, horizon_ms=LABEL_SPEC.horizon_ms(H)
        )
        columns = [*BASE_COLUMNS, *FEATURES, *signal_feature_names(ENGINES)]
        out = pl.DataFrame(matrix(frame, columns), schema=columns, orient="row")
        return out.with_columns(pl.col("t0", "t1").cast(pl.Int64))

    cuts = cuts_in_day(candles, *day_bounds_ms(SIGNAL_DAY), n=3)
    full = train(candles)
    assert full.height > 24 and full["y"].n_unique() == 2
    # model inputs of every row entered by the cut, in both builds
    assert_causal(train, candles, cuts, inputs, key="t0", same_rows=False)
    # everything of the rows resolved by the cut (their t1 <= cut), the set of them included
    resolved = [p for p in PERTURBATIONS if p != "drop"]
    assert_causal(train, candles, cuts, known_at="t1", key="t0", perturbations=resolved)
    # and the check can fail
    bad = causality_violations(lambda c: train(c, leak=True), candles, cuts[:2], inputs, key="t0", same_rows=False)
    assert bad and {v.column for v in bad} <= set(FEATURES)


def test_matrix_keeps_nan_and_order():
    frame = pl.DataFrame({"a": [1.0, None], "b": [np.nan, 2.0]})
    got = matrix(frame, ["b", "a"])
    assert np.isnan(got[0, 0]) and np.isnan(got[1, 1]) and got[0, 1] == 1.0 and got[1, 0] == 2.0
