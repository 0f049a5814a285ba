"""Universe selection: the coins that traded on D, ranked on what was known before D (no look-ahead, no
survivorship).

Members: every coin with a bar on D, whatever the exchange says about it today, so a backfill of a past date
sees the coins delisted since, up to their last day. Rank: trailing quote volume and an estimated spread over
the ``rank_lookback_days`` before D (bars up to the end of D-1: D's own trading never moves the ranking), then
listing age. Explicitly named coins (``--symbols``, the Telegram selector) bypass the ranking filters but must
have traded on D.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from huracan_assets.core.market_data.candles import DAY_MS
from huracan_assets.core.spreads import BPS, corwin_schultz_pairs

UNIVERSE_SCHEMA = {
    "symbol": pl.String,
    "rank": pl.Int32,
    "quote_volume": pl.Float64,
    "spread_bps": pl.Float64,
    "first_bar_ts": pl.Int64,
    "history_days": pl.Float64,
    "selected": pl.Boolean,
    "reason": pl.String,
}


def spread_estimate_bps(bars: pl.DataFrame) -> float:
    """Corwin–Schultz (2012) high-low spread estimate, in bps, averaged over consecutive bar pairs.

    The mean of the defined pair estimates of :func:`huracan_assets.core.spreads.corwin_schultz_pairs` (bars
    sorted by ``ts``): negative pair estimates are set to zero, as in the paper, and flat bars (no trades)
    contribute zero; a pair with a missing, non-positive or inverted (high < low) bar is left out. Returns NaN
    with fewer than two bars or no defined pair.
    """
    if bars.height < 2:
        return float("nan")
    frame = bars.sort("ts")
    with np.errstate(invalid="ignore", over="ignore"):  # an infinite price: its pairs are NaN, left out
        pairs = corwin_schultz_pairs(frame["high"], frame["low"])
    defined = pairs[~np.isnan(pairs)]
    return float(defined.mean() * BPS) if defined.size else float("nan")


@dataclass(frozen=True)
class UniverseRules:
    max_symbols: int = 400
    min_history_days: float = 1.0
    min_quote_volume: float = 0.0  # trailing window, in quote currency
    max_spread_bps: float = float("inf")


def rejection(rules: UniverseRules) -> pl.Expr:
    """Why a ranked coin fails the filters (null: it passes), from ``history_days``, ``quote_volume`` and
    ``spread_bps``: the columns of the stored universe, so the filters can be re-applied to it later."""
    return (
        pl.when(pl.col("history_days") < rules.min_history_days)
        .then(pl.lit(f"history < {rules.min_history_days:g} days"))
        .when(pl.col("quote_volume") < rules.min_quote_volume)
        .then(pl.lit(f"quote volume < {rules.min_quote_volume:g}"))
        .when(pl.col("spread_bps").fill_nan(None).fill_null(0.0) > rules.max_spread_bps)
        .then(pl.lit(f"spread > {rules.max_spread_bps:g} bps"))
    )


def rank_universe(
    stats: pl.DataFrame,
    *,
    as_of_end_ms: int,
    rules: UniverseRules,
    explicit: tuple[str, ...] | None = None,
    day_start_ms: int | None = None,
    later: Iterable[str] = (),
) -> pl.DataFrame:
    """Rank by trailing quote volume and select the top ``max_symbols`` that pass every filter.

    ``stats`` has one row per market listed before ``as_of_end_ms``: ``symbol``, ``quote_volume``,
    ``first_bar_ts`` and optionally ``spread_bps`` (the exchanges' ``listing_stats``, whose volume and spread
    cover the days before D). Listing age is measured at ``as_of_end_ms``. Given ``day_start_ms``, only the
    coins whose ``last_bar_ts`` is at or after it are members: those that traded on D, delisted since or not;
    a coin whose data ended before D is not in D's universe at all.
    """
    gone: set[str] = set()
    if day_start_ms is not None:
        if "last_bar_ts" not in stats.columns:
            raise ValueError("rank_universe with day_start_ms needs the stats' last_bar_ts column")
        traded = pl.col("last_bar_ts").is_not_null() & (pl.col("last_bar_ts") >= day_start_ms)
        gone = set(stats.filter(~traded)["symbol"].to_list())
        stats = stats.filter(traded)
    if "spread_bps" not in stats.columns:
        stats = stats.with_columns(spread_bps=pl.lit(None, dtype=pl.Float64))
    frame = stats.with_columns(
        history_days=((as_of_end_ms - pl.col("first_bar_ts")) / DAY_MS).cast(pl.Float64),
    ).sort(["quote_volume", "symbol"], descending=[True, False])
    frame = frame.with_columns(rank=pl.int_range(1, frame.height + 1, dtype=pl.Int32))
    if explicit is not None:
        return _explicit(frame, explicit, gone)
    frame = frame.with_columns(reject=rejection(rules))
    # markets the exchange lists later than D (``later``): not coins of D, said with a reason
    later = sorted(set(later) - set(stats["symbol"].to_list()) - gone)
    if later:
        frame = pl.concat(
            [
                frame,
                pl.DataFrame({"symbol": later, "reject": ["not listed as of D (its first bar is later)"] * len(later)}),
            ],
            how="diagonal_relaxed",
        )
    frame = frame.with_columns(eligible_rank=pl.when(pl.col("reject").is_null()).then(pl.col("rank")))
    frame = frame.with_columns(top=pl.col("eligible_rank").rank("ordinal") <= rules.max_symbols)
    frame = frame.with_columns(
        selected=pl.col("top").fill_null(False),
        reason=pl.when(pl.col("reject").is_not_null())
        .then(pl.col("reject"))
        .when(pl.col("top"))
        .then(pl.lit("top by quote volume"))
        .otherwise(pl.lit(f"below top {rules.max_symbols}")),
    )
    return frame.select([pl.col(c).cast(t) for c, t in UNIVERSE_SCHEMA.items()])


def _explicit(
    frame: pl.DataFrame, explicit: tuple[str, ...], gone: set[str] | frozenset[str] = frozenset()
) -> pl.DataFrame:
    named = pl.col("symbol").is_in(list(explicit))
    frame = frame.with_columns(
        selected=named, reason=pl.when(named).then(pl.lit("named explicitly")).otherwise(pl.lit("not named"))
    )
    listed = set(frame["symbol"].to_list())
    unlisted = [s for s in explicit if s not in listed]
    if unlisted:
        reasons = ["no bar on D (halted or delisted)" if s in gone else "not listed as of D" for s in unlisted]
        extra = pl.DataFrame({"symbol": unlisted, "selected": [False] * len(unlisted), "reason": reasons})
        frame = pl.concat([frame, extra], how="diagonal_relaxed")
    return frame.select([pl.col(c).cast(t) for c, t in UNIVERSE_SCHEMA.items()])


def parse_selector(document: dict) -> tuple[str, ...] | None:
    """Symbols named by ``control/symbols_selector.json`` (written by the Telegram bot), or None.

    Accepted shape: ``{"symbols": ["BTCUSDT", ...], ...}``; an empty or missing list means "no
    override". Anything else is an error, so a corrupt selector never silently empties the universe.
    """
    if not isinstance(document, dict):
        raise ValueError("symbols selector must be a JSON object")
    symbols = document.get("symbols")
    if symbols is None or symbols == []:
        return None
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s.strip() for s in symbols):
        raise ValueError("symbols selector 'symbols' must be a list of non-empty strings")
    out: list[str] = []
    for s in symbols:
        key = "".join(ch for ch in s.upper() if ch.isascii() and ch.isalnum())
        if not key:
            raise ValueError(f"symbols selector names no coin in {s!r}")
        if key not in out:
            out.append(key)
    return tuple(out)


def selector_as_of(current: dict | None, versions: list[dict], cutoff_ms: int) -> dict | None:
    """The selector document that applies to a day whose run starts at ``cutoff_ms``: the newest version with
    an ``at`` time (ISO 8601; the Telegram bot's documents) before the cutoff, so a backfill of an old date
    keeps the selection of its time and a new command never rewrites the past. A ``current`` document without
    ``at`` (written by hand) applies to every day, as before. None: no override that day."""
    if current is not None and not current.get("at"):
        return current
    dated = [d for d in [*versions, *([current] if current else [])] if d.get("at")]
    best, best_ms = None, None
    for doc in dated:
        try:
            at = datetime.fromisoformat(str(doc["at"]))
        except ValueError:
            continue
        at_ms = int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000)
        if at_ms <= cutoff_ms and (best_ms is None or at_ms >= best_ms):
            best, best_ms = doc, at_ms
    return best
