"""A replay server in a background thread, for tests and local runs, and stock ccxt Binance clients pointed at it.

The stock ``ccxt.binance`` client, with every URL of ``exchange.urls['api']`` rewritten to the server
(:func:`point_ccxt_at`, :func:`binance_client`), can run ``load_markets()`` (default options: the futures
``exchangeInfo`` endpoints answer an empty list), ``fetch_time()``, ``fetch_ohlcv()`` page by page,
``fetch_ticker()``/``fetch_tickers()`` and ``fetch_bids_asks()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from huracan_assets.exchange.replay.app import make_app
from huracan_assets.exchange.replay.binance import CONTROL_PREFIX
from huracan_assets.exchange.replay.faults import Fault
from huracan_assets.exchange.replay.market import ReplayExchange, parse_time_ms


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
