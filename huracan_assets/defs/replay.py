"""The truncation canary's wiring: a coin's training matrix rebuilt from raw candles cut at the window's end.

``specs.replay_spec`` gathers the settings the daily assets use; ``candle_days_needed`` is how far back the rebuild
reads; ``rebuilt_training_frame`` loads the coin's stored candles (and the reference coin's) of the days
before the cut, replays features -> regimes -> labels -> meta weights -> engine signals through
:class:`CoinReplay` (the pure functions the assets call), and returns the training frame of the window.
``truncation_canary`` compares it with the frame built from the stored assets: any difference is a stored
row that depends on data after the window (or a pipeline that no longer reproduces itself).
"""

from datetime import date, timedelta

import numpy as np
import polars as pl

from huracan_assets.core.engines.signals import MetaState
from huracan_assets.core.market_data.candles import DAY_MS, date_range
from huracan_assets.core.pipeline.replay import CoinReplay
from huracan_assets.core.training.dataset import Windows
from huracan_assets.names import join_key
from huracan_assets.settings import Settings
from huracan_assets.specs import replay_lead_days, replay_spec
from huracan_assets.storage.partitioned import PartitionWindow, reference_closes


def spread_days_needed(settings: Settings) -> tuple[int, int]:
    """The spreads window of the challenger op for the canary: the candles' window and the days of daily spreads
    the first replayed signals read before it."""
    before, after = candle_days_needed(settings)
    return before + settings.costs.spread_days, after


def candle_days_needed(settings: Settings) -> tuple[int, int]:
    """The candles window of the challenger op for the canary, as (days before D, days after D): from the
    replay's first day to the last day before the training window's end."""
    w = settings.windows
    before = w.shadow_days + w.training_days + replay_lead_days(settings)
    return before, -(w.shadow_days + w.embargo_days + 1)


def _store_days(store, asset: str, symbol: str | None, days: list[date]) -> dict[date, pl.DataFrame]:
    keys = [join_key(d, symbol) if symbol else d.isoformat() for d in days]
    window = PartitionWindow(store, asset, keys)
    return {d: window[k] for d, k in zip(days, keys, strict=True) if window.status(k).status == "ok"}


def coin_replay(
    settings: Settings,
    store,
    candles: PartitionWindow,
    meta_weights: PartitionWindow,
    spreads: PartitionWindow,
    symbol: str,
    win: Windows,
) -> CoinReplay:
    """A :class:`CoinReplay` of ``symbol`` given only the candles (and daily spreads) of the days before ``win``'s
    training end."""
    first_train = date(1970, 1, 1) + timedelta(days=win.training_start_ms // DAY_MS)
    last = date(1970, 1, 1) + timedelta(days=win.training_end_ms // DAY_MS - 1)  # the last day before the cut
    days = date_range(first_train - timedelta(days=replay_lead_days(settings)), last)
    coin = _window_days(candles, symbol, days)
    reference = reference_closes(store, settings.universe.reference_symbol, days)
    seed_day = first_train - timedelta(days=1)
    seed_key = join_key(seed_day, symbol)
    seed = None
    if seed_key in meta_weights and meta_weights.status(seed_key).status == "ok":
        seed = MetaState.from_frame(meta_weights[seed_key])
    cut = {d: f for d, f in coin.items() if d <= last}
    # the signals of the window's first days read the spreads of up to spread_days (+ the gate) before them
    spread_days = date_range(days[0] - timedelta(days=settings.costs.spread_days), last)
    daily_spreads = _window_days(spreads, symbol, spread_days)
    spec = replay_spec(settings)
    return CoinReplay(cut, reference, spec, (seed_day, seed), daily_spreads)


def _window_days(window: PartitionWindow, symbol: str, days: list[date]) -> dict[date, pl.DataFrame]:
    """The usable objects of ``symbol`` on ``days`` in a declared input window, by day."""
    out = {}
    for d in days:
        key = join_key(d, symbol)
        if key in window and window.status(key).status == "ok":
            out[d] = window[key]
    return out


def compare_frames(stored: pl.DataFrame, rebuilt: pl.DataFrame) -> dict:
    """``passed`` iff both frames hold the same rows, columns and values (NaN equals NaN, null equals null)."""
    if stored.columns != rebuilt.columns:
        return {"passed": False, "reason": "columns differ", "n_diff": None}
    if stored.height != rebuilt.height:
        only_stored = stored.join(rebuilt.select("t0"), on="t0", how="anti").height
        only_rebuilt = rebuilt.join(stored.select("t0"), on="t0", how="anti").height
        return {
            "passed": False,
            "reason": f"{stored.height} stored rows vs {rebuilt.height} rebuilt "
            f"({only_stored} only stored, {only_rebuilt} only rebuilt)",
            "n_diff": None,
            "shape": [stored.height, stored.width],
        }
    a = stored.select(pl.all().cast(pl.Float64).fill_null(np.nan)).to_numpy()
    b = rebuilt.select(pl.all().cast(pl.Float64).fill_null(np.nan)).to_numpy()
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    cols = [c for c, bad in zip(stored.columns, differ.any(axis=0), strict=True) if bad]
    out = {"passed": not cols, "n_diff": int(differ.sum()), "shape": [stored.height, stored.width]}
    if cols:
        out["reason"] = f"{len(cols)} column(s) differ: {', '.join(cols[:8])}"
        out["columns"] = cols[:50]
    return out
