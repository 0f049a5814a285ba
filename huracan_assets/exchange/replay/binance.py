"""Binance's wire format around the replay data: the paths, compact JSON bodies, ``{"code", "msg"}`` error bodies
and the parsing of request parameters (with Binance's error codes and messages).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from aiohttp import web

from huracan_assets.exchange.replay.market import ReplayError

KLINES_PATHS = ("/api/v3/klines", "/api/v3/uiKlines")
CONTROL_PREFIX = "/_replay"


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
