"""``engine_signals`` and ``meta_weights`` (symbol x day): the 23 engines, costs, regime gate and combiner.

Time semantics (no cycle, nothing after D):
- ``meta_weights[D]`` = ``meta_weights[D-1]`` moved by the outcomes resolved during D (``labels[D]``, the events
  of D-1) of the engine signals of D-1, with the gate table refreshed on its cadence from the trailing window.
  The signals of D-1 are recomputed from candles and features up to the end of D-1 by the same pure code
  (they are a deterministic function of them), so the asset graph has no ``engine_signals`` <-> ``meta_weights``
  cycle.
- ``engine_signals[D]`` = every engine on D's bars, edges calibrated on ``labels`` up to D-1, costs per bar, and
  the combined signal with the weights and gate of ``meta_weights[D-1]``.
"""

from datetime import date, timedelta

import polars as pl
from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
)

from huracan_assets.core.costs import SPREAD_SCHEMA
from huracan_assets.core.engines.base import EngineInput, engine_input
from huracan_assets.core.engines.calibration import outcomes_from_labels
from huracan_assets.core.engines.signals import MetaState, day_signals, recombine, update_meta
from huracan_assets.core.market_data.candles import date_range, day_bounds_ms
from huracan_assets.core.reporting.keys import weight_values, weights_markdown_chart
from huracan_assets.defs.checks import check_spec
from huracan_assets.defs.partitions import symbol_day_asset, window_mapping
from huracan_assets.defs.per_symbol import charted, check_result, outputs_with_check, run_keys
from huracan_assets.defs.resources import ObjectStoreResource
from huracan_assets.names import join_key
from huracan_assets.settings import Settings
from huracan_assets.specs import engine_registry, engine_warmup_days, signal_spec
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome, reference_closes


class _Inputs:
    """Builds a coin's EngineInput from stored candles, features and the reference coin's candles."""

    def __init__(self, settings: Settings, store, candles: PartitionWindow, features: PartitionWindow):
        self.settings, self.store, self.candles, self.features = settings, store, candles, features
        self.registry = engine_registry(settings)
        self._reference: dict[date, pl.DataFrame | None] = {}

    def reference(self, days: list[date]) -> pl.DataFrame | None:
        """The reference coin's closes over ``days``, from ``reference_candles`` (a declared dependency)."""
        wanted = [d for d in days if d not in self._reference]
        if wanted:
            found = reference_closes(self.store, self.settings.universe.reference_symbol, wanted)
            self._reference.update({d: found.get(d) for d in wanted})
        frames = [self._reference[d] for d in days if self._reference[d] is not None]
        return pl.concat(frames).sort("ts") if frames else None

    def build(self, symbol: str, first: date, last: date, required: date) -> "EngineInput | SymbolOutcome":
        """Bars of ``first..last``; ``required`` must be complete (candles and features). Stored features are
        read only when an engine uses them; otherwise only their status on ``required`` is checked."""
        days = date_range(first, last)
        candles, missing = self.candles.days(symbol, days)
        req = join_key(required, symbol)
        if required in missing or candles is None:
            return SymbolOutcome.skipped(f"candles of {required} not usable")
        if req not in self.features or self.features.status(req).status != "ok":
            return SymbolOutcome.skipped(f"features of {required} {self.features.status(req).status}")
        columns = self.registry.feature_columns()
        if columns:
            feats, _ = self.features.days(symbol, days)
            feats = feats.select("ts", *columns)
        else:
            feats = pl.DataFrame(schema={"ts": pl.Int64})
        frame = candles.sort("ts").unique("ts", keep="last", maintain_order=True)
        return engine_input(frame, self.settings.bar_minutes, self.reference(days), features=feats)


def build_signal_assets(settings: Settings) -> list:
    return [_meta_weights_asset(settings), _engine_signals_asset(settings)]


def spreads_between(spreads: PartitionWindow, symbol: str, first: date, last: date) -> pl.DataFrame:
    """The coin's stored daily spreads of ``first..last`` (empty when none: the cost model then charges its cap,
    ``costs.max_spread_bps``, on bars without ``ceil(spread_days / 2)`` known days before theirs)."""
    frame, _ = spreads.days(symbol, date_range(first, last)) if first <= last else (None, [])
    return frame if frame is not None else pl.DataFrame(schema=SPREAD_SCHEMA)


def _labels_between(labels: PartitionWindow, symbol: str, first: date, last: date) -> pl.DataFrame:
    frame, _ = labels.days(symbol, date_range(first, last)) if first <= last else (None, [])
    return outcomes_from_labels(frame) if frame is not None else outcomes_from_labels(pl.DataFrame())


def _engine_signals_asset(settings: Settings):
    registry, spec = engine_registry(settings), signal_spec(settings)
    warm, calib = engine_warmup_days(settings), settings.engines.calibration_days
    floor = spec.costs.net_edge_floor_bps
    spread_days = spec.costs.spread_days

    @symbol_day_asset(
        settings.partitions,
        group_name="signals",
        ins={
            "candles": AssetIn(partition_mapping=window_mapping(calib + warm)),
            "features": AssetIn(partition_mapping=window_mapping(calib + warm)),
            "labels": AssetIn(partition_mapping=window_mapping(calib - 1, -1)),
            "regimes": AssetIn(),
            "meta_weights": AssetIn(partition_mapping=window_mapping(1, -1)),
            # the bars of D pay the median spread of the days before D, never D's own estimate
            "spreads": AssetIn(partition_mapping=window_mapping(spread_days, -1)),
        },
        deps=["reference_candles"],  # the engines' market series (universe.reference_symbol), read over the window
        check_specs=[
            check_spec("engine_signals_all_symbols_ok", asset="engine_signals"),
            check_spec("engine_signals_respect_net_edge_floor", asset="engine_signals"),
            check_spec("gated_engines_do_not_contribute", asset="engine_signals"),
        ],
        metadata={"engines": len(registry), "net_edge_floor_bps": floor},
    )
    def engine_signals(
        context: AssetExecutionContext,
        candles: PartitionWindow,
        features: PartitionWindow,
        labels: PartitionWindow,
        regimes: PartitionWindow,
        meta_weights: PartitionWindow,
        spreads: PartitionWindow,
        object_store: ObjectStoreResource,
    ):
        """Every engine's EngineOutput per bar of D (direction, calibrated edge before costs, confidence,
        horizon), the round-trip costs per bar, and the combined signal with its net edge, using
        ``meta_weights[D-1]`` (cold start: uniform weights, every engine gated off). Edges are calibrated on
        ``labels`` up to D-1 only."""
        inputs = _Inputs(settings, object_store.get_store(), candles, features)
        below_floor, leaks = {}, {}
        counts = {"buy": 0, "sell": 0, "wait": 0}
        cold = []

        def one(day: date, symbol: str):
            key = join_key(day, symbol)
            if regimes.status(key).status != "ok":
                return SymbolOutcome.skipped(f"regimes {regimes.status(key).status}: {regimes.status(key).reason}")
            inp = inputs.build(symbol, day - timedelta(days=calib + warm), day, day)
            if isinstance(inp, SymbolOutcome):
                return inp
            outcomes = _labels_between(labels, symbol, day - timedelta(days=calib - 1), day - timedelta(days=1))
            prev_key = join_key(day - timedelta(days=1), symbol)
            if prev_key in meta_weights and meta_weights.status(prev_key).status == "ok":
                meta = MetaState.from_frame(meta_weights[prev_key])
            else:
                meta = MetaState.cold(list(registry.names()))
                cold.append(key)
            start, end = day_bounds_ms(day)
            known = spreads_between(spreads, symbol, day - timedelta(days=spread_days), day - timedelta(days=1))
            out, _table = day_signals(
                registry, inp, start, end, outcomes, regimes[key], meta.state, meta.gate, spec, known
            )
            _audit(key, out, meta, below_floor, leaks)
            for name, n in out.group_by("combined_direction").len().iter_rows():
                counts[str(name)] += n
            return out

        results = run_keys(context, one)
        extra = {"combined_directions": MetadataValue.json(counts), "cold_start_keys": len(cold)}
        yield from outputs_with_check(context, results, "engine_signals_all_symbols_ok", extra)
        yield check_result("engine_signals_respect_net_edge_floor", below_floor, AssetCheckSeverity.ERROR)
        yield check_result("gated_engines_do_not_contribute", leaks, AssetCheckSeverity.ERROR)

    def _audit(key: str, out: pl.DataFrame, meta: MetaState, below_floor: dict, leaks: dict) -> None:
        acting = out.filter(pl.col("combined_direction") != "wait")
        bad = acting.filter(~(pl.col("combined_net_edge_bps") >= floor))
        if bad.height:
            below_floor[key] = f"{bad.height} buy/sell bars below the {floor} bps net-edge floor"
        # flip every gated-off engine's direction: the combined signal must not move
        flipped = out.with_columns(
            [
                pl.when(~pl.col(f"{e}__gated")).then(-pl.col(f"{e}__direction")).otherwise(pl.col(f"{e}__direction"))
                for e in registry.names()
            ]
        )
        again = recombine(flipped, meta.state, meta.gate, spec)
        if not again["combined_score"].equals(out["combined_score"]) or not again["combined_direction"].equals(
            out["combined_direction"]
        ):
            leaks[key] = "the combined signal changes when gated-off engines change"

    return engine_signals


def _meta_weights_asset(settings: Settings):
    registry, spec = engine_registry(settings), signal_spec(settings)
    warm, gate_days = engine_warmup_days(settings), settings.gate.window_days
    spread_days = spec.costs.spread_days

    @symbol_day_asset(
        settings.partitions,
        group_name="signals",
        ins={
            "candles": AssetIn(partition_mapping=window_mapping(gate_days + warm, -1)),
            "features": AssetIn(partition_mapping=window_mapping(gate_days + warm, -1)),
            "labels": AssetIn(partition_mapping=window_mapping(gate_days - 1)),
            "regimes": AssetIn(partition_mapping=window_mapping(gate_days, -1)),
            # D-1 (the state D moves) and the days before it (the weights-over-time chart)
            "meta_weights": AssetIn(partition_mapping=window_mapping(WEIGHT_CHART_DAYS, -1)),
            # the gate window's and D-1's bars pay the median spread of the days before their own
            "spreads": AssetIn(partition_mapping=window_mapping(gate_days + spread_days, -2)),
        },
        deps=["reference_candles"],  # the engines' market series, recomputing the signals of D-1
        check_specs=[
            check_spec("meta_weights_all_symbols_ok", asset="meta_weights"),
            check_spec("meta_weights_are_finite_and_sum_to_one", asset="meta_weights"),
        ],
        metadata={"engines": len(registry), "gate_refresh_days": settings.gate.refresh_days},
    )
    def meta_weights(
        context: AssetExecutionContext,
        candles: PartitionWindow,
        features: PartitionWindow,
        labels: PartitionWindow,
        regimes: PartitionWindow,
        meta_weights: PartitionWindow,
        spreads: PartitionWindow,
        object_store: ObjectStoreResource,
    ):
        """Per-coin engine weights (EMAs of accuracy and net edge after costs, clipped, normalized,
        penalized for redundancy) and the regime gate table. ``meta_weights[D]`` moves ``meta_weights[D-1]``
        with the outcomes resolved during D (``labels[D]``) of the signals of D-1; the gate is refreshed every
        ``gate.refresh_days`` from the trailing ``gate.window_days``."""
        inputs = _Inputs(settings, object_store.get_store(), candles, features)
        produced: dict[str, MetaState] = {}
        bad_weights: dict[str, str] = {}
        shown: list[tuple[str, MetaState]] = []
        per_key: dict[str, dict] = {}
        chart_day = charted(context, settings.execution.key_charts)

        def one(day: date, symbol: str):
            yday = day - timedelta(days=1)
            prev_key, key = join_key(yday, symbol), join_key(day, symbol)
            previous = produced.get(prev_key)
            if previous is None and prev_key in meta_weights and meta_weights.status(prev_key).status == "ok":
                previous = MetaState.from_frame(meta_weights[prev_key])
            due = spec.gate.due(previous.gate_as_of if previous else None, day)
            first = yday - timedelta(days=(gate_days if due else 0) + warm)
            inp = inputs.build(symbol, first, yday, yday)
            if isinstance(inp, SymbolOutcome):
                return SymbolOutcome.skipped(f"D-1: {inp.reason}")
            today = _labels_between(labels, symbol, day, day)
            gate_args = (None, None, None)
            if due:
                g0 = yday - timedelta(days=gate_days - 1)
                regs, _ = regimes.days(symbol, date_range(g0, yday))
                window = (day_bounds_ms(g0)[0], day_bounds_ms(yday)[1])
                gate_args = (window, _labels_between(labels, symbol, g0 + timedelta(days=1), day), regs)
                if regs is None:
                    gate_args = (None, None, None)
            known = spreads_between(
                spreads, symbol, day - timedelta(days=gate_days + spread_days), day - timedelta(days=2)
            )
            state, info = update_meta(registry, previous, day, inp, day_bounds_ms(yday), today, *gate_args, spec, known)
            produced[key] = state
            w = state.state["weight"]
            if not (w.is_finite().all() and abs(float(w.sum()) - 1.0) < 1e-9):
                bad_weights[key] = f"weights sum to {float(w.sum())!r} or are not finite"
            if not shown or symbol == settings.universe.reference_symbol:
                shown[:] = [(key, state)]
            per_key[key] = (_weights_metadata(key, state, _history(meta_weights, produced, symbol, day))
                            if chart_day(day) else weight_values(state.state))  # fmt: skip
            detail = {**info, "cold_start": previous is None}
            return SymbolOutcome.ok(state.to_frame(day), detail=detail)

        results = run_keys(context, one)
        extra = {}
        if shown:
            key, state = shown[0]
            extra = {"example_key": key, "weights_and_gate": MetadataValue.md(weights_markdown(state))}
        yield from outputs_with_check(context, results, "meta_weights_all_symbols_ok", extra, per_key)
        yield check_result("meta_weights_are_finite_and_sum_to_one", bad_weights, AssetCheckSeverity.ERROR)

    return meta_weights


WEIGHT_CHART_DAYS = 14  # days of a coin's weights in its chart


def _history(window: PartitionWindow, produced: dict[str, MetaState], symbol: str, day: date):
    """The coin's engine weights of the chart's days up to D: this run's states, else the stored ones."""
    out = []
    for d in date_range(day - timedelta(days=WEIGHT_CHART_DAYS - 1), day):
        key = join_key(d, symbol)
        if key in produced:
            out.append((d, produced[key].state))
        elif key in window and window.status(key).status == "ok":
            out.append((d, MetaState.from_frame(window[key]).state))
    return out


def _weights_metadata(key: str, state: MetaState, history) -> dict:
    chart = weights_markdown_chart(key, history)
    return {**weight_values(state.state), **({"weights_over_time": MetadataValue.md(chart)} if chart else {})}


def weights_markdown(state: MetaState) -> str:
    """A readable table: weight, EMAs and the gate (on/off and soft weight) per regime for each engine."""
    regimes = sorted(set(state.gate["regime"]))
    lines = [
        "| engine | weight | ema hit | ema net bps | " + " | ".join(regimes) + " |",
        "|---|---:|---:|---:|" + "---|" * len(regimes),
    ]
    gate = {(r["engine"], r["regime"]): r for r in state.gate.iter_rows(named=True)}
    for r in state.state.sort("weight", descending=True).iter_rows(named=True):
        cells = []
        for regime in regimes:
            g = gate.get((r["engine"], regime))
            cells.append(f"on {g['soft']:.2f}" if g and g["enabled"] else "off")
        lines.append(
            f"| {r['engine']} | {r['weight']:.3f} | {r['ema_hit']:.2f} | {r['ema_net_bps']:.1f} | "
            + " | ".join(cells)
            + " |"
        )
    lines.append(f"\ngate computed {state.gate_as_of or 'never (cold start)'}")
    return "\n".join(lines)
