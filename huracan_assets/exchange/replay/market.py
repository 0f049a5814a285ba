"""The replay exchange's data, no HTTP: candle files read as of a simulated clock, in Binance's shapes.

The folder format is ``DIR/<timeframe>/<BASE>_<QUOTE>.parquet`` (columns ``ts`` = UTC epoch ms of the bar open,
``open high low close volume`` float64, volume in base units).

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
Corwin–Schultz (2012) high-low estimator (``huracan_assets.core.spreads``), averaged over the consecutive bar
pairs of the 24 h window (negative two-bar estimates set to 0, result capped at 5 %), rounded outwards to the tick
(at least one tick apart); bid/ask quantities are 1 % of the window's mean bar volume.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from huracan_assets.core.market_data.candles import DAY_MS
from huracan_assets.core.spreads import corwin_schultz_pairs

INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
DEFAULT_KLINES_LIMIT = 500
MAX_KLINES_LIMIT = 1000
TRADE_SIZE_QUOTE = 250.0  # assumed mean trade size (quote units) for the estimated trade counts
MAX_SPREAD = 0.05
PRECISION_SAMPLE = 500  # bars used to read the tick and step sizes


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
    """Mean Corwin–Schultz (2012) relative spread over consecutive bar pairs (negative estimates count as 0).

    Bars with a non-positive or missing high or low are dropped first; the pair estimates are
    :func:`huracan_assets.core.spreads.corwin_schultz_pairs` (a pair with an inverted bar, high < low, is left
    out). Capped at :data:`MAX_SPREAD`; 0.0 with fewer than two bars or no defined pair.
    """
    ok = (high > 0) & (low > 0)
    high, low = high[ok], low[ok]
    if len(high) < 2:
        return 0.0
    pairs = corwin_schultz_pairs(high, low)
    defined = pairs[~np.isnan(pairs)]
    value = float(defined.mean()) if defined.size else math.nan
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
