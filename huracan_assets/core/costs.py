"""Round-trip trading costs per bar, in basis points: fees, bid-ask spread, slippage and funding.

Pure numpy / polars; no I/O. Every signal's expected edge (bps) is compared to the round-trip cost of
trading it: ``net = edge - cost`` and a trade is taken only when ``net >= net_edge_floor_bps``
(:meth:`CostModel.should_trade`). All per-bar estimates are **causal**: the value at bar t reads bars
``<= t`` only (trailing windows) and daily spreads of days before t's day only, so cutting the future never
changes the past. The spread estimators themselves (Corwin-Schultz, Abdi-Ranaldo, Roll) are in
:mod:`huracan_assets.core.spreads`.

Round trip (:meth:`CostModel.round_trip_bps`), one entry and one exit of the same size:

* ``fee_bps = 2 * fee``, the venue's taker fee (market orders, the default) or maker fee (``taker=False``).
* ``spread_bps``: **one full quoted spread** per round trip, half paid on the way in (buying at the ask,
  half a spread above the mid) and half on the way out (selling at the bid). Two sources:

  - **daily spreads** (production, the ``spreads`` asset): one estimate per coin-day from the finest bars the
    exchange serves (5m), :func:`day_spread_frame`. A bar of day D pays the median of the estimates of the
    ``spread_days`` days before D (never D's own: :func:`trailing_day_spreads`), floored at
    ``max(min_spread_bps, one tick)`` and capped at ``max_spread_bps``;
  - **per-bar** (no daily spreads given): the range-based estimator on the frame's own bars over a trailing
    window of ``spread_window`` bars, clipped to ``[min_spread_bps, max_spread_bps]``. On bars of 1h and more
    this mostly measures volatility (below); benchmarks and frames without a ``spreads`` history use it.
* ``slippage_bps = 2 * per-side slippage`` (:meth:`CostModel.slippage_bps`), the price moving away while
  the order fills: the square-root market impact ``Y * sigma_daily * sqrt(Q / V_daily)`` (plus an
  uncalibrated volatility term, off by default).
* ``funding_bps = funding_bps_per_8h * horizon_minutes / 480``: perpetual futures only (0 for spot), the
  funding paid over the holding horizon, linear in time. A positive rate is a cost; the model does not know
  the side, so treat it as the rate the position pays.
* ``total_bps`` is the sum of the four.

**Warm-up and undefined estimates.** The spread is undefined where its trailing window holds too few defined
values (per-bar: bar pairs at the start of a frame or after missing / invalid prices; daily: fewer than
``ceil(spread_days / 2)`` days with an estimate before the bar's day). :meth:`CostModel.spread_bps` then uses
the cap, ``max_spread_bps``: the conservative choice. The alternatives either look ahead (back-filling from
the first defined value, which is a later bar) or understate the cost (the floor). With the default cap of
500 bps no signal trades during warm-up. The slippage has no cap and stays NaN where undefined (fewer than the
minimum number of returns in its window), so ``total_bps`` is NaN there and :meth:`CostModel.should_trade`
says no (NaN never trades).

**Range-based spreads and the bar size** (``huracan_assets_tests/benchmarks/bench_spread_estimators.py``,
RESULTS.md). The estimators separate the spread from volatility with the assumption that, inside one bar, the
high-low range (Corwin-Schultz), the close's position in it (Abdi-Ranaldo) or the bounce of consecutive
returns (Roll) is the spread plus diffusion over a short time. On Binance spot 2024-01..09, daily estimates from
5m, 15m and 1h bars of the same days: Corwin-Schultz doubles with each tripling of the bar (BTC/USDT median day
4.3 / 8.6 / 18.1 bps; 4x from 5m to 1h on every coin) and so does the median day of Roll: they measure
volatility. Abdi-Ranaldo's centre does not grow: its terms pooled over the eight months are negative (0 bps) on
5m and on 1h bars for every liquid coin (a few bps on 15m for SOL and LTC); the median day on 5m bars is 0 for
the majors (at or below the estimator's resolution), 0-1.4 bps for mid caps and 8.8 bps for the thin JUV/USDT.
Its daily noise does grow with the bar (the mean of the daily estimates, negative ones set to 0, is 4.6-7.9x
larger on 1h than on 5m bars), so the finest bars win. Binance's real quoted spread is one tick: 0.002 bp on
BTC/USDT, 0.7 bp on SOL/USDT, 1-3 bps on coins with a coarse tick (AVAX, BCH, XRP, NEAR). Hence the production
choice: Abdi-Ranaldo on 5m bars, one estimate per day, the median over the days before, floored at one tick (a
quoted spread is never below a tick) and at ``min_spread_bps``. In volatile weeks the 5m noise still shows
(SOL/USDT, March 2024: 7-8 bps, against 1.75 bps on average over the eight months); 1m bars would cut it
(``spread_timeframe``), untested here.

The estimators themselves, their window convention and their references: :mod:`huracan_assets.core.spreads`.

References:

* Square-root law of market impact: Tóth, B., Lempérière, Y., Deremble, C., de Lataillade, J., Kockelkoren, J.
  & Bouchaud, J.-P. (2011), "Anomalous price impact and the critical nature of liquidity in financial
  markets", *Physical Review X* 1, 021006 (``I = Y sigma sqrt(Q / V)`` with Y of order one); Almgren, R.,
  Thum, C., Hauptmann, E. & Li, H. (2005), "Direct Estimation of Equity Market Impact", *Risk* 18(7), 58-62
  (fitted coefficients below one: temporary impact eta = 0.142 with exponent 3/5, permanent gamma = 0.314).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import polars as pl

from huracan_assets.core.market_data.candles import DAY_MS
from huracan_assets.core.spreads import (
    BPS,
    SPREAD_ESTIMATORS,
    _as_float,
    _check_window,
    _trailing_mean,
    _windows,
    abdi_ranaldo_bps,
    corwin_schultz_bps,
    pooled_spread_bps,
    roll_bps,
)

MINUTES_PER_FUNDING = 480  # Binance perpetuals settle funding every 8 hours
COST_COLUMNS = ("fee_bps", "spread_bps", "slippage_bps", "funding_bps", "total_bps")
# one row per coin-day of the ``spreads`` asset (:func:`day_spread_frame`)
SPREAD_SCHEMA: dict[str, Any] = {
    "day": pl.Date,
    "spread_bps": pl.Float64,  # the day's estimate (NaN: fewer than 2 defined pairs)
    "tick_bps": pl.Float64,  # the smallest price step seen on the day, in bps of the median close (NaN: none)
    "estimator": pl.String,
    "bar_minutes": pl.Int32,  # the bars the estimate comes from
    "n_bars": pl.Int64,
    "n_pairs": pl.Int64,  # defined pair terms behind the estimate
    "coarse": pl.Boolean,  # True: the finest bars were not served; the estimate comes from the training bars
    "note": pl.String,  # why it is coarse ("" otherwise)
}


@dataclass(frozen=True)
class FeeSchedule:
    """Fees of one venue in bps of the traded notional, per side (a negative maker fee is a rebate)."""

    maker_bps: float
    taker_bps: float

    def __post_init__(self) -> None:
        for name in ("maker_bps", "taker_bps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.taker_bps < 0:
            raise ValueError(f"taker_bps must be >= 0, got {self.taker_bps}")


VENUE_FEES: dict[str, FeeSchedule] = {
    # Binance spot, VIP 0, fees paid in the quote asset (no BNB discount): 0.1% maker and taker
    "binance_spot": FeeSchedule(maker_bps=10.0, taker_bps=10.0),
    # Binance spot, VIP 0, fees paid in BNB (25% discount)
    "binance_spot_bnb": FeeSchedule(maker_bps=7.5, taker_bps=7.5),
    # Binance USDⓈ-M perpetuals, VIP 0: 0.02% maker, 0.05% taker
    "binance_usdm": FeeSchedule(maker_bps=2.0, taker_bps=5.0),
}


# ------------------------------------------------------------------------------------------ helpers


def _trailing_std(x: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """Sample std (ddof 1, two-pass) of the defined values of the trailing window; NaN below min_periods."""
    if x.size == 0:
        return x.copy()
    view = _windows(x, window)
    count = np.sum(~np.isnan(view), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(view, axis=1) / count
        squares = np.nansum((view - mean[:, None]) ** 2, axis=1)
        return np.where(count >= max(min_periods, 2), np.sqrt(squares / (count - 1)), np.nan)


# ------------------------------------------------------------------------------------------ daily spreads


def tick_bps(frame: pl.DataFrame) -> float:
    """The smallest step between distinct prices (open, high, low, close) of the bars, in bps of their median
    close: an estimate (an upper bound) of the venue's tick size, since a quoted spread is at least one tick.

    Over a day of 5m bars the prices sit on every tick near each other, so this is the tick (Binance spot
    2024: BTC/USDT 0.01 = 0.002 bp, SOL/USDT 0.01 = 0.7 bp, AVAX/USDT 0.01 = 2.9 bps). Steps below 1e-9 of the
    highest price are float noise and ignored. NaN without two distinct positive prices.
    """
    if frame.height == 0:
        return math.nan
    prices = np.unique(np.concatenate([_as_float(frame[c]) for c in ("open", "high", "low", "close")]))
    prices = prices[np.isfinite(prices) & (prices > 0)]
    if prices.size < 2:
        return math.nan
    steps = np.diff(prices)
    steps = steps[steps > prices[-1] * 1e-9]
    close = _as_float(frame["close"])
    median = float(np.nanmedian(close[close > 0])) if (close > 0).any() else math.nan
    return float(steps.min() / median * BPS) if steps.size and median > 0 else math.nan


def day_spread_frame(
    bars: pl.DataFrame, day: Any, estimator: str, bar_minutes: int, *, coarse: bool = False, note: str = ""
) -> pl.DataFrame:
    """The ``spreads`` row (:data:`SPREAD_SCHEMA`) of one coin-day from that day's bars (sorted by ``ts``):
    :func:`huracan_assets.core.spreads.pooled_spread_bps` over the day's pairs (pairs inside the day only) and
    :func:`tick_bps`."""
    if estimator not in SPREAD_ESTIMATORS:
        raise ValueError(f"spread_estimator must be one of {SPREAD_ESTIMATORS}, got {estimator!r}")
    high, low, close = _columns(bars, "high", "low", "close")
    spread, pairs = pooled_spread_bps(estimator, high, low, close)
    row = {
        "day": [day],
        "spread_bps": [spread],
        "tick_bps": [tick_bps(bars)],
        "estimator": [estimator],
        "bar_minutes": [bar_minutes],
        "n_bars": [bars.height],
        "n_pairs": [pairs],
        "coarse": [coarse],
        "note": [note],
    }
    return pl.DataFrame(row, schema=SPREAD_SCHEMA)


def trailing_day_spreads(ts: Any, spreads: pl.DataFrame, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Per bar (open time ``ts``, ms), the medians of ``spread_bps`` and of ``tick_bps`` over the ``days`` UTC
    days before the bar's day: days ``D - days .. D - 1`` for a bar of day D, never D itself (D's estimate is
    known only at the end of D). Defined values only; the spread is NaN with fewer than ``ceil(days / 2)`` of
    them, the tick NaN with none. ``spreads`` has the columns ``day`` (date) and ``spread_bps``, ``tick_bps``;
    days may be missing, duplicates keep the last row.
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be an int >= 1, got {days!r}")
    bar_day = np.floor_divide(_as_float(ts), DAY_MS).astype(np.int64) if len(ts) else np.zeros(0, np.int64)
    nan = np.full(bar_day.size, np.nan)
    known = spreads.select(
        pl.col("day").cast(pl.Date).cast(pl.Int64).alias("d"), pl.col("spread_bps"), pl.col("tick_bps")
    ).unique("d", keep="last")
    if bar_day.size == 0 or known.height == 0:
        return nan, nan.copy()
    first = min(int(known["d"].min()), int(bar_day.min()) - days)
    last = int(bar_day.max())
    dense = np.full((2, last - first + 1), np.nan)
    inside = known.filter(pl.col("d").is_between(first, last))
    idx = inside["d"].to_numpy() - first
    dense[0, idx] = _as_float(inside["spread_bps"])
    dense[1, idx] = _as_float(inside["tick_bps"])
    # row j of the view = the `days` days ending at day first + j; a bar of day d reads the row ending at d - 1
    rows = bar_day - 1 - first
    out = []
    for k, least in ((0, math.ceil(days / 2)), (1, 1)):
        view = _windows(dense[k], days)[rows]
        count = np.sum(~np.isnan(view), axis=1)
        with warnings.catch_warnings():  # all-NaN rows: "All-NaN slice encountered"
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(view, axis=1)
        out.append(np.where(count >= least, med, np.nan))
    return out[0], out[1]


def trailing_vol_bps(close: Any, window: int, *, min_periods: int | None = None) -> np.ndarray:
    """Sample std (ddof 1) of the log close-to-close returns of the ``window`` returns ending at t, in bps.

    Return t is ``ln(close[t] / close[t-1])`` (NaN at t = 0 and where a close is missing or non-positive); the
    std is over the defined returns, NaN with fewer than ``min_periods`` (default ``max(2, ceil(window / 2))``,
    at most ``window``). Causal: reads closes ``t - window .. t``.
    """
    minp = _check_window(window, min_periods, least=2)
    c = _as_float(close)
    with np.errstate(invalid="ignore", divide="ignore"):
        lc = np.where(c > 0, np.log(np.where(c > 0, c, 1.0)), np.nan)
    returns = np.concatenate([[np.nan], np.diff(lc)]) if lc.size else lc
    return _trailing_std(returns, int(window), minp) * BPS


# ------------------------------------------------------------------------------------------ cost model

_FEE_KEYS = ("venue", "maker_bps", "taker_bps")


def _number(name: str, value: Any, low: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")


@dataclass(frozen=True)
class CostModel:
    """Round-trip cost of a trade per bar, in bps (module doc for the components and the warm-up rule).

    ``fees``: the venue's schedule; ``taker``: entries and exits are market (taker) orders, else maker.
    ``spread_estimator``: Abdi-Ranaldo (default), Corwin-Schultz or Roll. With daily spreads (the ``spreads``
    asset, estimated from the finest bars) a bar pays the median of the ``spread_days`` days before its day;
    without them, the estimator on the frame's own bars over ``spread_window`` bars. Either is floored at
    ``min_spread_bps`` (and at one tick with daily spreads), capped at ``max_spread_bps``, and is the cap where
    undefined. Slippage per side: ``impact_y * vol_bps * sqrt(order / bar quote volume)`` (the square-root law,
    :meth:`slippage_bps`) plus ``slippage_vol_coef * vol_bps`` (uncalibrated; 0 by default), with trailing
    windows of ``vol_window`` bars. ``funding_bps_per_8h``: perpetuals only, 0 for spot.
    ``net_edge_floor_bps``: the smallest net edge worth trading.
    """

    fees: FeeSchedule
    taker: bool = True
    spread_estimator: Literal["corwin_schultz", "abdi_ranaldo", "roll"] = "abdi_ranaldo"
    spread_window: int = 24
    spread_days: int = 7
    min_spread_bps: float = 1.0
    max_spread_bps: float = 500.0
    # an extra slippage of this many bar volatilities per side: no calibration behind it, so 0 (off)
    slippage_vol_coef: float = 0.0
    # Y of the square-root law (Tóth et al. 2011: "of order one"; Almgren et al. 2005 fit 0.142 and 0.314):
    # 1.0 is the conservative end of the literature
    impact_y: float = 1.0
    vol_window: int = 24
    funding_bps_per_8h: float = 0.0
    net_edge_floor_bps: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.fees, FeeSchedule):
            raise ValueError(f"fees must be a FeeSchedule, got {self.fees!r}")
        if not isinstance(self.taker, bool):
            raise ValueError(f"taker must be a bool, got {self.taker!r}")
        if self.spread_estimator not in SPREAD_ESTIMATORS:
            raise ValueError(f"spread_estimator must be one of {SPREAD_ESTIMATORS}, got {self.spread_estimator!r}")
        for name, least in (("spread_window", 1), ("spread_days", 1), ("vol_window", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
        for name in ("min_spread_bps", "slippage_vol_coef", "impact_y"):
            _number(name, getattr(self, name), low=0.0)
        _number("max_spread_bps", self.max_spread_bps, low=self.min_spread_bps)
        _number("funding_bps_per_8h", self.funding_bps_per_8h)
        _number("net_edge_floor_bps", self.net_edge_floor_bps)

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any]) -> CostModel:
        """Build from a config mapping: ``venue`` (a key of :data:`VENUE_FEES`) and/or ``maker_bps`` /
        ``taker_bps``, plus any other field of the class. Explicit fees override the venue's; without a venue
        both fees are required. Unknown keys, an unknown venue or bad values raise ValueError.
        """
        data = dict(mapping)
        fields_ = {f.name for f in fields(cls)} - {"fees"}
        unknown = sorted(set(data) - fields_ - set(_FEE_KEYS))
        if unknown:
            raise ValueError(f"unknown cost model keys {unknown}; known: {sorted(fields_ | set(_FEE_KEYS))}")
        venue = data.pop("venue", None)
        maker = data.pop("maker_bps", None)
        taker = data.pop("taker_bps", None)
        if venue is not None:
            if venue not in VENUE_FEES:
                raise ValueError(f"unknown venue {venue!r}; known: {sorted(VENUE_FEES)}")
            base = VENUE_FEES[venue]
            maker = base.maker_bps if maker is None else maker
            taker = base.taker_bps if taker is None else taker
        elif maker is None or taker is None:
            raise ValueError("a cost model needs a 'venue' or both 'maker_bps' and 'taker_bps'")
        return cls(fees=FeeSchedule(maker_bps=maker, taker_bps=taker), **data)

    # -------------------------------------------------------------------------------- per-bar components

    @property
    def fee_bps(self) -> float:
        """Fee per side: taker or maker."""
        return float(self.fees.taker_bps if self.taker else self.fees.maker_bps)

    def spread_bps(self, frame: pl.DataFrame, spreads: pl.DataFrame | None = None) -> np.ndarray:
        """Full quoted spread per bar (bps); the cap ``max_spread_bps`` where the estimate is undefined (warm-up,
        missing prices): never a later bar's or a later day's value.

        * ``spreads`` given (the ``spreads`` asset's rows of the coin, :data:`SPREAD_SCHEMA`): the median of the
          daily estimates of the ``spread_days`` days before the bar's day (:func:`trailing_day_spreads`),
          floored at ``max(min_spread_bps, median tick)`` and capped.
        * ``spreads`` None: the estimator's trailing value over ``spread_window`` of the frame's own bars,
          clipped to ``[min_spread_bps, max_spread_bps]`` (coarse on bars of 1h and more: module doc).
        """
        if spreads is not None:
            _columns(frame)  # sorted, unique timestamps
            raw, tick = trailing_day_spreads(frame["ts"], spreads, self.spread_days)
            floor = np.fmax(self.min_spread_bps, tick)  # fmax: a NaN tick leaves min_spread_bps
            return np.where(np.isnan(raw), self.max_spread_bps, np.minimum(np.maximum(raw, floor), self.max_spread_bps))
        high, low, close = _columns(frame, "high", "low", "close")
        if self.spread_estimator == "corwin_schultz":
            raw = corwin_schultz_bps(high, low, self.spread_window)
        elif self.spread_estimator == "roll":
            raw = roll_bps(close, self.spread_window)
        else:
            raw = abdi_ranaldo_bps(high, low, close, self.spread_window)
        return np.where(np.isnan(raw), self.max_spread_bps, np.clip(raw, self.min_spread_bps, self.max_spread_bps))

    def slippage_bps(self, frame: pl.DataFrame, order_notional: float) -> np.ndarray:
        """Slippage of one side (bps) per bar, for an order of ``order_notional`` (Q) in the quote currency:

        ``impact_y * vol[t] * sqrt(Q / quote_volume[t]) + slippage_vol_coef * vol[t]``

        * ``vol[t]``: :func:`trailing_vol_bps` of the closes over ``vol_window`` returns ending at t (per bar).
        * ``quote_volume[t]``: the mean quote volume ``close * volume`` of the ``vol_window`` bars ending at t
          (the typical bar's turnover; defined bars only, same minimum count as the volatility).
        * The first term is the square-root law of market impact, ``Y * sigma_daily * sqrt(Q / V_daily)``
          (Tóth et al. 2011), with the trailing daily volatility ``sigma_daily = vol * sqrt(n)`` and daily traded
          value ``V_daily = n * quote_volume`` of n bars a day: n cancels, so it is computed per bar, whatever
          the bar size. ``Y = impact_y``, 1 by default (module doc: the literature puts Y at or below one). For
          a 1,000 USDT order on BTC/USDT 1h bars (vol about 50 bps, 60M USDT an hour) that is 0.2 bp per side.
          The law is measured on metaorders, orders split over time into many trades; a small order that fits
          inside the best quote has less impact (it pays the half spread, counted in ``spread_bps``), so this is
          conservative for small orders.
        * The second term is an extra slippage proportional to volatility: uncalibrated, 0 by default.

        A zero order has no impact term; a positive order against zero (or undefined) trailing turnover is NaN:
        there is nothing to trade against, no trade. NaN where the volatility is undefined (warm-up).
        """
        _number("order_notional", order_notional, low=0.0)
        close, volume = _columns(frame, "close", "volume")
        vol = trailing_vol_bps(close, self.vol_window)
        if order_notional == 0:
            return self.slippage_vol_coef * vol
        minp = _check_window(self.vol_window, None, least=2)
        turnover = _trailing_mean(close * volume, self.vol_window, minp)
        with np.errstate(invalid="ignore", divide="ignore"):
            participation = np.where(turnover > 0, np.sqrt(order_notional / turnover), np.nan)
        return self.impact_y * vol * participation + self.slippage_vol_coef * vol

    def funding_bps(self, horizon_minutes: int) -> float:
        """Funding over the holding horizon: ``funding_bps_per_8h * horizon_minutes / 480`` (0 for spot)."""
        _number("horizon_minutes", horizon_minutes, low=0.0)
        return float(self.funding_bps_per_8h * horizon_minutes / MINUTES_PER_FUNDING)

    def round_trip_bps(
        self,
        frame: pl.DataFrame,
        order_notional: float,
        horizon_minutes: int,
        spreads: pl.DataFrame | None = None,
    ) -> pl.DataFrame:
        """Per bar, the cost of entering at bar t and exiting ``horizon_minutes`` later, in bps.

        Columns ``ts``, ``fee_bps`` (2 x fee), ``spread_bps`` (one full spread: half in, half out; from the daily
        ``spreads`` when given, :meth:`spread_bps`), ``slippage_bps`` (2 x per side), ``funding_bps`` and
        ``total_bps`` (their sum; NaN where the slippage is undefined). The exit's spread and slippage are taken
        as the entry bar's estimate (known at t).
        """
        funding = self.funding_bps(horizon_minutes)
        spread = self.spread_bps(frame, spreads)
        slippage = 2.0 * self.slippage_bps(frame, order_notional)
        fee = np.full(frame.height, 2.0 * self.fee_bps)
        fund = np.full(frame.height, funding)
        return pl.DataFrame(
            {
                "ts": frame["ts"],
                "fee_bps": fee,
                "spread_bps": spread,
                "slippage_bps": slippage,
                "funding_bps": fund,
                "total_bps": fee + spread + slippage + fund,
            },
            schema={"ts": frame.schema["ts"], **dict.fromkeys(COST_COLUMNS, pl.Float64)},
        )

    # -------------------------------------------------------------------------------- decisions

    @staticmethod
    def net_edge_bps(edge_bps: Any, cost_bps: Any) -> np.ndarray:
        """Expected edge minus round-trip cost (bps), elementwise with broadcasting; NaN in either gives NaN."""
        return _as_float(edge_bps) - _as_float(cost_bps)

    def should_trade(self, net_edge_bps: Any) -> np.ndarray:
        """True where the net edge is at least ``net_edge_floor_bps``; NaN is never a trade."""
        net = _as_float(net_edge_bps)
        return np.greater_equal(net, self.net_edge_floor_bps, where=~np.isnan(net), out=np.zeros(net.shape, bool))


def _columns(frame: pl.DataFrame, *names: str) -> list[np.ndarray]:
    missing = [n for n in ("ts", *names) if n not in frame.columns]
    if missing:
        raise ValueError(f"candles lack columns {missing}")
    ts = frame["ts"]
    if ts.null_count() or (frame.height > 1 and not (ts.diff().drop_nulls() > 0).all()):
        raise ValueError("candles must be sorted by ts with unique, non-null timestamps")
    return [_as_float(frame[n]) for n in names]
