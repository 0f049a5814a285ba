"""Ornstein-Uhlenbeck mean reversion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, rolling_mean, sign_or_wait


@register_engine
class OuReversion(BaseEngine):
    """Trade back to an estimated Ornstein-Uhlenbeck equilibrium. Over the last ``window`` bars the log close
    is regressed on its previous value, x_t = a + b x_{t-1} + e (an AR(1), the discrete OU process). With
    0 < b < 1 the price reverts to mu = a / (1 - b) with half-life -ln 2 / ln b bars and equilibrium std
    sigma_e / sqrt(1 - b^2) (sigma_e the residual std). The z-score is the current log close's distance from
    mu in equilibrium stds. When the half-life is at most ``max_half_life`` bars, a z-score above
    ``entry_z`` sells and below minus ``entry_z`` buys; otherwise (no reversion, b >= 1, too slow, a flat
    window) the engine waits. Log prices are taken relative to the frame's first close before the window
    moments are formed, for numerical precision."""

    name = "ou_reversion"
    family = "reversion"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 96, "entry_z": 1.5, "max_half_life": 24.0}

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["window"]) + 1

    def directions(self, inp: EngineInput) -> np.ndarray:
        p = self.params
        w = int(p["window"])
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(inp.np("close"))
        finite = np.flatnonzero(np.isfinite(x))
        x = x - (x[finite[0]] if finite.size else 0.0)
        xp = lag(x, 1)
        mx, my = rolling_mean(xp, w), rolling_mean(x, w)
        sxx = rolling_mean(xp * xp, w) - mx * mx
        sxy = rolling_mean(xp * x, w) - mx * my
        syy = rolling_mean(x * x, w) - my * my
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(sxx > 0, sxy / sxx, np.nan)
            reverting = (b > 0) & (b < 1)
            b_ok = np.where(reverting, b, 0.5)
            mu = (my - b_ok * mx) / (1.0 - b_ok)
            resid_var = np.maximum(syy - b_ok * sxy, 0.0)
            eq_std = np.sqrt(resid_var / (1.0 - b_ok * b_ok))
            z = np.where(eq_std > 0, (x - mu) / eq_std, 0.0)
            half_life = -np.log(2.0) / np.log(b_ok)
        active = reverting & (half_life <= p["max_half_life"]) & (eq_std > 0)
        e = p["entry_z"]
        defined = np.isfinite(sxx) & np.isfinite(sxy) & np.isfinite(syy) & np.isfinite(x)
        return sign_or_wait(active & (z < -e), active & (z > e), defined)
