"""Volume-spike continuation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import hold_events, lag, rolling_mean, rolling_std, sign_or_wait


@register_engine
class VolumeSpikeContinuation(BaseEngine):
    """Continuation after a high-volume, large-body bar: a bar that trades far more than usual and moves
    decisively from open to close signals informed or forced flow that tends to continue. A bar is a spike
    when its volume is more than ``z`` sample standard deviations above the mean volume of the ``window`` bars
    before it, and its body |close - open| is at least ``body`` times the mean high-low range of those bars.
    A spike with a green body buys, a red body sells, and the direction is held for ``hold`` more bars
    (unless a newer spike replaces it); otherwise the engine waits. Parameters: ``window`` the baseline in
    bars, ``z`` the volume z-score threshold, ``body`` the body size in average bar ranges, ``hold`` the extra
    bars a spike keeps its direction."""

    name = "volume_spike_continuation"
    family = "volume"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 48, "z": 3.0, "body": 1.0, "hold": 3}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["window"])

    def directions(self, inp: EngineInput) -> np.ndarray:
        window = int(self.params["window"])
        open_, high, low, close, volume = (inp.np(c) for c in ("open", "high", "low", "close", "volume"))
        base_mean, base_std = lag(rolling_mean(volume, window), 1), lag(rolling_std(volume, window), 1)
        base_range = lag(rolling_mean(high - low, window), 1)
        body = close - open_
        spike = (volume - base_mean > float(self.params["z"]) * base_std) & (
            np.abs(body) >= float(self.params["body"]) * base_range
        )
        defined = np.isfinite(base_mean) & np.isfinite(base_std) & np.isfinite(base_range) & np.isfinite(body)
        events = sign_or_wait(spike & (body > 0.0), spike & (body < 0.0), defined)
        return np.where(defined, hold_events(events, int(self.params["hold"])), np.nan)
