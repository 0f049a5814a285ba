"""Run a per-(date, symbol) function over all keys of a ranged run; one bad coin never blocks the rest."""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from datetime import date

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetExecutionContext, AssetKey, MetadataValue, Output

from huracan_assets.names import split_key
from huracan_assets.storage.partitioned import SymbolOutcome, as_outcome

Result = pl.DataFrame | SymbolOutcome


class KeyResults(dict):
    """``run_keys``' results by key, and ``seconds``: the wall time spent in the per-key function (our compute,
    shown as ``run_compute_seconds`` so Dagster's share of a step can be told from ours)."""

    seconds: float = 0.0


def run_keys(
    context: AssetExecutionContext,
    fn: Callable[[date, str], Result],
    keys: Iterable[str] | None = None,
    label: str = "",
) -> KeyResults:
    """Call ``fn(day, symbol)`` for every key, date by date; exceptions become ``failed`` outcomes."""
    keys = sorted(keys if keys is not None else context.partition_keys, key=lambda k: (split_key(k)[0], str(k)))
    results = KeyResults()
    started = time.monotonic()
    step = max(1, len(keys) // 10)
    for i, key in enumerate(keys, 1):
        day, symbol = split_key(key)
        try:
            results[str(key)] = fn(day, symbol)
        except Exception as exc:  # one coin's error is recorded for that coin, never raised for the run
            reason = f"{type(exc).__name__}: {exc}"
            context.log.warning(f"{label or context.asset_key.to_user_string()} {key} failed: {reason}")
            context.log.debug(traceback.format_exc())
            results[str(key)] = SymbolOutcome.failed(reason)
        if i % step == 0 or i == len(keys):
            name = label or context.asset_key.to_user_string()
            context.log.info(f"{name}: {i}/{len(keys)} keys, {time.monotonic() - started:.1f}s")
    results.seconds = time.monotonic() - started
    return results


def summarize(results: dict[str, Result]) -> dict[str, object]:
    outcomes = {k: as_outcome(v) for k, v in results.items()}
    ok = [k for k, o in outcomes.items() if o.status == "ok"]
    failed = {k: o.reason for k, o in outcomes.items() if o.status == "failed"}
    skipped = {k: o.reason for k, o in outcomes.items() if o.status == "skipped"}
    rows = sum(o.frame.height for o in outcomes.values() if o.status == "ok" and o.frame is not None)
    days = sorted({split_key(k)[0].isoformat() for k in results})
    return {"ok": ok, "failed": failed, "skipped": skipped, "rows": rows, "days": days}


def _table_md(items: dict[str, str], limit: int = 50) -> str:
    lines = ["| key | reason |", "|---|---|"]
    for key, reason in list(sorted(items.items()))[:limit]:
        lines.append(f"| {key} | {reason.replace('|', '/')[:200]} |")
    if len(items) > limit:
        lines.append(f"| … | {len(items) - limit} more |")
    return "\n".join(lines)


def check_result(
    check_name: str, offenders: dict[str, str], severity: AssetCheckSeverity, asset_key: str | None = None
) -> AssetCheckResult:
    """One aggregate check result for a step: passes when no key offends; names offenders and why."""
    metadata = {
        "offenders": len(offenders),
        "offending_keys": MetadataValue.json(dict(sorted(offenders.items())[:200])),
    }
    if offenders:
        metadata["details"] = MetadataValue.md(_table_md(offenders))
    return AssetCheckResult(
        check_name=check_name, passed=not offenders, severity=severity, metadata=metadata, asset_key=asset_key
    )


def run_metadata(results: dict[str, Result], extra: Mapping[str, object] | None = None) -> dict[str, object]:
    """The run's aggregate metadata (``run_*``: every key of the ranged run carries it) and its failed and
    skipped keys with their reasons."""
    s = summarize(results)
    metadata = {
        "run_keys": len(results),
        "run_keys_ok": len(s["ok"]),
        "run_keys_failed": len(s["failed"]),
        "run_keys_skipped": len(s["skipped"]),
        "run_rows": s["rows"],
        "run_dates": ", ".join(s["days"]),
        **(extra or {}),
    }
    if isinstance(results, KeyResults):
        metadata["run_compute_seconds"] = round(results.seconds, 3)
    if s["failed"]:
        metadata["run_failed"] = MetadataValue.md(_table_md(s["failed"]))
    if s["skipped"]:
        metadata["run_skipped"] = MetadataValue.md(_table_md(s["skipped"]))
    return metadata


def charted(context, key_charts: str) -> Callable[[date], bool]:
    """Whether a key of ``day`` gets its charts (``execution.key_charts``): every key, or only those of the run's
    last date (a backfill's earlier dates keep their numbers, not their pictures)."""
    if key_charts == "all":
        return lambda day: True
    last = max((split_key(k)[0] for k in context.partition_keys), default=None)
    return lambda day: day == last


def key_metadata(
    context: AssetExecutionContext,
    results: Mapping[str, object],
    per_key: Mapping[str, Mapping[str, object]] | None = None,
    asset_key: str | None = None,
) -> None:
    """Each key's own metadata, on its own materialization: ``status`` (ok | skipped | failed), ``reason`` when it
    has one, its ``rows``, then ``per_key[key]`` (numbers the UI's Plots tab can chart, charts). Values that are
    None or not finite are left out rather than shown as a number."""
    items = {}
    for key, value in results.items():
        outcome = as_outcome(value)
        metadata: dict[str, object] = {"status": outcome.status}
        if outcome.reason:
            metadata["reason"] = outcome.reason[:500]
        if outcome.frame is not None:
            metadata["rows"] = outcome.frame.height
        # the key's quality numbers (as in symbol_status), then what the asset computed for it
        detail = {n: v for n, v in (outcome.detail or {}).items() if isinstance(v, bool | int | float | str)}
        own = {**detail, **(per_key or {}).get(key, {})}
        metadata.update({n: _rounded(v) for n, v in own.items() if _shown(v)})
        items[key] = metadata
    add_partition_metadata(context, items, asset_key)


def add_partition_metadata(
    context: AssetExecutionContext, items: Mapping[str, Mapping[str, object]], asset_key: str | None = None
) -> None:
    """``context.add_asset_metadata(metadata, partition_key=key)`` for every key of ``items``, at the cost of one.

    Dagster's public call checks each key against the run's targeted partitions, computing them anew every time
    (a dynamic-partitions query each), which made per-key metadata cost 30 s per 1,200 keys
    (``benchmarks/bench_key_metadata.py``). Here the keys are checked once against ``context.partition_keys`` and
    added to the step's metadata accumulator in one step, which is what the public call does after its check.
    The accumulator is Dagster's internal API (dagster is pinned, and ``test_per_key_metadata_fast_path`` fails
    if it moves); without it, the public call is used key by key.
    """
    targeted = {str(k) for k in context.partition_keys}
    unknown = sorted(set(items) - targeted)
    if unknown:
        raise ValueError(f"metadata for keys this run does not target: {unknown[:5]}")
    step = _step_context(context)
    if step is None:
        for key, metadata in items.items():
            context.add_asset_metadata(dict(metadata), asset_key=asset_key, partition_key=key)
        return
    from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator

    target = AssetKey.from_coercible(asset_key) if asset_key else context.assets_def.key
    if target not in context.assets_def.keys:
        raise ValueError(f"{target.to_user_string()} is not materialized by this step")
    merged = dict(step._metadata_accumulator.per_output_metadata)
    for key, metadata in items.items():
        handle = AssetMetadataHandle(asset_key=target, partition_key=key)
        merged[handle] = {**merged.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=merged)


def _step_context(context: AssetExecutionContext):
    """The step's execution context when it has the metadata accumulator this module writes to, else None."""
    try:
        from dagster._core.execution.context.metadata_logging import OutputMetadataAccumulator
    except ImportError:  # pragma: no cover - a Dagster without it: the public path
        return None
    step = getattr(context.op_execution_context, "_step_execution_context", None)
    accumulator = getattr(step, "_metadata_accumulator", None)
    return step if isinstance(accumulator, OutputMetadataAccumulator) else None


def _rounded(value: object) -> object:
    """Floats to 6 significant digits: what the UI shows is read, not stored."""
    return float(f"{value:.6g}") if isinstance(value, float) else value


def _shown(value: object) -> bool:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return False
    return not isinstance(value, str) or len(value) <= 500


def outputs_with_check(
    context: AssetExecutionContext,
    results: dict[str, Result],
    check_name: str,
    extra: dict | None = None,
    per_key: Mapping[str, Mapping[str, object]] | None = None,
):
    """The asset's ``Output``, each key's own metadata (:func:`key_metadata`) and one aggregate check naming
    failed symbols."""
    key_metadata(context, results, per_key)
    yield Output(results, metadata=run_metadata(results, extra))
    yield check_result(check_name, summarize(results)["failed"], AssetCheckSeverity.WARN)
