"""``shadow_trades`` and ``champion_pointer`` (symbol x day): the challenger and the champion as of D-1 are
paper-traded on the same unseen bars, and the challenger replaces the champion only through the gates.

One op produces both assets (and depends on ``champion_pointer`` of D-1, so dates run in order). Per coin:
score the shadow window ``[D - S, D]`` with both models, simulate both on the bars after the champion's own
training cutoff. Then all coins of the day are decided together by the pure gates (``decide_day``: each coin's
retest counted since its last promotion and tested at its alpha-spending level, Benjamini-Hochberg across the
coins), and each promotion is published through ``publishing/champion.py`` (bundle copied and verified, history
written, ``latest.json`` moved last and only forward). The pointer carries ``tests_since_promotion``: the retests
spent since the coin's last promotion (0 right after one), read back on D+1.
"""

import dataclasses
import io
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl
from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    MetadataValue,
    Output,
)

from huracan_assets.core.market_data.candles import date_range
from huracan_assets.core.models.bundle import (
    BUNDLE_FILES,
    BundleConfig,
    BundleError,
    ModelBundle,
    load_bundle_model,
    verify_bundle,
)
from huracan_assets.core.promotion.pointer import (
    Published,
    carried_row,
    decide_pairs,
    decided_row,
    decision_document,
    decision_records,
    promoted_path,
    with_rollback,
)
from huracan_assets.core.reporting.keys import pointer_values, shadow_values
from huracan_assets.core.reporting.shadow import pair_markdown
from huracan_assets.core.shadow.ledger import Ledger
from huracan_assets.core.shadow.pair import (
    EQUITY_SCHEMA,
    TRADE_SCHEMA,
    TRADE_TABLE_COLUMNS,
    ShadowBars,
    ShadowPair,
    advance_ledger,
    carried_ledger,
    decision_pair,
    equity_row,
    prediction_rows,
    probabilities,
    shadow_bars,
    simulate_bars,
    trade_rows,
)
from huracan_assets.core.training.dataset import Windows
from huracan_assets.defs.checks import check_spec
from huracan_assets.defs.partitions import symbol_day_multi_asset, window_mapping
from huracan_assets.defs.per_symbol import charted, check_result, key_metadata, run_keys, run_metadata, summarize
from huracan_assets.defs.resources import ObjectStoreResource, RegistryResource
from huracan_assets.names import join_key, split_key
from huracan_assets.publishing.champion import check_pointer, publish_champion
from huracan_assets.publishing.decisions import write_decisions
from huracan_assets.publishing.rollback import rollbacks_of_day
from huracan_assets.settings import Settings
from huracan_assets.specs import EngineSpecs
from huracan_assets.storage.object_store import ObjectNotFound
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome


class _Bundles:
    """Verified bundles by prefix, loaded once per run; a bundle that does not verify is an error."""

    def __init__(self, store, recipe_hash: str):
        self.store, self.recipe_hash = store, recipe_hash
        self._cache: dict[str, ModelBundle] = {}

    def get(self, prefix: str) -> ModelBundle:
        if prefix not in self._cache:
            files = {name: self.store.get(prefix + name) for name in BUNDLE_FILES}
            self._cache[prefix] = verify_bundle(files, expected_recipe_hash=self.recipe_hash)
        return self._cache[prefix]


def build_champion_assets(settings: Settings, specs: EngineSpecs) -> list:
    return [_shadow_and_champion_asset(settings, specs)]


@dataclass
class _Day:
    """What the shadow pass of one date produced, per coin key."""

    pairs: dict[str, ShadowPair] = field(default_factory=dict)
    ledgers: dict[str, dict[str, Ledger | None]] = field(default_factory=dict)  # key -> role -> ledger after D
    trades: dict[tuple[str, str], pl.DataFrame | None] = field(default_factory=dict)  # (key, role) -> closed on D
    p: dict[tuple[str, str], object] = field(default_factory=dict)  # (key, bundle hash) -> per-bar probabilities
    predictions: list[pl.DataFrame] = field(default_factory=list)  # each role's probabilities on D's bars


class _ShadowRun:
    """The I/O of one run of the op (dates in order): inputs, verified bundles, the registry, publication. The
    domain logic is in ``core/shadow/pair.py`` and ``core/promotion/pointer.py``."""

    def __init__(self, settings: Settings, specs: EngineSpecs, store, reg, inputs: dict[str, PartitionWindow]):
        self.settings, self.specs, self.store, self.reg, self.inputs = settings, specs, store, reg, inputs
        self.bundles = _Bundles(store, specs.recipe.hash)
        self.pointers: dict[str, object] = {}
        self.rollbacks: dict[date, dict[str, dict]] = {}  # D-1 -> symbol -> the operator's rollback as of D-1
        self.bad_bundles: dict[str, str] = {}
        self.few: dict[str, str] = {}
        self.kills: dict[str, str] = {}
        self.outcomes: dict[str, object] = {}
        self.equity: dict[str, pl.DataFrame] = {}  # key -> the ledgers' daily_equity rows of D
        self.shadow_meta: dict[str, dict] = {}  # key -> its own shadow_trades metadata (numbers, ledger chart)

    def previous_pointer(self, d: date, symbol: str) -> dict | None:
        """The champion the run of D starts from: ``champion_pointer[D-1]``, or the rollback an operator made as of
        D-1 after it (``publishing/rollback.py``)."""
        yday = d - timedelta(days=1)
        key = join_key(yday, symbol)
        if yday not in self.rollbacks:  # one listing per date, not one per coin
            self.rollbacks[yday] = {s: dataclasses.asdict(p) for s, p in rollbacks_of_day(self.store, yday).items()}
        rollback = self.rollbacks[yday].get(symbol)
        produced = self.pointers.get(key)
        window = self.inputs["champion_pointer"]
        row = None
        if isinstance(produced, pl.DataFrame):
            row = produced.row(0, named=True)
        elif key in window and window.status(key).status == "ok":
            row = window[key].row(0, named=True)
        return row if rollback is None else with_rollback(row, rollback)

    def bars(self, d: date, symbol: str) -> ShadowBars | SymbolOutcome:
        w = self.settings.windows
        days = date_range(d - timedelta(days=w.shadow_days), d)
        candles, _ = self.inputs["candles"].days(symbol, date_range(days[0] - timedelta(days=self.specs.vol_days), d))
        feats, fmissing = self.inputs["features"].days(symbol, days)
        sigs, _ = self.inputs["engine_signals"].days(symbol, days)
        if candles is None or feats is None or sigs is None or d in fmissing:
            return SymbolOutcome.skipped("shadow window: candles, features or engine signals missing")
        windows = Windows.for_day(d, w.training_days, w.shadow_days, 0)
        return shadow_bars(candles, feats, sigs, windows, self.specs.recipe.names, self.specs.engines)

    def p(self, day: _Day, key: str, bundle: ModelBundle, bars: ShadowBars):
        """The bundle's probability at every bar of ``bars`` (once per coin and bundle)."""
        if (key, bundle.content_hash) not in day.p:
            model = load_bundle_model(bundle, threads=self.settings.execution.thread_budget)
            day.p[(key, bundle.content_hash)] = probabilities(
                model, bundle.config["feature_names"], bars, bundle.bundle_id()
            )
        return day.p[(key, bundle.content_hash)]

    def advance(
        self, day: _Day, key: str, ledger: Ledger, bundle: ModelBundle, bars: ShadowBars, d: date, model_id: str
    ) -> Ledger:
        """The ledger with D's bars, and D's per-bar probabilities logged for the role."""
        p = self.p(day, key, bundle, bars)
        day.predictions.append(prediction_rows(bars, p, d, split_key(key)[1], model_id, ledger.role))
        ledger, trades = advance_ledger(ledger, p, bars, d, self.specs.shadow, self.specs.bar_ms)
        day.trades[(key, ledger.role)] = trades
        return ledger

    def shadow_one(self, day: _Day, d: date, symbol: str):
        """The day's ledgers and the challenger's shadow pair, or a SymbolOutcome saying why not (the champion's
        ledger still advances on a day without a challenger)."""
        key = join_key(d, symbol)
        previous = self.previous_pointer(d, symbol)
        bars = self.bars(d, symbol)
        champion, champ_ledger = None, None
        if previous is not None and previous["champion_model_id"] is not None:
            try:  # the published bundle itself: its ledger holds only bars after its promotion, unseen by it
                champion = self.bundles.get(previous["bucket_path"])
            except (BundleError, ObjectNotFound) as exc:
                self.bad_bundles[key] = f"champion {previous['bucket_path']}: {exc}"
                return SymbolOutcome.failed(f"champion bundle does not verify: {exc}")
            if not isinstance(bars, SymbolOutcome):
                ledger = carried_ledger(previous, "champion", d)
                champ_ledger = self.advance(day, key, ledger, champion, bars, d, previous["champion_model_id"])
                day.ledgers[key] = {"champion": champ_ledger}
        challengers = self.inputs["challenger_model"]
        st = challengers.status(key)
        if st.status != "ok":
            return SymbolOutcome.skipped(f"no challenger: {st.status} {st.reason or ''}".strip())
        row = challengers[key].row(0, named=True)
        try:
            challenger = self.bundles.get(row["bundle_path"])
        except (BundleError, ObjectNotFound) as exc:
            self.bad_bundles[key] = f"challenger {row['bundle_path']}: {exc}"
            return SymbolOutcome.failed(f"challenger bundle does not verify: {exc}")
        if isinstance(bars, SymbolOutcome):
            return bars
        roll = self.advance(day, key, carried_ledger(previous, "challenger", d), challenger, bars, d, row["model_id"])
        day.ledgers[key] = {"champion": champ_ledger, "challenger": roll}
        p = self.p(day, key, challenger, bars)
        sim = simulate_bars(bars, p, self.specs.shadow, self.specs.bar_ms, bars.start_ms)
        champ_cfg = BundleConfig.of(champion) if champion is not None else None
        return decision_pair(
            row, sim, BundleConfig.of(challenger).training_end_ms, day.ledgers[key], previous, bars,
            self.specs.shadow.initial_equity,
            champion_trained_until_ms=champ_cfg.training_end_ms if champ_cfg else None,
            champion_canaries_passed=champ_cfg.canaries_passed if champ_cfg else False,
        )  # fmt: skip

    def ledger_rows(self, day: _Day, d: date, symbol: str, pair: ShadowPair | None) -> pl.DataFrame | None:
        """The trades each ledger closed on D (``shadow_trades``); keeps each ledger's ``daily_equity`` row."""
        key = join_key(d, symbol)
        previous = self.previous_pointer(d, symbol)
        frames, equity = [], []
        for role, ledger in day.ledgers.get(key, {}).items():
            if ledger is None or ledger.last_day != d:
                continue
            if role == "champion":
                model_id, sha = previous["champion_model_id"], previous["sha256"]
            else:
                model_id, sha = pair.challenger_row["model_id"], pair.challenger_row["sha256"]
            trades = day.trades.get((key, role))
            if trades is not None and trades.height:
                frames.append(trade_rows(symbol, trades, model_id, sha, role))
            equity.append(equity_row(d, symbol, self.settings.timeframe, role, model_id, sha, ledger, trades))
        if equity:
            self.equity[key] = pl.DataFrame(equity, schema=EQUITY_SCHEMA)
        return pl.concat(frames, how="vertical_relaxed") if frames else None

    def publish(self, d: date, symbol: str, pair: ShadowPair, decision) -> Published:
        doc = decision_document(decision, pair)
        pointer = publish_champion(
            self.store, symbol, promoted_path(pair.challenger_row), d, decision.reason, doc, self.specs.recipe.hash
        )
        previous = pair.previous
        self.reg.upsert(
            "promotions",
            [
                {
                    "symbol": symbol,
                    "timeframe": self.settings.timeframe,
                    "as_of": d,
                    "kind": "promotion",
                    "event_id": "",
                    "from_model_id": previous["champion_model_id"] if previous else None,
                    "to_model_id": pointer.model_id,
                    "reason": decision.reason,
                    "at": datetime.now(UTC),
                    "snapshot": doc,
                    "sha256": pointer.sha256,
                }
            ],
        )
        return Published(pointer.model_id, pointer.bucket_path, pointer.sha256, pointer.latest_moved)

    def carry(self, day: _Day, d: date, symbol: str, outcome) -> object:
        """No shadow result for the coin today: the champion of D-1 stays, with the reason."""
        if isinstance(outcome, SymbolOutcome) and outcome.status == "failed":
            return outcome
        previous = self.previous_pointer(d, symbol)
        reason = getattr(outcome, "reason", None) or "no shadow result"
        has_champion = previous is not None and previous["champion_model_id"] is not None
        ledgers = {"champion": carried_ledger(previous, "champion", d) if has_champion else None,
                   "challenger": carried_ledger(previous, "challenger", d) if previous else None,
                   **day.ledgers.get(join_key(d, symbol), {})}  # fmt: skip
        frame = carried_row(previous, reason, ledgers)
        return SymbolOutcome.skipped(reason, frame=frame) if previous is None else frame

    def run_day(self, context, day_text: str, day_keys: list[str]) -> None:
        """Pass 1: shadow every coin of the day. Pass 2: the day's decisions (all coins together, with the kill
        switches), then publish per coin."""
        day, trade_log = _Day(), {}
        chart_day = charted(context, self.settings.execution.key_charts)
        pcfg = self.settings.promotion

        def one(d: date, symbol: str):
            key = join_key(d, symbol)
            out = self.shadow_one(day, d, symbol)
            pair = out if isinstance(out, ShadowPair) else None
            if pair is not None:
                day.pairs[key] = pair
            rows = trade_log[key] = self.ledger_rows(day, d, symbol, pair)
            frame = rows.select(TRADE_TABLE_COLUMNS) if rows is not None else pl.DataFrame(schema=TRADE_SCHEMA)
            if pair is not None:
                return frame  # the ledger trades that closed on D: the registry table's columns
            if isinstance(out, SymbolOutcome) and out.status == "skipped" and rows is not None:
                return SymbolOutcome.skipped(out.reason, frame=frame)  # the champion's ledger still moved
            return out

        results = run_keys(context, one, keys=day_keys, label=f"shadow {day_text}")
        decided = decide_pairs(day.pairs, self.specs.promotion, pcfg.global_kill_share)
        self.kills.update(
            {k: f"drawdown past {pcfg.kill_switch_drawdown:.0%}: no promotion for the coin" for k in decided.killed}
        )
        if decided.stop_all:
            self.kills[f"{day_text}|*"] = (
                f"{len(decided.killed)}/{len(day.pairs)} coins past the kill switch: no promotion anywhere"
            )
        published: dict[str, str | None] = {}
        for key, result in sorted(results.items()):
            self.outcomes[key] = result
            d, symbol = split_key(key)
            pair = day.pairs.get(key)
            if pair is None:
                self.pointers[key] = self.carry(day, d, symbol, result)
                continue
            if pair.challenger.stats["n_trades"] < pcfg.min_trades:
                self.few[key] = f"{pair.challenger.stats['n_trades']} shadow trades < {pcfg.min_trades}"
            try:
                decision = decided.decisions[key]
                if isinstance(decision, Exception):
                    raise decision
                publication = self.publish(d, symbol, pair, decision) if decision.promote else None
                published[key] = publication.model_id if publication else None
                self.pointers[key] = decided_row(d, pair, decision, decided.trials[key], publication)
            except Exception as exc:  # a failed publication leaves the old pointer (publishing/champion.py)
                context.log.warning(f"champion_pointer {key} failed: {type(exc).__name__}: {exc}")
                self.pointers[key] = SymbolOutcome.failed(f"{type(exc).__name__}: {exc}")
            ledgers = {role: (ledger.stats() if ledger is not None else None) for role, ledger in pair.ledgers.items()}
            values = shadow_values(pair.challenger.stats, ledgers)
            if chart_day(d):
                values["equity"] = MetadataValue.md(pair_markdown(key, pair, self.specs.shadow.initial_equity))
            self.shadow_meta[key] = values
        self.write_trade_log(day_text, trade_log)
        self.write_log(f"shadow_logs/predictions/{day_text}.parquet", day.predictions)
        records = decision_records(date.fromisoformat(day_text), decided, day.pairs, published)
        write_decisions(self.store, self.reg, self.settings.timeframe, date.fromisoformat(day_text), records)

    def equity_outcome(self, key: str, shadow: object) -> object:
        """``daily_equity`` of a key: its ledgers' rows of D (both roles), or why no ledger moved."""
        if key in self.equity:
            return self.equity[key]
        if isinstance(shadow, SymbolOutcome) and shadow.status != "ok":
            return SymbolOutcome(shadow.status, f"no ledger moved: {shadow.reason}")
        return SymbolOutcome.skipped("no ledger moved")

    def write_trade_log(self, day_text: str, trade_log: dict[str, pl.DataFrame | None]) -> None:
        """``shadow_logs/trades/D.parquet``: every ledger trade that closed on D, both roles."""
        self.write_log(f"shadow_logs/trades/{day_text}.parquet", list(trade_log.values()))

    def write_log(self, path: str, frames: list[pl.DataFrame | None]) -> None:
        """One parquet object of the day's rows (nothing when there are none)."""
        frames = [f for f in frames if f is not None and f.height]
        if not frames:
            return
        buf = io.BytesIO()
        pl.concat(frames, how="vertical_relaxed").write_parquet(buf, compression="zstd")
        self.store.put(path, buf.getvalue())


def _pointer_metadata(value: object) -> dict:
    """A key's champion_pointer numbers: its decision row (a carried row too), nothing for a failed key."""
    frame = value if isinstance(value, pl.DataFrame) else getattr(value, "frame", None)
    return pointer_values(frame.row(0, named=True)) if frame is not None and frame.height else {}


def _shadow_and_champion_asset(settings: Settings, specs: EngineSpecs):
    w = settings.windows

    @symbol_day_multi_asset(
        settings.partitions,
        outs={
            "shadow_trades": AssetOut(
                io_manager_key="table_io_manager",
                group_name="champion",
                metadata={"table": "shadow_trades"},
                description="Paper trades of the challenger and of the champion as of D-1 on the same unseen bars "
                "of [D-S, D], after fees, spread and slippage (registry table; also shadow_logs/trades/D.parquet).",
            ),
            "daily_equity": AssetOut(
                io_manager_key="table_io_manager",
                group_name="champion",
                metadata={"table": "daily_equity", "date_column": "date"},
                description="Each forward ledger's NAV at the close of D, its drawdown, turnover and costs (registry "
                "table; one row per role, champion and challengers).",
            ),
            "champion_pointer": AssetOut(
                io_manager_key="parquet_io_manager",
                group_name="champion",
                description="The promotion decision and the champion after it; a promotion publishes the bundle to "
                "models/SYMBOL/, writes champion/SYMBOL/history/D.json and moves latest.json last, only forward.",
            ),
        },
        ins={
            "challenger_model": AssetIn(),
            "candles": AssetIn(partition_mapping=window_mapping(w.shadow_days + specs.vol_days)),
            "features": AssetIn(partition_mapping=window_mapping(w.shadow_days)),
            "engine_signals": AssetIn(partition_mapping=window_mapping(w.shadow_days)),
            "champion_pointer": AssetIn(partition_mapping=window_mapping(1, -1)),
        },
        check_specs=[
            check_spec("shadow_all_symbols_ok", asset="shadow_trades"),
            check_spec("shadow_minimum_sample", asset="shadow_trades"),
            check_spec("drawdown_kill_switch", asset="champion_pointer"),
            check_spec("champion_pointer_valid", asset="champion_pointer"),
            check_spec("champion_bundle_verifies", asset="champion_pointer"),
        ],
    )
    def shadow_trades(
        context: AssetExecutionContext,
        challenger_model: PartitionWindow,
        candles: PartitionWindow,
        features: PartitionWindow,
        engine_signals: PartitionWindow,
        champion_pointer: PartitionWindow,
        object_store: ObjectStoreResource,
        registry: RegistryResource,
    ):
        inputs = {
            "challenger_model": challenger_model,
            "candles": candles,
            "features": features,
            "engine_signals": engine_signals,
            "champion_pointer": champion_pointer,
        }
        started = time.monotonic()
        run = _ShadowRun(settings, specs, object_store.get_store(), registry.get_registry(), inputs)
        keys = sorted(str(k) for k in context.partition_keys)
        for day in sorted({k.split("|")[0] for k in keys}):  # dates in order: D reads the pointer of D-1
            run.run_day(context, day, [k for k in keys if k.startswith(day)])
        s = summarize(run.outcomes)
        equity = {k: run.equity_outcome(k, v) for k, v in run.outcomes.items()}
        key_metadata(context, run.pointers, {k: _pointer_metadata(v) for k, v in run.pointers.items()},
                     asset_key="champion_pointer")  # fmt: skip
        key_metadata(context, run.outcomes, run.shadow_meta, asset_key="shadow_trades")
        key_metadata(context, equity, None, asset_key="daily_equity")
        # champion_pointer first: the op reads champion_pointer[D-1], so Dagster orders it before shadow_trades
        frames = {k: v for k, v in run.pointers.items() if isinstance(v, pl.DataFrame)}
        promoted = {k: f["reason"][0] for k, f in frames.items() if f["promoted"][0]}
        yield Output(
            run.pointers,
            output_name="champion_pointer",
            metadata={
                **run_metadata(run.pointers),
                "run_promotions": len(promoted),
                "run_promoted": MetadataValue.json(promoted),
            },
        )
        compute = {"run_compute_seconds": round(time.monotonic() - started, 3)}  # the step's own work, once
        yield Output(run.outcomes, output_name="shadow_trades", metadata={**run_metadata(run.outcomes), **compute})
        yield Output(equity, output_name="daily_equity", metadata=run_metadata(equity))
        yield check_result("shadow_all_symbols_ok", s["failed"], AssetCheckSeverity.WARN, "shadow_trades")
        yield check_result("shadow_minimum_sample", run.few, AssetCheckSeverity.WARN, "shadow_trades")
        yield check_result("drawdown_kill_switch", run.kills, AssetCheckSeverity.WARN, "champion_pointer")
        invalid = {}
        for symbol in sorted({split_key(k)[1] for k in keys}):
            valid, why = check_pointer(run.store, symbol, specs.recipe.hash)
            if not valid:
                invalid[symbol] = why
        yield check_result("champion_pointer_valid", invalid, AssetCheckSeverity.ERROR, "champion_pointer")
        yield check_result("champion_bundle_verifies", run.bad_bundles, AssetCheckSeverity.ERROR, "champion_pointer")

    return shadow_trades
