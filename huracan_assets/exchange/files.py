"""A candle source over a local folder ``DIR/<timeframe>/<BASE>_<QUOTE>.parquet``.

The embedded default's exchange: the bundled real sample, or any folder in the same format
(``../shared/data/ohlcv/binance_spot`` is one). It answers only what was known at the time asked
about: listings and volumes are computed from bars that opened before the as-of instant. Every file is a
market, whenever its data end (a folder has no exchange status).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import polars as pl

from huracan_assets.core.market_data.candles import CANDLE_COLUMNS, CANDLE_SCHEMA, TIMEFRAME_MINUTES


class ExchangeError(RuntimeError):
    pass


class BadSymbol(ExchangeError):
    pass


@dataclass(frozen=True)
class Market:
    """One market, listed or delisted: ``active`` and ``status`` are what the exchange says now (Binance:
    ``TRADING``, or ``BREAK`` for a halted or delisted symbol, whose history it still serves). A past date's
    universe reads bars, never today's status."""

    symbol: str  # partition key form, BTCUSDT
    base: str
    quote: str
    path: Path | None = None
    active: bool = True
    status: str | None = None

    @property
    def exchange_symbol(self) -> str:
        return f"{self.base}/{self.quote}"


class MarketCatalog:
    """What every candle source shares: a cached ``markets`` map by partition key, refreshed per run."""

    markets: dict[str, Market]

    def refresh(self) -> None:
        """Forget the cached markets (new listings, delistings): called at the start of each run."""
        self.__dict__.pop("markets", None)

    def market(self, symbol: str) -> Market:
        try:
            return self.markets[symbol]
        except KeyError:
            raise BadSymbol(f"{symbol} is not a market of {self.describe()}") from None

    def describe(self) -> str:
        raise NotImplementedError


class FilesExchange(MarketCatalog):
    def __init__(self, data_dir: str | Path, timeframe: str, quote: str | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser()
        self.timeframe = timeframe
        self.quote = quote
        folder = self.data_dir / timeframe
        if not folder.is_dir():
            raise ExchangeError(f"no candle folder {folder}: expected DIR/<timeframe>/<BASE>_<QUOTE>.parquet")
        self.folder = folder
        self.bar_ms = TIMEFRAME_MINUTES[timeframe] * 60_000

    @cached_property
    def markets(self) -> dict[str, Market]:
        markets = {}
        for path in sorted(self.folder.glob("*.parquet")):
            base, sep, quote = path.stem.partition("_")
            if not sep or not base or not quote:
                continue
            if self.quote and quote != self.quote:
                continue
            markets[f"{base}{quote}"] = Market(symbol=f"{base}{quote}", base=base, quote=quote, path=path)
        return markets

    def describe(self) -> str:
        return str(self.folder)

    def _scan(self, symbol: str) -> pl.LazyFrame:
        path = self.market(symbol).path
        scan = pl.scan_parquet(path)
        names = scan.collect_schema().names()
        missing = [c for c in CANDLE_COLUMNS if c not in names]
        if missing:
            raise ExchangeError(f"{path} lacks columns {missing}")
        return scan.select([pl.col(c).cast(t) for c, t in CANDLE_SCHEMA.items()])

    def now_ms(self) -> int | None:
        """A folder has no clock: every bar in it is closed."""
        return None

    def fetch_ohlcv(self, symbol: str, start_ms: int, end_ms: int, *, now_ms: int | None = None) -> pl.DataFrame:
        """Bars whose open is in ``[start_ms, end_ms)`` (and, given ``now_ms``, closed by then)."""
        if now_ms is not None:
            end_ms = min(end_ms, now_ms - self.bar_ms + 1)
        return self._scan(symbol).filter((pl.col("ts") >= start_ms) & (pl.col("ts") < end_ms)).collect()

    def listing_stats(
        self, as_of_ms: int, lookback_ms: int, *, through_ms: int | None = None
    ) -> tuple[pl.DataFrame, dict[str, str]]:
        """Per market listed before ``through_ms`` (default ``as_of_ms``): ``first_bar_ts``, ``last_bar_ts`` (the
        last bar in ``[as_of_ms - lookback_ms, through_ms)``, null if none), and the trailing ``quote_volume`` and
        ``spread_bps`` of the bars in ``[as_of_ms - lookback_ms, as_of_ms)`` (:data:`STATS_SCHEMA`).

        Nothing at or after ``through_ms`` is read (no look-ahead). Returns the stats and ``{symbol: error}``
        for markets that could not be read, so one bad file leaves that coin out instead of failing the whole
        universe.
        """
        through = as_of_ms if through_ms is None else through_ms
        rows, errors = [], {}
        for symbol in self.markets:
            try:
                known = self._scan(symbol).filter(pl.col("ts") < through)
                first = known.select(pl.col("ts").min()).collect().item()
                recent = known.filter(pl.col("ts") >= as_of_ms - lookback_ms).collect()
            except Exception as exc:
                errors[symbol] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                continue
            if first is not None:
                rows.append(stats_row(symbol, first, recent, as_of_ms))
        return stats_frame(rows), errors

    def first_bars(self) -> dict[str, int]:
        """Each readable market's first bar open (ms); unreadable files are reported by ``listing_stats``."""
        out = {}
        for symbol in self.markets:
            try:
                first = self._scan(symbol).select(pl.col("ts").min()).collect().item()
            except Exception:
                continue
            if first is not None:
                out[symbol] = int(first)
        return out

    def listed_after(self, through_ms: int) -> list[str]:
        """Markets whose first bar opens at or after ``through_ms`` (listed later)."""
        return sorted(s for s, first in self.first_bars().items() if first >= through_ms)

    def coverage(self) -> tuple[int, int] | None:
        """(first, last) bar open over all markets, or ``None`` for an empty folder."""
        firsts, lasts = [], []
        for symbol in self.markets:
            try:
                span = self._scan(symbol).select(pl.col("ts").min().alias("a"), pl.col("ts").max().alias("b")).collect()
            except Exception:  # an unreadable file is reported by the universe, not here
                continue
            if span["a"][0] is not None:
                firsts.append(span["a"][0])
                lasts.append(span["b"][0])
        return (min(firsts), max(lasts)) if firsts else None


STATS_SCHEMA = {
    "symbol": pl.String,
    "first_bar_ts": pl.Int64,
    "last_bar_ts": pl.Int64,
    "quote_volume": pl.Float64,
    "spread_bps": pl.Float64,
}


def stats_row(symbol: str, first_bar_ts: int, recent: pl.DataFrame, as_of_ms: int) -> dict:
    """One market's listing stats from its bars of ``[as_of_ms - lookback, through)``: the ranking reads only
    those before ``as_of_ms``; the last bar says whether it still traded after."""
    from huracan_assets.core.market_data.universe import spread_estimate_bps

    ranked = recent.filter(pl.col("ts") < as_of_ms)
    return {
        "symbol": symbol,
        "first_bar_ts": int(first_bar_ts),
        "last_bar_ts": int(recent["ts"].max()) if recent.height else None,  # type: ignore[arg-type]
        "quote_volume": float((ranked["close"] * ranked["volume"]).sum()) if ranked.height else 0.0,
        "spread_bps": spread_estimate_bps(ranked),
    }


def stats_frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=STATS_SCHEMA)
