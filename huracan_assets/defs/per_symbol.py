"""Run a per-(date, symbol) function over all keys of a ranged run; one bad coin never blocks the rest."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from datetime import date

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetExecutionContext, MetadataValue, Output

from huracan_assets.names import split_key
from huracan_assets.storage.partitioned import SymbolOutcome, as_outcome

Result = pl.DataFrame | SymbolOutcome


def run_keys(
    context: AssetExecutionContext,
    fn: Callable[[date, str], Result],
    keys: Iterable[str] | None = None,
    label: str = "",
) -> dict[str, Result]:
    """Call ``fn(day, symbol)`` for every key, date by date; exceptions become ``failed`` outcomes."""
    keys = sorted(keys if keys is not None else context.partition_keys, key=lambda k: (split_key(k)[0], str(k)))
    results: dict[str, Result] = {}
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


def outputs_with_check(results: dict[str, Result], check_name: str, extra: dict | None = None):
    """The asset's ``Output`` (aggregate metadata) and one aggregate check naming failed symbols."""
    s = summarize(results)
    metadata = {
        "keys": len(results),
        "keys_ok": len(s["ok"]),
        "keys_failed": len(s["failed"]),
        "keys_skipped": len(s["skipped"]),
        "rows": s["rows"],
        "dates": ", ".join(s["days"]),
        **(extra or {}),
    }
    if s["failed"]:
        metadata["failed"] = MetadataValue.md(_table_md(s["failed"]))
    if s["skipped"]:
        metadata["skipped"] = MetadataValue.md(_table_md(s["skipped"]))
    yield Output(results, metadata=metadata)
    yield check_result(check_name, s["failed"], AssetCheckSeverity.WARN)
