"""Execution terms shared by the shadow trader and the walk-forward's scoring, defined once so the two agree.

Pure; no I/O. Both book a trade the same way (``core/shadow/trader.py`` bar by bar, ``core/training/dataset.py``
and ``core/validation/metrics.py`` from the labels):

* **Latency.** The signal of bar t is known at t's close. With a latency of L >= 1 bars it fills at the open of
  the first bar with ``ts >= t's ts + L bars`` (``ShadowSpec.latency_bars``, ``BarrierSpec.entry_lag_bars``; one
  setting, ``labels.entry_lag_bars``, drives both in production); L = 0 is a fill at t's own close.
* **Per-side costs.** The per-bar cost estimates (``fee_bps``, ``spread_bps``, ``slippage_bps`` of
  :meth:`CostModel.round_trip_bps`, the ``engine_signals`` columns) are round trips: a side pays half of each.
  The entry pays the halves of the **fill bar**'s estimates, the exit those of the **exit bar** (a bar without
  an estimate, NaN or null, falls back to the signal bar's: the ones the decision was made with).
* **Stop slippage** (:class:`StopSlippage`): a stop, and a gap through it, fills worse than the stop price (the
  labels' and the trader's exit price) by ``half_spreads x`` the exit bar's half-spread ``+ fixed_bps``, booked
  as a cost in bps of the notional, like the other costs, and reported on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StopSlippage:
    """The extra cost of a stop-loss exit, in bps of the notional: ``half_spreads * half_spread_bps + fixed_bps``
    where ``half_spread_bps`` is the exit bar's per-side spread (half its round-trip ``spread_bps``).

    Why a term at all: a stop is a market order triggered by a trade at (or through) the stop price, sent after
    the trigger into a market that is moving against it, so it fills beyond the trigger; a gap through the stop
    fills at the first price after the gap, and the order still has to cross the book there. The normal exit cost
    (half the spread plus the impact slippage) is paid too; this is the extra.

    Defaults, a judgement rather than a measurement (we have no fills): one more half-spread (the book has
    moved at least one level through the trigger by the time the market order lands) plus 2 bps (the trigger's
    latency in a fast market). With the production spreads (daily Abdi-Ranaldo from 5m bars: 1-3 bps on large
    caps, about 9 bps on a thin coin) that is about 2.5-7 bps per stop, small against a stop two hourly
    volatilities away (~100-400 bps) but not zero: stops are the trades where execution costs most.
    """

    half_spreads: float = 1.0
    fixed_bps: float = 2.0

    def __post_init__(self) -> None:
        for name in ("half_spreads", "fixed_bps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"StopSlippage.{name} must be a finite number >= 0, got {value!r}")

    def bps(self, half_spread_bps: Any) -> Any:
        """The stop's extra cost for an exit bar whose per-side spread is ``half_spread_bps`` (a number, a numpy
        array or a polars expression): ``half_spreads * half_spread_bps + fixed_bps``, in that order of operations
        (the trader's kernel does the same arithmetic, so the two agree to the last bit)."""
        return self.half_spreads * half_spread_bps + self.fixed_bps


DEFAULT_STOP_SLIPPAGE = StopSlippage()
NO_STOP_SLIPPAGE = StopSlippage(0.0, 0.0)
