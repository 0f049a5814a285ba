"""The replay exchange over HTTP (aiohttp): Binance's spot REST endpoints and the ``/_replay`` control endpoints.

Control endpoints: ``GET``/``POST /_replay/clock`` (the simulated ``now``: ``{"now_ms": ms}``, ``{"now": ISO}`` or
``{"advance_ms": ms}``), ``GET``/``POST``/``DELETE /_replay/faults`` (see ``faults.py``), ``GET``/``DELETE
/_replay/requests`` and ``GET /_replay/info``. Every API request is logged on arrival: ``GET /_replay/requests``
returns counts per path and the recent entries.

Run it with ``python -m huracan_assets.exchange.replay DIR`` (or ``huracan replay-server``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from huracan_assets.exchange.replay.binance import (
    CONTROL_PREFIX,
    _error,
    _int_param,
    _json,
    _request_symbols,
    _symbols_param,
)
from huracan_assets.exchange.replay.faults import (
    Fault,
    FaultSet,
    _mangle,
    _send_cut,
    _transport_fault_response,
    apply_data_faults,
)
from huracan_assets.exchange.replay.market import ReplayError, ReplayExchange, iso_ms, parse_time_ms

log = logging.getLogger(__name__)


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
