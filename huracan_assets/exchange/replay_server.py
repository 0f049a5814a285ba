"""A local Binance spot replay exchange: candle files served over Binance's REST shapes, as of a simulated clock.

The folder format is ``DIR/<timeframe>/<BASE>_<QUOTE>.parquet`` (columns ``ts`` = UTC epoch ms of the bar open,
``open high low close volume`` float64, volume in base units). The stock ``ccxt.binance`` client, with every URL of
``exchange.urls['api']`` rewritten to this server (:func:`point_ccxt_at`, :func:`binance_client`), can run
``load_markets()`` (default options: the futures ``exchangeInfo`` endpoints answer an empty list), ``fetch_time()``,
``fetch_ohlcv()`` page by page, ``fetch_ticker()``/``fetch_tickers()`` and ``fetch_bids_asks()``.

As-of clock (no look-ahead, no survivorship). The server has a simulated ``now`` (ms), set at start and changed at
runtime (``POST /_replay/clock``). By default it is the close of the last bar in the folder.

- ``/api/v3/time`` answers ``now``.
- ``/api/v3/exchangeInfo`` lists a symbol only once its first bar (over all timeframes) opened before ``now``. Status
  is ``TRADING``, or ``BREAK`` when the symbol's data ended more than ``stale_after_ms`` (3 days) before ``now`` (a
  delisted coin stays listed, inactive, as on Binance). Tick and step sizes are read from the decimals of the first
  bars before ``now``.
- ``/api/v3/klines`` returns bars that opened before ``now``. The bar containing ``now`` is returned as the still-open
  candle: its ``closeTime`` is after ``now``, but its values are the file's final values for that bar (no finer data
  is used to build a partial bar), so a client must drop it, as it must drop Binance's live candle.
- ``/api/v3/ticker/24hr`` (and ``bookTicker``, ``price``) use only complete bars (``open + interval <= now``) of the
  finest timeframe the folder has for the symbol, from the 24 hours before ``now``.

Estimated fields (the files hold OHLCV only): kline quote volume = ``close * volume``; trade count =
``round(quote volume / 250)`` (at least 1 when volume > 0); taker-buy share = ``0.2 + 0.6 * (close - low) / (high -
low)`` (0.5 for a flat bar). The ticker's bid/ask straddle the last price by a relative spread from the
Corwin–Schultz (2012) high-low estimator, averaged over the consecutive bar pairs of the 24 h window (negative
two-bar estimates set to 0, result capped at 5 %), rounded outwards to the tick (at least one tick apart); bid/ask
quantities are 1 % of the window's mean bar volume.

Fault injection for tests of a client's retry logic (``POST /_replay/faults``, ``DELETE /_replay/faults``). A fault
matches a path prefix and optionally a symbol, and fires on the next ``count`` matching requests, or with a
``probability`` drawn from ``random.Random(seed)``, or on every matching request when neither is given. Kinds:
``http_5xx`` (``status`` 503, body ``{"msg": "Service Unavailable."}``, override with ``body``), ``rate_limit_429``
(HTTP 429 or ``status`` 418, ``Retry-After: retry_after`` seconds, Binance's -1003 body), ``timeout`` (sleeps
``delay_s`` then answers normally), ``truncated_json`` (the first half of the body, as a complete HTTP 200 answer;
with ``cut_connection`` the full Content-Length is announced and the connection dropped after half), ``garbled_json``
(non-JSON bytes under HTTP 200), ``missing_bars`` (klines without the bars at ``open_times`` or a ``fraction`` of
them) and ``duplicate_bars`` (klines with the bars at ``open_times`` or a ``fraction`` of them repeated). Every API
request is logged on arrival: ``GET /_replay/requests`` returns counts per path and the recent entries.

What stock ccxt 4.5.90 raises (see the integration tests): 5xx with the default body -> ``ExchangeNotAvailable``
(a 5xx body carrying a Binance code such as -1001 -> ``OperationFailed``, not a ``NetworkError``); 429/418 ->
``DDoSProtection``; timeout -> ``RequestTimeout``; ``cut_connection`` -> ``NetworkError``. Truncated or garbled JSON
under HTTP 200 raises nothing: ccxt hands the raw text to its parsers, so ``fetch_ohlcv`` returns rows of ``None``,
``fetch_tickers`` fails with a plain ``AttributeError`` and ``load_markets(reload=True)`` leaves no markets. A
client has to validate what it gets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import random
import threading
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from aiohttp import web

log = logging.getLogger(__name__)

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
DAY_MS = 86_400_000
DEFAULT_KLINES_LIMIT = 500
MAX_KLINES_LIMIT = 1000
TRADE_SIZE_QUOTE = 250.0  # assumed mean trade size (quote units) for the estimated trade counts
MAX_SPREAD = 0.05
PRECISION_SAMPLE = 500  # bars used to read the tick and step sizes
FAULT_KINDS = (
    "http_5xx",
    "rate_limit_429",
    "timeout",
    "truncated_json",
    "garbled_json",
    "missing_bars",
    "duplicate_bars",
)
DATA_FAULTS = ("missing_bars", "duplicate_bars")
KLINES_PATHS = ("/api/v3/klines", "/api/v3/uiKlines")
CONTROL_PREFIX = "/_replay"


class ReplayError(Exception):
    """A Binance-style error answer: ``{"code": code, "msg": msg}`` with HTTP ``status``."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


def _invalid_symbol(detail: str = "") -> ReplayError:
    return ReplayError(-1121, "Invalid symbol." + (f" {detail}" if detail else ""))


def parse_time_ms(value: str | int | float | None) -> int | None:
    """Epoch ms from an int, a digit string, or an ISO 8601 date/time (naive means UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fmt(value: float, decimals: int = 8) -> str:
    """Binance-style decimal string (at least ``decimals`` digits) that round-trips to the same float."""
    text = repr(float(value))
    if "e" in text or "n" in text:
        if not math.isfinite(value):
            return "0." + "0" * decimals
        text = np.format_float_positional(value, unique=True, trim="0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(decimals, '0')}"


def _fmt_fixed(value: float, decimals: int) -> str:
    """A value already rounded to ``decimals`` places, padded to Binance's 8 places."""
    return _fmt(round(value, decimals), 8)


def _decimals(values: np.ndarray, max_decimals: int = 8) -> int:
    """The fewest decimals that represent every value (capped)."""
    values = values[np.isfinite(values)]
    for d in range(max_decimals + 1):
        scaled = values * 10.0**d
        if np.all(np.abs(scaled - np.rint(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled))):
            return d
    return max_decimals


@dataclass(frozen=True)
class SymbolFile:
    symbol: str  # Binance id, BTCUSDT
    base: str
    quote: str
    timeframe: str
    path: Path

    @property
    def unified(self) -> str:
        return f"{self.base}/{self.quote}"


class Bars:
    """One file as sorted numpy arrays; the estimated kline fields are computed per slice."""

    def __init__(self, frame: pl.DataFrame, bar_ms: int) -> None:
        frame = frame.select(
            pl.col("ts").cast(pl.Int64),
            *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
        )
        ts = frame["ts"].to_numpy()
        if len(ts) > 1 and not bool(np.all(np.diff(ts) > 0)):
            frame = frame.sort("ts").unique("ts", keep="last", maintain_order=True)
            ts = frame["ts"].to_numpy()
        self.bar_ms = bar_ms
        self.ts = ts
        self.open = frame["open"].to_numpy()
        self.high = frame["high"].to_numpy()
        self.low = frame["low"].to_numpy()
        self.close = frame["close"].to_numpy()
        self.volume = frame["volume"].to_numpy()
        self._cum_trades: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def first_open(self) -> int | None:
        return int(self.ts[0]) if len(self.ts) else None

    @property
    def last_close(self) -> int | None:
        return int(self.ts[-1]) + self.bar_ms if len(self.ts) else None

    def quote_volume(self, sl: slice) -> np.ndarray:
        return self.close[sl] * self.volume[sl]

    def trades(self, sl: slice) -> np.ndarray:
        estimate = np.maximum(1.0, np.rint(self.quote_volume(sl) / TRADE_SIZE_QUOTE))
        return np.where(self.volume[sl] > 0, estimate, 0.0).astype(np.int64)

    def trades_before(self, index: int) -> int:
        """Estimated trades in the bars before ``index`` (the ticker's first trade id)."""
        if self._cum_trades is None:
            self._cum_trades = np.concatenate([[0], np.cumsum(self.trades(slice(None)))])
        return int(self._cum_trades[index])

    def taker_share(self, sl: slice) -> np.ndarray:
        span = self.high[sl] - self.low[sl]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(span > 0, 0.2 + 0.6 * (self.close[sl] - self.low[sl]) / span, 0.5)

    def kline_rows(self, lo: int, hi: int) -> list[list]:
        sl = slice(lo, hi)
        qv = self.quote_volume(sl)
        share = self.taker_share(sl)
        columns = zip(
            self.ts[sl].tolist(),
            self.open[sl].tolist(),
            self.high[sl].tolist(),
            self.low[sl].tolist(),
            self.close[sl].tolist(),
            self.volume[sl].tolist(),
            qv.tolist(),
            self.trades(sl).tolist(),
            (self.volume[sl] * share).tolist(),
            (qv * share).tolist(),
            strict=True,
        )
        return [
            [
                ts,
                _fmt(o),
                _fmt(h),
                _fmt(lo_),
                _fmt(c),
                _fmt(v),
                ts + self.bar_ms - 1,
                f"{q:.8f}",
                n,
                f"{tb:.8f}",
                f"{tq:.8f}",
                "0",
            ]
            for ts, o, h, lo_, c, v, q, n, tb, tq in columns
        ]


def corwin_schultz_spread(high: np.ndarray, low: np.ndarray) -> float:
    """Mean Corwin–Schultz (2012) relative spread over consecutive bar pairs (negative estimates count as 0)."""
    ok = (high > 0) & (low > 0)
    high, low = high[ok], low[ok]
    if len(high) < 2:
        return 0.0
    hl = np.log(high / low) ** 2
    beta = hl[:-1] + hl[1:]
    gamma = np.log(np.maximum(high[:-1], high[1:]) / np.minimum(low[:-1], low[1:])) ** 2
    k = 3.0 - 2.0 * math.sqrt(2.0)
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / k - np.sqrt(gamma / k)
    spread = 2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha))
    value = float(np.clip(spread, 0.0, None).mean())
    return min(value, MAX_SPREAD) if math.isfinite(value) else 0.0


class ReplayExchange:
    """The data side of the replay exchange: files, as-of clock, klines, exchange info and tickers (no HTTP)."""

    def __init__(self, data_dir: str | Path, now_ms: int | None = None, *, stale_after_ms: int = 3 * DAY_MS) -> None:
        self.data_dir = Path(data_dir).expanduser()
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"no candle folder {self.data_dir}")
        self.stale_after_ms = stale_after_ms
        self.files: dict[str, dict[str, SymbolFile]] = {}  # timeframe -> symbol id -> file
        for tf in sorted(INTERVAL_MS, key=INTERVAL_MS.__getitem__):
            folder = self.data_dir / tf
            if not folder.is_dir():
                continue
            found = {}
            for path in sorted(folder.glob("*.parquet")):
                base, sep, quote = path.stem.partition("_")
                if sep and base and quote:
                    symbol = f"{base}{quote}".upper()
                    found[symbol] = SymbolFile(symbol, base.upper(), quote.upper(), tf, path)
            if found:
                self.files[tf] = found
        if not self.files:
            raise FileNotFoundError(
                f"no candle files in {self.data_dir}: expected DIR/<timeframe>/<BASE>_<QUOTE>.parquet "
                f"with timeframe in {sorted(INTERVAL_MS)}"
            )
        self.timeframes = list(self.files)  # finest first
        self._by_symbol: dict[str, list[SymbolFile]] = {}
        for tf in self.timeframes:
            for sym, f in self.files[tf].items():
                self._by_symbol.setdefault(sym, []).append(f)
        self._lock = threading.RLock()
        self._bars: dict[tuple[str, str], Bars] = {}
        self._spans: dict[tuple[str, str], tuple[int, int] | None] = {}
        self._precision: dict[tuple[str, int], tuple[int, int]] = {}
        self._now_ms = int(now_ms) if now_ms is not None else self.default_now_ms()

    # ---- files ----------------------------------------------------------------------------------------------------

    @property
    def symbols(self) -> list[str]:
        """Every symbol id with a file, listed or not yet."""
        return sorted(self._by_symbol)

    def symbol_file(self, symbol: str, timeframe: str) -> SymbolFile | None:
        return self.files.get(timeframe, {}).get(symbol)

    def bars(self, symbol: str, timeframe: str) -> Bars:
        key = (timeframe, symbol)
        cached = self._bars.get(key)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._bars.get(key)
            if cached is None:
                f = self.files[timeframe][symbol]
                cached = Bars(pl.read_parquet(f.path), INTERVAL_MS[timeframe])
                self._bars[key] = cached
        return cached

    def finest(self, symbol: str) -> Bars:
        return self.bars(symbol, self._by_symbol[symbol][0].timeframe)

    def preload(self, timeframes: Iterable[str] | None = None) -> None:
        """Load (and cache) every file of ``timeframes`` (default: each symbol's finest, which the tickers use)."""
        if timeframes is None:
            for symbol in self.symbols:
                self.finest(symbol)
            return
        for tf in timeframes:
            for symbol in self.files.get(tf, {}):
                self.bars(symbol, tf)

    def span(self, symbol: str, timeframe: str) -> tuple[int, int] | None:
        """(first bar open, last bar close) of one file, from its ``ts`` column only; None if empty."""
        key = (timeframe, symbol)
        if key not in self._spans:
            loaded = self._bars.get(key)
            if loaded is not None:
                ts = loaded.ts
                self._spans[key] = (int(ts[0]), int(ts[-1]) + loaded.bar_ms) if len(ts) else None
            else:
                path = self.files[timeframe][symbol].path
                row = pl.scan_parquet(path).select(lo=pl.col("ts").min(), hi=pl.col("ts").max()).collect().row(0)
                ok = row[0] is not None
                self._spans[key] = (int(row[0]), int(row[1]) + INTERVAL_MS[timeframe]) if ok else None
        return self._spans[key]

    def first_open_ms(self, symbol: str) -> int | None:
        spans = [self.span(symbol, f.timeframe) for f in self._by_symbol.get(symbol, [])]
        opens = [s[0] for s in spans if s is not None]
        return min(opens) if opens else None

    def last_close_ms(self, symbol: str) -> int | None:
        spans = [self.span(symbol, f.timeframe) for f in self._by_symbol.get(symbol, [])]
        closes = [s[1] for s in spans if s is not None]
        return max(closes) if closes else None

    def default_now_ms(self) -> int:
        """The close of the last bar in the folder (every bar complete, no open candle)."""
        closes = [self.last_close_ms(s) for s in self.symbols]
        closes = [c for c in closes if c is not None]
        if not closes:
            raise ValueError(f"the candle files in {self.data_dir} are empty")
        return max(closes)

    # ---- clock ----------------------------------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        return self._now_ms

    def set_now(self, now_ms: int) -> int:
        if not isinstance(now_ms, int | np.integer) or isinstance(now_ms, bool) or now_ms < 0:
            raise ValueError(f"now_ms must be a non-negative integer of epoch ms, got {now_ms!r}")
        self._now_ms = int(now_ms)
        return self._now_ms

    # ---- symbols --------------------------------------------------------------------------------------------------

    def is_listed(self, symbol: str) -> bool:
        first = self.first_open_ms(symbol)
        return first is not None and first < self._now_ms

    def listed_symbols(self) -> list[str]:
        return [s for s in self.symbols if self.is_listed(s)]

    def resolve_symbol(self, symbol: str | None) -> str:
        """A listed symbol id from ``BTCUSDT`` / ``BTC/USDT`` / ``btcusdt``, else Binance's -1121."""
        if not symbol:
            raise ReplayError(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        sym = str(symbol).replace("/", "").replace("_", "").upper()
        if not self.is_listed(sym):
            raise _invalid_symbol()
        return sym

    def status(self, symbol: str) -> str:
        last = self.last_close_ms(symbol)
        return "TRADING" if last is not None and last >= self._now_ms - self.stale_after_ms else "BREAK"

    def precision(self, symbol: str) -> tuple[int, int]:
        """(price decimals, quantity decimals) read from the first complete bars before now."""
        bars = self.finest(symbol)
        n = min(PRECISION_SAMPLE, int(np.searchsorted(bars.ts, self._now_ms - bars.bar_ms, "right")))
        key = (symbol, n)
        if key not in self._precision:
            if n == 0:
                self._precision[key] = (8, 8)
            else:
                prices = np.concatenate([bars.open[:n], bars.high[:n], bars.low[:n], bars.close[:n]])
                self._precision[key] = (_decimals(prices), _decimals(bars.volume[:n]))
        return self._precision[key]

    # ---- endpoints ------------------------------------------------------------------------------------------------

    def server_time(self) -> dict:
        return {"serverTime": self._now_ms}

    def exchange_info(self, symbols: Iterable[str] | None = None) -> dict:
        wanted = self.listed_symbols() if symbols is None else [self.resolve_symbol(s) for s in symbols]
        return {
            "timezone": "UTC",
            "serverTime": self._now_ms,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(s) for s in wanted],
        }

    def _symbol_info(self, symbol: str) -> dict:
        f = self._by_symbol[symbol][0]
        price_dp, qty_dp = self.precision(symbol)
        tick = _fmt_fixed(10.0**-price_dp, 8)
        step = _fmt_fixed(10.0**-qty_dp, 8)
        return {
            "symbol": symbol,
            "status": self.status(symbol),
            "baseAsset": f.base,
            "baseAssetPrecision": 8,
            "quoteAsset": f.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000000.00000000", "stepSize": step},
                {
                    "filterType": "NOTIONAL",
                    "minNotional": "5.00000000",
                    "applyMinToMarket": True,
                    "maxNotional": "9000000.00000000",
                    "applyMaxToMarket": False,
                    "avgPriceMins": 5,
                },
            ],
            "permissions": ["SPOT"],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def kline_range(
        self,
        symbol: str,
        interval: str,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> tuple[Bars, int, int]:
        """The bars (and index range) a klines request answers, as of now."""
        if interval not in INTERVAL_MS:
            raise ReplayError(-1120, "Invalid interval.")
        sym = self.resolve_symbol(symbol)
        if self.symbol_file(sym, interval) is None:
            raise _invalid_symbol(f"The replay folder has no {interval} candles for {sym}.")
        limit = DEFAULT_KLINES_LIMIT if limit is None else limit
        if limit <= 0:
            raise ReplayError(-1130, "Data sent for parameter 'limit' is not valid.")
        limit = min(limit, MAX_KLINES_LIMIT)
        bars = self.bars(sym, interval)
        hi = int(np.searchsorted(bars.ts, self._now_ms, "left"))  # bars that opened before now
        if end_time is not None:
            hi = min(hi, int(np.searchsorted(bars.ts, end_time, "right")))
        if start_time is not None:
            lo = int(np.searchsorted(bars.ts, start_time, "left"))
            hi = min(hi, lo + limit)
        else:
            lo = max(0, hi - limit)
        return bars, lo, max(lo, hi)

    def klines(
        self,
        symbol: str,
        interval: str,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[list]:
        bars, lo, hi = self.kline_range(symbol, interval, start_time, end_time, limit)
        return bars.kline_rows(lo, hi)

    def _ticker_symbols(self, symbol: str | None, symbols: Iterable[str] | None) -> list[str] | str:
        if symbol:
            return self.resolve_symbol(symbol)
        if symbols is not None:
            return [self.resolve_symbol(s) for s in symbols]
        return self.listed_symbols()

    def ticker_24hr(self, symbol: str | None = None, symbols: Iterable[str] | None = None) -> dict | list[dict]:
        wanted = self._ticker_symbols(symbol, symbols)
        if isinstance(wanted, str):
            return self._ticker(wanted)
        return [self._ticker(s) for s in wanted]

    def book_ticker(self, symbol: str | None = None, symbols: Iterable[str] | None = None) -> dict | list[dict]:
        keys = ("symbol", "bidPrice", "bidQty", "askPrice", "askQty")
        wanted = self._ticker_symbols(symbol, symbols)
        if isinstance(wanted, str):
            t = self._ticker(wanted)
            return {k: t[k] for k in keys}
        return [{k: t[k] for k in keys} for t in map(self._ticker, wanted)]

    def ticker_price(self, symbol: str | None = None, symbols: Iterable[str] | None = None) -> dict | list[dict]:
        wanted = self._ticker_symbols(symbol, symbols)
        if isinstance(wanted, str):
            t = self._ticker(wanted)
            return {"symbol": t["symbol"], "price": t["lastPrice"]}
        return [{"symbol": t["symbol"], "price": t["lastPrice"]} for t in map(self._ticker, wanted)]

    def _ticker(self, symbol: str) -> dict:
        bars = self.finest(symbol)
        now = self._now_ms
        end = int(np.searchsorted(bars.ts, now - bars.bar_ms, "right"))  # complete bars: open + bar <= now
        start = min(int(np.searchsorted(bars.ts, now - DAY_MS, "left")), end)
        price_dp, qty_dp = self.precision(symbol)
        zero = _fmt(0.0)
        if end == 0:  # listed, but no complete bar yet
            return {
                "symbol": symbol,
                "priceChangePercent": "0.000",
                **dict.fromkeys(("priceChange", "weightedAvgPrice", "prevClosePrice", "lastPrice"), zero),
                **dict.fromkeys(("lastQty", "bidPrice", "bidQty", "askPrice", "askQty", "openPrice"), zero),
                **dict.fromkeys(("highPrice", "lowPrice", "volume", "quoteVolume"), zero),
                "openTime": now - DAY_MS,
                "closeTime": now - 1,
                "firstId": -1,
                "lastId": -1,
                "count": 0,
            }
        last = float(bars.close[end - 1])
        sl = slice(start, end)
        if end > start:
            open_ = float(bars.open[start])
            high, low = float(bars.high[sl].max()), float(bars.low[sl].min())
            volume, quote_volume = float(bars.volume[sl].sum()), float(bars.quote_volume(sl).sum())
            count = int(bars.trades(sl).sum())
            open_time, close_time = int(bars.ts[start]), int(bars.ts[end - 1]) + bars.bar_ms - 1
            spread = corwin_schultz_spread(bars.high[sl], bars.low[sl])
            mean_volume = volume / (end - start)
        else:  # stale: no complete bar in the last 24 h
            open_ = high = low = last
            volume = quote_volume = 0.0
            count, open_time, close_time = 0, now - DAY_MS, now - 1
            spread, mean_volume = 0.0, 0.0
        prev_close = float(bars.close[start - 1]) if start > 0 else open_
        tick = 10.0**-price_dp
        scale = 10.0**price_dp
        bid = math.floor(round(last * (1 - spread / 2) * scale, 6)) / scale
        ask = math.ceil(round(last * (1 + spread / 2) * scale, 6)) / scale
        if ask - bid < tick * 0.5:
            ask = bid + tick
        book_qty = round(max(mean_volume * 0.01, 10.0**-qty_dp), qty_dp)
        last_trades = int(bars.trades(slice(end - 1, end))[0])
        last_qty = round(float(bars.volume[end - 1]) / last_trades, qty_dp) if last_trades else 0.0
        first_id = bars.trades_before(start)
        change = last - open_
        return {
            "symbol": symbol,
            "priceChange": _fmt_fixed(change, price_dp),
            "priceChangePercent": f"{(100.0 * change / open_ if open_ else 0.0):.3f}",
            "weightedAvgPrice": _fmt_fixed(quote_volume / volume if volume > 0 else last, 8),
            "prevClosePrice": _fmt(prev_close),
            "lastPrice": _fmt(last),
            "lastQty": _fmt_fixed(last_qty, qty_dp),
            "bidPrice": _fmt_fixed(bid, price_dp),
            "bidQty": _fmt_fixed(book_qty, qty_dp),
            "askPrice": _fmt_fixed(ask, price_dp),
            "askQty": _fmt_fixed(book_qty, qty_dp),
            "openPrice": _fmt(open_),
            "highPrice": _fmt(high),
            "lowPrice": _fmt(low),
            "volume": _fmt(volume),
            "quoteVolume": f"{quote_volume:.8f}",
            "openTime": open_time,
            "closeTime": close_time,
            "firstId": first_id if count else -1,
            "lastId": first_id + count - 1 if count else -1,
            "count": count,
        }


# ---- faults ---------------------------------------------------------------------------------------------------------


@dataclass
class Fault:
    """One injected fault; see the module docstring for the kinds."""

    kind: str
    path: str = "/"
    symbol: str | None = None
    count: int | None = None
    probability: float | None = None
    seed: int = 0
    status: int | None = None  # http_5xx: 503 by default; rate_limit_429: 429 (or 418)
    body: str | None = None  # http_5xx / rate_limit_429 body override
    retry_after: int = 1  # rate_limit_429: Retry-After seconds
    delay_s: float = 5.0  # timeout: sleep before answering
    open_times: list[int] = field(default_factory=list)  # missing_bars / duplicate_bars: these bar open times
    fraction: float | None = None  # missing_bars / duplicate_bars: this share of the bars (default 0.1 without times)
    cut_connection: bool = False  # truncated_json: announce the full Content-Length, send half, drop the connection
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if not self.path.startswith("/"):
            raise ValueError(f"fault path must start with '/': {self.path!r}")
        if self.symbol:
            self.symbol = self.symbol.replace("/", "").upper()
        if self.count is not None and self.count < 0:
            raise ValueError("fault count must be >= 0")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise ValueError("fault probability must be in [0, 1]")
        if self.kind in DATA_FAULTS and not self.open_times and self.fraction is None:
            self.fraction = 0.1
        self.open_times = [int(t) for t in self.open_times]
        self._rng = random.Random(self.seed)

    @classmethod
    def from_dict(cls, spec: dict | Fault) -> Fault:
        if isinstance(spec, Fault):
            return spec
        known = set(cls.__dataclass_fields__) - {"fired"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**spec)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["remaining"] = None if self.count is None else max(0, self.count - self.fired)
        return out

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def matches(self, path: str, symbols: set[str]) -> bool:
        if self.exhausted or not path.startswith(self.path) or path.startswith(CONTROL_PREFIX):
            return False
        return self.symbol is None or self.symbol in symbols

    def trigger(self) -> bool:
        """Decide (and count) whether this matching request gets the fault."""
        if self.probability is not None and self._rng.random() >= self.probability:
            return False
        self.fired += 1
        return True

    def pick(self, ts: np.ndarray) -> np.ndarray:
        """Boolean mask of the bars a data fault acts on."""
        mask = np.isin(ts, np.asarray(self.open_times, dtype=np.int64)) if self.open_times else np.zeros(len(ts), bool)
        if self.fraction and len(ts):
            k = min(len(ts), max(1, round(self.fraction * len(ts))))
            mask[self._rng.sample(range(len(ts)), k)] = True
        return mask


class FaultSet:
    def __init__(self, faults: Iterable[dict | Fault] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = [Fault.from_dict(f) for f in faults or []]

    def add(self, faults: Iterable[dict | Fault]) -> None:
        new = [Fault.from_dict(f) for f in faults]
        with self._lock:
            self._faults.extend(new)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def to_list(self) -> list[dict]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def transport_fault(self, path: str, symbols: set[str]) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.kind not in DATA_FAULTS and f.matches(path, symbols) and f.trigger():
                    return f
        return None

    def data_faults(self, path: str, symbols: set[str]) -> list[Fault]:
        if not path.startswith(KLINES_PATHS):
            return []
        with self._lock:
            return [f for f in self._faults if f.kind in DATA_FAULTS and f.matches(path, symbols) and f.trigger()]


def apply_data_faults(rows: list[list], faults: list[Fault]) -> list[list]:
    for f in faults:
        ts = np.asarray([r[0] for r in rows], dtype=np.int64)
        mask = f.pick(ts)
        if f.kind == "missing_bars":
            rows = [r for r, m in zip(rows, mask, strict=True) if not m]
        else:
            rows = [x for r, m in zip(rows, mask, strict=True) for x in ((r, list(r)) if m else (r,))]
    return rows


# ---- HTTP -----------------------------------------------------------------------------------------------------------


class ServerState:
    def __init__(self, replay: ReplayExchange, faults: Iterable[dict | Fault] | None = None, log_size: int = 10_000):
        self.replay = replay
        self.faults = FaultSet(faults)
        self.counts: Counter[str] = Counter()
        self.log: deque[dict] = deque(maxlen=log_size)
        self.lock = threading.Lock()

    def record(self, request: web.Request, fault: str | None) -> dict:
        """Log a request on arrival; the caller fills in ``status`` once answered."""
        entry = {
            "time": time.time(),
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "status": None,
            "fault": fault,
        }
        with self.lock:
            self.counts[request.path] += 1
            self.log.append(entry)
        return entry

    def requests(self) -> dict:
        with self.lock:
            return {"counts": dict(self.counts), "total": sum(self.counts.values()), "log": list(self.log)}

    def reset_requests(self) -> None:
        with self.lock:
            self.counts.clear()
            self.log.clear()


STATE_KEY = web.AppKey("replay_state", ServerState)
DATA_FAULTS_KEY = web.RequestKey("replay_data_faults", list)


def _json(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _error(code: int, msg: str, status: int = 400) -> web.Response:
    return _json({"code": code, "msg": msg}, status=status)


def _request_symbols(request: web.Request) -> set[str]:
    out = set()
    if request.query.get("symbol"):
        out.add(request.query["symbol"].replace("/", "").upper())
    if request.query.get("symbols"):
        with contextlib.suppress(ValueError, TypeError):
            out.update(str(s).replace("/", "").upper() for s in json.loads(request.query["symbols"]))
    return out


def _int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ReplayError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        ) from None


def _symbols_param(request: web.Request) -> list[str] | None:
    value = request.query.get("symbols")
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ReplayError(-1100, "Illegal characters found in parameter 'symbols'.") from None
    if not isinstance(parsed, list) or not all(isinstance(s, str) for s in parsed):
        raise ReplayError(-1100, "Illegal characters found in parameter 'symbols'.")
    return parsed


def _transport_fault_response(fault: Fault) -> web.Response:
    if fault.kind == "http_5xx":
        body = fault.body if fault.body is not None else json.dumps({"msg": "Service Unavailable."})
        return web.Response(text=body, status=fault.status or 503, content_type="application/json")
    # rate_limit_429
    body = fault.body or json.dumps(
        {
            "code": -1003,
            "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API.",
        }
    )
    return web.Response(
        text=body,
        status=fault.status or 429,
        content_type="application/json",
        headers={"Retry-After": str(int(fault.retry_after))},
    )


def _mangle(response: web.StreamResponse, kind: str) -> web.StreamResponse:
    if not isinstance(response, web.Response) or response.body is None:
        return response
    body = bytes(response.body)
    new = b'\x00\xff<html>\x8b garbled \xfe{"code":' if kind == "garbled_json" else body[: len(body) // 2]
    return web.Response(body=new, status=response.status, content_type=response.content_type)


async def _send_cut(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Send half of the body under the full Content-Length, then close the connection (a broken transfer)."""
    if not isinstance(response, web.Response) or response.body is None:
        return response
    body = bytes(response.body)
    stream = web.StreamResponse(status=response.status)
    stream.content_type = response.content_type
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.close()
    return stream


@web.middleware
async def _replay_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    if request.path.startswith(CONTROL_PREFIX):
        try:
            return await handler(request)
        except (ValueError, TypeError, KeyError) as exc:
            return _json({"error": str(exc)}, status=400)
    symbols = _request_symbols(request)
    fault = state.faults.transport_fault(request.path, symbols)
    data_faults = [] if fault else state.faults.data_faults(request.path, symbols)
    kind = fault.kind if fault else ",".join(f.kind for f in data_faults) or None
    entry = state.record(request, kind)
    try:
        if fault is not None and fault.kind in ("http_5xx", "rate_limit_429"):
            response: web.StreamResponse = _transport_fault_response(fault)
        else:
            if fault is not None and fault.kind == "timeout":
                await asyncio.sleep(fault.delay_s)
            request[DATA_FAULTS_KEY] = data_faults
            try:
                response = await handler(request)
            except ReplayError as exc:
                response = _error(exc.code, exc.msg, exc.status)
            if fault is not None and fault.kind == "truncated_json" and fault.cut_connection:
                response = await _send_cut(request, response)
            elif fault is not None and fault.kind in ("truncated_json", "garbled_json"):
                response = _mangle(response, fault.kind)
    except web.HTTPException as exc:
        entry["status"] = exc.status
        raise
    entry["status"] = response.status
    return response


def _rx(request: web.Request) -> ReplayExchange:
    return request.app[STATE_KEY].replay


async def _ping(request: web.Request) -> web.Response:
    return _json({})


async def _server_time(request: web.Request) -> web.Response:
    return _json(_rx(request).server_time())


async def _exchange_info(request: web.Request) -> web.Response:
    symbols = _symbols_param(request)
    if request.query.get("symbol"):
        symbols = [request.query["symbol"]]
    return _json(_rx(request).exchange_info(symbols))


async def _futures_exchange_info(request: web.Request) -> web.Response:
    now = _rx(request).now_ms
    return _json(
        {"timezone": "UTC", "serverTime": now, "rateLimits": [], "exchangeFilters": [], "assets": [], "symbols": []}
    )


async def _futures_empty_list(request: web.Request) -> web.Response:
    return _json([])


async def _klines(request: web.Request) -> web.Response:
    q = request.query
    if not q.get("interval"):
        raise ReplayError(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
    bars, lo, hi = _rx(request).kline_range(
        q.get("symbol", ""),
        q["interval"],
        _int_param(request, "startTime"),
        _int_param(request, "endTime"),
        _int_param(request, "limit"),
    )
    rows = bars.kline_rows(lo, hi)
    return _json(apply_data_faults(rows, request.get(DATA_FAULTS_KEY) or []))


def _ticker_handler(method: str):
    async def handle(request: web.Request) -> web.Response:
        fn = getattr(_rx(request), method)
        return _json(fn(request.query.get("symbol"), _symbols_param(request)))

    return handle


async def _get_clock(request: web.Request) -> web.Response:
    now = _rx(request).now_ms
    return _json({"now_ms": now, "now": iso_ms(now)})


async def _post_clock(request: web.Request) -> web.Response:
    spec = await request.json()
    replay = _rx(request)
    if "advance_ms" in spec:
        replay.set_now(replay.now_ms + int(spec["advance_ms"]))
    elif "now_ms" in spec:
        replay.set_now(spec["now_ms"])
    elif "now" in spec:
        replay.set_now(parse_time_ms(spec["now"]))
    else:
        raise ValueError("expected JSON {'now_ms': ms} or {'now': ISO} or {'advance_ms': ms}")
    return await _get_clock(request)


async def _get_faults(request: web.Request) -> web.Response:
    return _json({"faults": request.app[STATE_KEY].faults.to_list()})


async def _post_faults(request: web.Request) -> web.Response:
    spec = await request.json()
    if isinstance(spec, dict) and "faults" in spec:
        faults, replace = spec["faults"], bool(spec.get("replace"))
    else:
        faults, replace = ([spec] if isinstance(spec, dict) else spec), False
    parsed = [Fault.from_dict(f) for f in faults]  # validate all before changing anything
    if replace:
        request.app[STATE_KEY].faults.clear()
    request.app[STATE_KEY].faults.add(parsed)
    return await _get_faults(request)


async def _delete_faults(request: web.Request) -> web.Response:
    request.app[STATE_KEY].faults.clear()
    return await _get_faults(request)


async def _get_requests(request: web.Request) -> web.Response:
    return _json(request.app[STATE_KEY].requests())


async def _delete_requests(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset_requests()
    return _json({"counts": {}, "total": 0, "log": []})


async def _info(request: web.Request) -> web.Response:
    replay = _rx(request)
    return _json(
        {
            "data_dir": str(replay.data_dir),
            "timeframes": replay.timeframes,
            "symbols": replay.symbols,
            "listed": replay.listed_symbols(),
            "now_ms": replay.now_ms,
            "now": iso_ms(replay.now_ms),
        }
    )


def make_app(replay: ReplayExchange, faults: Iterable[dict | Fault] | None = None) -> web.Application:
    """The aiohttp application serving ``replay`` (Binance REST + ``/_replay`` control endpoints)."""
    app = web.Application(middlewares=[_replay_middleware])
    app[STATE_KEY] = ServerState(replay, faults)
    r = app.router
    for prefix in ("/api/v3", "/api/v1", "/fapi/v1", "/dapi/v1"):
        r.add_get(f"{prefix}/ping", _ping)
        r.add_get(f"{prefix}/time", _server_time)
    r.add_get("/api/v3/exchangeInfo", _exchange_info)
    r.add_get("/api/v3/klines", _klines)
    r.add_get("/api/v3/uiKlines", _klines)
    r.add_get("/api/v3/ticker/24hr", _ticker_handler("ticker_24hr"))
    r.add_get("/api/v3/ticker/bookTicker", _ticker_handler("book_ticker"))
    r.add_get("/api/v3/ticker/price", _ticker_handler("ticker_price"))
    for prefix in ("/fapi/v1", "/dapi/v1"):
        r.add_get(f"{prefix}/exchangeInfo", _futures_exchange_info)
        r.add_get(f"{prefix}/ticker/24hr", _futures_empty_list)
    r.add_get(f"{CONTROL_PREFIX}/clock", _get_clock)
    r.add_post(f"{CONTROL_PREFIX}/clock", _post_clock)
    r.add_get(f"{CONTROL_PREFIX}/faults", _get_faults)
    r.add_post(f"{CONTROL_PREFIX}/faults", _post_faults)
    r.add_delete(f"{CONTROL_PREFIX}/faults", _delete_faults)
    r.add_get(f"{CONTROL_PREFIX}/requests", _get_requests)
    r.add_delete(f"{CONTROL_PREFIX}/requests", _delete_requests)
    r.add_get(f"{CONTROL_PREFIX}/info", _info)
    return app


def serve(
    data_dir: str | Path,
    port: int,
    host: str = "127.0.0.1",
    now_ms: int | None = None,
    faults: Iterable[dict | Fault] | None = None,
) -> None:
    """Run the replay exchange in the foreground until interrupted (files load in the background meanwhile)."""
    replay = ReplayExchange(data_dir, now_ms)
    threading.Thread(target=replay.preload, name="replay-preload", daemon=True).start()
    log.info(
        "replay exchange on http://%s:%s serving %s (%s), now %s",
        host,
        port,
        replay.data_dir,
        ", ".join(replay.timeframes),
        iso_ms(replay.now_ms),
    )
    web.run_app(make_app(replay, faults), host=host, port=port, print=None, access_log=None, shutdown_timeout=1.0)


# ---- background server for tests and local runs -------------------------------------------------------------------


class ReplayServerHandle:
    """A replay server running in a background thread; control it over its ``/_replay`` endpoints."""

    def __init__(self, replay: ReplayExchange, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.replay = replay
        self.app = app
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ReplayServerHandle:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.5)
                loop.run_until_complete(runner.setup())
                site = web.TCPSite(runner, self.host, self.port)
                loop.run_until_complete(site.start())
                self._runner = runner
                self.port = runner.addresses[0][1]
            except BaseException as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(runner.cleanup())
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name=f"replay-server-{id(self)}", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError("the replay server did not start")
        if failure:
            raise failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> ReplayServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(
            f"{self.url}{CONTROL_PREFIX}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with self._opener.open(req, timeout=30) as resp:
            return json.loads(resp.read())

    def now_ms(self) -> int:
        return self._call("GET", "/clock")["now_ms"]

    def set_now(self, now_ms: int | str) -> int:
        return self._call("POST", "/clock", {"now_ms": parse_time_ms(now_ms)})["now_ms"]

    def set_faults(self, faults: Iterable[dict | Fault]) -> list[dict]:
        """Replace the active faults."""
        specs = [f.to_dict() if isinstance(f, Fault) else dict(f) for f in faults]
        for s in specs:
            s.pop("remaining", None)
            s.pop("fired", None)
        return self._call("POST", "/faults", {"faults": specs, "replace": True})["faults"]

    def add_faults(self, faults: Iterable[dict]) -> list[dict]:
        return self._call("POST", "/faults", {"faults": list(faults)})["faults"]

    def faults(self) -> list[dict]:
        return self._call("GET", "/faults")["faults"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def requests(self) -> dict[str, int]:
        """Request counts per path (API paths only)."""
        return self._call("GET", "/requests")["counts"]

    def request_log(self) -> list[dict]:
        return self._call("GET", "/requests")["log"]

    def reset_requests(self) -> None:
        self._call("DELETE", "/requests")


@contextlib.contextmanager
def running_replay_server(
    data_dir: str | Path,
    port: int = 0,
    now_ms: int | str | None = None,
    faults: Iterable[dict | Fault] | None = None,
    host: str = "127.0.0.1",
    preload: bool = False,
) -> Iterator[ReplayServerHandle]:
    """Start a replay server in a background thread (port 0 = a free port); stop it on exit.

    ``preload`` loads every symbol's finest file before serving (else files load on first use).
    """
    replay = ReplayExchange(data_dir, parse_time_ms(now_ms))
    if preload:
        replay.preload()
    handle = ReplayServerHandle(replay, make_app(replay, faults), host=host, port=port).start()
    try:
        yield handle
    finally:
        handle.stop()


# ---- ccxt -----------------------------------------------------------------------------------------------------------


def point_ccxt_at(exchange: Any, base_url: str) -> Any:
    """Rewrite every URL of ``exchange.urls['api']`` to ``base_url``, keeping the path (``/api/v3``, ``/fapi/v1``)."""
    from huracan_assets.exchange.ccxt_exchange import point_urls_at

    exchange.urls["api"] = point_urls_at(exchange.urls["api"], base_url)
    return exchange


def binance_client(base_url: str, **config: Any) -> Any:
    """A stock ``ccxt.binance`` (rate limiter on, 10 ms rate limit unless given) pointed at a replay server."""
    import ccxt

    settings = {"enableRateLimit": True, "rateLimit": 10, "timeout": 10_000} | config
    return point_ccxt_at(ccxt.binance(settings), base_url)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Binance spot replay exchange over a candle folder.")
    parser.add_argument("data_dir", help="folder DIR/<timeframe>/<BASE>_<QUOTE>.parquet")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--now", help="simulated now: epoch ms or ISO 8601 (default: close of the last bar)")
    parser.add_argument("--faults", help="JSON list of faults, or @file.json")
    args = parser.parse_args(argv)
    faults = None
    if args.faults:
        text = Path(args.faults[1:]).read_text() if args.faults.startswith("@") else args.faults
        faults = json.loads(text)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(args.data_dir, args.port, args.host, parse_time_ms(args.now), faults)


if __name__ == "__main__":
    main()
