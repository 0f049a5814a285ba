"""A local Binance spot replay exchange: candle files served over Binance's REST shapes, as of a simulated clock.

The folder format is ``DIR/<timeframe>/<BASE>_<QUOTE>.parquet`` (columns ``ts`` = UTC epoch ms of the bar open,
``open high low close volume`` float64, volume in base units). The stock ``ccxt.binance`` client runs against it
(:func:`point_ccxt_at`, :func:`binance_client`).

- ``market``: the data and the as-of clock (no HTTP): files, klines, exchange info, tickers, estimated fields.
- ``binance``: Binance's wire format: JSON and error bodies, request parameters.
- ``faults``: fault injection for tests of a client's retry logic.
- ``app``: the aiohttp server and the ``/_replay`` control endpoints (``python -m huracan_assets.exchange.replay``).
- ``harness``: a server in a background thread for tests and local runs; ccxt clients pointed at it.
"""

from huracan_assets.exchange.replay.app import DATA_FAULTS_KEY, STATE_KEY, ServerState, main, make_app, serve
from huracan_assets.exchange.replay.binance import CONTROL_PREFIX, KLINES_PATHS
from huracan_assets.exchange.replay.faults import DATA_FAULTS, FAULT_KINDS, Fault, FaultSet, apply_data_faults
from huracan_assets.exchange.replay.harness import (
    ReplayServerHandle,
    binance_client,
    point_ccxt_at,
    running_replay_server,
)
from huracan_assets.exchange.replay.market import (
    DEFAULT_KLINES_LIMIT,
    INTERVAL_MS,
    MAX_KLINES_LIMIT,
    MAX_SPREAD,
    PRECISION_SAMPLE,
    TRADE_SIZE_QUOTE,
    Bars,
    ReplayError,
    ReplayExchange,
    SymbolFile,
    corwin_schultz_spread,
    iso_ms,
    parse_time_ms,
)

__all__ = [
    "CONTROL_PREFIX",
    "DATA_FAULTS",
    "DATA_FAULTS_KEY",
    "DEFAULT_KLINES_LIMIT",
    "FAULT_KINDS",
    "INTERVAL_MS",
    "KLINES_PATHS",
    "MAX_KLINES_LIMIT",
    "MAX_SPREAD",
    "PRECISION_SAMPLE",
    "STATE_KEY",
    "TRADE_SIZE_QUOTE",
    "Bars",
    "Fault",
    "FaultSet",
    "ReplayError",
    "ReplayExchange",
    "ReplayServerHandle",
    "ServerState",
    "SymbolFile",
    "apply_data_faults",
    "binance_client",
    "corwin_schultz_spread",
    "iso_ms",
    "main",
    "make_app",
    "parse_time_ms",
    "point_ccxt_at",
    "running_replay_server",
    "serve",
]
