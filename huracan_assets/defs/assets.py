"""The asset graph (first slice): universe, reference_candles, candles, features, daily_summary.

Assets are thin: read partition keys, call the pure core, return ``{key: frame | SymbolOutcome}``.
"""

import json
from datetime import date, timedelta

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)

from huracan_assets.core.features.basic import basic_features
from huracan_assets.core.market_data.candles import DAY_MS, day_bounds_ms, normalize_day
from huracan_assets.core.market_data.universe import rank_universe
from huracan_assets.defs.partitions import (
    SYMBOLS,
    date_partitions,
    day_of_symbol_day,
    split_key,
    symbol_day_partitions,
    window_mapping,
)
from huracan_assets.defs.per_symbol import outputs_with_check, run_keys
from huracan_assets.defs.resources import ExchangeResource, ObjectStoreResource, RegistryResource
from huracan_assets.settings import Settings
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome

SYMBOL_DAY_TAG = {"huracan/lane": "symbol_day"}


def build_assets(settings: Settings) -> list:  # noqa: C901 - one closure per asset, each small
    days = date_partitions(settings.partitions.start_date)
    symbol_days = symbol_day_partitions(settings.partitions.start_date)
    single_run = BackfillPolicy.single_run()
    universe_cfg = settings.universe
    bar_minutes = settings.bar_minutes
    warmup = settings.windows.warmup_days

    @asset(
        partitions_def=days,
        group_name="market_data",
        io_manager_key="parquet_io_manager",
        backfill_policy=single_run,
        check_specs=[AssetCheckSpec("universe_is_not_empty", asset="universe")],
    )
    def universe(context: AssetExecutionContext, exchange: ExchangeResource):
        """Coins ranked by trailing quote volume known at the end of D; registers the symbol partitions."""
        client = exchange.client()
        results = {}
        selected_all: list[str] = []
        for key in sorted(context.partition_keys):
            day, _ = split_key(key)
            _, end = day_bounds_ms(day)
            stats, errors = client.listing_stats(end, universe_cfg.rank_lookback_days * DAY_MS)
            for symbol, error in errors.items():
                context.log.warning(f"universe {day}: {symbol} unreadable, left out: {error}")
            ranked = rank_universe(
                stats,
                as_of_end_ms=end,
                max_symbols=universe_cfg.max_symbols,
                min_history_days=universe_cfg.min_history_days,
                explicit=universe_cfg.symbols,
            )
            results[key] = ranked
            selected_all += [s for s in ranked.filter("selected")["symbol"].to_list() if s not in selected_all]
        known = set(context.instance.get_dynamic_partitions(SYMBOLS))
        new = [s for s in selected_all if s not in known]
        if new:
            context.instance.add_dynamic_partitions(SYMBOLS, new)
        sizes = {k: int(v["selected"].sum()) for k, v in results.items()}
        yield Output(
            results,
            metadata={
                "selected_per_day": MetadataValue.json(sizes),
                "new_symbols": len(new),
                "unreadable_markets": MetadataValue.json(errors),
            },
        )
        empty = sorted(k for k, n in sizes.items() if n == 0)
        yield AssetCheckResult(
            check_name="universe_is_not_empty", passed=not empty, metadata={"empty_days": MetadataValue.json(empty)}
        )

    @asset(
        partitions_def=days,
        group_name="market_data",
        io_manager_key="parquet_io_manager",
        backfill_policy=single_run,
    )
    def reference_candles(context: AssetExecutionContext, exchange: ExchangeResource) -> dict:
        """D's bars of the reference coins (BTC, ETH), whatever the universe holds."""
        client = exchange.client()
        out = {}
        for key in sorted(context.partition_keys):
            day, _ = split_key(key)
            frames = []
            for symbol in universe_cfg.reference_symbols:
                if symbol not in client.markets:
                    context.log.warning(f"reference symbol {symbol} is not available")
                    continue
                bars, _report = normalize_day(client.fetch_ohlcv(symbol, *day_bounds_ms(day)), day, bar_minutes)
                frames.append(bars.with_columns(symbol=pl.lit(symbol)))
            out[key] = pl.concat(frames) if frames else pl.DataFrame(schema={"ts": pl.Int64, "symbol": pl.String})
        return out

    @asset(
        partitions_def=symbol_days,
        group_name="market_data",
        io_manager_key="parquet_io_manager",
        backfill_policy=single_run,
        ins={"universe": AssetIn(partition_mapping=day_of_symbol_day())},
        check_specs=[AssetCheckSpec("candles_all_symbols_ok", asset="candles")],
        op_tags=SYMBOL_DAY_TAG,
    )
    def candles(context: AssetExecutionContext, exchange: ExchangeResource, universe: PartitionWindow):
        """D's OHLCV bars per coin, normalized; gaps reported in the metadata, never filled."""
        client = exchange.client()
        members: dict[date, set[str]] = {}
        gap_total = 0

        def one(day: date, symbol: str):
            nonlocal gap_total
            if day not in members:
                uni = universe.get(day.isoformat())
                members[day] = set() if uni is None else set(uni.filter("selected")["symbol"].to_list())
            if symbol not in members[day]:
                return SymbolOutcome.skipped(f"not in the universe of {day}")
            raw = client.fetch_ohlcv(symbol, *day_bounds_ms(day))
            if raw.is_empty():
                return SymbolOutcome.skipped(f"no bars on {day}")
            bars, report = normalize_day(raw, day, bar_minutes)
            gap_total += report.missing_bars
            return bars

        results = run_keys(context, one)
        yield from outputs_with_check(results, "candles_all_symbols_ok", {"missing_bars": gap_total})

    @asset(
        partitions_def=symbol_days,
        group_name="features",
        io_manager_key="parquet_io_manager",
        backfill_policy=single_run,
        ins={"candles": AssetIn(partition_mapping=window_mapping(warmup))},
        check_specs=[AssetCheckSpec("features_all_symbols_ok", asset="features")],
        op_tags=SYMBOL_DAY_TAG,
    )
    def features(context: AssetExecutionContext, candles: PartitionWindow):
        """Causal features of D's bars, computed over D and its warm-up days of candles."""

        def one(day: date, symbol: str):
            today = f"{day.isoformat()}|{symbol}"
            st = candles.status(today)
            if st.status != "ok":
                return SymbolOutcome.skipped(f"candles {st.status}: {st.reason}")
            wanted = [f"{(day - timedelta(days=i)).isoformat()}|{symbol}" for i in range(warmup, 0, -1)]
            have = [k for k in wanted if k in candles and candles.status(k).status == "ok"]
            if len(have) < warmup:
                return SymbolOutcome.skipped(f"insufficient history: {len(have)}/{warmup} warm-up days")
            frame = pl.concat([candles[k] for k in [*have, today]])
            return basic_features(frame, *day_bounds_ms(day))

        results = run_keys(context, one)
        yield from outputs_with_check(results, "features_all_symbols_ok")

    @asset(
        partitions_def=days,
        group_name="reports",
        deps=[AssetDep("features", partition_mapping=day_of_symbol_day())],
        ins={"universe": AssetIn()},
        backfill_policy=single_run,
    )
    def daily_summary(
        context: AssetExecutionContext,
        object_store: ObjectStoreResource,
        registry: RegistryResource,
        universe: PartitionWindow,
    ) -> MaterializeResult:
        """Per-day summary of every symbol's status across the graph; JSON in ``summaries/daily/``."""
        store, reg = object_store.get_store(), registry.get_registry()
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
            store.put(
                f"summaries/daily/{day.isoformat()}.json", json.dumps(summary, indent=2).encode(), "application/json"
            )
            last = summary
        return MaterializeResult(
            metadata={
                "symbols_done": last.get("symbols_done", 0),
                "symbols_skipped": len(last.get("skipped", {})),
                "symbols_failed": len(last.get("failed", {})),
                "summary": MetadataValue.json(last),
            }
        )

    return [universe, reference_candles, candles, features, daily_summary]


# assets of the symbol x day graph, in order; the per-symbol "done" state is the last one reached
SYMBOL_DAY_ASSETS = ("candles", "features")


def build_summary(day: date, timeframe: str, status_rows: list[dict], rejected: dict | None = None) -> dict:
    """Pure: fold the per-(asset, symbol) statuses of D into the daily summary document.

    ``rejected`` holds coins the universe left out of D with a reason (e.g. not listed yet).
    """
    per_symbol: dict[str, dict[str, tuple[str, str | None]]] = {}
    for row in status_rows:
        if row["symbol"] == "*":
            continue
        per_symbol.setdefault(row["symbol"], {})[row["asset"]] = (row["status"], row["reason"])
    done, failed = [], {}
    skipped = {s: f"universe: {r}" for s, r in (rejected or {}).items() if s not in per_symbol}
    for symbol, by_asset in sorted(per_symbol.items()):
        bad = [(a, by_asset[a]) for a in SYMBOL_DAY_ASSETS if a in by_asset and by_asset[a][0] != "ok"]
        complete = all(a in by_asset for a in SYMBOL_DAY_ASSETS)
        if any(st == "failed" for _, (st, _) in bad):
            asset_name, (_, reason) = next((a, s) for a, s in bad if s[0] == "failed")
            failed[symbol] = f"{asset_name}: {reason}"
        elif bad:
            asset_name, (_, reason) = bad[0]
            skipped[symbol] = f"{asset_name}: {reason}"
        elif complete:
            done.append(symbol)
        else:
            missing = [a for a in SYMBOL_DAY_ASSETS if a not in by_asset]
            failed[symbol] = f"not materialized: {', '.join(missing)}"
    return {
        "date": day.isoformat(),
        "timeframe": timeframe,
        "symbols_done": len(done),
        "done": done,
        "skipped": skipped,
        "failed": failed,
    }
