"""Kalman-filtered trend slope."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from numba import njit

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import log_returns, rolling_std, sign_or_wait

VAR_FLOOR = 1e-12  # a floor on the per-bar return variance (a 0.1 bp std), so a frozen price stays defined


@njit(cache=True, nogil=True)
def _llt_slope_tstat(y, var, q_level, q_slope, obs_r, init_scale):
    """Forward (filtering only) pass of the local-linear-trend Kalman filter: slope / std(slope) per bar.

    The state is (level, slope); level_t = level_{t-1} + slope_{t-1} + noise, slope_t = slope_{t-1} + noise,
    y_t = level_t + noise. Noise variances are ``var[t]`` times ``q_level``, ``q_slope`` and ``obs_r``. The
    filter starts at the first bar with finite ``y`` and ``var`` (level = y, slope = 0, diffuse covariance);
    a bar with missing ``y`` is predicted but not updated and reports NaN. Returns (tstat, start index).
    """
    n = y.shape[0]
    out = np.full(n, np.nan)
    start = -1
    lv = sl = p00 = p01 = p11 = 0.0
    v = np.nan
    for t in range(n):
        if np.isfinite(var[t]):
            v = max(var[t], VAR_FLOOR)
        if start < 0:
            if np.isfinite(y[t]) and np.isfinite(v):
                start = t
                lv, sl = y[t], 0.0
                p00, p01, p11 = init_scale * v, 0.0, v
                out[t] = 0.0
            continue
        # predict
        lv = lv + sl
        p00 = p00 + 2.0 * p01 + p11 + q_level * v
        p01 = p01 + p11
        p11 = p11 + q_slope * v
        if not np.isfinite(y[t]):
            continue
        # update
        s = p00 + obs_r * v
        k0, k1 = p00 / s, p01 / s
        innov = y[t] - lv
        lv = lv + k0 * innov
        sl = sl + k1 * innov
        p11 = p11 - k1 * p01
        p01 = p01 - k0 * p01
        p00 = p00 - k0 * p00
        out[t] = sl / np.sqrt(p11) if p11 > 0 else 0.0
    return out, start


@register_engine
class KalmanTrend(BaseEngine):
    """Trend following on the slope of a local-linear-trend Kalman filter of the log close (causal filtering,
    never smoothing). The hidden state is a level and a slope (drift per bar); each bar the level moves by the
    slope plus noise, the slope drifts slowly, and the log close is the level plus noise. Noise variances are
    ``q_level``, ``q_slope`` and ``obs_r`` times the trailing variance of 1-bar log returns over ``vol_window``
    bars, so the filter is scale-free across coins and volatility regimes; a small ``q_slope`` makes a slow,
    steady trend estimate. The filter starts diffuse (level = first close, slope 0 with the variance of one
    bar's return, the level ``init_scale`` times that). The engine buys when the filtered slope divided by
    its filtered std exceeds ``t_stat``, sells below minus ``t_stat``, waits in between; the first
    ``settle_bars`` filtered bars are warm-up."""

    name = "kalman_trend"
    family = "trend"
    defaults: ClassVar[Mapping[str, Any]] = {
        "q_level": 0.05,
        "q_slope": 1e-4,
        "obs_r": 1.0,
        "init_scale": 100.0,
        "vol_window": 168,
        "t_stat": 2.0,
        "settle_bars": 48,
    }

    def warmup_bars(self, bar_minutes: int) -> int:
        return int(self.params["vol_window"]) + int(self.params["settle_bars"]) + 1

    def directions(self, inp: EngineInput) -> np.ndarray:
        p = self.params
        close = inp.np("close")
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log(close)
        var = rolling_std(log_returns(close), int(p["vol_window"])) ** 2
        tstat, start = _llt_slope_tstat(
            y, var, float(p["q_level"]), float(p["q_slope"]), float(p["obs_r"]), float(p["init_scale"])
        )
        if start >= 0:
            tstat[: start + int(p["settle_bars"])] = np.nan
        t = p["t_stat"]
        return sign_or_wait(tstat > t, tstat < -t, np.isfinite(tstat))
