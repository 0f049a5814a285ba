"""The Engine learns strategy presets from its own shadow trades: the pure day step of ``param_posteriors``.

For one coin and day D, every preset of every strategy is paper-traded on D's bars by the shadow trader
(:mod:`huracan_assets.core.shadow.trader`) with the configured ``ShadowSpec`` and the preset's fields replaced
(:func:`preset_spec`). The trader is fed what the Engine's own shadow pass used for D: the probabilities it logged
for D's bars (the model in force on D), D's per-bar cost estimates and the meta combiner's direction. Each preset
keeps its own paper-trader state from day to day (carried like the forward ledgers), so a position a preset opened
on D-1 closes on D under that preset's rules, and its trade counts once, on the day it closed.

**Rewards and context.** A preset's reward is the ``net_bps`` (after fees, spread, slippage and the stop's extra
cost) of each of its trades that closed within D. Its context is the features at the trade's **signal** bar, when
the decision to enter was taken (:func:`bar_context`): the shares of the trailing day's bars in each regime, the
trailing volatility (the barriers' own: ``vol_window`` log close-to-close returns, ddof 1, floored at ``min_vol``),
the signed efficiency ratio of the regime classifier and the bar's round-trip spread estimate. Trades are observed
in the order they closed (exit bar, then preset, then signal bar). The trades of the preset **in force** on D (the
one the controller chose at the end of D-1) are realised rewards and move the kill switch's reward path; the other
presets' trades are counterfactual and teach their posteriors only (:meth:`Controller.observe`). A trade whose
signal bar has no complete context (the first bars of a coin's history) is not learned from, and is counted. A
position still open at D's end carries its signal bar's context (``open_context``) to the day it closes: D's own
inputs start too late for the full trailing windows of a bar of D-1.

**Tomorrow's preset.** After D's outcomes the controller decides the preset for D+1 (:meth:`Controller.decide`) at
the context of D's last bar with a complete context, at 00:00 UTC of D+1: the bandit's proposal through the
hysteresis, the daily change limit and the kill switch, with its reason, the posterior means and the probability
that the proposal beats the preset in force.

**Time.** The posterior of D is the posterior of D-1 moved by outcomes known at the end of D, and nothing else: the
trader's window ends at D's end (a trade still open then is carried, not counted), the context of a bar is built
from that bar and the bars before it, and the decision uses D's last bar. Bars, probabilities, costs and regimes
after D may be passed in; they cannot move the result (the tests perturb them and plant a leak).

Pure: polars, numpy and core; no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from huracan_assets.core.market_data.candles import DAY_MS, day_bounds_ms
from huracan_assets.core.params.bandit import predictive
from huracan_assets.core.params.guardrails import Controller, ControllerState, Decision
from huracan_assets.core.params.schema import StrategySchema
from huracan_assets.core.shadow.trader import ShadowSpec, simulate

REGIME_SHARES = {"regime_trend": "TREND", "regime_range": "RANGE", "regime_panic": "PANIC"}
CONTEXT_FEATURES = (*REGIME_SHARES, "volatility", "efficiency_ratio", "spread_bps")
BAR_COLUMNS = ("ts", "open", "high", "low", "close", "fee_bps", "spread_bps", "slippage_bps", "combined_raw_direction")
NO_CONTEXT = "no-context"  # the reason of a day whose last bars have no complete context: the preset stays

ROW_SCHEMA = {
    "strategy": pl.String,
    "preset_id": pl.String,
    "config_id": pl.String,
    "params": pl.String,  # JSON
    "in_force": pl.Boolean,  # the preset in force on D (chosen at the end of D-1)
    "chosen": pl.Boolean,  # the preset for D+1
    "reason": pl.String,  # the decision's reason (the strategy's, on each of its rows)
    "trades": pl.Int64,  # trades of the preset closed on D
    "learned": pl.Int64,  # of which learned from (a complete context at the signal bar)
    "net_bps_sum": pl.Float64,
    "net_bps_mean": pl.Float64,
    "n": pl.Int64,  # observations in the preset's posterior after D
    "mean_bps": pl.Float64,  # posterior mean reward at the decision's context
    "sd_bps": pl.Float64,  # its posterior sd
    "p_beats": pl.Float64,  # the decision's P(proposal beats the preset in force by the margin); chosen row
    "killed": pl.Boolean,
    "features": pl.String,  # JSON: the decision's context (chosen row)
    "state": pl.String,  # JSON: the controller state after D (chosen row)
    "trader_state": pl.String,  # JSON: the preset's paper-trader state after D
    "open_context": pl.String,  # JSON: the context of the signal bar of the position (or order) still open after D
}


class ReplayError(ValueError):
    """Inputs the replay cannot use: unknown context features, bars without the needed columns."""


def check_features(schemas: Mapping[str, StrategySchema]) -> None:
    """Every schema's features must be ones :func:`bar_context` computes (a schema naming another one would
    otherwise never learn)."""
    for name, schema in schemas.items():
        unknown = sorted(set(schema.feature_names) - set(CONTEXT_FEATURES))
        if unknown:
            raise ReplayError(f"strategy {name!r}: features {unknown} are not computed; known: {CONTEXT_FEATURES}")


def preset_spec(base: ShadowSpec, params: Mapping[str, Any]) -> ShadowSpec:
    """The shadow trader's spec under a preset: ``base`` with the preset's fields replaced (they must be fields)."""
    try:
        return replace(base, **dict(params))
    except TypeError as exc:
        raise ReplayError(f"a preset sets a field the shadow trader does not have: {exc}") from exc


def bar_context(
    bars: pl.DataFrame, regimes: pl.DataFrame, vol_window: int, min_vol: float, bar_ms: int
) -> pl.DataFrame:
    """Per bar of ``bars`` (``ts``, ``close``, ``spread_bps``): ``ts`` and :data:`CONTEXT_FEATURES`, each from the
    bar and the bars before it (module docstring); null where the history is too short. ``regimes`` holds ``ts``,
    ``regime`` and ``efficiency_ratio``; a regime share needs a full trailing day of regimes."""
    frame = bars.select("ts", "close", pl.col("spread_bps").cast(pl.Float64)).unique("ts", keep="last").sort("ts")
    returns = pl.col("close").log().diff()
    vol = returns.rolling_std(vol_window, min_samples=max(2, math.ceil(vol_window / 2)))
    frame = frame.with_columns(
        volatility=pl.when(vol.is_null()).then(None).otherwise(pl.max_horizontal(vol, pl.lit(float(min_vol))))
    )
    shares = _regime_shares(regimes, bar_ms)
    out = frame.join(shares, on="ts", how="left")
    return out.select("ts", *[pl.col(c).cast(pl.Float64).fill_nan(None) for c in CONTEXT_FEATURES])


def _regime_shares(regimes: pl.DataFrame, bar_ms: int) -> pl.DataFrame:
    names = [*REGIME_SHARES, "efficiency_ratio"]
    if regimes.height == 0:
        return pl.DataFrame(schema={"ts": pl.Int64, **dict.fromkeys(names, pl.Float64)})
    r = regimes.select("ts", "regime", "efficiency_ratio").unique("ts", keep="last").sort("ts")
    r = r.with_columns(_dt=pl.from_epoch("ts", time_unit="ms"))
    full = pl.col("ts") - DAY_MS + bar_ms >= r["ts"].min()  # the trailing day lies within the regimes given
    return r.select(
        pl.col("ts").cast(pl.Int64),
        *[
            pl.when(full)
            .then((pl.col("regime") == regime).cast(pl.Float64).rolling_mean_by("_dt", window_size="1d"))
            .otherwise(None)
            .alias(name)
            for name, regime in REGIME_SHARES.items()
        ],
        pl.col("efficiency_ratio").cast(pl.Float64),
    )


def replay_bars(candles: pl.DataFrame, signals: pl.DataFrame, p: pl.DataFrame) -> pl.DataFrame:
    """The replay's bars (:data:`BAR_COLUMNS` and ``p``): the coin's candles (D and the warm-up days before it),
    D's per-bar costs and meta direction from its engine signals, and the model's probability per bar (``ts``,
    ``p``); null where a bar has none (warm-up bars: no trade is decided there)."""
    costs = signals.select(
        "ts", "fee_bps", "spread_bps", "slippage_bps", pl.col("combined_raw_direction").cast(pl.Float64)
    )
    return (
        candles.select("ts", "open", "high", "low", "close")
        .unique("ts", keep="last")
        .sort("ts")
        .join(costs, on="ts", how="left")
        .join(p.select("ts", "p"), on="ts", how="left")
        .select(*BAR_COLUMNS, "p")
    )


def features_of(schema: StrategySchema, row: Mapping[str, Any]) -> dict[str, float] | None:
    """The schema's features from a context row, or None when one is missing or not finite."""
    out = {}
    for name in schema.feature_names:
        value = row.get(name)
        if value is None or not math.isfinite(value):
            return None
        out[name] = float(value)
    return out


@dataclass(frozen=True)
class PresetDay:
    """One preset's replay of D: its trades closed on D (with their signal bar's context), and its trader state."""

    preset_id: str
    trades: pl.DataFrame
    learned: int
    trader_state: dict[str, Any]
    open_context: dict[str, Any] | None  # ts and CONTEXT_FEATURES of the open position's signal bar


@dataclass(frozen=True)
class StrategyDay:
    """One strategy's day: the preset in force on D, each preset's replay, the controller state after D's outcomes
    and the decision for D+1 (None when D's bars have no complete context: the preset in force stays)."""

    strategy: str
    in_force: str
    presets: Mapping[str, PresetDay]
    state: ControllerState
    decision: Decision | None
    features: Mapping[str, float] | None  # the decision's context

    @property
    def chosen(self) -> str:
        return self.decision.preset_id if self.decision is not None else self.in_force

    @property
    def reason(self) -> str:
        return self.decision.reason if self.decision is not None else NO_CONTEXT


def _open_signal_ts(trader_state: Mapping[str, Any]) -> int | None:
    """The signal bar of the position (or the order waiting for its fill) a trader state carries, if any."""
    for name in ("position", "pending"):
        held = trader_state.get(name)
        if held is not None:
            return int(held["signal_ts"])
    return None


def _with_carried(context: pl.DataFrame, carried: Mapping[str, Any] | None) -> pl.DataFrame:
    """``context`` with the carried signal bar's row in place of its own: the context of a position opened before
    D is the one computed the day it was opened, from that day's full trailing windows (D's inputs start too late
    for a full trailing day before a bar of D-1)."""
    if not carried:
        return context
    row = pl.DataFrame([{c: carried.get(c) for c in context.columns}], schema=context.schema)
    return pl.concat([row, context.filter(pl.col("ts") != carried["ts"])]).sort("ts")


def replay_strategy_day(
    controller: Controller,
    state: ControllerState,
    traders: Mapping[str, Mapping[str, Any]],
    bars: pl.DataFrame,
    context: pl.DataFrame,
    day: date,
    base: ShadowSpec,
    bar_ms: int,
    open_contexts: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> StrategyDay:
    """Replay D for one strategy (module docstring). ``bars``: :data:`BAR_COLUMNS` and ``p`` per bar, sorted, the
    trader's warm-up bars first; ``context``: :func:`bar_context` of the same bars; ``traders``: each preset's
    trader state after D-1 (a missing one starts flat); ``open_contexts``: the context row of each preset's open
    position carried from D-1; ``state``: the controller state after D-1."""
    missing = [c for c in (*BAR_COLUMNS, "p") if c not in bars.columns]
    if missing:
        raise ReplayError(f"the replay's bars miss {missing}")
    schema = controller.schema
    start, end = day_bounds_ms(day)
    cols = {c: bars[c].cast(pl.Float64).fill_null(float("nan")).to_numpy() for c in (*BAR_COLUMNS[1:], "p")}
    ts = bars["ts"].cast(pl.Int64).to_numpy()
    in_force = state.current if state.current in controller.presets else schema.safe_preset
    days: dict[str, PresetDay] = {}
    observations = []
    for preset_id in sorted(controller.presets):
        spec = preset_spec(base, controller.presets[preset_id])
        result = simulate(
            ts, cols["open"], cols["high"], cols["low"], cols["close"], cols["p"], cols["combined_raw_direction"],
            cols["fee_bps"], cols["spread_bps"], cols["slippage_bps"], start, end, spec, bar_ms,
            initial_state=traders.get(preset_id), carry=True,
        )  # fmt: skip
        known = _with_carried(context, (open_contexts or {}).get(preset_id))
        trades = result.trades.select("signal_ts", "entry_ts", "exit_ts", "side", "net_bps").join(
            known, left_on="signal_ts", right_on="ts", how="left"
        )
        learned = 0
        for row in trades.iter_rows(named=True):
            features = features_of(schema, row)
            if features is not None:
                learned += 1
                observations.append((row["exit_ts"], preset_id, row["signal_ts"], features, row["net_bps"]))
        signal_ts = _open_signal_ts(result.state)
        carried = None
        if signal_ts is not None:
            rows = known.filter(pl.col("ts") == signal_ts)
            carried = rows.row(0, named=True) if rows.height else None
        days[preset_id] = PresetDay(preset_id, trades, learned, result.state, carried)
    for _, preset_id, _, features, reward in sorted(observations, key=lambda o: o[:3]):
        state = controller.observe(state, preset_id, features, reward, realised=preset_id == in_force)
    decision, features = None, None
    last = context.filter(pl.col("ts").is_between(start, end - 1)).sort("ts", descending=True)
    for row in last.iter_rows(named=True):
        features = features_of(schema, row)
        if features is not None:
            break
    if features is not None:
        at = datetime.fromtimestamp(end / 1000, tz=UTC)
        if state.last_at is not None and state.last_at > at:
            raise ReplayError(f"{schema.strategy}/{state.instrument}: the state was decided at {state.last_at}, "
                              f"after the end of {day}: a day replayed out of order")  # fmt: skip
        decision, state = controller.decide(state, features, at)
    return StrategyDay(schema.strategy, in_force, days, state, decision, features)


def strategy_rows(controller: Controller, result: StrategyDay) -> pl.DataFrame:
    """The ``param_posteriors`` rows of one strategy (:data:`ROW_SCHEMA`, one per preset, in preset order)."""
    state, chosen = result.state, result.chosen
    x = controller.schema.context(result.features) if result.features is not None else None
    exploration = controller.spec.bandit.exploration
    rows = []
    for preset_id in sorted(controller.presets):
        day = result.presets[preset_id]
        net = day.trades["net_bps"]
        post = state.posteriors.get(preset_id)
        mean, sd = predictive(post, x, exploration) if post is not None and x is not None else (None, None)
        rows.append(
            {
                "strategy": result.strategy,
                "preset_id": preset_id,
                "config_id": controller.config_id(state.instrument, preset_id),
                "params": json.dumps(dict(controller.presets[preset_id]), sort_keys=True),
                "in_force": preset_id == result.in_force,
                "chosen": preset_id == chosen,
                "reason": result.reason,
                "trades": day.trades.height,
                "learned": day.learned,
                "net_bps_sum": float(net.sum()) if net.len() else 0.0,
                "net_bps_mean": float(net.mean()) if net.len() else None,
                "n": post.n if post is not None else 0,
                "mean_bps": mean,
                "sd_bps": sd,
                "p_beats": result.decision.p_beats if result.decision is not None and preset_id == chosen else None,
                "killed": state.killed,
                "features": json.dumps(dict(result.features)) if preset_id == chosen and result.features else None,
                "state": json.dumps(state.to_dict()) if preset_id == chosen else None,
                "trader_state": json.dumps(day.trader_state),
                "open_context": None if day.open_context is None else json.dumps(day.open_context),
            }
        )
    return pl.DataFrame(rows, schema=ROW_SCHEMA)


@dataclass(frozen=True)
class Carried:
    """What a strategy's day hands to the next: the controller state, each preset's trader state and the context
    of each preset's open position."""

    state: ControllerState
    traders: Mapping[str, dict[str, Any]]
    open_contexts: Mapping[str, dict[str, Any] | None]


def previous_states(frame: pl.DataFrame | None) -> dict[str, Carried]:
    """Each strategy's :class:`Carried` from a ``param_posteriors`` frame of D-1."""
    out: dict[str, Carried] = {}
    if frame is None or frame.height == 0:
        return out
    for (strategy,), rows in frame.group_by("strategy", maintain_order=True):
        chosen = rows.filter(pl.col("chosen") & pl.col("state").is_not_null())
        if chosen.height != 1:
            raise ReplayError(f"param_posteriors of D-1: strategy {strategy!r} has {chosen.height} chosen rows")
        state = ControllerState.from_dict(json.loads(chosen["state"][0]))
        traders = {p: json.loads(t) for p, t in zip(rows["preset_id"], rows["trader_state"], strict=True)}
        contexts = {
            p: (None if c is None else json.loads(c))
            for p, c in zip(rows["preset_id"], rows["open_context"], strict=True)
        }
        out[str(strategy)] = Carried(state, traders, contexts)
    return out


def replay_day(
    controllers: Mapping[str, Controller],
    instrument: str,
    previous: pl.DataFrame | None,
    bars: pl.DataFrame,
    context: pl.DataFrame,
    day: date,
    base: ShadowSpec,
    bar_ms: int,
) -> pl.DataFrame:
    """All strategies of one coin and day: ``param_posteriors[D]`` from ``param_posteriors[D-1]`` (``previous``;
    None: every strategy starts at its prior on its safe preset) and D's bars (:func:`replay_strategy_day`)."""
    before = previous_states(previous)
    frames = []
    for strategy in sorted(controllers):
        controller = controllers[strategy]
        carried = before.get(strategy)
        if carried is None or carried.state.instrument != instrument:
            carried = Carried(controller.initial_state(instrument), {}, {})
        result = replay_strategy_day(
            controller, carried.state, carried.traders, bars, context, day, base, bar_ms, carried.open_contexts
        )
        frames.append(strategy_rows(controller, result))
    return pl.concat(frames) if frames else pl.DataFrame(schema=ROW_SCHEMA)


def tomorrow(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per strategy, the preset for D+1 and why, from a ``param_posteriors`` frame: the preset, the reason, its
    posterior mean and sd, P(beats), the preset in force on D, the day's trades and the kill switch."""
    out = {}
    for row in frame.filter(pl.col("chosen")).sort("strategy").iter_rows(named=True):
        rows = frame.filter(pl.col("strategy") == row["strategy"])
        means = {
            r["preset_id"]: (None if r["mean_bps"] is None else round(r["mean_bps"], 2))
            for r in rows.iter_rows(named=True)
        }
        out[row["strategy"]] = {
            "preset": row["preset_id"],
            "config_id": row["config_id"],
            "reason": row["reason"],
            "in_force_today": rows.filter(pl.col("in_force"))["preset_id"].to_list()[0],
            "mean_bps": None if row["mean_bps"] is None else round(row["mean_bps"], 2),
            "sd_bps": None if row["sd_bps"] is None else round(row["sd_bps"], 2),
            "p_beats": None if row["p_beats"] is None else round(row["p_beats"], 4),
            "means_bps": means,
            "observations": dict(zip(rows["preset_id"], rows["n"].to_list(), strict=True)),
            "trades_today": int(rows["trades"].sum()),
            "killed": bool(row["killed"]),
        }
    return out


def evidence(frame: pl.DataFrame) -> dict[str, dict[str, dict[str, Any]]]:
    """Per strategy, each preset's posterior after D (``posterior_to_dict`` form) from a ``param_posteriors``
    frame: the evidence ``huracan serve`` adds to its live posteriors (``Controller.decide(evidence=...)``)."""
    out = {}
    for row in frame.filter(pl.col("chosen") & pl.col("state").is_not_null()).iter_rows(named=True):
        out[row["strategy"]] = dict(json.loads(row["state"])["posteriors"])
    return out
