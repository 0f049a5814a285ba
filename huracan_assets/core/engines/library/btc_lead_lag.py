"""BTC lead-lag catch-up."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from huracan_assets.core.engines.base import BaseEngine, EngineInput, register_engine
from huracan_assets.core.engines.library._util import lag, log_returns, rolling_mean, rolling_std, sign_or_wait


@register_engine
class BtcLeadLag(BaseEngine):
    """The reference coin (BTC) leads, the coin follows late. A reference move is large when its last
    ``k``-bar log return exceeds ``z_ref`` × its trailing volatility (std of 1-bar log returns over
    ``vol_window`` bars, scaled by sqrt(``k``)). The coin's expected move is beta × that return, with beta the
    coin-on-reference regression slope of 1-bar log returns over ``beta_window`` bars ending ``k`` bars ago
    (so the move itself does not bias it). If beta is at least ``beta_min`` and the coin has made less than
    ``catch_up`` of its expected move in the reference's direction, the engine trades the coin in the
    reference's direction (buy after a BTC jump, sell after a drop); otherwise it waits. BTC against itself
    always caught up (wait). Where the reference close is null in the windows the engine is not defined
    (NaN)."""

    name = "btc_lead_lag"
    family = "cross_asset"
    defaults: ClassVar[Mapping[str, Any]] = {
        "k": 3,
        "z_ref": 2.0,
        "vol_window": 168,
        "beta_window": 168,
        "beta_min": 0.2,
        "catch_up": 0.5,
    }

    def warmup_bars(self, bar_minutes: int) -> int:
        p = self.params
        return max(int(p["vol_window"]), int(p["beta_window"]) + int(p["k"]), int(p["k"])) + 1

    def directions(self, inp: EngineInput) -> np.ndarray:
        p = self.params
        c, ref = inp.np("close"), inp.np("ref_close")
        k, w = int(p["k"]), int(p["beta_window"])
        rc, rr = log_returns(c), log_returns(ref)
        mc, mr = rolling_mean(rc, w), rolling_mean(rr, w)
        cov = rolling_mean(rc * rr, w) - mc * mr
        var = rolling_mean(rr * rr, w) - mr * mr
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = lag(np.where(var > 0, cov / var, 0.0), k)
            ref_move = np.log(ref / lag(ref, k))
            coin_move = np.log(c / lag(c, k))
        beta = np.where(np.isfinite(lag(var, k)), beta, np.nan)
        ref_vol = rolling_std(rr, int(p["vol_window"])) * np.sqrt(k)
        big = (np.abs(ref_move) > p["z_ref"] * ref_vol) & (ref_vol > 0) & (beta >= p["beta_min"])
        lagging = coin_move * np.sign(ref_move) < p["catch_up"] * beta * np.abs(ref_move)
        go = big & lagging
        defined = np.isfinite(ref_move) & np.isfinite(coin_move) & np.isfinite(ref_vol) & np.isfinite(beta)
        return sign_or_wait(go & (ref_move > 0), go & (ref_move < 0), defined)
