"""A forward-only track record: each day appends that day's bars, never a bar twice.

The shadow window ``[D - S, D]`` is simulated afresh each day for the *decision* on a new challenger (a new
model has seen none of those bars). A track record is something else: the P&L a model (or a role) would have
booked, day after day, with nothing counted twice. A :class:`Ledger` holds one:

* ``append(day, trades, nav, trader_state)`` takes the result of simulating **only the bars of ``day``**,
  starting from the trader state the previous day left (an open position carries over midnight), and adds
  the trades that closed that day and the NAV at the day's close (a liquidation value: an open position is
  marked, not closed). Days move strictly forward; a day before ``since`` or not after the last one is refused.
* The champion's ledger starts the day after its promotion (``since``): a champion is judged only on bars
  after it was chosen. The challengers' ledger is "always trade the latest challenger": one record per coin
  that the next day's challenger continues (the carried position is managed to its barrier exit).
* The NAV compounds: ``nav = previous nav x (day's closing equity / day's opening equity)``, so the daily
  return of the ledger is the day's return of the trader's equity, whatever the trader's own scale.

Pure: numpy and the standard library; the state round-trips through JSON (``to_json`` / ``from_json``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np

from huracan_assets.core.shadow.trader import ShadowResult

ROLES = ("champion", "challenger")


@dataclass(frozen=True)
class Ledger:
    role: str
    since: date  # first day whose bars the ledger holds
    model_id: str | None = None  # the champion's model id; None for the challengers' rolling ledger
    last_day: date | None = None  # last day appended
    nav: float = 1.0  # NAV at the last appended day's close (1.0 at the start)
    peak: float = 1.0
    max_drawdown: float = 0.0  # largest fall of the daily closing NAV below its running peak
    trade_net_bps: tuple[float, ...] = ()  # net bps of every trade closed since ``since``, in order
    trade_gross_bps: tuple[float, ...] = ()
    trade_cost_bps: tuple[float, ...] = ()
    daily_navs: tuple[float, ...] = ()  # NAV at each appended day's close
    days: tuple[date, ...] = ()  # the appended days, in order (a day without data is simply not there)
    daily_trade_counts: tuple[int, ...] = ()  # trades closed on each appended day
    trader_state: dict | None = field(default=None, compare=False)  # the trader's state at the last close

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")
        if not (math.isfinite(self.nav) and self.nav > 0):
            raise ValueError(f"nav must be finite and > 0, got {self.nav!r}")

    # ------------------------------------------------------------------------------------------- update
    def append(
        self,
        day: date,
        trades_net_bps: Sequence[float],
        day_return: float,
        trader_state: dict | None,
        trades_gross_bps: Sequence[float] | None = None,
        trades_cost_bps: Sequence[float] | None = None,
    ) -> Ledger:
        """The ledger with ``day`` appended: the trades closed on it and its return (closing over opening
        equity of the day's simulation)."""
        if day < self.since:
            raise ValueError(f"{self.role} ledger starts {self.since}: {day} is before it")
        if self.last_day is not None and day <= self.last_day:
            raise ValueError(f"{self.role} ledger already holds {self.last_day}: {day} would count bars twice")
        if not (math.isfinite(day_return) and day_return > -1.0):
            raise ValueError(f"day return must be finite and > -1, got {day_return!r}")
        net = [float(x) for x in trades_net_bps]
        gross = [float(x) for x in (trades_gross_bps if trades_gross_bps is not None else [math.nan] * len(net))]
        cost = [float(x) for x in (trades_cost_bps if trades_cost_bps is not None else [math.nan] * len(net))]
        if not (len(net) == len(gross) == len(cost)) or not all(math.isfinite(x) for x in net):
            raise ValueError("one finite net bps per trade (and as many gross and cost values) is required")
        nav = self.nav * (1.0 + day_return)
        peak = max(self.peak, nav)
        return replace(
            self,
            last_day=day,
            nav=nav,
            peak=peak,
            max_drawdown=max(self.max_drawdown, 1.0 - nav / peak),
            trade_net_bps=(*self.trade_net_bps, *net),
            trade_gross_bps=(*self.trade_gross_bps, *gross),
            trade_cost_bps=(*self.trade_cost_bps, *cost),
            daily_navs=(*self.daily_navs, nav),
            days=(*self.days, day),
            daily_trade_counts=(*self.daily_trade_counts, len(net)),
            trader_state=trader_state,
        )

    # ------------------------------------------------------------------------------------------- reading
    @property
    def n_trades(self) -> int:
        return len(self.trade_net_bps)

    def daily_returns(self) -> np.ndarray:
        navs = np.asarray((1.0, *self.daily_navs), dtype=np.float64)
        return navs[1:] / navs[:-1] - 1.0

    def window(self, first_day: date) -> tuple[np.ndarray, np.ndarray, float]:
        """The record from ``first_day`` on: net bps of the trades closed then, the daily returns, and the
        largest drawdown of the NAV over those days (from the NAV the day before ``first_day``)."""
        k = sum(1 for d in self.days if d >= first_day)
        n = sum(self.daily_trade_counts[len(self.days) - k :]) if k else 0
        net = np.asarray(self.trade_net_bps[len(self.trade_net_bps) - n :] if n else (), dtype=np.float64)
        returns = self.daily_returns()[len(self.days) - k :] if k else np.zeros(0)
        curve = np.cumprod(np.concatenate(([1.0], 1.0 + returns)))
        drawdown = float(np.max(1.0 - curve / np.maximum.accumulate(curve)))
        return net, returns, drawdown

    def stats(self) -> dict[str, Any]:
        """n_trades, hit_rate, gross/cost/net bps per trade (NaN without trades), nav, total_return, max DD."""
        net = np.asarray(self.trade_net_bps, dtype=np.float64)
        has = net.size > 0

        def mean(values: tuple[float, ...]) -> float:
            arr = np.asarray(values, dtype=np.float64)
            return float(arr.mean()) if arr.size and np.isfinite(arr).all() else math.nan

        return {
            "since": self.since.isoformat(),
            "days": len(self.daily_navs),
            "n_trades": int(net.size),
            "hit_rate": float((net > 0).mean()) if has else math.nan,
            "gross_bps_per_trade": mean(self.trade_gross_bps),
            "cost_bps_per_trade": mean(self.trade_cost_bps),
            "net_bps_per_trade": float(net.mean()) if has else math.nan,
            "nav": self.nav,
            "total_return": self.nav - 1.0,
            "max_drawdown": self.max_drawdown,
        }

    # ----------------------------------------------------------------------------------------- storage
    def to_json(self) -> str:
        doc = asdict(self)
        doc["since"] = self.since.isoformat()
        doc["last_day"] = self.last_day.isoformat() if self.last_day else None
        doc["days"] = [d.isoformat() for d in self.days]
        for k in ("trade_net_bps", "trade_gross_bps", "trade_cost_bps", "daily_navs"):
            doc[k] = [None if not math.isfinite(v) else v for v in doc[k]]
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Ledger:
        doc = json.loads(text)
        for k in ("trade_net_bps", "trade_gross_bps", "trade_cost_bps", "daily_navs"):
            doc[k] = tuple(math.nan if v is None else float(v) for v in doc.get(k, []))
        doc["since"] = date.fromisoformat(doc["since"])
        doc["last_day"] = date.fromisoformat(doc["last_day"]) if doc.get("last_day") else None
        doc["days"] = tuple(date.fromisoformat(d) for d in doc.get("days", []))
        doc["daily_trade_counts"] = tuple(int(n) for n in doc.get("daily_trade_counts", []))
        return cls(**doc)


def ledger_day(ledger: Ledger, day: date, result: ShadowResult, initial_equity: float) -> Ledger:
    """``ledger`` with ``day`` appended from a simulation of that day's bars alone, started from
    ``ledger.trader_state`` with the state carried (``result.state``): the trades it closed, and the day's
    return, from the NAV the day before to the equity at the day's last bar (a liquidation value). The trader's
    equity continues across days, so that equity over ``initial_equity`` is the NAV. A day without bars adds no
    trade and no return."""
    equity = result.equity["equity"]
    close = float(equity[-1]) / initial_equity if equity.len() else ledger.nav
    trades = result.trades
    parts = {}
    if trades.height:
        parts = {"trades_gross_bps": trades["gross_bps"].to_list(), "trades_cost_bps": trades["cost_bps"].to_list()}
    return ledger.append(day, trades["net_bps"].to_list(), close / ledger.nav - 1.0, result.state, **parts)
