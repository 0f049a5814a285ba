"""The asset graph: market data (``defs/market_data.py``), features, labels and regimes
(``defs/derived.py``), engine signals and meta weights (``defs/signals.py``) and the daily summary.

Assets are thin: read partition keys, call the pure core, return ``{key: frame | SymbolOutcome}``.
"""

import json
from dataclasses import dataclass
from datetime import date

import polars as pl
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from huracan_assets.core.params.replay import tomorrow
from huracan_assets.core.reporting.summary import (
    decisions_summary,
    portfolio_nav,
    presets_summary,
    summary_markdown,
    trading_summary,
)
from huracan_assets.defs.champion import build_champion_assets
from huracan_assets.defs.derived import build_derived_assets
from huracan_assets.defs.market_data import build_market_data_assets
from huracan_assets.defs.models import build_model_assets
from huracan_assets.defs.partitions import date_partitions, day_of_symbol_day
from huracan_assets.defs.presets import build_param_assets
from huracan_assets.defs.resources import ObjectStoreResource, RegistryResource, TelegramResource
from huracan_assets.defs.signals import build_signal_assets
from huracan_assets.names import (
    CHAMPION_POINTER,
    DAILY_EQUITY,
    META_WEIGHTS,
    PARAM_POSTERIORS,
    SHADOW_TRADES,
    SYMBOL_DAY_ASSETS,
    WALK_FORWARD_REPORT,
    split_key,
)
from huracan_assets.settings import Settings
from huracan_assets.specs import build_specs
from huracan_assets.storage.partitioned import PartitionWindow
from huracan_assets.telegram.commands import status_reply


def build_assets(settings: Settings) -> list:
    specs = build_specs(settings)  # every core spec, at load: a bad parameter fails here, naming its field
    days = date_partitions(settings.partitions)
    single_run = BackfillPolicy.single_run()

    @asset(
        partitions_def=days,
        group_name="reports",
        deps=[AssetDep(a, partition_mapping=day_of_symbol_day()) for a in SYMBOL_DAY_ASSETS if a not in SUMMARY_READS],
        ins={
            "universe": AssetIn(),
            **{name: AssetIn(partition_mapping=day_of_symbol_day()) for name in SUMMARY_READS},
        },
        backfill_policy=single_run,
    )
    def daily_summary(
        context: AssetExecutionContext,
        object_store: ObjectStoreResource,
        registry: RegistryResource,
        telegram: TelegramResource,
        universe: PartitionWindow,
        shadow_trades: pl.DataFrame,
        walk_forward_report: pl.DataFrame,
        daily_equity: pl.DataFrame,
        meta_weights: PartitionWindow,
        champion_pointer: PartitionWindow,
        param_posteriors: PartitionWindow,
    ) -> MaterializeResult:
        """Per-day summary of every symbol's status across the graph; JSON in ``summaries/daily/``. It reads the
        day's products through its inputs, and the keys' statuses from ``symbol_status``, the log the IO managers
        keep of every key they stored."""
        store, reg = object_store.get_store(), registry.get_registry()
        reads = _SummaryReads(
            shadow_trades, walk_forward_report, daily_equity, meta_weights, champion_pointer, param_posteriors
        )
        last = {}
        for key in sorted(context.partition_keys):
            day, _ = split_key(key)
            rows = reg.select("symbol_status", as_of=day, timeframe=settings.timeframe)
            uni = universe.get(day.isoformat())
            named = (
                uni.filter(~pl.col("selected") & ~pl.col("reason").str.contains("^(not named|below top)"))
                if uni is not None
                else None
            )
            rejected = dict(zip(named["symbol"], named["reason"], strict=True)) if named is not None else {}
            summary = build_summary(day, settings.timeframe, rows, rejected)
            summary.update(_trading_part(reads, reg, settings.timeframe, day, specs.shadow.initial_equity))
            store.put(
                f"summaries/daily/{day.isoformat()}.json", json.dumps(summary, indent=2).encode(), "application/json"
            )
            last = summary
        errors = telegram.send(status_reply(last)) if last else None
        if errors:
            context.log.warning(f"daily summary not sent to Telegram: {errors}")
        sent = "off" if errors is None else ("sent" if not errors else f"failed: {json.dumps(errors)[:300]}")
        return MaterializeResult(
            metadata={
                "telegram": sent,
                "symbols_done": last.get("symbols_done", 0),
                "symbols_skipped": len(last.get("skipped", {})),
                "symbols_failed": len(last.get("failed", {})),
                "promotions": len(last.get("promotions", {})),
                "report": MetadataValue.md(summary_markdown(last)) if last else MetadataValue.md("no dates"),
                "summary": MetadataValue.json(last),
            }
        )

    return [
        *build_market_data_assets(settings),
        *build_derived_assets(settings),
        *build_signal_assets(settings),
        *build_model_assets(settings, specs),
        *build_champion_assets(settings, specs),
        *build_param_assets(settings, specs),
        daily_summary,
    ]


SUMMARY_READS = (SHADOW_TRADES, WALK_FORWARD_REPORT, DAILY_EQUITY, META_WEIGHTS, CHAMPION_POINTER, PARAM_POSTERIORS)


@dataclass(frozen=True)
class _SummaryReads:
    """The daily summary's inputs (every day of the run): registry tables as frames, parquet assets as windows."""

    trades: pl.DataFrame
    reports: pl.DataFrame
    equity: pl.DataFrame
    weights: PartitionWindow
    pointers: PartitionWindow
    presets: PartitionWindow

    @staticmethod
    def _rows(frame: pl.DataFrame, column: str, day: date) -> list[dict]:
        return frame.filter(pl.col(column) == day).to_dicts() if frame.height and column in frame.columns else []

    def day(self, day: date) -> tuple[list[dict], list[dict], list[dict], list[dict], list[dict]]:
        """(trades, promotions, walk-forward overall rows, engine weights, per-coin equity rows) of ``day``."""
        reports = [r for r in self._rows(self.reports, "as_of", day) if r.get("window") == "wf_overall"]
        engines, promotions = [], []
        for window, rows in ((self.weights, engines), (self.pointers, promotions)):
            for key in window:
                d, symbol = split_key(key)
                if d != day or window.status(key).status != "ok":
                    continue
                frame = window[key]
                if window is self.weights:
                    rows += frame.unique("engine").select("engine", "weight", "ema_net_bps").to_dicts()
                elif frame.height and frame["promoted"][0]:
                    rows.append({"symbol": symbol, "to_model_id": frame["champion_model_id"][0],
                                 "reason": frame["reason"][0]})  # fmt: skip
        equity = [e for e in self._rows(self.equity, "date", day) if e["symbol"] != "*"]
        return self._rows(self.trades, "as_of", day), promotions, reports, engines, equity

    def presets_of(self, day: date) -> dict[str, dict]:
        """Per coin of ``day``, each strategy's preset for the next day and why (``param_posteriors``)."""
        out = {}
        for key in self.presets.keys_for(day=day):
            if self.presets.status(key).status == "ok":
                out[split_key(key)[1]] = tomorrow(self.presets[key])
        return out


def _trading_part(reads: _SummaryReads, reg, timeframe: str, day: date, initial_equity: float) -> dict:
    """The forward ledgers' trades that closed on D (``shadow_trades``), promotions, walk-forward and engine weights
    of D, and the portfolio ``daily_equity`` rows it writes (equal-weight mean of the coins' ledger NAVs, per
    role)."""
    trades, promotions, reports, engines, rows = reads.day(day)
    part = trading_summary(trades, promotions, reports, engines, initial_equity=initial_equity)
    navs = {}
    for role in ("challenger", "champion"):
        equity = [e for e in rows if e.get("role") == role]
        nav = portfolio_nav(e["nav"] for e in equity)
        navs[role] = nav
        if nav is None:
            continue
        reg.upsert(
            "daily_equity",
            [
                {
                    "date": day,
                    "symbol": "*",
                    "timeframe": timeframe,
                    "model_id": f"portfolio:{role}s",
                    "nav": nav,
                    "max_dd": max(e["max_dd"] for e in equity),
                    "turnover": sum(e["turnover"] for e in equity) / len(equity),
                    "fees_bps": sum(e["fees_bps"] for e in equity) / len(equity),
                    "sha256": None,
                    "role": role,
                    "n_trades": sum(e.get("n_trades") or 0 for e in equity),
                }
            ],
        )
    nav = navs["challenger"]
    part["portfolio_nav"] = nav
    part["portfolio_navs"] = navs
    # the decision log of D (publishing/decisions.py): the registry's copy, like symbol_status a log, not an asset
    part["decisions"] = decisions_summary(reg.select("decisions", date=[day], timeframe=timeframe))
    part["presets"] = presets_summary(reads.presets_of(day))
    return part


def build_summary(day: date, timeframe: str, status_rows: list[dict], rejected: dict | None = None) -> dict:
    """Pure: fold the per-(asset, symbol) statuses of D into the daily summary document.

    ``rejected`` holds coins the universe left out of D with a reason (e.g. not listed yet). A coin is done
    when every asset that ran for D (any symbol has a status for it) is ok for that coin.
    """
    per_symbol: dict[str, dict[str, tuple[str, str | None]]] = {}
    for row in status_rows:
        if row["symbol"] == "*":
            continue
        per_symbol.setdefault(row["symbol"], {})[row["asset"]] = (row["status"], row["reason"])
    done, failed = [], {}
    skipped = {s: f"universe: {r}" for s, r in (rejected or {}).items() if s not in per_symbol}
    ran = [a for a in SYMBOL_DAY_ASSETS if any(a in by_asset for by_asset in per_symbol.values())]
    for symbol, by_asset in sorted(per_symbol.items()):
        bad = [(a, by_asset[a]) for a in ran if a in by_asset and by_asset[a][0] != "ok"]
        complete = all(a in by_asset for a in ran)
        if any(st == "failed" for _, (st, _) in bad):
            asset_name, (_, reason) = next((a, s) for a, s in bad if s[0] == "failed")
            failed[symbol] = f"{asset_name}: {reason}"
        elif bad:
            asset_name, (_, reason) = bad[0]
            skipped[symbol] = f"{asset_name}: {reason}"
        elif complete:
            done.append(symbol)
        else:
            missing = [a for a in ran if a not in by_asset]
            failed[symbol] = f"not materialized: {', '.join(missing)}"
    return {
        "date": day.isoformat(),
        "timeframe": timeframe,
        "symbols_done": len(done),
        "done": done,
        "skipped": skipped,
        "failed": failed,
    }
