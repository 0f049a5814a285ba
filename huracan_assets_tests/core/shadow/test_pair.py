"""The shadow pair on real candles: ledgers advance a day at a time, never twice, and the champion is compared
only on bars after its training cutoff and its promotion."""

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from huracan_assets.core.market_data.candles import DAY_MS, day_bounds_ms
from huracan_assets.core.shadow.ledger import Ledger
from huracan_assets.core.shadow.pair import (
    ShadowBars,
    advance_ledger,
    carried_ledger,
    decision_pair,
    probabilities,
    simulate_bars,
)
from huracan_assets.core.shadow.trader import ShadowSpec

CANDLES = Path(__file__).resolve().parents[2] / "data" / "ohlcv" / "1h" / "ETH_USDT.parquet"
BAR_MS = 3_600_000
SPEC = ShadowSpec(threshold=0.02, net_edge_floor_bps=0.0, vol_window=24, max_holding_bars=6, cooldown_bars=0,
                  dedup_bars=0, respect_meta=False)  # fmt: skip


class Momentum:
    """A stand-in model with the models' interface: P(up) from the last 3-bar return (a real input column)."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-x[:, 0] * 400.0))


def _bars() -> ShadowBars:
    candles = pl.read_parquet(CANDLES).sort("ts")
    frame = candles.select("ts", "open", "high", "low", "close").with_columns(
        fee_bps=pl.lit(15.0), spread_bps=pl.lit(3.0), slippage_bps=pl.lit(2.0), combined_raw_direction=pl.lit(0.0)
    )
    start = (int(frame["ts"][0]) // DAY_MS + 2) * DAY_MS  # two days of the trader's volatility warm-up
    inputs = frame.select("ts", mom=pl.col("close").log().diff(3)).filter(pl.col("ts") >= start).drop_nulls()
    return ShadowBars(frame, inputs, start, int(frame["ts"][-1]) + BAR_MS)


def _day(ms: int) -> date:
    return date(1970, 1, 1) + timedelta(days=ms // DAY_MS)


def test_a_ledger_advanced_day_by_day_books_the_trades_of_one_continuous_run():
    bars = _bars()
    p = probabilities(Momentum(), ["mom"], bars)
    first, last = _day(bars.start_ms), _day(bars.end_ms - 1)
    ledger, closed = Ledger("challenger", since=first), []
    d = first
    while d <= last:
        ledger, trades = advance_ledger(ledger, p, bars, d, SPEC, BAR_MS)
        closed.append(trades)
        d += timedelta(days=1)
    whole = simulate_bars(bars, p, SPEC, BAR_MS, bars.start_ms, day_bounds_ms(last)[1], carry=True)
    daily = pl.concat([t for t in closed if t is not None and t.height])
    assert whole.trades.height >= 10  # the test means something: real trades on real bars
    assert daily["entry_ts"].to_list() == whole.trades["entry_ts"].to_list()
    assert np.allclose(daily["net_bps"].to_numpy(), whole.trades["net_bps"].to_numpy(), rtol=0, atol=1e-9)
    assert ledger.n_trades == whole.trades.height and ledger.last_day == last


def test_advancing_a_ledger_over_a_day_it_holds_changes_nothing():
    bars = _bars()
    p = probabilities(Momentum(), ["mom"], bars)
    d = _day(bars.start_ms) + timedelta(days=1)
    ledger, _ = advance_ledger(Ledger("challenger", since=d), p, bars, d, SPEC, BAR_MS)
    again, none = advance_ledger(ledger, p, bars, d, SPEC, BAR_MS)
    assert again is ledger and none is None
    earlier, none = advance_ledger(ledger, p, bars, d - timedelta(days=1), SPEC, BAR_MS)
    assert earlier is ledger and none is None


def test_the_champion_is_compared_from_its_training_cutoff_on_never_before():
    bars = _bars()
    p = probabilities(Momentum(), ["mom"], bars)
    first, last = _day(bars.start_ms), _day(bars.end_ms - 1)
    champion = Ledger("champion", since=first, model_id="ETH-champ")
    d = first
    while d <= last:
        champion, _ = advance_ledger(champion, p, bars, d, SPEC, BAR_MS)
        d += timedelta(days=1)
    cutoff = bars.start_ms + 5 * DAY_MS  # a refit that trained on the window's first five days
    challenger = simulate_bars(bars, p, SPEC, BAR_MS, bars.start_ms)
    row = {"model_id": "ETH-new", "canaries_passed": True}
    previous = {"champion_model_id": "ETH-champ"}
    pair = decision_pair(row, challenger, bars.start_ms, {"champion": champion}, previous, bars, SPEC.initial_equity,
                         champion_trained_until_ms=cutoff, champion_canaries_passed=True)  # fmt: skip
    stats = pair.champion_stats
    assert stats.compared_from_ms == cutoff and stats.trained_until_ms == cutoff
    net, returns, _ = champion.window(_day(cutoff))
    assert np.array_equal(stats.trade_net_bps, net) and returns.size == (last - _day(cutoff)).days + 1
    assert 0 < stats.n_trades < champion.n_trades  # the trades before the cutoff are left out
    assert pair.challenger_stats.compared_from_ms == bars.start_ms
    no_champion = decision_pair(row, challenger, bars.start_ms, {"champion": None}, None, bars, 1.0)
    assert no_champion.champion_stats is None


def test_a_champion_ledger_starts_the_day_after_its_promotion():
    d = date(2024, 3, 10)
    promoted = {"champion_model_id": "ETH-a", "champion_as_of": d - timedelta(days=1)}
    assert carried_ledger(promoted, "champion", d).since == d
    today = {"champion_model_id": "ETH-a", "champion_as_of": d}
    assert carried_ledger(today, "champion", d).since == d + timedelta(days=1)
    other = Ledger("champion", since=d - timedelta(days=3), model_id="ETH-old").to_json()
    replaced = {**promoted, "champion_ledger": other}  # a ledger of another model is not this champion's
    assert carried_ledger(replaced, "champion", d).model_id == "ETH-a"
    assert carried_ledger(None, "challenger", d) == Ledger("challenger", since=d)


def test_a_model_whose_inputs_the_graph_no_longer_makes_is_refused():
    with pytest.raises(ValueError, match="no longer makes"):
        probabilities(Momentum(), ["mom", "gone"], _bars(), "ETH-x")
