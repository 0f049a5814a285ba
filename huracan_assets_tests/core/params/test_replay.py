"""The Engine's replay of strategy presets on real candles (``core/params/replay.py``): rewards are the trades that
closed within D, each preset's trader carries its own state, the posterior of D uses nothing after D, and the
controller decides the next day's preset deterministically.

A stand-in model gives P(up) from the last 3-bar return (causal, like a model's); costs are constant round trips;
regimes come from the real classifier on the same candles."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.market_data.candles import DAY_MS, day_bounds_ms
from huracan_assets.core.params import Controller, ControllerSpec, load_schemas
from huracan_assets.core.params import replay as rp
from huracan_assets.core.params.replay import (
    CONTEXT_FEATURES,
    ReplayError,
    bar_context,
    check_features,
    preset_spec,
    previous_states,
    replay_day,
    tomorrow,
)
from huracan_assets.core.shadow.trader import ShadowSpec, simulate
from huracan_assets.settings import strategy_schemas_dir
from huracan_assets_tests.core.params.replay_world import REPLAY_1H, coin_world

CANDLES = REPLAY_1H / "SOL_USDT.parquet"
BAR_MS = 3_600_000
BASE = ShadowSpec(respect_meta=False)
FIRST = date(2024, 7, 4)  # three days of warm-up before it (volatility, regimes)
DAYS = [FIRST + timedelta(days=i) for i in range(12)]


def _world() -> tuple[pl.DataFrame, pl.DataFrame]:
    return coin_world(CANDLES)


def _controllers(seed: int = 0) -> dict[str, Controller]:
    schemas = load_schemas(strategy_schemas_dir_bundled())
    return {name: Controller(schema, ControllerSpec(seed=seed)) for name, schema in schemas.items()}


def strategy_schemas_dir_bundled() -> Path:
    from huracan_assets.settings import load_settings

    return strategy_schemas_dir(load_settings("local"))


def _chain(bars: pl.DataFrame, regimes: pl.DataFrame, days=DAYS, controllers=None) -> dict[date, pl.DataFrame]:
    controllers = controllers or _controllers()
    context = bar_context(bars, regimes, BASE.vol_window, BASE.min_vol, BAR_MS)
    out, previous = {}, None
    for d in days:
        previous = out[d] = replay_day(controllers, "SOLUSDT", previous, bars, context, d, BASE, BAR_MS)
    return out


@pytest.fixture(scope="module")
def world():
    return _world()


@pytest.fixture(scope="module")
def chain(world):
    return _chain(*world)


def test_the_bundled_schemas_use_computed_features_and_their_presets_are_trader_fields():
    schemas = load_schemas(strategy_schemas_dir_bundled())
    check_features(schemas)
    for schema in schemas.values():
        for params in schema.presets.values():
            spec = preset_spec(BASE, params)
            assert all(getattr(spec, k) == v for k, v in params.items())


def test_unknown_features_and_fields_are_refused():
    schemas = load_schemas(strategy_schemas_dir_bundled())
    schema = schemas["trend_following"]
    funding = schema.features[0].model_copy(update={"name": "funding"})
    bad = schema.model_copy(update={"features": (*schema.features, funding)})
    with pytest.raises(ReplayError, match="funding"):
        check_features({"x": bad})
    with pytest.raises(ReplayError, match="does not have"):
        preset_spec(BASE, {"leverage": 3})


def test_each_day_learns_the_trades_that_closed_that_day_as_one_continuous_trader_would(world, chain):
    bars = world[0]
    controllers = _controllers()
    start, end = day_bounds_ms(DAYS[0])[0], day_bounds_ms(DAYS[-1])[1]
    cols = {c: bars[c].to_numpy() for c in bars.columns}
    learned_any = 0
    for strategy, controller in controllers.items():
        for preset_id, params in controller.presets.items():
            whole = simulate(
                cols["ts"], cols["open"], cols["high"], cols["low"], cols["close"], cols["p"],
                cols["combined_raw_direction"], cols["fee_bps"], cols["spread_bps"], cols["slippage_bps"], start, end,
                preset_spec(BASE, params), BAR_MS, carry=True,
            ).trades  # fmt: skip
            n_before = 0
            for d in DAYS:
                row = (
                    chain[d]
                    .filter((pl.col("strategy") == strategy) & (pl.col("preset_id") == preset_id))
                    .row(0, named=True)
                )
                lo, hi = day_bounds_ms(d)
                closed = whole.filter(pl.col("exit_ts").is_between(lo, hi - 1))
                assert row["trades"] == closed.height, (strategy, preset_id, d)
                assert row["net_bps_sum"] == pytest.approx(float(closed["net_bps"].sum()), abs=1e-9)
                assert row["n"] == n_before + row["learned"]  # the posterior moved by D's learned trades only
                n_before = row["n"]
                learned_any += row["learned"]
    assert learned_any > 50  # the replay learns: enough trades with a full context on real bars


def test_only_the_preset_in_force_moves_the_reward_path(chain):
    cum = {}
    for d in DAYS:
        frame = chain[d]
        for strategy in frame["strategy"].unique().to_list():
            rows = frame.filter(pl.col("strategy") == strategy)
            state = json.loads(rows.filter(pl.col("chosen"))["state"][0])
            in_force = rows.filter(pl.col("in_force"))
            assert in_force.height == 1 and rows.filter(pl.col("chosen")).height == 1
            # every trade has its context here (three days of warm-up): the in-force preset's rewards are summed
            assert (rows["learned"] == rows["trades"]).all()
            expected = cum.get(strategy, 0.0) + in_force["net_bps_sum"][0]
            assert state["cum_reward"] == pytest.approx(expected, abs=1e-6)
            cum[strategy] = state["cum_reward"]
    first = chain[DAYS[0]].filter(pl.col("in_force"))
    assert set(first["preset_id"]) == {"safe"}  # a new coin starts on each schema's safe preset


def test_the_same_inputs_give_the_same_posteriors_and_choices(world, chain):
    again = _chain(*world)
    for d in DAYS:
        assert again[d].equals(chain[d])
    other = _chain(*world, controllers=_controllers(seed=1))
    # another seed draws other LinTS samples; the posteriors (data) stay the same
    assert [other[d]["n"].to_list() for d in DAYS] == [chain[d]["n"].to_list() for d in DAYS]


def _perturbed_after(world, day: date, seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every bar, probability, cost and regime after ``day`` replaced by noise."""
    bars, regimes = world
    cut = day_bounds_ms(day)[1]
    rng = np.random.default_rng(seed)
    later = pl.col("ts") >= cut
    n = bars.height
    noise = pl.Series(rng.uniform(0.5, 2.0, n))
    bars = bars.with_columns(
        *[pl.when(later).then(pl.col(c) * noise).otherwise(pl.col(c)) for c in ("open", "close")],
        high=pl.when(later).then(pl.max_horizontal("open", "close") * noise * 2).otherwise(pl.col("high")),
        low=pl.when(later).then(pl.min_horizontal("open", "close") * 0.3).otherwise(pl.col("low")),
        p=pl.when(later).then(pl.Series(rng.uniform(0, 1, n))).otherwise(pl.col("p")),
        spread_bps=pl.when(later).then(pl.lit(0.5)).otherwise(pl.col("spread_bps")),
    )
    bars = bars.with_columns(
        high=pl.max_horizontal("open", "close", "high"), low=pl.min_horizontal("open", "close", "low")
    )
    regimes = regimes.with_columns(
        regime=pl.when(pl.col("ts") >= cut).then(pl.lit("PANIC")).otherwise(pl.col("regime")),
        efficiency_ratio=pl.when(pl.col("ts") >= cut).then(pl.lit(0.99)).otherwise(pl.col("efficiency_ratio")),
    )
    return bars, regimes


def test_the_posterior_of_d_does_not_move_when_everything_after_d_changes(world, chain):
    d = DAYS[6]
    bars, regimes = _perturbed_after(world, d)
    assert not bars.equals(world[0])
    perturbed = _chain(bars, regimes, days=DAYS[:7])
    for day in DAYS[:7]:
        assert perturbed[day].equals(chain[day]), day
    later = _chain(bars, regimes, days=DAYS[:8])[DAYS[7]]
    assert not later.equals(chain[DAYS[7]])  # the perturbation is strong enough to move D+1


def test_a_planted_window_past_d_is_caught(world, chain, monkeypatch):
    """Plant the leak once: trades closing on D+1 counted in D. The no-look-ahead comparison must fail."""
    d = DAYS[6]
    real = rp.day_bounds_ms
    monkeypatch.setattr(rp, "day_bounds_ms", lambda day: (real(day)[0], real(day)[1] + (DAY_MS if day == d else 0)))
    leaky = _chain(*world, days=DAYS[:7])
    perturbed = _chain(*_perturbed_after(world, d), days=DAYS[:7])
    assert not perturbed[d].equals(leaky[d])


def test_a_planted_context_from_the_next_bar_is_caught(world):
    """Plant the leak once: a bar's context read from the next bar. The comparison must fail."""
    d = DAYS[6]

    def leaky(*args, **kwargs):
        frame = bar_context(*args, **kwargs)
        return frame.with_columns([pl.col(c).shift(-1) for c in CONTEXT_FEATURES])

    bars, regimes = world
    pbars, pregimes = _perturbed_after(world, d)
    context = leaky(bars, regimes, BASE.vol_window, BASE.min_vol, BAR_MS)
    pcontext = leaky(pbars, pregimes, BASE.vol_window, BASE.min_vol, BAR_MS)
    assert not context.filter(pl.col("ts") < day_bounds_ms(d)[1]).equals(
        pcontext.filter(pl.col("ts") < day_bounds_ms(d)[1])
    )
    clean = bar_context(bars, regimes, BASE.vol_window, BASE.min_vol, BAR_MS)
    pclean = bar_context(pbars, pregimes, BASE.vol_window, BASE.min_vol, BAR_MS)
    cut = pl.col("ts") < day_bounds_ms(d)[1]
    assert clean.filter(cut).equals(pclean.filter(cut))


def test_the_context_is_built_from_each_bar_and_the_bars_before_it(world):
    bars, regimes = world
    context = bar_context(bars, regimes, BASE.vol_window, BASE.min_vol, BAR_MS)
    assert context.columns == ["ts", *CONTEXT_FEATURES]
    late = context.filter(pl.col("ts") >= day_bounds_ms(FIRST)[0])
    assert late.null_count().sum_horizontal()[0] == 0  # three days in, every feature is known
    shares = late.select(list(rp.REGIME_SHARES)).sum_horizontal()
    assert ((shares >= 0) & (shares <= 1 + 1e-12)).all()
    first = context.filter(pl.col("ts") < bars["ts"][0] + DAY_MS - BAR_MS)
    assert first["regime_trend"].is_null().all()  # no full trailing day yet: unknown, not a partial share


def test_tomorrows_preset_names_its_reason_and_numbers(chain):
    last = chain[DAYS[-1]]
    plan = tomorrow(last)
    assert set(plan) == set(last["strategy"])
    for strategy, item in plan.items():
        assert item["preset"] in item["means_bps"]
        assert item["reason"] in ("explore", "exploit", "hysteresis-hold", "daily-limit", "kill-switch")
        assert sum(item["observations"].values()) > 0
        assert json.loads(last.filter(pl.col("chosen") & (pl.col("strategy") == strategy))["features"][0])


def test_a_corrupt_previous_frame_is_an_error_not_a_fresh_start(chain):
    frame = chain[DAYS[0]].with_columns(chosen=pl.lit(False))
    with pytest.raises(ReplayError, match="chosen rows"):
        previous_states(frame)
    assert previous_states(None) == {}


def test_a_position_carried_over_midnight_is_learned_at_the_context_of_the_day_it_was_opened(world):
    """As the asset reads them: each day's bars start ``vol_days`` before D and its regimes on D-1, so a signal
    bar of D-1 has no full trailing day of regimes in D's inputs. The context carried with the open position
    stands in: every trade is learned, the ones opened before midnight included."""
    bars, regimes = world
    controllers, previous, carried_over = _controllers(), None, 0
    for d in DAYS:
        lo, hi = day_bounds_ms(d)
        day_bars = bars.filter(pl.col("ts").is_between(lo - 2 * DAY_MS, hi - 1))
        day_regimes = regimes.filter(pl.col("ts").is_between(lo - DAY_MS, hi - 1))
        context = bar_context(day_bars, day_regimes, BASE.vol_window, BASE.min_vol, BAR_MS)
        frame = replay_day(controllers, "SOLUSDT", previous, day_bars, context, d, BASE, BAR_MS)
        assert (frame["learned"] == frame["trades"]).all(), d
        if previous is not None:
            carried_over += previous["open_context"].is_not_null().sum()
        previous = frame
    assert carried_over > 5  # positions did stay open over midnight
