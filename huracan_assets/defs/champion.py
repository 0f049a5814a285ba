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

import io
import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
from dagster import (
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    BackfillPolicy,
    MetadataValue,
    Output,
    multi_asset,
)

from huracan_assets.core.market_data.candles import date_range, day_bounds_ms
from huracan_assets.core.models.bundle import BUNDLE_FILES, BundleError, ModelBundle, load_bundle_model, verify_bundle
from huracan_assets.core.promotion.gates import Candidate, Decision, PromotionSpec, ShadowStats, decide_day
from huracan_assets.core.promotion.multiplicity import next_trial, retests_after
from huracan_assets.core.reporting.charts import line_chart, markdown_image, png
from huracan_assets.core.shadow.daily import daily_returns, sparkline
from huracan_assets.core.shadow.ledger import Ledger, ledger_day
from huracan_assets.core.shadow.trader import ShadowResult, simulate
from huracan_assets.core.training.dataset import Windows, inference_frame, matrix
from huracan_assets.defs.derived import label_vol_days, recipe_for
from huracan_assets.defs.market_data import SYMBOL_DAY_TAG
from huracan_assets.defs.partitions import symbol_day_partitions, window_mapping
from huracan_assets.defs.per_symbol import check_result, run_keys, summarize
from huracan_assets.defs.resources import ObjectStoreResource, RegistryResource
from huracan_assets.defs.signals import engine_registry
from huracan_assets.publishing.champion import check_pointer, publish_champion
from huracan_assets.settings import Settings
from huracan_assets.specs import shadow_spec
from huracan_assets.storage.object_store import ObjectNotFound
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome

DAY_MS = 86_400_000
COST_PARTS = ("fee_bps", "spread_bps", "slippage_bps", "stop_slippage_bps")
TRADE_TABLE_COLUMNS = ("trade_id", "time", "side", "size", "entry", "exit", "fees", "net_pnl", "model_id", "sha256",
                       "role", "exit_time", "exit_reason", "gross_bps", "cost_bps", "net_bps", *COST_PARTS)  # fmt: skip
TRADE_SCHEMA = {"trade_id": pl.String, "time": pl.Datetime("us", "UTC"), "side": pl.String, "size": pl.Float64,
                "entry": pl.Float64, "exit": pl.Float64, "fees": pl.Float64, "net_pnl": pl.Float64,
                "model_id": pl.String, "sha256": pl.String, "role": pl.String, "exit_time": pl.Datetime("us", "UTC"),
                "exit_reason": pl.String, "gross_bps": pl.Float64, "cost_bps": pl.Float64, "net_bps": pl.Float64,
                **dict.fromkeys(COST_PARTS, pl.Float64)}  # fmt: skip
POINTER_SCHEMA = {
    "champion_model_id": pl.String,
    "bucket_path": pl.String,
    "sha256": pl.String,
    "champion_as_of": pl.Date,
    "validated_model_id": pl.String,
    "validated_path": pl.String,
    "promoted": pl.Boolean,
    "reason": pl.String,
    "kill_switch": pl.Boolean,
    "latest_moved": pl.Boolean,
    "challenger_model_id": pl.String,
    "challenger_trades": pl.Int64,
    "challenger_net_bps": pl.Float64,
    "challenger_return": pl.Float64,
    "champion_trades": pl.Int64,
    "champion_net_bps": pl.Float64,
    "champion_return": pl.Float64,
    "gates": pl.String,
    "tests_since_promotion": pl.Int64,  # retests since the last promotion, today's included (0: promoted today)
    # the forward-only track records (core/shadow/ledger.py), as JSON: each day appends only D's bars
    "champion_ledger": pl.String,  # the champion's, since the day after its promotion (None: promoted today)
    "challenger_ledger": pl.String,  # "always trade the latest challenger", one per coin
}


def promotion_spec(settings: Settings) -> PromotionSpec:
    p = settings.promotion
    return PromotionSpec(
        min_trades=p.min_trades,
        margin_bps=p.margin_bps,
        confidence=p.confidence,
        min_dsr=p.min_dsr,
        dsr_trials=settings.validation.dsr_trials,
        max_drawdown=p.max_drawdown,
        first_min_net_bps=p.first_min_net_bps,
        kill_switch_drawdown=p.kill_switch_drawdown,
        alpha=p.alpha,
        spending_half_tests=float(p.spending_half_tests),
        fdr_q=p.fdr_q,
    )


def training_cutoff_ms(bundle: ModelBundle) -> int:
    """The end of a bundle's training window (``config.json`` windows.training ``[a, b)``)."""
    end = bundle.config["windows"]["training"].strip("[)").split(",")[1].strip()
    return (date.fromisoformat(end) - date(1970, 1, 1)).days * DAY_MS


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


def build_champion_assets(settings: Settings) -> list:
    return [_shadow_and_champion_asset(settings)]


class _Accumulated:
    def __init__(self) -> None:
        self.few: dict[str, str] = {}
        self.kills: dict[str, str] = {}
        self.trades: dict[str, object] = {}
        self.charts: list[str] = []


class _ShadowDay:
    """The state of one run of the op: inputs, verified bundles, pointers produced so far (dates in order)."""

    def __init__(self, settings: Settings, store, reg, inputs: dict[str, PartitionWindow]):
        self.settings, self.store, self.reg, self.inputs = settings, store, reg, inputs
        self.recipe = recipe_for(settings)
        self.engines = list(engine_registry(settings).names())
        self.bar_ms = settings.bar_minutes * 60_000
        self.vol_days = label_vol_days(settings)
        self.sspec, self.pspec = shadow_spec(settings), promotion_spec(settings)
        self.bundles = _Bundles(store, self.recipe.hash)
        self.pointers: dict[str, object] = {}
        self.bad_bundles: dict[str, str] = {}
        self.ledgers: dict[str, dict[str, Ledger | None]] = {}  # key -> role -> the ledger after D
        self.day_trades: dict[tuple[str, str], pl.DataFrame] = {}  # (key, role) -> trades closed on D
        self.trade_log: dict[str, pl.DataFrame | None] = {}  # key -> the ledger trade rows of D

    # -------------------------------------------------------------------------------------------- inputs

    def previous_pointer(self, d: date, symbol: str) -> dict | None:
        key = f"{(d - timedelta(days=1)).isoformat()}|{symbol}"
        produced = self.pointers.get(key)
        if isinstance(produced, pl.DataFrame):
            return produced.row(0, named=True)
        window = self.inputs["champion_pointer"]
        if key in window and window.status(key).status == "ok":
            return window[key].row(0, named=True)
        return None

    def shadow_one(self, d: date, symbol: str):
        """The day's ledgers and the challenger's shadow window: a dict of results, or a SymbolOutcome saying why
        not (the champion's ledger still advances on a day without a challenger; ``carry`` stores it)."""
        key = f"{d.isoformat()}|{symbol}"
        previous = self.previous_pointer(d, symbol)
        bars = self._bars(d, symbol)
        champion, champ_ledger = None, None
        if previous is not None and previous["champion_model_id"] is not None:
            try:  # the published bundle itself: its ledger holds only bars after its promotion, unseen by it
                champion = self.bundles.get(previous["bucket_path"])
            except (BundleError, ObjectNotFound) as exc:
                self.bad_bundles[key] = f"champion {previous['bucket_path']}: {exc}"
                return SymbolOutcome.failed(f"champion bundle does not verify: {exc}")
            if not isinstance(bars, SymbolOutcome):
                champ_ledger = self._advance(key, _ledger(previous, "champion", d), champion, bars, d)
                self.ledgers[key] = {"champion": champ_ledger}
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
        roll = self._advance(key, _ledger(previous, "challenger", d), challenger, bars, d)
        self.ledgers[key] = {"champion": champ_ledger, "challenger": roll}
        return self._decision_inputs(d, symbol, bars, row, challenger, previous, champion)

    def _bars(self, d: date, symbol: str):
        win = Windows.for_day(d, self.settings.windows.training_days, self.settings.windows.shadow_days, 0)
        days = date_range(d - timedelta(days=self.settings.windows.shadow_days), d)
        candles, _ = self.inputs["candles"].days(symbol, date_range(days[0] - timedelta(days=self.vol_days), d))
        feats, fmissing = self.inputs["features"].days(symbol, days)
        sigs, _ = self.inputs["engine_signals"].days(symbol, days)
        if candles is None or feats is None or sigs is None or d in fmissing:
            return SymbolOutcome.skipped("shadow window: candles, features or engine signals missing")
        frame = candles.select("ts", "open", "high", "low", "close").unique("ts", keep="last").sort("ts")
        costs = sigs.select(
            "ts", "fee_bps", "spread_bps", "slippage_bps", pl.col("combined_raw_direction").cast(pl.Float64)
        )
        frame = frame.join(costs, on="ts", how="left")
        inputs = inference_frame(feats, sigs, win.shadow_start_ms, win.shadow_end_ms, self.recipe.names, self.engines)
        return {"frame": frame, "inputs": inputs, "start": win.shadow_start_ms, "end": win.shadow_end_ms}

    # ------------------------------------------------------------------------------------------ simulate

    def _probabilities(self, bundle: ModelBundle, bars: dict) -> np.ndarray:
        names = bundle.config["feature_names"]
        missing = [c for c in names if c not in bars["inputs"].columns]
        if missing:
            raise ValueError(f"model {bundle.bundle_id()} needs inputs this graph no longer makes: {missing[:5]}")
        model = load_bundle_model(bundle, threads=self.settings.execution.thread_budget)
        p = model.predict_proba(matrix(bars["inputs"], names))
        scored = pl.DataFrame({"ts": bars["inputs"]["ts"], "p": p})
        return bars["frame"].select("ts").join(scored, on="ts", how="left")["p"].fill_null(float("nan")).to_numpy()

    def _run(self, bars: dict, p: np.ndarray, start_ms: int, end_ms: int | None = None, **carry) -> ShadowResult:
        f = bars["frame"]
        col = {c: f[c].cast(pl.Float64).fill_null(float("nan")).to_numpy() for c in f.columns if c != "ts"}
        end = bars["end"] if end_ms is None else end_ms
        return simulate(
            f["ts"].to_numpy(), col["open"], col["high"], col["low"], col["close"], p, col["combined_raw_direction"],
            col["fee_bps"], col["spread_bps"], col["slippage_bps"], start_ms, end, self.sspec, self.bar_ms, **carry,
        )  # fmt: skip

    def _advance(self, key: str, ledger: Ledger, bundle: ModelBundle, bars: dict, d: date) -> Ledger:
        """``ledger`` with the bars of D appended: ``bundle`` trades D only, from the state D-1 left."""
        if ledger.last_day is not None and ledger.last_day >= d:
            return ledger  # already holds D: never count a bar twice
        start, end = day_bounds_ms(d)
        res = self._run(bars, self._probabilities(bundle, bars), start, end, initial_state=ledger.trader_state,
                        carry=True)  # fmt: skip
        self.day_trades[(key, ledger.role)] = res.trades
        return ledger_day(ledger, d, res, self.sspec.initial_equity)

    def _decision_inputs(self, d, symbol, bars, row, challenger, previous, champion) -> dict:
        """The challenger on its whole shadow window, which it has never seen, and the champion's forward record
        over the same window, from the day after its promotion on (never a re-simulation: a champion is judged
        only on bars after it was chosen, and a published refit never on bars it trained on)."""
        key = f"{d.isoformat()}|{symbol}"
        ledgers = self.ledgers[key]
        ch = self._run(bars, self._probabilities(challenger, bars), bars["start"])
        result = {"row": row, "challenger": ch, "previous": previous, "from": bars["start"], "ledgers": ledgers}
        result["challenger_stats"] = ShadowStats(
            model_id=row["model_id"],
            trade_net_bps=ch.trades["net_bps"].to_numpy(),
            daily_returns=daily_returns(ch.equity, self.sspec.initial_equity),
            max_drawdown=float(ch.stats["max_drawdown"]),
            canaries_passed=bool(row["canaries_passed"]),
            trained_until_ms=training_cutoff_ms(challenger),
            compared_from_ms=int(bars["start"]),
        )
        champ_ledger = ledgers.get("champion")
        if champion is not None and champ_ledger is not None:
            cutoff = training_cutoff_ms(champion)
            start = max(bars["start"], day_bounds_ms(champ_ledger.since)[0], cutoff)
            net, returns, drawdown = champ_ledger.window(date(1970, 1, 1) + timedelta(days=start // DAY_MS))
            result["champion_stats"] = ShadowStats(
                model_id=previous["champion_model_id"],
                trade_net_bps=net,
                daily_returns=returns,
                max_drawdown=min(1.0, drawdown),
                canaries_passed=bool(champion.metrics.get("canaries", {}).get("passed", False)),
                trained_until_ms=cutoff,
                compared_from_ms=int(start),
            )
        return result

    def ledger_rows(self, d: date, symbol: str, key: str, sim: dict | None) -> pl.DataFrame | None:
        """The trades each ledger closed on D (registry ``shadow_trades``) and its ``daily_equity`` rows."""
        ledgers = self.ledgers.get(key, {})
        previous = self.previous_pointer(d, symbol)
        frames, equity = [], []
        for role, ledger in ledgers.items():
            if ledger is None or ledger.last_day != d:
                continue
            if role == "champion":
                model_id, sha = previous["champion_model_id"], previous["sha256"]
            else:
                model_id, sha = sim["row"]["model_id"], sim["row"]["sha256"]
            trades = self.day_trades.get((key, role))
            if trades is not None and trades.height:
                frames.append(_trade_rows(symbol, trades, model_id, sha, role))
            equity.append(_equity_row(d, symbol, self.settings.timeframe, role, model_id, sha, ledger, trades))
        if equity:
            self.reg.upsert("daily_equity", equity)
        return pl.concat(frames, how="vertical_relaxed") if frames else None

    # -------------------------------------------------------------------------------------------- decide

    def kill(self, sim: dict) -> bool:
        limit = self.pspec.kill_switch_drawdown
        champ = sim["ledgers"].get("champion")
        return sim["challenger"].stats["max_drawdown"] > limit or (champ is not None and champ.max_drawdown > limit)

    def decide_all(self, sims: dict[str, dict]) -> dict[str, Decision | ValueError]:
        """Pass 2's decisions: every coin of the day together (the BH family is the day's coins), each at its
        retest number since its last promotion. A coin whose stats cover in-sample bars gets its ValueError."""
        candidates: dict[str, Candidate] = {}
        refused: dict[str, ValueError] = {}
        for key, sim in sims.items():
            sim["trial"] = next_trial(_tests_since_promotion(sim["previous"]))
            try:
                candidates[key] = Candidate(sim["challenger_stats"], sim.get("champion_stats"), sim["trial"])
            except ValueError as exc:
                refused[key] = exc
        return {**decide_day(candidates, self.pspec), **refused}

    def decide_and_publish(
        self, d: date, symbol: str, sim: dict, stop_all: bool, decision: Decision | ValueError
    ) -> pl.DataFrame:
        if isinstance(decision, Exception):
            raise decision
        if stop_all and decision.promote:
            decision = Decision(False, "global kill switch: no promotion anywhere today", decision.gates, True)
        previous, row = sim["previous"], sim["row"]
        ledgers = sim["ledgers"]
        doc = {"gates": decision.gates, "challenger": _plain(sim["challenger"].stats), "published": _published(row)}
        if ledgers.get("champion") is not None:
            doc["champion"] = _plain(ledgers["champion"].stats())
        if ledgers.get("challenger") is not None:
            doc["challenger_ledger"] = _plain(ledgers["challenger"].stats())
        base = {
            "promoted": decision.promote,
            "reason": decision.reason,
            "kill_switch": decision.kill_switch,
            "challenger_model_id": row["model_id"],
            **_summary("challenger", sim["challenger"]),
            **_champion_summary(sim.get("champion_stats")),
            "gates": json.dumps(doc, sort_keys=True, default=str),
            "tests_since_promotion": retests_after(sim["trial"], decision.promote),
            **_ledger_columns(ledgers, promoted=decision.promote),
        }
        if decision.promote:
            path = row.get("refit_path") or row["bundle_path"]  # the refit through D, when the config makes one
            pointer = publish_champion(self.store, symbol, path, d, decision.reason, doc, self.recipe.hash)
            self.reg.upsert(
                "promotions",
                [
                    {
                        "symbol": symbol,
                        "timeframe": self.settings.timeframe,
                        "as_of": d,
                        "from_model_id": previous["champion_model_id"] if previous else None,
                        "to_model_id": pointer.model_id,
                        "reason": decision.reason,
                        "at": datetime.now(UTC),
                        "snapshot": doc,
                        "sha256": pointer.sha256,
                    }
                ],
            )
            champ = {
                "champion_model_id": pointer.model_id,
                "bucket_path": pointer.bucket_path,
                "sha256": pointer.sha256,
                "champion_as_of": d,
                # the model the promotion was validated on, when a refit through D was published instead
                "validated_model_id": row["model_id"] if row.get("refit_path") else None,
                "validated_path": row["bundle_path"] if row.get("refit_path") else None,
                "latest_moved": pointer.latest_moved,
            }
        else:
            champ = _carried(previous)
        return pl.DataFrame([{**champ, **base}], schema=POINTER_SCHEMA)

    def carry(self, d: date, symbol: str, outcome) -> object:
        """No shadow result for the coin today: the champion of D-1 stays, with the reason."""
        previous = self.previous_pointer(d, symbol)
        reason = getattr(outcome, "reason", None) or "no shadow result"
        if isinstance(outcome, SymbolOutcome) and outcome.status == "failed":
            return outcome
        ledgers = {"champion": _ledger(previous, "champion", d) if previous and previous["champion_model_id"] else None,
                   "challenger": _ledger(previous, "challenger", d) if previous else None,
                   **self.ledgers.get(f"{d.isoformat()}|{symbol}", {})}  # fmt: skip
        frame = pl.DataFrame(
            [
                {
                    **_carried(previous),
                    "promoted": False,
                    "reason": f"no decision: {reason}",
                    "kill_switch": False,
                    "tests_since_promotion": _tests_since_promotion(previous) or 0,  # no retest today
                    **_ledger_columns(ledgers, promoted=False),
                }
            ],
            schema=POINTER_SCHEMA,
        )
        return SymbolOutcome.skipped(reason, frame=frame) if previous is None else frame

    def run_day(self, context, day: str, day_keys: list[str], acc: _Accumulated) -> None:
        """Pass 1: shadow every coin of the day. Pass 2: the kill switches, the day's decisions (all coins together),
        then publish per coin."""
        sims: dict[str, dict] = {}
        pcfg = self.settings.promotion

        def one(d: date, symbol: str):
            key = f"{d.isoformat()}|{symbol}"
            out = self.shadow_one(d, symbol)
            if isinstance(out, dict):
                sims[key] = out
            rows = self.ledger_rows(d, symbol, key, out if isinstance(out, dict) else None)
            self.trade_log[key] = rows
            frame = rows.select(TRADE_TABLE_COLUMNS) if rows is not None else pl.DataFrame(schema=TRADE_SCHEMA)
            if isinstance(out, dict):
                return frame  # the ledger trades that closed on D: the registry table's columns
            if isinstance(out, SymbolOutcome) and out.status == "skipped" and rows is not None:
                return SymbolOutcome.skipped(out.reason, frame=frame)  # the champion's ledger still moved
            return out

        results = run_keys(context, one, keys=day_keys, label=f"shadow {day}")
        killed = [k for k in sims if self.kill(sims[k])]
        stop_all = bool(sims) and len(killed) / len(sims) > pcfg.global_kill_share
        acc.kills.update(
            {k: f"drawdown past {pcfg.kill_switch_drawdown:.0%}: no promotion for the coin" for k in killed}
        )
        if stop_all:
            acc.kills[f"{day}|*"] = f"{len(killed)}/{len(sims)} coins past the kill switch: no promotion anywhere"
        decisions = self.decide_all(sims)
        for key, result in sorted(results.items()):
            acc.trades[key] = result
            d, symbol = date.fromisoformat(key.split("|")[0]), key.split("|")[1]
            if key not in sims:
                self.pointers[key] = self.carry(d, symbol, result)
                continue
            sim = sims[key]
            if sim["challenger"].stats["n_trades"] < pcfg.min_trades:
                acc.few[key] = f"{sim['challenger'].stats['n_trades']} shadow trades < {pcfg.min_trades}"
            try:
                self.pointers[key] = self.decide_and_publish(d, symbol, sim, stop_all, decisions[key])
            except Exception as exc:  # a failed publication leaves the old pointer (publishing/champion.py)
                context.log.warning(f"champion_pointer {key} failed: {type(exc).__name__}: {exc}")
                self.pointers[key] = SymbolOutcome.failed(f"{type(exc).__name__}: {exc}")
            if not acc.charts or symbol == "BTCUSDT":
                acc.charts[:] = [_equity_chart(key, sim, self.sspec.initial_equity)]
        self.write_trade_log(day)

    def write_trade_log(self, day: str) -> None:
        """``shadow_logs/trades/D.parquet``: every ledger trade that closed on D, both roles."""
        frames = [f for k, f in self.trade_log.items() if k.startswith(day) and f is not None and f.height]
        if not frames:
            return
        buf = io.BytesIO()
        pl.concat(frames, how="vertical_relaxed").write_parquet(buf, compression="zstd")
        self.store.put(f"shadow_logs/trades/{day}.parquet", buf.getvalue())


def _plain(stats: dict) -> dict:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in stats.items()}


def _summary(role: str, res: ShadowResult | None) -> dict:
    if res is None:
        return {f"{role}_trades": None, f"{role}_net_bps": None, f"{role}_return": None}
    net = res.stats["net_bps_per_trade"]
    return {
        f"{role}_trades": int(res.stats["n_trades"]),
        f"{role}_net_bps": float(net) if np.isfinite(net) else None,
        f"{role}_return": float(res.stats["total_return"]),
    }


def _tests_since_promotion(previous: dict | None) -> int | None:
    """The retests the pointer of D-1 says were spent since the coin's last promotion (None: no pointer, or one
    written before the count existed: the count starts again)."""
    return None if previous is None else previous.get("tests_since_promotion")


def _carried(previous: dict | None) -> dict:
    keep = ("champion_model_id", "bucket_path", "sha256", "champion_as_of", "validated_model_id", "validated_path")
    return {**{k: (previous or {}).get(k) for k in keep}, "latest_moved": False}


def _published(row: dict) -> dict:
    """What a promotion of ``row`` publishes, for the pointer's snapshot."""
    validated = {"validated_model_id": row["model_id"], "validated_bundle": row["bundle_path"]}
    if row.get("refit_path"):
        return {"model": "refit", "refit_model_id": row["refit_model_id"], "refit_bundle": row["refit_path"],
                **validated}  # fmt: skip
    note = row.get("refit_note")
    return {"model": "validated", **validated, **({"note": note} if note else {})}


def _trade_rows(symbol: str, trades: pl.DataFrame, model_id: str, sha: str, role: str) -> pl.DataFrame:
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


def _equity_row(d, symbol, timeframe, role, model_id, sha, ledger: Ledger, trades) -> dict:
    costs = trades["cost_bps"] if trades is not None else pl.Series([], dtype=pl.Float64)
    return {
        "date": d,
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


def _ledger(previous: dict | None, role: str, d: date) -> Ledger:
    """The ledger the pointer of D-1 left for ``role``, or a new one. A champion's ledger starts the day after
    its promotion (or today, for a champion whose pointer predates ledgers): bars after it was chosen only."""
    text = (previous or {}).get(f"{role}_ledger")
    if role == "challenger":
        return Ledger.from_json(text) if text else Ledger("challenger", since=d)
    model_id = previous["champion_model_id"]
    if text:
        ledger = Ledger.from_json(text)
        if ledger.model_id == model_id:
            return ledger
    promoted = previous.get("champion_as_of")
    since = max(d, promoted + timedelta(days=1)) if promoted else d
    return Ledger("champion", since=since, model_id=model_id)


def _ledger_columns(ledgers: dict, promoted: bool) -> dict:
    """The pointer's ledger columns (JSON). A promotion ends the old champion's ledger: the new champion's starts
    the next day, on bars it has never seen."""
    champion = ledgers.get("champion")
    challenger = ledgers.get("challenger")
    return {
        "champion_ledger": None if promoted or champion is None else champion.to_json(),
        "challenger_ledger": None if challenger is None else challenger.to_json(),
    }


def _champion_summary(stats: ShadowStats | None) -> dict:
    if stats is None:
        return {"champion_trades": None, "champion_net_bps": None, "champion_return": None}
    net = stats.trade_net_bps
    return {
        "champion_trades": int(net.size),
        "champion_net_bps": float(net.mean()) if net.size else None,
        "champion_return": float(np.prod(1.0 + stats.daily_returns) - 1.0),
    }


def _equity_chart(key: str, sim: dict, initial_equity: float) -> str:
    """The decision (the challenger on its shadow window) and the forward track records (each role's ledger)."""
    ch = sim["challenger"].stats
    net = ch["net_bps_per_trade"]
    spark = sparkline(sim["challenger"].equity["equity"].to_numpy())
    head = "| record | curve | days | trades | gross / cost / net bps per trade | return | max DD |"
    lines = [f"**{key}**", "", head,
             "|---|---|---:|---:|---|---:|---:|",
             f"| challenger, shadow window (decision) | `{spark}` | | {ch['n_trades']} | net {_bps(net)} | "
             f"{ch['total_return']:+.2%} | {ch['max_drawdown']:.2%} |"]  # fmt: skip
    curves = []
    for role in ("challenger", "champion"):
        ledger = sim["ledgers"].get(role)
        if ledger is None:
            lines.append(f"| {role} ledger | (none yet) | | | | | |")
            continue
        st = ledger.stats()
        parts = " / ".join(_bps(st[f"{x}_bps_per_trade"]) for x in ("gross", "cost", "net"))
        lines.append(
            f"| {role} ledger since {st['since']} | `{sparkline(np.asarray(ledger.daily_navs))}` | {st['days']} | "
            f"{st['n_trades']} | {parts} | {st['total_return']:+.2%} | {st['max_drawdown']:.2%} |"
        )
        curves.append(np.concatenate(([1.0], np.asarray(ledger.daily_navs))) * initial_equity)
    if curves and max(c.size for c in curves) > 1:
        image = png(line_chart(curves, reference=initial_equity))
        lines += ["", "forward NAV by day, blue: challengers' ledger, orange: champion's ledger; dashed: the start", "",
                  markdown_image(image, f"ledgers {key}")]  # fmt: skip
    return "\n".join(lines)


def _bps(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:+.1f}"


def _shadow_and_champion_asset(settings: Settings):
    w = settings.windows
    vol_days = label_vol_days(settings)

    @multi_asset(
        partitions_def=symbol_day_partitions(settings.partitions.start_date),
        outs={
            "shadow_trades": AssetOut(
                io_manager_key="table_io_manager",
                group_name="champion",
                metadata={"table": "shadow_trades"},
                description="Paper trades of the challenger and of the champion as of D-1 on the same unseen bars "
                "of [D-S, D], after fees, spread and slippage (registry table; also shadow_logs/trades/D.parquet).",
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
            "candles": AssetIn(partition_mapping=window_mapping(w.shadow_days + vol_days)),
            "features": AssetIn(partition_mapping=window_mapping(w.shadow_days)),
            "engine_signals": AssetIn(partition_mapping=window_mapping(w.shadow_days)),
            "champion_pointer": AssetIn(partition_mapping=window_mapping(1, -1)),
        },
        check_specs=[
            AssetCheckSpec("shadow_all_symbols_ok", asset="shadow_trades"),
            AssetCheckSpec("shadow_minimum_sample", asset="shadow_trades"),
            AssetCheckSpec("drawdown_kill_switch", asset="champion_pointer"),
            AssetCheckSpec("champion_pointer_valid", asset="champion_pointer"),
            AssetCheckSpec("champion_bundle_verifies", asset="champion_pointer"),
        ],
        backfill_policy=BackfillPolicy.single_run(),
        op_tags=SYMBOL_DAY_TAG,
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
        run = _ShadowDay(settings, object_store.get_store(), registry.get_registry(), inputs)
        acc = _Accumulated()
        keys = sorted(str(k) for k in context.partition_keys)
        for day in sorted({k.split("|")[0] for k in keys}):  # dates in order: D reads the pointer of D-1
            run.run_day(context, day, [k for k in keys if k.startswith(day)], acc)
        few, kills, trades_out, charts = acc.few, acc.kills, acc.trades, acc.charts
        s = summarize(trades_out)
        meta = {"keys_ok": len(s["ok"]), "keys_failed": len(s["failed"]), "keys_skipped": len(s["skipped"])}
        if charts:
            meta["equity"] = MetadataValue.md(charts[0])
        # champion_pointer first: the op reads champion_pointer[D-1], so Dagster orders it before shadow_trades
        frames = {k: v for k, v in run.pointers.items() if isinstance(v, pl.DataFrame)}
        promoted = {k: f["reason"][0] for k, f in frames.items() if f["promoted"][0]}
        yield Output(
            run.pointers,
            output_name="champion_pointer",
            metadata={"promotions": len(promoted), "promoted": MetadataValue.json(promoted)},
        )
        yield Output(trades_out, output_name="shadow_trades", metadata=meta)
        yield check_result("shadow_all_symbols_ok", s["failed"], AssetCheckSeverity.WARN, "shadow_trades")
        yield check_result("shadow_minimum_sample", few, AssetCheckSeverity.WARN, "shadow_trades")
        yield check_result("drawdown_kill_switch", kills, AssetCheckSeverity.WARN, "champion_pointer")
        invalid = {}
        for symbol in sorted({k.split("|")[1] for k in keys}):
            valid, why = check_pointer(run.store, symbol, run.recipe.hash)
            if not valid:
                invalid[symbol] = why
        yield check_result("champion_pointer_valid", invalid, AssetCheckSeverity.ERROR, "champion_pointer")
        yield check_result("champion_bundle_verifies", run.bad_bundles, AssetCheckSeverity.ERROR, "champion_pointer")

    return shadow_trades
