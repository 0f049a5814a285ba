"""A candle source over any ccxt exchange (Binance spot by default), live or a local replay of it.

- Paginated ``fetch_ohlcv`` by ``since``/``limit`` (plus Binance's ``endTime``) for a UTC window, with
  ccxt's own rate limiter on.
- Retries with exponential backoff on ``NetworkError`` (timeouts, 5xx, 429 rate limits: a
  ``Retry-After`` header is honoured) and on unparsable answers (``BadResponse``/garbled JSON).
  ``BadSymbol`` and authentication errors fail at once with a clear message.
- The still-open last candle (its close is after the exchange's clock) is dropped.
- Exchange symbols (``BTC/USDT``) map to partition keys (``BTCUSDT``) through the markets. Inactive markets
  (halted or delisted: Binance's ``BREAK``, ccxt's ``active: False``) are kept, with their status: their
  history is still served, and a past date's universe must see the coins that traded then.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import cached_property
from typing import TypeVar

import ccxt
import polars as pl

from huracan_assets.core.market_data.candles import CANDLE_SCHEMA
from huracan_assets.exchange.files import BadSymbol, ExchangeError, Market, MarketCatalog, stats_frame, stats_row

T = TypeVar("T")

# OperationFailed covers NetworkError (timeouts, 5xx, 429/418), BadResponse, and a 5xx whose body carries an
# exchange error code; garbled JSON arrives as a parse error in ccxt's own code (AttributeError, TypeError ...)
RETRYABLE = (ccxt.OperationFailed, json.JSONDecodeError, AttributeError, TypeError, KeyError)
FATAL = (ccxt.BadSymbol, ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended)


def partition_key(base: str, quote: str) -> str:
    return "".join(ch for ch in f"{base}{quote}".upper() if ch.isalnum())


def point_urls_at(urls: object, base_url: str) -> object:
    """Rewrite every URL of a ccxt ``urls['api']`` tree to ``base_url``, keeping the path."""
    if isinstance(urls, dict):
        return {k: point_urls_at(v, base_url) for k, v in urls.items()}
    if isinstance(urls, list):
        return [point_urls_at(v, base_url) for v in urls]
    if isinstance(urls, str) and "://" in urls:
        _, slash, path = urls.partition("://")[2].partition("/")
        return f"{base_url.rstrip('/')}/{path}" if slash else base_url.rstrip("/")
    return urls


class MalformedResponse(ccxt.BadResponse):
    """ccxt parsed an answer that is not what the endpoint returns (garbled or truncated JSON)."""


def check_last_body(client: ccxt.Exchange) -> None:
    """ccxt parses a garbled or truncated 200 answer into empty or None values without raising: check
    that the body it last received is JSON at all."""
    body = getattr(client, "last_http_response", None)
    if isinstance(body, str | bytes):
        try:
            json.loads(body)
        except ValueError as exc:
            raise MalformedResponse(f"answer is not JSON ({exc}): {str(body)[:80]!r}") from exc


def checked_page(page: object) -> list[list]:
    """OHLCV rows, or ``MalformedResponse``: ccxt turns a garbled 200 answer into rows of None."""
    if not isinstance(page, list):
        raise MalformedResponse(f"OHLCV answer is a {type(page).__name__}, not a list")
    for row in page:
        if not isinstance(row, list | tuple) or len(row) < 6 or any(v is None for v in row[:6]):
            raise MalformedResponse(f"malformed OHLCV row {str(row)[:120]}")
    return page  # type: ignore[return-value]


class CcxtExchange(MarketCatalog):
    def __init__(
        self,
        exchange_id: str,
        timeframe: str,
        quote: str | None = "USDT",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        page_limit: int = 1000,
        attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        timeout_ms: int = 10_000,
        rate_limit_ms: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not hasattr(ccxt, exchange_id):
            raise ExchangeError(f"unknown ccxt exchange id {exchange_id!r}")
        # public market data only: with API keys set, ccxt's Binance signs private requests on every load_markets
        # (the currencies' deposit networks, the margin pairs); the Engine needs none of it and sends no key it
        # need not send
        public_only = {"fetchCurrencies": False, "fetchMargins": False}
        config: dict = {"enableRateLimit": True, "timeout": timeout_ms, "options": public_only}
        if api_key:
            config |= {"apiKey": api_key, "secret": api_secret or ""}
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        self.client: ccxt.Exchange = getattr(ccxt, exchange_id)(config)
        if base_url:
            self.client.urls["api"] = point_urls_at(self.client.urls["api"], base_url)
        if timeframe not in self.client.timeframes:
            raise ExchangeError(f"{exchange_id} has no timeframe {timeframe!r}")
        self.exchange_id = exchange_id
        self.timeframe = timeframe
        self.bar_ms = int(self.client.parse_timeframe(timeframe) * 1000)
        self.quote = quote
        self.page_limit = page_limit
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self.retries = 0  # retries performed (for metadata and tests)
        self._first_bars: dict[str, int | None] = {}
        self._last_bars: dict[str, int | None] = {}  # of inactive markets only (their data have ended)

    # -- plumbing -------------------------------------------------------------------------------
    def _retry_after(self) -> float | None:
        headers = getattr(self.client, "last_response_headers", None) or {}
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except FATAL as exc:
                kind = BadSymbol if isinstance(exc, ccxt.BadSymbol) else ExchangeError
                raise kind(f"{self.exchange_id} {what}: {type(exc).__name__}: {exc}") from exc
            except RETRYABLE as exc:
                if attempt == self.attempts:
                    raise ExchangeError(
                        f"{self.exchange_id} {what} failed after {attempt} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
                    delay = max(delay, min(self.max_delay, self._retry_after() or 0.0))
                self.retries += 1
                self._sleep(delay)
            except ccxt.ExchangeError as exc:
                raise ExchangeError(f"{self.exchange_id} {what}: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- markets --------------------------------------------------------------------------------
    @cached_property
    def markets(self) -> dict[str, Market]:
        def load() -> dict:
            loaded = self.client.load_markets(reload=True)
            check_last_body(self.client)
            if not loaded:
                raise MalformedResponse("load_markets returned no market at all")
            return loaded

        raw = self._call("load_markets", load)
        out: dict[str, Market] = {}
        for m in raw.values():
            if not m.get("spot"):
                continue
            if self.quote and m.get("quote") != self.quote:
                continue
            key = partition_key(m["base"], m["quote"])
            active = m.get("active") is not False  # None: the exchange does not say
            if key in out and out[key].active and not active:
                continue  # an active market wins a key over an inactive one
            info = m.get("info")
            status = info.get("status") if isinstance(info, dict) else None  # Binance: TRADING, BREAK, ...
            out[key] = Market(
                symbol=key,
                base=m["base"],
                quote=m["quote"],
                path=None,
                active=active,
                status=str(status) if status is not None else None,
            )
        return dict(sorted(out.items()))

    def refresh(self) -> None:
        """Forget the markets and the inactive markets' last bars (a halted coin may trade again)."""
        super().refresh()
        self._last_bars.clear()

    def describe(self) -> str:
        return f"{self.exchange_id} {self.quote or ''} spot".replace("  ", " ")

    def now_ms(self) -> int:
        """The exchange's clock (a replay's simulated now)."""

        def fetch() -> int:
            value = self.client.fetch_time()
            check_last_body(self.client)
            if not isinstance(value, int | float):
                raise MalformedResponse(f"server time is {value!r}")
            return int(value)

        return self._call("fetch_time", fetch)

    # -- candles --------------------------------------------------------------------------------
    def _page(self, unified: str, since: int | None, limit: int, params: dict) -> list[list]:
        page = self.client.fetch_ohlcv(unified, self.timeframe, since, limit, params)
        check_last_body(self.client)
        return checked_page(page)

    def fetch_ohlcv(self, symbol: str, start_ms: int, end_ms: int, *, now_ms: int | None = None) -> pl.DataFrame:
        """Closed bars whose open is in ``[start_ms, end_ms)``, all pages, raw (not cleaned)."""
        unified = self.market(symbol).exchange_symbol
        now = self.now_ms() if now_ms is None else now_ms
        rows: list[list] = []
        since, pages = start_ms, 0
        max_pages = (end_ms - start_ms) // (self.bar_ms * max(1, self.page_limit // 2)) + 10
        while since < end_ms and pages < max_pages:
            params = {"endTime": end_ms - 1} if self.exchange_id.startswith("binance") else {}
            page = self._call(
                f"fetch_ohlcv {unified} since {since}",
                lambda s=since, p=params: self._page(unified, s, self.page_limit, p),
            )
            pages += 1
            page = [bar for bar in page if bar and start_ms <= bar[0] < end_ms]
            if not page:
                break
            rows.extend(page)
            last = max(bar[0] for bar in page)
            if last + self.bar_ms <= since:  # no progress: a broken page; stop rather than loop
                break
            since = last + self.bar_ms
        frame = pl.DataFrame(
            [r[:6] for r in rows], schema=list(CANDLE_SCHEMA), orient="row", schema_overrides=CANDLE_SCHEMA
        )
        return frame.filter(pl.col("ts") + self.bar_ms <= now)  # drop the still-open candle

    def listing_stats(
        self, as_of_ms: int, lookback_ms: int, *, through_ms: int | None = None
    ) -> tuple[pl.DataFrame, dict[str, str]]:
        """Per market listed before ``through_ms`` (default ``as_of_ms``), active or not: ``first_bar_ts``,
        ``last_bar_ts`` (the last bar in ``[as_of_ms - lookback_ms, through_ms)``), and the trailing quote volume
        and spread estimate of the bars in ``[as_of_ms - lookback_ms, as_of_ms)`` (``files.STATS_SCHEMA``).

        Built from candles only (never from live tickers, which would be look-ahead for any past date). An
        inactive market whose last bar opened before ``as_of_ms`` is left out without fetching its window: it
        did not trade at or after ``as_of_ms`` (its last bar is read once per run: :meth:`refresh` forgets it).
        """
        through = as_of_ms if through_ms is None else through_ms
        rows, errors = [], {}
        for symbol, market in self.markets.items():
            try:
                if not market.active:
                    last = self._last_bar(symbol)
                    if last is None or last < as_of_ms:
                        continue
                first = self._first_bar(symbol, through)
                if first is None:
                    continue
                recent = self.fetch_ohlcv(symbol, as_of_ms - lookback_ms, through, now_ms=through)
            except (ExchangeError, BadSymbol) as exc:
                errors[symbol] = str(exc).splitlines()[0][:200]
                continue
            rows.append(stats_row(symbol, first, recent, as_of_ms))
        return stats_frame(rows), errors

    def listed_after(self, through_ms: int) -> list[str]:
        """Markets whose first bar opens at or after ``through_ms``, or that serve no bar yet (listed later; known
        from the first bars ``listing_stats`` looked up)."""
        return sorted(s for s, first in self._first_bars.items() if first is None or first >= through_ms)

    def _first_bar(self, symbol: str, as_of_ms: int) -> int | None:
        if symbol not in self._first_bars:
            unified = self.market(symbol).exchange_symbol
            page = self._call(f"first bar of {unified}", lambda: self.client.fetch_ohlcv(unified, self.timeframe, 0, 1))
            self._first_bars[symbol] = int(page[0][0]) if page else None
        first = self._first_bars[symbol]
        return first if first is not None and first < as_of_ms else None

    def _last_bar(self, symbol: str) -> int | None:
        """Open time of the last bar the exchange serves for an inactive market (the latest page of one bar)."""
        if symbol not in self._last_bars:
            unified = self.market(symbol).exchange_symbol
            page = self._call(f"last bar of {unified}", lambda: self._page(unified, None, 1, {}))
            self._last_bars[symbol] = int(max(bar[0] for bar in page)) if page else None
        return self._last_bars[symbol]
