"""The shadow pair of one coin and day: the challenger and the champion as of D-1, paper-traded on unseen bars.

Two different records come out of one day's bars (see ``ledger.py``):

* the **decision** record: the challenger simulated afresh on its whole shadow window ``[D - S, D]``, which it
  has never seen, and the champion's *forward* ledger over the same window, from the day after its promotion on
  (never a re-simulation: a champion is judged only on bars after it was chosen, and a published refit never
  on bars it trained on);
* the **forward ledgers**: each role's ledger advanced by the bars of D only, from the trader state D-1 left.

Here: the shadow bars (:func:`shadow_bars`), scoring them with a loaded model (:func:`probabilities`), the
simulations (:func:`simulate_bars`, :func:`advance_ledger`), the gates' inputs (:func:`decision_pair`), the
ledgers a pointer carries (:func:`carried_ledger`), and the registry rows of a ledger day (:func:`trade_rows`,
:func:`equity_row`). Pure: polars, numpy and core; the loaded models come in as objects with ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

import numpy as np
import polars as pl

from huracan_assets.core.market_data.candles import DAY_MS, day_bounds_ms
from huracan_assets.core.promotion.gates import ShadowStats
from huracan_assets.core.shadow.daily import daily_returns
from huracan_assets.core.shadow.ledger import Ledger, ledger_day
from huracan_assets.core.shadow.trader import ShadowResult, ShadowSpec, simulate
from huracan_assets.core.training.dataset import Windows, inference_frame, matrix

COST_PARTS = ("fee_bps", "spread_bps", "slippage_bps", "stop_slippage_bps")
TRADE_TABLE_COLUMNS = ("trade_id", "time", "side", "size", "entry", "exit", "fees", "net_pnl", "model_id", "sha256",
                       "role", "exit_time", "exit_reason", "gross_bps", "cost_bps", "net_bps", *COST_PARTS)  # fmt: skip
TRADE_SCHEMA = {"trade_id": pl.String, "time": pl.Datetime("us", "UTC"), "side": pl.String, "size": pl.Float64,
                "entry": pl.Float64, "exit": pl.Float64, "fees": pl.Float64, "net_pnl": pl.Float64,
                "model_id": pl.String, "sha256": pl.String, "role": pl.String, "exit_time": pl.Datetime("us", "UTC"),
                "exit_reason": pl.String, "gross_bps": pl.Float64, "cost_bps": pl.Float64, "net_bps": pl.Float64,
                **dict.fromkeys(COST_PARTS, pl.Float64)}  # fmt: skip
EQUITY_SCHEMA = {"date": pl.Date, "symbol": pl.String, "timeframe": pl.String, "model_id": pl.String,
                 "nav": pl.Float64, "max_dd": pl.Float64, "turnover": pl.Float64, "fees_bps": pl.Float64,
                 "sha256": pl.String, "role": pl.String, "since": pl.Date, "n_trades": pl.Int64}  # fmt: skip


class Scorer(Protocol):
    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ShadowBars:
    """The bars a coin is paper-traded on for day D: prices with the per-bar cost estimates and the meta
    direction (``frame``, which starts ``vol_days`` early for the trader's volatility), the model inputs of the
    shadow window (``inputs``), and the window ``[start_ms, end_ms)``."""

    frame: pl.DataFrame
    inputs: pl.DataFrame
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class ShadowPair:
    """One coin's decision inputs for day D."""

    challenger_row: dict[str, Any]  # the challenger_model row (model_id, bundle_path, sha256, refit_path, ...)
    challenger: ShadowResult  # the challenger on its whole shadow window
    challenger_stats: ShadowStats
    champion_stats: ShadowStats | None  # the champion's forward ledger over the window (None: no champion)
    ledgers: Mapping[str, Ledger | None]  # role -> the ledger after D
    previous: dict[str, Any] | None  # the pointer row of D-1

    def killed(self, drawdown_limit: float) -> bool:
        """The per-coin kill switch: the challenger's shadow drawdown or the champion's ledger drawdown."""
        champ = self.ledgers.get("champion")
        return self.challenger.stats["max_drawdown"] > drawdown_limit or (
            champ is not None and champ.max_drawdown > drawdown_limit
        )


def shadow_bars(
    candles: pl.DataFrame, features: pl.DataFrame, signals: pl.DataFrame, windows: Windows,
    recipe_names: Sequence[str], engines: Sequence[str],
) -> ShadowBars:  # fmt: skip
    """The shadow bars of ``windows.day`` from the coin's candles (the window plus the trader's volatility
    lookback), features and engine signals (the window)."""
    frame = candles.select("ts", "open", "high", "low", "close").unique("ts", keep="last").sort("ts")
    costs = signals.select(
        "ts", "fee_bps", "spread_bps", "slippage_bps", pl.col("combined_raw_direction").cast(pl.Float64)
    )
    frame = frame.join(costs, on="ts", how="left")
    inputs = inference_frame(features, signals, windows.shadow_start_ms, windows.shadow_end_ms, recipe_names, engines)
    return ShadowBars(frame, inputs, windows.shadow_start_ms, windows.shadow_end_ms)


def probabilities(model: Scorer, feature_names: Sequence[str], bars: ShadowBars, model_id: str = "") -> np.ndarray:
    """The model's probability at every bar of ``bars.frame`` (NaN where the bar has no input row)."""
    missing = [c for c in feature_names if c not in bars.inputs.columns]
    if missing:
        raise ValueError(f"model {model_id} needs inputs this graph no longer makes: {missing[:5]}")
    p = model.predict_proba(matrix(bars.inputs, list(feature_names)))
    scored = pl.DataFrame({"ts": bars.inputs["ts"], "p": p})
    return bars.frame.select("ts").join(scored, on="ts", how="left")["p"].fill_null(float("nan")).to_numpy()


PREDICTION_SCHEMA = {"ts": pl.Int64, "symbol": pl.String, "model_id": pl.String, "role": pl.String, "p": pl.Float64}


def prediction_rows(bars: ShadowBars, p: np.ndarray, day: date, symbol: str, model_id: str, role: str) -> pl.DataFrame:
    """The model's probability at each bar of ``day`` (``shadow_logs/predictions/D.parquet``; null where the bar
    had no model input row): what the live side must reproduce for the same bar and model."""
    start, end = day_bounds_ms(day)
    frame = pl.DataFrame({"ts": bars.frame["ts"].cast(pl.Int64), "p": p}).filter(
        pl.col("ts").is_between(start, end - 1)
    )
    return frame.select(
        "ts",
        pl.lit(symbol).alias("symbol"),
        pl.lit(model_id).alias("model_id"),
        pl.lit(role).alias("role"),
        pl.col("p").fill_nan(None),
    ).cast(PREDICTION_SCHEMA)


def simulate_bars(
    bars: ShadowBars, p: np.ndarray, spec: ShadowSpec, bar_ms: int, start_ms: int, end_ms: int | None = None,
    **carry: Any,
) -> ShadowResult:  # fmt: skip
    """The shadow trader on ``bars`` with probabilities ``p``, trading bars in ``[start_ms, end_ms)``."""
    f = bars.frame
    col = {c: f[c].cast(pl.Float64).fill_null(float("nan")).to_numpy() for c in f.columns if c != "ts"}
    end = bars.end_ms if end_ms is None else end_ms
    return simulate(
        f["ts"].to_numpy(), col["open"], col["high"], col["low"], col["close"], p, col["combined_raw_direction"],
        col["fee_bps"], col["spread_bps"], col["slippage_bps"], start_ms, end, spec, bar_ms, **carry,
    )  # fmt: skip


def advance_ledger(
    ledger: Ledger, p: np.ndarray, bars: ShadowBars, day: date, spec: ShadowSpec, bar_ms: int
) -> tuple[Ledger, pl.DataFrame | None]:
    """``ledger`` with the bars of ``day`` appended (the model trades ``day`` only, from the state ``day - 1``
    left), and the trades that closed on ``day``. A ledger that already holds ``day`` is returned unchanged, with
    no trades: a bar is never counted twice."""
    if ledger.last_day is not None and ledger.last_day >= day:
        return ledger, None
    start, end = day_bounds_ms(day)
    res = simulate_bars(bars, p, spec, bar_ms, start, end, initial_state=ledger.trader_state, carry=True)
    return ledger_day(ledger, day, res, spec.initial_equity), res.trades


def decision_pair(
    challenger_row: Mapping[str, Any], challenger: ShadowResult, challenger_trained_until_ms: int,
    ledgers: Mapping[str, Ledger | None], previous: Mapping[str, Any] | None, bars: ShadowBars,
    initial_equity: float, champion_trained_until_ms: int | None = None, champion_canaries_passed: bool = False,
) -> ShadowPair:  # fmt: skip
    """The gates' inputs: the challenger's simulation of its shadow window, and the champion's forward ledger
    from the latest of the window's start, the ledger's first day and the champion's training cutoff."""
    challenger_stats = ShadowStats(
        model_id=challenger_row["model_id"],
        trade_net_bps=challenger.trades["net_bps"].to_numpy(),
        daily_returns=daily_returns(challenger.equity, initial_equity),
        max_drawdown=float(challenger.stats["max_drawdown"]),
        canaries_passed=bool(challenger_row["canaries_passed"]),
        trained_until_ms=challenger_trained_until_ms,
        compared_from_ms=int(bars.start_ms),
    )
    champion_stats = None
    champ_ledger = ledgers.get("champion")
    if champion_trained_until_ms is not None and champ_ledger is not None:
        start = max(bars.start_ms, day_bounds_ms(champ_ledger.since)[0], champion_trained_until_ms)
        net, returns, drawdown = champ_ledger.window(date(1970, 1, 1) + timedelta(days=start // DAY_MS))
        champion_stats = ShadowStats(
            model_id=previous["champion_model_id"],
            trade_net_bps=net,
            daily_returns=returns,
            max_drawdown=min(1.0, drawdown),
            canaries_passed=champion_canaries_passed,
            trained_until_ms=champion_trained_until_ms,
            compared_from_ms=int(start),
        )
    return ShadowPair(dict(challenger_row), challenger, challenger_stats, champion_stats, dict(ledgers),
                      None if previous is None else dict(previous))  # fmt: skip


def carried_ledger(previous: Mapping[str, Any] | None, role: str, day: date) -> Ledger:
    """The ledger the pointer of D-1 left for ``role``, or a new one. A champion's ledger starts the day after
    its promotion (or today, for a champion whose pointer predates ledgers): bars after it was chosen only."""
    text = (previous or {}).get(f"{role}_ledger")
    if role == "challenger":
        return Ledger.from_json(text) if text else Ledger("challenger", since=day)
    model_id = previous["champion_model_id"]
    if text:
        ledger = Ledger.from_json(text)
        if ledger.model_id == model_id:
            return ledger
    promoted = previous.get("champion_as_of")
    since = max(day, promoted + timedelta(days=1)) if promoted else day
    return Ledger("champion", since=since, model_id=model_id)


def trade_rows(symbol: str, trades: pl.DataFrame, model_id: str, sha: str, role: str) -> pl.DataFrame:
    """A ledger's trades of one day as ``shadow_trades`` rows; the id is the coin, role and entry time, so a rerun
    of the day replaces them and a position carried over midnight is one trade, booked on its exit day."""
    return trades.select(
        pl.format("{}:{}:{}", pl.lit(symbol), pl.lit(role), pl.col("entry_ts")).alias("trade_id"),
        pl.from_epoch("entry_ts", time_unit="ms").dt.replace_time_zone("UTC").alias("time"),
        pl.when(pl.col("side") > 0).then(pl.lit("buy")).otherwise(pl.lit("sell")).alias("side"),
        pl.col("size"),
        pl.col("entry_price").alias("entry"),
        pl.col("exit_price").alias("exit"),
        (pl.col("cost_bps") / 1e4 * pl.col("size")).alias("fees"),
        (pl.col("net_bps") / 1e4 * pl.col("size")).alias("net_pnl"),
        pl.lit(model_id).alias("model_id"),
        pl.lit(sha).alias("sha256"),
        pl.lit(role).alias("role"),
        pl.from_epoch("exit_ts", time_unit="ms").dt.replace_time_zone("UTC").alias("exit_time"),
        "exit_reason",
        "gross_bps",
        "cost_bps",
        "net_bps",
        *[pl.col(c) if c in trades.columns else pl.lit(None, dtype=pl.Float64).alias(c) for c in COST_PARTS],
    ).with_columns(symbol=pl.lit(symbol))


def equity_row(
    day: date, symbol: str, timeframe: str, role: str, model_id: str, sha: str, ledger: Ledger,
    trades: pl.DataFrame | None,
) -> dict[str, Any]:  # fmt: skip
    """A ledger's ``daily_equity`` row for ``day``."""
    costs = trades["cost_bps"] if trades is not None else pl.Series([], dtype=pl.Float64)
    return {
        "date": day,
        "symbol": symbol,
        "timeframe": timeframe,
        "model_id": model_id,
        "nav": ledger.nav,
        "max_dd": ledger.max_drawdown,
        "turnover": float(2 * trades["size"].sum() / ledger.nav) if trades is not None and trades.height else 0.0,
        "fees_bps": float(costs.mean()) if costs.len() else 0.0,
        "sha256": sha,
        "role": role,
        "since": ledger.since,
        "n_trades": ledger.n_trades,
    }
