"""Fault injection for tests of a client's retry logic (``POST /_replay/faults``, ``DELETE /_replay/faults``).

A fault matches a path prefix and optionally a symbol, and fires on the next ``count`` matching requests, or with a
``probability`` drawn from ``random.Random(seed)``, or on every matching request when neither is given. Kinds:
``http_5xx`` (``status`` 503, body ``{"msg": "Service Unavailable."}``, override with ``body``), ``rate_limit_429``
(HTTP 429 or ``status`` 418, ``Retry-After: retry_after`` seconds, Binance's -1003 body), ``timeout`` (sleeps
``delay_s`` then answers normally), ``truncated_json`` (the first half of the body, as a complete HTTP 200 answer;
with ``cut_connection`` the full Content-Length is announced and the connection dropped after half), ``garbled_json``
(non-JSON bytes under HTTP 200), ``missing_bars`` (klines without the bars at ``open_times`` or a ``fraction`` of
them) and ``duplicate_bars`` (klines with the bars at ``open_times`` or a ``fraction`` of them repeated).

What stock ccxt 4.5.90 raises (see the integration tests): 5xx with the default body -> ``ExchangeNotAvailable``
(a 5xx body carrying a Binance code such as -1001 -> ``OperationFailed``, not a ``NetworkError``); 429/418 ->
``DDoSProtection``; timeout -> ``RequestTimeout``; ``cut_connection`` -> ``NetworkError``. Truncated or garbled JSON
under HTTP 200 raises nothing: ccxt hands the raw text to its parsers, so ``fetch_ohlcv`` returns rows of ``None``,
``fetch_tickers`` fails with a plain ``AttributeError`` and ``load_markets(reload=True)`` leaves no markets. A
client has to validate what it gets.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
from aiohttp import web

from huracan_assets.exchange.replay.binance import CONTROL_PREFIX, KLINES_PATHS

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
