"""Assets derived from candles, per symbol x day: ``features``, ``labels`` and ``regimes``.

Each reads D and a window of days before it (lazily, coin by coin), calls the pure core, and emits
only D's rows. ``labels`` follows its own partition convention: ``labels[D]`` holds the events that
start on D-1, which are fully resolved by the end of D.
"""

import random
from datetime import date, timedelta

import polars as pl
from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
)

from huracan_assets.core.features.canary import lookahead_violations
from huracan_assets.core.features.recipe import FeatureRecipe, features_for_window
from huracan_assets.core.labels.triple_barrier import triple_barrier
from huracan_assets.core.market_data.candles import bars_per_day, day_bounds_ms
from huracan_assets.core.regime.classifier import regimes_for_window
from huracan_assets.core.reporting.keys import regime_markdown, regime_values
from huracan_assets.defs.checks import check_spec
from huracan_assets.defs.partitions import symbol_day_asset, window_mapping
from huracan_assets.defs.per_symbol import charted, check_result, outputs_with_check, run_keys
from huracan_assets.defs.resources import ObjectStoreResource
from huracan_assets.names import join_key
from huracan_assets.settings import Settings
from huracan_assets.specs import (
    barrier_spec,
    feature_warmup_days,
    label_vol_days,
    recipe_for,
    regime_days,
    regime_spec,
)
from huracan_assets.storage.partitioned import PartitionWindow, SymbolOutcome, reference_closes


def history_days_needed(settings: Settings) -> int:
    """Days before a date the daily loop reads: the largest window of any derived asset."""
    return max(feature_warmup_days(settings), label_vol_days(settings) + 1, regime_days(settings))


def window_frame(
    candles: PartitionWindow, day: date, symbol: str, days_before: int
) -> tuple[pl.DataFrame | None, list[date]]:
    """D's candles with up to ``days_before`` usable days before it, and the days that were missing.

    ``None`` when D itself is not usable (the caller reports why).
    """
    today = join_key(day, symbol)
    if candles.status(today).status != "ok":
        return None, []
    wanted = [day - timedelta(days=i) for i in range(days_before, 0, -1)]
    return candles.days(symbol, [*wanted, day])  # D is usable, so it is never among the missing days


def _not_usable(candles: PartitionWindow, day: date, symbol: str) -> SymbolOutcome:
    st = candles.status(join_key(day, symbol))
    return SymbolOutcome.skipped(f"candles {st.status}: {st.reason}")


def build_derived_assets(settings: Settings) -> list:
    return [_features_asset(settings), _labels_asset(settings), _regimes_asset(settings)]


def _reference_for(store, symbol: str, days: list[date]) -> pl.DataFrame | None:
    """The reference coin's closes over ``days`` as one frame (None when no day has them)."""
    frames = list(reference_closes(store, symbol, days).values())
    return pl.concat(frames).sort("ts") if frames else None


def _features_asset(settings: Settings):
    recipe = recipe_for(settings)
    warmup = feature_warmup_days(settings)
    fcfg = settings.features

    @symbol_day_asset(
        settings.partitions,
        group_name="features",
        ins={"candles": AssetIn(partition_mapping=window_mapping(warmup))},
        deps=["reference_candles"],
        check_specs=[
            check_spec("features_all_symbols_ok", asset="features"),
            check_spec("feature_recipe_hash_matches", asset="features"),
            check_spec("features_have_no_lookahead", asset="features"),
        ],
        metadata={"recipe_hash": recipe.hash, "features": len(recipe.names)},
    )
    def features(context: AssetExecutionContext, candles: PartitionWindow, object_store: ObjectStoreResource):
        """The shared FeatureRecipe over D and its warm-up days; only D's rows are stored. The same recipe
        object builds live features (``core.features.recipe.live_features``)."""
        store = object_store.get_store()
        references: dict[date, pl.DataFrame | None] = {}
        samples: list[tuple[str, pl.DataFrame, int, int, pl.DataFrame | None]] = []
        rng = random.Random(",".join(sorted(context.partition_keys)))

        def one(day: date, symbol: str):
            frame, missing = window_frame(candles, day, symbol, warmup)
            if frame is None:
                return _not_usable(candles, day, symbol)
            if missing:
                return SymbolOutcome.skipped(f"insufficient history: {warmup - len(missing)}/{warmup} warm-up days")
            if day not in references:
                days = [day - timedelta(days=i) for i in range(warmup, -1, -1)]
                references[day] = _reference_for(store, settings.universe.reference_symbol, days)
            start, end = day_bounds_ms(day)
            if len(samples) < fcfg.canary_samples and rng.random() < 0.5:
                samples.append((join_key(day, symbol), frame, start, end, references[day]))
            return features_for_window(frame, recipe, start, end, reference=references[day])

        results = run_keys(context, one)
        yield from outputs_with_check(context, results, "features_all_symbols_ok", {"recipe_hash": recipe.hash})
        pinned = fcfg.recipe_hash
        mismatch = {} if pinned in (None, recipe.hash) else {"recipe": f"code {recipe.hash} != pinned {pinned}"}
        yield check_result("feature_recipe_hash_matches", mismatch, AssetCheckSeverity.ERROR)
        leaks = _feature_canary(samples, recipe, rng)
        yield check_result("features_have_no_lookahead", leaks, AssetCheckSeverity.ERROR)

    return features


def _feature_canary(samples, recipe: FeatureRecipe, rng: random.Random) -> dict[str, str]:
    """Re-build sampled keys with every bar after random cut points removed: the past must not move."""
    offenders = {}
    for key, frame, start, end, reference in samples:
        day_ts = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))["ts"].to_list()
        cuts = sorted(rng.sample(day_ts, min(3, len(day_ts))))

        def build(c: pl.DataFrame, _ref=reference, _s=start, _e=end) -> pl.DataFrame:
            return features_for_window(c, recipe, _s, _e, reference=_ref)

        bad = lookahead_violations(build, frame, cuts)
        if bad:
            offenders[key] = f"values at or before {bad} change when later bars are removed"
    return offenders


def _labels_asset(settings: Settings):
    lcfg = settings.labels
    bar_ms = settings.bar_minutes * 60_000
    spec = barrier_spec(settings)
    vol_days = label_vol_days(settings)

    @symbol_day_asset(
        settings.partitions,
        group_name="labels",
        ins={"candles": AssetIn(partition_mapping=window_mapping(vol_days + 1))},
        check_specs=[
            check_spec("labels_all_symbols_ok", asset="labels"),
            check_spec("labels_are_balanced_and_covered", asset="labels"),
        ],
    )
    def labels(context: AssetExecutionContext, candles: PartitionWindow):
        """Triple-barrier labels of the events that START ON D-1 (not D!), whose horizon (at most one day)
        ends by the end of D, so labels[D] is final when D's run happens. Reads candles of D-1 and D,
        plus the volatility warm-up before D-1."""
        stats: dict[str, int] = {"events": 0, "resolved": 0, "pos": 0, "neg": 0, "zero": 0}

        def one(day: date, symbol: str):
            prev = day - timedelta(days=1)
            if candles.status(join_key(prev, symbol)).status != "ok":
                return _not_usable(candles, prev, symbol)
            frame, _missing = window_frame(candles, day, symbol, vol_days + 1)
            if frame is None:
                return _not_usable(candles, day, symbol)
            out = triple_barrier(frame, *day_bounds_ms(prev), spec, bar_ms)
            _count(stats, out)
            return out

        results = run_keys(context, one)
        yield from outputs_with_check(
            context, results, "labels_all_symbols_ok", {"barrier": MetadataValue.json(spec.__dict__)}
        )
        yield check_result("labels_are_balanced_and_covered", _label_issues(stats, lcfg), AssetCheckSeverity.WARN)

    return labels


def _count(stats: dict[str, int], out: pl.DataFrame) -> None:
    stats["events"] += out.height
    resolved = out.filter(pl.col("label").is_not_null())
    stats["resolved"] += resolved.height
    stats["pos"] += resolved.filter(pl.col("label") > 0).height
    stats["neg"] += resolved.filter(pl.col("label") < 0).height
    stats["zero"] += resolved.filter(pl.col("label") == 0).height


def _label_issues(stats: dict[str, int], lcfg) -> dict[str, str]:
    issues = {}
    if stats["events"]:
        coverage = stats["resolved"] / stats["events"]
        if coverage < lcfg.min_coverage:
            issues["coverage"] = f"{coverage:.1%} of {stats['events']} events resolved (< {lcfg.min_coverage:.0%})"
    if stats["resolved"]:
        top = max(stats["pos"], stats["neg"], stats["zero"]) / stats["resolved"]
        if top > lcfg.max_class_share:
            issues["balance"] = f"one class holds {top:.1%} of labels (> {lcfg.max_class_share:.0%})"
    return issues


def _regimes_asset(settings: Settings):
    rcfg = settings.regimes
    spec = regime_spec(settings)
    days_back = regime_days(settings)

    @symbol_day_asset(
        settings.partitions,
        group_name="features",
        ins={"candles": AssetIn(partition_mapping=window_mapping(days_back))},
        check_specs=[
            check_spec("regimes_all_symbols_ok", asset="regimes"),
            check_spec("regimes_are_not_degenerate", asset="regimes"),
        ],
    )
    def regimes(context: AssetExecutionContext, candles: PartitionWindow):
        """TREND / RANGE / PANIC / ILLIQUID per bar of D, causal only (trailing windows; the HMM option is
        fitted before D and forward-filtered on D, never smoothed). ILLIQUID comes from each bar's trailing
        zero-volume share and its thin book over the trailing day of bars (thresholds of ``candles:``), never
        from a flag computed on the whole of D."""
        counts: dict[str, int] = {}
        per_key: dict[str, dict] = {}
        chart_day = charted(context, settings.execution.key_charts)

        def one(day: date, symbol: str):
            frame, missing = window_frame(candles, day, symbol, days_back)
            if frame is None:
                return _not_usable(candles, day, symbol)
            if missing:  # a regime without its trailing history would be a guess, not a classification
                return SymbolOutcome.skipped(f"insufficient history: {days_back - len(missing)}/{days_back} days")
            out = regimes_for_window(frame, spec, *day_bounds_ms(day))
            for regime, n in out.group_by("regime").len().iter_rows():
                counts[regime] = counts.get(regime, 0) + n
            key = join_key(day, symbol)
            chart = regime_markdown(key, out, frame) if chart_day(day) else None
            per_key[key] = {**regime_values(out), **({"regimes": MetadataValue.md(chart)} if chart else {})}
            return out

        results = run_keys(context, one)
        total = sum(counts.values())
        shares = {k: round(v / total, 4) for k, v in sorted(counts.items())} if total else {}
        extra = {"regime_shares": MetadataValue.json(shares)}
        yield from outputs_with_check(context, results, "regimes_all_symbols_ok", extra, per_key)
        degenerate = {
            regime: f"{share:.1%} of all bars (> {rcfg.max_single_regime_share:.0%})"
            for regime, share in shares.items()
            if share > rcfg.max_single_regime_share and total >= 10 * bars_per_day(settings.bar_minutes)
        }
        yield check_result("regimes_are_not_degenerate", degenerate, AssetCheckSeverity.WARN)

    return regimes
