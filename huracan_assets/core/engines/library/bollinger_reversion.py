"""Bollinger band mean reversion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import rolling_mean, rolling_std, sign_or_wait

REL_TOL = 1e-9  # a close within 1e-9 (relative) of a band is not outside it (guards flat windows against rounding)


@register_engine
class BollingerReversion(BaseEngine):
    """Mean reversion on Bollinger bands: the bands are the ``window``-bar simple moving average of the close
    plus and minus ``k`` sample standard deviations of the close over the same bars (the current bar
    included). A close below the lower band is treated as stretched too far down and buys; a close above the
    upper band sells; inside the bands the engine waits. Parameters: ``window`` the band length in bars,
    ``k`` the band half-width in standard deviations."""

    name = "bollinger_reversion"
    family = "reversion"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 20, "k": 2.0}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["window"])

    def directions(self, inp: EngineInput) -> np.ndarray:
        window, k = int(self.params["window"]), float(self.params["k"])
        close = inp.np("close")
        mean, std = rolling_mean(close, window), rolling_std(close, window)
        tol = REL_TOL * np.abs(mean)
        defined = np.isfinite(mean) & np.isfinite(std) & np.isfinite(close)
        return sign_or_wait(close < mean - k * std - tol, close > mean + k * std + tol, defined)
