"""Market data assets: ``universe`` and ``reference_candles`` (per day), ``candles`` and ``spreads`` (per
symbol x day)."""

from dataclasses import replace
from datetime import date

import polars as pl
from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    MetadataValue,
    Output,
    asset,
)

from huracan_assets.core.costs import day_spread_frame
from huracan_assets.core.market_data.candles import DAY_MS, TIMEFRAME_MINUTES, bars_per_day, day_bounds_ms
from huracan_assets.core.market_data.cleaning import CleaningPolicy, clean_candles
from huracan_assets.core.market_data.ingest import QualityThresholds, assess, first_missing_ts, merge_bars
from huracan_assets.core.market_data.universe import UniverseRules, parse_selector, rank_universe, selector_as_of
from huracan_assets.defs.checks import check_spec
from huracan_assets.defs.partitions import (
    SYMBOLS,
    date_partitions,
    day_of_symbol_day,
    symbol_day_asset,
)
from huracan_assets.defs.per_symbol import check_result, outputs_with_check, run_keys
from huracan_assets.defs.resources import ExchangeResource, ObjectStoreResource
from huracan_assets.exchange.files import ExchangeError
from huracan_assets.names import join_key, split_key
from huracan_assets.settings import Settings
from huracan_assets.specs import cleaning_policy, quality_thresholds, universe_rules
from huracan_assets.storage.object_store import ObjectNotFound
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome, bytes_to_frame, data_key
from huracan_assets.telegram.control import read_selector_document, selector_versions

CANDLE_CHECKS = (
    "candles_all_symbols_ok",
    "candles_schema_valid",
    "candles_complete",
    "candles_ohlc_sane",
    "candles_fresh",
    "candles_liquid",
)


RUN_AFTER_MS = 2 * 3_600_000  # the daily schedule runs D at 02:00 UTC on D+1 (defs/automation.py)


def build_market_data_assets(settings: Settings) -> list:
    return [
        _universe_asset(settings),
        _reference_candles_asset(settings),
        _candles_asset(settings),
        _spreads_asset(settings),
    ]


def _universe_asset(settings: Settings):
    days = date_partitions(settings.partitions)
    single_run = BackfillPolicy.single_run()
    ucfg = settings.universe
    rules = universe_rules(settings)

    @asset(
        partitions_def=days,
        group_name="market_data",
        io_manager_key="parquet_io_manager",
        backfill_policy=single_run,
        check_specs=[check_spec("universe_is_not_empty", asset="universe")],
    )
    def universe(context: AssetExecutionContext, exchange: ExchangeResource, object_store: ObjectStoreResource):
        """The coins that traded on D, delisted since or not, ranked on the ``rank_lookback_days`` before D
        (trailing quote volume, Corwin–Schultz spread; D's own bars never move the rank) and listing age;
        registers new symbol partitions. A coin whose data ended before D is not in D's universe; it stays
        registered (its history is kept). Named coins (``--symbols``, else the Telegram selector file
        ``control/symbols_selector.json``) bypass the ranking filters."""
        client = exchange.client()
        client.refresh()
        current, versions, selector_error = None, [], None
        if ucfg.symbols is None:
            store = object_store.get_store()
            current, selector_error = read_selector_document(store)
            versions = selector_versions(store) if selector_error is None else []
        if selector_error:
            context.log.error(f"ignoring the symbols selector: {selector_error}")
        results, errors, selected_all, sources, inactive = {}, {}, [], {}, []
        for key in sorted(context.partition_keys):
            day, _ = split_key(key)
            _, end = day_bounds_ms(day)
            explicit = ucfg.symbols
            if explicit is None:  # the selector as of D's run: a new /trade never rewrites a past day
                document = selector_as_of(current, versions, end + RUN_AFTER_MS)
                explicit = parse_selector(document) if document is not None else None
            sources[key] = "explicit" if ucfg.symbols else ("selector" if explicit else "ranking")
            ranked, errors = universe_of_day(client, day, ucfg.rank_lookback_days, rules, explicit)
            for symbol, error in errors.items():
                context.log.warning(f"universe {day}: {symbol} unreadable, left out: {error}")
            results[key] = ranked
            inactive += [s for s in ranked.filter("selected")["symbol"].to_list() if _inactive(client, s)]
            selected_all += [s for s in ranked.filter("selected")["symbol"].to_list() if s not in selected_all]
        registered = context.instance.get_dynamic_partitions(SYMBOLS)
        new = [s for s in selected_all if s not in set(registered)]
        if new:
            context.instance.add_dynamic_partitions(SYMBOLS, new)
        retired = sorted(set(registered) - set(selected_all))
        sizes = {k: int(v["selected"].sum()) for k, v in results.items()}
        yield Output(
            results,
            metadata={
                "selected_per_day": MetadataValue.json(sizes),
                "new_symbols": MetadataValue.json(new),
                "not_selected_registered": MetadataValue.json(retired[:100]),
                "unreadable_markets": MetadataValue.json(errors),
                "selected_inactive_now": MetadataValue.json(sorted(set(inactive))[:100]),
                "source": MetadataValue.json(sources),
                "selector_error": selector_error or "",
            },
        )
        empty = sorted(k for k, n in sizes.items() if n == 0)
        yield check_result("universe_is_not_empty", {k: "no coin selected" for k in empty}, AssetCheckSeverity.ERROR)

    return universe


def universe_of_day(
    client, day: date, lookback_days: int, rules: UniverseRules, explicit: tuple[str, ...] | None = None
) -> tuple[pl.DataFrame, dict[str, str]]:
    """D's universe from any exchange client: the coins with a bar on D (whatever their status today), ranked
    on the bars of ``[D - lookback_days, D)``, listing age at the end of D. Returns it and the unreadable
    markets."""
    start, end = day_bounds_ms(day)
    stats, errors = client.listing_stats(start, lookback_days * DAY_MS, through_ms=end)
    later = [s for s in client.listed_after(end) if s not in errors]
    ranked = rank_universe(stats, as_of_end_ms=end, rules=rules, explicit=explicit, day_start_ms=start, later=later)
    return ranked, errors


def _inactive(client, symbol: str) -> bool:
    market = client.markets.get(symbol)
    return market is not None and not market.active


def _reference_candles_asset(settings: Settings):
    days = date_partitions(settings.partitions)
    single_run = BackfillPolicy.single_run()
    ucfg, policy = settings.universe, cleaning_policy(settings)

    @asset(
        partitions_def=days, group_name="market_data", io_manager_key="parquet_io_manager", backfill_policy=single_run
    )
    def reference_candles(context: AssetExecutionContext, exchange: ExchangeResource) -> dict:
        """D's cleaned bars of the reference coins (BTC, ETH by default), whatever the universe holds."""
        client = exchange.client()
        client.refresh()
        now = client.now_ms()
        out = {}
        for key in sorted(context.partition_keys):
            day, _ = split_key(key)
            frames = []
            for symbol in ucfg.reference_symbols:
                if symbol not in client.markets:
                    context.log.warning(f"reference symbol {symbol} is not available")
                    continue
                start, end = day_bounds_ms(day)
                bars, _ = clean_candles(client.fetch_ohlcv(symbol, start, end, now_ms=now), start, end, policy)
                frames.append(bars.with_columns(symbol=pl.lit(symbol)))
            out[key] = pl.concat(frames) if frames else pl.DataFrame(schema={"ts": pl.Int64, "symbol": pl.String})
        return out

    return reference_candles


def _candles_asset(settings: Settings):
    policy = cleaning_policy(settings)
    thresholds = quality_thresholds(settings)

    @symbol_day_asset(
        settings.partitions,
        group_name="market_data",
        ins={"universe": AssetIn(partition_mapping=day_of_symbol_day())},
        check_specs=[check_spec(name, asset="candles") for name in CANDLE_CHECKS],
    )
    def candles(
        context: AssetExecutionContext,
        exchange: ExchangeResource,
        object_store: ObjectStoreResource,
        universe: PartitionWindow,
    ):
        """D's OHLCV bars per coin, cleaned (every change counted; gaps reported, filled only by the
        configured policy). A stored partial day is completed by fetching only what is missing; late
        bars overwrite older copies by timestamp; identical content is stored once."""
        client, store = exchange.client(), object_store.get_store()
        client.refresh()
        now = client.now_ms()
        members: dict[date, set[str]] = {}
        details: dict[str, dict] = {}

        def one(day: date, symbol: str):
            if day not in members:
                uni = universe.get(day.isoformat())
                members[day] = set() if uni is None else set(uni.filter("selected")["symbol"].to_list())
            if symbol not in members[day]:
                return SymbolOutcome.skipped(f"not in the universe of {day}")
            outcome = ingest_day(client, store, day, symbol, now, policy, thresholds)
            if outcome.detail is not None:
                details[join_key(day, symbol)] = outcome.detail
            return outcome

        results = run_keys(context, one)
        yield from outputs_with_check(
            context, results, "candles_all_symbols_ok", {"exchange_retries": client_retries(client)}
        )
        yield from candle_checks(results, details, thresholds)

    return candles


def _spreads_asset(settings: Settings):
    c, q = settings.costs, settings.candles
    fine_minutes = TIMEFRAME_MINUTES[c.spread_timeframe]
    fetch_fine = fine_minutes < settings.bar_minutes  # finer than the training bars: ask the exchange for them
    fine_policy = replace(cleaning_policy(settings), bar_minutes=fine_minutes)
    min_fine_bars = q.min_completeness * bars_per_day(fine_minutes)

    @symbol_day_asset(
        settings.partitions,
        group_name="market_data",
        ins={"candles": AssetIn()},
        check_specs=[
            check_spec("spreads_all_symbols_ok", asset="spreads"),
            check_spec("spreads_from_finest_bars", asset="spreads"),
        ],
        metadata={"estimator": c.spread_estimator, "spread_timeframe": c.spread_timeframe},
    )
    def spreads(context: AssetExecutionContext, exchange: ExchangeResource, candles: PartitionWindow):
        """D's bid-ask spread estimate per coin, one row (``core/costs.py`` ``SPREAD_SCHEMA``): the configured
        estimator (Abdi-Ranaldo by default) over D's ``costs.spread_timeframe`` bars (5m), fetched from the
        exchange whatever the training bars are, plus the tick seen on D. Where the exchange serves no such bars
        (or too few) the estimate comes from D's training candles and the row is flagged ``coarse``, with the
        reason; ``spreads_from_finest_bars`` names those keys. The cost model reads the days before a bar's day
        only (a trailing median), never D's own row for bars of D."""
        fine, now, unavailable = None, None, ""
        if fetch_fine:
            try:
                fine = exchange.client(c.spread_timeframe)
                fine.refresh()
                now = fine.now_ms()
            except ExchangeError as exc:
                fine, unavailable = None, f"no {c.spread_timeframe} bars: {str(exc).splitlines()[0][:160]}"
        coarse_keys: dict[str, str] = {}

        def one(day: date, symbol: str):
            key = join_key(day, symbol)
            status = candles.status(key)
            if status.status != "ok":
                return SymbolOutcome.skipped(f"candles {status.status}: {status.reason}")
            start, end = day_bounds_ms(day)
            bars, note = None, unavailable
            if fine is not None:
                try:
                    raw = fine.fetch_ohlcv(symbol, start, end, now_ms=now)
                    cleaned, _ = clean_candles(raw, start, end, fine_policy)
                    if cleaned.height >= min_fine_bars:
                        bars = cleaned
                    else:
                        note = f"{cleaned.height} {c.spread_timeframe} bars, fewer than {min_fine_bars:.0f}"
                except (ExchangeError, ValueError) as exc:
                    note = f"no {c.spread_timeframe} bars: {str(exc).splitlines()[0][:160]}"
            if bars is None:  # the training bars: coarse when finer ones were asked for
                bars, minutes, coarse = candles[key], settings.bar_minutes, fetch_fine
            else:
                minutes, coarse = fine_minutes, False
            if coarse:
                coarse_keys[key] = note
            row = day_spread_frame(bars, day, c.spread_estimator, minutes, coarse=coarse, note=note if coarse else "")
            detail = {k: row[k][0] for k in ("spread_bps", "tick_bps", "bar_minutes", "n_bars", "coarse", "note")}
            return SymbolOutcome.ok(row, detail={k: None if v != v else v for k, v in detail.items()})  # NaN: null

        results = run_keys(context, one)
        estimates = [v["spread_bps"][0] for v in results.values() if isinstance(v, pl.DataFrame)]
        extra = {
            "coarse_keys": len(coarse_keys),
            "median_spread_bps": float(pl.Series(estimates, dtype=pl.Float64).median() or 0.0) if estimates else 0.0,
        }
        yield from outputs_with_check(context, results, "spreads_all_symbols_ok", extra)
        yield check_result("spreads_from_finest_bars", coarse_keys, AssetCheckSeverity.WARN)

    return spreads


def ingest_day(
    client, store, day: date, symbol: str, now: int | None, policy: CleaningPolicy, thresholds
) -> SymbolOutcome:
    """Fetch what is missing of (symbol, day), merge over what is stored, clean and assess it."""
    start, end = day_bounds_ms(day)
    try:
        existing = bytes_to_frame(store.get(data_key("candles", join_key(day, symbol))))
    except ObjectNotFound:
        existing = None
    since = first_missing_ts(existing, start, end, policy.bar_ms)
    fetched = client.fetch_ohlcv(symbol, since, end, now_ms=now) if since is not None else None
    raw = merge_bars(existing, fetched) if fetched is not None else existing
    if raw is None or raw.is_empty():
        return SymbolOutcome.skipped(f"no bars on {day}")
    try:
        bars, report = clean_candles(raw, start, end, policy)
    except ValueError as exc:
        return SymbolOutcome.failed(f"malformed: {exc}")
    verdict = assess(bars, report, end, policy.bar_ms, thresholds)
    detail = {**verdict.detail, "fetched_from_ts": since, "reused_bars": 0 if existing is None else existing.height}
    if verdict.status != "ok":
        return SymbolOutcome.failed(verdict.reason or "failed", frame=bars, detail=detail)
    return SymbolOutcome.ok(bars, detail)


def client_retries(client) -> int:
    return int(getattr(client, "retries", 0))


def candle_checks(results: dict, details: dict[str, dict], t: QualityThresholds):
    """The candle guardrails, one aggregate result each, naming the symbols that fail and why."""
    malformed = {
        k: v.reason for k, v in results.items() if isinstance(v, SymbolOutcome) and "malformed" in (v.reason or "")
    }
    yield check_result("candles_schema_valid", malformed, AssetCheckSeverity.ERROR)
    incomplete = {
        k: f"{d['bars']}/{d['expected_bars']} bars, {d['gaps']} gaps"
        for k, d in details.items()
        if d["completeness"] < t.warn_completeness
    }
    held_out = any(d["completeness"] < t.min_completeness for d in details.values())
    yield check_result(
        "candles_complete", incomplete, AssetCheckSeverity.ERROR if held_out else AssetCheckSeverity.WARN
    )
    ohlc = {
        k: f"repaired {d['ohlc_repaired']}, non-positive {d['non_positive_dropped']}, NaN rows {d['nan_rows_dropped']}"
        for k, d in details.items()
        if d["ohlc_problems"]
    }
    yield check_result("candles_ohlc_sane", ohlc, AssetCheckSeverity.WARN)
    stale = {
        k: f"last bar {d['lag_bars']} bars before the day's end"
        for k, d in details.items()
        if d["lag_bars"] > t.max_lag_bars
    }
    yield check_result("candles_fresh", stale, AssetCheckSeverity.WARN)
    thin = {
        k: f"traded {d['quote_volume']:,.0f}, zero-volume {d['zero_volume_share']:.0%}, spread {d['spread_bps']} bps"
        for k, d in details.items()
        if d["thin_book"]
    }
    yield check_result("candles_liquid", thin, AssetCheckSeverity.WARN)
